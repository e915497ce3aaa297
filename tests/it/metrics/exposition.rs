//! `GET /metrics`: the exposition Prometheus' own checker accepts, made of
//! the same numbers as the stats, and only the reader's own for a reader
//! restricted to its entries.

use std::io::Write;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::*;
use crate::support::*;

/// A daemon that has seen every input (/dev/log, an intake fd, the
/// kernel's log from a file, UDP, TCP), forwards on a route, had a reader
/// lapped, and is paused. The intake fd and the TCP connection stay open
/// while the test holds what is returned.
struct Busy {
    d: Daemon,
    _intake: UnixStream,
    _tcp: TcpStream,
    _kmsg: tempfile::TempDir,
}

fn busy_daemon() -> Busy {
    let kmsg_dir = tempfile::tempdir().unwrap();
    let kmsg = kmsg_dir.path().join("kmsg");
    std::fs::write(&kmsg, "6,1,1000,-;metrics: the kernel speaks\n").unwrap();
    // The route's receiver takes everything and says nothing.
    let receiver = TcpListener::bind("127.0.0.1:0").unwrap();
    let route = format!("tcp://{}", receiver.local_addr().unwrap());
    std::thread::spawn(move || {
        if let Ok((mut c, _)) = receiver.accept() {
            let _ = std::io::copy(&mut c, &mut std::io::sink());
        }
    });
    let kmsg_arg = kmsg.to_str().unwrap();
    let d = Daemon::start_with_kmsg(&[
        "--kmsg",
        kmsg_arg,
        "--udp",
        "127.0.0.1:0",
        "--tcp",
        "127.0.0.1:0",
        "--route",
        route.as_str(),
        "--metrics",
        "127.0.0.1:0",
        "--max-lines",
        "1000",
    ]);
    d.send(b"<13>Nov 21 23:40:10 devlog-app: over /dev/log");
    let mut intake = d.pass_socketpair("svc \"quoted\"\\name.out");
    intake.write_all(b"from an intake fd\n").unwrap();
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"<13>Nov 21 23:40:10 udp-app: over udp", d.listening("udp"))
        .unwrap();
    let mut tcp = TcpStream::connect(d.listening("tcp")).unwrap();
    tcp.write_all(b"<13>Nov 21 23:40:10 tcp-app: over tcp\n")
        .unwrap();
    lap_a_reader(&d);
    let paused = d.logread(&["--pause"]);
    assert_success(&paused, "logread --pause");
    d.send(b"<13>Nov 21 23:40:10 devlog-app: dropped while paused");
    d.wait_until("every input counted", |d| {
        let s = d.stats();
        let got = |input: &str, key: &str| s["inputs"][input][key].as_u64().unwrap_or(0);
        got("fd", "stored") == 1
            && got("kmsg", "stored") == 1
            && got("net", "stored") == 2
            && got("syslog", "dropped") == 1
            && s["routes"][0]["state"] == "connected"
            && s["routes"][0]["lag"] == 0
    });
    Busy {
        d,
        _intake: intake,
        _tcp: tcp,
        _kmsg: kmsg_dir,
    }
}

/// A follower that reads nothing while the ring (1000 entries) turns over
/// many times, then leaves: lapped once.
fn lap_a_reader(d: &Daemon) {
    let follower = UnixStream::connect(&d.query).unwrap();
    (&follower).write_all(b"{\"mode\":\"follow\"}\n").unwrap();
    d.wait_until("the follower", |d| d.stats()["queries"]["followers"] == 1);
    const N: usize = 30_000;
    let pad = "p".repeat(200);
    let before = d.stats()["inputs"]["syslog"]["stored"].as_u64().unwrap();
    d.send_many(N, |i| format!("<14>Nov 21 23:40:10 lap: {i} {pad}"));
    d.wait_for_counters("syslog", |c| {
        c["stored"].as_u64() == Some(before + N as u64)
    });
    drop(follower);
    d.wait_until("the lapped reader counted", |d| {
        d.stats()["queries"]["lapped"] == 1
    });
}

/// Run `promtool check metrics` on `text`: it must find nothing to say.
fn promtool_check(promtool: &std::path::Path, text: &str) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_silent_success(&out, &format!("promtool check metrics on\n{text}"));
}

