//! The UDP and TCP listeners with real clients (`logger -n`) and with
//! senders nobody should have: too many connections, garbage, a megabyte
//! without a newline, a connection that stops mid-message or goes quiet.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::Value;

/// `logger -n ADDR -P PORT args`.
fn logger_to(addr: SocketAddr, args: &[&str]) {
    run_ok(
        Command::new(require("logger"))
            .arg("-n")
            .arg(addr.ip().to_string())
            .arg("-P")
            .arg(addr.port().to_string())
            .args(args),
    );
}

/// `logger -n ADDR -P PORT args… MSG` with a unique MSG made from `label`,
/// and the entry it became.
fn logged_to(d: &Daemon, addr: SocketAddr, label: &str, args: &[&str]) -> Value {
    let msg = unique(label);
    logger_to(addr, &[args, &[msg.as_str()]].concat());
    d.entry_with_msg(&msg)
}

fn peer_ip(e: &Value) -> std::net::IpAddr {
    e["peer_addr"]
        .as_str()
        .unwrap_or_else(|| panic!("no peer_addr: {e}"))
        .parse::<SocketAddr>()
        .unwrap()
        .ip()
}

/// `logger args… -t APP --id=PID --msgid MSGID MSG` to `addr` on the
/// loopback, with a unique MSG made from `label`: the entry it became,
/// checked to carry that header and to have come from 127.0.0.1.
fn logged_with_header(
    d: &Daemon,
    addr: SocketAddr,
    label: &str,
    (app, pid, msgid): (&str, &str, &str),
    args: &[&str],
) -> Value {
    let id = format!("--id={pid}");
    let header = ["-t", app, id.as_str(), "--msgid", msgid];
    let e = logged_to(d, addr, label, &[args, &header].concat());
    assert_eq!(e["input"], "net", "{e}");
    assert_eq!(peer_ip(&e).to_string(), "127.0.0.1", "{e}");
    assert_local_header(&e, app, pid, msgid);
    e
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to ringlogd");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// One connection that sends `text` and closes; the entry holding `msg`.
fn sent_then_closed(d: &Daemon, tcp: SocketAddr, text: &str, msg: &str) -> Value {
    let mut s = connect(tcp);
    s.write_all(text.as_bytes()).unwrap();
    drop(s);
    d.entry_with_msg(msg)
}

/// Wait until the daemon has closed `s` (a read sees EOF or a reset).
fn assert_closed_by_daemon(mut s: TcpStream, what: &str) {
    let mut b = [0u8; 16];
    loop {
        match s.read(&mut b) {
            Ok(0) => return,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            // A signal meant for another test's child reached this thread.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => panic!("{what}: expected the daemon to close, got {other:?}"),
        }
    }
}

#[test]
fn udp_with_logger() {
    let (d, udp) = Daemon::start_on_loopback("udp", &[]);
    let e = logged_with_header(
        &d,
        udp,
        "udp5424",
        ("udptag", "9", "UM"),
        &[
            "-d",
            "--sd-id",
            "x@1",
            "--sd-param",
            r#"a="b""#,
            "-p",
            "local1.err",
        ],
    );
    assert!(e.get("peer").is_none(), "{e}");
    assert_eq!(e["sd"]["x@1"]["a"], "b");
    assert_eq!(e["facility"], "local1");
    assert_eq!(e["severity"], "err");
    assert!(e["timestamp"].is_string() && e["time"].is_string(), "{e}");

    let e = logged_to(&d, udp, "udp3164", &["-d", "--rfc3164", "-t", "old"]);
    assert_eq!(e["host"], hostname().as_str());
    assert_eq!(e["app"], "old");

    // logger puts an octet count in front even on a datagram.
    let e = logged_to(&d, udp, "udpoctet", &["-d", "--octet-count", "-t", "oc"]);
    assert_eq!(e["app"], "oc");

    d.assert_ledger("net", &[("received", 3), ("malformed", 0)]);
}

#[test]
fn tcp_with_logger_lf_and_octet_counting() {
    let (d, tcp) = Daemon::start_on_loopback("tcp", &[]);

    let e = logged_with_header(&d, tcp, "tcplf", ("tcptag", "10", "TM"), &["-T"]);
    assert!(e.get("truncated").is_none(), "{e}");

    // Octet counting keeps an embedded newline inside its message.
    let msg = unique("tcpoctet");
    logger_to(
        tcp,
        &["-T", "--octet-count", "-t", "octag", &format!("a\nb {msg}")],
    );
    let e = d.entry_with_msg(&format!("a\nb {msg}"));
    assert_eq!(e["app"], "octag");

    // Many lines over one connection, in order, none merged.
    let tag = unique("tcpfile");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lines");
    std::fs::write(
        &file,
        (0..300).map(|i| format!("{tag} {i}\n")).collect::<String>(),
    )
    .unwrap();
    for framing in [&["-T"][..], &["-T", "--octet-count"]] {
        let mut args = framing.to_vec();
        args.extend(["-t", "file", "-f", file.to_str().unwrap()]);
        logger_to(tcp, &args);
    }
    let got = d.wait_msgs_starting(&tag, 600);
    let want: Vec<String> = (0..300)
        .chain(0..300)
        .map(|i| format!("{tag} {i}"))
        .collect();
    assert_eq!(got, want);

    d.assert_ledger(
        "net",
        &[("received", 602), ("truncated", 0), ("malformed", 0)],
    );
}

#[test]
fn ipv6_loopback() {
    let d = Daemon::start(&["--udp", "[::1]:0", "--tcp", "[::1]:0"]);
    let (udp, tcp) = (d.listening("udp"), d.listening("tcp"));
    assert!(udp.is_ipv6() && tcp.is_ipv6());
    let m1 = unique("v6udp");
    logger_to(udp, &["-d", "-t", "v6", &m1]);
    let m2 = unique("v6tcp");
    logger_to(tcp, &["-T", "-t", "v6", &m2]);
    for m in [&m1, &m2] {
        let e = d.entry_with_msg(m);
        assert_eq!(peer_ip(&e).to_string(), "::1", "{e}");
        assert!(e["peer_addr"].as_str().unwrap().starts_with("[::1]:"));
        assert_eq!(e["app"], "v6");
    }
    d.assert_ledger_balances("net");
}

#[test]
fn ipv4_and_ipv6_wildcards_bind_the_same_port() {
    // Bind [::]:P, then 0.0.0.0:P: only with IPV6_V6ONLY does the second
    // not collide with the first.
    let d = Daemon::start(&["--tcp", "[::]:0"]);
    let port = d.listening("tcp").port();
    let d4 = Daemon::start(&["--tcp", &format!("0.0.0.0:{port}")]);
    let e = logged_to(
        &d4,
        format!("127.0.0.1:{port}").parse().unwrap(),
        "v4beside6",
        &["-T", "-t", "t"],
    );
    assert_eq!(
        peer_ip(&e).to_string(),
        "127.0.0.1",
        "never ::ffff:127.0.0.1"
    );
    drop(d);
}

#[test]
fn nothing_listens_on_the_network_unless_asked() {
    let d = Daemon::start(&[]);
    // Every socket the daemon holds, by inode...
    let mut inodes = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{}/fd", d.pid())).unwrap() {
        let target = std::fs::read_link(fd.unwrap().path()).unwrap_or_default();
        if let Some(i) = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
        {
            inodes.push(i.to_owned());
        }
    }
    assert!(!inodes.is_empty(), "it has its unix sockets");
    // ...is in none of the kernel's IP socket tables.
    for table in ["tcp", "tcp6", "udp", "udp6"] {
        let t = std::fs::read_to_string(format!("/proc/net/{table}")).unwrap_or_default();
        for line in t.lines().skip(1) {
            let inode = line.split_whitespace().nth(9).unwrap_or("");
            assert!(
                !inodes.iter().any(|i| i == inode),
                "ringlogd has a {table} socket: {line}"
            );
        }
    }
    assert!(d.listening_all("tcp").is_empty() && d.listening_all("udp").is_empty());
}

