//! Uploads to the real systemd-journal-remote: what every input stored
//! must come out of `journalctl -o json` with its fields; a receiver killed
//! under load must cost no entry, and what may arrive twice is one batch,
//! counted, with the same `RINGLOGD_SEQ` (made certain by a relay that
//! loses the first answer); entries the ring evicted first are told to the
//! receiver by seq; HTTPS to a receiver whose certificate openssl made.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde_json::Value;

use super::outbound::{assert_all_stored, lap_the_route, msg_has, route_stats, sender, wait_route};
use crate::support::journal_remote::JournalRemote;
use crate::support::receiver::Pki;
use crate::support::*;

/// Entries per input in the every-input test.
const N: usize = 10_000;

/// A field of a `journalctl -o json` entry, when it is one string.
fn field<'a>(e: &'a Value, name: &str) -> Option<&'a str> {
    e[name].as_str()
}

/// The entries by `RINGLOGD_SEQ`, each seq with every copy of it.
fn by_seq(entries: &[Value]) -> BTreeMap<u64, Vec<&Value>> {
    let mut m: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for e in entries {
        if let Some(seq) = field(e, "RINGLOGD_SEQ").and_then(|s| s.parse().ok()) {
            m.entry(seq).or_default().push(e);
        }
    }
    m
}

/// A 128-bit id file as the journal writes ids: no dashes.
fn id_file(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let id = text.trim().replace('-', "");
    (id.len() == 32).then_some(id)
}

/// The code of a severity or facility name as the JSON dialect writes it.
fn code(names: &[&str], name: &Value) -> Option<String> {
    let name = name.as_str()?;
    names.iter().position(|n| *n == name).map(|i| i.to_string())
}

/// What the journal must show for `e`, an entry of the daemon's dump.
fn journal_fields(e: &Value) -> Vec<(&'static str, Option<String>)> {
    let s = |k: &str| e[k].as_str().map(str::to_owned);
    let time = chrono::DateTime::parse_from_rfc3339(e["time"].as_str().unwrap()).unwrap();
    vec![
        ("MESSAGE", s("msg")),
        (
            "__REALTIME_TIMESTAMP",
            Some(time.timestamp_micros().to_string()),
        ),
        ("_HOSTNAME", Some(hostname())),
        (
            "PRIORITY",
            code(&ringlogd::record::SEVERITY_NAMES, &e["severity"]),
        ),
        (
            "SYSLOG_FACILITY",
            code(&ringlogd::record::FACILITY_NAMES, &e["facility"]),
        ),
        ("SYSLOG_IDENTIFIER", s("app").or_else(|| s("source"))),
        ("SYSLOG_PID", s("pid")),
        ("SYSLOG_TIMESTAMP", s("timestamp")),
        ("SYSLOG_MSGID", s("msgid")),
        ("RINGLOGD_INPUT", s("input")),
        ("RINGLOGD_SOURCE", s("source")),
    ]
}

/// The daemon's stats once the route has delivered everything and is
/// connected, failing after `secs` (a loaded machine uploads tens of
/// thousands of entries in seconds, not minutes). One document, so the
/// ring's `next_seq` is what the route had caught up with.
fn caught_up(d: &Daemon, secs: u64) -> Value {
    poll(
        "the route caught up",
        Duration::from_secs(secs),
        || d.stats(),
        |st| st["routes"][0]["lag"] == 0 && st["routes"][0]["state"] == "connected",
    )
}

