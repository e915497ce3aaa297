//! Fair eviction: one service floods debug lines at full speed while three
//! quiet services log an error a second. Under `--evict fair` (the default)
//! the quiet services' errors all survive a ring the flood wraps many
//! times, and the loss ledger accounts for every flood line, per input and
//! per source; under `--evict fifo` the same flood takes them.
//!
//! The asserts count what was sent and what the stats say, never how fast
//! anything ran: CI runs this on two busy cores.

use std::collections::BTreeSet;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::Value;

const MAX_LINES: u64 = 20_000;
const RING: [&str; 4] = ["--max-bytes", "1M", "--max-lines", "20000"];
const QUIET: [&str; 3] = ["quiet1", "quiet2", "quiet3"];

/// Send debug lines (user.debug, tag `flood`) from one connected socket as
/// fast as the daemon takes them, until `stop`; `sent` counts them. A
/// datagram sender blocks while the socket's queue is full, so every line
/// sent reaches the daemon.
fn flood(log: &Path, stop: &AtomicBool, sent: &AtomicU64) {
    let s = UnixDatagram::unbound().unwrap();
    s.connect(log).unwrap();
    let mut i: u64 = 0;
    let mut msg = Vec::with_capacity(160);
    while !stop.load(Ordering::Relaxed) {
        msg.clear();
        use std::io::Write;
        write!(
            msg,
            "<15>Nov 21 23:40:10 flood[4242]: debug: cache probe {i} key=user:{} hit=false latency_us={}",
            i % 9973,
            i % 977
        )
        .unwrap();
        s.send(&msg).unwrap();
        i += 1;
        sent.store(i, Ordering::Relaxed);
    }
}

