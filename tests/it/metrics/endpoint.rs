//! The `--metrics` listeners: only `/metrics` and `/health`, a health
//! check that says why the daemon does not take entries, and clients that
//! cannot hold it up.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::*;
use crate::support::*;

#[test]
fn the_listener_serves_metrics_and_health_and_never_an_entry() {
    let d = Daemon::start(&["--metrics", "127.0.0.1:0"]);
    let secret = unique("never-on-the-metrics-port");
    d.send(format!("<13>Nov 21 23:40:10 app: {secret}").as_bytes());
    d.entry_with_msg(&secret);
    let addr = d.listening("metrics");
    for path in ["/logs", "/logs?follow=1", "/stats", "/", "/metrics/../logs"] {
        let a = get(addr, path);
        assert_eq!(a.status, 404, "GET {path}: {a:?}");
        assert!(!a.body.contains(&secret), "{a:?}");
    }
    // A control is no endpoint either: the ring is not paused.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"POST /pause HTTP/1.0\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 404 "), "{raw}");
    assert_eq!(d.stats()["paused"], false);
    let m = get(addr, "/metrics");
    assert_eq!(m.status, 200);
    assert!(!m.body.contains(&secret));
    assert_eq!(
        samples(&m.body)["ringlogd_received_total{input=\"syslog\"}"],
        1.0
    );
    let h = get(addr, "/health");
    assert_eq!((h.status, h.body.as_str()), (200, "ok\n"));
}

#[test]
fn it_listens_on_every_address_given_ipv6_too() {
    let v6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let mut args = vec!["--metrics", "127.0.0.1:0", "--metrics", "127.0.0.1:0"];
    if v6 {
        args.extend(["--metrics", "[::1]:0"]);
    } else {
        eprintln!("no IPv6 loopback here: IPv4 only");
    }
    let d = Daemon::start(&args);
    let addrs = d.listening_all("metrics");
    assert_eq!(addrs.len(), args.len() / 2, "{addrs:?}");
    assert_eq!(addrs.iter().any(SocketAddr::is_ipv6), v6, "{addrs:?}");
    for a in addrs {
        assert_eq!(get(a, "/health").status, 200, "{a}");
    }
}

#[test]
fn health_is_503_while_paused_and_200_once_resumed() {
    let d = Daemon::start(&["--metrics", "127.0.0.1:0"]);
    let addr = d.listening("metrics");
    assert_eq!(get(addr, "/health").status, 200);
    assert_success(&d.logread(&["--pause"]), "logread --pause");
    let h = get(addr, "/health");
    assert_eq!(h.status, 503, "{h:?}");
    assert!(h.body.starts_with("paused: "), "{h:?}");
    assert_eq!(samples(&get(addr, "/metrics").body)["ringlogd_paused"], 1.0);
    assert_success(&d.logread(&["--resume"]), "logread --resume");
    assert_eq!(get(addr, "/health").status, 200);
}

#[test]
fn health_is_503_while_out_of_fds_and_200_once_they_are_free() {
    let d = Daemon::start_under(
        &["prlimit", "--nofile=64:64"],
        &["--tcp", "127.0.0.1:0", "--metrics", "127.0.0.1:0"],
    );
    let (addr, tcp) = (d.listening("metrics"), d.listening("tcp"));
    assert_eq!(get(addr, "/health").status, 200);
    // TCP senders that hold their connections take every fd there is.
    let held: Vec<TcpStream> = (0..100).map(|_| TcpStream::connect(tcp).unwrap()).collect();
    let h = poll(
        "the health check to say the daemon is out of fds",
        Duration::from_secs(10),
        || get(addr, "/health"),
        |h| h.status == 503,
    );
    assert!(h.body.starts_with("out of file descriptors"), "{h:?}");
    drop(held);
    poll(
        "the health check back at 200",
        Duration::from_secs(10),
        || get(addr, "/health"),
        |h| h.status == 200,
    );
}

#[test]
fn silent_and_surplus_clients_are_dropped_without_holding_up_ingest() {
    let d = Daemon::start(&["--metrics", "127.0.0.1:0"]);
    let addr = d.listening("metrics");
    // Clients that connect and never send a request, past the limit of 16.
    let start = Instant::now();
    let silent: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    // Ingest goes on meanwhile.
    let msg = unique("while-scrapers-hang");
    d.send(format!("<13>Nov 21 23:40:10 app: {msg}").as_bytes());
    d.entry_with_msg(&msg);
    // The surplus 4 were closed at once; the 16 it took, not before their
    // 5 s are up.
    let closed = |c: &TcpStream| {
        c.set_nonblocking(true).unwrap();
        let gone = matches!((&*c).read(&mut [0u8; 64]), Ok(0));
        c.set_nonblocking(false).unwrap();
        gone
    };
    let (gone, waiting): (Vec<_>, Vec<_>) = silent.into_iter().partition(closed);
    assert_eq!((gone.len(), waiting.len()), (4, 16));
    for mut c in waiting {
        c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut buf = [0u8; 64];
        let n = c
            .read(&mut buf)
            .expect("a silent client dropped at its deadline");
        assert_eq!(n, 0, "a silent client got {:?}", &buf[..n]);
    }
    assert!(
        start.elapsed() >= Duration::from_secs(4),
        "dropped before the deadline"
    );
    assert_eq!(get(addr, "/health").status, 200);
}

#[test]
fn check_config_shows_the_metrics_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("ringlogd.toml");
    std::fs::write(&conf, "metrics = [\"[::1]:9465\"]\n").unwrap();
    let out = run_ok(
        std::process::Command::new(RINGLOGD)
            .arg("--check-config")
            .arg("--config")
            .arg(&conf),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\nmetrics = [\"[::1]:9465\"]  # "), "{text}");
    let out = run_ok(std::process::Command::new(RINGLOGD).args([
        "--check-config",
        "--metrics",
        "0.0.0.0:9465",
    ]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("\nmetrics = [\"0.0.0.0:9465\"]  # "),
        "{text}"
    );
    let bad = std::process::Command::new(RINGLOGD)
        .args(["--check-config", "--metrics", "localhost:9465"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("numeric address"));
}

#[test]
fn a_reexec_keeps_the_listener_and_its_port() {
    let d = Daemon::start(&["--metrics", "127.0.0.1:0"]);
    let addr = d.listening("metrics");
    signal(d.pid(), "USR2");
    poll(
        "the re-executed daemon",
        Duration::from_secs(10),
        || dump_across_exec(&d.query).unwrap_or_default(),
        |e| e.iter().any(|v| msg_starts(v, "re-executed")),
    );
    // Port 0 was bound once: the successor serves on the same port.
    assert_eq!(d.listening_all("metrics"), [addr]);
    assert_eq!(get(addr, "/health").status, 200);
    let m = samples(&get(addr, "/metrics").body);
    assert!(
        m["ringlogd_received_total{input=\"internal\"}"] >= 3.0,
        "{m:?}"
    );
}