#[test]
fn a_port_in_use_is_one_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(RINGLOGD)
        .arg("--runtime-dir")
        .arg(dir.path())
        .args(["--tcp", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("tcp {addr}")), "{err}");
    assert!(err.contains("in use"), "{err}");
    assert!(
        !dir.path().join("log").exists(),
        "nothing left behind: {:?}",
        std::fs::read_dir(dir.path()).unwrap().collect::<Vec<_>>()
    );
}

#[test]
fn past_max_conns_new_connections_are_closed_and_counted() {
    let (d, tcp) = Daemon::start_on_loopback("tcp", &["--tcp-max-conns", "2"]);
    let mut open = Vec::new();
    for i in 0..2 {
        let mut s = connect(tcp);
        let msg = unique(&format!("conn{i}"));
        writeln!(s, "<13>1 - h app - - - {msg}").unwrap();
        d.entry_with_msg(&msg); // accepted and read
        open.push(s);
    }
    for _ in 0..3 {
        assert_closed_by_daemon(connect(tcp), "a third connection");
    }
    assert_eq!(
        d.stats()["open"]["tcp_connections"],
        2,
        "stats say what is open"
    );
    let note = d.entry_with_text("refused a connection");
    assert_eq!(note["input"], "internal");
    assert_eq!(note["severity"], "warning");
    let text = note["msg"].as_str().unwrap();
    assert!(text.contains("--tcp-max-conns"), "{text}");
    assert!(text.contains("1 refused since start"), "{text}");
    assert!(
        text.contains(&format!("tcp {tcp}: refused a connection from 127.0.0.1:")),
        "{text}"
    );

    // The two open connections still work.
    let msg = unique("still");
    writeln!(open[1], "<13>1 - h app - - - {msg}").unwrap();
    d.entry_with_msg(&msg);

    // Once one closes, a new connection is taken again.
    drop(open.remove(0));
    let msg = unique("after-close");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = connect(tcp);
        let _ = writeln!(s, "<13>1 - h app - - - {msg}");
        let _ = s.shutdown(Shutdown::Write);
        let mut b = [0u8; 1];
        let _ = s.read(&mut b); // until the daemon closes it, either way
        if d.dump().iter().any(|v| v["msg"] == msg.as_str()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no connection taken after one closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    d.assert_ledger_balances("net");
}

#[test]
fn garbage_and_an_unterminated_megabyte_cost_only_their_own_connection() {
    let (d, tcp) = Daemon::start_on_loopback("tcp", &["--max-line-len", "1024"]);

    // A megabyte with no newline, and 256 KiB of binary garbage, sent as
    // fast as the daemon reads, on their own connections.
    let mut big = connect(tcp);
    let mut junk = connect(tcp);
    let bulk = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 << 10];
        for _ in 0..16 {
            big.write_all(&chunk).unwrap();
        }
        let garbage: Vec<u8> = noise(0x9e37_79b9)
            .take(256 << 10)
            .map(|x| (x >> 24) as u8)
            .collect();
        junk.write_all(&garbage).unwrap();
        (big, junk)
    });

    // Meanwhile a well-behaved sender gets every message through.
    let mut good = connect(tcp);
    let tag = unique("good");
    for i in 0..200 {
        writeln!(good, "<13>1 - h good - - - {tag} {i}").unwrap();
    }
    let (big, junk) = bulk.join().unwrap();
    d.wait_msgs_starting(&tag, 200);
    for e in d.dump().iter().filter(|v| v["app"] == "good") {
        assert!(e.get("truncated").is_none(), "{e}");
    }

    // The megabyte ends as one entry, cut at the limit and flagged, when
    // its connection closes.
    drop(big);
    let entries = d.wait_for("the cut megabyte", |e| {
        e.iter()
            .any(|v| v["msg"].as_str().is_some_and(|m| m.starts_with("xxxx")))
    });
    let cut: Vec<&Value> = entries
        .iter()
        .filter(|v| v["msg"].as_str().is_some_and(|m| m.starts_with("xxxx")))
        .collect();
    assert_eq!(cut.len(), 1, "one entry for the megabyte");
    assert_eq!(cut[0]["msg"].as_str().unwrap().len(), 1024);
    assert_eq!(cut[0]["truncated"], true);
    assert_eq!(cut[0]["input"], "net");
    drop(junk);

    // The daemon stayed small: each connection held at most one frame.
    let rss = rss_kib(d.pid());
    assert!(rss < 64 << 10, "RSS {rss} KiB");

    let net = d.wait_for_counters("net", |c| {
        c["malformed"].as_u64() > Some(0) && c["truncated"].as_u64() >= Some(1)
    });
    assert!(
        net["malformed"].as_u64().unwrap() > 0,
        "garbage is kept as malformed: {net}"
    );
    assert!(net["truncated"].as_u64().unwrap() >= 1, "{net}");
    d.assert_ledger_balances("net");
}

