//! The memlogd query socket: dump, follow, dump+follow, the ring's bounds
//! as readers see them, and clients that misbehave.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::Value;

/// Send `n` messages numbered from 0 as `<label> <i>`, blocking when the
/// daemon's socket is full (so none is lost on the way).
fn send_numbered(d: &Daemon, label: &str, n: usize) {
    d.send_many(n, |i| format!("<13>Nov 21 23:40:10 gen: {label} {i}"));
}

fn number_of(v: &Value, label: &str) -> Option<usize> {
    v["msg"].as_str()?.strip_prefix(label)?.trim().parse().ok()
}

#[test]
fn dump_is_oldest_first_with_memlogd_keys_first() {
    let d = Daemon::start(&[]);
    send_numbered(&d, "order", 20);
    let entries = d.wait_for("20 entries", |e| e.len() == 21);
    assert_eq!(entries[0]["source"], "memlogd");
    assert_eq!(entries[0]["msg"], "memlogd started");
    assert_eq!(entries[0]["input"], "internal");
    for (i, e) in entries[1..].iter().enumerate() {
        assert_eq!(number_of(e, "order"), Some(i));
        assert_eq!(e["seq"], i as u64 + 1);
    }
    // memlogd's three keys first, in its order, for LinuxKit's logread.
    let raw = d.query_raw(&[0]);
    let first = raw.split(|&b| b == b'\n').nth(1).unwrap();
    assert!(
        first.starts_with(b"{\"time\":\""),
        "{}",
        String::from_utf8_lossy(first)
    );
    let s = String::from_utf8_lossy(first);
    let (t, so, m) = (
        s.find("\"time\"").unwrap(),
        s.find("\"source\"").unwrap(),
        s.find("\"msg\"").unwrap(),
    );
    assert!(t < so && so < m, "{s}");
    let time = entries[1]["time"].as_str().unwrap();
    assert!(
        time.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(time).is_ok(),
        "{time}"
    );
}

#[test]
fn follow_sees_only_new_entries() {
    let d = Daemon::start(&[]);
    send_numbered(&d, "old", 5);
    d.wait_for("old entries", |e| e.len() == 6);
    let c = UnixStream::connect(&d.query).unwrap();
    (&c).write_all(&[1]).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The request is read asynchronously: wait until the follower is in.
    std::thread::sleep(Duration::from_millis(200));
    send_numbered(&d, "new", 3);
    let mut r = BufReader::new(c);
    for i in 0..3 {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(number_of(&v, "new"), Some(i), "{line}");
    }
}

#[test]
fn dump_then_follow_has_no_gap_and_no_duplicate_while_writing() {
    let d = Daemon::start(&["--max-lines", "100000"]);
    let total = 20_000;
    std::thread::scope(|s| {
        s.spawn(|| send_numbered(&d, "flow", total));
        // Join in the middle of the stream.
        d.wait_for("some entries", |e| e.len() > 100);
        let c = UnixStream::connect(&d.query).unwrap();
        (&c).write_all(&[2]).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut r = BufReader::new(c);
        let mut expect_seq = 0u64;
        let mut expect_n = 0usize;
        let mut line = String::new();
        while expect_n < total {
            line.clear();
            assert!(r.read_line(&mut line).unwrap() > 0, "stream ended early");
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["seq"], expect_seq, "gap or duplicate at {line}");
            expect_seq += 1;
            if let Some(n) = number_of(&v, "flow") {
                assert_eq!(n, expect_n, "{line}");
                expect_n += 1;
            }
        }
    });
}

#[test]
fn eviction_by_lines_keeps_the_newest_and_counts_the_rest() {
    // Oldest first (the fair policy has ingest::fairness).
    let d = Daemon::start(&["-max-lines=10", "--evict", "fifo"]);
    send_numbered(&d, "ev", 50);
    let entries = d.wait_for("the last entry", |e| {
        e.last().and_then(|v| number_of(v, "ev")) == Some(49)
    });
    assert_eq!(entries.len(), 10);
    let nums: Vec<usize> = entries.iter().filter_map(|v| number_of(v, "ev")).collect();
    assert_eq!(nums, (40..50).collect::<Vec<_>>());
    let stats = d.stats();
    let evicted = stats["inputs"]["syslog"]["evicted"].as_u64().unwrap()
        + stats["inputs"]["internal"]["evicted"].as_u64().unwrap();
    assert_eq!(evicted, 41, "{stats}");
    assert_eq!(stats["ring"]["entries"], 10);
    d.assert_ledger_balances("syslog");
}

