//! The soak: mixed load on every input for minutes, with followers that
//! keep up, lag, and get stopped, and queries coming and going, into a
//! small ring that wraps all the time. The daemon must account for every
//! message, hand the keeping-up follower every entry in order (or say what
//! it missed), and its memory must stay flat once the ring is full.
//!
//! `soak_short` (40 s) runs with the suite; the 10-minute run is
//!
//! ```sh
//! cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! (`SOAK_SECS=N` changes either's length.) Both print their figures.

// The integration tests' harness (tests/it); the soak uses part of it.
#[allow(dead_code)]
#[path = "it/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const CORPUS: &str = "/work/shared/corpus";

/// Lines of a corpus file, or stand-ins when it is not there.
fn corpus(name: &str) -> Vec<String> {
    let path = std::env::var("RINGLOGD_CORPUS").unwrap_or_else(|_| CORPUS.into());
    match std::fs::read_to_string(format!("{path}/{name}")) {
        Ok(text) => text.lines().map(str::to_owned).collect(),
        Err(_) => (0..2000)
            .map(|i| format!("sample line {i} of {name} with some words in it"))
            .collect(),
    }
}

fn seconds(default: u64) -> Duration {
    let secs = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    Duration::from_secs(secs)
}

#[test]
fn soak_short() {
    soak(seconds(40));
}

#[test]
#[ignore = "10 minutes: cargo test --release --test soak -- --ignored --nocapture"]
fn soak_10_minutes() {
    soak(seconds(600));
}

/// Run `f` every `period` until `stop`, counting what it returns.
fn paced(
    stop: &Arc<AtomicBool>,
    period: Duration,
    mut f: impl FnMut(u64) -> u64 + Send + 'static,
) -> std::thread::JoinHandle<u64> {
    let stop = stop.clone();
    std::thread::spawn(move || {
        let mut total = 0;
        let mut round = 0;
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            total += f(round);
            round += 1;
            if let Some(rest) = period.checked_sub(t.elapsed()) {
                std::thread::sleep(rest);
            }
        }
        total
    })
}

/// A follower process of our logread, JSON lines.
fn follower(d: &Daemon, stdout: Stdio) -> Child {
    Command::new(LOGREAD)
        .arg("--socket")
        .arg(&d.query)
        .args(["-F", "--json"])
        .stdout(stdout)
        .spawn()
        .unwrap()
}

/// What a follower's output showed: entries, missed notices and the
/// entries they said were missed, and whether seq ever went wrong.
#[derive(Debug, Default)]
struct Followed {
    entries: u64,
    notices: u64,
    missed: u64,
    disorder: Vec<String>,
}

/// Read a follower's JSON lines, optionally slowly, and check that seq
/// only ever goes up by one, or jumps by what a notice said was missed.
fn check_follower(
    out: impl Read + Send + 'static,
    pause: Duration,
) -> std::thread::JoinHandle<Followed> {
    std::thread::spawn(move || {
        let mut f = Followed::default();
        let mut next: Option<u64> = None;
        let mut owed = 0u64;
        // A line cut short is an error only if more follows: the last one
        // may be cut by the follower being stopped at the end.
        let mut cut: Option<String> = None;
        for line in BufReader::with_capacity(4096, out).lines() {
            let Ok(line) = line else { break };
            if let Some(bad) = cut.take() {
                f.disorder.push(bad);
            }
            let v: Value = match serde_json::from_str(&line) {
                Ok(v) => v,
                Err(e) => {
                    cut = Some(format!("not JSON ({e}): {line}"));
                    continue;
                }
            };
            // A note of what fair eviction took out of turn is no entry.
            if v.get("sd")
                .and_then(|s| s.get("evicted@ringlogd"))
                .is_some()
            {
                continue;
            }
            if let Some(m) = v["missed"].as_u64() {
                f.notices += 1;
                f.missed += m;
                owed += m;
                continue;
            }
            let seq = v["seq"].as_u64().unwrap();
            if let Some(want) = next {
                if seq != want + owed && f.disorder.len() < 10 {
                    f.disorder
                        .push(format!("seq {seq} after {} (missed {owed})", want - 1));
                }
            }
            owed = 0;
            next = Some(seq + 1);
            f.entries += 1;
            if !pause.is_zero() && f.entries % 200 == 0 {
                std::thread::sleep(pause);
            }
        }
        f
    })
}

