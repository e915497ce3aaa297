//! The event loop: one `mio` poll that owns every socket's registration,
//! dispatches readiness to the sources (syslog sockets, the fd intake and
//! its fds) and the query server, and handles signals and timers.
//!
//! Every fd is non-blocking and edge-triggered. A source reads at most a
//! budget of messages per turn and a client is written at most a budget of
//! bytes per turn; whatever stopped at its budget is resumed next turn
//! before the loop sleeps again, so one busy socket cannot starve the rest.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::activation::{Activated, Stored};
use crate::config::{show, Loader, Settings};
use crate::daemonize::{self, Handover};
use crate::ledger::Gauges;
use crate::listen::Listeners;
use crate::notify::Notifier;
use crate::parse::kmsg::KmsgParser;
use crate::parse::multiline::Joiner;
use crate::parse::syslog::SyslogParser;
use crate::privileges::{Identity, PidFile};
use crate::query::request::Control;
use crate::query::QueryServer;
use crate::record::{now_ns, Record};
use crate::restart::{self, State};
use crate::ring::Ring;
use crate::route::Routes;
use crate::sockpath::BoundPath;
use crate::source::devlog::DevLogSource;
use crate::source::intake::{self, IntakeOptions, IntakeSource};
use crate::source::kmsg::KmsgSource;
use crate::source::net::NetSource;
use crate::source::Drain;

// Tokens, one constant or range per room. Query clients take everything
// from QUERY_CLIENT_BASE up, so it stays the highest.
const SIGNALS: Token = Token(0);
const QUERY_LISTENER: Token = Token(1);
const KMSG: Token = Token(2);
const INTAKE_SOCKET: Token = Token(3);
/// Syslog sockets are `Token(SYSLOG_BASE + i)`.
const SYSLOG_BASE: usize = 1 << 8;
/// UDP sockets and TCP listeners are `Token(NET_LISTENER_BASE + i)`.
const NET_LISTENER_BASE: usize = 1 << 12;
/// Fds received on the intake socket are `Token(INTAKE_FD_BASE + i)`, with
/// `i` below `--max-fds` (at most 1 << 20).
const INTAKE_FD_BASE: usize = 1 << 20;
/// TCP connections are `Token(NET_CONN_BASE + i)`, i < --tcp-max-conns.
const NET_CONN_BASE: usize = 1 << 24;
/// Routes are `Token(ROUTE_BASE + i)`, one per `--route`.
const ROUTE_BASE: usize = 1 << 28;
/// Query clients are `Token(QUERY_CLIENT_BASE + i)`.
const QUERY_CLIENT_BASE: usize = 1 << 30;
/// Datagrams (or kernel records) read from one source per turn.
const SOURCE_BUDGET: usize = 128;
/// Kernel records read before the loop starts, so the boot lines come
/// before anything that arrived while they were being read. Far more than
/// the usual kernel buffers hold (128 KiB to a few MiB, some thousands of
/// records); a larger backlog goes on in the loop, budgeted as any source.
const KMSG_STARTUP_BUDGET: usize = 1 << 20;

/// Severity codes used for the daemon's own entries.
const SEV_ERR: u8 = 3;
const SEV_WARNING: u8 = 4;
const SEV_INFO: u8 = 6;

/// Store a message from the daemon itself.
pub fn log_internal(ring: &mut Ring, severity: u8, msg: impl Into<String>) {
    ring.ledger
        .input_mut(crate::record::Input::Internal)
        .received += 1;
    ring.push(&Record::internal(now_ns(), severity, msg));
}

/// A problem the daemon runs on despite: on stderr for whoever started it,
/// and in the ring for whoever reads the log later.
fn warn(ring: &mut Ring, msg: String) {
    eprintln!("ringlogd: warning: {msg}");
    log_internal(ring, SEV_WARNING, msg);
}

