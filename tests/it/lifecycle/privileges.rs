//! `--user`, `--group` and `--pidfile`: every socket bound as root, then
//! every id dropped for good, and the pid where an init script looks.
//!
//! Switching user needs root (CI runs as root). Without it those tests
//! fail with the reason when `CI` is set, and otherwise skip, saying why.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::*;

/// `start` (the daemon's command) with `--runtime-dir dir` fails (exit 1)
/// with exactly `stderr`, before binding anything in `dir`.
fn assert_refused_before_binding(start: &mut Command, dir: &Path, stderr: &str) {
    let out = start
        .arg("--runtime-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), stderr);
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0, "nothing bound");
}

/// The `Uid:`/`Gid:`/`Groups:`/`CapEff:` lines of /proc/PID/status.
fn status_line(pid: u32, key: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn user_and_group_are_taken_for_good_once_every_socket_is_bound() {
    if !root_or_skip("user_and_group_are_taken_for_good_once_every_socket_is_bound") {
        return;
    }
    let pid_dir = tempfile::tempdir().unwrap();
    let pidfile = pid_dir.path().join("ringlogd.pid");
    let d = Daemon::start(&[
        "--user",
        "nobody",
        "--group",
        "daemon",
        "--pidfile",
        pidfile.to_str().unwrap(),
    ]);
    let pid = d.pid();
    // nobody is 65534 and daemon is group 1 in Debian's base passwd.
    d.wait_for("the switch", |e| {
        e.iter().any(|v| v["msg"] == "running as nobody (65534:1)")
    });
    assert_eq!(status_line(pid, "Uid"), "65534 65534 65534 65534");
    assert_eq!(status_line(pid, "Gid"), "1 1 1 1");
    assert_eq!(status_line(pid, "Groups"), "1");
    assert_eq!(status_line(pid, "CapEff"), "0000000000000000");
    // The sockets were bound while root, so they are root's.
    assert_eq!(std::fs::metadata(&d.query).unwrap().uid(), 0);
    assert_eq!(socket_mode(&d.query), 0o600);
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{pid}\n")
    );
    d.send(b"<14>t: after the switch");
    d.entry_with_msg("after the switch");
    assert!(d.stop().success());
}

#[test]
fn without_root_a_switch_is_refused_before_anything_is_bound() {
    if !root_or_skip("without_root_a_switch_is_refused_before_anything_is_bound") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    assert_refused_before_binding(
        Command::new(require("setpriv"))
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", RINGLOGD])
            .args(["--no-kmsg", "--user", "daemon"]),
        dir.path(),
        "ringlogd: cannot switch to daemon (1:1): ringlogd must start as root to change user or group\n",
    );
}

#[test]
fn an_unknown_user_stops_the_daemon_before_anything_is_bound() {
    let dir = tempfile::tempdir().unwrap();
    assert_refused_before_binding(
        ringlogd_command().args(["--user", "no-such-user-here"]),
        dir.path(),
        "ringlogd: --user no-such-user-here: no such user in /etc/passwd\n",
    );
}

#[test]
fn the_pidfile_names_the_background_daemon_under_daemonize() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("ringlogd.pid");
    let out = ringlogd_command()
        .arg("--runtime-dir")
        .arg(dir.path())
        .arg("--pidfile")
        .arg(&pidfile)
        .arg("-daemonize")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // Written before the parent returned.
    let written = std::fs::read_to_string(&pidfile).unwrap();
    let pid = pid_with_arg(dir.path());
    let daemon = Detached(pid);
    assert_eq!(written, format!("{pid}\n"));
    daemon.stop();
    assert!(!pidfile.exists(), "removed at exit");
}