fn soak(length: Duration) {
    raise_fd_limit();
    let d = Daemon::start(&[
        "--max-lines",
        "20000",
        "--max-bytes",
        "4M",
        "--udp",
        "127.0.0.1:0",
        "--tcp",
        "127.0.0.1:0",
    ]);
    let (udp_addr, tcp_addr) = (d.listening("udp"), d.listening("tcp"));
    // Followers: one keeps up, one lags, one is stopped and woken. They
    // ask before the flood, so that every entry after the few held is
    // theirs, and every gap they meet is one they must be told of (a hole
    // fair eviction left before a reader asked is not news to it).
    let mut fast = follower(&d, Stdio::piped());
    let fast_check = check_follower(fast.stdout.take().unwrap(), Duration::ZERO);
    let mut slow = follower(&d, Stdio::piped());
    let slow_check = check_follower(slow.stdout.take().unwrap(), Duration::from_millis(20));
    let mut stopped = follower(&d, Stdio::null());
    let stopped_pid = stopped.id();
    d.wait_until("three followers", |d| {
        d.stats()["queries"]["followers"] == 3
    });
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    // /dev/log: a server's syslog, in the forms real clients send.
    let linux = corpus("Linux_2k.log");
    let ssh = corpus("OpenSSH_2k.log");
    let log = d.log.clone();
    let devlog = paced(&stop, Duration::from_millis(10), move |round| {
        let s = UnixDatagram::unbound().unwrap();
        for i in 0..200u64 {
            let k = (round * 200 + i) as usize;
            let line = &linux[k % linux.len()];
            let body = line.splitn(4, ' ').nth(3).unwrap_or(line);
            let m = match k % 5 {
                0 => format!("<38>{line}"),
                1 => format!("<86>Nov 21 23:40:10 {body}"),
                2 => format!(
                    "<13>1 2026-11-21T23:40:10.5Z host sshd {k} ID{} [ex@32473 k=\"{k}\"] {}",
                    k % 7,
                    ssh[k % ssh.len()]
                ),
                3 => format!("<148>python {body}\0"),
                _ => format!(
                    "<13>Nov 21 23:40:10 junk: \u{1b}[1m\x01 {}",
                    "\u{fffd}".repeat(k % 50)
                ),
            };
            s.send_to(m.as_bytes(), &log).unwrap();
        }
        200
    });

    // fd intake: one program that writes all along, and short-lived ones.
    let apache = corpus("Apache_2k.log");
    let hdfs = corpus("HDFS_2k.log");
    let mut long_lived = d.pass_socketpair("svc.out");
    let fd_long = paced(&stop, Duration::from_millis(10), move |round| {
        let mut chunk = String::new();
        for i in 0..100u64 {
            chunk.push_str(&apache[((round * 100 + i) as usize) % apache.len()]);
            chunk.push('\n');
        }
        long_lived.write_all(chunk.as_bytes()).unwrap();
        100
    });
    let intake = d.intake.clone();
    let fd_short = paced(&stop, Duration::from_millis(50), move |round| {
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let line = &hdfs[round as usize % hdfs.len()];
        ours.write_all(format!("{line}\n{line}\n").as_bytes())
            .unwrap();
        drop(ours);
        use std::os::fd::AsRawFd;
        send_fds(
            &intake,
            format!("job{}", round % 10).as_bytes(),
            &[theirs.as_raw_fd()],
        )
        .unwrap();
        2
    });

    // The network: TCP with octet counting on a connection renewed every
    // 500 frames, UDP datagrams. A TCP sender waits for the daemon to
    // close a connection before it opens the next, as a client that cares
    // does: otherwise, on a machine too busy for the daemon to keep up,
    // the connections waiting pass --tcp-max-conns and are refused, whole.
    let tcp = paced(&stop, Duration::from_millis(20), move |round| {
        let mut c = TcpStream::connect(tcp_addr).unwrap();
        let mut buf = Vec::new();
        for i in 0..500 {
            let m = format!(
                "<14>1 2026-11-21T23:40:10Z edge{} app - - - frame {round} {i}",
                round % 3
            );
            write!(buf, "{} {m}", m.len()).unwrap();
        }
        c.write_all(&buf).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let _ = c.read(&mut [0u8; 1]);
        500
    });
    let udp_sent = Arc::new(AtomicU64::new(0));
    let counter = udp_sent.clone();
    let udp = paced(&stop, Duration::from_millis(20), move |round| {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..50 {
            let m = format!("<30>Nov 21 23:40:10 dev{}: udp {round} {i}", round % 4);
            s.send_to(m.as_bytes(), udp_addr).unwrap();
        }
        counter.fetch_add(50, Ordering::Relaxed);
        50
    });

    let toggler = paced(&stop, Duration::from_secs(2), move |round| {
        signal(stopped_pid, if round % 2 == 0 { "STOP" } else { "CONT" });
        0
    });

    // Readers that come and go, in every dialect.
    let query = d.query.clone();
    let queries = paced(&stop, Duration::from_millis(100), move |round| {
        let request: &[u8] = match round % 4 {
            0 => b"{\"mode\":\"dump\",\"n\":100,\"priority\":\"err\"}\n",
            1 => b"GET /logs?n=50&source=svc.*&format=short HTTP/1.1\r\nHost: x\r\n\r\n",
            2 => b"{\"mode\":\"stats\"}\n",
            _ => &[0],
        };
        let mut c = UnixStream::connect(&query).unwrap();
        c.write_all(request).unwrap();
        let mut out = Vec::new();
        // Every eighth leaves after the first bytes.
        if round % 8 == 7 {
            let mut first = [0u8; 512];
            let _ = c.read(&mut first);
        } else {
            c.read_to_end(&mut out).unwrap();
        }
        1
    });

    // Watch memory and fds, once a second.
    let warmup = (length / 5).max(Duration::from_secs(5));
    let mut rss = Vec::new();
    let mut fds = Vec::new();
    while started.elapsed() < length {
        std::thread::sleep(Duration::from_secs(1));
        assert!(is_running(d.pid()), "ringlogd died");
        rss.push((started.elapsed(), rss_kib(d.pid())));
        fds.push(open_fds(d.pid()));
    }
    stop.store(true, Ordering::Relaxed);
    let sent_syslog = devlog.join().unwrap();
    let sent_fd = fd_long.join().unwrap() + fd_short.join().unwrap();
    let sent_tcp = tcp.join().unwrap();
    let sent_udp = udp.join().unwrap();
    let n_queries = queries.join().unwrap();
    toggler.join().unwrap();
    signal(stopped_pid, "CONT");

    // Everything sent is accounted for.
    d.wait_for_counters("syslog", |c| c["received"] == sent_syslog);
    d.wait_for_counters("fd", |c| c["received"] == sent_fd);
    d.wait_for_counters("net", |c| c["received"].as_u64().unwrap() >= sent_tcp);
    let stats = d.stats();
    let inputs = stats["inputs"].clone();
    let net_received = inputs["net"]["received"].as_u64().unwrap();
    assert!(net_received <= sent_tcp + sent_udp, "more than was sent");

    // The followers: the fast one saw seq in order, the lagging one was
    // told what it missed, none lost its place.
    let marker = unique("soak-end");
    d.send(format!("<13>Nov 21 23:40:10 soak: {marker}").as_bytes());
    d.entry_with_msg(&marker);
    std::thread::sleep(Duration::from_millis(500));
    for child in [&mut fast, &mut slow, &mut stopped] {
        signal(child.id(), "TERM");
        let _ = child.wait();
    }
    let fast = fast_check.join().unwrap();
    let slow = slow_check.join().unwrap();
    assert!(
        fast.disorder.is_empty(),
        "fast follower: {:?}",
        fast.disorder
    );
    assert!(
        slow.disorder.is_empty(),
        "slow follower: {:?}",
        slow.disorder
    );
    assert!(fast.entries > 1000 && slow.entries > 1000);

    // Memory: flat once the ring is full.
    let after_warmup: Vec<u64> = rss
        .iter()
        .filter(|(t, _)| *t >= warmup)
        .map(|(_, r)| *r)
        .collect();
    let settled = rss
        .iter()
        .filter(|(t, _)| *t < warmup)
        .map(|(_, r)| *r)
        .max()
        .unwrap();
    let peak = *after_warmup.iter().max().unwrap_or(&settled);
    let last = rss.last().unwrap().1;
    let bound = settled + settled / 4 + 2048;

    let secs = length.as_secs_f64();
    let mut report = BTreeMap::new();
    for (input, c) in inputs.as_object().unwrap() {
        report.insert(input.clone(), c.clone());
    }
    println!(
        "soak: {:.0} s of mixed load into a 20000-line, 4 MiB ring",
        secs
    );
    println!(
        "  sent: {sent_syslog} syslog ({:.0}/s), {sent_fd} fd lines ({:.0}/s), {sent_tcp} tcp, {sent_udp} udp; {n_queries} queries",
        sent_syslog as f64 / secs,
        sent_fd as f64 / secs
    );
    for (input, c) in &report {
        println!("  {input:9} {c}");
    }
    println!("  queries   {}", stats["queries"]);
    println!(
        "  followers: fast {} entries, {} notices ({} missed); slow {} entries, {} notices ({} missed)",
        fast.entries, fast.notices, fast.missed, slow.entries, slow.notices, slow.missed
    );
    println!(
        "  RSS: {settled} KiB after warm-up ({:?}), peak {peak} KiB after, last {last} KiB; bound {bound} KiB",
        warmup
    );
    println!(
        "  fds: first {} last {} max {}",
        fds.first().unwrap(),
        fds.last().unwrap(),
        fds.iter().max().unwrap()
    );
    assert!(peak <= bound, "RSS grew from {settled} to {peak} KiB");
    d.assert_still_serves();
}
