//! A local user attacking the query socket opened to all (`--query-mode
//! 0666`): its queries must never delay what root logs, its connections
//! must never lock root or the fd intake out, and what it is shown is
//! counts and its own entries only. The attacker runs as another uid
//! (`setpriv`), with real clients.

mod support;

use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::users::{as_uid, open_dir, root_or_skip, system_tool, NOBODY};
use support::*;

/// The attacker's program: send `N` datagrams of 8 KiB that a greedy
/// pattern backtracks over, say so, then loop `T` threads of grep dumps
/// over them until killed.
const GREP_ATTACK: &str = r#"
import socket, sys, threading
log, query, n, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
line = b"<14>aaaa: " + b"a" * 8180 + b"!"
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for _ in range(n):
    s.sendto(line, log)
print("sent", flush=True)
req = b'{"mode":"dump","grep":"(.*a){20}b","format":"cat"}\n'
def attack():
    while True:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(query)
        c.sendall(req)
        while c.recv(65536):
            pass
        c.close()
for _ in range(threads):
    threading.Thread(target=attack).start()
print("attacking", flush=True)
"#;

/// Kill a child when dropped, so a failing test leaves no attacker behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Read the child's stdout up to the line `word`.
fn wait_for_line(child: &mut Child, word: &str) {
    let out = child.stdout.as_mut().expect("piped stdout");
    let mut seen = Vec::new();
    let mut b = [0u8; 1];
    while !String::from_utf8_lossy(&seen).lines().any(|l| l == word) {
        let n = out.read(&mut b).unwrap();
        assert!(n > 0, "the attacker exited before saying {word:?}");
        seen.push(b[0]);
    }
}

/// The `q`-th quantile of sorted `v`.
fn quantile(v: &[Duration], q: f64) -> Duration {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Send `n` markers as root, one every `gap`, and return how long after
/// its send each was taken into the ring (its `time`, stamped when the
/// daemon read it), sorted.
fn marker_delays(d: &Daemon, n: usize, gap: Duration) -> Vec<Duration> {
    let app = unique("marker").replace('-', "_");
    let s = UnixDatagram::unbound().unwrap();
    s.connect(&d.log).unwrap();
    let mut sent_at = Vec::new();
    for i in 0..n {
        std::thread::sleep(gap);
        sent_at.push(chrono::Utc::now());
        s.send(format!("<13>Nov 21 23:40:10 {app}: {i}").as_bytes())
            .unwrap();
    }
    let request = format!("{{\"app\":\"{app}\"}}\n");
    let got = query_until(d, request.as_bytes(), n);
    let mut delays: Vec<Duration> = got
        .iter()
        .map(|e| {
            let i: usize = e["msg"].as_str().unwrap().parse().unwrap();
            let taken = chrono::DateTime::parse_from_rfc3339(e["time"].as_str().unwrap()).unwrap();
            (taken.with_timezone(&chrono::Utc) - sent_at[i])
                .to_std()
                .unwrap_or_default()
        })
        .collect();
    delays.sort();
    delays
}

/// Ask `request` until it answers `n` entries, failing after 20 s.
fn query_until(d: &Daemon, request: &[u8], n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = parse_lines(&d.query_raw(request));
        if got.len() >= n {
            return got;
        }
        assert!(Instant::now() < deadline, "{} of {n} entries", got.len());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn summary(v: &[Duration]) -> String {
    format!(
        "p50 {:?} p99 {:?} max {:?} over {}",
        quantile(v, 0.5),
        quantile(v, 0.99),
        v[v.len() - 1],
        v.len()
    )
}

#[test]
fn grep_dumps_by_another_user_do_not_delay_roots_datagrams() {
    if !root_or_skip("attacking as another user") {
        return;
    }
    const FILL: usize = 40_000;
    let d = Daemon::start(&[
        "--query-mode",
        "0666",
        "--max-lines",
        "40000",
        "--max-bytes",
        "64M",
    ]);
    open_dir(&d);
    let at_rest = marker_delays(&d, 50, Duration::from_millis(10));
    let mut attacker = Reaped(
        as_uid(NOBODY)
            .arg(system_tool("python3"))
            .args(["-c", GREP_ATTACK])
            .arg(&d.log)
            .arg(&d.query)
            .args([&FILL.to_string(), "8"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_for_line(&mut attacker.0, "sent");
    d.wait_for_counters("syslog", |c| c["stored"].as_u64().unwrap() >= FILL as u64);
    wait_for_line(&mut attacker.0, "attacking");
    // No stats query to see them connected: under attack it would wait too.
    std::thread::sleep(Duration::from_millis(500));
    let attacked = marker_delays(&d, 200, Duration::from_millis(10));
    drop(attacker);
    println!(
        "root's datagrams, ingest delay at rest: {}",
        summary(&at_rest)
    );
    println!(
        "root's datagrams, ingest delay under 8 grep dumps: {}",
        summary(&attacked)
    );
    // The grep matches nothing: each dump examines every one of the
    // attacker's entries, 8 at a time, for the whole run.
    let p99 = quantile(&attacked, 0.99);
    assert!(
        p99 < Duration::from_millis(20),
        "grep dumps delayed root's datagrams: {}",
        summary(&attacked)
    );
    d.assert_still_serves();
}
