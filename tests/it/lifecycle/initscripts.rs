//! The init scripts for systems without systemd: the sysvinit / busybox
//! script run by dash and by busybox sh (start, status, reload, stop, as
//! an init system would call it), and the OpenRC script's syntax.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::*;

const SYSV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/sysvinit/ringlogd");
const OPENRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/openrc/ringlogd");

/// The sysv script run by `shell` with `action`, on this build of ringlogd
/// and a configuration file that keeps everything in `dir`.
fn script(shell: &[&str], dir: &Path, action: &str) -> Output {
    let mut cmd = Command::new(shell[0]);
    cmd.args(&shell[1..])
        .arg(SYSV)
        .arg(action)
        .env("RINGLOGD", RINGLOGD)
        .env("RINGLOGD_CONFIG", dir.join("ringlogd.toml"))
        .env("RINGLOGD_PIDFILE", dir.join("ringlogd.pid"))
        .stdin(Stdio::null());
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run_dir(dir: &Path) -> PathBuf {
    dir.join("run")
}

/// The configuration file in `dir` the scripts start the daemon with:
/// sockets in [`run_dir`], a ring of `max_lines`.
fn write_conf(dir: &Path, max_lines: usize) {
    std::fs::write(
        dir.join("ringlogd.toml"),
        format!(
            "runtime-dir = \"{}\"\nno-kmsg = true\nmax-lines = {max_lines}\n",
            run_dir(dir).display()
        ),
    )
    .unwrap();
}

fn sysv_lifecycle(shell: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir(dir.path());
    write_conf(dir.path(), 100);
    std::fs::create_dir(&run).unwrap();

    let out = script(shell, dir.path(), "start");
    assert!(out.status.success(), "{shell:?} start: {}", text(&out));
    assert_eq!(text(&out), "Starting ringlogd: ok\n");
    let pid: u32 = std::fs::read_to_string(dir.path().join("ringlogd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let guard = Detached(pid);
    // Serving the moment start returns.
    let query = run.join("memlogdq.sock");
    assert!(std::os::unix::net::UnixStream::connect(&query).is_ok());

    let out = script(shell, dir.path(), "start");
    assert_eq!(
        text(&out),
        format!("ringlogd is already running (pid {pid})\n")
    );
    let out = script(shell, dir.path(), "status");
    assert!(out.status.success());
    assert_eq!(text(&out), format!("ringlogd is running (pid {pid})\n"));

    write_conf(dir.path(), 10);
    let out = script(shell, dir.path(), "reload");
    assert!(out.status.success(), "reload: {}", text(&out));
    let logread = || {
        run_ok(
            Command::new(LOGREAD)
                .arg("--socket")
                .arg(&query)
                .arg("--stats"),
        )
    };
    let mut max_lines = 0;
    for _ in 0..500 {
        let stats: serde_json::Value = serde_json::from_slice(&logread().stdout).unwrap();
        max_lines = stats["ring"]["max_lines"].as_u64().unwrap();
        if max_lines == 10 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(max_lines, 10, "reload applied the new max-lines");

    let out = script(shell, dir.path(), "stop");
    assert!(out.status.success(), "stop: {}", text(&out));
    assert_eq!(text(&out), "Stopping ringlogd: ok\n");
    assert!(wait_gone(pid));
    std::mem::forget(guard);
    assert!(!dir.path().join("ringlogd.pid").exists());
    assert!(!query.exists(), "the daemon removed its sockets");
    let out = script(shell, dir.path(), "status");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out), "ringlogd is not running\n");
}

#[test]
fn sysv_script_starts_reloads_and_stops_under_dash() {
    sysv_lifecycle(&["sh"]);
}

#[test]
fn sysv_script_starts_reloads_and_stops_under_busybox_sh() {
    let busybox = require("busybox");
    sysv_lifecycle(&[busybox.to_str().unwrap(), "sh"]);
}

#[test]
fn sysv_script_start_fails_with_the_reason_on_a_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ringlogd.toml"), "max-lines = -1\n").unwrap();
    let out = script(&["sh"], dir.path(), "start");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Starting ringlogd: failed\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ringlogd.toml:1:13: max-lines = -1: must be a whole number of at least 1"),
        "{err}"
    );
}

#[test]
fn openrc_script_is_valid_sh() {
    // openrc-run scripts are sh with functions; without OpenRC here, sh -n
    // checks the syntax and a sourced run checks the variables it sets.
    run_ok(Command::new("sh").args(["-n", OPENRC]));
    let out = run_ok(Command::new("sh").arg("-c").arg(format!(
        ". {OPENRC}; printf '%s\\n' \"$command\" \"$command_args\" \"$pidfile\""
    )));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "/usr/sbin/ringlogd\n--config /etc/ringlogd/ringlogd.toml --daemonize --pidfile /run/ringlogd.pid \n/run/ringlogd.pid\n"
    );
}
