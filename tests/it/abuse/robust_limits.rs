//! Running out of file descriptors: the daemon started with `ulimit -n 64`
//! holds query clients to what the limit leaves them, and pushed past it by
//! TCP senders and passed fds keeps serving what it can (syslog datagrams
//! need no fd), refuses the rest with a clear word and counts it, and
//! serves everyone again once fds are free.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::support::*;
use serde_json::Value;

#[test]
fn with_ulimit_n_64_exhausted_it_serves_what_it_can_and_counts_the_rest() {
    let d = Daemon::start_under(&["prlimit", "--nofile=64:64"], &["--tcp", "127.0.0.1:0"]);
    let tcp = d.listening("tcp");
    let limit = std::fs::read_to_string(format!("/proc/{}/limits", d.pid())).unwrap();
    assert!(
        limit
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 64 ")),
        "{limit}"
    );
    // It says how many intake fds it can read under that limit.
    let warned = d
        .dump()
        .into_iter()
        .find(|v| v["input"] == "internal" && v["msg"].as_str().unwrap().contains("--max-fds"));
    let warned = warned.expect("a warning about --max-fds and the fd limit");
    println!("{}", warned["msg"]);

    // Query clients that hold their connections: past what the fd limit
    // leaves for them, and then some.
    let mut held: Vec<UnixStream> = (0..100)
        .map(|_| UnixStream::connect(&d.query).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Those it could not take were told so and closed, not left hanging.
    let mut answered = Vec::new();
    let mut waiting = Vec::new();
    for mut c in held.drain(..) {
        c.set_nonblocking(true).unwrap();
        let mut out = Vec::new();
        match c.read_to_end(&mut out) {
            Ok(_) => answered.push(String::from_utf8(out).unwrap()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => waiting.push(c),
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        !answered.is_empty(),
        "every connection was taken under 64 fds?"
    );
    assert!(
        waiting.len() <= 8,
        "{} query connections held under 64 fds",
        waiting.len()
    );
    for a in &answered {
        let v: Value = serde_json::from_str(a).unwrap_or_else(|e| panic!("{e}: {a:?}"));
        assert!(
            v["error"].as_str().unwrap().contains("file descriptors"),
            "{a}"
        );
    }
    println!("{} of 100 connections refused", answered.len());

    // TCP senders that hold their connections until the daemon is out of
    // fds; those past the limit are closed at once, not left waiting.
    let tcp_held: Vec<std::net::TcpStream> = (0..100)
        .map(|_| std::net::TcpStream::connect(tcp).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..5 {
        let mut t = std::net::TcpStream::connect(tcp).unwrap();
        t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1];
        match t.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("a TCP connection past the fd limit: {other:?}"),
        }
    }

    // Syslog needs no fd: it is stored all along.
    let msg = unique("while-exhausted");
    d.send(format!("<13>Nov 21 23:40:10 t: {msg}").as_bytes());
    // Fds passed now cannot be taken in: the loss is counted.
    let name = unique("no-room");
    let pairs: Vec<_> = (0..10).map(|_| UnixStream::pair().unwrap()).collect();
    let raw: Vec<_> = pairs.iter().map(|(_, t)| t.as_raw_fd()).collect();
    d.pass_fds(name.as_bytes(), &raw);
    drop(pairs);
    // One fd free again: the datagram, if it is still waiting, gets at most
    // that one, and the stats queries that follow get it in turn.
    drop(waiting.pop());
    d.wait_for_counters("fd", |c| c["dropped"].as_u64() >= Some(1));

    // Free them all: everything works again, and the books say what was
    // refused.
    drop(waiting);
    drop(tcp_held);
    d.wait_until("the stats answered", |d| {
        d.stats()["queries"]["limited"].as_u64() >= Some(answered.len() as u64)
    });
    d.entry_with_msg(&msg);
    let refusal = d.wait_for("the TCP refusal", |e| {
        e.iter().any(|v| {
            v["msg"]
                .as_str()
                .unwrap()
                .contains("out of file descriptors")
        })
    });
    assert!(
        refusal
            .iter()
            .any(|v| v["input"] == "internal"
                && v["msg"].as_str().unwrap().contains("tcp 127.0.0.1:"))
    );
    let mut w = d.pass_socketpair(&unique("room"));
    w.write_all(b"room again\n").unwrap();
    drop(w);
    d.entry_with_msg("room again");
    d.assert_still_serves();
}
