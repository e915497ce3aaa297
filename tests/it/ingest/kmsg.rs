//! Kernel messages in the ring: the real /dev/kmsg (read from its oldest
//! record, and lines written into it), replayed files of saved records, and
//! a kernel log that cannot be read.
//!
//! Tests on the real device need root (CI runs as root). Without the access
//! they fail with a clear message when `CI` is set, and otherwise skip with
//! the reason printed.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::Value;

const KMSG: &str = "/dev/kmsg";
/// Room for every record a kernel may hold, so none is evicted in a test.
const BIG_RING: [&str; 4] = ["--max-lines", "200000", "--max-bytes", "256M"];

/// Whether this process may read (or write) /dev/kmsg. Under CI, which runs
/// as root, not being able to is a failure; elsewhere the test is skipped
/// with the reason printed.
fn kmsg_access(write: bool) -> bool {
    let opened = OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(KMSG);
    let e = match opened {
        Ok(_) => return true,
        Err(e) => e,
    };
    let why = format!(
        "{KMSG} cannot be opened for {} ({e}): this test needs root{}",
        if write { "writing" } else { "reading" },
        if write {
            " and kernel.printk_devkmsg not set to off"
        } else {
            ""
        }
    );
    if std::env::var_os("CI").is_some() {
        panic!("{why}; CI must run the tests as root");
    }
    skip(&why);
    false
}

/// Say why a test did nothing, past the test harness's capture of
/// `eprintln!`, so it shows in a passing run's output.
fn skip(why: &str) {
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// Write one record into the kernel's log. A fresh open per write: with the
/// default kernel.printk_devkmsg=ratelimit the kernel keeps only 10 writes
/// per open file per 5 s. The newline ends the record; without it the
/// kernel keeps the record open for a continuation and readers only see it
/// once the next record is logged.
fn write_kmsg(line: &str) {
    let mut f = OpenOptions::new()
        .write(true)
        .open(KMSG)
        .expect("open /dev/kmsg for writing");
    f.write_all(format!("{line}\n").as_bytes())
        .expect("write to /dev/kmsg");
}

/// A record's PRIO, SEQ and TEXT, read the simple way (tests only).
struct Raw {
    prio: u64,
    seq: u64,
    text: String,
}

fn raw_header(rec: &[u8]) -> Raw {
    let s = String::from_utf8_lossy(rec);
    let (head, rest) = s.split_once(';').expect("a kmsg header");
    let mut f = head.split(',');
    let prio = f.next().unwrap().parse().unwrap();
    let seq = f.next().unwrap().parse().unwrap();
    let text = rest.split('\n').next().unwrap().to_owned();
    Raw { prio, seq, text }
}

/// Every record the kernel holds now, oldest first, read from our own open
/// file of /dev/kmsg.
fn kernel_records_now() -> Vec<Raw> {
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(KMSG)
        .expect("open /dev/kmsg");
    let mut buf = vec![0u8; 16 << 10];
    let mut out = Vec::new();
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.push(raw_header(&buf[..n])),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            // Overwritten under us: the next read starts at the oldest left.
            Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => out.clear(),
            Err(e) => panic!("read /dev/kmsg: {e}"),
        }
    }
    out
}

fn kmsg_entries(entries: &[Value]) -> Vec<&Value> {
    entries.iter().filter(|e| e["input"] == "kmsg").collect()
}

fn seq_of(e: &Value) -> u64 {
    e["kmsg_seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no kmsg_seq: {e}"))
}

