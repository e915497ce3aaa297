//! rsyslog and syslog-ng forwarding into ringlogd, the real programs with
//! the snippets of docs/forwarding.md: over the syslog socket in RFC 3164
//! and 5424, and over TCP with octet counting. Every field a message carried has to
//! survive the hop, beside ringlogd's own receive time.

use crate::support::syslogd::{doc_snippet, Syslogd};
use crate::support::*;
use chrono::{DateTime, FixedOffset, Local, Utc};
use serde_json::Value;

/// The RFC 5424 example message (§6.5), from host web1 with a fixed time
/// and a BOM: what `logger` cannot send.
fn rfc5424_example(msg: &str) -> Vec<u8> {
    let mut b = br#"<165>1 2003-10-11T22:14:15.003+02:00 web1 evntslog 1234 ID47 [exampleSDID@32473 iut="3" eventSource="Application"] "#.to_vec();
    b.extend_from_slice("\u{feff}".as_bytes());
    b.extend_from_slice(msg.as_bytes());
    b
}

const EXAMPLE_TIME: &str = "2003-10-11T22:14:15.003+02:00";

/// A daemon and `relay` (`Syslogd::rsyslog` or `Syslogd::syslog_ng`)
/// forwarding to its syslog socket as the docs snippet `name` says.
fn relay_to_socket(relay: fn(&str) -> Syslogd, name: &str) -> (Daemon, Syslogd) {
    let d = Daemon::start(&[]);
    let conf = doc_snippet(name).replace("/tmp/ringlogd/log", d.log.to_str().unwrap());
    let r = relay(&conf);
    (d, r)
}

/// A daemon listening on TCP and `relay` forwarding there as the docs
/// snippet `name` says.
fn relay_to_tcp(relay: fn(&str) -> Syslogd, name: &str) -> (Daemon, Syslogd) {
    let (d, tcp) = Daemon::start_on_loopback("tcp", &[]);
    let r = relay(&doc_snippet(name).replace("5514", &tcp.port().to_string()));
    (d, r)
}

/// Stop `relay`: every message it handed `input` is accounted for.
fn stop_balanced(d: Daemon, relay: Syslogd, input: &str) {
    relay.stop();
    d.assert_ledger_balances(input);
}

fn time_of(e: &Value, key: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(e[key].as_str().unwrap_or_else(|| panic!("no {key}: {e}")))
        .unwrap_or_else(|err| panic!("{key} is not RFC 3339 ({err}): {e}"))
}

/// The message's own timestamp lies between `before` and `after` (give or
/// take `slack_ms`), and ringlogd's receive time is kept beside it.
fn assert_times(e: &Value, before: DateTime<Utc>, after: DateTime<Utc>, slack_ms: i64) {
    let ts = time_of(e, "timestamp");
    let slack = chrono::TimeDelta::milliseconds(slack_ms);
    assert!(
        ts >= before - slack && ts <= after + slack,
        "timestamp {ts} not within {before} .. {after}: {e}"
    );
    let received = time_of(e, "time");
    assert!(
        received >= before && received <= Utc::now(),
        "time {received}: {e}"
    );
}

/// `logger args` through `via`: the entry stored as `stored`, whose own
/// timestamp lies within the sending (give or take `slack_ms`).
fn logged_via(d: &Daemon, via: &Syslogd, args: &[&str], stored: &str, slack_ms: i64) -> Value {
    let before = Utc::now();
    via.logger(args);
    let after = Utc::now();
    let e = d.entry_with_msg(stored);
    assert_times(&e, before, after, slack_ms);
    e
}

/// A message with every RFC 5424 header field `logger` sets: app, pid,
/// msgid, one parameter `k` of SD element `ex@32473`, and a priority
/// unless logger's default is meant.
struct Full5424<'a> {
    app: &'a str,
    pid: &'a str,
    msgid: &'a str,
    /// `k` as `--sd-param` takes it, and the value that must arrive.
    sd_k: (&'a str, &'a str),
    /// (facility, severity)
    priority: Option<(&'a str, &'a str)>,
}

impl Full5424<'_> {
    /// `text` with this header, sent by `logger --rfc5424` through `via`:
    /// the entry, checked to carry the whole header and a timestamp within
    /// the sending (give or take `slack_ms`).
    fn logged_via(&self, d: &Daemon, via: &Syslogd, text: &str, slack_ms: i64) -> Value {
        let id = format!("--id={}", self.pid);
        let sd_param = format!("k={}", self.sd_k.0);
        let priority = self.priority.map(|(f, s)| format!("{f}.{s}"));
        let mut args = vec![
            "--rfc5424",
            "-t",
            self.app,
            &id,
            "--msgid",
            self.msgid,
            "--sd-id",
            "ex@32473",
            "--sd-param",
            &sd_param,
        ];
        if let Some(p) = &priority {
            args.extend(["-p", p]);
        }
        args.push(text);
        let e = logged_via(d, via, &args, text, slack_ms);
        assert_local_header(&e, self.app, self.pid, self.msgid);
        assert_eq!(e["sd"]["ex@32473"]["k"], self.sd_k.1, "{e}");
        if let Some((facility, severity)) = self.priority {
            assert_fields(&e, &[("facility", facility), ("severity", severity)]);
        }
        e
    }
}