/// This machine's host name, for messages that carry none.
pub fn local_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Bind everything `settings` asks for (or take what socket activation
/// handed in), then serve until SIGTERM or SIGINT; under `--daemonize`,
/// hand the sockets to a background daemon and return once it serves.
/// `loader` is what SIGHUP re-reads. Errors are one line for the user, e.g.
/// a socket path already in use.
pub fn run(settings: Settings, loader: Option<Loader>) -> Result<(), String> {
    // Before anything is bound: an unknown user must not leave sockets.
    let identity = Identity::resolve(settings.user.as_deref(), settings.group.as_deref())?;
    if let Some(id) = &identity {
        id.check_can_switch()?;
    }
    // Recorded before anything could replace the file: SIGUSR2 executes
    // this path again, so an upgraded binary takes over.
    let exe = std::env::current_exe().ok();
    let argv: Vec<OsString> = std::env::args_os().collect();
    // A predecessor that re-executed handed everything over.
    let reexec = State::from_env()?;
    let handover = match reexec {
        Some(_) => None,
        None => Handover::from_env()?,
    };
    let mut activated = Activated::from_env()?;
    let stored = activated
        .as_mut()
        .map(|a| std::mem::take(&mut a.stored))
        .unwrap_or_default();
    let fresh = reexec.is_none() && handover.is_none();
    if settings.daemonize && fresh && activated.is_some() {
        return Err(
            "--daemonize and socket activation do not mix: a service manager keeps ringlogd in the foreground"
                .into(),
        );
    }
    let listeners = match &reexec {
        Some(state) => Listeners::from_state(state)?,
        None => Listeners::open(&settings, handover.as_ref().map(|h| &h.fds), activated)?,
    };
    if settings.daemonize && fresh {
        return daemonize::start_background(listeners);
    }
    if let Some(addr) = reexec.as_ref().and_then(|s| s.notify_socket.as_ref()) {
        std::env::set_var("NOTIFY_SOCKET", addr);
    }
    // A service manager that cannot be told is no reason not to serve.
    let notifier = Notifier::from_env().unwrap_or_else(|e| {
        eprintln!("ringlogd: warning: {e}; readiness will not be reported");
        None
    });
    let start = Start {
        reexec,
        stored,
        fdstore: notifier.is_some(),
    };
    let mut daemon = Daemon::new(&settings, listeners, start)?;
    daemon.exe = exe;
    daemon.argv = argv;
    // Every socket is bound and /dev/kmsg open: root is no longer needed.
    daemon.pidfile = match &settings.pidfile {
        // The pid is the same: the file is already right (and after --user
        // it may no longer be ours to write).
        Some(path) if daemon.reexecuted => Some(PidFile::adopt(path)),
        Some(path) => Some(PidFile::write(path)?),
        None => None,
    };
    if let Some(id) = &identity {
        id.switch()?;
        log_internal(
            &mut daemon.ring,
            SEV_INFO,
            format!("running as {}", id.label),
        );
    }
    daemon.settings = settings;
    daemon.loader = loader;
    if let Some(n) = &notifier {
        daemon.fill_fdstore(n);
        if let Err(e) = n.ready("serving") {
            warn(
                &mut daemon.ring,
                format!("cannot tell the service manager ringlogd is ready: {e}"),
            );
        }
    }
    daemon.notifier = notifier;
    if let Some(h) = handover {
        h.ready()?;
    }
    if daemon.reexecuted {
        // What `ringlogd --reexec` waits for.
        log_internal(
            &mut daemon.ring,
            SEV_INFO,
            format!("{REEXECUTED} (pid {}): serving", std::process::id()),
        );
    }
    daemon.run()
}

/// The start of the entry a re-executed daemon logs once it serves.
pub const REEXECUTED: &str = "re-executed";
/// The start of the entry a daemon logs when it could not re-execute.
pub const REEXEC_FAILED: &str = "cannot re-execute";

/// What a daemon starts from besides its sockets.
#[derive(Default)]
pub struct Start {
    /// What a predecessor handed over by re-executing.
    pub reexec: Option<State>,
    /// What the systemd fd store kept.
    pub stored: Stored,
    /// Hand the ring and the intake fds to the systemd fd store.
    pub fdstore: bool,
}

/// Where the ring came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RingFrom {
    Reexec,
    FdStore,
    Snapshot,
    Fresh,
}

