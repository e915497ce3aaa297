//! logwrite against the real daemon (and against a bare socket, to check
//! the wire protocol memlogd expects): output to the console and the ring,
//! names, exit status, signals, and a daemon that is not there.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::support::*;

fn logwrite(socket: &Path, args: &[&str]) -> Output {
    Command::new(LOGWRITE)
        .arg("-socket")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run logwrite")
}

/// A daemon, and `logwrite -n NAME command…` run against it with a unique
/// NAME made from `label`: the daemon, NAME, and what logwrite did.
fn named_run(label: &str, command: &[&str]) -> (Daemon, String, Output) {
    let d = Daemon::start(&[]);
    let name = unique(label);
    let out = logwrite(&d.intake, &[&["-n", name.as_str()], command].concat());
    (d, name, out)
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

#[test]
fn stdout_and_stderr_go_to_the_console_and_to_the_ring() {
    let (d, name, out) = named_run(
        "lw",
        &["sh", "-c", "echo o1; echo e1 >&2; echo o2; printf partial"],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "o1\no2\npartial");
    assert_eq!(text(&out.stderr), "e1\n");
    assert_eq!(
        d.wait_lines(&format!("{name}.out"), 3),
        ["o1", "o2", "partial"]
    );
    assert_eq!(d.wait_lines(&name, 1), ["e1"]);
    d.assert_ledger_balances("fd");
}

#[test]
fn the_daemon_gets_stdout_first_as_name_out_then_stderr_as_name() {
    use nix::sys::socket::{getsockopt, recvmsg, sockopt, ControlMessageOwned, MsgFlags, SockType};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intake.sock");
    let bare = UnixDatagram::bind(&path).unwrap();
    let out = logwrite(&path, &["-n", "demo", "true"]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    for want in ["demo.out", "demo"] {
        let mut buf = [0u8; 64];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([RawFd; 4]);
        let msg = recvmsg::<()>(
            bare.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT,
        )
        .expect("logwrite sent a datagram");
        let fds: Vec<RawFd> = msg
            .cmsgs()
            .unwrap()
            .flat_map(|c| match c {
                ControlMessageOwned::ScmRights(fds) => fds,
                _ => vec![],
            })
            .collect();
        let len = msg.bytes;
        assert_eq!(&buf[..len], want.as_bytes(), "payload: the name, no NUL");
        assert_eq!(fds.len(), 1, "one fd per datagram");
        // SAFETY: the fd was just received by this process.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) };
        assert_eq!(
            getsockopt(&fd, sockopt::SockType).unwrap(),
            SockType::Stream,
            "a socketpair end"
        );
    }
}

#[test]
fn the_name_defaults_to_the_command_as_typed() {
    let d = Daemon::start(&[]);
    assert!(logwrite(&d.intake, &["sh", "-c", "echo plain"])
        .status
        .success());
    assert!(
        logwrite(&d.intake, &["/bin/sh", "-c", "echo full; echo oops >&2"])
            .status
            .success()
    );
    assert_eq!(d.wait_lines("sh.out", 1), ["plain"]);
    assert_eq!(d.wait_lines("/bin/sh.out", 1), ["full"]);
    assert_eq!(d.wait_lines("/bin/sh", 1), ["oops"]);
}

#[test]
fn gnu_style_flags_work_too() {
    let d = Daemon::start(&[]);
    let name = unique("gnu");
    let out = Command::new(LOGWRITE)
        .arg(format!("--socket={}", d.intake.display()))
        .args(["--name", &name, "--", "echo", "-n", "flag-like"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "flag-like", "-n is echo's, not ours");
    assert_eq!(d.wait_lines(&format!("{name}.out"), 1), ["flag-like"]);
}

#[test]
fn the_exit_status_is_the_commands() {
    let d = Daemon::start(&[]);
    for code in [0, 1, 7, 254] {
        let out = logwrite(&d.intake, &["sh", "-c", &format!("exit {code}")]);
        assert_eq!(out.status.code(), Some(code));
        assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    }
}

#[test]
fn a_command_killed_by_a_signal_exits_255_and_says_which() {
    let (d, name, out) = named_run("killed", &["sh", "-c", "echo before; kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(255));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("SIGTERM"), "{err}");
    assert_eq!(d.wait_lines(&format!("{name}.out"), 1), ["before"]);
}

#[test]
fn without_the_daemon_one_warning_and_the_command_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("no-daemon.sock");
    let out = logwrite(&absent, &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "the command ran and its status is kept"
    );
    assert_eq!(text(&out.stdout), "out\n");
    let err: Vec<&str> = text(&out.stderr).lines().collect();
    assert_eq!(
        err.len(),
        2,
        "one warning, then the command's own stderr: {err:?}"
    );
    let warning = err.iter().find(|l| l.starts_with("logwrite:")).unwrap();
    assert!(warning.contains(absent.to_str().unwrap()), "{warning}");
    assert!(err.contains(&"err"));
}

#[test]
fn the_commands_stdin_is_dev_null() {
    let d = Daemon::start(&[]);
    // logwrite's own stdin stays open: the command must not wait on it.
    let mut child = Command::new(LOGWRITE)
        .arg("-socket")
        .arg(&d.intake)
        .args(["sh", "-c", "cat; readlink /proc/self/fd/0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_timeout(&mut child, std::time::Duration::from_secs(10));
    assert!(status.success());
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!(out, "/dev/null\n");
}

#[test]
fn a_command_that_does_not_exist_exits_127_and_says_so_in_the_ring() {
    let (d, name, out) = named_run("missing", &["/no/such/program"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(text(&out.stderr).contains("/no/such/program"));
    let lines = d.wait_lines(&name, 1);
    assert!(
        lines[0].contains("cannot run /no/such/program"),
        "{lines:?}"
    );
}