#[test]
fn the_ring_starts_with_the_oldest_kernel_record_ahead_of_later_entries() {
    if !kmsg_access(false) {
        return;
    }
    let before = kernel_records_now();
    let oldest = before
        .first()
        .expect("the kernel holds at least one record");
    let last_before = before.last().unwrap().seq;

    // Datagrams sent from the moment /dev/log exists, while the daemon is
    // still starting: they arrive after the start, so they belong after
    // every kernel record held at the start.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let started = Arc::new(AtomicBool::new(false));
    let sender = {
        let started = started.clone();
        std::thread::spawn(move || {
            let s = UnixDatagram::unbound().unwrap();
            s.set_nonblocking(true).unwrap();
            let mut sent = 0;
            while !started.load(Ordering::Relaxed) {
                // A full queue (net.unix.max_dgram_qlen) refuses the rest.
                if s.send_to(
                    format!("<13>Nov 21 23:40:10 early: early-{sent}").as_bytes(),
                    &log,
                )
                .is_ok()
                {
                    sent += 1;
                }
                std::thread::yield_now();
            }
            sent
        })
    };
    let d = Daemon::start_with_kmsg_in(dir, &BIG_RING);
    started.store(true, Ordering::Relaxed);
    // How many got in depends on scheduling (the start takes about a
    // millisecond); whatever did is checked below.
    let early = sender.join().unwrap();
    eprintln!("{early} datagrams sent while the daemon started");
    let after_start = unique("after-start");
    d.send(format!("<13>Nov 21 23:40:10 kmsgtest: {after_start}").as_bytes());
    let entries = d.wait_for("the datagram sent after start", |e| {
        e.iter().any(|v| v["msg"] == after_start.as_str())
    });

    assert_eq!(entries[0]["msg"], "memlogd started");
    let first_kmsg = entries
        .iter()
        .position(|e| e["input"] == "kmsg")
        .expect("kernel records in the ring");
    // Only the daemon's own notes may come between its start and the
    // kernel's first record (one says where the kernel's log starts).
    for e in &entries[1..first_kmsg] {
        assert_eq!(e["input"], "internal", "{e}");
    }
    let first = &entries[first_kmsg];
    let after = kernel_records_now();
    let oldest_now = after.first().unwrap().seq;
    // The kernel may have overwritten records between our read and the
    // daemon's; on a quiet machine the two are the same record.
    assert!(
        (oldest.seq..=oldest_now).contains(&seq_of(first)),
        "first kernel record in the ring is seq {}, the kernel held {}..",
        seq_of(first),
        oldest.seq
    );
    if seq_of(first) == oldest.seq {
        // Escaped text is compared by the parser's tests, not here.
        let plain = !oldest.text.contains('\\');
        let msg = first["msg"].as_str().unwrap();
        if oldest.prio >> 3 == 0 {
            assert_eq!(first["source"], "kernel");
            assert_eq!(first["facility"], "kern");
            assert!(!plain || msg == oldest.text, "{msg:?} vs {:?}", oldest.text);
        } else {
            // Written by user space: a `tag[pid]: ` in front is taken out.
            assert!(
                !plain || oldest.text.ends_with(msg),
                "{msg:?} vs {:?}",
                oldest.text
            );
        }
    }
    if seq_of(first) > 0 {
        let note = format!("kernel log starts at sequence number {}", seq_of(first));
        assert!(
            entries[1..first_kmsg]
                .iter()
                .any(|e| e["msg"].as_str().unwrap().starts_with(&note)),
            "no note that the kernel had dropped records before: {:#?}",
            &entries[..=first_kmsg]
        );
    }

    // Every record the kernel held at start, in order, without a gap, and
    // all of them before the datagram that was sent after the start.
    let sent_at = entries.iter().position(|e| e["input"] == "syslog").unwrap();
    let kernel = kmsg_entries(&entries);
    let seqs: Vec<u64> = kernel.iter().map(|e| seq_of(e)).collect();
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0] + 1, "kernel records out of order or lost");
    }
    assert!(
        seqs.contains(&last_before),
        "the newest record held before the start (seq {last_before}) is missing"
    );
    for (i, e) in entries.iter().enumerate() {
        if e["input"] == "kmsg" && seq_of(e) <= last_before {
            assert!(i < sent_at, "kernel record {e} after {}", entries[sent_at]);
        }
    }
    let c = d.assert_ledger_balances("kmsg");
    let held = last_before - seq_of(first) + 1;
    assert!(
        c["stored"].as_u64().unwrap() >= held,
        "{c}: {held} held at start"
    );
    assert_eq!(c["dropped"], 0, "{c}");
    assert!(d.stderr_text().is_empty(), "{}", d.stderr_text());
}

