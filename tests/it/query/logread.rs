//! logread as people who come from busybox, OpenWrt and journalctl use it:
//! `-n N` with `-f`/`-F`, OpenWrt's `-l`, `-e`, `-z`, `-Z`, a socket given
//! to `-s` by mistake, journalctl's times, a socket this user may not use,
//! and a follower that outlives the daemon's re-exec and restart. Each runs
//! the real logread against the real daemon.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::Value;

/// A uid no account uses, for a reader the socket's mode leaves out.
const STRANGER: u32 = 65534;

/// Send `msg` from app `app` (user.notice).
fn say(d: &Daemon, app: &str, msg: &str) {
    d.send(format!("<13>Nov 21 23:40:10 {app}: {msg}").as_bytes());
}

fn stdout_lines(out: &Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "logread failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A `logread` left running, its stdout read line by line.
struct Follower {
    child: Child,
    lines: Receiver<String>,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Follower {
    fn start(d: &Daemon, args: &[&str]) -> Follower {
        Follower::start_at(&d.query, args)
    }

    fn start_at(socket: &Path, args: &[&str]) -> Follower {
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("stderr");
        let mut child = Command::new(LOGREAD)
            .arg("--socket")
            .arg(socket)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("run logread");
        let (tx, lines) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Follower {
            child,
            lines,
            stderr,
            _dir: dir,
        }
    }

    /// The next line, waiting up to 20 s.
    fn next(&self, what: &str) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                panic!(
                    "no line from logread for {what}; stderr: {}",
                    self.stderr_text()
                )
            })
    }

    /// The lines that `keep` selects, until there are `n` of them.
    fn collect(&self, n: usize, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let mut got = Vec::new();
        while got.len() < n {
            let line = self.next(&format!("line {} of {n} (got {got:?})", got.len() + 1));
            if keep(&line) {
                got.push(line);
            }
        }
        got
    }

    /// Lines that arrive within `wait` (none expected, usually).
    fn more_within(&self, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut more = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => more.push(l),
                Err(_) => break,
            }
        }
        more
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn still_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- -n with -f and -F -----------------------------------------------------

#[test]
fn n_with_f_or_big_f_prints_the_newest_n_then_follows() {
    let d = Daemon::start(&[]);
    let mut held: Vec<String> = (1..=5).map(|i| format!("old {i}")).collect();
    for msg in &held {
        say(&d, "tail", msg);
    }
    d.entry_with_msg("old 5");
    for args in [
        &["-n", "2", "-f"][..],
        &["-n", "2", "-F"],
        &["-l", "2", "-f"],
        &["-f", "-n", "2", "-t", "tail"],
    ] {
        let mut all = vec!["-o", "cat"];
        all.extend_from_slice(args);
        let f = Follower::start(&d, &all);
        assert_eq!(
            f.collect(2, |_| true),
            held[held.len() - 2..],
            "logread {args:?}"
        );
        let new = unique("new");
        say(&d, "tail", &new);
        assert_eq!(f.next("the new entry"), new, "logread {args:?}");
        held.push(new);
    }
}

#[test]
fn f_alone_prints_only_new_entries_as_memlogd_and_busybox_do() {
    let d = Daemon::start(&[]);
    say(&d, "app", "held before");
    d.entry_with_msg("held before");
    let f = Follower::start(&d, &["-f", "-o", "cat"]);
    // Give logread time to connect: what is held must not come.
    std::thread::sleep(Duration::from_millis(300));
    say(&d, "app", "arrived after");
    assert_eq!(f.next("the new entry"), "arrived after");
    assert!(f.more_within(Duration::from_millis(200)).is_empty());
}

// ---- OpenWrt's letters ------------------------------------------------------