/// The RFC 5424 example with a unique message from `label`, sent through
/// `via`: the entry it became.
fn example_via(d: &Daemon, via: &Syslogd, label: &str) -> Value {
    let msg = unique(label);
    via.send(&rfc5424_example(&msg));
    d.entry_with_msg(&msg)
}

/// The example's time as a zoneless RFC 3164 stamp: syslog-ng writes the
/// sender's wall-clock time (22:14:15 at +02:00), which is all RFC 3164
/// can carry; ringlogd reads it as local time, and the year is lost.
fn assert_example_wall_clock(e: &Value) {
    let got = time_of(e, "timestamp").with_timezone(&Local);
    assert_eq!(
        got.format("%m-%d %H:%M:%S%.3f").to_string(),
        "10-11 22:14:15.003",
        "{e}"
    );
}

fn assert_example_5424(e: &Value) {
    assert_eq!(e["host"], "web1", "the sender's host, not ringlogd's: {e}");
    assert_fields(
        e,
        &[
            ("app", "evntslog"),
            ("source", "evntslog"),
            ("pid", "1234"),
            ("msgid", "ID47"),
            ("facility", "local4"),
            ("severity", "notice"),
        ],
    );
    assert_eq!(e["sd"]["exampleSDID@32473"]["iut"], "3");
    assert_eq!(e["sd"]["exampleSDID@32473"]["eventSource"], "Application");
    assert_eq!(e["timestamp"], EXAMPLE_TIME);
}

#[test]
fn rsyslog_default_template_rfc3164() {
    let (d, rs) = relay_to_socket(Syslogd::rsyslog, "rsyslog-3164");

    let msg = unique("rs3164");
    // rsyslog replaced the newline before forwarding; RFC 3164 has whole
    // seconds.
    let e = logged_via(
        &d,
        &rs,
        &[
            "--rfc3164",
            "-t",
            "fwdtag",
            "--id=4242",
            "-p",
            "local3.warning",
            &format!("line1\nline2 {msg}"),
        ],
        &format!("line1#012line2 {msg}"),
        1000,
    );
    assert_fields(
        &e,
        &[
            ("input", "syslog"),
            ("host", hostname().as_str()),
            ("app", "fwdtag"),
            ("source", "fwdtag"),
            ("pid", "4242"),
            ("facility", "local3"),
            ("severity", "warning"),
        ],
    );
    assert!(e.get("msgid").is_none() && e.get("sd").is_none(), "{e}");
    assert_eq!(e["peer"]["pid"], rs.pid(), "the kernel names rsyslogd: {e}");

    let msg = unique("rs3164-web1");
    rs.send(format!("<29>Oct 11 20:14:15 web1 ntpd[4321]: {msg}").as_bytes());
    let e = d.entry_with_msg(&msg);
    assert_eq!(e["host"], "web1", "{e}");
    assert_fields(
        &e,
        &[
            ("app", "ntpd"),
            ("pid", "4321"),
            ("facility", "daemon"),
            ("severity", "notice"),
        ],
    );
    let ts = time_of(&e, "timestamp").with_timezone(&Local);
    assert_eq!(ts.format("%m-%d %H:%M:%S").to_string(), "10-11 20:14:15");

    stop_balanced(d, rs, "syslog");
}

