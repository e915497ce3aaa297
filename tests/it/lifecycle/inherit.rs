//! memlogd's command line: its flags in Go style, sockets inherited from
//! the parent (`-fd-log`, `-fd-query`), and `-daemonize`, whose parent
//! must exit only once the daemon serves.

use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// A command that gets `fds` as the fd numbers paired with them, as
/// LinuxKit's init passes memlogd its sockets as fds 3 and 4.
fn with_fds(cmd: &mut Command, fds: &[(RawFd, RawFd)]) {
    let fds = fds.to_vec();
    // SAFETY: only fcntl, dup2 and close run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            use nix::libc;
            // Out of the way first: with other tests' fds around, a source
            // may be another one's target (3 -> 4 while 4 -> 3).
            let mut moved = Vec::new();
            for &(from, to) in &fds {
                let high = libc::fcntl(from, libc::F_DUPFD_CLOEXEC, 1000);
                if high < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                moved.push((high, to));
            }
            for (high, to) in moved {
                if libc::dup2(high, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(high);
            }
            Ok(())
        })
    };
}

/// A line passed through the intake at `intake`, read back from `query`.
fn round_trip(intake: &Path, query: &Path) {
    let name = unique("through");
    let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    send_fds(intake, name.as_bytes(), &[theirs.as_raw_fd()]).expect("send to the intake socket");
    drop(theirs);
    ours.write_all(b"it works\n").unwrap();
    drop(ours);
    dump_until(query, "the line through the intake", |entries| {
        entries
            .iter()
            .any(|e| e["source"] == name.as_str() && e["msg"] == "it works")
    });
}

/// The entries the query socket at `query` holds (memlogd's dump), read
/// until `pred` holds for them.
fn dump_until(query: &Path, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let dump = || {
        let mut c = std::os::unix::net::UnixStream::connect(query).unwrap();
        c.write_all(&[0]).unwrap();
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut c, &mut out).unwrap();
        parse_lines(&out)
    };
    poll(what, Duration::from_secs(10), dump, |entries| pred(entries))
}

/// Session id of process `pid`.
fn session_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After "pid (comm)": state ppid pgrp session ...
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[3].parse().unwrap()
}

/// `program --no-kmsg --runtime-dir runtime_dir -daemonize`, which must
/// succeed: what the parent printed.
fn daemonize(program: &Path, runtime_dir: &Path) -> Output {
    let started = Command::new(program)
        .args(["--no-kmsg", "--runtime-dir"])
        .arg(runtime_dir)
        .arg("-daemonize")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(started.status.success(), "{started:?}");
    started
}

#[test]
fn daemonize_exits_0_only_once_the_daemon_serves_and_leaves_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    // daemonize() returning at all means the daemon let go of
    // stdout/stderr.
    let started = daemonize(Path::new(RINGLOGD), dir.path());
    assert!(
        started.stdout.is_empty() && started.stderr.is_empty(),
        "{started:?}"
    );
    // No waiting: the moment the parent is gone, the sockets answer.
    let query = dir.path().join("memlogdq.sock");
    let intake = dir.path().join("linuxkit-external-logging.sock");
    assert!(std::os::unix::net::UnixStream::connect(&query).is_ok());
    let pid = pid_with_arg(dir.path());
    let daemon = Detached(pid);
    assert_eq!(session_of(pid), pid, "the daemon runs in its own session");
    round_trip(&intake, &query);
    assert_eq!(socket_mode(&intake), 0o600);
    daemon.stop();
    for p in [&query, &intake, &dir.path().join("log")] {
        assert!(!p.exists(), "{} left behind", p.display());
    }
}

/// The daemon `-daemonize` leaves in the background, started as `name` (a
/// link to the binary): its name in /proc/PID/comm, which ps, pgrep,
/// killall and start-stop-daemon --name go by.
fn daemonized_comm(name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join(name);
    std::os::unix::fs::symlink(RINGLOGD, &link).unwrap();
    daemonize(&link, dir.path());
    let daemon = Detached(pid_with_arg(dir.path()));
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", daemon.0)).unwrap();
    daemon.stop();
    comm.trim_end().to_owned()
}

#[test]
fn the_daemonized_daemon_keeps_the_name_it_was_started_as() {
    assert_eq!(daemonized_comm("ringlogd"), "ringlogd");
    // As exec names it: the file started, not the binary behind the link.
    assert_eq!(daemonized_comm("memlogd"), "memlogd");
}

/// The sockets LinuxKit's init binds for memlogd and hands down as fds,
/// bound in `dir`: the datagram intake and the listening query socket,
/// each with its path.
fn bind_init_sockets(dir: &Path) -> ((UnixDatagram, PathBuf), (UnixListener, PathBuf)) {
    let intake_path = dir.join("intake.sock");
    let query_path = dir.join("query.sock");
    (
        (UnixDatagram::bind(&intake_path).unwrap(), intake_path),
        (UnixListener::bind(&query_path).unwrap(), query_path),
    )
}