/// The ring to start with: the one handed over on re-exec, else the one in
/// the fd store, else the snapshot, else a new one. One that cannot be
/// taken over is a warning (returned), and a new ring is started.
fn start_ring(
    settings: &Settings,
    handed: Option<OwnedFd>,
    stored: Option<OwnedFd>,
) -> Result<(Ring, RingFrom, Option<String>), String> {
    let (limits, opts) = (settings.limits, settings.ring);
    let refused = if let Some(fd) = handed {
        match Ring::adopt(fd, limits, opts) {
            Ok(r) => return Ok((r, RingFrom::Reexec, None)),
            Err(e) => format!("cannot go on with the ring handed over on re-exec: {e}"),
        }
    } else if let Some(fd) = stored {
        match Ring::adopt(fd, limits, opts) {
            Ok(r) => return Ok((r, RingFrom::FdStore, None)),
            Err(e) => {
                format!("cannot go on with the ring kept in the service manager's fd store: {e}")
            }
        }
    } else if let Some(path) = settings.snapshot.as_deref().filter(|p| p.exists()) {
        match Ring::load_snapshot(path, limits, opts) {
            Ok(r) => return Ok((r, RingFrom::Snapshot, None)),
            Err(e) => format!(
                "--snapshot {}: refused: {e}; it is replaced at the next clean stop",
                path.display()
            ),
        }
    } else {
        String::new()
    };
    let ring =
        Ring::with_options(limits, opts).map_err(|e| format!("cannot create the ring: {e}"))?;
    let warning = (!refused.is_empty()).then(|| format!("{refused}; starting with an empty ring"));
    Ok((ring, RingFrom::Fresh, warning))
}