/// Poll the ring until an entry with `msg` shows up; fail after `limit`.
fn within(d: &Daemon, msg: &str, limit: Duration) -> (Value, Duration) {
    let start = Instant::now();
    loop {
        if let Some(e) = d.dump().into_iter().find(|e| e["msg"] == msg) {
            return (e, start.elapsed());
        }
        if start.elapsed() > limit {
            panic!("{msg:?} written to /dev/kmsg did not reach the ring within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn lines_written_to_dev_kmsg_arrive_within_a_second() {
    if !kmsg_access(true) {
        return;
    }
    let d = Daemon::start_with_kmsg(&BIG_RING);
    let (a, b, c) = (unique("kmsg-a"), unique("kmsg-b"), unique("kmsg-c"));
    let written = ringlogd::record::now_ns();
    write_kmsg(&format!("<11>kmsgtest[4242]: {a}"));
    let (ea, took) = within(&d, &a, Duration::from_secs(1));
    eprintln!("/dev/kmsg to the ring: {took:?}");
    write_kmsg(&format!("<30>svc: {b}"));
    // The kernel turns facility 0 written from user space into user.
    write_kmsg(&format!("<6>{c}"));
    let (eb, _) = within(&d, &b, Duration::from_secs(1));
    let (ec, _) = within(&d, &c, Duration::from_secs(1));

    assert_fields(
        &ea,
        &[
            ("input", "kmsg"),
            ("facility", "user"),
            ("severity", "err"),
            ("source", "kmsgtest"),
            ("app", "kmsgtest"),
            ("pid", "4242"),
            ("host", ringlogd::daemon::local_hostname().as_str()),
        ],
    );
    assert_eq!(
        (eb["facility"].as_str(), eb["severity"].as_str()),
        (Some("daemon"), Some("info"))
    );
    assert_eq!(eb["source"], "svc");
    assert!(eb.get("pid").is_none(), "{eb}");
    assert_eq!(
        (ec["facility"].as_str(), ec["severity"].as_str()),
        (Some("user"), Some("info"))
    );
    assert_eq!(ec["source"], "kmsg", "no tag: {ec}");
    assert!(seq_of(&ea) < seq_of(&eb) && seq_of(&eb) < seq_of(&ec));
    assert!(ea["seq"].as_u64() < eb["seq"].as_u64());

    // The kernel's boot-relative USEC, turned into wall-clock time, is when
    // the line was written.
    let ts = chrono::DateTime::parse_from_rfc3339(ea["timestamp"].as_str().unwrap()).unwrap();
    let off_ms = (ts.timestamp_nanos_opt().unwrap() - written) / 1_000_000;
    assert!(
        off_ms.abs() < 2000,
        "timestamp {ts} is {off_ms} ms from the write"
    );
    assert!(ea["kmsg_usec"].as_u64().unwrap() > 0);

    // And logread shows them as memlogd's text lines.
    let out = d.logread(&[]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().any(|l| l.ends_with(&format!(";kmsgtest;{a}"))),
        "{text}"
    );
    d.assert_ledger_balances("kmsg");
}

/// Start a daemon replaying `content` as a saved kernel log, and wait for
/// the entry that says the replay is over. The directory holds the file.
fn replay(content: &[u8], args: &[&str]) -> (Daemon, Vec<Value>, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("saved-kmsg");
    std::fs::write(&path, content).unwrap();
    let mut all = vec!["--kmsg", path.to_str().unwrap()];
    all.extend_from_slice(args);
    let d = Daemon::start_with_kmsg(&all);
    let entries = d.wait_for("the end of the replay", |e| {
        e.iter()
            .any(|v| v["msg"].as_str().unwrap().starts_with("replayed "))
    });
    (d, entries, dir, path.display().to_string())
}

#[test]
fn a_replayed_file_with_continuations_escapes_a_fragment_and_every_priority() {
    let mut file = Vec::new();
    file.extend_from_slice(
        b"6,0,100,-;pci 0000:00:01.0: bridge window\n SUBSYSTEM=pci\n DEVICE=+pci:0000:00:01.0\n",
    );
    file.extend_from_slice(b"6,1,200,-;back\\x5cslash caf\\xc3\\xa9 bad\\xff\\xfe end\n");
    file.extend_from_slice(b"4,2,300,c;first half of a line\n");
    file.extend_from_slice(b"4,3,301,-;second half\n");
    file.extend_from_slice(b"30,4,400,-;systemd[1]: Started Journal Service.\n");
    for prio in 0..192u64 {
        file.extend_from_slice(
            format!("{prio},{},{},-;prio {prio}\n", 5 + prio, 500 + prio).as_bytes(),
        );
    }
    // 5 + 192 = 197 is the next number: 197, 198 and 199 are missing.
    file.extend_from_slice(b"\n6,200,900,-;after the gap\n");
    file.extend_from_slice(b"this is not a kmsg record\n");
    file.extend_from_slice(b"6,201,901,-;the last one");
    let (d, entries, _dir, path) = replay(&file, &[]);

    let msgs: Vec<&str> = entries.iter().map(|e| e["msg"].as_str().unwrap()).collect();
    assert_eq!(msgs[0], "memlogd started");
    assert_eq!(msgs[1], "pci 0000:00:01.0: bridge window");
    assert_eq!(msgs[2], "back\\slash café bad\\xff\\xfe end");
    assert_eq!(msgs[3], "first half of a line");
    assert_eq!(msgs[4], "second half");
    assert_eq!(msgs[5], "Started Journal Service.");
    for prio in 0..192usize {
        assert_eq!(msgs[6 + prio], format!("prio {prio}"));
    }
    let gap =
        format!("3 kernel messages were lost (sequence numbers 197 to 199): missing from {path}");
    assert_eq!(
        &msgs[198..],
        [
            gap.as_str(),
            "after the gap",
            "this is not a kmsg record",
            "the last one",
            &format!("replayed 200 kernel records from {path}"),
        ]
    );

    let e = &entries[1];
    assert_eq!(e["source"], "kernel");
    assert_eq!(e["sd"]["kmsg"]["SUBSYSTEM"], "pci");
    assert_eq!(e["sd"]["kmsg"]["DEVICE"], "+pci:0000:00:01.0");
    assert_eq!(
        (e["kmsg_seq"].as_u64(), e["kmsg_usec"].as_u64()),
        (Some(0), Some(100))
    );
    assert!(
        e.get("timestamp").is_none(),
        "a saved file's USEC may be from another boot: {e}"
    );
    assert_eq!(entries[3]["kmsg_fragment"], true);
    assert!(entries[4].get("kmsg_fragment").is_none());
    assert_eq!(entries[3]["severity"], "warning");
    let sd = &entries[5];
    assert_eq!(
        (sd["source"].as_str(), sd["pid"].as_str()),
        (Some("systemd"), Some("1"))
    );
    assert_eq!(
        (sd["facility"].as_str(), sd["severity"].as_str()),
        (Some("daemon"), Some("info"))
    );

    const FACILITIES: [&str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2",
        "local3", "local4", "local5", "local6", "local7",
    ];
    const SEVERITIES: [&str; 8] = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ];
    for prio in 0..192usize {
        let e = &entries[6 + prio];
        assert_eq!(e["facility"], FACILITIES[prio / 8], "{e}");
        assert_eq!(e["severity"], SEVERITIES[prio % 8], "{e}");
        let source = if prio < 8 { "kernel" } else { "kmsg" };
        assert_eq!(e["source"], source, "{e}");
    }

    let lost = &entries[198];
    assert_eq!(
        (lost["input"].as_str(), lost["severity"].as_str()),
        (Some("internal"), Some("warning"))
    );
    let bad = &entries[200];
    assert_eq!(bad["input"], "kmsg");
    assert!(bad.get("kmsg_seq").is_none(), "{bad}");

    // The gap counts as dropped.
    d.assert_ledger(
        "kmsg",
        &[
            ("stored", 200),
            ("dropped", 3),
            ("received", 203),
            ("malformed", 1),
        ],
    );
    assert!(d.stderr_text().is_empty(), "{}", d.stderr_text());
}

#[test]
fn replayed_text_is_cut_at_max_line_len() {
    let (d, entries, _dir, _) = replay(
        "6,0,1,-;caf\\xc3\\xa9 au lait\n6,1,2,-;ok\n".as_bytes(),
        &["--max-line-len", "4"],
    );
    assert_eq!(entries[1]["msg"], "caf", "cut before the two-byte é");
    assert_eq!(entries[1]["truncated"], true);
    assert!(entries[2].get("truncated").is_none());
    d.assert_ledger("kmsg", &[("truncated", 1)]);
}

#[test]
fn a_missing_kernel_log_is_a_warning_and_syslog_goes_on() {
    for (path, why) in [
        ("/nonexistent/kmsg", "No such file or directory"),
        ("/", "neither a character device nor a regular file"),
    ] {
        let d = Daemon::start_with_kmsg(&["--kmsg", path]);
        let msg = unique("still-serving");
        d.send(format!("<13>Nov 21 23:40:10 t: {msg}").as_bytes());
        let entries = d.wait_for("the datagram", |e| {
            e.iter().any(|v| v["msg"] == msg.as_str())
        });
        let warning = entries
            .iter()
            .find(|e| {
                e["msg"]
                    .as_str()
                    .unwrap()
                    .contains("kernel messages will not be collected")
            })
            .unwrap_or_else(|| panic!("no warning in {entries:#?}"));
        assert_eq!(warning["input"], "internal");
        assert_eq!(warning["severity"], "warning");
        let text = warning["msg"].as_str().unwrap();
        assert!(
            text.starts_with(&format!("{path}: ")) && text.contains(why),
            "{text}"
        );
        let err = d.stderr_text();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("ringlogd: warning: ") && err.contains(path),
            "{err}"
        );
        assert!(d.stats()["inputs"].get("kmsg").is_none());
    }
}

#[test]
fn a_device_that_is_not_a_kernel_log_is_a_warning() {
    // Some container runtimes bind /dev/null over /dev/kmsg. It has no
    // poll, so it is refused before any read.
    let d = Daemon::start_with_kmsg(&["--kmsg", "/dev/null"]);
    let entries = d.wait_for("the entry about /dev/null", |e| e.len() >= 2);
    assert_eq!(
        entries[1]["msg"],
        "/dev/null: not a kernel log device: it cannot be polled (Operation not permitted (os error 1)); kernel messages will not be collected"
    );
    assert_eq!(entries[1]["severity"], "warning");
    let msg = unique("still-serving");
    d.send(format!("<13>Nov 21 23:40:10 t: {msg}").as_bytes());
    d.entry_with_msg(&msg);
    assert!(
        d.stderr_text()
            .starts_with("ringlogd: warning: /dev/null: not a kernel log device"),
        "{}",
        d.stderr_text()
    );
}

/// The default run as a user who may not read the kernel's log (as the
/// README's run command is for most): a warning, and the daemon serves.
#[test]
fn an_unprivileged_daemon_warns_when_it_cannot_read_dev_kmsg() {
    let restricted = std::fs::read_to_string("/proc/sys/kernel/dmesg_restrict")
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    let root = nix::unistd::getuid().is_root();
    if !restricted {
        skip(&format!(
            "kernel.dmesg_restrict is 0, so every user may read {KMSG}"
        ));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(if root {
        require("setpriv")
    } else {
        RINGLOGD.into()
    });
    if root {
        // nobody must be able to create its sockets in the directory.
        nix::unistd::chown(dir.path(), Some(65534.into()), Some(65534.into())).unwrap();
        cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(RINGLOGD);
    }
    let mut child = cmd
        .arg("--runtime-dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let query = dir.path().join("memlogdq.sock");
    assert!(wait_socket(&query), "the daemon did not serve");
    let mut c = std::os::unix::net::UnixStream::connect(&query).unwrap();
    c.write_all(&[0]).unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    let entries = parse_lines(&out);
    signal(child.id(), "TERM");
    assert!(wait_timeout(&mut child, Duration::from_secs(10)).success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();

    assert!(kmsg_entries(&entries).is_empty(), "{entries:#?}");
    let w = &entries[1];
    let text = w["msg"].as_str().unwrap();
    assert!(
        text.starts_with("/dev/kmsg: ") && text.contains("dmesg_restrict"),
        "{text}"
    );
    assert_eq!(w["severity"], "warning");
    assert!(err.contains("warning: /dev/kmsg"), "{err}");
}

#[test]
fn no_kmsg_means_no_kernel_entries() {
    // With the device readable, --no-kmsg (what Daemon::start passes) is
    // what keeps kernel records out.
    let d = Daemon::start(&[]);
    let e = d.dump();
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(d.stats()["inputs"].get("kmsg").is_none());
}
