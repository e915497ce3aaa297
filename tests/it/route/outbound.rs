//! Routes out, against rsyslogd as the central server: UDP, TCP, TLS and
//! RELP receivers writing every field they parsed to a file. What a
//! message carried (host, app, pid, msgid, timestamp, structured data)
//! must arrive as sent; a receiver killed mid-stream must cost nothing over
//! RELP and only counted losses otherwise; ingest never waits for a route.

use std::time::{Duration, Instant};

use crate::support::receiver::{Input, Pki, Receiver};
use crate::support::*;
use serde_json::Value;

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
pub(super) fn route_stats(d: &Daemon, i: usize) -> Value {
    d.stats()["routes"][i].clone()
}

pub(super) fn wait_route(d: &Daemon, i: usize, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    poll(what, Duration::from_secs(15), || route_stats(d, i), pred)
}

#[test]
fn relp_delivers_every_field_and_acknowledges() {
    let rx = Receiver::start(Input::Relp, None);
    let (d, m, msg) = example_routed(&rx, &rx.url("relp", ""), "relp-example");
    assert_example(&m, &msg);
    // A line from an fd carries no host: the box's own name is sent.
    let line = unique("fd-line");
    let _w = pass_text(&d, "svc.out", &format!("{line}\n"));
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

/// Send `n` RFC 5424 messages `TAG-i` to the daemon's syslog socket from
/// one socket, `pause` apart; the returned thread ends when all are sent.
pub(super) fn sender(
    d: &Daemon,
    tag: &str,
    n: usize,
    pause: Duration,
) -> std::thread::JoinHandle<()> {
    padded_sender(d, tag, n, pause, 0)
}

/// [`sender`] with `pad` bytes of structured data in each message.
fn padded_sender(
    d: &Daemon,
    tag: &str,
    n: usize,
    pause: Duration,
    pad: usize,
) -> std::thread::JoinHandle<()> {
    let path = d.log.clone();
    let tag = tag.to_owned();
    let sd = if pad == 0 {
        "-".to_owned()
    } else {
        format!("[pad@1 x=\"{}\"]", "x".repeat(pad))
    };
    std::thread::spawn(move || {
        let s = std::os::unix::net::UnixDatagram::unbound().unwrap();
        for i in 0..n {
            let m = format!("<14>1 - - load - - {sd} {tag}-{i}");
            while s.send_to(m.as_bytes(), &path).is_err() {
                // The socket's queue is full: the daemon is busy, not gone.
                std::thread::sleep(Duration::from_millis(1));
            }
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
    })
}

/// How many times each `TAG-i` arrived, by i.
fn arrivals(rx: &Receiver, tag: &str, n: usize) -> Vec<usize> {
    let prefix = format!("{tag}-");
    let mut seen = vec![0; n];
    for m in rx.messages() {
        if let Some(i) = m["msg"].as_str().and_then(|s| s.strip_prefix(&prefix)) {
            seen[i.parse::<usize>().unwrap()] += 1;
        }
    }
    seen
}

/// A daemon with a route to `rx` by `url`, sent the RFC 5424 example with
/// a unique message from `label`: the daemon, what `rx` received, and the
/// message.
fn example_routed(rx: &Receiver, url: &str, label: &str) -> (Daemon, Value, String) {
    let d = Daemon::start(&["--route", url]);
    let msg = unique(label);
    d.send(&example(&msg));
    let m = rx.message_with(&msg);
    (d, m, msg)
}

/// A daemon started with `flags` and a `--route` to each of `urls`.
fn routed(flags: &[&str], urls: &[String]) -> Daemon {
    let mut args = flags.to_vec();
    for url in urls {
        args.extend(["--route", url]);
    }
    Daemon::start(&args)
}

/// Pass the daemon a socketpair under `name` and write `text` into it: our
/// end, open until dropped.
fn pass_text(d: &Daemon, name: &str, text: &str) -> std::os::unix::net::UnixStream {
    let mut w = d.pass_socketpair(name);
    std::io::Write::write_all(&mut w, text.as_bytes()).unwrap();
    w
}

/// Whether entry `v`'s msg contains `needle`.
pub(super) fn msg_has(v: &Value, needle: &str) -> bool {
    v["msg"].as_str().is_some_and(|s| s.contains(needle))
}

/// Send 300 lines into a ring of 100 while the receiver is down, then
/// bring it back with `restart`: the route has missed at least 200.
pub(super) fn lap_the_route(d: &Daemon, tag: &str, restart: impl FnOnce()) -> usize {
    let n = 300;
    sender(d, tag, n, Duration::ZERO).join().unwrap();
    assert_all_stored(d, n as u64);
    restart();
    n
}

/// Every load message is stored in the ring: ingest did not wait for any
/// route.
pub(super) fn assert_all_stored(d: &Daemon, n: u64) {
    let c = d.wait_for_counters("syslog", |c| c["stored"].as_u64() >= Some(n));
    assert_eq!(c["dropped"], 0, "{c}");
}

#[test]
fn tcp_octet_counting_keeps_a_multi_line_message_whole_and_lf_escapes_it() {
    let rx = Receiver::start(Input::Tcp, None);
    // The same stack-trace lines to both routes, framed in two ways.
    let trace = "grep=^(trace-|  at)";
    let lf = format!("{trace}&framing=lf&format=rfc3164");
    let d = routed(&[], &[rx.url("tcp", trace), rx.url("tcp", &lf)]);
    let tag = unique("trace");
    drop(pass_text(&d, "java", &format!("{tag} one\n  at two\n")));
    // Without --multiline these are two entries: send a joined one instead.
    let joined = format!("{tag} whole\n  at a()\n  at b()");
    d.send(format!("<11>1 2026-01-02T03:04:05.678901Z app1 javaapp 77 EX - {joined}").as_bytes());
    let octet = rx.wait_for("both copies", 10, |m| {
        m.iter().filter(|v| msg_has(v, "whole")).count() == 2
    });
    let copies: Vec<&Value> = octet.iter().filter(|v| msg_has(v, "whole")).collect();
    let whole = copies.iter().find(|v| v["msg"] == joined.as_str());
    let whole = whole.unwrap_or_else(|| panic!("octet counting keeps the newlines: {copies:#?}"));
    assert_eq!(whole["time"], "2026-01-02T03:04:05.678901Z", "{whole}");
    assert_fields(
        whole,
        &[
            ("host", "app1"),
            ("app", "javaapp"),
            ("procid", "77"),
            ("msgid", "EX"),
        ],
    );
    let lf = copies.iter().find(|v| v["msg"] != joined.as_str()).unwrap();
    // rsyslog keeps the space after an RFC 3164 tag's colon in the text.
    assert_eq!(
        lf["msg"],
        format!(" {}", joined.replace('\n', "#012")),
        "LF framing cannot carry a newline: {lf}"
    );
    // RFC 3164 keeps host, tag and pid.
    assert_fields(
        lf,
        &[
            ("pri", "11"),
            ("host", "app1"),
            ("app", "javaapp"),
            ("procid", "77"),
        ],
    );
    // RFC 3164 has whole seconds in local time, and no year.
    let local = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
        .unwrap()
        .with_timezone(&chrono::Local);
    assert!(
        lf["time"]
            .as_str()
            .unwrap()
            .contains(&local.format("%m-%dT%H:%M:%S").to_string()),
        "{lf}"
    );
    // The fd's two lines, each its own entry, on both routes.
    let fd = rx.wait_for("fd lines", 10, |m| {
        m.iter().filter(|v| v["app"] == "java").count() == 4
    });
    let fd: Vec<_> = fd.iter().filter(|v| v["app"] == "java").collect();
    assert!(
        fd.iter().all(|v| v["host"] == hostname().as_str()),
        "{fd:#?}"
    );
}

#[test]
fn udp_sends_rfc3164_with_every_field_it_can_carry() {
    let rx = Receiver::start(Input::Udp, None);
    let url = rx.url("udp", "format=rfc3164&app=evntslog");
    let (d, m, msg) = example_routed(&rx, &url, "udp-example");
    assert_fields(
        &m,
        &[
            ("pri", "165"),
            ("host", "web1"),
            ("app", "evntslog"),
            ("procid", "1234"),
        ],
    );
    assert_eq!(
        m["msg"],
        format!(" {msg}"),
        "rsyslog keeps the space after the colon: {m}"
    );
    let s = wait_route(&d, 0, "one sent", |s| s["sent"] == 1);
    assert!(
        s["acknowledged"].is_null(),
        "UDP has no acknowledgements: {s}"
    );
    assert_eq!(
        rx.messages().len(),
        1,
        "the filter let only the example through"
    );
}

#[test]
fn tls_with_a_client_certificate_delivers_every_field() {
    let certs = tempfile::tempdir().unwrap();
    let pki = Pki::make(certs.path());
    let rx = Receiver::start(Input::Tls, Some(&pki));
    let opts = format!(
        "ca={}&cert={}&key={}&name=localhost",
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client-key.pem")
    );
    let (d, m, msg) = example_routed(&rx, &rx.url("tls", &opts), "tls-example");
    assert_example(&m, &msg);
    let s = wait_route(&d, 0, "connected", |s| {
        s["state"] == "connected" && s["lag"] == 0
    });
    assert_eq!(s["lost"], 0, "{s}");

    // Without the client certificate the server drops the connection
    // (after TLS 1.3's handshake, so what was written on it is lost: plain
    // TLS has no acknowledgements), and the route says so in the ring.
    d.stop();
    std::thread::sleep(Duration::from_millis(300));
    let before = rx.messages().len();
    let opts = format!("ca={}", pki.path("ca.pem"));
    let d = Daemon::start(&["--route", &rx.url("tls", &opts)]);
    d.internal_with("connection lost");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rx.messages().len(),
        before,
        "the server took nothing without a client certificate"
    );

    // A server whose certificate is not for the name asked is refused.
    let opts = format!("ca={}&name=elsewhere.test", pki.path("ca.pem"));
    let d = Daemon::start(&["--route", &rx.url("tls", &opts)]);
    let e = d.wait_for("a certificate error", |e| {
        e.iter()
            .any(|v| msg_has(v, "cannot connect") && msg_has(v, "certificate"))
    });
    assert!(!e.is_empty());
}

/// What a route did across a receiver killed (SIGKILL) mid-stream.
struct Restart {
    /// The load lines sent.
    n: usize,
    /// How many times the receiver got each line.
    seen: Vec<usize>,
    /// The route's stats once it caught up again.
    route: Value,
    /// What the ring had stored while the receiver was down.
    during: u64,
    /// How long since the receiver was killed.
    down: Duration,
}

/// A route of `scheme` to a receiver on `input` that is killed when a third
/// of 6000 load lines has arrived and started again 700 ms later, while
/// the sender goes on; every line must still be stored in the ring.
fn receiver_killed_mid_stream(input: Input, scheme: &str) -> Restart {
    let mut rx = Receiver::start(input, None);
    let d = routed(&["--max-lines", "100000"], &[rx.url(scheme, "app=load")]);
    let n = 6000;
    let tag = unique(&format!("{scheme}-load"));
    let t = sender(&d, &tag, n, Duration::from_micros(200));
    rx.wait_for("a third", 20, |m| m.len() > n / 3);
    rx.kill("KILL");
    let down = Instant::now();
    // The ring keeps taking everything while the receiver is gone.
    std::thread::sleep(Duration::from_millis(700));
    let during = d.stats()["inputs"]["syslog"]["stored"].as_u64().unwrap();
    rx.restart();
    t.join().unwrap();
    assert_all_stored(&d, n as u64);
    let route = wait_route(&d, 0, "caught up", |s| {
        s["lag"] == 0 && s["state"] == "connected"
    });
    // Sent is not yet written: count once rsyslogd has written the last
    // line, which follows the reconnect on either transport.
    let last = format!("{tag}-{}", n - 1);
    rx.wait_for("the last line", 20, |m| {
        m.iter().any(|v| v["msg"] == last.as_str())
    });
    Restart {
        n,
        seen: arrivals(&rx, &tag, n),
        route,
        during,
        down: down.elapsed(),
    }
}

#[test]
fn relp_receiver_killed_mid_stream_loses_nothing() {
    let Restart {
        n,
        seen,
        route: s,
        during,
        down,
    } = receiver_killed_mid_stream(Input::Relp, "relp");
    let missing: Vec<usize> = (0..n).filter(|&i| seen[i] == 0).collect();
    assert!(missing.is_empty(), "lost over RELP: {missing:?}");
    // At least once: only what was in flight, unacknowledged, may come twice.
    let dups = seen.iter().filter(|&&c| c > 1).count();
    assert!(dups <= 128, "{dups} duplicates, more than the window");
    assert!(seen.iter().all(|&c| c <= 2));
    assert_eq!(s["lost"], 0, "{s}");
    assert!(s["reconnects"].as_u64() >= Some(1), "{s}");
    assert!(
        during > (n / 3) as u64,
        "ingest went on while the receiver was down ({during})"
    );
    eprintln!("RELP restart: {dups} duplicates of {n}, receiver down {down:?}, {s}");
}

#[test]
fn tcp_receiver_killed_mid_stream_loses_at_most_what_was_in_flight() {
    let Restart {
        n, seen, route: s, ..
    } = receiver_killed_mid_stream(Input::Tcp, "tcp");
    let missing: Vec<usize> = (0..n).filter(|&i| seen[i] == 0).collect();
    // Plain TCP has no acknowledgements: what the receiver's kernel had
    // taken and rsyslogd had not read when it was killed is gone, and
    // the sender cannot know. Everything after the reconnect arrives.
    assert!(missing.len() <= 100, "{} lost: {missing:?}", missing.len());
    if let Some(&last) = missing.last() {
        assert!(last < n - 100, "lost after the reconnect: {missing:?}");
    }
    assert!(s["reconnects"].as_u64() >= Some(1), "{s}");
    eprintln!(
        "TCP restart: {} of {n} lost in flight: {missing:?}; {s}",
        missing.len()
    );
}

#[test]
fn a_route_that_lags_past_the_ring_counts_and_tells_what_it_lost() {
    let mut rx = Receiver::start(Input::Tcp, None);
    let d = routed(&["--max-lines", "100"], &[rx.url("tcp", "")]);
    rx.message_with("memlogd started");
    wait_route(&d, 0, "caught up", |s| s["lag"] == 0);
    // Killed while the route is idle: it sees the connection close and
    // sends nothing into the void.
    rx.kill("KILL");
    d.internal_with("connection lost");
    let tag = unique("lag");
    let n = lap_the_route(&d, &tag, || rx.restart());
    let s = wait_route(&d, 0, "caught up again", |s| {
        s["lag"] == 0 && s["state"] == "connected"
    });
    let lost = s["lost"].as_u64().unwrap();
    assert!(lost >= 200, "{s}");
    // Delivered is written to the socket: read once rsyslogd has written
    // the last line, which follows every notice on the one connection.
    let last = format!("{tag}-{}", n - 1);
    let m = rx.wait_for("the last line", 20, |m| {
        m.iter().any(|v| v["msg"] == last.as_str())
    });
    let notices: Vec<&Value> = m
        .iter()
        .filter(|v| msg_has(v, "entries were lost"))
        .collect();
    // One notice a gap: fair eviction keeps the daemon's own entries, so
    // the flood's lost lines may lie in more than one run.
    assert!(!notices.is_empty(), "a notice of the loss");
    let told: u64 = notices
        .iter()
        .map(|v| {
            let msg = v["msg"].as_str().unwrap();
            let n = msg.strip_prefix("ringlogd: ").unwrap_or(msg);
            n.split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(
        told, lost,
        "the notices add up to what was lost: {notices:#?}"
    );
    for n in &notices {
        assert_eq!(n["pri"], "44", "syslog.warning: {n}");
    }
    // Every entry the ring ever held was either received or counted lost,
    // once the receiver has written down what the route sent last.
    let notices = notices.len();
    poll(
        "received + lost = every entry the ring held",
        Duration::from_secs(10),
        || {
            let next_seq = d.stats()["ring"]["next_seq"].as_u64().unwrap();
            (rx.messages().len() - notices, lost, next_seq)
        },
        |&(received, lost, next_seq)| received as u64 + lost == next_seq,
    );
    // The last entries all came, in order.
    let seen = arrivals(&rx, &tag, n);
    assert!(
        seen[n - 50..].iter().all(|&c| c == 1),
        "{:?}",
        &seen[n - 50..]
    );
    // And the ring says so too.
    d.internal_with("entries were overwritten in the ring");
}

#[test]
fn a_stopped_receiver_slows_neither_ingest_nor_another_route() {
    let stuck = Receiver::start(Input::Tcp, None);
    let live = Receiver::start(Input::Relp, None);
    let d = routed(
        &["--max-lines", "100000", "--max-bytes", "64M"],
        &[stuck.url("tcp", "app=load"), live.url("relp", "app=load")],
    );
    wait_route(&d, 0, "connected", |s| s["state"] == "connected");
    signal(stuck.pid(), "STOP");
    // 30 MB: far more than the socket buffers between the two hold.
    let n = 30_000;
    let tag = unique("stuck");
    let started = Instant::now();
    padded_sender(&d, &tag, n, Duration::ZERO, 1000)
        .join()
        .unwrap();
    assert_all_stored(&d, n as u64);
    let ingest = started.elapsed();
    live.wait_for("every message on the live route", 30, |m| m.len() >= n);
    let stuck_stats = route_stats(&d, 0);
    signal(stuck.pid(), "CONT");
    assert!(
        stuck_stats["lag"].as_u64() > Some(1000),
        "the stopped receiver cannot have taken it all: {stuck_stats}"
    );
    wait_route(&d, 0, "the stopped receiver catching up", |s| s["lag"] == 0);
    stuck.wait_for("every message once it runs again", 30, |m| m.len() >= n);
    assert!(arrivals(&stuck, &tag, n).iter().all(|&c| c == 1));
    assert!(arrivals(&live, &tag, n).iter().all(|&c| c == 1));
    eprintln!("{n} messages stored in {ingest:?} with one receiver stopped");
}

#[test]
fn two_routes_with_different_filters() {
    let errors = Receiver::start(Input::Relp, None);
    let services = Receiver::start(Input::Udp, None);
    let d = routed(
        &[],
        &[
            errors.url("relp", "priority=err"),
            services.url("udp", "source=svc.*&grep=^keep"),
        ],
    );
    let tag = unique("filters");
    d.send(format!("<11>1 - - app1 - - - {tag} user.err").as_bytes());
    d.send(format!("<14>1 - - app1 - - - {tag} user.info").as_bytes());
    let _w = pass_text(&d, "svc.out", &format!("keep {tag}\ndrop {tag}\n"));
    let _o = pass_text(&d, "other.out", &format!("keep {tag} other\n"));
    d.wait_for("everything in the ring", |e| {
        e.iter().filter(|v| msg_has(v, &tag)).count() == 5
    });
    wait_route(&d, 0, "caught up", |s| s["lag"] == 0);
    wait_route(&d, 1, "caught up", |s| s["lag"] == 0);
    // Sent is not yet written by rsyslogd: wait for its file, then check
    // nothing else came.
    let got = |rx: &Receiver| -> Vec<String> {
        let mine = |m: &[Value]| -> Vec<String> {
            m.iter()
                .filter_map(|v| v["msg"].as_str())
                .filter(|s| s.contains(&tag))
                .map(str::to_owned)
                .collect()
        };
        mine(&rx.wait_for("the route's messages", 10, |m| !mine(m).is_empty()))
    };
    assert_eq!(got(&errors), vec![format!("{tag} user.err")]);
    assert_eq!(got(&services), vec![format!("keep {tag}")]);
    // logread --stats shows both routes.
    let out = d.logread(&["--stats"]);
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    let routes = stats["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 2);
    assert_eq!(
        routes[0]["url"],
        errors.url("relp", "priority=err").as_str()
    );
    assert_eq!(routes[1]["sent"], 1, "{}", routes[1]);
}

#[test]
fn bad_routes_stop_the_daemon_at_start_with_the_reason() {
    for (url, says) in [
        ("tcp://127.0.0.1", "no :PORT"),
        (
            "tls://127.0.0.1:6514?ca=/nonexistent/ca.pem",
            "/nonexistent/ca.pem",
        ),
        ("relp://127.0.0.1:2514?format=xml", "format="),
    ] {
        let out = ringlogd_command()
            .arg("--runtime-dir")
            .arg(tempfile::tempdir().unwrap().path())
            .args(["--route", url])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{url}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{url}: {err}");
    }
}

/// The relay snippets of docs/forwarding.md, run as they are written: the
/// central rsyslog configuration, the certificates, the ringlogd command
/// line.
mod doc_snippets {
    use super::*;
    use crate::support::receiver::free_port;
    use crate::support::syslogd::doc_snippet;

    /// The `--route` URL of a docs command line.
    fn route_of(snippet: &str) -> String {
        let words: Vec<&str> = snippet.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "--route").expect("--route");
        words[at + 1].trim_matches('\'').to_owned()
    }

    /// A central rsyslogd run from a docs snippet, listening on a free port
    /// of 127.0.0.1 instead of the snippet's, its log directory in `remote`.
    struct Central {
        _rx: Receiver,
        remote: tempfile::TempDir,
        port: u16,
        default_port: &'static str,
    }

    /// rsyslogd with the docs snippet `snippet`, which listens on
    /// `default_port`, with the other replacements `also`.
    fn central(
        snippet: &str,
        input: Input,
        default_port: &'static str,
        also: &[(&str, &str)],
    ) -> Central {
        let remote = tempfile::tempdir().unwrap();
        let port = free_port(input);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("work")).unwrap();
        let mut snippet = doc_snippet(snippet)
            .replace("/var/log/remote", remote.path().to_str().unwrap())
            .replace(
                &format!("port=\"{default_port}\""),
                &format!("address=\"127.0.0.1\" port=\"{port}\""),
            );
        for (from, to) in also {
            snippet = snippet.replace(from, to);
        }
        let conf = format!(
            "global(workDirectory=\"{}\")\n{snippet}",
            dir.path().join("work").display(),
        );
        let out = dir.path().join("none");
        Central {
            _rx: Receiver::with_config(dir, input, port, out, &conf),
            remote,
            port,
            default_port,
        }
    }

    impl Central {
        /// The `--route` URL of the docs command line `route`, pointed at
        /// this server instead of logs.example.com.
        fn route_url(&self, route: &str) -> String {
            route_of(&doc_snippet(route)).replace(
                &format!("logs.example.com:{}", self.default_port),
                &format!("127.0.0.1:{}", self.port),
            )
        }
    }

    fn wait_file(path: &std::path::Path, needle: &str) -> String {
        poll(
            &format!("{needle} in {}", path.display()),
            Duration::from_secs(10),
            || std::fs::read_to_string(path).unwrap_or_default(),
            |text| text.contains(needle),
        )
    }

    /// A daemon routing to `url`: the RFC 5424 example sent to it reaches
    /// the central server's `web1.log` in `remote`, in rsyslog's file format.
    fn assert_relayed(url: &str, remote: &std::path::Path, label: &str) -> Daemon {
        let d = Daemon::start(&["--route", url]);
        let msg = unique(label);
        d.send(&example(&msg));
        let text = wait_file(&remote.join("web1.log"), &msg);
        assert!(
            text.contains(&format!(
                "2003-10-11T22:14:15.003+02:00 web1 evntslog[1234] {msg}"
            )),
            "{text}"
        );
        d
    }

    #[test]
    fn the_relp_relay_works_as_pasted() {
        let rx = central("central-relp", Input::Relp, "2514", &[]);
        let url = rx.route_url("route-relp");
        let _d = assert_relayed(&url, rx.remote.path(), "relay-relp");
        wait_file(
            &rx.remote.path().join(format!("{}.log", hostname())),
            "memlogd started",
        );
    }

    #[test]
    fn the_tls_relay_works_as_pasted() {
        let certs = tempfile::tempdir().unwrap();
        // POSIX sh, as the docs promise; the certificates go to a temporary
        // directory instead of the one the snippet names.
        let script =
            doc_snippet("tls-certs").replace("/tmp/ringlogd-certs", certs.path().to_str().unwrap());
        run_ok(
            std::process::Command::new("sh")
                .arg("-ec")
                .arg(&script)
                .current_dir(certs.path()),
        );
        let certs_dir = format!("{}/", certs.path().display());
        let rx = central(
            "central-tls",
            Input::Tls,
            "6514",
            &[("/etc/rsyslog.d/tls/", &certs_dir)],
        );
        // No DNS here: the server is 127.0.0.1, and its certificate names
        // logs.example.com.
        let url = rx
            .route_url("route-tls")
            .replace("/etc/ringlogd/", &certs_dir)
            + "&name=logs.example.com";
        assert_relayed(&url, rx.remote.path(), "relay-tls");
    }
}
