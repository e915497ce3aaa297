//! `logwrite`: run a command and log its output through the fd intake,
//! as LinuxKit's `logwrite` does with memlogd.
//!
//! `logwrite [-socket PATH] [-n NAME] CMD ARGS...` creates two socketpairs
//! and passes one end of each to the daemon: stdout's first, as `NAME.out`,
//! then stderr's, as `NAME` (NAME defaults to CMD as typed). It runs CMD
//! with stdin from /dev/null, copies what CMD writes both into those
//! socketpairs and to its own stdout/stderr, and exits with CMD's status
//! (255 if a signal killed it, and says which on stderr).
//!
//! Unlike memlogd's, when the daemon is not there it prints one warning and
//! still runs CMD, whose output then goes to the console only: a boot script
//! must not fail because logging is down.

use std::ffi::OsString;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};

use clap::{CommandFactory, Parser};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};

use crate::config::{go_style_args, DEFAULT_INTAKE_SOCKET};

/// Exit status when CMD cannot be found, as shells use.
const EXIT_NOT_FOUND: i32 = 127;
/// Exit status when CMD was found but cannot be run.
const EXIT_CANNOT_RUN: i32 = 126;
/// Exit status when a signal killed CMD, as memlogd's logwrite reports it.
const EXIT_SIGNALED: i32 = 255;

/// Run a command and send its output to ringlogd (or LinuxKit's memlogd),
/// stdout as NAME.out and stderr as NAME, and to the console.
#[derive(Parser, Debug)]
#[command(name = "logwrite", version)]
pub struct LogwriteArgs {
    /// The daemon's fd intake socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_INTAKE_SOCKET)]
    pub socket: PathBuf,
    /// The name to log under: stdout as NAME.out, stderr as NAME.
    /// [default: CMD as typed]
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: Option<OsString>,
    /// The command to run, and its arguments.
    #[arg(value_name = "CMD", required = true)]
    pub command: Vec<OsString>,
}

impl LogwriteArgs {
    /// Parse `args`: flags (Go-style `-socket PATH` and `-n NAME` included)
    /// up to the first word that is not one, then the command, whose own
    /// arguments are never read as ours. On a usage error clap prints it
    /// and exits 2.
    pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> LogwriteArgs {
        LogwriteArgs::parse_from(split_command(args.into_iter().collect()))
    }
}

/// `[prog, flags.., CMD, ARGS..]` as `[prog, flags.. (GNU style), --, CMD,
/// ARGS..]`, so that nothing after CMD is taken for a flag of ours.
fn split_command(args: Vec<OsString>) -> Vec<OsString> {
    let takes_value = |name: &str| matches!(name, "socket" | "n" | "name");
    let mut i = 1;
    let mut after_dashes = false;
    while i < args.len() {
        let Some(s) = args[i].to_str() else { break };
        if s == "--" {
            after_dashes = true;
            break;
        }
        if !s.starts_with('-') || s == "-" {
            break;
        }
        let body = s.trim_start_matches('-');
        i += if !body.contains('=') && takes_value(body) {
            2
        } else {
            1
        };
    }
    let i = i.min(args.len());
    let flags = go_style_args(args[..i].iter().cloned(), &LogwriteArgs::command());
    let rest = if after_dashes { i + 1 } else { i };
    let mut out = flags;
    out.push(OsString::from("--"));
    out.extend(args.into_iter().skip(rest));
    out
}

/// Run logwrite; returns the process exit code.
pub fn run(args: &LogwriteArgs) -> i32 {
    let program = &args.command[0];
    let name = args.name.clone().unwrap_or_else(|| program.clone());
    let mut out_name = name.clone();
    out_name.push(".out");
    let (to_log_out, to_log_err) = pass_to_daemon(args, &out_name, &name);

    let mut child = match Command::new(program)
        .args(&args.command[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            let line = format!("logwrite: cannot run {}: {e}\n", program.to_string_lossy());
            eprint!("{line}");
            if let Some(mut log) = to_log_err {
                let _ = log.write_all(line.as_bytes());
            }
            return match e.kind() {
                io::ErrorKind::NotFound => EXIT_NOT_FOUND,
                _ => EXIT_CANNOT_RUN,
            };
        }
    };
    let out = child.stdout.take().expect("stdout was piped");
    let err = child.stderr.take().expect("stderr was piped");
    let copy_out = std::thread::spawn(move || tee(out, io::stdout(), to_log_out));
    let copy_err = std::thread::spawn(move || tee(err, io::stderr(), to_log_err));
    let status = child.wait();
    // The copies end when every writer of the pipes is gone, which may be
    // after the command itself (a background child of it holding them).
    let _ = copy_out.join();
    let _ = copy_err.join();
    match status {
        Ok(s) => exit_code(program, s),
        Err(e) => {
            eprintln!("logwrite: waiting for {}: {e}", program.to_string_lossy());
            1
        }
    }
}