/// Each quiet service logs `count` errors (user.err), one a second, each
/// from its own socket; returns every message text sent.
fn quiet_services(log: &Path, count: usize, tag: &str) -> Vec<String> {
    let start = Instant::now();
    let sockets: Vec<UnixDatagram> = QUIET
        .iter()
        .map(|_| {
            let s = UnixDatagram::unbound().unwrap();
            s.connect(log).unwrap();
            s
        })
        .collect();
    let mut sent = Vec::new();
    for k in 0..count {
        let due = start + Duration::from_secs(k as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for (name, s) in QUIET.iter().zip(&sockets) {
            let text = format!("error {k} from {name}: disk sync failed ({tag})");
            let m = format!("<11>Nov 21 23:40:10 {name}[{}]: {text}", 100 + k);
            s.send(m.as_bytes()).unwrap();
            sent.push(text);
        }
    }
    sent
}

/// Wait until the daemon has received every syslog datagram sent (the
/// flood's, the quiet ones and nothing else on that input).
fn wait_received(d: &Daemon, total: u64) -> Value {
    let received = |s: &Value| s["inputs"]["syslog"]["received"].as_u64().unwrap_or(0);
    let s = poll(
        &format!("{total} datagrams received"),
        Duration::from_secs(60),
        || d.stats(),
        |s| received(s) >= total,
    );
    assert_eq!(received(&s), total, "more received than sent: {s}");
    s
}

/// Each quiet service's (stored, evicted, held) in the stats is `want`.
fn assert_quiet_sources(stats: &Value, want: (u64, u64, u64)) {
    for name in QUIET {
        let q = &stats["sources"][name];
        assert_eq!(
            (n(q, "stored"), n(q, "evicted"), n(q, "held")),
            want,
            "{name}: {q}"
        );
    }
}

/// The err-or-worse messages the ring holds, read with logread.
fn held_errors(d: &Daemon) -> BTreeSet<String> {
    let out = d.logread(&["--json", "-p", "err"]);
    assert!(out.status.success(), "logread failed: {out:?}");
    parse_lines(&out.stdout)
        .into_iter()
        .filter_map(|e| Some(e["msg"].as_str()?.to_owned()))
        .collect()
}

fn n(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {key:?} in {v}"))
}

/// The ledger's promises for every input: received = stored + dropped, and
/// what the inputs still hold (stored - evicted - cleared) is what the ring
/// holds.
fn assert_inputs_balance(stats: &Value) {
    let mut held = 0;
    for (input, c) in stats["inputs"].as_object().expect("inputs") {
        assert_eq!(
            n(c, "received"),
            n(c, "stored") + n(c, "dropped"),
            "ledger for {input}: {c}"
        );
        held += n(c, "stored") - n(c, "evicted") - n(c, "cleared");
    }
    assert_eq!(held, n(&stats["ring"], "entries"), "held entries: {stats}");
}

/// The per-source ledger: for each source stored - evicted = held, and the
/// sources together hold what the ring holds.
fn assert_sources_balance(stats: &Value) {
    let sources = stats["sources"]
        .as_object()
        .unwrap_or_else(|| panic!("no \"sources\" in the stats: {stats}"));
    let mut held = 0;
    for (name, c) in sources {
        assert_eq!(
            n(c, "stored") - n(c, "evicted"),
            n(c, "held"),
            "ledger for source {name}: {c}"
        );
        held += n(c, "held");
    }
    assert_eq!(
        held,
        n(&stats["ring"], "entries"),
        "the sources hold what the ring holds: {stats}"
    );
}

/// How many entries of `app` the ring holds, counted in a dump (not the
/// notices of what a reader missed, which have no seq).
fn count_app(d: &Daemon, app: &str) -> u64 {
    let out = d.logread(&["--json", "-t", app]);
    assert!(out.status.success(), "logread failed: {out:?}");
    parse_lines(&out.stdout)
        .iter()
        .filter(|e| e["app"] == app && e["seq"].is_u64())
        .count() as u64
}

/// A daemon evicting by `evict`, flooded while the quiet services log an
/// error a second each for `seconds` s, and on until `then` returns: the
/// daemon, the quiet errors sent, how many flood lines were sent, and the
/// stats once the daemon has received them all.
fn flood_beside_quiet(
    evict: &str,
    seconds: usize,
    then: impl FnOnce(&Daemon),
) -> (Daemon, Vec<String>, u64, Value) {
    let d = Daemon::start(&[&RING[..], &["--evict", evict]].concat());
    let stop = AtomicBool::new(false);
    let flooded = AtomicU64::new(0);
    let tag = unique(evict);
    let quiet = std::thread::scope(|s| {
        s.spawn(|| flood(&d.log, &stop, &flooded));
        let quiet = quiet_services(&d.log, seconds, &tag);
        then(&d);
        stop.store(true, Ordering::Relaxed);
        quiet
    });
    let flooded = flooded.load(Ordering::Relaxed);
    let stats = wait_received(&d, flooded + quiet.len() as u64);
    (d, quiet, flooded, stats)
}

#[test]
fn a_flood_keeps_no_quiet_service_from_its_errors() {
    let (d, quiet, flooded, stats) = flood_beside_quiet("fair", 60, |_| {
        // The last error went out at 59 s: a second more of flood after it.
        std::thread::sleep(Duration::from_secs(1));
    });
    assert_eq!(quiet.len(), 180);

    // Every quiet error is still there, by content.
    let held = held_errors(&d);
    let missing: Vec<&String> = quiet.iter().filter(|m| !held.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "{} of 180 quiet errors were evicted, e.g. {:?}; stats: {stats}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );

    // The flood wrapped the ring many times and lost its oldest lines.
    assert!(
        flooded >= 5 * MAX_LINES,
        "the flood sent only {flooded} lines: too few to wrap the ring 5 times"
    );
    assert_eq!(stats["ring"]["evict"], "fair", "{stats}");
    let syslog = &stats["inputs"]["syslog"];
    assert_eq!(n(syslog, "dropped"), 0, "{syslog}");
    assert_inputs_balance(&stats);

    // Per source: the flood stored every line sent, and what it lost is
    // exactly what it no longer holds.
    assert_sources_balance(&stats);
    let f = &stats["sources"]["flood"];
    assert_eq!(n(f, "stored"), flooded, "flood: {f}");
    assert_eq!(n(f, "held"), count_app(&d, "flood"), "flood: {f}");
    assert_eq!(n(f, "evicted"), flooded - n(f, "held"), "flood: {f}");
    assert!(
        n(f, "evicted") >= 4 * MAX_LINES,
        "the flood's lines were evicted: {f}"
    );
    assert_quiet_sources(&stats, (60, 0, 60));
    // The ring holds more than the quiet errors: the newest flood lines.
    assert!(n(f, "held") > 0, "flood: {f}");
    assert!(is_running(d.pid()), "ringlogd is gone");
}

/// The same flood under `--evict fifo`: once the flood has stored more than
/// the ring holds after the last quiet error, every quiet error is gone.
/// This is what makes the test above mean something.
#[test]
fn under_fifo_the_same_flood_evicts_the_quiet_errors() {
    let (d, quiet, flooded, stats) = flood_beside_quiet("fifo", 5, |d| {
        // Flood on until the daemon has stored more than a ring's worth
        // of lines after the last quiet error.
        let after = d.stats()["inputs"]["syslog"]["received"].as_u64().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while d.stats()["inputs"]["syslog"]["stored"].as_u64().unwrap() < after + 2 * MAX_LINES {
            assert!(Instant::now() < deadline, "the flood stalled");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let held = held_errors(&d);
    let kept: Vec<&String> = quiet.iter().filter(|m| held.contains(*m)).collect();
    assert!(
        kept.is_empty(),
        "fifo kept {} of {} quiet errors: {kept:?}",
        kept.len(),
        quiet.len()
    );
    assert_eq!(stats["ring"]["evict"], "fifo", "{stats}");
    assert_inputs_balance(&stats);
    assert_sources_balance(&stats);
    let f = &stats["sources"]["flood"];
    assert_eq!(n(f, "stored"), flooded, "flood: {f}");
    assert_quiet_sources(&stats, (5, 5, 0));
}