/// Execute `exe` with `argv` in this process, the state memfd's number in
/// the environment. Returns only if that failed. The signal mask is kept,
/// so a signal that arrives meanwhile waits for the successor's signalfd.
fn exec(exe: &std::path::Path, argv: &[OsString], state_fd: std::os::fd::RawFd) -> String {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |s: &[u8]| CString::new(s).map_err(|_| "an argument holds a NUL byte".to_owned());
    let prepare = || -> Result<(CString, Vec<CString>, Vec<CString>), String> {
        let path = c(exe.as_os_str().as_bytes())?;
        let args = argv
            .iter()
            .map(|a| c(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut env = Vec::new();
        for (k, v) in std::env::vars_os() {
            if k == restart::REEXEC_ENV {
                continue;
            }
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            env.push(c(&kv)?);
        }
        env.push(c(format!("{}={state_fd}", restart::REEXEC_ENV).as_bytes())?);
        Ok((path, args, env))
    };
    match prepare() {
        Ok((path, args, env)) => match nix::unistd::execve(&path, &args, &env) {
            Err(e) => e.to_string(),
            Ok(never) => match never {},
        },
        Err(e) => e,
    }
}

/// Whether the loop goes on after an event.
enum Flow {
    Continue,
    Stop,
}

/// Everything the running daemon owns. The one place that holds the poll
/// registry: sources and the query server are handed it, never keep it.
pub struct Daemon {
    poll: Poll,
    signals: SignalFd,
    ring: Ring,
    syslog: Vec<DevLogSource>,
    /// The kernel's log; `None` when off, unavailable, or finished.
    kmsg: Option<KmsgSource>,
    net: NetSource,
    intake: IntakeSource,
    query: QueryServer,
    routes: Routes,
    /// Sources with something to read this turn: a readiness event, or a
    /// budget that ran out last turn.
    busy: Vec<Token>,
    _query_path: Option<BoundPath>,
    /// The settings in force: those from the start, with what SIGHUP
    /// changed since.
    settings: Settings,
    /// Reads the configuration again on SIGHUP.
    loader: Option<Loader>,
    notifier: Option<Notifier>,
    pidfile: Option<PidFile>,
    /// This process was started by its predecessor's re-exec.
    reexecuted: bool,
    /// The program and arguments SIGUSR2 executes again.
    exe: Option<PathBuf>,
    argv: Vec<OsString>,
    /// The service manager's fd store holds the ring's memfd.
    ring_in_fdstore: bool,
    /// The intake fds' unfinished lines were taken from the fd store's
    /// `state` memfd, which is to be removed from it.
    fdstore_state_used: bool,
}

impl Daemon {
    /// Block the handled signals, start the ring, and register every
    /// socket of `listeners` for the sources and queries `settings` ask for.
    pub fn new(settings: &Settings, listeners: Listeners, start: Start) -> Result<Daemon, String> {
        // Block the signals we handle before anything else, so they queue
        // for the signalfd instead of killing the process mid-write.
        let mut mask = SigSet::empty();
        for s in [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGUSR1,
            Signal::SIGUSR2,
        ] {
            mask.add(s);
        }
        mask.thread_block()
            .map_err(|e| format!("cannot block signals: {e}"))?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| format!("cannot create signalfd: {e}"))?;

        let Start {
            reexec,
            stored,
            fdstore,
        } = start;
        let Stored {
            ring: stored_ring,
            state: stored_state,
            intake_fds: stored_fds,
        } = stored;
        let handed_ring = reexec
            .as_ref()
            .and_then(|s| s.ring)
            .and_then(restart::take_fd);
        let (mut ring, from, refused) = start_ring(settings, handed_ring, stored_ring)?;
        let host = local_hostname();
        ring.set_local_host(host.clone());
        let held = ring.len();
        match from {
            RingFrom::Reexec => {}
            RingFrom::FdStore => log_internal(
                &mut ring,
                SEV_INFO,
                format!("memlogd started; went on with the {held} entries the service manager's fd store kept"),
            ),
            RingFrom::Snapshot => log_internal(
                &mut ring,
                SEV_INFO,
                format!(
                    "memlogd started; loaded {held} entries from {}",
                    settings.snapshot.as_deref().unwrap_or(std::path::Path::new("")).display()
                ),
            ),
            RingFrom::Fresh => log_internal(&mut ring, SEV_INFO, "memlogd started"),
        }
        if let Some(w) = refused {
            warn(&mut ring, w);
        }
        let kept = from != RingFrom::Fresh;

        let parser = SyslogParser::new(host, settings.max_line_len);
        let Listeners {
            syslog: syslog_listeners,
            intake,
            query: query_listener,
            udp: handed_udp,
            tcp: handed_tcp,
        } = listeners;
        let mut syslog = Vec::new();
        for listener in syslog_listeners {
            syslog.push(DevLogSource::new(listener, parser.clone())?);
        }
        let handed_kmsg = reexec
            .as_ref()
            .and_then(|s| s.kmsg)
            .and_then(restart::take_fd);
        let mut kmsg = settings.kmsg.as_deref().and_then(|path| {
            let parser = KmsgParser::new(local_hostname(), settings.max_line_len);
            match handed_kmsg {
                Some(fd) => Some(KmsgSource::inherited(path, fd.into(), parser)),
                None => KmsgSource::open(path, parser)
                    .map_err(|e| warn(&mut ring, e))
                    .ok(),
            }
        });
        if let Some(k) = &mut kmsg {
            if kept {
                k.resume(ring.kmsg_resume().as_ref());
            }
        }
        // On re-exec the network sockets are the ones handed over; the
        // addresses in the settings are bound again only by a restart.
        let mut net_settings = settings.net.clone();
        if reexec.is_some() {
            net_settings.udp.clear();
            net_settings.tcp.clear();
        }
        let mut net = NetSource::bind(
            &net_settings,
            (handed_udp, handed_tcp),
            parser.clone(),
            settings.max_line_len,
            NET_LISTENER_BASE,
            NET_CONN_BASE,
        )?;
        // With port 0 this is the only way to learn the port.
        if reexec.is_none() {
            for (proto, addr) in net.listening() {
                log_internal(&mut ring, SEV_INFO, format!("listening on {proto} {addr}"));
            }
        }
        let joiner = settings
            .multiline
            .as_ref()
            .map(|m| Joiner::new(m, settings.max_line_len))
            .transpose()?;
        let mut intake = IntakeSource::new(
            intake,
            IntakeOptions {
                max_fds: settings.max_fds,
                max_line_len: settings.max_line_len,
                level_prefix: settings.level_prefix,
            },
            joiner,
            INTAKE_FD_BASE,
            &mut ring,
        );
        if fdstore {
            intake.use_fdstore();
        }
        // From the oldest entry: a route started with the daemon forwards
        // everything from boot on; after a re-exec, from where it was.
        let route_progress = match (&reexec, from) {
            (Some(s), RingFrom::Reexec) => s.routes.clone(),
            _ => Vec::new(),
        };
        let routes = Routes::new(
            &settings.routes,
            ROUTE_BASE,
            ring.first_seq(),
            &route_progress,
            local_hostname(),
        )?;
        let (query_limits, cut) = crate::query::limits::fit_fd_limit(
            crate::query::limits::ClientLimits {
                total: settings.query_max_clients,
                per_uid: settings.query_max_clients_per_uid,
                fd_bound: false,
            },
            settings.max_fds + settings.net.tcp_max_conns,
        );
        if let Some(why) = cut {
            warn(&mut ring, why);
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
        let query_path = query_listener.path;

        let poll = Poll::new().map_err(|e| format!("cannot create poll: {e}"))?;
        let registry = poll.registry();
        let reg_err = |e: std::io::Error| format!("cannot register with poll: {e}");
        registry
            .register(
                &mut SourceFd(&signals.as_raw_fd()),
                SIGNALS,
                Interest::READABLE,
            )
            .map_err(reg_err)?;
        registry
            .register(query.listener_mut(), QUERY_LISTENER, Interest::READABLE)
            .map_err(reg_err)?;
        for (i, s) in syslog.iter_mut().enumerate() {
            registry
                .register(s.socket_mut(), Token(SYSLOG_BASE + i), Interest::READABLE)
                .map_err(reg_err)?;
        }
        net.register(registry).map_err(reg_err)?;
        registry
            .register(intake.socket_mut(), INTAKE_SOCKET, Interest::READABLE)
            .map_err(reg_err)?;
        // Anything queued before registration raised no edge: read it now.
        let mut busy: Vec<Token> = (0..syslog.len()).map(|i| Token(SYSLOG_BASE + i)).collect();
        busy.push(INTAKE_SOCKET);
        if let Some(fd) = kmsg.as_ref().and_then(KmsgSource::poll_fd) {
            if let Err(e) = registry.register(&mut SourceFd(&fd), KMSG, Interest::READABLE) {
                let path = settings.kmsg.as_deref().unwrap_or(std::path::Path::new(""));
                // EPERM: the device has no poll (a container's /dev/null
                // bound over /dev/kmsg), so it is no kernel log.
                let why = if e.raw_os_error() == Some(nix::libc::EPERM) {
                    format!("not a kernel log device: it cannot be polled ({e})")
                } else {
                    format!("cannot register with poll: {e}")
                };
                warn(
                    &mut ring,
                    format!(
                        "{}: {why}; kernel messages will not be collected",
                        path.display()
                    ),
                );
                kmsg = None;
            }
        }
        // The fds a predecessor was reading go on from where it was.
        let mut fdstore_state_used = false;
        if let Some(state) = &reexec {
            for f in &state.intake_fds {
                match restart::take_fd(f.fd) {
                    Some(fd) => intake.resume(fd, f.clone(), &mut ring, registry),
                    None => warn(
                        &mut ring,
                        format!(
                            "re-exec: the fd for {:?} (fd {}) was not handed over; its unread lines are lost",
                            f.name, f.fd
                        ),
                    ),
                }
            }
            for c in &state.conns {
                if let Some(fd) = restart::take_fd(c.fd) {
                    if let Err(e) = net.resume_conn(fd, c.peer, c.framer.clone(), registry) {
                        warn(
                            &mut ring,
                            format!(
                                "re-exec: cannot go on reading the tcp connection from {}: {e}",
                                c.peer
                            ),
                        );
                    }
                }
            }
        }
        if !stored_fds.is_empty() || stored_state.is_some() {
            // Unfinished lines, written at a clean stop; after a crash
            // there are none, and at most those lines are lost.
            let mut partial: Vec<restart::IntakeFdState> = Vec::new();
            if let Some(fd) = stored_state {
                fdstore_state_used = true;
                match State::read_fd(fd) {
                    Ok(s) => partial = s.intake_fds,
                    Err(e) => warn(
                        &mut ring,
                        format!("fd store: {e}; unfinished lines of the stored fds are lost"),
                    ),
                }
            }
            for (fdname, fd) in stored_fds {
                let name = restart::intake_source_of(&fdname).unwrap_or_default();
                let state = partial
                    .iter()
                    .find(|p| p.fdname.as_deref() == Some(fdname.as_str()))
                    .cloned()
                    .map(|p| restart::IntakeFdState { fd: -1, ..p })
                    .unwrap_or(restart::IntakeFdState {
                        fd: -1,
                        name,
                        fdname: None,
                        partial: Vec::new(),
                        skipping: false,
                        pending: None,
                    });
                let state = restart::IntakeFdState {
                    fdname: Some(fdname),
                    ..state
                };
                intake.resume(fd, state, &mut ring, registry);
            }
        }
        busy.extend(intake.take_ready());
        if let Some(k) = &mut kmsg {
            if k.drain(&mut ring, KMSG_STARTUP_BUDGET) == Drain::More {
                busy.push(KMSG);
            }
            if k.is_done() {
                kmsg = None;
            }
        }
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
            busy,
            _query_path: query_path,
            settings: settings.clone(),
            loader: None,
            notifier: None,
            pidfile: None,
            reexecuted: reexec.is_some(),
            exe: None,
            argv: Vec::new(),
            ring_in_fdstore: match from {
                RingFrom::FdStore => true,
                RingFrom::Reexec => reexec.as_ref().is_some_and(|s| s.ring_in_fdstore),
                _ => false,
            },
            fdstore_state_used,
        })
    }

    /// Serve until SIGTERM or SIGINT.
    pub fn run(mut self) -> Result<(), String> {
        let mut events = Events::with_capacity(1024);
        loop {
            if let Err(e) = self.poll.poll(&mut events, self.timeout()) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(format!("poll failed: {e}"));
            }
            let before = self.ring.next_seq();
            for event in events.iter() {
                if let Flow::Stop = self.on_event(event) {
                    return Ok(());
                }
            }
            // A source can be both left over from last turn and ready again.
            self.busy.sort_unstable();
            self.busy.dedup();
            for token in std::mem::take(&mut self.busy) {
                if self.drain(token) == Drain::More {
                    self.busy.push(token);
                }
            }
            if let Some(n) = &self.notifier {
                let failed = self.intake.sync_fdstore(
                    |name, fd| n.store_fd(name, fd),
                    |name| {
                        let _ = n.remove_fd(name);
                    },
                );
                for f in failed {
                    warn(&mut self.ring, f);
                }
            }
            let registry = self.poll.registry();
            let now = Instant::now();
            self.net.tick(now, &mut self.ring, registry);
            self.intake.flush_due(now, &mut self.ring);
            // After the sources, so what arrived this turn goes out in it.
            self.routes.pump(&mut self.ring, registry, now);
            self.ring.ledger.gauges = Gauges {
                intake_fds_open: self.intake.open_fds() as u64,
                tcp_connections: self.net.open_connections() as u64,
            };
            if self.ring.next_seq() != before {
                self.query.ring_advanced();
            }
            self.query.run_pending(registry, &mut self.ring);
            self.query.expire(Instant::now(), registry);
        }
    }

    /// How long the next poll may sleep: not at all while work is left over,
    /// else until the next deadline.
    fn timeout(&self) -> Option<Duration> {
        if !self.busy.is_empty() || self.query.has_pending() || self.routes.has_more() {
            return Some(Duration::ZERO);
        }
        [
            self.query.next_deadline(),
            self.net.next_deadline(),
            self.intake.next_deadline(),
            self.routes.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|d| d.saturating_duration_since(Instant::now()))
    }

    fn on_event(&mut self, event: &mio::event::Event) -> Flow {
        match event.token() {
            SIGNALS => return self.on_signals(),
            QUERY_LISTENER => self.query.accept(self.poll.registry()),
            t if self.routes.owns(t) => self.routes.event(t, event),
            t if self.query.owns(t) => {
                self.query
                    .client_event(t, event, self.poll.registry(), &self.ring)
            }
            t => {
                if self.is_source(t) {
                    self.busy.push(t);
                }
            }
        }
        Flow::Continue
    }

    fn on_signals(&mut self) -> Flow {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => {
                    self.save_on_stop();
                    if let Some(n) = &self.notifier {
                        let _ = n.stopping();
                    }
                    return Flow::Stop;
                }
                Ok(Signal::SIGUSR2) => self.reexec(),
                Ok(Signal::SIGUSR1) => {
                    let control = if self.ring.is_paused() {
                        Control::Resume
                    } else {
                        Control::Pause
                    };
                    crate::control::apply(&mut self.ring, control);
                }
                Ok(Signal::SIGHUP) => self.reload(),
                _ => {}
            }
        }
        Flow::Continue
    }

    /// Hand the ring's memfd to the service manager's fd store, unless it
    /// is there already, and drop a `state` memfd used at this start.
    fn fill_fdstore(&mut self, n: &Notifier) {
        if self.fdstore_state_used {
            let _ = n.remove_fd(restart::STATE_FDNAME);
        }
        if self.ring_in_fdstore {
            return;
        }
        let Some(fd) = self.ring.memfd() else {
            warn(
                &mut self.ring,
                "the ring is not in a memfd: the service manager's fd store cannot keep it across a restart".into(),
            );
            return;
        };
        // An older ring a failed start left there goes first.
        let _ = n.remove_fd(restart::RING_FDNAME);
        match n.store_fd(restart::RING_FDNAME, fd) {
            Ok(()) => self.ring_in_fdstore = true,
            Err(e) => warn(
                &mut self.ring,
                format!("cannot hand the ring to the service manager's fd store: {e}"),
            ),
        }
    }

    /// A clean stop: write the snapshot, and under the fd store leave the
    /// intake fds' unfinished lines there for the next start.
    fn save_on_stop(&mut self) {
        if let Some(n) = &self.notifier {
            let mut fds = self.intake.hand_over();
            fds.retain(|f| f.fdname.is_some());
            for f in &mut fds {
                f.fd = -1;
            }
            // Only fds with something unfinished need a word.
            fds.retain(|f| !f.partial.is_empty() || f.skipping || f.pending.is_some());
            if fds.is_empty() {
                if self.fdstore_state_used {
                    let _ = n.remove_fd(restart::STATE_FDNAME);
                }
                return self.save_snapshot();
            }
            let state = State {
                version: restart::STATE_VERSION,
                intake_fds: fds,
                ..State::default()
            };
            let _ = n.remove_fd(restart::STATE_FDNAME);
            if let Err(e) = state.to_memfd().and_then(|fd| {
                n.store_fd(restart::STATE_FDNAME, std::os::fd::AsFd::as_fd(&fd))
                    .map_err(|e| e.to_string())
            }) {
                warn(
                    &mut self.ring,
                    format!("cannot leave the intake fds' unfinished lines in the fd store: {e}"),
                );
            }
        }
        self.save_snapshot();
    }

    fn save_snapshot(&mut self) {
        if let Some(path) = self.settings.snapshot.clone() {
            if let Err(e) = self.ring.save_snapshot(&path) {
                warn(
                    &mut self.ring,
                    format!("--snapshot {}: cannot write it: {e}", path.display()),
                );
            }
        }
    }

    /// SIGUSR2: execute the program again in this process, handing over
    /// the ring, every socket, every intake fd with its unfinished line,
    /// and the TCP connections. Query clients are closed. If it cannot be
    /// done, say so and run on as before.
    fn reexec(&mut self) {
        if let Err(e) = self.try_reexec() {
            let msg = format!("{REEXEC_FAILED}: {e}; running on");
            eprintln!("ringlogd: {msg}");
            log_internal(&mut self.ring, SEV_ERR, msg);
            if let Some(n) = &self.notifier {
                let _ = n.ready("serving");
            }
        }
    }

    fn try_reexec(&mut self) -> Result<(), String> {
        let exe = self
            .exe
            .clone()
            .ok_or("the path of the running program is not known")?;
        // The successor reads the configuration anew: one that no longer
        // loads would stop it, so it is checked here first.
        if let Some(loader) = &self.loader {
            loader.load()?;
        }
        let Some(ring_fd) = self.ring.memfd().map(restart::raw) else {
            return Err("the ring is not in a memfd, so it cannot be handed over".into());
        };
        let (udp, tcp) = self.net.listener_fds();
        let state = State {
            version: restart::STATE_VERSION,
            ring: Some(ring_fd),
            syslog: self.syslog.iter().map(DevLogSource::handed).collect(),
            intake: Some(self.intake.handed()),
            query: Some(restart::SocketFd {
                fd: self.query.listener_mut().as_raw_fd(),
                path: self._query_path.as_ref().map(|p| p.path().to_owned()),
            }),
            udp,
            tcp,
            kmsg: self.kmsg.as_ref().and_then(KmsgSource::poll_fd),
            intake_fds: self.intake.hand_over(),
            conns: self.net.hand_over(),
            routes: self.routes.progress(),
            notify_socket: self.notifier.as_ref().map(|n| n.address().to_owned()),
            ring_in_fdstore: self.ring_in_fdstore,
        };
        let memfd = state.to_memfd()?;
        let mut fds = state.fds();
        fds.push(memfd.as_raw_fd());
        if let Some(n) = &self.notifier {
            let _ = n.reloading();
        }
        restart::set_cloexec(&fds, false)?;
        let err = exec(&exe, &self.argv, memfd.as_raw_fd());
        // Still here: nothing was handed over.
        let _ = restart::set_cloexec(&fds, true);
        Err(format!("{}: {err}", exe.display()))
    }

    /// SIGHUP: read the configuration file again and apply what can change
    /// while the ring is kept (its limits, the intake's `<N>` prefixes, the
    /// TCP connection limits); say what else changed and waits for a
    /// restart. A file that no longer loads changes nothing.
    fn reload(&mut self) {
        let Some(loader) = self.loader.as_ref().filter(|l| l.config_path().is_some()) else {
            log_internal(
                &mut self.ring,
                SEV_WARNING,
                "received SIGHUP: there is no configuration file (--config) to re-read",
            );
            return;
        };
        let path = loader
            .config_path()
            .unwrap_or(std::path::Path::new(""))
            .display()
            .to_string();
        if let Some(n) = &self.notifier {
            let _ = n.reloading();
        }
        match loader.load() {
            Err(e) => warn(
                &mut self.ring,
                format!("SIGHUP: {e}; nothing changed, the running settings stay"),
            ),
            Ok(loaded) => self.apply(&path, loaded.settings),
        }
        if let Some(n) = &self.notifier {
            let _ = n.ready("serving");
        }
    }

    /// Apply the live part of `new` and report every change.
    fn apply(&mut self, path: &str, new: Settings) {
        let changes = show::changes(&self.settings, &new);
        let text = |c: &[&show::Change]| {
            c.iter()
                .map(|c| format!("{} {} -> {}", c.key, c.old, c.new))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (live, later): (Vec<_>, Vec<_>) = changes.iter().partition(|c| c.is_live());
        let s = &mut self.settings;
        if s.limits != new.limits {
            s.limits = new.limits;
            self.ring.set_limits(new.limits);
        }
        if s.level_prefix != new.level_prefix {
            s.level_prefix = new.level_prefix;
            self.intake.set_level_prefix(new.level_prefix);
        }
        if (s.net.tcp_max_conns, s.net.tcp_idle_timeout)
            != (new.net.tcp_max_conns, new.net.tcp_idle_timeout)
        {
            s.net.tcp_max_conns = new.net.tcp_max_conns;
            s.net.tcp_idle_timeout = new.net.tcp_idle_timeout;
            self.net.set_limits(
                new.net.tcp_max_conns,
                new.net.tcp_idle_timeout,
                Instant::now(),
            );
        }
        let msg = if live.is_empty() {
            format!("re-read {path}: nothing to apply")
        } else {
            format!("re-read {path}: applied {}", text(&live))
        };
        log_internal(&mut self.ring, SEV_INFO, msg);
        if !later.is_empty() {
            warn(
                &mut self.ring,
                format!(
                    "re-read {path}: not applied until ringlogd restarts: {}",
                    text(&later)
                ),
            );
        }
    }

    fn is_source(&self, t: Token) -> bool {
        (t == KMSG && self.kmsg.is_some())
            || (SYSLOG_BASE..SYSLOG_BASE + self.syslog.len()).contains(&t.0)
            || self.net.owns(t)
            || t == INTAKE_SOCKET
            || self.intake.owns_fd(t)
    }

    /// Read what a source has, up to its budget.
    fn drain(&mut self, t: Token) -> Drain {
        match t.0 {
            i if (SYSLOG_BASE..SYSLOG_BASE + self.syslog.len()).contains(&i) => {
                self.syslog[i - SYSLOG_BASE].drain(&mut self.ring, SOURCE_BUDGET)
            }
            _ if t == KMSG => self.drain_kmsg(),
            _ if self.net.owns(t) => {
                self.net
                    .drain(t, &mut self.ring, self.poll.registry(), SOURCE_BUDGET)
            }
            _ if t == INTAKE_SOCKET => {
                let drained = self.intake.drain_socket(
                    &mut self.ring,
                    self.poll.registry(),
                    intake::SOCKET_BUDGET,
                );
                // New fds may hold data already, and files raise no events.
                self.busy.extend(self.intake.take_ready());
                drained
            }
            _ if self.intake.owns_fd(t) => {
                self.intake
                    .drain_fd(t, &mut self.ring, self.poll.registry())
            }
            _ => Drain::Idle,
        }
    }

    fn drain_kmsg(&mut self) -> Drain {
        let Some(k) = &mut self.kmsg else {
            return Drain::Idle;
        };
        let drained = k.drain(&mut self.ring, SOURCE_BUDGET);
        if k.is_done() {
            // Dropping it closes its fd, which takes it out of the poll.
            self.kmsg = None;
        }
        drained
    }
}