#[test]
fn openwrt_l_e_z_and_big_z_filter_as_on_openwrt() {
    let d = Daemon::start(&[]);
    // <PRI> = facility * 8 + severity (6, info).
    for (facility, code) in [("daemon", 3), ("auth", 4), ("authpriv", 10), ("local0", 16)] {
        let pri = code * 8 + 6;
        d.send(format!("<{pri}>Nov 21 23:40:10 fac: from {facility}").as_bytes());
    }
    let mut w = d.pass_socketpair("svc");
    std::io::Write::write_all(&mut w, b"from an fd\n").unwrap();
    d.entry_with_msg("from an fd");
    d.entry_with_msg("from local0");
    let cat = |args: &[&str]| {
        let mut all = vec!["-o", "cat"];
        all.extend_from_slice(args);
        stdout_lines(&d.logread(&all))
    };
    assert_eq!(cat(&["-z", "daemon"]), ["from daemon"]);
    assert_eq!(cat(&["-z", "4"]), ["from auth"]);
    assert_eq!(
        cat(&["-z", "authpriv", "-z", "16"]),
        ["from authpriv", "from local0"]
    );
    assert_eq!(
        cat(&["-t", "fac", "-Z", "daemon", "-Z", "auth"]),
        ["from authpriv", "from local0"]
    );
    let without_auth = cat(&["-Z", "4", "-Z", "10"]);
    assert!(
        without_auth.contains(&"from an fd".to_owned()),
        "an entry without a facility passes -Z: {without_auth:?}"
    );
    assert!(!without_auth.iter().any(|l| l.contains("auth")));
    assert_eq!(
        cat(&["-e", "auth|local"]),
        ["from auth", "from authpriv", "from local0"]
    );
    assert_eq!(cat(&["-l", "2"]), ["from local0", "from an fd"]);
    assert_eq!(cat(&["-l", "1", "-e", "^from auth"]), ["from authpriv"]);

    for bad in ["24", "nope"] {
        let out = d.logread(&["-z", bad]);
        assert_eq!(out.status.code(), Some(1), "-z {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("logread: the daemon refused the request: facility: ")
                && err.contains("is not a facility"),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn s_naming_a_socket_is_an_error_that_points_to_socket() {
    let d = Daemon::start(&[]);
    say(&d, "app", "held");
    d.entry_with_msg("held");
    let query = d.query.to_str().unwrap().to_owned();
    for args in [
        vec!["-s", &query],
        vec!["-s", d.dir.path().to_str().unwrap()],
    ] {
        let out = d.logread(&args);
        assert_eq!(out.status.code(), Some(2), "logread {args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("did you mean --socket {}?", args[1])),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
    // A glob that names no file is a glob.
    assert_eq!(
        stdout_lines(&d.logread(&["-s", "ap?", "-o", "cat"])),
        ["held"]
    );
}

// ---- journalctl's times ------------------------------------------------------

#[test]
fn since_and_until_take_journalctl_times() {
    let d = Daemon::start(&[]);
    let msg = unique("timed");
    say(&d, "when", &msg);
    d.entry_with_msg(&msg);
    let matches = |since: &str, until: &str| {
        let out = d.logread(&[
            "-t", "when", "-o", "cat", "--since", since, "--until", until,
        ]);
        let lines = stdout_lines(&out);
        assert!(lines.len() <= 1, "{lines:?}");
        lines.len() == 1
    };
    for since in [
        "yesterday",
        "today",
        "1 hour ago",
        "10 min ago",
        "2 days ago",
        "-1h",
        "-30m",
        "1h 30min ago",
        "epoch",
    ] {
        assert!(matches(since, "now"), "--since {since:?} --until now");
        assert!(matches(since, "+5min"), "--since {since:?} --until +5min");
        assert!(
            matches(since, "tomorrow"),
            "--since {since:?} --until tomorrow"
        );
    }
    assert!(
        !matches("now", "tomorrow"),
        "--since now: nothing newer yet"
    );
    assert!(!matches("yesterday", "2 hours ago"));
    assert!(!matches("+1h", "tomorrow"));

    for bad in ["last tuesday", "1 fortnight ago", "soon"] {
        let out = d.logread(&["--since", bad]);
        assert_eq!(out.status.code(), Some(1), "--since {bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with(&format!(
                "logread: the daemon refused the request: {bad:?} is not a time: use "
            )) && err.contains("ago"),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
}

// ---- a reader the socket refuses -----------------------------------------------

/// `logread` run as a user the query socket does not admit (the daemon's
/// directory opened to all, so that only the socket refuses): it exits 1.
fn logread_refused(d: &Daemon) -> Output {
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = as_user(STRANGER, STRANGER)
        .arg(LOGREAD)
        .arg("--socket")
        .arg(&d.query)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    out
}

#[test]
fn a_reader_the_socket_refuses_is_told_why_and_what_to_do() {
    if !root_or_skip("reading as another user") {
        return;
    }
    let d = Daemon::start(&[]);
    let out = logread_refused(&d);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        format!(
            "logread: cannot connect to {}: permission denied: the query socket is root-only \
             (mode 0600); run as root or start ringlogd with --query-group GROUP",
            d.query.display()
        )
    );
    assert!(out.stdout.is_empty());
    drop(d);

    // Given to a group this user is not in: that group is named.
    let d = Daemon::start(&["--query-group", "4242"]);
    let out = logread_refused(&d);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the query socket is for root and group gid 4242 (mode 0660); run as root or as a member of gid 4242"),
        "{err}"
    );
}

// ---- a follower across re-exec and restart ------------------------------------

/// The numbered messages a test sends, and reading them back.
fn numbered(i: u32) -> String {
    format!("num {i:05}")
}

fn is_numbered(line: &str) -> bool {
    line.starts_with("num ")
}

/// Once every numbered line is in: no numbered line comes again and the
/// follower runs on. What it said on stderr.
fn assert_nothing_more_and_running(f: &mut Follower) -> String {
    assert!(f
        .more_within(Duration::from_millis(300))
        .iter()
        .all(|l| !is_numbered(l)));
    assert!(f.still_running(), "the follower ended: {}", f.stderr_text());
    f.stderr_text()
}

/// The seq a follower's "reconnected" line says it resumed after.
fn resumed_after(line: &str) -> Option<u64> {
    line.strip_prefix("logread: reconnected after ")
        .and_then(|rest| rest.split_once(" s, resuming after seq "))
        .and_then(|(_, seq)| seq.parse().ok())
}

fn expect_one_to(n: u32, got: &[String]) {
    let want: Vec<String> = (1..=n).map(numbered).collect();
    assert_eq!(got, want, "every message once, in order");
}

#[test]
fn a_follower_goes_on_across_reexecs_losing_and_repeating_nothing() {
    const N: u32 = 600;
    let d = Daemon::start(&[]);
    let mut plain = Follower::start(&d, &["-F", "-o", "cat"]);
    let mut filtered = Follower::start(&d, &["-f", "-t", "num", "-o", "cat"]);
    std::thread::sleep(Duration::from_millis(300));
    for i in 1..=100 {
        say(&d, "num", &numbered(i));
    }
    // Both have the first hundred before the daemon re-executes.
    let mut got_plain = plain.collect(100, is_numbered);
    let mut got_filtered = filtered.collect(100, is_numbered);
    let log = d.log.clone();
    let sender = std::thread::spawn(move || {
        let s = std::os::unix::net::UnixDatagram::unbound().unwrap();
        for i in 101..=N {
            let msg = format!("<13>Nov 21 23:40:10 num: {}", numbered(i));
            s.send_to(msg.as_bytes(), &log).unwrap();
            std::thread::sleep(Duration::from_micros(500));
        }
    });
    // Two re-execs while messages arrive.
    for expected_serving in 1..=2 {
        std::thread::sleep(Duration::from_millis(60));
        signal(d.pid(), "USR2");
        d.wait_for("the successor", |e| {
            e.iter()
                .filter(|v| v["msg"].as_str().unwrap_or("").starts_with("re-executed"))
                .count()
                >= expected_serving
        });
    }
    sender.join().unwrap();
    got_plain.extend(plain.collect((N - 100) as usize, is_numbered));
    got_filtered.extend(filtered.collect((N - 100) as usize, is_numbered));
    expect_one_to(N, &got_plain);
    expect_one_to(N, &got_filtered);
    for f in [&mut plain, &mut filtered] {
        let err = assert_nothing_more_and_running(f);
        let said: Vec<&str> = err.lines().collect();
        assert_eq!(said.len(), 2, "one line per re-exec: {err}");
        for line in said {
            assert!(resumed_after(line).is_some(), "{err}");
        }
    }
}

#[test]
fn a_follower_goes_on_across_a_stop_and_a_start_from_the_snapshot() {
    const N: u32 = 200;
    let keep = tempfile::tempdir().unwrap();
    let snap = keep.path().join("ring.snapshot");
    let args = ["--snapshot", snap.to_str().unwrap()];
    let d = Daemon::start(&args);
    let mut f = Follower::start(&d, &["-f", "-o", "cat"]);
    std::thread::sleep(Duration::from_millis(300));
    for i in 1..=N / 2 {
        say(&d, "num", &numbered(i));
    }
    let mut got = f.collect((N / 2) as usize, is_numbered);
    let last_before = d.entry_with_msg(&numbered(N / 2))["seq"].as_u64().unwrap();
    let d = d.restart(&args);
    for i in N / 2 + 1..=N {
        say(&d, "num", &numbered(i));
    }
    got.extend(f.collect((N / 2) as usize, is_numbered));
    expect_one_to(N, &got);
    let err = assert_nothing_more_and_running(&mut f);
    assert_eq!(err.lines().count(), 1, "{err}");
    let resumed = resumed_after(err.trim_end()).unwrap_or_else(|| panic!("{err}"));
    assert!(
        resumed >= last_before,
        "resumed after {resumed}, the last message was {last_before}"
    );
}

#[test]
fn a_follower_reads_a_ring_numbered_anew_from_its_start() {
    // Without --snapshot a restart begins the numbers at 0 again: resuming
    // after the old number would skip every new entry below it.
    const OLD: u32 = 50;
    let d = Daemon::start(&[]);
    let f = Follower::start(&d, &["-f", "-t", "num", "-o", "cat"]);
    std::thread::sleep(Duration::from_millis(300));
    for i in 1..=OLD {
        say(&d, "num", &numbered(i));
    }
    let mut got = f.collect(OLD as usize, is_numbered);
    let d = d.restart(&[]);
    for i in OLD + 1..=OLD + 3 {
        say(&d, "num", &numbered(i));
    }
    got.extend(f.collect(3, is_numbered));
    expect_one_to(OLD + 3, &got);
    let err = f.stderr_text();
    assert!(
        err.contains("the daemon's ring was numbered anew")
            && err.contains("reading the new ring from its oldest entry"),
        "{err}"
    );
}

#[test]
fn a_follower_is_told_how_many_entries_the_ring_overwrote_while_it_was_away() {
    let d = Daemon::start(&["--max-lines", "100"]);
    let f = Follower::start(&d, &["-f", "--json"]);
    std::thread::sleep(Duration::from_millis(300));
    say(&d, "num", &numbered(1));
    let first: Value = serde_json::from_str(&f.next("the first entry")).unwrap();
    assert_eq!(first["msg"], numbered(1));
    // Hold the follower still, re-execute the daemon under it, and write
    // more than the ring holds before it reads again.
    signal(f.child.id(), "STOP");
    signal(d.pid(), "USR2");
    d.wait_for("the successor", |e| {
        e.iter()
            .any(|v| v["msg"].as_str().unwrap_or("").starts_with("re-executed"))
    });
    for i in 2..=1000 {
        say(&d, "num", &numbered(i));
    }
    d.entry_with_msg(&numbered(1000));
    signal(f.child.id(), "CONT");
    let mut seqs = vec![first["seq"].as_u64().unwrap()];
    let mut missed = 0;
    loop {
        let v: Value = serde_json::from_str(&f.next("the rest")).unwrap();
        if is_eviction_note(&v) {
            continue;
        }
        if let Some(m) = v["missed"].as_u64() {
            missed += m;
            continue;
        }
        seqs.push(v["seq"].as_u64().unwrap());
        if v["msg"] == numbered(1000) {
            break;
        }
    }
    assert!(missed > 0, "the ring lapped the follower");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in order, once: {seqs:?}"
    );
    let span = seqs.last().unwrap() - seqs[0] + 1;
    assert_eq!(
        seqs.len() as u64 + missed,
        span,
        "printed plus missed is every entry in between"
    );
    assert!(f.stderr_text().contains("reconnected after"));
}

#[test]
fn a_follower_gives_up_when_the_daemon_stays_gone_for_the_timeout() {
    let d = Daemon::start(&[]);
    let mut f = Follower::start(&d, &["-f", "-o", "cat", "--reconnect-timeout", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    say(&d, "app", "seen");
    assert_eq!(f.next("the entry"), "seen");
    let gone = Instant::now();
    assert!(d.stop().success());
    let status = wait_timeout(&mut f.child, Duration::from_secs(20));
    let waited = gone.elapsed();
    assert_eq!(status.code(), Some(1));
    assert!(waited >= Duration::from_secs(1), "gave up after {waited:?}");
    let err = f.stderr_text();
    assert!(
        err.contains("the daemon has been gone for ") && err.contains("--reconnect-timeout 1"),
        "{err}"
    );
}

// ---- embedded newlines ------------------------------------------------------------

#[test]
fn a_followed_message_with_newlines_stays_one_record_in_every_format() {
    let d = Daemon::start(&[]);
    let followers: Vec<(&str, Follower)> =
        ["memlogd", "short", "short-iso", "cat", "json", "rfc5424"]
            .into_iter()
            .map(|format| (format, Follower::start(&d, &["-f", "-o", format])))
            .collect();
    std::thread::sleep(Duration::from_millis(300));
    say(&d, "multi", "first line\nsecond line\n\nfourth");
    say(&d, "multi", "next entry");
    for (format, f) in &followers {
        let lines = match *format {
            "json" | "rfc5424" => f.collect(2, |_| true),
            _ => f.collect(5, |_| true),
        };
        let at_column_0: Vec<&String> = lines
            .iter()
            .filter(|l| !l.starts_with(' ') && !l.is_empty())
            .collect();
        assert_eq!(
            at_column_0.len(),
            2,
            "-o {format}: one line per entry at column 0: {lines:?}"
        );
        match *format {
            "json" => {
                let v: Value = serde_json::from_str(&lines[0]).unwrap();
                assert_eq!(
                    v["msg"], "first line\nsecond line\n\nfourth",
                    "json is unchanged"
                );
            }
            "rfc5424" => assert!(lines[0].ends_with(r"first line\nsecond line\n\nfourth")),
            "cat" => assert_eq!(
                lines[..4],
                ["first line", "  second line", "  ", "  fourth"],
                "cat indents by two spaces"
            ),
            _ => assert!(lines[1].trim_start() == "second line" && lines[1].starts_with(' ')),
        }
    }
}

#[test]
fn an_entry_cut_off_by_the_connection_ending_comes_once_and_whole_on_resuming() {
    // A stand-in for the daemon, to end the connection mid-entry exactly.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("q.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let accept = || accept_client(&listener);
    let f = Follower::start_at(&socket, &["-F", "-o", "cat"]);
    let entry = |seq: u64, msg: &str| {
        format!("{{\"time\":\"2026-11-21T23:40:10Z\",\"source\":\"a\",\"msg\":\"{msg}\",\"seq\":{seq}}}\n")
    };
    let mut first = accept();
    let mut mode = [0u8; 1];
    first.read_exact(&mut mode).unwrap();
    assert_eq!(mode, [2], "-F alone is memlogd's dump-and-follow byte");
    let whole = entry(7, "one");
    let cut = entry(8, "two");
    first
        .write_all(format!("{whole}{}", &cut[..cut.len() / 2]).as_bytes())
        .unwrap();
    drop(first);
    // First it asks where the ring's numbers are (a ring that restarted
    // empty would be read from its start), then resumes.
    let read_request = || {
        let conn = accept();
        let mut line = String::new();
        BufReader::new(&conn).read_line(&mut line).unwrap();
        (conn, serde_json::from_str::<Value>(&line).unwrap())
    };
    let (mut stats, request) = read_request();
    assert_eq!(request["mode"], "stats", "{request}");
    stats.write_all(b"{\"ring\":{\"next_seq\":9}}\n").unwrap();
    drop(stats);
    let (second, request) = read_request();
    assert_eq!(request["mode"], "dump+follow", "{request}");
    assert_eq!(request["after_seq"], 7, "{request}");
    (&second).write_all(cut.as_bytes()).unwrap();
    assert_eq!(f.collect(2, |_| true), ["one", "two"]);
    assert!(f.more_within(Duration::from_millis(200)).is_empty());
    assert!(
        f.stderr_text().contains("resuming after seq 7"),
        "{}",
        f.stderr_text()
    );
}
