//! The event loop: one `mio` poll that owns every socket's registration,
//! dispatches readiness to the sources and the query server, and handles
//! signals and timers.
//!
//! Every fd is non-blocking and edge-triggered. A source reads at most a
//! budget of messages per turn and a client is written at most a budget of
//! bytes per turn; whatever stopped at its budget is resumed next turn
//! before the loop sleeps again, so one busy socket cannot starve the rest.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::net::UnixListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::config::Settings;
use crate::parse::syslog::SyslogParser;
use crate::query::QueryServer;
use crate::record::{now_ns, Record};
use crate::ring::Ring;
use crate::sockpath::{self, SocketKind};
use crate::source::devlog::DevLogSource;
use crate::source::Drain;

const SIGNALS: Token = Token(0);
const QUERY_LISTENER: Token = Token(1);
/// Syslog sockets are `Token(SYSLOG_BASE + i)`.
const SYSLOG_BASE: usize = 1 << 8;
/// Query clients are `Token(QUERY_CLIENT_BASE + i)`.
const QUERY_CLIENT_BASE: usize = 1 << 20;
/// Datagrams read from one socket per turn.
const SOURCE_BUDGET: usize = 1024;

/// Severity codes used for the daemon's own entries.
const SEV_WARNING: u8 = 4;
const SEV_INFO: u8 = 6;

/// Store a message from the daemon itself.
pub fn log_internal(ring: &mut Ring, severity: u8, msg: impl Into<String>) {
    ring.ledger
        .input_mut(crate::record::Input::Internal)
        .received += 1;
    ring.push(&Record::internal(now_ns(), severity, msg));
}

/// This machine's host name, for messages that carry none.
pub fn local_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Bind everything `settings` asks for, then serve until SIGTERM or SIGINT.
/// Errors are one line for the user, e.g. a socket path already in use.
pub fn run(settings: &Settings) -> Result<(), String> {
    // Block the signals we handle before anything else, so they queue for
    // the signalfd instead of killing the process mid-write.
    let mut mask = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        mask.add(s);
    }
    mask.thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| format!("cannot create signalfd: {e}"))?;

    let mut ring = Ring::new(settings.limits);
    log_internal(&mut ring, SEV_INFO, "memlogd started");

    let parser = SyslogParser::new(local_hostname(), settings.max_line_len);
    let mut syslog = Vec::new();
    for path in &settings.syslog_sockets {
        syslog.push(DevLogSource::bind(path, parser.clone())?);
    }
    sockpath::prepare(&settings.query_socket, SocketKind::Stream)?;
    let (listener, _query_path) =
        sockpath::bind_with_mode(&settings.query_socket, 0o600, |p| UnixListener::bind(p))?;
    let mut query = QueryServer::new(listener, QUERY_CLIENT_BASE);

    let mut poll = Poll::new().map_err(|e| format!("cannot create poll: {e}"))?;
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

    let mut events = Events::with_capacity(1024);
    // Sources that stopped at their budget, to drain again next turn.
    let mut busy: Vec<usize> = (0..syslog.len()).collect();
    loop {
        let timeout = if !busy.is_empty() || query.has_pending() {
            Some(Duration::ZERO)
        } else {
            query
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()))
        };
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll failed: {e}"));
        }
        let before = ring.next_seq();
        for event in events.iter() {
            match event.token() {
                SIGNALS => {
                    while let Ok(Some(info)) = signals.read_signal() {
                        match Signal::try_from(info.ssi_signo as i32) {
                            Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => return Ok(()),
                            Ok(Signal::SIGHUP) => log_internal(
                                &mut ring,
                                SEV_WARNING,
                                "received SIGHUP: there is no configuration file to re-read",
                            ),
                            _ => {}
                        }
                    }
                }
                QUERY_LISTENER => query.accept(poll.registry()),
                t if query.owns(t) => query.client_event(t, event, poll.registry(), &ring),
                Token(t) if (SYSLOG_BASE..SYSLOG_BASE + syslog.len()).contains(&t) => {
                    let i = t - SYSLOG_BASE;
                    if !busy.contains(&i) {
                        busy.push(i);
                    }
                }
                _ => {}
            }
        }
        for i in std::mem::take(&mut busy) {
            if syslog[i].drain(&mut ring, SOURCE_BUDGET) == Drain::More {
                busy.push(i);
            }
        }
        if ring.next_seq() != before {
            query.ring_advanced(poll.registry(), &ring);
        }
        query.run_pending(poll.registry(), &ring);
        query.expire(Instant::now(), poll.registry());
    }
}
