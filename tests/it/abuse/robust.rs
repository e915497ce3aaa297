//! Hostile input on `/dev/log`, and signals: whatever arrives, the daemon
//! keeps running, keeps what it holds, stores what it can, and counts the
//! rest. Every case ends with [`Daemon::assert_still_serves`]: still
//! running, a normal message sent afterwards is stored and readable, and
//! received = stored + dropped for every input.
//!
//! The query socket's abuse is in `robust_query.rs`, the fd intake's in
//! `robust_intake.rs`, fd exhaustion in `robust_limits.rs`, the long mixed
//! run in `soak.rs`.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::Value;

/// The one syslog entry whose message contains `needle`.
fn entry_containing(d: &Daemon, needle: &str) -> Value {
    let entries = d.wait_for(needle, |e| {
        e.iter()
            .any(|v| v["input"] == "syslog" && v["msg"].as_str().unwrap().contains(needle))
    });
    let mut found: Vec<Value> = entries
        .into_iter()
        .filter(|v| v["input"] == "syslog" && v["msg"].as_str().unwrap().contains(needle))
        .collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    found.remove(0)
}

#[test]
fn an_empty_datagram_is_an_empty_entry_counted_malformed() {
    let d = Daemon::start(&[]);
    d.send(b"");
    let c = d.wait_for_counters("syslog", |c| c["received"] == 1);
    assert_eq!(
        (c["stored"].as_u64(), c["malformed"].as_u64()),
        (Some(1), Some(1))
    );
    let e = d.dump();
    let empty: Vec<_> = e.iter().filter(|v| v["input"] == "syslog").collect();
    assert_eq!(empty[0]["msg"], "");
    d.assert_still_serves();
}

#[test]
fn a_64_kib_datagram_and_the_largest_a_sender_can_send_are_cut_and_flagged() {
    let d = Daemon::start(&[]);
    let s = UnixDatagram::unbound().unwrap();
    // As large a send buffer as the kernel grants (net.core.wmem_max).
    let _ = socket2::SockRef::from(&s).set_send_buffer_size(1 << 20);
    let tag = unique("big");
    let mut sizes = Vec::new();
    for size in [64 << 10, 200 << 10] {
        let head = format!("<13>Nov 21 23:40:10 {tag}: ");
        let mut dgram = head.into_bytes();
        dgram.resize(size, b'x');
        match s.send_to(&dgram, &d.log) {
            Ok(_) => sizes.push(size),
            // EMSGSIZE past the send buffer's limit: nobody can send it.
            Err(e) if e.raw_os_error() == Some(nix::libc::EMSGSIZE) => {}
            Err(e) => panic!("send {size}: {e}"),
        }
    }
    assert!(sizes.contains(&(64 << 10)));
    let entries = d.wait_for("the big datagrams", |e| {
        e.iter().filter(|v| v["app"] == tag.as_str()).count() == sizes.len()
    });
    for e in entries.iter().filter(|v| v["app"] == tag.as_str()) {
        assert_eq!(e["truncated"], true);
        assert_eq!(e["msg"].as_str().unwrap().len(), 8192, "--max-line-len");
        assert!(e["msg"].as_str().unwrap().bytes().all(|b| b == b'x'));
    }
    d.assert_ledger("syslog", &[("truncated", sizes.len() as u64)]);
    d.assert_still_serves();
}

#[test]
fn invalid_utf8_is_kept_as_escapes_and_the_output_stays_valid() {
    let d = Daemon::start(&[]);
    let tag = unique("bytes");
    let mut dgram = format!("<13>Nov 21 23:40:10 {tag}: ").into_bytes();
    dgram.extend_from_slice(b"a\xff\xfe b\xc3\x28 c\xe2\x82 d\xf0\x9f\x98 end \xed\xa0\x80");
    d.send(&dgram);
    // Bytes in the tag and a whole datagram that is no UTF-8 at all.
    d.send(b"<13>Nov 21 23:40:10 t\xffg: tagged");
    d.send(&[0xff; 300]);
    let e = entry_containing(&d, "end");
    assert_eq!(
        e["msg"],
        "a\\xff\\xfe b\\xc3( c\\xe2\\x82 d\\xf0\\x9f\\x98 end \\xed\\xa0\\x80"
    );
    entry_containing(&d, "tagged");
    entry_containing(&d, &"\\xff".repeat(300));
    // memlogd's text lines are UTF-8 too.
    let out = d.logread(&[]);
    assert!(String::from_utf8(out.stdout).is_ok());
    d.assert_still_serves();
}

