//! The daemon's life: its sockets' paths and modes, refusing a path another
//! daemon owns, signals, and command-line errors.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

#[test]
fn sockets_have_the_promised_modes_and_a_start_entry() {
    let d = Daemon::start(&[]);
    assert_eq!(socket_mode(&d.log), 0o666, "/dev/log is for everyone");
    assert_eq!(socket_mode(&d.query), 0o600, "the query socket is not");
    assert_eq!(socket_mode(&d.intake), 0o600, "nor the fd intake socket");
    let e = d.dump();
    assert_eq!(e[0]["source"], "memlogd");
    assert_eq!(e[0]["msg"], "memlogd started");
    assert_eq!(e[0]["input"], "internal");
}

#[test]
fn sigterm_and_sigint_remove_the_sockets_and_exit_0() {
    for sig in ["TERM", "INT"] {
        let d = Daemon::start(&[]);
        let (log, query, intake) = (d.log.clone(), d.query.clone(), d.intake.clone());
        signal(d.pid(), sig);
        let mut d = d;
        let status = wait_timeout(&mut d.child, Duration::from_secs(10));
        assert!(status.success(), "SIG{sig}: {status}");
        assert!(!log.exists(), "SIG{sig} left {}", log.display());
        assert!(!query.exists(), "SIG{sig} left {}", query.display());
        assert!(!intake.exists(), "SIG{sig} left {}", intake.display());
    }
}

#[test]
fn sighup_is_logged_not_fatal() {
    let d = Daemon::start(&[]);
    signal(d.pid(), "HUP");
    let hup = d.entry_with_text("SIGHUP");
    assert_eq!(hup["source"], "memlogd");
    assert_eq!(hup["input"], "internal");
    assert!(d.stop().success());
}

#[test]
fn a_path_where_a_live_daemon_listens_is_refused() {
    let first = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(RINGLOGD)
        .arg("--syslog-socket")
        .arg(&first.log)
        .arg("--socket-query")
        .arg(dir.path().join("q.sock"))
        .arg("--socket-log")
        .arg(dir.path().join("intake.sock"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(first.log.to_str().unwrap()), "{err}");
    assert!(err.contains("in use"), "{err}");
    // The first daemon still owns its socket and still works.
    let msg = unique("still");
    first.send(format!("<13>Nov 21 23:40:10 t: {msg}").as_bytes());
    first.entry_with_msg(&msg);
    for name in ["q.sock", "intake.sock"] {
        assert!(!dir.path().join(name).exists(), "{name} left behind");
    }
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    drop(UnixDatagram::bind(&log).unwrap()); // the file outlives its socket
    assert!(log.exists());
    let d = Daemon::start(&["--syslog-socket", log.to_str().unwrap()]);
    let msg = unique("fresh");
    send_datagram(&log, format!("<13>Nov 21 23:40:10 t: {msg}").as_bytes());
    d.entry_with_msg(&msg);
}

#[test]
fn a_file_that_is_not_a_socket_is_never_removed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::write(&log, "precious").unwrap();
    let out = Command::new(RINGLOGD)
        .arg("--runtime-dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "precious");
}

#[test]
fn bad_flags_are_one_clear_error_not_a_panic() {
    for args in [
        &["--max-bytes", "1k"][..],
        &["--max-bytes", "lots"],
        &["--max-lines", "0"],
        &["--max-line-len", "-5"],
        &["--no-such-flag"],
        &["--kmsg", "/dev/kmsg", "--no-kmsg"],
    ] {
        let out = Command::new(RINGLOGD).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with("error:"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn memlogd_style_flags_work() {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("q.sock");
    let log = dir.path().join("l.sock");
    let mut child = Command::new(RINGLOGD)
        .arg("-socket-query")
        .arg(&q)
        .arg("-syslog-socket")
        .arg(&log)
        .arg("-socket-log")
        .arg(dir.path().join("intake.sock"))
        .args(["-max-lines", "3", "-max-line-len=5", "-no-kmsg"])
        .spawn()
        .unwrap();
    assert!(wait_socket(&q));
    let s = UnixDatagram::unbound().unwrap();
    for i in 0..5 {
        s.send_to(
            format!("<13>Nov 21 23:40:10 t: abcdefgh{i}").as_bytes(),
            &log,
        )
        .unwrap();
    }
    let mut entries = Vec::new();
    for _ in 0..500 {
        let mut c = std::os::unix::net::UnixStream::connect(&q).unwrap();
        use std::io::{Read, Write};
        c.write_all(&[0]).unwrap();
        let mut out = Vec::new();
        c.read_to_end(&mut out).unwrap();
        entries = parse_lines(&out);
        if entries.len() == 3 && entries.iter().all(|e| e["input"] == "syslog") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(entries.len(), 3, "{entries:?}");
    for e in &entries {
        assert_eq!(e["msg"], "abcde");
        assert_eq!(e["truncated"], true);
    }
    signal(child.id(), "TERM");
    assert!(wait_timeout(&mut child, Duration::from_secs(10)).success());
}

/// What `ringlogd` prints once it serves in `dir`, up to the network.
fn serving_prefix(dir: &std::path::Path) -> String {
    let d = dir.display();
    format!(
        "ringlogd: serving {d}/log, query {d}/memlogdq.sock, intake {d}/linuxkit-external-logging.sock"
    )
}

#[test]
fn with_v_the_daemon_says_where_it_serves_and_how_big_its_ring_is() {
    let d = Daemon::start_under_with_kmsg(
        &[],
        &[
            "--no-kmsg",
            "-v",
            "--max-bytes",
            "64k",
            "--max-lines",
            "100",
            "--udp",
            "127.0.0.1:0",
        ],
    );
    let udp = d.listening("udp");
    // Printed before the query socket answers, which Daemon::start waits
    // for: it is there already.
    assert_eq!(
        d.stderr_text(),
        format!(
            "{}, udp {udp}; ring 64 KiB, 100 lines\n",
            serving_prefix(d.dir.path())
        )
    );
}

#[test]
fn without_v_and_without_a_terminal_the_daemon_prints_nothing_when_it_serves() {
    let d = Daemon::start_under_with_kmsg(&[], &["--no-kmsg"]);
    d.send(b"<14>t: hello");
    d.entry_with_msg("hello");
    assert_eq!(d.stderr_text(), "", "a journal or a script gets no line");
}

/// Run ringlogd with its stderr on a pseudo-terminal (stdin and stdout are
/// not terminals), until it prints a line; then stop it.
const ON_A_PTY: &str = r#"
import os, pty, select, subprocess, sys, time
master, slave = pty.openpty()
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
os.close(slave)
out, deadline = b"", time.time() + 30
while b"\n" not in out and time.time() < deadline and p.poll() is None:
    if select.select([master], [], [], 0.2)[0]:
        try:
            out += os.read(master, 4096)
        except OSError:
            break
p.terminate()
p.wait()
sys.stdout.write(out.decode().replace("\r\n", "\n"))
"#;

#[test]
fn on_a_terminal_the_daemon_says_where_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(require("python3"))
        .args(["-c", ON_A_PTY, RINGLOGD, "--no-kmsg", "--runtime-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}; ring 8 MiB, 5000 lines\n", serving_prefix(dir.path()))
    );
}
