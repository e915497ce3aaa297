//! Queries beyond memlogd's: filters, formats, limits and cursors through
//! logread, the JSON dialect and real `curl --unix-socket`; pause, resume
//! and clear with their counters.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;
use serde_json::Value;

/// A daemon holding a known mix of entries:
/// (PRI, tag, text) — facility/severity names noted.
const SEED: &[(u8, &str, &str)] = &[
    (11, "sshd", "auth failure for root"), // user.err
    (30, "dhcpcd", "lease renewed"),       // daemon.info
    (28, "dhcpcd", "carrier lost"),        // daemon.warning
    (131, "app", "disk failed"),           // local0.err
    (135, "app", "debug noise"),           // local0.debug
    (10, "kernelish", "critical thing"),   // user.crit
];

fn seeded() -> Daemon {
    let d = Daemon::start(&[]);
    for (pri, tag, text) in SEED {
        d.send(format!("<{pri}>Nov 21 23:40:10 {tag}[7]: {text}").as_bytes());
    }
    d.wait_for("the seed", |e| e.len() == SEED.len() + 1);
    d
}

fn logread_msgs(d: &Daemon, args: &[&str]) -> Vec<String> {
    let out = d.logread(&[&["-o", "cat"], args].concat());
    assert_success(&out, &format!("logread {args:?}"));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn logread_filters_alone_and_combined() {
    let d = seeded();
    assert_eq!(
        logread_msgs(&d, &["-p", "err"]),
        ["auth failure for root", "disk failed", "critical thing"]
    );
    assert_eq!(
        logread_msgs(&d, &["-p", "warning..err"]),
        ["auth failure for root", "carrier lost", "disk failed"]
    );
    assert_eq!(
        logread_msgs(&d, &["--facility", "daemon"]),
        ["lease renewed", "carrier lost"]
    );
    assert_eq!(
        logread_msgs(&d, &["-t", "app"]),
        ["disk failed", "debug noise"]
    );
    assert_eq!(
        logread_msgs(&d, &["-s", "dh*"]),
        ["lease renewed", "carrier lost"]
    );
    assert_eq!(logread_msgs(&d, &["-i", "internal"]), ["memlogd started"]);
    assert_eq!(
        logread_msgs(&d, &["-g", "fail(ed|ure)"]),
        ["auth failure for root", "disk failed"]
    );
    assert_eq!(
        logread_msgs(&d, &["-p", "err", "-g", "fail", "-t", "app"]),
        ["disk failed"]
    );
    assert_eq!(
        logread_msgs(&d, &["-p", "debug", "--facility", "local0", "-n", "1"]),
        ["debug noise"]
    );
    assert_eq!(
        logread_msgs(&d, &["-p", "err", "-n", "2"]),
        ["disk failed", "critical thing"]
    );
    assert!(
        logread_msgs(&d, &["-k"]).is_empty(),
        "no kernel entries here"
    );
}

#[test]
fn logread_time_and_cursor_filters() {
    let d = seeded();
    let all = d.dump();
    assert_eq!(logread_msgs(&d, &["--since", "1h"]).len(), all.len());
    assert!(logread_msgs(&d, &["--until", "1h"]).is_empty());
    // Since the 4th entry's own receive time: it and everything after.
    let t = all[3]["time"].as_str().unwrap();
    let later: Vec<String> = all[3..]
        .iter()
        .map(|e| e["msg"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(logread_msgs(&d, &["--since", t]), later);
    let earlier: Vec<String> = all[..4]
        .iter()
        .map(|e| e["msg"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(logread_msgs(&d, &["--until", t]), earlier);
    // A cursor: everything after the seq of "debug noise".
    let seq = all[5]["seq"].as_u64().unwrap().to_string();
    assert_eq!(logread_msgs(&d, &["--after-seq", &seq]), ["critical thing"]);
}

#[test]
fn logread_output_formats() {
    let d = seeded();
    let line = |fmt: &str| {
        let out = d.logread(&["-o", fmt, "-t", "sshd"]);
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
    };
    let host = ringlogd::daemon::local_hostname();
    let short = line("short");
    assert!(
        short.ends_with(&format!(" {host} sshd[7]: auth failure for root")),
        "{short}"
    );
    assert!(
        chrono::NaiveTime::parse_from_str(&short[7..15], "%H:%M:%S").is_ok(),
        "{short}"
    );
    let iso = line("short-iso");
    assert!(
        chrono::DateTime::parse_from_rfc3339(iso.split(' ').next().unwrap()).is_ok(),
        "{iso}"
    );
    assert!(iso.ends_with(&format!(" {host} sshd[7]: auth failure for root")));
    let memlogd = line("memlogd");
    assert!(
        memlogd.ends_with(";sshd;auth failure for root"),
        "{memlogd}"
    );
    assert_eq!(line("cat"), "auth failure for root");
    let r5424 = line("rfc5424");
    assert!(r5424.starts_with("<11>1 "), "{r5424}");
    assert!(
        r5424.ends_with(&format!(" {host} sshd 7 - - auth failure for root")),
        "{r5424}"
    );
    let r3164 = line("rfc3164");
    assert!(r3164.starts_with("<11>"), "{r3164}");
    assert!(
        r3164.ends_with(&format!(" {host} sshd[7]: auth failure for root")),
        "{r3164}"
    );
    let json: Value = serde_json::from_str(&line("json")).unwrap();
    assert_eq!(json["severity"], "err");
    // Colours by severity only when asked (or on a terminal).
    let coloured = d.logread(&["--color", "always", "-o", "cat", "-p", "err"]);
    let text = String::from_utf8(coloured.stdout).unwrap();
    assert!(
        text.contains("\x1b[31mauth failure for root\x1b[0m"),
        "{text:?}"
    );
    assert!(text.contains("\x1b[1;31mcritical thing\x1b[0m"), "{text:?}");
    let plain = d.logread(&["-o", "cat", "-p", "err"]);
    assert!(!String::from_utf8(plain.stdout).unwrap().contains('\x1b'));
}

#[test]
fn logread_refuses_bad_options_clearly() {
    let d = seeded();
    for args in [
        &["-p", "loud"][..],
        &["-g", "("],
        &["--since", "whenever"],
        &["-i", "disk"],
    ] {
        let out = d.logread(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.starts_with("logread: the daemon refused the request:"),
            "{err}"
        );
    }
    let out = d.logread(&["-o", "xml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn json_dialect_filters_limits_and_formats_in_the_daemon() {
    let d = seeded();
    let out = d.query_raw(b"{\"mode\":\"dump\",\"priority\":\"err\",\"n\":2,\"format\":\"cat\"}\n");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "disk failed\ncritical thing\n"
    );
    let out = parse_lines(&d.query_raw(b"{\"source\":\"dhcpcd\",\"grep\":\"lost\"}\n"));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["msg"], "carrier lost");
    assert_eq!(out[0]["severity"], "warning");
    let err = parse_lines(&d.query_raw(b"{\"mode\":\"dump\",\"limit\":3}\n"));
    assert!(
        err[0]["error"].as_str().unwrap().contains("limit"),
        "{err:?}"
    );
    let err = parse_lines(&d.query_raw(b"{\"mode\":\"dump\",\"format\":\"xml\"}\n"));
    assert!(err[0]["error"].as_str().unwrap().contains("xml"));
}

pub(super) fn curl(d: &Daemon, args: &[&str]) -> (String, String) {
    let out = Command::new(require("curl"))
        .args(["-sS", "--max-time", "10", "--unix-socket"])
        .arg(&d.query)
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn curl_logs_stats_and_controls() {
    let d = seeded();
    let (body, err) = curl(&d, &["http://localhost/logs?priority=err&n=20"]);
    assert!(err.is_empty(), "{err}");
    let v = parse_lines(body.as_bytes());
    let msgs: Vec<&str> = v.iter().map(|e| e["msg"].as_str().unwrap()).collect();
    assert_eq!(
        msgs,
        ["auth failure for root", "disk failed", "critical thing"]
    );
    let (body, _) = curl(&d, &["http://localhost/logs?source=dh%2A&format=short"]);
    assert_eq!(body.lines().count(), 2);
    assert!(body.lines().all(|l| l.contains(" dhcpcd[7]: ")), "{body}");
    let (body, _) = curl(&d, &["-i", "http://localhost/stats"]);
    assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
    let json = body.split("\r\n\r\n").nth(1).unwrap();
    let stats: Value = serde_json::from_str(json).unwrap();
    assert_eq!(stats["inputs"]["syslog"]["stored"], SEED.len() as u64);
    // Errors: unknown option, unknown path, wrong method.
    let code = |args: &[&str]| {
        let (b, _) = curl(
            &d,
            &[&["-o", "/dev/null", "-w", "%{http_code}"], args].concat(),
        );
        b
    };
    assert_eq!(code(&["http://localhost/logs?bogus=1"]), "400");
    assert_eq!(code(&["http://localhost/nowhere"]), "404");
    assert_eq!(code(&["-X", "DELETE", "http://localhost/logs"]), "405");
    assert_eq!(code(&["-X", "POST", "http://localhost/pause"]), "200");
    assert_eq!(d.stats()["paused"], true);
    assert_eq!(code(&["-X", "POST", "http://localhost/resume"]), "200");
    assert_eq!(d.stats()["paused"], false);
    assert_eq!(code(&["-X", "POST", "http://localhost/clear"]), "200");
    let left = d.dump();
    assert_eq!(left.len(), 1, "only the clear notice: {left:?}");
    assert!(left[0]["msg"].as_str().unwrap().starts_with("ring cleared"));
}

#[test]
fn curl_follow_streams_chunked_until_the_client_leaves() {
    let d = seeded();
    let mut child = Command::new(require("curl"))
        .args(["-sSN", "--unix-socket"])
        .arg(&d.query)
        .arg("http://localhost/logs?follow=1&n=0&format=cat&priority=warning")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    d.send(b"<13>Nov 21 23:40:10 x: quiet notice");
    d.send(b"<12>Nov 21 23:40:10 x: live warning");
    d.send(b"<11>Nov 21 23:40:10 x: live error");
    let mut r = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..2 {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        lines.push(l.trim_end().to_owned());
    }
    assert_eq!(lines, ["live warning", "live error"]);
    child.kill().unwrap();
    child.wait().unwrap();
    // The follower is gone and the daemon knows it.
    d.wait_for("the follower to go", |_| {
        d.stats()["queries"]["followers"] == 0
    });
}

#[test]
fn http_garbage_gets_400_and_a_close_never_a_hang() {
    let d = seeded();
    for garbage in [
        &b"GET\x00/ HTTP/1.1\r\n\r\n"[..],
        b"PUT / HTTP/9\r\n\r\n",
        b"GET /logs HTTP/1.1\r\nBad Header\r\n\r\n",
    ] {
        let mut c = UnixStream::connect(&d.query).unwrap();
        c.write_all(garbage).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert!(
            out.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{garbage:?}: {out}"
        );
        assert!(out.contains("\"error\""));
    }
    // A request head that never ends is closed at the request timeout.
    let mut c = UnixStream::connect(&d.query).unwrap();
    c.write_all(b"GET /logs HTTP/1.1\r\nX: y\r\n").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    assert!(out.is_empty());
}

#[test]
fn pause_resume_and_clear_keep_the_books() {
    let d = seeded();
    let status = |args: &[&str]| d.logread(args).status.code();
    assert_eq!(status(&["--pause"]), Some(0));
    for i in 0..3 {
        d.send(format!("<13>Nov 21 23:40:10 t: while paused {i}").as_bytes());
    }
    d.wait_for("three drops", |_| {
        d.stats()["inputs"]["syslog"]["dropped"] == 3
    });
    let held = d.dump();
    assert!(held
        .iter()
        .all(|e| !e["msg"].as_str().unwrap().contains("while paused")));
    assert!(held
        .iter()
        .any(|e| e["msg"].as_str().unwrap().starts_with("ring paused")));
    assert_eq!(d.stats()["paused"], true);
    assert_eq!(status(&["--resume"]), Some(0));
    d.send(b"<13>Nov 21 23:40:10 t: after resume");
    d.entry_with_msg("after resume");
    d.assert_ledger(
        "syslog",
        &[("stored", SEED.len() as u64 + 1), ("dropped", 3)],
    );
    // Nothing held before the pause was lost.
    assert_eq!(logread_msgs(&d, &["-t", "sshd"]), ["auth failure for root"]);

    assert_eq!(status(&["--clear"]), Some(0));
    let left = d.dump();
    assert_eq!(left.len(), 1);
    let stats = d.stats();
    assert_eq!(stats["inputs"]["syslog"]["cleared"], SEED.len() as u64 + 1);
    assert_eq!(
        stats["inputs"]["syslog"]["stored"],
        SEED.len() as u64 + 1,
        "counters stay"
    );
    assert_eq!(stats["ring"]["entries"], 1);
}

#[test]
fn sigusr1_toggles_pause() {
    let d = seeded();
    signal(d.pid(), "USR1");
    d.wait_for("pause", |_| d.stats()["paused"] == true);
    d.send(b"<13>Nov 21 23:40:10 t: dropped");
    d.wait_for("a drop", |_| d.stats()["inputs"]["syslog"]["dropped"] == 1);
    signal(d.pid(), "USR1");
    d.wait_for("resume", |_| d.stats()["paused"] == false);
    d.send(b"<13>Nov 21 23:40:10 t: kept");
    d.entry_with_msg("kept");
}

#[test]
fn stats_show_times_followers_and_what_they_missed() {
    let d = seeded();
    let f = UnixStream::connect(&d.query).unwrap();
    (&f).write_all(&[1]).unwrap();
    d.wait_for("a follower", |_| d.stats()["queries"]["followers"] == 1);
    let s = d.stats();
    let all = d.dump();
    assert_eq!(s["ring"]["oldest_time"], all[0]["time"]);
    assert_eq!(s["ring"]["newest_time"], all.last().unwrap()["time"]);
    assert_eq!(s["ring"]["first_seq"], 0);
    assert_eq!(s["queries"]["missed"], 0);
    assert!(s["uptime_secs"].is_u64());
    assert_eq!(s["paused"], false);
}

#[test]
fn a_cursor_the_ring_has_overwritten_is_told_what_it_missed() {
    // Oldest first, so the ring holds one run of the newest entries.
    let d = Daemon::start(&["--max-lines", "10", "--evict", "fifo"]);
    for i in 0..50 {
        d.send(format!("<13>Nov 21 23:40:10 t: n{i}").as_bytes());
    }
    d.wait_for("the last", |e| e.last().is_some_and(|v| v["msg"] == "n49"));
    let first = d.dump()[0]["seq"].as_u64().unwrap();
    let out = parse_lines(&d.query_raw(b"{\"after_seq\":5}\n"));
    assert_eq!(out[0]["missed"], first - 6, "{:?}", out[0]);
    assert_eq!(out[0]["source"], "memlogd");
    assert_eq!(out.len(), 11);
    assert_eq!(out[1]["seq"], first);
    // The same notice, as text, in a text format.
    let text = logread_msgs(&d, &["--after-seq", "5"]);
    assert!(
        text[0].starts_with(&format!("{} entries were overwritten", first - 6)),
        "{text:?}"
    );
}