/// `n` kernel records `TAG-i` as a saved `/dev/kmsg` the daemon replays.
fn kmsg_file(dir: &std::path::Path, tag: &str, n: usize) -> std::path::PathBuf {
    let path = dir.join("saved-kmsg");
    let text: String = (0..n)
        .map(|i| format!("6,{i},{},-;{tag}-{i}\n", 1000 + i))
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_input_arrives_with_each_field() {
    let Some(jr) = JournalRemote::start(None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tag = unique("jr");
    let kmsg = kmsg_file(dir.path(), &format!("{tag}-kmsg"), N);
    let d = Daemon::start_with_kmsg(&[
        "--kmsg",
        kmsg.to_str().unwrap(),
        "--tcp",
        "127.0.0.1:0",
        "--max-lines",
        "200000",
        "--max-bytes",
        "64M",
        "--route",
        &jr.url(""),
    ]);
    d.send_many(N, |i| {
        format!(
            "<165>1 2003-10-11T22:14:15.003+02:00 web1 evntslog {} ID47 \
             [exampleSDID@32473 iut=\"{i}\" eventSource=\"Application\"] {tag}-syslog-{i}",
            1000 + i
        )
    });
    d.send(format!("<14>1 - - multi - - - {tag} first line\n  second line").as_bytes());
    let mut fd = d.pass_socketpair("svc.out");
    let lines: String = (0..N).map(|i| format!("{tag}-fd-{i}\n")).collect();
    fd.write_all(lines.as_bytes()).unwrap();
    let mut net = std::net::TcpStream::connect(d.listening("tcp")).unwrap();
    let lines: String = (0..N)
        .map(|i| format!("<28>Dec  7 10:00:00 relay1 netapp[77]: {tag}-net-{i}\n"))
        .collect();
    net.write_all(lines.as_bytes()).unwrap();
    drop(net);
    for input in ["syslog", "fd", "kmsg", "net"] {
        poll(
            &format!("{N} {input} entries stored"),
            Duration::from_secs(60),
            || d.stats()["inputs"][input]["stored"].as_u64().unwrap_or(0),
            |&n| n >= N as u64,
        );
    }
    let st = caught_up(&d, 120);
    let s = &st["routes"][0];
    let held = st["ring"]["next_seq"].as_u64().unwrap();
    let dump: Vec<Value> = d
        .dump()
        .into_iter()
        .filter(|e| e["seq"].as_u64() < Some(held))
        .collect();
    assert_eq!(dump.len() as u64, held, "the ring evicted nothing");
    let journal = jr.entries();
    let seqs = by_seq(&journal);
    // Every entry of the ring, once: no receiver restart, no duplicate.
    assert_eq!(seqs.range(..held).count() as u64, held, "{s}");
    assert!(seqs.values().all(|copies| copies.len() == 1), "{s}");
    assert_eq!(s["acknowledged"].as_u64(), Some(held), "{s}");
    assert_eq!(
        (s["lost"].as_u64(), s["resent"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );
    let boot_id = id_file("/proc/sys/kernel/random/boot_id");
    let machine_id = id_file("/etc/machine-id");
    for e in &dump {
        let seq = e["seq"].as_u64().unwrap();
        let got = seqs[&seq][0];
        for (name, want) in journal_fields(e) {
            assert_eq!(field(got, name), want.as_deref(), "{name} of {e}: {got}");
        }
        assert_eq!(field(got, "_BOOT_ID").map(str::to_owned), boot_id, "{got}");
        assert_eq!(
            field(got, "_MACHINE_ID").map(str::to_owned),
            machine_id,
            "{got}"
        );
    }
    // What was sent, as the journal shows it.
    let sent = |needle: &str| -> &Value {
        journal
            .iter()
            .find(|e| field(e, "MESSAGE") == Some(needle))
            .unwrap_or_else(|| panic!("{needle} is not in the journal"))
    };
    let e = sent(&format!("{tag}-syslog-7"));
    for (name, want) in [
        ("PRIORITY", "5"),
        ("SYSLOG_FACILITY", "20"),
        ("SYSLOG_IDENTIFIER", "evntslog"),
        ("SYSLOG_PID", "1007"),
        ("SYSLOG_MSGID", "ID47"),
        ("SYSLOG_TIMESTAMP", "2003-10-11T22:14:15.003+02:00"),
        ("SYSLOG_HOSTNAME", "web1"),
        ("SD_EXAMPLESDID_32473_IUT", "7"),
        ("SD_EXAMPLESDID_32473_EVENTSOURCE", "Application"),
        ("RINGLOGD_INPUT", "syslog"),
    ] {
        assert_eq!(field(e, name), Some(want), "{name}: {e}");
    }
    // The kernel's credentials of the sender, this test.
    assert_eq!(
        field(e, "_PID"),
        Some(std::process::id().to_string().as_str()),
        "{e}"
    );
    assert_eq!(
        field(e, "_UID"),
        Some(nix::unistd::getuid().to_string().as_str()),
        "{e}"
    );
    let e = sent(&format!("{tag} first line\n  second line"));
    assert_eq!(field(e, "SYSLOG_IDENTIFIER"), Some("multi"), "{e}");
    let e = sent(&format!("{tag}-fd-9999"));
    assert_eq!(field(e, "SYSLOG_IDENTIFIER"), Some("svc.out"), "{e}");
    assert_eq!(field(e, "RINGLOGD_INPUT"), Some("fd"), "{e}");
    let e = sent(&format!("{tag}-net-3"));
    for (name, want) in [
        ("PRIORITY", "4"),
        ("SYSLOG_FACILITY", "3"),
        ("SYSLOG_IDENTIFIER", "netapp"),
        ("SYSLOG_PID", "77"),
        ("SYSLOG_HOSTNAME", "relay1"),
        ("RINGLOGD_INPUT", "net"),
    ] {
        assert_eq!(field(e, name), Some(want), "{name}: {e}");
    }
    let e = sent(&format!("{tag}-kmsg-42"));
    assert_eq!(
        (field(e, "PRIORITY"), field(e, "SYSLOG_FACILITY")),
        (Some("6"), Some("0")),
        "{e}"
    );
    assert_eq!(field(e, "RINGLOGD_INPUT"), Some("kmsg"), "{e}");
    let e = sent("memlogd started");
    assert_eq!(field(e, "RINGLOGD_INPUT"), Some("internal"), "{e}");
}

#[test]
fn a_receiver_killed_under_load_loses_nothing_and_counts_what_may_come_twice() {
    let Some(mut jr) = JournalRemote::start(None) else {
        return;
    };
    let d = Daemon::start(&["--max-lines", "100000", "--route", &jr.url("app=load")]);
    let n = 6000;
    let tag = unique("jr-load");
    let t = sender(&d, &tag, n, Duration::from_micros(200));
    jr.wait_for("a third", 30, |e| e.len() > n / 3);
    jr.kill("KILL");
    // The ring keeps taking everything while the receiver is gone.
    std::thread::sleep(Duration::from_millis(700));
    jr.restart();
    t.join().unwrap();
    assert_all_stored(&d, n as u64);
    let s = &caught_up(&d, 60)["routes"][0];
    let journal = jr.entries();
    let prefix = format!("{tag}-");
    let mut seen = vec![Vec::new(); n];
    for e in &journal {
        if let Some(i) = field(e, "MESSAGE").and_then(|m| m.strip_prefix(&prefix)) {
            seen[i.parse::<usize>().unwrap()].push(field(e, "RINGLOGD_SEQ").unwrap());
        }
    }
    let missing: Vec<usize> = (0..n).filter(|&i| seen[i].is_empty()).collect();
    assert!(
        missing.is_empty(),
        "lost across the restart: {missing:?}; {s}"
    );
    let twice: Vec<usize> = (0..n).filter(|&i| seen[i].len() > 1).collect();
    for &i in &twice {
        assert_eq!(seen[i].len(), 2, "{i}: {:?}", seen[i]);
        assert_eq!(seen[i][0], seen[i][1], "a duplicate carries its seq: {i}");
    }
    // What came twice is what was in flight: one run of the load, and no
    // more than the route counted as sent again.
    if let (Some(first), Some(last)) = (twice.first(), twice.last()) {
        assert_eq!(last - first + 1, twice.len(), "one batch: {twice:?}");
    }
    let resent = s["resent"].as_u64().unwrap();
    assert!(twice.len() as u64 <= resent, "{} twice, {s}", twice.len());
    assert_eq!(s["lost"], 0, "{s}");
    assert!(s["reconnects"].as_u64() >= Some(1), "{s}");
    assert_eq!(s["acknowledged"].as_u64(), Some(n as u64), "each once: {s}");
    assert_eq!(
        s["sent"].as_u64(),
        Some(n as u64 + resent),
        "what was sent again was written twice: {s}"
    );
    eprintln!("journal-remote restart: {} of {n} twice; {s}", twice.len());
}

#[test]
fn entries_the_ring_evicted_first_are_told_to_the_journal_by_seq() {
    let Some(mut jr) = JournalRemote::start(None) else {
        return;
    };
    let d = Daemon::start(&["--max-lines", "100", "--route", &jr.url("")]);
    wait_route(&d, 0, "caught up", |s| s["lag"] == 0);
    jr.kill("KILL");
    let tag = unique("jr-lag");
    lap_the_route(&d, &tag, || jr.restart());
    let st = caught_up(&d, 60);
    let s = &st["routes"][0];
    let lost = s["lost"].as_u64().unwrap();
    assert!(lost >= 200, "{s}");
    let journal = jr.entries();
    let notices: Vec<&Value> = journal
        .iter()
        .filter(|e| field(e, "RINGLOGD_LOST").is_some())
        .collect();
    assert!(!notices.is_empty(), "a notice of the loss");
    let mut told = 0;
    for e in &notices {
        let num = |k: &str| field(e, k).unwrap().parse::<u64>().unwrap();
        let (count, first, last) = (
            num("RINGLOGD_LOST"),
            num("RINGLOGD_LOST_FIRST_SEQ"),
            num("RINGLOGD_LOST_LAST_SEQ"),
        );
        assert!(count <= last - first + 1, "{e}");
        let msg = field(e, "MESSAGE").unwrap();
        assert!(
            msg.starts_with(&format!("ringlogd: {count} entries were lost (")),
            "{msg}"
        );
        assert!(msg.contains(&format!("seq {first}")), "{msg}");
        assert_eq!(field(e, "PRIORITY"), Some("4"), "{e}");
        // None of the lost seqs reached the journal.
        let got = by_seq(&journal);
        assert!(got.range(first..=last).count() as u64 <= last - first + 1 - count);
        told += count;
    }
    assert_eq!(told, lost, "the notices add up to what was lost");
    // Every entry the ring ever held was either received or counted lost.
    let next_seq = st["ring"]["next_seq"].as_u64().unwrap();
    let received = by_seq(&journal).range(..next_seq).count() as u64;
    assert_eq!(received + lost, next_seq, "{s}");
}

#[test]
fn https_to_a_receiver_with_a_certificate_made_by_openssl() {
    let certs = tempfile::tempdir().unwrap();
    let pki = Pki::make(certs.path());
    let Some(jr) = JournalRemote::start(Some(&pki)) else {
        return;
    };
    // The route as a fleet's devices have it: the CA, and a certificate
    // of their own for servers that check clients.
    let opts = format!(
        "ca={}&cert={}&key={}",
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client-key.pem")
    );
    let d = Daemon::start(&["--route", &jr.url(&opts)]);
    let msg = unique("jr-https");
    d.send(format!("<13>1 - - app - - - {msg}").as_bytes());
    let e = jr.wait_for(&msg, 20, |e| {
        e.iter().any(|v| field(v, "MESSAGE") == Some(&msg))
    });
    let e = e
        .iter()
        .find(|v| field(v, "MESSAGE") == Some(&msg))
        .unwrap();
    assert_eq!(field(e, "SYSLOG_IDENTIFIER"), Some("app"), "{e}");
    assert_eq!(field(e, "PRIORITY"), Some("5"), "{e}");
    let s = wait_route(&d, 0, "caught up", |s| s["lag"] == 0);
    assert_eq!(s["state"], "connected", "{s}");
    assert_eq!(s["lost"], 0, "{s}");

    // A route that does not trust the server's CA (the system's bundle
    // has not signed it) uploads nothing, and says why in the ring.
    let wary = Daemon::start(&["--route", &jr.url("")]);
    let other = unique("jr-untrusted");
    wary.send(format!("<13>1 - - app - - - {other}").as_bytes());
    wary.wait_for("a certificate error", |e| {
        e.iter().any(|v| {
            v["input"] == "internal"
                && v["msg"]
                    .as_str()
                    .is_some_and(|s| s.contains("cannot connect") && s.contains("certificate"))
        })
    });
    let s = route_stats(&wary, 0);
    assert_eq!(
        (s["acknowledged"].as_u64(), s["sent"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );
    assert!(
        !jr.entries()
            .iter()
            .any(|v| field(v, "MESSAGE") == Some(&other)),
        "an upload over a connection the route did not trust"
    );
}

/// What a relay between the route and the receiver does to answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Relay {
    /// The first connection carries the first upload to the receiver and
    /// breaks as the answer comes back, as a network failing at the
    /// wrong moment; the next ones carry both ways.
    LosesTheFirstAnswer,
    /// Each connection carries one upload and its answer, then closes, as
    /// an HTTP server that answers with `Connection: close`.
    ClosesAfterEachAnswer,
}

/// A TCP relay on a free port to the receiver on `port`, until stopped.
/// A journal-remote behind a relay that behaves as `mode`, and a daemon
/// whose route uploads through the relay.
fn through_relay(mode: Relay) -> Option<(JournalRemote, Background<()>, Daemon)> {
    let jr = JournalRemote::start(None)?;
    let (port, relay) = relay(jr.port, mode);
    let d = Daemon::start(&["--route", &format!("journal+http://127.0.0.1:{port}")]);
    Some((jr, relay, d))
}

/// Once the route caught up: the stats, how many entries the ring ever
/// held, and what the journal has.
fn caught_up_with(jr: &JournalRemote, d: &Daemon) -> (Value, u64, Vec<Value>) {
    let st = caught_up(d, 30);
    let held = st["ring"]["next_seq"].as_u64().unwrap();
    (st, held, jr.entries())
}

fn relay(port: u16, mode: Relay) -> (u16, Background<()>) {
    use std::net::{Shutdown, TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let pipe = |mut from: TcpStream, mut to: TcpStream| {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Both);
        });
    };
    let relay = Background::spawn(move |stop| {
        let mut first = true;
        while !stop.load(Relaxed) {
            let Ok((mut client, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            client.set_nonblocking(false).unwrap();
            let upstream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            pipe(client.try_clone().unwrap(), upstream.try_clone().unwrap());
            if mode == Relay::LosesTheFirstAnswer && !std::mem::take(&mut first) {
                pipe(upstream, client);
                continue;
            }
            // The receiver answers once it has written the upload.
            let answer = one_answer(&upstream, stop);
            if mode == Relay::ClosesAfterEachAnswer {
                // The receiver's answer, saying it closes after it.
                let at = answer
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .map_or(0, |p| p + 2);
                let mut closing = answer[..at].to_vec();
                closing.extend_from_slice(b"Connection: close\r\n");
                closing.extend_from_slice(&answer[at..]);
                let _ = client.write_all(&closing);
            }
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
    });
    (at, relay)
}

/// Read one whole HTTP answer (head and `Content-Length` body) from `from`,
/// or what came of it until `stop`.
fn one_answer(mut from: &std::net::TcpStream, stop: &std::sync::atomic::AtomicBool) -> Vec<u8> {
    // An idle connection answers nothing until the route uploads again.
    from.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
        if let Some(head) = text.find("\r\n\r\n") {
            let body = text[..head]
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            if got.len() >= head + 4 + body {
                return got;
            }
        }
        match std::io::Read::read(&mut from, &mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && !stop.load(Relaxed) => {}
            Err(_) => return got,
        }
    }
}

#[test]
fn an_upload_whose_answer_is_lost_comes_twice_counted_with_its_seqs() {
    let Some((jr, relay, d)) = through_relay(Relay::LosesTheFirstAnswer) else {
        return;
    };
    let msg = unique("jr-twice");
    d.send(format!("<13>1 - - app - - - {msg}").as_bytes());
    d.wait_for("the lost answer", |e| {
        e.iter().any(|v| {
            v["msg"]
                .as_str()
                .is_some_and(|s| s.contains("connection lost") && s.contains("sent again"))
        })
    });
    let (st, held, journal) = caught_up_with(&jr, &d);
    let s = &st["routes"][0];
    let seqs = by_seq(&journal);
    assert_eq!(seqs.range(..held).count() as u64, held, "every entry: {s}");
    let twice: Vec<(&u64, &Vec<&Value>)> = seqs.iter().filter(|(_, c)| c.len() > 1).collect();
    // The first upload reached the journal, its answer did not: each of
    // its entries is there twice, with the same seq and message, and the
    // route counted exactly those.
    let resent = s["resent"].as_u64().unwrap();
    assert!(resent >= 1, "{s}");
    assert_eq!(twice.len() as u64, resent, "{s}: {twice:#?}");
    for (i, (seq, copies)) in twice.iter().enumerate() {
        assert_eq!(**seq, i as u64, "one run from the oldest entry: {twice:#?}");
        assert_eq!(copies.len(), 2, "seq {seq}: {copies:#?}");
        assert_eq!(field(copies[0], "MESSAGE"), field(copies[1], "MESSAGE"));
    }
    assert_eq!(s["acknowledged"].as_u64(), Some(held), "{s}");
    assert_eq!(s["sent"].as_u64(), Some(held + resent), "{s}");
    relay.stop();
}

#[test]
fn a_receiver_that_closes_after_each_answer_costs_no_warning_and_no_entry() {
    let Some((jr, relay, d)) = through_relay(Relay::ClosesAfterEachAnswer) else {
        return;
    };
    let tag = unique("jr-close");
    for i in 0..5 {
        d.send(format!("<13>1 - - app - - - {tag}-{i}").as_bytes());
        std::thread::sleep(Duration::from_millis(100));
    }
    d.wait_for("the five in the ring", |e| {
        e.iter().filter(|v| msg_has(v, &tag)).count() == 5
    });
    let (st, held, journal) = caught_up_with(&jr, &d);
    let s = &st["routes"][0];
    let seqs = by_seq(&journal);
    assert_eq!(seqs.range(..held).count() as u64, held, "every entry: {s}");
    assert!(seqs.values().all(|c| c.len() == 1), "none twice: {s}");
    assert_eq!(
        (s["resent"].as_u64(), s["lost"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );
    // A connection per upload, each opened at once after the last closed.
    assert!(s["reconnects"].as_u64() >= Some(2), "{s}");
    let warned: Vec<Value> = d
        .dump()
        .into_iter()
        .filter(|v| v["severity"] == "warning" && msg_has(v, "route journal+http"))
        .collect();
    assert!(warned.is_empty(), "{warned:#?}");
    relay.stop();
}
