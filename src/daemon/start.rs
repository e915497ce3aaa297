//! Starting: find out what this process was handed (a re-executing
//! predecessor's state, a `--daemonize` parent's sockets, socket
//! activation and the fd store) or bind what the settings ask for, then
//! build the daemon, give up root, and serve. The ring goes on from the
//! first of: the one handed over, the fd store's, the snapshot; else it
//! starts empty.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use super::Daemon;
use crate::config::{Loader, Settings};
use crate::handover::State;
use crate::ingest;
use crate::lifecycle::activation::{Activated, Stored};
use crate::lifecycle::daemonize::{self, Handover};
use crate::lifecycle::listen::Listeners;
use crate::lifecycle::reexec::REEXECUTED;
use crate::notify::Notifier;
use crate::privileges::{Identity, PidFile};
use crate::record::Severity;
use crate::ring::Ring;
use crate::serving;

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
    let reexecuted = reexec.is_some();
    let start = Start {
        reexec,
        stored,
        fdstore: notifier.is_some(),
        run_as: identity.as_ref().and_then(|id| id.uid).map(|u| u.as_raw()),
    };
    // Written as root, before --user gives that up; a start that fails
    // after this removes it again.
    let pidfile = match &settings.pidfile {
        // The pid is the same: the file is already right (and after --user
        // it may no longer be ours to write).
        Some(path) if reexecuted => Some(PidFile::adopt(path)),
        Some(path) => Some(PidFile::write(path)?),
        None => None,
    };
    let process = Process {
        exe,
        argv,
        loader,
        notifier,
        pidfile,
    };
    let mut daemon = Daemon::new(settings, listeners, start, process)?;
    // Every socket is bound and /dev/kmsg open: root is no longer needed.
    if let Some(id) = &identity {
        id.switch()?;
        ingest::note(
            &mut daemon.ring,
            Severity::Info,
            format!("running as {}", id.label),
        );
    }
    // Files are written by the user the daemon runs as, from now on.
    daemon.ready_state_files();
    daemon.tell_ready();
    // Before a daemonizing parent is told: the line goes to its stderr
    // while it waits, and the background daemon's is /dev/null after.
    if serving::wanted(daemon.settings.verbose) {
        eprintln!("{}", daemon.serving().line());
    }
    if let Some(h) = handover {
        h.ready()?;
    }
    if reexecuted {
        // What `ringlogd --reexec` waits for.
        ingest::note(
            &mut daemon.ring,
            Severity::Info,
            format!("{REEXECUTED} (pid {}): serving", std::process::id()),
        );
    }
    daemon.run()
}

/// What a daemon starts from besides its sockets.
#[derive(Default)]
pub struct Start {
    /// What a predecessor handed over by re-executing.
    pub reexec: Option<State>,
    /// What the systemd fd store kept.
    pub stored: Stored,
    /// Hand the ring and the intake fds to the systemd fd store.
    pub fdstore: bool,
    /// The uid `--user` switches to: files it wrote are trusted too.
    pub run_as: Option<u32>,
}

/// Where the ring came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RingFrom {
    Reexec,
    FdStore,
    Snapshot,
    Fresh,
}

/// What the daemon keeps of the process it runs in, besides its sockets.
pub struct Process {
    /// The program SIGUSR2 executes again, recorded before anything could
    /// replace the file, so an upgraded binary takes over.
    pub exe: Option<PathBuf>,
    pub argv: Vec<OsString>,
    /// Reads the configuration again on SIGHUP.
    pub loader: Option<Loader>,
    /// The service manager, if one is to be told.
    pub notifier: Option<Notifier>,
    pub pidfile: Option<PidFile>,
}

/// The ring to start with: the one handed over on re-exec, else the one in
/// the fd store, else the snapshot, else a new one. One that cannot be
/// taken over is a warning (returned), and a new ring is started.
pub(super) fn start_ring(
    settings: &Settings,
    handed: Option<OwnedFd>,
    stored: Option<OwnedFd>,
    owners: &[u32],
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
    } else if let Some(path) = settings.snapshot.as_deref() {
        match Ring::load_snapshot(path, limits, opts, owners) {
            Ok(Some((r, note))) => {
                let note = note.map(|n| format!("--snapshot {}: {n}", path.display()));
                return Ok((r, RingFrom::Snapshot, note));
            }
            Ok(None) => String::new(),
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
