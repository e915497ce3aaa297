//! The event loop: one `mio` poll that owns every socket's registration,
//! dispatches readiness to the sources (syslog sockets, the fd intake and
//! its fds) and the query server, and handles signals and timers.
//!
//! Every fd is non-blocking and edge-triggered. A source reads at most a
//! budget of messages per turn and a client is written at most a budget of
//! bytes per turn; whatever stopped at its budget is resumed next turn
//! before the loop sleeps again, so one busy socket cannot starve the rest.

mod build;
mod handoff;
mod reload;
mod signals;
mod start;
mod token;

use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use nix::sys::signalfd::SignalFd;

use crate::config::{Loader, Settings};
use crate::control;
use crate::ingest;
use crate::notify::Notifier;
use crate::privileges::PidFile;
use crate::query::QueryServer;
use crate::record::{now_ns, Severity};
use crate::recorder::Recorder;
use crate::ring::Ring;
use crate::route::Routes;
use crate::scrape::{Scrape, ScrapeServer};
use crate::serving::Serving;
use crate::sockpath::BoundPath;
use crate::source::devlog::DevLogSource;
use crate::source::intake::{self, IntakeSource};
use crate::source::kmsg::KmsgSource;
use crate::source::net::NetSource;
use crate::source::Drain;
use crate::stats::Gauges;

pub use start::{run, Process, Start};
use token::Slot;

/// Datagrams (or kernel records) read from one source per turn.
const SOURCE_BUDGET: usize = 128;
/// Kernel records read before the loop starts, so the boot lines come
/// before anything that arrived while they were being read. Far more than
/// the usual kernel buffers hold (128 KiB to a few MiB, some thousands of
/// records); a larger backlog goes on in the loop, budgeted as any source.
const KMSG_STARTUP_BUDGET: usize = 1 << 20;

/// A problem the daemon runs on despite: on stderr for whoever started it,
/// and in the ring for whoever reads the log later.
fn warn(ring: &mut Ring, msg: String) {
    eprintln!("ringlogd: warning: {msg}");
    ingest::note(ring, Severity::Warning, msg);
}

/// Whether the loop goes on after an event.
enum Flow {
    Continue,
    /// Stop, with how the clean stop went: an error is the exit status.
    Stop(Result<(), String>),
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
    /// Writes complete captures to `--capture-dir`.
    recorder: Option<Recorder>,
    /// The `--metrics` listeners.
    scrape: ScrapeServer,
    /// Sources with something to read this turn: a readiness event, or a
    /// budget that ran out last turn.
    busy: Vec<Slot>,
    /// The query socket's path, removed when the daemon stops (unless
    /// handed over).
    query_path: Option<BoundPath>,
    /// The settings in force: those from the start, with what SIGHUP
    /// changed since.
    settings: Settings,
    /// Reads the configuration again on SIGHUP.
    loader: Option<Loader>,
    notifier: Option<Notifier>,
    /// Held for its drop, which removes the file when the daemon stops.
    _pidfile: Option<PidFile>,
    /// The program and arguments SIGUSR2 executes again.
    exe: Option<PathBuf>,
    argv: Vec<OsString>,
    /// The service manager's fd store holds the ring's memfd.
    ring_in_fdstore: bool,
    /// The intake fds' unfinished lines were taken from the fd store's
    /// `state` memfd, which is to be removed from it.
    fdstore_state_used: bool,
}

/// This machine's host name, for messages that carry none.
pub fn local_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