#[test]
fn compressed_chunks_hold_several_times_more_in_the_same_budget() {
    let held = |compress: &str| {
        let d = Daemon::start(&[
            "--max-lines",
            "1000000",
            "--max-bytes",
            "1M",
            "--compress",
            compress,
        ]);
        d.send_many(100_000, |i| {
            format!(
                "<13>Nov 21 23:40:10 gen: request {i} from 10.1.{}.{} took {} ms",
                i % 9,
                i % 200,
                i % 37
            )
        });
        d.wait_for_counters("syslog", |c| c["received"] == 100_000);
        let stats = d.stats();
        assert!(
            stats["ring"]["bytes"].as_u64().unwrap() <= 1 << 20,
            "{stats}"
        );
        assert_eq!(stats["ring"]["compress"], compress);
        d.assert_ledger_balances("syslog");
        stats["ring"]["entries"].as_u64().unwrap()
    };
    let (zstd, none) = (held("zstd"), held("none"));
    assert!(zstd >= 3 * none, "zstd holds {zstd}, none {none}");
}

#[test]
fn eviction_by_bytes_bounds_the_ring_memory() {
    let d = Daemon::start(&[
        "--max-lines",
        "1000000",
        "--max-bytes",
        "64k",
        "--compress",
        "none",
    ]);
    let pad = "p".repeat(400);
    d.send_many(2000, |i| format!("<13>Nov 21 23:40:10 gen: big {i} {pad}"));
    let entries = d.wait_for("the last entry", |e| {
        e.last()
            .is_some_and(|v| v["msg"].as_str().unwrap().starts_with("big 1999 "))
    });
    let stats = d.stats();
    let bytes = stats["ring"]["bytes"].as_u64().unwrap();
    assert!(bytes <= 64 << 10, "ring uses {bytes} bytes: {stats}");
    // ~450-byte entries in 64 KiB: about 140 would fit, less the ring's
    // header page, the open chunk's pages and each chunk's last page.
    assert!(
        (90..=150).contains(&entries.len()),
        "{} entries held",
        entries.len()
    );
    let c = d.assert_ledger_balances("syslog");
    let syslog = entries.iter().filter(|e| e["input"] == "syslog").count();
    assert_eq!(
        c["stored"].as_u64().unwrap() - c["evicted"].as_u64().unwrap(),
        syslog as u64,
        "every entry not held is counted as evicted: {c}"
    );
}

#[test]
fn a_lapped_follower_is_told_how_many_it_missed() {
    let d = Daemon::start(&["--max-lines", "100"]);
    let c = UnixStream::connect(&d.query).unwrap();
    (&c).write_all(&[1]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // The follower reads nothing while far more than the ring and its
    // socket buffer hold is written.
    let total = 30_000;
    send_numbered(&d, "lap", total);
    d.wait_for("the last entry", |e| {
        e.last().and_then(|v| number_of(v, "lap")) == Some(total - 1)
    });
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(c);
    let (mut next, mut missed_total, mut notices) = (None::<u64>, 0u64, 0);
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        if is_eviction_note(&v) {
            continue;
        }
        if let Some(m) = v.get("missed") {
            assert_eq!(v["source"], "memlogd");
            assert_eq!(v["input"], "internal");
            let m = m.as_u64().unwrap();
            assert!(v["msg"].as_str().unwrap().contains(&m.to_string()));
            next = next.map(|n| n + m);
            missed_total += m;
            notices += 1;
            continue;
        }
        let seq = v["seq"].as_u64().unwrap();
        if let Some(n) = next {
            assert_eq!(seq, n, "entries and missed counts account for every seq");
        }
        next = Some(seq + 1);
        if number_of(&v, "lap") == Some(total - 1) {
            break;
        }
    }
    assert!(notices >= 1 && missed_total > 0);
    let stats = d.stats();
    assert_eq!(stats["queries"]["missed"], missed_total, "{stats}");
}

