//! A quick ingest figure: one fast sender of 100-byte RFC 3164 datagrams,
//! first into a receiver that only `recv()`s (the socket's limit on this
//! machine), then into the real daemon through its /dev/log socket, until
//! the daemon's stats show every message stored. Also the daemon's RSS
//! with a full default ring.
//!
//! `cargo build --release && cargo run --release --example ingest [N]`

use std::io::{Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn message(i: usize) -> Vec<u8> {
    let mut m = format!("<13>Nov 21 23:40:10 bench[42]: message {i:08} ").into_bytes();
    m.resize(100, b'x');
    m
}

fn send_all(path: &Path, n: usize) {
    let s = UnixDatagram::unbound().unwrap();
    s.connect(path).unwrap();
    let msgs: Vec<Vec<u8>> = (0..1000).map(message).collect();
    for i in 0..n {
        s.send(&msgs[i % 1000]).unwrap();
    }
}

fn raw_limit(dir: &Path, n: usize) -> f64 {
    let path = dir.join("raw.sock");
    let rx = UnixDatagram::bind(&path).unwrap();
    let _ = socket2::SockRef::from(&rx).set_recv_buffer_size(4 << 20);
    let start = Instant::now();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        for _ in 0..n {
            rx.recv(&mut buf).unwrap();
        }
    });
    send_all(&path, n);
    t.join().unwrap();
    n as f64 / start.elapsed().as_secs_f64()
}

fn stats(q: &Path) -> serde_json::Value {
    let mut c = UnixStream::connect(q).unwrap();
    c.write_all(b"{\"mode\":\"stats\"}\n").unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    serde_json::from_slice(&out).unwrap()
}

fn daemon_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("ringlogd")
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
}

fn start(dir: &Path, args: &[&str]) -> std::process::Child {
    let child = Command::new(daemon_bin())
        .arg("--runtime-dir")
        .arg(dir)
        // Only the benchmark's own messages in the ring.
        .arg("--no-kmsg")
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .expect("build ringlogd first: cargo build --release");
    let q = dir.join("memlogdq.sock");
    while UnixStream::connect(&q).is_err() {
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

fn daemon_rate(dir: &Path, n: usize) -> f64 {
    let mut child = start(
        dir,
        &["--max-lines", &(n + 10).to_string(), "--max-bytes", "1G"],
    );
    let q = dir.join("memlogdq.sock");
    let start = Instant::now();
    send_all(&dir.join("log"), n);
    while stats(&q)["inputs"]["syslog"]["stored"].as_u64().unwrap() < n as u64 {
        std::thread::sleep(Duration::from_millis(2));
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    child.kill().unwrap();
    child.wait().unwrap();
    rate
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let mut raw = Vec::new();
    let mut ours = Vec::new();
    for _ in 0..3 {
        raw.push(raw_limit(dir.path(), n));
        let _ = std::fs::remove_file(dir.path().join("raw.sock"));
        let d = tempfile::tempdir().unwrap();
        ours.push(daemon_rate(d.path(), n));
    }
    raw.sort_by(f64::total_cmp);
    ours.sort_by(f64::total_cmp);
    println!("{n} x 100-byte datagrams, one sender, median of 3 (min..max):");
    println!(
        "  raw recv() limit  {:>10.0} msg/s  ({:.0}..{:.0})",
        raw[1], raw[0], raw[2]
    );
    println!(
        "  ringlogd ingest   {:>10.0} msg/s  ({:.0}..{:.0})  = {:.2} x raw",
        ours[1],
        ours[0],
        ours[2],
        ours[1] / raw[1]
    );

    let d = tempfile::tempdir().unwrap();
    let mut child = start(d.path(), &[]);
    let empty = rss_kib(child.id());
    send_all(&d.path().join("log"), 20_000);
    let q = d.path().join("memlogdq.sock");
    while stats(&q)["inputs"]["syslog"]["stored"].as_u64().unwrap() < 20_000 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let s = stats(&q);
    println!(
        "  RSS, default ring: empty {} KiB, full ({} entries, {} ring bytes) {} KiB",
        empty,
        s["ring"]["entries"],
        s["ring"]["bytes"],
        rss_kib(child.id())
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
