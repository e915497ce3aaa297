//! Multi-line joining of fd output (`--multiline`): stack traces and
//! continued lines become one entry per source, in each of logspout's
//! modes, and an entry waiting for more lines is stored after the flush
//! timeout.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::support::*;

/// The messages of `source` once `n` arrived, with `args` for the daemon.
fn joined(args: &[&str], lines: &str, n: usize) -> Vec<String> {
    let d = Daemon::start(args);
    let mut w = d.pass_socketpair("app");
    w.write_all(lines.as_bytes()).unwrap();
    drop(w); // the fd's end completes the last entry
    d.wait_lines("app", n)
}

#[test]
fn every_mode_joins_as_logspout_does() {
    let trace = "Exception in thread main\n  at a(A.java:1)\n  at b(B.java:2)\nnext line\n";
    let want = vec![
        "Exception in thread main\n  at a(A.java:1)\n  at b(B.java:2)".to_owned(),
        "next line".to_owned(),
    ];
    assert_eq!(
        joined(&["--multiline", r"^\s"], trace, 2),
        want,
        "nonfirst, the default"
    );
    assert_eq!(
        joined(
            &["--multiline", r"^\S", "--multiline-match", "first"],
            trace,
            2
        ),
        want
    );
    let continued = "part one \\\npart two \\\nend\nsingle\n";
    let want = vec![
        "part one \\\npart two \\\nend".to_owned(),
        "single".to_owned(),
    ];
    assert_eq!(
        joined(
            &["--multiline", r"\\$", "--multiline-match", "nonlast"],
            continued,
            2
        ),
        want
    );
    assert_eq!(
        joined(
            &["--multiline", r"[^\\]$", "--multiline-match", "last"],
            continued,
            2
        ),
        want
    );
}

#[test]
fn sources_are_joined_apart_and_the_flush_timeout_stores_a_waiting_entry() {
    let d = Daemon::start(&["--multiline", r"^\s", "--multiline-flush", "300"]);
    let mut a = d.pass_socketpair("a");
    let mut b = d.pass_socketpair("b");
    a.write_all(b"a head\n").unwrap();
    b.write_all(b"b head\n").unwrap();
    a.write_all(b"  a more\n").unwrap();
    b.write_all(b"  b more\n").unwrap();
    let written = Instant::now();
    // Nothing says the traces are over, and the fds stay open: the flush
    // timeout stores them.
    assert_eq!(d.wait_lines("a", 1), vec!["a head\n  a more"]);
    let waited = written.elapsed();
    assert_eq!(d.wait_lines("b", 1), vec!["b head\n  b more"]);
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "stored after {waited:?}, with a 300 ms flush timeout"
    );
    // A later line starts a new entry, and the time is the first line's.
    a.write_all(b"a again\n").unwrap();
    drop(a);
    assert_eq!(d.wait_lines("a", 2)[1], "a again");
    let e = d.entries_of("b");
    assert_eq!(e[0]["severity"], serde_json::Value::Null);
    // Entries, not lines.
    d.assert_ledger("fd", &[("stored", 3)]);
}

#[test]
fn the_default_flush_timeout_is_half_a_second_and_entries_stay_bounded() {
    let d = Daemon::start(&["--multiline", r"^\s", "--max-line-len", "20"]);
    let mut w = d.pass_socketpair("big");
    w.write_all(b"head\n  one two three four\n  five\n")
        .unwrap();
    let t = Instant::now();
    let got = d.wait_lines("big", 1);
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "stored after {waited:?}"
    );
    assert_eq!(got, vec!["head\n  one two three"], "cut at 20 bytes");
    assert_eq!(d.entries_of("big")[0]["truncated"], true);
}