#[test]
fn nuls_and_control_characters_are_kept_and_escaped_in_json() {
    let d = Daemon::start(&[]);
    let tag = unique("ctl");
    let body = "nul\0in\0the\0middle bell\x07 esc\x1b[31mred\x1b[0m tab\t cr\r lf\n del\x7f";
    d.send(format!("<13>Nov 21 23:40:10 {tag}: {body}").as_bytes());
    // A datagram that is nothing but control bytes.
    let all: Vec<u8> = (0u8..32).chain([127]).collect();
    d.send(&all);
    let e = d.wait_for(&tag, |e| e.iter().any(|v| v["app"] == tag.as_str()));
    let e = e.iter().find(|v| v["app"] == tag.as_str()).unwrap();
    assert_eq!(e["msg"], body, "every byte kept, as sent");
    // The JSON line on the wire escaped them: one line per entry.
    let raw = d.query_raw(format!("{{\"app\":\"{tag}\"}}\n").as_bytes());
    assert_eq!(raw.iter().filter(|&&b| b == b'\n').count(), 1);
    assert!(!raw.contains(&0), "no raw NUL on the wire");
    let c = d.wait_for_counters("syslog", |c| c["received"] == 2);
    assert_eq!(c["stored"], 2);
    d.assert_still_serves();
}

#[test]
fn impossible_priorities_keep_the_whole_text_as_user_notice() {
    let d = Daemon::start(&[]);
    let cases = [
        "<999>", "<>", "<-1>", "<1000>", "<192>", "<0x1>", "<13", "<<13>>",
    ];
    for (i, pri) in cases.iter().enumerate() {
        d.send(format!("{pri}Nov 21 23:40:10 app: case {i}").as_bytes());
    }
    let entries = d.wait_for("every case", |e| {
        e.iter().filter(|v| v["input"] == "syslog").count() == cases.len()
    });
    for (i, pri) in cases.iter().enumerate() {
        let want = format!("{pri}Nov 21 23:40:10 app: case {i}");
        let e = entries
            .iter()
            .find(|v| v["msg"] == want.as_str())
            .unwrap_or_else(|| panic!("{pri}: not kept whole: {entries:#?}"));
        assert_eq!(
            (e["facility"].as_str(), e["severity"].as_str()),
            (Some("user"), Some("notice"))
        );
        assert_eq!(e["source"], "syslog");
    }
    d.assert_ledger("syslog", &[("malformed", cases.len() as u64)]);
    d.assert_still_serves();
}

#[test]
fn a_10000_character_tag_is_stored_and_read_back() {
    let d = Daemon::start(&[]);
    let tag = "t".repeat(10_000);
    let msg = unique("long-tag");
    d.send(format!("<13>Nov 21 23:40:10 {tag}: {msg}-plain").as_bytes());
    d.send(format!("<13>Nov 21 23:40:10 {tag}[42]: {msg}-pid").as_bytes());
    d.send(format!("<13>1 2026-11-21T23:40:10Z host {tag} 42 - - {msg}-5424").as_bytes());
    d.send(format!("<13>{tag}: {msg}-python").as_bytes());
    for suffix in ["-plain", "-pid", "-5424"] {
        // Read as the tag: the app is the whole tag, the text is whole.
        let e = entry_containing(&d, &format!("{msg}{suffix}"));
        assert_eq!(e["app"], tag.as_str(), "{suffix}");
        assert_eq!(e["msg"], format!("{msg}{suffix}"));
    }
    // Without a timestamp, a tag that long is no tag (journald's rule): the
    // whole text is the message, cut at --max-line-len and flagged.
    let entries = d.wait_for("the untagged one", |e| {
        e.iter().any(|v| v["truncated"] == true)
    });
    let e = entries.iter().find(|v| v["truncated"] == true).unwrap();
    assert_eq!(e["msg"].as_str().unwrap(), &tag[..8192]);
    assert_eq!(d.stats()["inputs"]["syslog"]["truncated"], 1);
    d.assert_still_serves();
}