#[test]
fn rsyslog_protocol23_rfc5424() {
    let (d, rs) = relay_to_socket(Syslogd::rsyslog, "rsyslog-5424");

    let msg = unique("rs5424");
    // logger's microseconds survive both hops.
    let header = Full5424 {
        app: "fwd5",
        pid: "77",
        msgid: "MID",
        sd_k: (r#""a\"b""#, r#"a"b"#),
        priority: Some(("local4", "err")),
    };
    let e = header.logged_via(&d, &rs, &format!("héllo {msg}"), 1);
    assert_eq!(e["input"], "syslog");
    assert_eq!(e["sd"]["timeQuality"]["tzKnown"], "1");

    assert_example_5424(&example_via(&d, &rs, "rs5424-web1"));

    // A 3164 message in Protocol23 has two spaces before its text.
    let msg = unique("rs5424-from3164");
    rs.logger(&["--rfc3164", "-t", "old", &msg]);
    let e = d.entry_with_msg(&msg);
    assert_eq!(e["app"], "old");
    assert!(e.get("msgid").is_none(), "{e}");

    stop_balanced(d, rs, "syslog");
}

#[test]
fn syslog_ng_syslog_protocol_rfc5424() {
    let (d, ng) = relay_to_socket(Syslogd::syslog_ng, "syslog-ng-5424");

    let msg = unique("ng5424");
    // syslog-ng keeps an embedded newline; only the trailing one goes.
    let header = Full5424 {
        app: "ngapp",
        pid: "31",
        msgid: "NGM",
        sd_k: (r#""v\]""#, "v]"),
        priority: Some(("mail", "info")),
    };
    let e = header.logged_via(&d, &ng, &format!("first\nsecond {msg}"), 1);
    assert_eq!(e["input"], "syslog");
    assert!(e["sd"]["meta"]["sequenceId"].is_string(), "{e}");
    assert_eq!(
        e["peer"]["pid"],
        ng.pid(),
        "the kernel names syslog-ng: {e}"
    );

    assert_example_5424(&example_via(&d, &ng, "ng5424-web1"));

    stop_balanced(d, ng, "syslog");
}

#[test]
fn syslog_ng_legacy_rfc3164() {
    let (d, ng) = relay_to_socket(Syslogd::syslog_ng, "syslog-ng-3164");

    // logger's local format (no host name), as programs write /dev/log:
    // syslog-ng's RFC 5424 source reads it, and adds its host.
    let msg = unique("ng3164");
    let e = logged_via(
        &d,
        &ng,
        &["-t", "ngold", "--id=32", "-p", "auth.crit", &msg],
        &msg,
        1000,
    );
    assert_fields(
        &e,
        &[
            ("input", "syslog"),
            ("host", hostname().as_str()),
            ("app", "ngold"),
            ("pid", "32"),
            ("facility", "auth"),
            ("severity", "crit"),
        ],
    );

    // RFC 5424 in, RFC 3164 out: host, app, pid and the time (with
    // frac-digits, to the microsecond) survive; msgid and SD cannot.
    let e = example_via(&d, &ng, "ng3164-web1");
    assert_eq!(e["host"], "web1", "{e}");
    assert_fields(
        &e,
        &[("app", "evntslog"), ("pid", "1234"), ("facility", "local4")],
    );
    assert!(e.get("msgid").is_none() && e.get("sd").is_none(), "{e}");
    assert_example_wall_clock(&e);

    stop_balanced(d, ng, "syslog");
}

#[test]
fn rsyslog_omfwd_tcp_octet_counted() {
    let (d, rs) = relay_to_tcp(Syslogd::rsyslog, "rsyslog-omfwd");

    let msg = unique("omfwd");
    let header = Full5424 {
        app: "fwdnet",
        pid: "55",
        msgid: "NET",
        sd_k: (r#""v""#, "v"),
        priority: None,
    };
    let e = header.logged_via(&d, &rs, &msg, 1);
    assert_eq!(e["input"], "net");
    assert!(
        e["peer_addr"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{e}"
    );
    assert!(
        e.get("peer").is_none(),
        "no kernel credentials over TCP: {e}"
    );

    assert_example_5424(&example_via(&d, &rs, "omfwd-web1"));

    // Many messages over the one connection, none lost or merged.
    let tag = unique("omfwd-burst");
    let lines: String = (0..200).map(|i| format!("{tag} {i}\n")).collect();
    let file = rs.dir.path().join("burst.txt");
    std::fs::write(&file, lines).unwrap();
    rs.logger(&["--rfc5424", "-t", "burst", "-f", file.to_str().unwrap()]);
    let got = d.wait_msgs_starting(&tag, 200);
    let want: Vec<String> = (0..200).map(|i| format!("{tag} {i}")).collect();
    assert_eq!(got, want);

    rs.stop();
    d.assert_ledger("net", &[("truncated", 0), ("malformed", 0)]);
}

#[test]
fn syslog_ng_tcp_octet_counted() {
    let (d, ng) = relay_to_tcp(Syslogd::syslog_ng, "syslog-ng-tcp");

    let msg = unique("ngtcp");
    ng.logger(&[
        "--rfc5424",
        "-t",
        "ngnet",
        "--id=56",
        "--msgid",
        "NGNET",
        &format!("a\nb {msg}"),
    ]);
    // Octet counting carries the embedded newline inside one message.
    let e = d.entry_with_msg(&format!("a\nb {msg}"));
    assert_eq!(e["input"], "net");
    assert!(
        e["peer_addr"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{e}"
    );
    assert_local_header(&e, "ngnet", "56", "NGNET");

    assert_example_5424(&example_via(&d, &ng, "ngtcp-web1"));

    stop_balanced(d, ng, "net");
}