#[test]
fn a_connection_closing_mid_message_leaves_the_part_flagged() {
    let (d, tcp) = Daemon::start_on_loopback("tcp", &[]);
    let msg = unique("part");
    // Announces 500 bytes, sends fewer, closes.
    let e = sent_then_closed(
        &d,
        tcp,
        &format!("500 <13>1 2026-11-22T10:00:00Z web1 app 7 M - {msg}"),
        &msg,
    );
    assert_eq!(e["truncated"], true, "{e}");
    assert_fields(&e, &[("host", "web1"), ("app", "app"), ("msgid", "M")]);

    // LF framing: the last line without its newline, also kept, flagged.
    let msg = unique("noeol");
    let text = format!("<13>1 - h app - - - whole\n<13>1 - h app - - - {msg}");
    let e = sent_then_closed(&d, tcp, &text, &msg);
    assert_eq!(e["truncated"], true, "{e}");
    let whole = d.entry_with_msg("whole");
    assert!(whole.get("truncated").is_none(), "{whole}");
    d.assert_ledger("net", &[("truncated", 2)]);
}

#[test]
fn an_idle_connection_is_closed() {
    let (d, tcp) = Daemon::start_on_loopback("tcp", &["--tcp-idle-timeout", "1"]);
    let started = Instant::now();
    let mut s = connect(tcp);
    let msg = unique("idle");
    write!(s, "<13>1 - h app - - - {msg}").unwrap(); // no newline: unfinished
    assert_closed_by_daemon(s, "an idle connection");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
    // What it had sent of a message is kept.
    let e = d.entry_with_msg(&msg);
    assert_eq!(e["truncated"], true);

    // A connection that keeps talking stays open.
    let mut busy = connect(tcp);
    for i in 0..6 {
        writeln!(busy, "<13>1 - h app - - - {msg} {i}").unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    d.entry_with_msg(&format!("{msg} 5"));
}

#[test]
fn udp_datagrams_the_kernel_drops_are_counted() {
    let (d, udp) = Daemon::start_on_loopback("udp", &[]);
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // Stopped, the daemon reads nothing: 20 MB of datagrams overflow its
    // socket buffer (at most 4 MiB) and the kernel drops the rest.
    signal(d.pid(), "STOP");
    let mut m = format!("<13>1 - h flood - - - {} ", unique("flood")).into_bytes();
    m.resize(1000, b'x');
    const SENT: u64 = 20_000;
    for _ in 0..SENT {
        s.send_to(&m, udp).unwrap();
    }
    signal(d.pid(), "CONT");
    // The kernel's count arrives with the next datagram read.
    let last = unique("after-flood");
    s.send_to(format!("<13>1 - h flood - - - {last}").as_bytes(), udp)
        .unwrap();
    d.entry_with_msg(&last);
    let net = d.assert_ledger_balances("net");
    assert_eq!(
        net["received"],
        SENT + 1,
        "every datagram sent is accounted for: {net}"
    );
    assert!(net["dropped"].as_u64().unwrap() > 0, "{net}");
}
