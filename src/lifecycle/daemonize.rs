//! `--daemonize`: the parent binds every socket, starts the daemon again in
//! the background with those sockets as inherited fds, and exits 0 only once
//! the background daemon serves them; if it fails, its error is on stderr
//! and the parent exits 1 and removes the socket files. (memlogd's parent
//! exits before its child is ready, so a boot script that logs right after
//! starting it can lose its first lines.)
//!
//! The hand-over travels in one environment variable naming the fd of each
//! socket and of a pipe; the background daemon writes one byte to that pipe
//! when it serves. Its command line is the parent's, unchanged, so every
//! flag means the same to both.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};

use crate::lifecycle::listen::{HandedFds, Listeners};

/// The environment variable that carries the hand-over.
pub const HANDOVER_ENV: &str = "RINGLOGD_HANDOVER";

/// What the background daemon received from its daemonizing parent.
#[derive(Debug)]
pub struct Handover {
    pub fds: HandedFds,
    ready: OwnedFd,
}

impl Handover {
    /// The hand-over this process was started with, if any. It is taken
    /// out of the environment so nothing started later inherits it.
    pub fn from_env() -> Result<Option<Handover>, String> {
        let Some(value) = std::env::var_os(HANDOVER_ENV) else {
            return Ok(None);
        };
        std::env::remove_var(HANDOVER_ENV);
        take_argv0_name();
        let value = value
            .into_string()
            .map_err(|v| format!("{HANDOVER_ENV}={v:?} is not text"))?;
        let (fds, ready) = decode(&value)?;
        if fcntl(borrow(ready), FcntlArg::F_GETFD) == Err(Errno::EBADF) {
            return Err(format!("{HANDOVER_ENV}: ready fd {ready} is not open"));
        }
        // SAFETY: the parent passed this fd for us alone to write to, and
        // it was just checked to be open; nothing else in this process
        // knows its number.
        let ready = unsafe { OwnedFd::from_raw_fd(ready) };
        let _ = fcntl(&ready, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
        Ok(Some(Handover { fds, ready }))
    }

    /// Tell the parent the daemon serves, then let go of its terminal:
    /// whoever waits for the parent's output must not wait for ours.
    pub fn ready(self) -> Result<(), String> {
        let mut pipe = File::from(self.ready);
        // A parent that is gone (killed by a boot timeout, say) cannot be
        // told; serving anyway beats taking logging down with it.
        let _ = pipe.write_all(b"R");
        drop(pipe);
        let null = File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| format!("cannot open /dev/null: {e}"))?;
        nix::unistd::dup2_stdin(&null)
            .and_then(|()| nix::unistd::dup2_stdout(&null))
            .and_then(|()| nix::unistd::dup2_stderr(&null))
            .map_err(|e| format!("cannot detach from the terminal: {e}"))
    }
}

/// The parent's side: start this program again in its own session with
/// `listeners` handed over, and return once it serves. The socket files are
/// then left for it to remove; on failure they are removed here.
pub fn start_background(mut listeners: Listeners) -> Result<(), String> {
    let fds = listeners.fds();
    let (read_end, write_end) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("cannot create a pipe: {e}"))?;
    let mut inherit: Vec<RawFd> = fds.syslog.clone();
    inherit.extend([fds.intake, fds.query, write_end.as_raw_fd()]);

    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| OsString::from("ringlogd"));
    let mut cmd = Command::new(own_executable()?);
    cmd.arg0(&argv0)
        .args(args)
        .env(HANDOVER_ENV, encode(&fds, write_end.as_raw_fd()))
        .stdin(Stdio::null());
    let clear_cloexec = move || -> io::Result<()> {
        nix::unistd::setsid()?;
        for &fd in &inherit {
            fcntl(borrow(fd), FcntlArg::F_SETFD(FdFlag::empty()))?;
        }
        Ok(())
    };
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe system calls (setsid, fcntl); it allocates nothing.
    unsafe { cmd.pre_exec(clear_cloexec) };
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the background daemon: {e}"))?;
    drop(write_end);

    let mut reply = [0u8; 1];
    let mut pipe = File::from(read_end);
    let got = loop {
        match pipe.read(&mut reply) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("waiting for the background daemon: {e}")),
        }
    };
    if got == 1 {
        listeners.release_paths();
        return Ok(());
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the background daemon: {e}"))?;
    Err(format!(
        "the background daemon stopped before it was ready ({status})"
    ))
}

/// The running program, even if its file was replaced since it started.
fn own_executable() -> Result<PathBuf, String> {
    let proc = Path::new("/proc/self/exe");
    if proc.exists() {
        return Ok(proc.to_owned());
    }
    std::env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))
}

/// Started from /proc/self/exe, the background daemon would be named `exe`
/// in /proc/PID/comm, which ps, pgrep, killall, start-stop-daemon --name
/// and the kernel's messages go by: take the name exec gives a program
/// started by path, argv[0]'s last component, as the parent had.
fn take_argv0_name() {
    use std::os::unix::ffi::OsStrExt;
    let Some(argv0) = std::env::args_os().next() else {
        return;
    };
    let Some(name) = Path::new(&argv0).file_name() else {
        return;
    };
    if let Ok(name) = std::ffi::CString::new(name.as_bytes()) {
        // The kernel keeps the first 15 bytes. A name not taken costs
        // nothing but the name.
        let _ = nix::sys::prctl::set_name(&name);
    }
}

fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: only for fcntl on a number this module owns or is about to
    // take; a closed number fails with EBADF, nothing worse.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// `ready=7 intake=3 query=4 syslog=5,6`
fn encode(fds: &HandedFds, ready: RawFd) -> String {
    let syslog: Vec<String> = fds.syslog.iter().map(ToString::to_string).collect();
    format!(
        "ready={ready} intake={} query={} syslog={}",
        fds.intake,
        fds.query,
        syslog.join(",")
    )
}

fn decode(value: &str) -> Result<(HandedFds, RawFd), String> {
    let bad = || format!("{HANDOVER_ENV}={value:?} is not a hand-over from ringlogd --daemonize");
    let (mut ready, mut intake, mut query, mut syslog) = (None, None, None, None);
    for field in value.split_whitespace() {
        let (key, v) = field.split_once('=').ok_or_else(bad)?;
        let num = |s: &str| s.parse::<RawFd>().ok().filter(|&n| n >= 0).ok_or_else(bad);
        match key {
            "ready" => ready = Some(num(v)?),
            "intake" => intake = Some(num(v)?),
            "query" => query = Some(num(v)?),
            "syslog" => {
                syslog = Some(
                    v.split(',')
                        .filter(|s| !s.is_empty())
                        .map(num)
                        .collect::<Result<Vec<_>, _>>()?,
                )
            }
            _ => return Err(bad()),
        }
    }
    match (ready, intake, query, syslog) {
        (Some(ready), Some(intake), Some(query), Some(syslog)) => Ok((
            HandedFds {
                syslog,
                intake,
                query,
            },
            ready,
        )),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handover_round_trips() {
        for syslog in [vec![], vec![5], vec![5, 6]] {
            let fds = HandedFds {
                syslog,
                intake: 3,
                query: 4,
            };
            assert_eq!(decode(&encode(&fds, 9)), Ok((fds, 9)));
        }
    }

    #[test]
    fn a_foreign_value_is_refused() {
        for v in ["", "ready=1", "ready=x intake=3 query=4 syslog=", "what=1"] {
            assert!(decode(v).is_err(), "{v}");
        }
    }
}