impl Daemon {
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
                if let Flow::Stop(saved) = self.on_event(event) {
                    return saved;
                }
            }
            // Before any intake fd is read: what a drop request counted.
            self.intake
                .close_dropped(&mut self.ring, self.poll.registry());
            // A source can be both left over from last turn and ready again.
            self.busy.sort_unstable();
            self.busy.dedup();
            for slot in std::mem::take(&mut self.busy) {
                if self.drain(slot) == Drain::More {
                    self.busy.push(slot);
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
            self.ring.tick_captures(now_ns());
            self.intake.flush_due(now, &mut self.ring);
            self.intake.resume_due(now);
            self.busy
                .extend(self.intake.take_ready().into_iter().filter_map(Slot::of));
            // After the sources, so what arrived this turn goes out in it.
            self.routes.pump(&mut self.ring, registry, now);
            self.query.gauges = Gauges {
                intake_fds_open: self.intake.open_fds() as u64,
                tcp_connections: self.net.open_connections() as u64,
                captures_written: self
                    .recorder
                    .as_ref()
                    .map(|r| r.counters)
                    .unwrap_or_default(),
            };
            if self.ring.next_seq() != before {
                self.query.ring_advanced();
            }
            self.query.run_pending(registry, &self.ring);
            self.query.expire(Instant::now(), registry);
            self.scrape.expire(Instant::now(), registry);
            self.carry_out_controls();
            self.record_captures(false);
            self.report_seq_mark();
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
            self.scrape.next_deadline(),
            self.recorder.as_ref().and_then(Recorder::next_deadline),
            self.ring.capture_deadline().map(|end_ns| {
                // Just past the end, so the capture is closed on waking.
                let left = end_ns.saturating_sub(now_ns()).max(0) as u64 + 1_000_000;
                Instant::now() + Duration::from_nanos(left)
            }),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// One readiness event, decoded once: signals and queries are handled
    /// now, a source goes on the busy list and is read after every event of
    /// this turn is in.
    fn on_event(&mut self, event: &mio::event::Event) -> Flow {
        let Some(slot) = Slot::of(event.token()) else {
            return Flow::Continue;
        };
        match slot {
            Slot::Signals => return self.on_signals(),
            Slot::QueryListener => self.query.accept(self.poll.registry()),
            Slot::Route(t) => self.routes.event(t, event),
            Slot::Metrics(t) => {
                let scrape = Scrape {
                    stats: &|| self.query.stats_json(&self.ring, None),
                    paused: self.ring.is_paused(),
                };
                self.scrape.event(t, self.poll.registry(), &scrape);
            }
            Slot::QueryClient(t) => {
                self.query
                    .client_event(t, event, self.poll.registry(), &self.ring)
            }
            source => self.busy.push(source),
        }
        Flow::Continue
    }

    /// Read what a source has, up to its budget.
    fn drain(&mut self, slot: Slot) -> Drain {
        let registry = self.poll.registry();
        match slot {
            Slot::Syslog(i) => match self.syslog.get_mut(i) {
                Some(s) => s.drain(&mut self.ring, SOURCE_BUDGET),
                None => Drain::Idle,
            },
            Slot::Kmsg => self.drain_kmsg(),
            Slot::NetListener(t) | Slot::NetConn(t) if self.net.owns(t) => {
                self.net.drain(t, &mut self.ring, registry, SOURCE_BUDGET)
            }
            Slot::IntakeSocket => {
                let drained =
                    self.intake
                        .drain_socket(&mut self.ring, registry, intake::SOCKET_BUDGET);
                // New fds may hold data already, and files raise no events.
                self.take_ready_intake_fds();
                drained
            }
            Slot::IntakeFd(t) if self.intake.owns_fd(t) => {
                self.intake.drain_fd(t, &mut self.ring, registry)
            }
            _ => Drain::Idle,
        }
    }

    /// Intake fds to read without waiting for an event: just received (data
    /// may be there already), or regular files, which raise none.
    fn take_ready_intake_fds(&mut self) {
        let ready = self.intake.take_ready();
        self.busy.extend(ready.into_iter().filter_map(Slot::of));
    }

    /// Write complete captures to the capture directory, a budget per turn;
    /// `finish` waits for the file being written (before a re-exec or a
    /// stop), so its capture is marked written in the ring.
    fn record_captures(&mut self, finish: bool) {
        let Some(r) = &mut self.recorder else {
            return;
        };
        let problems = if finish {
            r.finish(&mut self.ring)
        } else {
            r.tick(&mut self.ring)
        };
        for p in problems {
            warn(&mut self.ring, p);
        }
    }

    /// Where this daemon serves, for the line it prints once it does.
    fn serving(&mut self) -> Serving<'_> {
        Serving {
            syslog: self.syslog.iter().map(|s| s.handed().fd).collect(),
            query: self.query.listener_mut().as_raw_fd(),
            intake: self.intake.handed().fd,
            net: self.net.listening().collect(),
            kmsg: self.kmsg.as_ref().and(self.settings.kmsg.as_deref()),
            limits: self.ring.limits(),
        }
    }

    /// Carry out what query clients asked to change (pause, resume, clear,
    /// drop intake fds) and answer them; the query server only reads the
    /// requests, so changing the daemon's state stays here.
    fn carry_out_controls(&mut self) {
        let asks = self.query.take_controls();
        if asks.is_empty() {
            return;
        }
        let board = self.intake.board();
        for ask in asks {
            let outcome = control::apply(&mut self.ring, Some(&board), ask.control, &ask.requester);
            self.query.answer(ask.client, outcome);
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
