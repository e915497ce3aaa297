//! Building a daemon, in the order its parts depend on each other (the
//! signals were blocked before any socket was bound, see `start`): the
//! ring (a source may log into it as it opens), the sources, the
//! routes and the query server over the ring, their registration with the
//! poll, and last the fds a predecessor was reading, resumed where it
//! left them. Each step is a function of what the earlier ones made, and
//! the daemon comes out whole.

use std::os::fd::{AsRawFd, OwnedFd};

use mio::unix::SourceFd;
use mio::{Interest, Poll, Registry};
use nix::sys::signalfd::SignalFd;

use super::start::{start_ring, Process, RingFrom, Start};
use super::token::{
    Slot, INTAKE_FD_BASE, METRICS_BASE, NET_CONN_BASE, NET_LISTENER_BASE, QUERY_CLIENT_BASE,
    ROUTE_BASE,
};
use super::{local_hostname, warn, Daemon, KMSG_STARTUP_BUDGET};
use crate::config::{Settings, DEFAULT_QUERY_MAX_CLIENTS};
use crate::handover::{self, IntakeFdState, State};
use crate::ingest;
use crate::lifecycle::activation::Stored;
use crate::lifecycle::listen::Listeners;
use crate::parse::kmsg::KmsgParser;
use crate::parse::multiline::Joiner;
use crate::parse::syslog::SyslogParser;
use crate::query::QueryServer;
use crate::record::Severity;
use crate::recorder::Recorder;
use crate::ring::{Ring, SeqMark};
use crate::route::Routes;
use crate::scrape::ScrapeServer;
use crate::source::devlog::DevLogSource;
use crate::source::intake::{IntakeOptions, IntakeSource};
use crate::source::kmsg::KmsgSource;
use crate::source::net::NetSource;
use crate::source::throttle::Rate;
use crate::source::Drain;

/// The inputs, opened over the ring.
struct Inputs {
    syslog: Vec<DevLogSource>,
    kmsg: Option<KmsgSource>,
    net: NetSource,
    intake: IntakeSource,
}

impl Daemon {
    /// A daemon serving `listeners` as `settings` say, going on from what
    /// `start` carries over, ready for [`Daemon::run`].
    pub fn new(
        settings: Settings,
        listeners: Listeners,
        start: Start,
        process: Process,
    ) -> Result<Daemon, String> {
        let signals = process.signals;
        let Start {
            reexec,
            stored,
            fdstore,
            run_as,
        } = start;
        let Stored {
            ring: stored_ring,
            state: stored_state,
            intake_fds: stored_fds,
        } = stored;
        let handed_ring = reexec
            .as_ref()
            .and_then(|s| s.ring)
            .and_then(handover::take_fd);
        let (mut ring, from) = open_ring(&settings, handed_ring, stored_ring, run_as)?;
        let Listeners {
            syslog,
            intake,
            query: query_listener,
            udp,
            tcp,
        } = listeners;
        let mut inputs = open_inputs(
            &settings,
            &mut ring,
            reexec.as_ref(),
            from,
            (syslog, intake, udp, tcp),
        )?;
        if fdstore {
            inputs.intake.use_fdstore();
        }
        let routes = open_routes(&settings, reexec.as_ref(), from, &ring)?;
        let (query_limits, cut) = crate::query::limits::fit_fd_limit(
            crate::query::limits::ClientLimits {
                total: settings.query_max_clients,
                per_uid: settings.query_max_clients_per_uid,
                fd_bound: false,
            },
            settings.max_fds + settings.net.tcp_max_conns,
        );
        // Lowered from the default, it is how this machine is (LinuxKit's
        // init gets a hard limit of 4096 fds), not a setting that failed.
        match cut {
            Some(why) if settings.query_max_clients == DEFAULT_QUERY_MAX_CLIENTS => {
                ingest::note(&mut ring, Severity::Info, why)
            }
            Some(why) => warn(&mut ring, why),
            None => {}
        }
        let mut query = QueryServer::new(
            query_listener.socket,
            QUERY_CLIENT_BASE,
            settings.query_group,
            query_limits,
        );
        if !settings.routes.is_empty() {
            query.routes = Some(routes.board());
        }
        query.intake = Some(inputs.intake.board());
        query.capture_filters =
            crate::query::captures::RuleTexts::new(settings.capture.filter_texts());
        let mut scrape = open_scrape(&settings, &mut ring, reexec.as_ref())?;

        let poll = Poll::new().map_err(|e| format!("cannot create poll: {e}"))?;
        let registry = poll.registry();
        let mut busy = register(
            registry,
            &signals,
            &mut query,
            &mut inputs,
            &mut ring,
            &settings,
        )?;
        scrape
            .register(registry)
            .map_err(|e| format!("cannot register with poll: {e}"))?;
        if let Some(state) = &reexec {
            resume_reexec_fds(state, &mut inputs, &mut ring, registry);
        }
        let fdstore_state_used = stored_state.is_some();
        if !stored_fds.is_empty() || stored_state.is_some() {
            resume_stored_fds(
                stored_state,
                stored_fds,
                &mut inputs.intake,
                &mut ring,
                registry,
            );
        }
        busy.extend(inputs.intake.take_ready().into_iter().filter_map(Slot::of));
        // The boot's kernel lines come before anything that arrived while
        // they were being read.
        if let Some(k) = &mut inputs.kmsg {
            if k.drain(&mut ring, KMSG_STARTUP_BUDGET) == Drain::More {
                busy.push(Slot::Kmsg);
            }
            if k.is_done() {
                inputs.kmsg = None;
            }
        }
        let Inputs {
            syslog,
            kmsg,
            net,
            intake,
        } = inputs;
        Ok(Daemon {
            poll,
            signals,
            ring,
            syslog,
            kmsg,
            net,
            intake,
            query,
            routes,
            recorder: settings.capture.dir.clone().map(|dir| {
                let boot = handover::boot_id().unwrap_or_else(|| "noboot".into());
                Recorder::new(dir, settings.capture.dir_max, boot)
            }),
            scrape,
            busy,
            query_path: query_listener.path,
            settings,
            loader: process.loader,
            notifier: process.notifier,
            _pidfile: process.pidfile,
            exe: process.exe,
            argv: process.argv,
            ring_in_fdstore: match from {
                RingFrom::FdStore => true,
                RingFrom::Reexec => reexec.as_ref().is_some_and(|s| s.ring_in_fdstore),
                _ => false,
            },
            fdstore_state_used,
        })
    }
}

