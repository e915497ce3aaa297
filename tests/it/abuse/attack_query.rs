//! A local user attacking the query socket opened to all (`--query-mode
//! 0666`): its connections must never lock root or the fd intake out, and
//! what it is shown is counts and its own entries only. (That its queries
//! never delay what root logs is timed in tests/timed, alone.) The
//! attacker runs as another uid (`setpriv`), with real clients.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

/// One test at a time: one holds connections up to the limits, which
/// would refuse the others' clients.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The connection holder: open `N` query connections, ask each to follow
/// (those past the limits are refused and closed at once), say so, and
/// hold them until killed.
const HOLD_CONNECTIONS: &str = r#"
import socket, sys, time
query, n = sys.argv[1], int(sys.argv[2])
held = []
for _ in range(n):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(query)
    try:
        c.sendall(b'{"mode":"follow"}\n')
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused past the limits: counted by the daemon
    held.append(c)
print("held", flush=True)
time.sleep(3600)
"#;

/// Run `HOLD_CONNECTIONS` as `uid` for `n` connections, once they are all
/// connected.
fn hold_connections(d: &Daemon, uid: u32, n: usize) -> Reaped {
    let mut holder = Reaped(
        as_user(uid, uid)
            .arg(python_for_others())
            .args(["-c", HOLD_CONNECTIONS])
            .arg(&d.query)
            .arg(n.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_for_line(&mut holder.0, "held");
    holder
}

/// `logread --stats` as `uid`, parsed.
fn stats_as(d: &Daemon, uid: u32) -> Value {
    let out = run_ok(
        as_user(uid, uid)
            .arg(LOGREAD)
            .arg("--socket")
            .arg(&d.query)
            .arg("--stats"),
    );
    serde_json::from_slice(&out.stdout).expect("stats is one JSON object")
}

#[test]
fn a_query_client_limit_the_fd_limit_cannot_hold_is_a_warning() {
    let d = Daemon::start_under(
        &["prlimit", "--nofile=400:400"],
        &[
            "--max-fds",
            "100",
            "--tcp-max-conns",
            "16",
            "--query-max-clients",
            "1000",
        ],
    );
    let said = d.internal_with("--query-max-clients 1000 is more than the fd limit (400)");
    assert_eq!(said["severity"], "warning", "{said}");
    assert!(
        said["msg"]
            .as_str()
            .unwrap()
            .contains("at most 220 query connections"),
        "{said}"
    );
}

#[test]
fn users_holding_connections_leave_room_for_root_and_the_intake() {
    let _serial = one_at_a_time();
    if !root_or_skip("connecting as other users") {
        return;
    }
    raise_fd_limit();
    // 400 fds, of which the intake takes up to 100 and TCP 16: the query
    // socket gets 400 - 116 - 64 = 220 connections, a quarter of them kept
    // for root, so 165 for readers of their own entries, at most 64 each.
    let d = Daemon::start_under(
        &["prlimit", "--nofile=400:400"],
        &[
            "--query-mode",
            "0666",
            "--max-fds",
            "100",
            "--tcp-max-conns",
            "16",
        ],
    );
    d.open_dir();
    let said = d.dump().into_iter().find(|e| {
        e["msg"].as_str().is_some_and(|m| {
            m.contains("--query-max-clients 4096 is more than the fd limit (400)")
                && m.contains("at most 220 query connections")
        })
    });
    // The default lowered is how the machine is, not a setting that failed.
    let said = said.expect("the lowered limit is said in the log");
    assert_eq!(said["severity"], "info", "{said}");
    // Three users try 100 follow connections each, one after the other.
    let mut holders = Vec::new();
    for (uid, refused) in [(NOBODY, 36), (NOBODY - 1, 36), (NOBODY - 2, 63)] {
        holders.push(hold_connections(&d, uid, 100));
        d.wait_until("the refusals counted", |d| {
            d.stats()["queries"]["limited_by_uid"][uid.to_string()] == refused
        });
    }
    let q = d.stats()["queries"].clone();
    assert_eq!(q["limited"], 135, "{q}");
    assert_eq!(q["followers"], 165, "{q}");

    // Root still reads, dumps and follows.
    let out = d.logread(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("memlogd started"));
    let mut root_followers: Vec<UnixStream> = (0..20)
        .map(|_| {
            let c = UnixStream::connect(&d.query).unwrap();
            (&c).write_all(&[1]).unwrap();
            c
        })
        .collect();
    d.wait_until("root's followers", |d| {
        d.stats()["queries"]["followers"] == 185
    });
    // And the intake still takes fds and stores their lines.
    let names: Vec<String> = (0..50).map(|i| format!("svc{i}.out")).collect();
    let mut writers: Vec<UnixStream> = names.iter().map(|n| d.pass_socketpair(n)).collect();
    for (w, name) in writers.iter_mut().zip(&names) {
        writeln!(w, "hello from {name}").unwrap();
    }
    for name in &names {
        assert_eq!(d.wait_lines(name, 1), [format!("hello from {name}")]);
    }
    assert_eq!(d.fd_counter("dropped"), 0);
    // A refused connection is told why.
    let refused = as_user(NOBODY, NOBODY)
        .arg(python_for_others())
        .args([
            "-c",
            "import socket,sys; c=socket.socket(socket.AF_UNIX); c.connect(sys.argv[1]); \
             print(c.makefile().readline(), end='')",
        ])
        .arg(&d.query)
        .output()
        .unwrap();
    let line: Value = serde_json::from_slice(&refused.stdout).expect("one JSON error line");
    assert!(
        line["error"]
            .as_str()
            .unwrap()
            .contains("uid 65534 holds 64 query connections"),
        "{line}"
    );
    // A restricted reader sees its own refusals only.
    drop(holders);
    d.wait_until("the holders gone", |d| {
        d.stats()["queries"]["followers"] == 20
    });
    let own = stats_as(&d, NOBODY)["queries"]["limited_by_uid"].clone();
    assert_eq!(own, serde_json::json!({"65534": 37}));
    root_followers.clear();
    d.assert_still_serves();
}

/// Log `n` entries as `uid` under the tag `tag`, with logger, and wait
/// until the ring holds them.
fn log_as(d: &Daemon, uid: u32, tag: &str, n: usize) {
    for i in 0..n {
        let msg = unique(&format!("{tag}-{uid}-{i}"));
        d.logger_as(uid, &["-t", tag, &msg]);
        d.entry_with_msg(&msg);
    }
}

#[test]
fn a_restricted_reader_sees_its_own_sources_with_its_own_figures_only() {
    let _serial = one_at_a_time();
    if !root_or_skip("logging and reading stats as another user") {
        return;
    }
    let d = Daemon::start(&["--query-mode", "0666"]);
    d.open_dir();
    log_as(&d, NOBODY, "mine", 3);
    log_as(&d, 0, "mine", 2);
    log_as(&d, 0, "roots-secret-app", 1);
    let own = |stored: u64| json!({"mine": {"stored": stored, "held": stored, "evicted": 0}});

    let theirs = stats_as(&d, NOBODY);
    assert_eq!(theirs["sources"], own(3), "{theirs}");
    assert!(!theirs.to_string().contains("roots-secret-app"), "{theirs}");
    let root = d.stats();
    assert_eq!(root["sources"]["mine"], own(5)["mine"], "{root}");
    assert_eq!(root["sources"]["roots-secret-app"]["held"], 1, "{root}");
    // The counts are still there.
    assert_eq!(theirs["inputs"], root["inputs"]);
    assert_eq!(theirs["ring"]["entries"], root["ring"]["entries"]);

    // A successor rebuilds them from the entries it adopts.
    signal(d.pid(), "USR2");
    poll(
        "the successor's entry",
        Duration::from_secs(15),
        || dump_across_exec(&d.query),
        |e| e.iter().flatten().any(|v| msg_starts(v, "re-executed")),
    );
    let theirs = stats_as(&d, NOBODY);
    assert_eq!(theirs["sources"], own(3), "{theirs}");
    assert!(!theirs.to_string().contains("roots-secret-app"), "{theirs}");
    log_as(&d, NOBODY, "mine", 1);
    assert_eq!(stats_as(&d, NOBODY)["sources"], own(4));
    let root = d.stats();
    assert_eq!(root["sources"]["mine"], own(6)["mine"], "{root}");
    assert_eq!(root["sources"]["roots-secret-app"]["held"], 1, "{root}");
}

#[test]
fn a_follower_lapped_unread_that_leaves_is_counted() {
    let _serial = one_at_a_time();
    let d = Daemon::start(&["--max-lines", "1000"]);
    let c = UnixStream::connect(&d.query).unwrap();
    (&c).write_all(b"{\"mode\":\"follow\"}\n").unwrap();
    d.wait_until("the follower", |d| d.stats()["queries"]["followers"] == 1);
    // It reads nothing while far more than the ring and the socket buffers
    // hold is written.
    const N: u64 = 30_000;
    let s = UnixDatagram::unbound().unwrap();
    s.connect(&d.log).unwrap();
    let pad = "p".repeat(200);
    for i in 0..N {
        s.send(format!("<14>Nov 21 23:40:10 lap: {i} {pad}").as_bytes())
            .unwrap();
    }
    d.wait_for_counters("syslog", |c| c["stored"] == N);
    let q = d.stats()["queries"].clone();
    assert_eq!(
        (q["lapped"].clone(), q["missed"].clone()),
        (0.into(), 0.into())
    );
    drop(c);
    d.wait_until("the follower gone", |d| {
        d.stats()["queries"]["followers"] == 0
    });
    let q = d.stats()["queries"].clone();
    let missed = q["missed"].as_u64().unwrap();
    assert_eq!(q["lapped"], 1, "{q}");
    // All but the ring's 1000 and what went out before it stopped reading.
    assert!(missed > N / 2 && missed <= N - 1000, "{q}");
}

#[test]
fn a_cursor_ahead_of_the_ring_is_told_so_and_reads_from_the_oldest() {
    let _serial = one_at_a_time();
    let d = Daemon::start(&[]);
    let held = unique("held");
    d.send(format!("<13>Nov 21 23:40:10 t: {held}").as_bytes());
    d.entry_with_msg(&held);
    let next = d.stats()["ring"]["next_seq"].as_u64().unwrap();
    let far = next + 1_000_000;

    // A follower resuming after an entry the ring never handed out.
    let c = UnixStream::connect(&d.query).unwrap();
    writeln!(&c, "{{\"mode\":\"follow\",\"after_seq\":{far}}}").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(c);
    let mut line = String::new();
    let mut next_line = || -> Value {
        line.clear();
        r.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    };
    let notice = next_line();
    assert_eq!(notice["input"], "internal", "{notice}");
    assert!(notice.get("seq").is_none(), "not a cursor: {notice}");
    let msg = notice["msg"].as_str().unwrap();
    assert!(
        msg.contains(&format!("cursor {far} is ahead of the ring")) && msg.contains("oldest"),
        "{msg}"
    );
    // Then every entry held, from the oldest, then new ones.
    assert_eq!(next_line()["msg"], "memlogd started");
    assert_eq!(next_line()["msg"], held.as_str());
    let new = unique("new");
    d.send(format!("<13>Nov 21 23:40:10 t: {new}").as_bytes());
    assert_eq!(next_line()["msg"], new.as_str());

    // logread resuming the same way gets the notice, then the entries.
    let out = d.logread(&["--after-seq", &far.to_string()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("is ahead of the ring"), "{text}");
    assert!(lines[1].contains("memlogd started"), "{text}");
    assert!(lines.last().unwrap().contains(&new), "{text}");

    // And so does a reader over HTTP, in the body before the entries.
    let request = format!("GET /logs?after_seq={far}&format=cat HTTP/1.1\r\n\r\n");
    let answer = String::from_utf8_lossy(&d.query_raw(request.as_bytes())).into_owned();
    let notice_at = answer.find("is ahead of the ring").expect(&answer);
    let first_at = answer.find("memlogd started").expect(&answer);
    assert!(notice_at < first_at && answer.contains(&new), "{answer}");
    assert_eq!(d.stats()["queries"]["cursor_ahead"], 3);
}