#[test]
fn a_dump_the_ring_laps_is_told_how_many_of_the_entries_held_when_it_asked_it_missed() {
    // Entries far larger than what the sockets between the daemon and
    // the reader buffer, so the reader is still in the first part of the
    // ring when the flood below overwrites it.
    let d = Daemon::start(&["--max-lines", "3000", "--max-bytes", "64M"]);
    let pad = "x".repeat(900);
    d.send_many(3000, |i| format!("<13>Nov 21 23:40:10 gen: held {i} {pad}"));
    d.wait_for("a full ring", |e| {
        e.last()
            .and_then(|v| v["msg"].as_str())
            .is_some_and(|m| m.starts_with("held 2999 "))
    });
    // What it holds when the reader asks (the holes fair eviction left
    // already are nothing the reader missed).
    let held: Vec<u64> = d
        .dump()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let c = UnixStream::connect(&d.query).unwrap();
    (&c).write_all(b"{\"mode\":\"dump\"}\n").unwrap();
    let mut r = BufReader::new(c);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let first: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(first["seq"].as_u64(), Some(held[0]));
    // Twice the ring, while the reader reads nothing.
    d.send_many(6000, |i| {
        format!("<13>Nov 21 23:40:10 gen: flood {i} {pad}")
    });
    d.wait_for("the flood", |e| {
        e.last()
            .and_then(|v| v["msg"].as_str())
            .is_some_and(|m| m.starts_with("flood 5999 "))
    });
    // Each notice tells of the entries held then, between the last entry
    // the reader got and the next.
    let held_between = |a: u64, b: u64| held.iter().filter(|&&s| a < s && s < b).count() as u64;
    let (mut last, mut told, mut missed, mut got) = (held[0], 0u64, 0u64, 1u64);
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let v: Value = serde_json::from_str(&line).unwrap();
        if is_eviction_note(&v) {
            continue;
        }
        if let Some(m) = v["missed"].as_u64() {
            told += m;
            missed += m;
            continue;
        }
        let seq = v["seq"].as_u64().unwrap();
        assert_eq!(
            told,
            held_between(last, seq),
            "told before seq {seq}, after {last}"
        );
        (last, told) = (seq, 0);
        got += 1;
    }
    assert_eq!(
        told,
        held_between(last, u64::MAX),
        "told at the end, after {last}"
    );
    assert!(
        missed > 0,
        "the flood overwrote entries the reader had not got"
    );
    assert_eq!(
        got + missed,
        held.len() as u64,
        "every entry held when it asked is got or told of"
    );
    assert_eq!(d.stats()["queries"]["missed"], missed);
}

