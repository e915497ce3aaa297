//! Captures in the tests: the short windows they use (2 s before a
//! trigger, 500 ms after), making one with lines inside and outside its
//! window, and which entries of a dump its window holds.

use std::time::Duration;

use chrono::DateTime;
use serde_json::Value;

use super::{poll, Daemon};

/// A ring of 1000 lines that captures every `err`, 5 s back and 2 s on.
pub const CAPTURING: &[&str] = &[
    "--max-lines",
    "1000",
    "--capture",
    "priority=err",
    "--capture-before",
    "5s",
    "--capture-after",
    "2s",
];

const BEFORE_NS: i64 = 2_000_000_000;
const AFTER_NS: i64 = 500_000_000;

/// `--capture TRIGGER` with the short windows.
pub fn capture_args(trigger: &str) -> Vec<String> {
    [
        "--capture",
        trigger,
        "--capture-before",
        "2s",
        "--capture-after",
        "500ms",
    ]
    .map(String::from)
    .to_vec()
}

/// Send `n` lines `TAG-i` from app `test`.
pub fn send_lines(d: &Daemon, tag: &str, n: usize) {
    d.send_many(n, |i| format!("<14>1 - - test - - - {tag}-{i}"));
}

/// Wait until the daemon counts `n` captures completed; its stats.
pub fn wait_completed(d: &Daemon, n: u64) -> Value {
    poll(
        &format!("{n} captures completed"),
        Duration::from_secs(15),
        || d.stats(),
        |s| s["captures"]["completed"].as_u64() >= Some(n),
    )
}

/// Make capture number `n` (counting from 1) around the trigger line
/// `trigger`: a line `TAG-early-0` 3 s before it (outside its 2 s window),
/// three lines `TAG-before-i` just before it, two `TAG-after-i` just after;
/// returns once the capture is complete. The lines are from app `test`.
pub fn make_capture(d: &Daemon, tag: &str, trigger: &str, n: u64) {
    send_lines(d, &format!("{tag}-early"), 1);
    std::thread::sleep(Duration::from_secs(3));
    send_lines(d, &format!("{tag}-before"), 3);
    d.send(format!("<11>1 - - test - - - {trigger}").as_bytes());
    send_lines(d, &format!("{tag}-after"), 2);
    wait_completed(d, n);
}

fn time_ns(e: &Value) -> i64 {
    let t = e["time"].as_str().unwrap_or_else(|| panic!("no time: {e}"));
    DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|err| panic!("{t}: {err}"))
        .timestamp_nanos_opt()
        .expect("a time in range")
}

/// The entries of `dump` the window of the trigger `trigger` holds: those
/// received from 2 s before it to 500 ms after it.
pub fn window(dump: &[Value], trigger: &str) -> Vec<Value> {
    let t = dump
        .iter()
        .find(|e| e["msg"] == trigger)
        .map(time_ns)
        .unwrap_or_else(|| panic!("no trigger {trigger:?} in {dump:#?}"));
    dump.iter()
        .filter(|e| (t - BEFORE_NS..=t + AFTER_NS).contains(&time_ns(e)))
        .cloned()
        .collect()
}

/// The messages of `entries`.
pub fn msgs(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["msg"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The messages a capture made by [`make_capture`] with `tag` must hold
/// at least, and the one it must not.
pub fn assert_context(msgs: &[String], tag: &str, trigger: &str) {
    for want in [
        format!("{tag}-before-0"),
        format!("{tag}-before-2"),
        trigger.to_owned(),
        format!("{tag}-after-1"),
    ] {
        assert!(msgs.contains(&want), "{want} missing from {msgs:#?}");
    }
    let early = format!("{tag}-early-0");
    assert!(
        !msgs.contains(&early),
        "{early} is outside the window: {msgs:#?}"
    );
}
