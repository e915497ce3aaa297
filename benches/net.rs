//! A quick network and forwarding figure: how many messages per second
//! arrive (are stored, per ringlogd's stats) through
//!
//! - one TCP connection, LF framing and octet counting, 100-byte messages;
//! - rsyslogd forwarding with omuxsock (the RFC 5424 snippet of
//!   docs/forwarding.md) into ringlogd's syslog socket, fed by one fast
//!   sender on rsyslog's input;
//! - rsyslogd forwarding with omfwd over TCP, octet-counted (the omfwd
//!   snippet of docs/forwarding.md).
//!
//! Each is the median of 3 runs, timed from the first byte sent until the
//! stats show every message stored (or stop moving, which is reported).
//!
//! `cargo bench --bench net -- [N]`

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{count_arg, Ringlogd};

/// The ring every run starts with: large enough to hold a run.
const RING: [&str; 4] = ["--max-lines", "100000", "--max-bytes", "64M"];

impl Ringlogd {
    fn stored(&self, input: &str) -> u64 {
        self.stats()["inputs"][input]["stored"]
            .as_u64()
            .unwrap_or(0)
    }

    fn tcp_addr(&self) -> SocketAddr {
        String::from_utf8(self.query(&[0]))
            .unwrap()
            .lines()
            .find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                v["msg"]
                    .as_str()?
                    .strip_prefix("listening on tcp ")?
                    .parse()
                    .ok()
            })
            .expect("a tcp listener")
    }

    /// Wait until `n` entries of `input` are stored; the rate since
    /// `start`, and how many arrived if they stopped coming first.
    fn rate(&self, input: &str, n: u64, start: Instant) -> (f64, u64) {
        let (mut last, mut moved) = (0, Instant::now());
        loop {
            let got = self.stored(input);
            if got >= n {
                return (n as f64 / start.elapsed().as_secs_f64(), got);
            }
            if got != last {
                (last, moved) = (got, Instant::now());
            } else if moved.elapsed() > Duration::from_secs(5) {
                let secs = (moved - start).as_secs_f64();
                return (got as f64 / secs, got);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn message(i: u64) -> Vec<u8> {
    let mut m =
        format!("<13>1 2026-11-22T00:00:00.000001Z web1 bench 42 - - message {i:08} ").into_bytes();
    m.resize(100, b'x');
    m
}

/// All `n` messages framed, in one buffer (built before the clock starts).
fn framed(n: u64, octet_counted: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(n as usize * 105);
    for i in 0..n {
        let m = message(i);
        if octet_counted {
            out.extend_from_slice(format!("{} ", m.len()).as_bytes());
            out.extend_from_slice(&m);
        } else {
            out.extend_from_slice(&m);
            out.push(b'\n');
        }
    }
    out
}

fn tcp_run(n: u64, octet_counted: bool) -> (f64, u64) {
    let d = Ringlogd::start(&[&RING[..], &["--tcp", "127.0.0.1:0"]].concat());
    let bytes = framed(n, octet_counted);
    let mut s = TcpStream::connect(d.tcp_addr()).unwrap();
    let start = Instant::now();
    s.write_all(&bytes).unwrap();
    d.rate("net", n, start)
}

fn rsyslogd() -> (PathBuf, Option<PathBuf>) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let system = std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join("rsyslogd"))
        .find(|p| p.is_file());
    if let Some(p) = system {
        return (p, None);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/unpacked/rsyslog");
    let modules = std::fs::read_dir(root.join("usr/lib"))
        .expect("rsyslogd is not installed: run tests/run.sh")
        .flatten()
        .map(|e| e.path().join("rsyslog"))
        .find(|p| p.join("omuxsock.so").is_file())
        .expect("rsyslog modules");
    (root.join("usr/sbin/rsyslogd"), Some(modules))
}

/// rsyslogd with a private input socket and `forward`; returns it and
/// its input socket.
fn start_rsyslog(dir: &Path, forward: &str) -> (Child, PathBuf) {
    let (exe, modules) = rsyslogd();
    let input = dir.join("in.sock");
    std::fs::create_dir_all(dir.join("work")).unwrap();
    let conf = dir.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{}\")\nmodule(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imuxsock\" Socket=\"{}\" UseSpecialParser=\"off\" ParseHostname=\"on\" IgnoreTimestamp=\"off\")\n{forward}\n",
            dir.join("work").display(),
            input.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(exe);
    cmd.arg("-n")
        .arg("-f")
        .arg(&conf)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"));
    if let Some(m) = modules {
        cmd.arg("-M").arg(m);
    }
    let child = cmd.stdin(Stdio::null()).spawn().unwrap();
    while !input.exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    (child, input)
}

fn rsyslog_run(n: u64, tcp: bool) -> (f64, u64) {
    let d = Ringlogd::start(&[&RING[..], &["--tcp", "127.0.0.1:0"]].concat());
    let forward = if tcp {
        format!(
            "*.* action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{}\" protocol=\"tcp\"\n  \
             TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\")",
            d.tcp_addr().port()
        )
    } else {
        format!(
            "$ModLoad omuxsock\n$OMUxSockSocket {}\n\
             $OMUxSockDefaultTemplate RSYSLOG_SyslogProtocol23Format\n*.* :omuxsock:",
            d.path("log").display()
        )
    };
    let rdir = tempfile::tempdir().unwrap();
    let (mut rs, input) = start_rsyslog(rdir.path(), &forward);
    let msgs: Vec<Vec<u8>> = (0..1000).map(message).collect();
    let s = UnixDatagram::unbound().unwrap();
    s.connect(&input).unwrap();
    let start = Instant::now();
    for i in 0..n {
        s.send(&msgs[(i % 1000) as usize]).unwrap();
    }
    let r = d.rate(if tcp { "net" } else { "syslog" }, n, start);
    let _ = rs.kill();
    let _ = rs.wait();
    r
}

fn median(label: &str, n: u64, mut run: impl FnMut() -> (f64, u64)) {
    let mut rates = Vec::new();
    let mut short = Vec::new();
    for _ in 0..3 {
        let (rate, got) = run();
        rates.push(rate);
        if got < n {
            short.push(got);
        }
    }
    rates.sort_by(f64::total_cmp);
    print!(
        "  {label:<34} {:>10.0} msg/s  ({:.0}..{:.0})",
        rates[1], rates[0], rates[2]
    );
    if short.is_empty() {
        println!();
    } else {
        println!("  incomplete runs stored only {short:?} of {n}");
    }
}

fn main() {
    let n: u64 = count_arg(1_000_000);
    let nr = (n / 5).max(1);
    println!("100-byte RFC 5424 messages, one sender, median of 3 (min..max):");
    median(&format!("TCP, LF framing ({n})"), n, || tcp_run(n, false));
    median(&format!("TCP, octet counting ({n})"), n, || {
        tcp_run(n, true)
    });
    median(&format!("rsyslog omuxsock ({nr})"), nr, || {
        rsyslog_run(nr, false)
    });
    median(&format!("rsyslog omfwd TCP octet ({nr})"), nr, || {
        rsyslog_run(nr, true)
    });
}
