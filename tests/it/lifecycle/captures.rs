//! Captures through the daemon's life: refused filters at start, a restart
//! loop making one capture, the budget under many triggers, and captures
//! with their pins kept across a re-exec and a snapshot.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::captures::CAPTURING;
use crate::support::*;

/// 200 lines, one err, 200 lines, sent at once; their messages.
fn burst(d: &Daemon, tag: &str) -> Vec<String> {
    let msgs: Vec<String> = (0..401).map(|i| format!("{tag} burst {i}")).collect();
    d.send_many(401, |i| {
        let pri = if i == 200 { 11 } else { 14 };
        format!("<{pri}>Dec  7 06:00:00 app: {}", msgs[i])
    });
    msgs
}

fn flood(d: &Daemon, tag: &str, n: usize) {
    d.send_many(n, |i| format!("<14>Dec  7 06:00:00 app: {tag} flood {i}"));
    let want = format!("{tag} flood {}", n - 1);
    d.wait_for("the flood", |e| e.iter().any(|v| v["msg"] == want.as_str()));
}

fn captures(d: &Daemon) -> Value {
    d.stats()["captures"].clone()
}

fn wait_complete(d: &Daemon, n: u64) {
    d.wait_until("the capture complete", |d| {
        captures(d)["complete"].as_u64() == Some(n)
    });
}

/// Every message of `want` is held, in order.
fn assert_held_in_order(d: &Daemon, want: &[String]) {
    let held: Vec<String> = d
        .dump()
        .iter()
        .filter_map(|v| v["msg"].as_str().map(str::to_owned))
        .filter(|m| want.contains(m))
        .collect();
    assert_eq!(held, want, "the capture's entries, in order");
}

/// How many entries the ring holds before the one whose message is `msg`.
fn entries_before(d: &Daemon, msg: &str) -> u64 {
    let all = d.dump();
    let at = all.iter().position(|v| v["msg"] == msg).expect("held");
    at as u64
}