#[test]
fn a_silent_client_does_not_delay_other_queries_and_is_timed_out() {
    let d = Daemon::start(&[]);
    let silent = UnixStream::connect(&d.query).unwrap();
    let started = Instant::now();
    send_numbered(&d, "busy", 3);
    let out = d.logread(&[]);
    assert!(out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the dump waited for the silent client"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4);
    // The silent one is closed after its 5 s.
    silent
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut buf = Vec::new();
    (&silent).read_to_end(&mut buf).unwrap();
    assert!(started.elapsed() >= Duration::from_secs(4));
    assert!(buf.is_empty());
    assert_eq!(d.stats()["queries"]["timeouts"], 1);
}

#[test]
fn a_bad_mode_byte_gets_one_error_line_and_a_close() {
    let d = Daemon::start(&[]);
    for bad in [3u8, 0x7f, b'x', 0xff] {
        let out = d.query_raw(&[bad]);
        let lines = parse_lines(&out);
        assert_eq!(lines.len(), 1, "{}", String::from_utf8_lossy(&out));
        assert!(lines[0]["error"].as_str().unwrap().contains("mode"));
    }
    let out = parse_lines(&d.query_raw(b"{\"mode\":\"dump\",\"bogus\":1}\n"));
    assert!(out[0]["error"].as_str().unwrap().contains("bogus"));
    assert_eq!(d.stats()["queries"]["bad_requests"], 5);
}

#[test]
fn a_half_closed_client_still_gets_its_dump() {
    // `printf '\0' | socat - UNIX-CONNECT:...` closes its sending side first.
    let d = Daemon::start(&[]);
    send_numbered(&d, "half", 3);
    d.wait_for("entries", |e| e.len() == 4);
    let mut child = Command::new(require("socat"))
        .arg("-t5")
        .arg("-")
        .arg(format!("UNIX-CONNECT:{}", d.query.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&[0]).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(parse_lines(&out.stdout).len(), 4);
}

#[test]
fn logread_prints_memlogd_text_lines() {
    let d = Daemon::start(&[]);
    d.send(b"<13>Nov 21 23:40:10 a;b: semi;colon");
    d.wait_for("entry", |e| e.len() == 2);
    let out = d.logread(&[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].ends_with(";memlogd;memlogd started"),
        "{}",
        lines[0]
    );
    let (time, rest) = lines[1].split_once(';').unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok());
    assert_eq!(rest, "a\\;b;semi;colon");
}

#[test]
fn logread_json_tail_and_go_style_flags() {
    let d = Daemon::start(&[]);
    send_numbered(&d, "tail", 10);
    d.wait_for("entries", |e| e.len() == 11);
    let out = Command::new(LOGREAD)
        .arg("-socket")
        .arg(&d.query)
        .args(["-n", "3", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v = parse_lines(&out.stdout);
    let nums: Vec<usize> = v.iter().filter_map(|e| number_of(e, "tail")).collect();
    assert_eq!(nums, [7, 8, 9]);
    let stats = d.logread(&["--stats"]);
    let s: Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(s["inputs"]["syslog"]["stored"], 10);
}

#[test]
fn logread_follow_then_dump_follow() {
    let d = Daemon::start(&[]);
    send_numbered(&d, "pre", 2);
    d.wait_for("entries", |e| e.len() == 3);
    let mut big_f = d.spawn_logread(&["-F"]);
    let mut small_f = d.spawn_logread(&["-f"]);
    std::thread::sleep(Duration::from_millis(300));
    send_numbered(&d, "post", 2);
    let read_lines = |child: &mut std::process::Child, n: usize| {
        let mut r = BufReader::new(child.stdout.take().unwrap());
        let mut v = Vec::new();
        for _ in 0..n {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            v.push(l.trim_end().rsplit(';').next().unwrap().to_owned());
        }
        v
    };
    assert_eq!(
        read_lines(&mut big_f, 5),
        ["memlogd started", "pre 0", "pre 1", "post 0", "post 1"]
    );
    assert_eq!(read_lines(&mut small_f, 2), ["post 0", "post 1"]);
    let _ = big_f.kill();
    let _ = small_f.kill();
    let _ = big_f.wait();
    let _ = small_f.wait();
}

#[test]
fn logread_without_a_daemon_says_which_socket_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("nothing.sock");
    let out = Command::new(LOGREAD)
        .arg("--socket")
        .arg(&sock)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(sock.to_str().unwrap()), "{err}");
}

#[test]
fn logread_into_head_exits_quietly() {
    let d = Daemon::start(&[]);
    send_numbered(&d, "pipe", 3000);
    d.wait_for("entries", |e| e.len() == 3001);
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} --socket {} | head -n 2; echo \"status=${{PIPESTATUS:-$?}}\"",
            LOGREAD,
            d.query.display()
        ))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // With bash's pipefail the exit status of logread itself shows.
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; {} --socket {} | head -n 1 >/dev/null",
            LOGREAD,
            d.query.display()
        ))
        .status()
        .unwrap();
    assert!(status.success(), "logread exited {status} on a closed pipe");
}

#[test]
fn max_bytes_bounds_resident_memory_whatever_the_input() {
    let d = Daemon::start(&["--max-lines", "10000000", "--max-bytes", "4M"]);
    let empty = owned_kib(d.pid());
    let s = UnixDatagram::unbound().unwrap();
    // 40 MiB of varied messages through a 4 MiB ring. The padding is
    // random letters, so compression cannot keep the ring below its budget
    // and the bound is reached on every run, however fast the compressor.
    let mut bits = noise(0x2545_f491_4f6c_dd1d);
    for i in 0..40_000usize {
        let pad: String = bits
            .by_ref()
            .take(100 + (i * 7919) % 1900)
            .map(|x| (b'a' + (x % 26) as u8) as char)
            .collect();
        s.send_to(
            format!("<13>Nov 21 23:40:10 gen: mem {i} {pad}").as_bytes(),
            &d.log,
        )
        .unwrap();
    }
    d.wait_for("the last entry", |e| {
        e.last()
            .is_some_and(|v| v["msg"].as_str().unwrap().starts_with("mem 39999 "))
    });
    let full = owned_kib(d.pid());
    let stats = d.stats();
    let ring = stats["ring"]["bytes"].as_u64().unwrap();
    assert!(ring <= 4 << 20, "{stats}");
    assert!(
        ring >= 3 << 20,
        "the ring never reached its budget: {stats}"
    );
    // Beyond the ring: the compressor's and readers' zstd contexts, the
    // receive batch, query buffers and the allocator's slack. A debug build
    // measured 1.5 to 2.3 MiB of them with rings of 1M and 16M alike.
    assert!(
        full <= empty + 4 * 1024 + 3 * 1024,
        "the daemon's own memory grew from {empty} KiB to {full} KiB for a 4 MiB ring"
    );
}