#[test]
fn inherited_sockets_with_daemonize_as_memlogd_gets_them_from_init() {
    let dir = tempfile::tempdir().unwrap();
    let ((intake, intake_path), (query, query_path)) = bind_init_sockets(dir.path());
    let mut cmd = ringlogd_command();
    cmd.args([
        "-fd-log",
        "3",
        "-fd-query",
        "4",
        "-daemonize",
        "-syslog-socket",
    ])
    .arg(dir.path().join("log"))
    .stdin(Stdio::null());
    with_fds(&mut cmd, &[(intake.as_raw_fd(), 3), (query.as_raw_fd(), 4)]);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    drop((intake, query));
    let daemon = Detached(pid_with_arg(dir.path()));
    round_trip(&intake_path, &query_path);
    daemon.stop();
    assert!(
        intake_path.exists() && query_path.exists(),
        "inherited sockets are never unlinked"
    );
    assert!(
        !dir.path().join("log").exists(),
        "the socket it bound itself is removed"
    );
}

#[test]
fn inherited_sockets_in_the_foreground() {
    let dir = tempfile::tempdir().unwrap();
    let ((intake, intake_path), (query, query_path)) = bind_init_sockets(dir.path());
    let syslog_path = dir.path().join("log");
    let syslog = UnixDatagram::bind(&syslog_path).unwrap();
    let mut cmd = ringlogd_command();
    cmd.args(["--fd-log", "3", "--fd-query", "4", "--fd-syslog", "5"])
        .stdin(Stdio::null());
    with_fds(
        &mut cmd,
        &[
            (intake.as_raw_fd(), 3),
            (query.as_raw_fd(), 4),
            (syslog.as_raw_fd(), 5),
        ],
    );
    let mut child = cmd.spawn().unwrap();
    drop((intake, query, syslog));
    assert!(wait_socket(&query_path));
    round_trip(&intake_path, &query_path);
    // The inherited /dev/log works too.
    let msg = unique("inherited-syslog");
    send_datagram(
        &syslog_path,
        format!("<13>Nov 21 23:40:10 t: {msg}").as_bytes(),
    );
    dump_until(&query_path, "the syslog message", |entries| {
        entries.iter().any(|e| e["msg"] == msg.as_str())
    });
    signal(child.id(), "TERM");
    assert!(wait_timeout(&mut child, Duration::from_secs(10)).success());
    for p in [&intake_path, &query_path, &syslog_path] {
        assert!(p.exists(), "{} was unlinked", p.display());
    }
}

#[test]
fn a_bad_inherited_fd_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let dgram = UnixDatagram::bind(dir.path().join("d.sock")).unwrap();
    let not_listening = std::os::unix::net::UnixStream::pair().unwrap().0;
    // (flags, fds to pass as which numbers, the error expected)
    type Case = (Vec<String>, Vec<(RawFd, RawFd)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            vec!["--fd-log".into(), "200".into()],
            vec![],
            "--fd-log 200: not an open file descriptor",
        ),
        (
            vec!["-fd-query".into(), "3".into()],
            vec![(dgram.as_raw_fd(), 3)],
            "--fd-query 3: a datagram socket, where a unix stream socket is needed",
        ),
        (
            vec!["-fd-query".into(), "3".into()],
            vec![(not_listening.as_raw_fd(), 3)],
            "--fd-query 3: the socket is not listening",
        ),
        (
            vec![
                "--fd-log".into(),
                "3".into(),
                "--fd-syslog".into(),
                "3".into(),
            ],
            vec![(dgram.as_raw_fd(), 3)],
            "fd 3 is given for two sockets",
        ),
        (
            vec!["--fd-log".into(), "0".into()],
            vec![],
            "--fd-log 0: not a socket",
        ),
    ];
    for (args, fds, want) in cases {
        let run = tempfile::tempdir().unwrap();
        let mut cmd = ringlogd_command();
        cmd.arg("--runtime-dir")
            .arg(run.path())
            .args(&args)
            .stdin(Stdio::null());
        with_fds(&mut cmd, &fds);
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(
            std::fs::read_dir(run.path()).unwrap().count(),
            0,
            "{args:?}: nothing bound"
        );
    }
}

#[test]
fn memlogds_own_command_line_works() {
    let dir = tempfile::tempdir().unwrap();
    let intake = dir.path().join("A");
    let query = dir.path().join("B");
    let mut child = ringlogd_command()
        .arg("-socket-log")
        .arg(&intake)
        .arg("-socket-query")
        .arg(&query)
        .args(["-max-lines", "10", "-max-line-len", "64"])
        .arg("-syslog-socket")
        .arg(dir.path().join("log"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_socket(&query));
    let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    send_fds(&intake, b"svc.out", &[theirs.as_raw_fd()]).unwrap();
    drop(theirs);
    for i in 0..14 {
        writeln!(ours, "line {i}").unwrap();
    }
    writeln!(ours, "{}", "y".repeat(100)).unwrap();
    drop(ours);
    let mut entries = dump_until(&query, "the cut last line", |entries| {
        entries.last().is_some_and(|e| e["truncated"] == true)
    });
    // Fair eviction: svc.out holds more than its share, so its oldest
    // lines went and the daemon's own start message stayed; the reader is
    // told so where they were.
    assert_eq!(entries[0]["msg"], "memlogd started");
    let note = entries.remove(1);
    assert_eq!(note["sd"]["evicted@ringlogd"]["count"], "6", "{note}");
    assert_eq!(entries.len(), 10, "-max-lines 10: {entries:?}");
    assert_eq!(entries[1]["msg"], "line 6");
    let last = &entries[9];
    assert_eq!(last["msg"].as_str().unwrap().len(), 64, "-max-line-len 64");
    assert_eq!(last["source"], "svc.out");
    signal(child.id(), "TERM");
    assert!(wait_timeout(&mut child, Duration::from_secs(10)).success());
}