/// The ring to start with (see [`start_ring`]), its sequence mark kept
/// beside the snapshot, and a first entry saying where it came from.
fn open_ring(
    settings: &Settings,
    handed: Option<OwnedFd>,
    stored: Option<OwnedFd>,
    run_as: Option<u32>,
) -> Result<(Ring, RingFrom), String> {
    let owners = crate::private_file::owners(run_as);
    let (mut ring, from, refused) = start_ring(settings, handed, stored, &owners)?;
    ring.set_local_host(local_hostname());
    ring.set_capture_rules(settings.capture.rules());
    // Before the first entry gets its number: see ring::seqmark.
    let mark_warning = settings.snapshot.as_deref().and_then(|path| {
        let skip = matches!(from, RingFrom::Snapshot | RingFrom::Fresh);
        ring.keep_seq_mark(SeqMark::beside(path), skip, &owners)
    });
    let held = ring.len();
    match from {
        RingFrom::Reexec => {}
        RingFrom::FdStore => ingest::note(
            &mut ring,
            Severity::Info,
            format!("memlogd started; went on with the {held} entries the service manager's fd store kept"),
        ),
        RingFrom::Snapshot => {
            let text = snapshot_loaded(settings, &ring, held);
            ingest::note(&mut ring, Severity::Info, text)
        }
        RingFrom::Fresh => ingest::note(&mut ring, Severity::Info, "memlogd started"),
    }
    for w in [refused, mark_warning].into_iter().flatten() {
        warn(&mut ring, w);
    }
    Ok((ring, from))
}

/// The entry that follows a snapshot's entries: it marks where the boot
/// that wrote them ends, and names that boot (the one whose kernel log the
/// ring had read, when it read one) and this one by their kernel boot ids,
/// so a reader tells the two boots' entries apart.
fn snapshot_loaded(settings: &Settings, ring: &Ring, held: usize) -> String {
    let path = settings
        .snapshot
        .as_deref()
        .unwrap_or(std::path::Path::new(""));
    let mut text = format!(
        "memlogd started; loaded {held} entries from {}",
        path.display()
    );
    if let Some(earlier) = ring
        .resume_cookie()
        .as_ref()
        .and_then(KmsgSource::boot_read)
    {
        text += &format!(", of boot {earlier}");
    }
    if let Some(now) = handover::boot_id() {
        text += &format!("; this is boot {now}");
    }
    text
}

