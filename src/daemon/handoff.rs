//! What a daemon leaves for whoever comes after it: the service manager
//! told it serves and handed the ring's memfd; at a clean stop the
//! snapshot and the intake fds' unfinished lines; on SIGUSR2 every socket,
//! fd and cursor, handed to the same program executed again in this
//! process. A step that fails is said in the ring, never silently.

use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::time::Instant;

use super::{warn, Daemon};
use crate::handover::{self, State};
use crate::ingest;
use crate::lifecycle::reexec::{self, REEXEC_FAILED};
use crate::record::Severity;
use crate::ring::{SeqMark, SeqMarkNews};
use crate::source::devlog::DevLogSource;
use crate::source::kmsg::KmsgSource;

/// Execute `exe` with `argv` in this process, the state memfd's number in
/// the environment. Returns only if that failed. The signal mask is kept,
/// so a signal that arrives meanwhile waits for the successor's signalfd.
pub(super) fn exec(
    exe: &std::path::Path,
    argv: &[OsString],
    state_fd: std::os::fd::RawFd,
) -> String {
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
            if k == handover::REEXEC_ENV {
                continue;
            }
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            env.push(c(&kv)?);
        }
        env.push(c(format!("{}={state_fd}", handover::REEXEC_ENV).as_bytes())?);
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

impl Daemon {
    /// Under a service manager: hand it the ring's memfd (unless its fd
    /// store has it already), drop a `state` memfd used at this start, and
    /// say the daemon serves.
    pub(super) fn tell_ready(&mut self) {
        let Some(n) = &self.notifier else {
            return;
        };
        if self.fdstore_state_used {
            let _ = n.remove_fd(handover::STATE_FDNAME);
        }
        if !self.ring_in_fdstore {
            match self.ring.memfd() {
                None => warn(
                    &mut self.ring,
                    "the ring is not in a memfd: the service manager's fd store cannot keep it across a restart".into(),
                ),
                Some(fd) => {
                    // An older ring a failed start left there goes first.
                    let _ = n.remove_fd(handover::RING_FDNAME);
                    match n.store_fd(handover::RING_FDNAME, fd) {
                        Ok(()) => self.ring_in_fdstore = true,
                        Err(e) => warn(
                            &mut self.ring,
                            format!("cannot hand the ring to the service manager's fd store: {e}"),
                        ),
                    }
                }
            }
        }
        if let Err(e) = n.ready("serving") {
            warn(
                &mut self.ring,
                format!("cannot tell the service manager ringlogd is ready: {e}"),
            );
        }
    }