/// The exit code that reports `status`, saying on stderr which signal
/// killed the command if one did.
fn exit_code(program: &OsString, status: ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    let signal = status.signal().unwrap_or(0);
    let name = nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("signal {signal}"));
    eprintln!(
        "logwrite: {} was killed by {name} ({signal})",
        program.to_string_lossy()
    );
    EXIT_SIGNALED
}

/// Pass the daemon one end of a socketpair for stdout (`out_name`) and
/// one for stderr (`err_name`), in that order; our ends to write to. When
/// the daemon cannot be reached, one warning and `None`: the output then
/// goes to the console only.
fn pass_to_daemon(
    args: &LogwriteArgs,
    out_name: &OsString,
    err_name: &OsString,
) -> (Option<UnixStream>, Option<UnixStream>) {
    let warn = |e: &dyn std::fmt::Display| {
        eprintln!(
            "logwrite: cannot pass output to the log daemon at {}: {e}; {} runs with its output on the console only",
            args.socket.display(),
            args.command[0].to_string_lossy()
        );
    };
    let sender = match UnixDatagram::unbound() {
        Ok(s) => s,
        Err(e) => {
            warn(&e);
            return (None, None);
        }
    };
    let mut ends = [None, None];
    for (slot, name) in ends.iter_mut().zip([out_name, err_name]) {
        match send_end(&sender, args, name) {
            Ok(ours) => *slot = Some(ours),
            Err(e) => {
                warn(&e);
                break;
            }
        }
    }
    let [out, err] = ends;
    (out, err)
}

/// One socketpair: pass one end to the daemon under `name`, keep the other.
fn send_end(sender: &UnixDatagram, args: &LogwriteArgs, name: &OsString) -> io::Result<UnixStream> {
    let (ours, theirs) = UnixStream::pair()?;
    let addr = UnixAddr::new(args.socket.as_path()).map_err(io::Error::from)?;
    pass_fd(sender, &addr, name.as_bytes(), &theirs)?;
    // `theirs` is closed here: the daemon holds its own copy now.
    Ok(ours)
}

/// Pass `fd` under `name` to the intake socket at `intake`, from `sender`:
/// one datagram, the name as its payload, as LinuxKit's init does.
pub fn pass_fd(
    sender: &UnixDatagram,
    intake: &UnixAddr,
    name: &[u8],
    fd: &impl AsRawFd,
) -> io::Result<()> {
    let fds = [fd.as_raw_fd()];
    sendmsg(
        sender.as_raw_fd(),
        &[IoSlice::new(name)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        Some(intake),
    )?;
    Ok(())
}

/// Copy everything from `from` to `console` and to `log`, until `from`
/// ends. Whichever of the two stops taking bytes is let go; the other goes
/// on.
fn tee(mut from: impl Read, mut console: impl Write, mut log: Option<UnixStream>) {
    let mut buf = vec![0u8; 64 << 10];
    let mut console_ok = true;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if console_ok {
            console_ok = console
                .write_all(&buf[..n])
                .and_then(|()| console.flush())
                .is_ok();
        }
        if let Some(l) = &mut log {
            if l.write_all(&buf[..n]).is_err() {
                log = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &[&str]) -> LogwriteArgs {
        LogwriteArgs::try_parse_from(split_command(v.iter().map(OsString::from).collect())).unwrap()
    }

    #[test]
    fn memlogd_style_flags_stop_at_the_command() {
        let a = parse(&[
            "logwrite", "-socket", "/s", "-n", "svc", "ls", "-n", "-socket", "x",
        ]);
        assert_eq!(a.socket, PathBuf::from("/s"));
        assert_eq!(a.name, Some("svc".into()));
        assert_eq!(a.command, ["ls", "-n", "-socket", "x"]);
    }

    #[test]
    fn gnu_style_flags_and_defaults() {
        let a = parse(&["logwrite", "--socket=/s", "--name", "svc", "--", "-weird"]);
        assert_eq!(a.socket, PathBuf::from("/s"));
        assert_eq!(a.name, Some("svc".into()));
        assert_eq!(a.command, ["-weird"]);
        let a = parse(&["logwrite", "-n=svc", "echo", "--name", "x"]);
        assert_eq!(a.name, Some("svc".into()));
        assert_eq!(a.command, ["echo", "--name", "x"]);
        let a = parse(&["logwrite", "sh", "-c", "true"]);
        assert_eq!(a.socket, PathBuf::from(DEFAULT_INTAKE_SOCKET));
        assert_eq!(a.name, None);
    }

    #[test]
    fn a_command_is_required() {
        let args = split_command(vec!["logwrite".into(), "-n".into(), "x".into()]);
        assert!(LogwriteArgs::try_parse_from(args).is_err());
    }
}