#[test]
fn bad_capture_filters_are_refused_at_start_with_a_clear_message() {
    for (filter, says) in [
        ("prio=err", "unknown key \"prio\""),
        ("priority=loud", "\"loud\" is not a level"),
        ("grep=(unclosed", "grep"),
        ("", "no condition"),
    ] {
        let out = Command::new(RINGLOGD)
            .args(["--capture", filter])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{filter}: {err}");
        assert!(
            err.contains("--capture") && err.contains(says),
            "{filter}: {err}"
        );
    }
    // In a configuration file, as a table: the file, the line and the key.
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("r.toml");
    std::fs::write(&conf, "max-lines = 100\n\n[[capture]]\nprio = \"err\"\n").unwrap();
    let out = Command::new(RINGLOGD)
        .args(["--check-config", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("r.toml:3:") && err.contains("unknown key \"prio\""),
        "{err}"
    );
}

#[test]
fn a_restart_loop_makes_one_growing_capture_within_its_span() {
    // The same loop into two daemons: one with the default span, one with
    // a span of 10 s.
    let long = Daemon::start(&["--capture", "priority=err", "--capture-after", "1s"]);
    let short = Daemon::start(&[
        "--capture",
        "priority=err",
        "--capture-after",
        "1s",
        "--capture-before",
        "2s",
        "--capture-max-span",
        "10s",
    ]);
    // An error every 100 ms for 30 s.
    let start = Instant::now();
    for i in 0..300u32 {
        let due = start + Duration::from_millis(100) * i;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        for d in [&long, &short] {
            d.send(format!("<11>Dec  7 06:00:00 svc[1]: crashed, restarting ({i})").as_bytes());
        }
    }
    for d in [&long, &short] {
        d.wait_until("every crash stored", |d| {
            d.stats()["sources"]["svc"]["stored"].as_u64() == Some(300)
        });
    }
    let c = captures(&long);
    assert_eq!(c["started"], 1, "{c}");
    assert_eq!(c["extended"], 299, "{c}");
    wait_complete(&long, 1);
    // Every crash, and what the daemon logged in the 30 s before the first.
    assert_eq!(
        captures(&long)["entries_pinned"].as_u64(),
        Some(300 + entries_before(&long, "crashed, restarting (0)"))
    );
    // A span of 10 s: a capture per 10 s of the loop, each within it.
    let c = captures(&short);
    let started = c["started"].as_u64().unwrap();
    assert!((3..=4).contains(&started), "{c}");
    assert_eq!(c["extended"].as_u64().unwrap() + started, 300, "{c}");
}

#[test]
fn the_budget_holds_under_many_triggers_and_releases_are_counted() {
    let d = Daemon::start(&[
        "--max-bytes",
        "1M",
        "--capture",
        "priority=err",
        "--capture-before",
        "1s",
        "--capture-after",
        "0",
        "--capture-max",
        "3",
        "--capture-max-bytes",
        "16k",
    ]);
    let pad = "p".repeat(200);
    for round in 0..8 {
        // 50 lines of 200 bytes, then an error: the next round's first
        // line closes the capture.
        d.send_many(50, |i| {
            format!("<14>Dec  7 06:00:00 app: r{round} {i} {pad}")
        });
        d.send(format!("<11>Dec  7 06:00:00 app: r{round} failed").as_bytes());
        d.wait_until("the trigger stored", |d| {
            captures(d)["started"].as_u64() == Some(round + 1)
        });
        let c = captures(&d);
        // Pinned bytes stay within the budget plus one chunk.
        assert!(
            c["bytes_pinned"].as_u64().unwrap() <= (16 << 10) + (64 << 10),
            "{c}"
        );
        assert!(
            c["open"].as_u64().unwrap() + c["complete"].as_u64().unwrap() <= 3,
            "{c}"
        );
    }
    let c = captures(&d);
    assert_eq!(c["max_bytes"], 16 << 10, "{c}");
    let held = c["open"].as_u64().unwrap() + c["complete"].as_u64().unwrap();
    assert_eq!(
        c["released_for_budget"].as_u64().unwrap() + c["refused"].as_u64().unwrap(),
        8 - held,
        "{c}"
    );
    assert!(c["released_for_budget"].as_u64().unwrap() >= 5, "{c}");
}

#[test]
fn captures_and_their_pins_survive_a_reexec_and_a_snapshot() {
    let keep = tempfile::tempdir().unwrap();
    let snap = keep.path().join("ring.snapshot");
    let args = [CAPTURING, &["--snapshot", snap.to_str().unwrap()]].concat();
    let d = Daemon::start(&args);
    let want = burst(&d, "a");
    wait_complete(&d, 1);
    let before = captures(&d);
    // The burst, and what the daemon logged in the 5 s before it.
    let pinned = 401 + entries_before(&d, &want[0]);
    assert_eq!(before["entries_pinned"].as_u64(), Some(pinned), "{before}");

    // Re-exec: the successor adopts the ring, its captures and pins.
    signal(d.pid(), "USR2");
    d.wait_for("the successor", |e| {
        e.iter().any(|v| msg_starts(v, "re-executed"))
    });
    assert_eq!(captures(&d), before);
    flood(&d, "b", 5000);
    assert_held_in_order(&d, &want);

    // A clean stop writes the snapshot; the next start loads it whole.
    let d = d.restart(&args);
    d.wait_for("the snapshot loaded", |e| {
        e.iter().any(|v| msg_starts(v, "memlogd started; loaded"))
    });
    let after = captures(&d);
    assert_eq!(after["entries_pinned"].as_u64(), Some(pinned), "{after}");
    assert_eq!(after["complete"], 1, "{after}");
    flood(&d, "c", 5000);
    assert_held_in_order(&d, &want);
    assert!(d.dump().len() <= 1000 + 401);
}

#[test]
fn a_kernel_oops_in_kmsg_starts_a_kernel_capture() {
    if !root_or_skip("writing to /dev/kmsg") {
        return;
    }
    // Only this test's line may match: other kernel records in the log
    // (a boot line with panic=, an old BUG:) must not count here.
    let nonce = format!("ringlogd-test-{}", std::process::id());
    let filter = format!("source=kernel&grep=(Oops|BUG:|panic).*{nonce}");
    let d = Daemon::start_with_kmsg(&[
        "--max-lines",
        "200000",
        "--max-bytes",
        "256M",
        "--capture",
        &filter,
        "--capture-before",
        "1s",
        "--capture-after",
        "200ms",
    ]);
    let oops = format!("BUG: unable to handle page fault for address: 0000000000000008 {nonce}");
    // From user space the kernel stores facility user; the tag names the
    // source, as a driver's record names the kernel.
    let mut kmsg = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .expect("open /dev/kmsg for writing");
    std::io::Write::write_all(&mut kmsg, format!("<2>kernel: {oops}\n").as_bytes())
        .expect("write to /dev/kmsg");
    let e = d.entry_with_text(&nonce);
    assert_eq!(
        (e["source"].as_str(), e["input"].as_str()),
        (Some("kernel"), Some("kmsg")),
        "{e}"
    );
    wait_complete(&d, 1);
    let c = captures(&d);
    assert_eq!(c["started"], 1, "{c}");
    assert!(c["entries_pinned"].as_u64().unwrap() >= 1, "{c}");
}