    /// A clean stop: write the snapshot, and under the fd store leave the
    /// intake fds' unfinished lines there for the next start. A snapshot
    /// that could not be written is the error returned.
    pub(super) fn save_on_stop(&mut self) -> Result<(), String> {
        self.record_captures(true);
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
                    let _ = n.remove_fd(handover::STATE_FDNAME);
                }
                return self.save_snapshot();
            }
            let state = State {
                version: handover::STATE_VERSION,
                intake_fds: fds,
                ..State::default()
            };
            let _ = n.remove_fd(handover::STATE_FDNAME);
            if let Err(e) = state.to_memfd().and_then(|fd| {
                n.store_fd(handover::STATE_FDNAME, std::os::fd::AsFd::as_fd(&fd))
                    .map_err(|e| e.to_string())
            }) {
                warn(
                    &mut self.ring,
                    format!("cannot leave the intake fds' unfinished lines in the fd store: {e}"),
                );
            }
        }
        self.save_snapshot()
    }

    /// Write the snapshot, then set the sequence mark to the exact next
    /// number. A failed save is an error entry, sent on by the routes if
    /// they can take it now, and returned: what the ring held since the
    /// last snapshot is lost, and whoever stopped the daemon must know.
    pub(super) fn save_snapshot(&mut self) -> Result<(), String> {
        let Some(path) = self.settings.snapshot.clone() else {
            return Ok(());
        };
        if let Err(e) = self.ring.save_snapshot(&path) {
            let msg = format!("--snapshot {}: {e}", path.display());
            ingest::note(&mut self.ring, Severity::Err, msg.clone());
            self.routes
                .pump(&mut self.ring, self.poll.registry(), Instant::now());
            return Err(msg);
        }
        // A mark left where it was is above every number given: the next
        // start skips the rest of the block, and loses nothing.
        let _ = self.ring.settle_seq_mark();
        Ok(())
    }

    /// Once the daemon runs as the user it stays: remove what a save that
    /// crashed left, and start keeping the sequence mark. A directory that
    /// is not safe to write in is said now, not only at the stop.
    pub(super) fn ready_state_files(&mut self) {
        let Some(path) = self.settings.snapshot.clone() else {
            return;
        };
        let mark = SeqMark::beside(&path);
        for file in [path.as_path(), mark.path()] {
            match crate::private_file::remove_stale(file) {
                Ok(removed) => {
                    for p in removed {
                        let msg = format!(
                            "removed {}, left by a save that did not finish",
                            p.display()
                        );
                        ingest::note(&mut self.ring, Severity::Info, msg);
                    }
                }
                Err(e) => {
                    let msg = format!(
                        "--snapshot {}: {e}; it cannot be saved there",
                        path.display()
                    );
                    warn(&mut self.ring, msg);
                    // Both live in the one directory: said once.
                    break;
                }
            }
        }
        self.ring.arm_seq_mark();
        self.report_seq_mark();
    }

    /// Say what happened to the sequence mark, if anything.
    pub(super) fn report_seq_mark(&mut self) {
        match self.ring.seq_mark_news() {
            Some(SeqMarkNews::Failed(msg)) => {
                eprintln!("ringlogd: error: {msg}");
                ingest::note(&mut self.ring, Severity::Err, msg);
            }
            Some(SeqMarkNews::Recovered(msg)) => ingest::note(&mut self.ring, Severity::Info, msg),
            None => {}
        }
    }

    /// SIGUSR2: execute the program again in this process, handing over
    /// the ring, every socket, every intake fd with its unfinished line,
    /// and the TCP connections. Query clients are closed. If it cannot be
    /// done, or the program would not run (checked first), say so and run
    /// on as before.
    pub(super) fn reexec(&mut self) {
        if let Err(e) = self.try_reexec() {
            let msg = format!("{REEXEC_FAILED}: {e}; running on");
            eprintln!("ringlogd: {msg}");
            ingest::note(&mut self.ring, Severity::Err, msg);
            if let Some(n) = &self.notifier {
                let _ = n.ready("serving");
            }
        }
    }

    pub(super) fn try_reexec(&mut self) -> Result<(), String> {
        let exe = self
            .exe
            .clone()
            .ok_or("the path of the running program is not known")?;
        reexec::check_successor(&exe, reexec::SUCCESSOR_CHECK_LIMIT)?;
        // The successor reads the configuration anew: one that no longer
        // loads would stop it, so it is checked here first.
        if let Some(loader) = &self.loader {
            loader.load().map_err(|e| e.replace('\n', "; "))?;
        }
        self.record_captures(true);
        let Some(ring_fd) = self.ring.memfd().map(handover::raw) else {
            return Err("the ring is not in a memfd, so it cannot be handed over".into());
        };
        let (udp, tcp) = self.net.listener_fds();
        let state = State {
            version: handover::STATE_VERSION,
            ring: Some(ring_fd),
            syslog: self.syslog.iter().map(DevLogSource::handed).collect(),
            intake: Some(self.intake.handed()),
            query: Some(handover::SocketFd {
                fd: self.query.listener_mut().as_raw_fd(),
                path: self.query_path.as_ref().map(|p| p.path().to_owned()),
            }),
            udp,
            tcp,
            kmsg: self.kmsg.as_ref().and_then(KmsgSource::poll_fd),
            intake_fds: self.intake.hand_over(),
            conns: self.net.hand_over(),
            routes: self.routes.progress(),
            notify_socket: self.notifier.as_ref().map(|n| n.address().to_owned()),
            ring_in_fdstore: self.ring_in_fdstore,
            metrics: self.scrape.listener_fds(),
        };
        let memfd = state.to_memfd()?;
        let mut fds = state.fds();
        fds.push(memfd.as_raw_fd());
        if let Some(n) = &self.notifier {
            let _ = n.reloading();
        }
        handover::set_cloexec(&fds, false)?;
        let err = exec(&exe, &self.argv, memfd.as_raw_fd());
        // Still here: nothing was handed over.
        let _ = handover::set_cloexec(&fds, true);
        Err(format!("{}: {err}", exe.display()))
    }
}