#[test]
fn promtool_accepts_the_metrics_of_a_daemon_that_has_seen_everything() {
    let Some(promtool) = prometheus_tool("promtool") else {
        return;
    };
    let busy = busy_daemon();
    let d = &busy.d;
    let on_query = metrics_on_query_socket(d);
    assert_eq!(on_query.status, 200, "{on_query:?}");
    assert_eq!(
        on_query.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    promtool_check(&promtool, &on_query.body);
    let on_tcp = get(d.listening("metrics"), "/metrics");
    assert_eq!(on_tcp.status, 200, "{on_tcp:?}");
    assert_eq!(
        on_tcp.header("Content-Type"),
        on_query.header("Content-Type")
    );
    promtool_check(&promtool, &on_tcp.body);
    // What a dashboard looks for first is there.
    let m = samples(&on_tcp.body);
    for series in [
        "ringlogd_paused",
        "ringlogd_query_lapped_total",
        "ringlogd_received_total{input=\"kmsg\"}",
        "ringlogd_intake_fd_lines_total{source=\"svc \\\"quoted\\\"\\\\name.out\"}",
        "ringlogd_tcp_connections",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(m.contains_key(series), "no {series} in\n{}", on_tcp.body);
    }
    assert!(
        m.keys()
            .any(|k| k.starts_with("ringlogd_build_info{version=")),
        "{}",
        on_tcp.body
    );
}

/// Read the stats until they hold still (everything sent has arrived and
/// gone out on the route).
fn settled_stats(d: &Daemon) -> Value {
    let key = |s: &Value| {
        (
            s["inputs"].clone(),
            s["sources"].clone(),
            s["routes"].clone(),
            s["intake"].clone(),
        )
    };
    let mut last = d.stats();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = d.stats();
        if key(&now) == key(&last) {
            return now;
        }
        last = now;
    }
}

#[test]
fn the_metrics_are_the_stats_numbers() {
    let busy = busy_daemon();
    let d = &busy.d;
    let stats = settled_stats(d);
    assert_eq!(
        ringlogd::metrics::uncovered(&stats),
        Vec::<String>::new(),
        "{stats:#}"
    );
    let m = samples(&get(d.listening("metrics"), "/metrics").body);
    let sample = |series: String| {
        *m.get(&series)
            .unwrap_or_else(|| panic!("no {series}; stats {stats:#}"))
    };
    let number = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    for (input, counters) in stats["inputs"].as_object().unwrap() {
        for (key, value) in counters.as_object().unwrap() {
            let series = format!("ringlogd_{key}_total{{input=\"{input}\"}}");
            assert_eq!(sample(series), number(value), "{input} {key}");
        }
    }
    // One family per figure of a source or a route, labelled with its name.
    let labelled = |family: &str, label: String, figures: &Value, keys: [(&str, &str); 3]| {
        for (key, name) in keys {
            let series = format!("ringlogd_{family}_{name}{{{label}}}");
            assert_eq!(sample(series), number(&figures[key]), "{label} {key}");
        }
    };
    for (source, figures) in stats["sources"].as_object().unwrap() {
        let name = source.replace('\\', "\\\\").replace('"', "\\\"");
        let keys = [
            ("stored", "stored_total"),
            ("held", "held_entries"),
            ("evicted", "evicted_total"),
        ];
        labelled("source", format!("source=\"{name}\""), figures, keys);
    }
    let route = &stats["routes"][0];
    let url = route["url"].as_str().unwrap();
    let keys = [
        ("sent", "sent_total"),
        ("lost", "lost_total"),
        ("lag", "lag_entries"),
    ];
    labelled("route", format!("route=\"{url}\""), route, keys);
    assert_eq!(
        sample(format!("ringlogd_route_connected{{route=\"{url}\"}}")),
        1.0
    );
    assert_eq!(sample("ringlogd_paused".into()), 1.0);
    assert_eq!(
        sample("ringlogd_ring_entries".into()),
        number(&stats["ring"]["entries"])
    );
    assert_eq!(
        sample("ringlogd_ring_max_bytes".into()),
        number(&stats["ring"]["max_bytes"])
    );
    assert_eq!(sample("ringlogd_query_lapped_total".into()), 1.0);
    assert_eq!(
        sample("ringlogd_query_missed_total".into()),
        number(&stats["queries"]["missed"])
    );
}

#[test]
fn a_reader_restricted_to_its_entries_gets_only_what_its_stats_show() {
    let Some(d) = Daemon::start_for_others("a restricted reader", &["--query-mode", "0666"]) else {
        return;
    };
    d.send(b"<13>Nov 21 23:40:10 roots-secret-app: not for others");
    d.logger_as(NOBODY, &["-t", "nobodys-app", "mine"]);
    d.wait_until("both stored", |d| {
        d.stats()["inputs"]["syslog"]["stored"] == 2
    });
    let out = run_ok(
        as_user(NOBODY, NOBODY)
            .arg(require("curl"))
            .args(["--silent", "--show-error", "--fail", "--unix-socket"])
            .arg(&d.query)
            .arg("http://ringlogd/metrics"),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let m = samples(&text);
    assert_eq!(
        m.get("ringlogd_source_stored_total{source=\"nobodys-app\"}"),
        Some(&1.0),
        "{text}"
    );
    for hidden in [
        "roots-secret-app",
        "process_",
        "ringlogd_build_info",
        "ringlogd_route_",
    ] {
        assert!(
            !text.contains(hidden),
            "{hidden} shown to a restricted reader:\n{text}"
        );
    }
    // Root sees both sources, and the process.
    let whole = metrics_on_query_socket(&d).body;
    assert!(
        whole.contains("source=\"roots-secret-app\"") && whole.contains("process_open_fds"),
        "{whole}"
    );
}