/// The syslog sockets, the kernel log, the network and the fd intake, as
/// the settings ask; on re-exec over the sockets handed over.
fn open_inputs(
    settings: &Settings,
    ring: &mut Ring,
    reexec: Option<&State>,
    from: RingFrom,
    (syslog_listeners, intake_listener, handed_udp, handed_tcp): (
        Vec<crate::sockpath::Listener<mio::net::UnixDatagram>>,
        crate::sockpath::Listener<mio::net::UnixDatagram>,
        Vec<std::net::UdpSocket>,
        Vec<std::net::TcpListener>,
    ),
) -> Result<Inputs, String> {
    let parser = SyslogParser::new(local_hostname(), settings.max_line_len);
    let syslog = syslog_listeners
        .into_iter()
        .map(|l| DevLogSource::new(l, parser.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let handed_kmsg = reexec.and_then(|s| s.kmsg).and_then(handover::take_fd);
    let mut kmsg = settings.kmsg.as_deref().and_then(|path| {
        let parser = KmsgParser::new(local_hostname(), settings.max_line_len);
        match handed_kmsg {
            Some(fd) => Some(KmsgSource::inherited(path, fd.into(), parser)),
            None => KmsgSource::open(path, parser)
                .map_err(|e| warn(ring, e))
                .ok(),
        }
    });
    if let Some(k) = &mut kmsg {
        if from != RingFrom::Fresh {
            k.resume(ring.resume_cookie().as_ref());
        }
    }
    // On re-exec the network sockets are the ones handed over; the
    // addresses in the settings are bound again only by a restart.
    let mut net_settings = settings.net.clone();
    if reexec.is_some() {
        net_settings.udp.clear();
        net_settings.tcp.clear();
    }
    let net = NetSource::bind(
        &net_settings,
        (handed_udp, handed_tcp),
        parser,
        settings.max_line_len,
        NET_LISTENER_BASE,
        NET_CONN_BASE,
    )?;
    // With port 0 this is the only way to learn the port.
    if reexec.is_none() {
        for (proto, addr) in net.listening() {
            ingest::note(ring, Severity::Info, format!("listening on {proto} {addr}"));
        }
    }
    let joiner = settings
        .multiline
        .as_ref()
        .map(|m| Joiner::new(m, settings.max_line_len))
        .transpose()?;
    let intake = IntakeSource::new(
        intake_listener,
        IntakeOptions {
            max_fds: settings.max_fds,
            max_line_len: settings.max_line_len,
            level_prefix: settings.level_prefix,
            rate: Rate {
                lines_per_sec: settings.intake_rate,
                burst: settings.intake_burst,
            },
        },
        joiner,
        INTAKE_FD_BASE,
        ring,
    );
    Ok(Inputs {
        syslog,
        kmsg,
        net,
        intake,
    })
}

/// The routes, each from the oldest entry (a route started with the daemon
/// forwards everything from boot on), or after a re-exec from where it was.
fn open_routes(
    settings: &Settings,
    reexec: Option<&State>,
    from: RingFrom,
    ring: &Ring,
) -> Result<Routes, String> {
    let progress = match (reexec, from) {
        (Some(s), RingFrom::Reexec) => s.routes.clone(),
        _ => Vec::new(),
    };
    Routes::new(
        &settings.routes,
        ROUTE_BASE,
        ring.first_seq(),
        &progress,
        local_hostname(),
    )
}

/// The `--metrics` listeners: on re-exec the ones handed over (the
/// addresses are bound again only by a restart), else bound now and each
/// said in the ring, since with port 0 that is the only way to learn the
/// port.
fn open_scrape(
    settings: &Settings,
    ring: &mut Ring,
    reexec: Option<&State>,
) -> Result<ScrapeServer, String> {
    if let Some(state) = reexec {
        let handed = state.metrics.iter().filter_map(|&fd| handover::take_fd(fd));
        return ScrapeServer::adopt(handed, METRICS_BASE)
            .map_err(|e| format!("re-exec: the metrics listener: {e}"));
    }
    let scrape = ScrapeServer::bind(&settings.metrics, METRICS_BASE)?;
    for addr in scrape.listening() {
        ingest::note(ring, Severity::Info, format!("listening on metrics {addr}"));
    }
    Ok(scrape)
}

/// Register every socket with the poll; the sources to read at once, since
/// anything queued before registration raised no edge.
fn register(
    registry: &Registry,
    signals: &SignalFd,
    query: &mut QueryServer,
    inputs: &mut Inputs,
    ring: &mut Ring,
    settings: &Settings,
) -> Result<Vec<Slot>, String> {
    let reg_err = |e: std::io::Error| format!("cannot register with poll: {e}");
    registry
        .register(
            &mut SourceFd(&signals.as_raw_fd()),
            Slot::Signals.token(),
            Interest::READABLE,
        )
        .map_err(reg_err)?;
    registry
        .register(
            query.listener_mut(),
            Slot::QueryListener.token(),
            Interest::READABLE,
        )
        .map_err(reg_err)?;
    let mut busy = Vec::new();
    for (i, s) in inputs.syslog.iter_mut().enumerate() {
        registry
            .register(s.socket_mut(), Slot::Syslog(i).token(), Interest::READABLE)
            .map_err(reg_err)?;
        busy.push(Slot::Syslog(i));
    }
    inputs.net.register(registry).map_err(reg_err)?;
    registry
        .register(
            inputs.intake.socket_mut(),
            Slot::IntakeSocket.token(),
            Interest::READABLE,
        )
        .map_err(reg_err)?;
    busy.push(Slot::IntakeSocket);
    let kmsg_fd = inputs.kmsg.as_ref().and_then(KmsgSource::poll_fd);
    if let Some(fd) = kmsg_fd {
        if let Err(e) =
            registry.register(&mut SourceFd(&fd), Slot::Kmsg.token(), Interest::READABLE)
        {
            let path = settings.kmsg.as_deref().unwrap_or(std::path::Path::new(""));
            // EPERM: the device has no poll (a container's /dev/null
            // bound over /dev/kmsg), so it is no kernel log.
            let why = if e.raw_os_error() == Some(nix::libc::EPERM) {
                format!("not a kernel log device: it cannot be polled ({e})")
            } else {
                format!("cannot register with poll: {e}")
            };
            warn(
                ring,
                format!(
                    "{}: {why}; kernel messages will not be collected",
                    path.display()
                ),
            );
            inputs.kmsg = None;
        }
    }
    Ok(busy)
}

/// The intake fds and TCP connections a re-executing predecessor was
/// reading, with their unfinished lines and frames.
fn resume_reexec_fds(state: &State, inputs: &mut Inputs, ring: &mut Ring, registry: &Registry) {
    for f in &state.intake_fds {
        match handover::take_fd(f.fd) {
            Some(fd) => inputs.intake.resume(fd, f.clone(), ring, registry),
            None => warn(
                ring,
                format!(
                    "re-exec: the fd for {:?} (fd {}) was not handed over; its unread lines are lost",
                    f.name, f.fd
                ),
            ),
        }
    }
    for c in &state.conns {
        if let Some(fd) = handover::take_fd(c.fd) {
            if let Err(e) = inputs
                .net
                .resume_conn(fd, c.peer, c.framer.clone(), registry)
            {
                warn(
                    ring,
                    format!(
                        "re-exec: cannot go on reading the tcp connection from {}: {e}",
                        c.peer
                    ),
                );
            }
        }
    }
}

/// The intake fds the service manager's fd store kept, with the unfinished
/// lines written at a clean stop; after a crash there are none, and at
/// most those lines are lost.
fn resume_stored_fds(
    stored_state: Option<OwnedFd>,
    stored_fds: Vec<(String, OwnedFd)>,
    intake: &mut IntakeSource,
    ring: &mut Ring,
    registry: &Registry,
) {
    let mut partial: Vec<IntakeFdState> = Vec::new();
    if let Some(fd) = stored_state {
        match State::read_fd(fd) {
            Ok(s) => partial = s.intake_fds,
            Err(e) => warn(
                ring,
                format!("fd store: {e}; unfinished lines of the stored fds are lost"),
            ),
        }
    }
    for (fdname, fd) in stored_fds {
        let name = handover::intake_source_of(&fdname).unwrap_or_default();
        let state = partial
            .iter()
            .find(|p| p.fdname.as_deref() == Some(fdname.as_str()))
            .cloned()
            .map(|p| IntakeFdState { fd: -1, ..p })
            .unwrap_or(IntakeFdState {
                fd: -1,
                name,
                fdname: None,
                partial: Vec::new(),
                skipping: false,
                pending: None,
            });
        let state = IntakeFdState {
            fdname: Some(fdname),
            ..state
        };
        intake.resume(fd, state, ring, registry);
    }
}