#[test]
fn rfc5424_with_broken_structured_data_keeps_the_text() {
    let d = Daemon::start(&[]);
    let cases = [
        r#"[unterminated k="v" "#,
        r#"[id k="v]"#,
        r#"[id k=v]"#,
        r#"[ ]"#,
        r#"[]"#,
        r#"[id k="\"] more"#,
        r#"[id k="v"][id2"#,
        r#"[id@1 k="v" k="v" k="v"]]]"#,
        r#"[id k="unterminated escape\"#,
        "[\u{feff}id k=\"v\"]",
    ];
    let tag = unique("sd");
    for (i, sd) in cases.iter().enumerate() {
        d.send(format!("<13>1 2026-11-21T23:40:10Z host {tag} - - {sd} case-{i}").as_bytes());
    }
    d.send(format!("<13>1 2026-11-21T23:40:10Z host {tag} - - [").as_bytes());
    let n = cases.len() + 1;
    let c = d.wait_for_counters("syslog", |c| c["received"] == n as u64);
    assert_eq!(c["stored"], n as u64);
    let entries = d.dump();
    for (i, case) in cases.iter().enumerate() {
        let needle = format!("case-{i}");
        let found = entries.iter().any(|v| {
            let all = v.to_string();
            v["input"] == "syslog" && all.contains(&needle)
        });
        assert!(found, "case {i} ({case}) lost");
    }
    d.assert_still_serves();
}

#[test]
fn a_bom_alone_and_a_bom_after_a_header_are_empty_messages() {
    let d = Daemon::start(&[]);
    d.send(b"\xef\xbb\xbf");
    let tag = unique("bom");
    d.send(format!("<13>1 2026-11-21T23:40:10Z host {tag} - - - \u{feff}").as_bytes());
    d.send(format!("<13>Nov 21 23:40:10 {tag}: \u{feff}").as_bytes());
    let c = d.wait_for_counters("syslog", |c| c["received"] == 3);
    assert_eq!(c["stored"], 3);
    let entries = d.dump();
    let tagged: Vec<_> = entries
        .iter()
        .filter(|v| v["app"] == tag.as_str())
        .collect();
    assert_eq!(tagged.len(), 2);
    for e in tagged {
        assert_eq!(e["msg"], "", "the BOM is not text: {e}");
    }
    d.assert_still_serves();
}

#[test]
fn datagrams_from_50_senders_at_once_all_arrive_in_each_senders_order() {
    const SENDERS: usize = 50;
    const EACH: usize = 2000;
    let d = Daemon::start(&["--max-lines", "200000", "--max-bytes", "64M"]);
    let started = Instant::now();
    std::thread::scope(|s| {
        for k in 0..SENDERS {
            let log = d.log.clone();
            s.spawn(move || {
                let sock = UnixDatagram::unbound().unwrap();
                sock.connect(&log).unwrap();
                for i in 0..EACH {
                    // A blocking send waits while the socket's queue is full.
                    let m = format!("<14>Nov 21 23:40:10 flood[{k}]: s{k} {i}");
                    sock.send(m.as_bytes()).unwrap();
                }
            });
        }
    });
    let sent = SENDERS * EACH;
    let c = d.wait_for_counters("syslog", |c| c["received"] == sent as u64);
    let took = started.elapsed();
    assert_eq!(c["stored"], sent as u64, "{c}");
    assert_eq!(c["dropped"], 0);
    // Every sender's messages, each once, in the order it sent them.
    let out = d.query_raw(b"{\"app\":\"flood\",\"format\":\"cat\"}\n");
    let text = String::from_utf8(out).unwrap();
    let mut next = vec![0usize; SENDERS];
    for line in text.lines() {
        let (k, i) = line[1..].split_once(' ').unwrap();
        let (k, i): (usize, usize) = (k.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[k], "sender {k} out of order or duplicated");
        next[k] += 1;
    }
    assert!(next.iter().all(|&n| n == EACH), "{next:?}");
    println!("{sent} datagrams from {SENDERS} senders stored in {took:?}");
    d.assert_still_serves();
}

