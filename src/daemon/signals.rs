//! Signals, read from a signalfd in the loop like any other event: TERM
//! and INT stop cleanly, HUP re-reads the configuration, USR1 pauses or
//! resumes the ring, USR2 re-executes. With `--no-signal-control` the last
//! three are honoured from root alone, so a daemon running as an ordinary
//! user cannot be paused by that user's other processes.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::{warn, Daemon, Flow};
use crate::control::{self, Control};

/// Block the handled signals and open the signalfd they then queue on.
/// Done before anything else, so a signal that comes while the daemon
/// starts waits for the loop instead of killing the process mid-write.
pub(super) fn block() -> Result<SignalFd, String> {
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
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| format!("cannot create signalfd: {e}"))
}

impl Daemon {
    pub(super) fn on_signals(&mut self) -> Flow {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => {
                    let saved = self.save_on_stop();
                    if let Some(n) = &self.notifier {
                        let _ = n.stopping();
                    }
                    return Flow::Stop(saved);
                }
                Ok(sig @ (Signal::SIGUSR1 | Signal::SIGUSR2 | Signal::SIGHUP))
                    if !self.may_control(&info) =>
                {
                    self.ignore_signal(sig, &info)
                }
                Ok(Signal::SIGUSR2) => self.reexec(),
                Ok(Signal::SIGUSR1) => {
                    let control = if self.ring.is_paused() {
                        Control::Resume
                    } else {
                        Control::Pause
                    };
                    let requester =
                        format!("SIGUSR1 from uid {} (pid {})", info.ssi_uid, info.ssi_pid);
                    control::apply(&mut self.ring, None, control, &requester);
                }
                Ok(Signal::SIGHUP) => self.reload(),
                _ => {}
            }
        }
        Flow::Continue
    }

    /// Whether the sender of a control signal may change the daemon: anyone
    /// the kernel lets signal it, or with --no-signal-control root alone
    /// (the kernel, e.g. a terminal hang-up, counts as root).
    fn may_control(&self, info: &nix::libc::signalfd_siginfo) -> bool {
        !self.settings.no_signal_control || info.ssi_uid == 0
    }

    /// A control signal --no-signal-control refuses: say who sent it.
    fn ignore_signal(&mut self, sig: Signal, info: &nix::libc::signalfd_siginfo) {
        let what = match sig {
            Signal::SIGUSR1 => "pause/resume",
            Signal::SIGUSR2 => "re-exec",
            _ => "reload",
        };
        warn(
            &mut self.ring,
            format!(
                "ignored {} ({what}) from pid {}, uid {}: --no-signal-control honours control signals from root only",
                sig.as_str(),
                info.ssi_pid,
                info.ssi_uid
            ),
        );
    }
}
