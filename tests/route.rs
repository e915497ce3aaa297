//! Routes out, against rsyslogd as the central server: UDP, TCP, TLS and
//! RELP receivers writing every field they parsed to a file. What a
//! message carried (host, app, pid, msgid, timestamp, structured data)
//! must arrive as sent; a receiver killed mid-stream must cost nothing over
//! RELP and only counted losses otherwise; ingest never waits for a route.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::receiver::{Input, Receiver};
use support::*;

fn hostname() -> String {
    ringlogd::daemon::local_hostname()
}

/// The RFC 5424 example (§6.5) from host web1, with a fixed time.
fn example(msg: &str) -> Vec<u8> {
    format!(
        "<165>1 2003-10-11T22:14:15.003+02:00 web1 evntslog 1234 ID47 \
         [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] {msg}"
    )
    .into_bytes()
}

/// The example's fields as rsyslog parsed them from what the route sent.
fn assert_example(m: &Value, msg: &str) {
    assert_eq!(m["pri"], "165", "{m}");
    assert_eq!(m["time"], "2003-10-11T22:14:15.003+02:00", "{m}");
    assert_eq!(m["host"], "web1", "the sender's host, not ours: {m}");
    assert_eq!(m["app"], "evntslog", "{m}");
    assert_eq!(m["procid"], "1234", "{m}");
    assert_eq!(m["msgid"], "ID47", "{m}");
    assert_eq!(
        m["sd"], "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\"]",
        "{m}"
    );
    assert_eq!(m["msg"], msg, "{m}");
}

/// The route's figures from the daemon's stats.
fn route_stats(d: &Daemon, i: usize) -> Value {
    d.stats()["routes"][i].clone()
}

fn wait_route(d: &Daemon, i: usize, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = route_stats(d, i);
        if pred(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn relp_delivers_every_field_and_acknowledges() {
    let rx = Receiver::start(Input::Relp, None);
    let d = Daemon::start(&["--route", &rx.url("relp", "")]);
    let msg = unique("relp-example");
    d.send(&example(&msg));
    assert_example(&rx.message_with(&msg), &msg);
    // A line from an fd carries no host: the box's own name is sent.
    let line = unique("fd-line");
    let mut w = d.pass_socketpair("svc.out");
    std::io::Write::write_all(&mut w, format!("{line}\n").as_bytes()).unwrap();
    let m = rx.message_with(&line);
    assert_eq!(m["host"], hostname().as_str(), "{m}");
    assert_eq!(m["app"], "svc.out", "{m}");
    assert_eq!(
        m["pri"], "14",
        "user.info when an fd line says nothing: {m}"
    );
    // The daemon's own entries go too: its start, and the route's connect.
    let started = rx.message_with("memlogd started");
    assert_eq!(started["app"], "memlogd");
    assert_eq!(started["host"], hostname().as_str());
    assert_eq!(started["pri"], "46", "syslog.info: {started}");
    rx.message_with(&format!("route relp://127.0.0.1:{}: connected to", rx.port));
    // Those two, the example and the line: all acknowledged, none lost.
    let s = wait_route(&d, 0, "4 acknowledged", |s| s["acknowledged"] == 4);
    assert_eq!(s["state"], "connected", "{s}");
    assert_eq!(
        (s["sent"].as_u64(), s["lost"].as_u64(), s["lag"].as_u64()),
        (Some(4), Some(0), Some(0)),
        "{s}"
    );
    assert_eq!(
        rx.messages().len(),
        4,
        "nothing twice: {:#?}",
        rx.messages()
    );
}