#[test]
fn sigpipe_is_ignored() {
    let d = Daemon::start(&[]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let ignored = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    assert_ne!(
        ignored & (1 << (13 - 1)),
        0,
        "SIGPIPE is not ignored: {status}"
    );
    signal(d.pid(), "PIPE");
    // And a reader that leaves mid-dump (a write to a closed socket)
    // costs nothing either.
    let payload = "p".repeat(1000);
    for i in 0..2000 {
        d.send(format!("<13>Nov 21 23:40:10 fill: {i} {payload}").as_bytes());
    }
    d.wait_for_counters("syslog", |c| c["received"] == 2000);
    for _ in 0..20 {
        let mut c = std::os::unix::net::UnixStream::connect(&d.query).unwrap();
        std::io::Write::write_all(&mut c, &[0]).unwrap();
        let mut first = [0u8; 100];
        let _ = std::io::Read::read(&mut c, &mut first).unwrap();
    }
    d.assert_still_serves();
}

#[test]
fn sighup_and_sigusr1_do_what_the_readme_says_even_in_a_storm() {
    let d = Daemon::start(&["--max-lines", "100000"]);
    // SIGHUP: logged, nothing else changes.
    signal(d.pid(), "HUP");
    let hup = d.wait_for("the SIGHUP entry", |e| {
        e.iter()
            .any(|v| v["input"] == "internal" && v["msg"].as_str().unwrap().contains("SIGHUP"))
    });
    assert!(!d.stats()["paused"].as_bool().unwrap());
    // SIGUSR1 pauses: messages are dropped and counted; again resumes.
    signal(d.pid(), "USR1");
    d.wait_until("paused", |d| d.stats()["paused"] == true);
    let lost = unique("while-paused");
    d.send(format!("<13>Nov 21 23:40:10 t: {lost}").as_bytes());
    d.wait_for_counters("syslog", |c| c["dropped"] == 1);
    signal(d.pid(), "USR1");
    d.wait_until("resumed", |d| d.stats()["paused"] == false);
    assert!(!d.dump().iter().any(|v| v["msg"] == lost.as_str()));
    let held = hup.len();

    // A storm of both while messages pour in: nothing held is lost and the
    // books balance. (The kernel merges a signal sent while one is still
    // pending, so the storm may leave it paused or not.)
    let log = d.log.clone();
    let sender = std::thread::spawn(move || {
        let s = UnixDatagram::unbound().unwrap();
        for i in 0..20_000 {
            s.send_to(format!("<13>Nov 21 23:40:10 storm: {i}").as_bytes(), &log)
                .unwrap();
        }
    });
    for i in 0..100 {
        signal(d.pid(), if i % 2 == 0 { "USR1" } else { "HUP" });
        signal(d.pid(), if i % 2 == 0 { "HUP" } else { "USR1" });
    }
    sender.join().unwrap();
    d.wait_until("the storm counted", |d| {
        d.stats()["inputs"]["syslog"]["received"] == 20_001
    });
    if d.stats()["paused"] == true {
        signal(d.pid(), "USR1");
    }
    d.wait_until("running again", |d| d.stats()["paused"] == false);
    let after = d.dump();
    assert!(after.len() >= held, "entries held before were lost");
    for (a, b) in hup.iter().zip(&after) {
        assert_eq!(a, b, "what was held is unchanged");
    }
    let hups = after
        .iter()
        .filter(|v| v["msg"].as_str().unwrap().contains("SIGHUP"))
        .count() as u64;
    // A HUP that lands while USR1 has the ring paused is logged like any
    // entry then: dropped and counted.
    let dropped_internal = d.stats()["inputs"]["internal"]["dropped"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        hups + dropped_internal >= 2,
        "HUPs are logged ({hups} stored, {dropped_internal} internal entries dropped while paused)"
    );
    d.assert_still_serves();
}

#[test]
fn sigterm_under_load_exits_0_and_removes_the_sockets() {
    let d = Daemon::start(&[]);
    let log = d.log.clone();
    let s = UnixDatagram::unbound().unwrap();
    s.set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let sender = Background::repeat(s, move |s| {
        s.send_to(b"<13>Nov 21 23:40:10 load: x", &log).is_ok()
    });
    std::thread::sleep(Duration::from_millis(200));
    let (log, query, intake) = (d.log.clone(), d.query.clone(), d.intake.clone());
    let mut d = d;
    signal(d.pid(), "TERM");
    let status = wait_timeout(&mut d.child, Duration::from_secs(10));
    sender.stop();
    assert!(status.success(), "{status}");
    for p in [log, query, intake] {
        assert!(!p.exists(), "{} left behind", p.display());
    }
}
