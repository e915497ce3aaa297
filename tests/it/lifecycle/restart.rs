//! Surviving restarts: re-exec (SIGUSR2 and `ringlogd --reexec`), the
//! systemd fd store (this test plays systemd's side: it receives the fds on
//! NOTIFY_SOCKET and starts the daemon again with them), and `--snapshot`.
//!
//! What a user checks each time: the entries held before are there after,
//! with the same sequence numbers (a cursor kept from before still reads
//! on), the counters go on, the sockets answer, and an fd being logged
//! loses no line and duplicates none.

use std::collections::HashMap;
use std::io::{IoSliceMut, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::Value;

/// Where a snapshot file keeps its format version: a little-endian u32
/// right after the 8-byte magic. Must match the ring's snapshot format.
const SNAPSHOT_VERSION_AT: usize = 8;

/// (seq, input, source, msg) of every entry, to compare rings.
fn keyed(entries: &[Value]) -> Vec<(u64, String, String, String)> {
    entries
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["input"].as_str().unwrap_or_default().to_owned(),
                e["source"].as_str().unwrap_or_default().to_owned(),
                e["msg"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Every counter of every input but `internal` (the daemon's own entries
/// about the restart add to that one).
fn counters(stats: &Value) -> Value {
    let mut inputs = stats["inputs"].clone();
    inputs.as_object_mut().unwrap().remove("internal");
    inputs
}

/// Send SIGUSR2 and wait for the successor's entry (the `count_before + 1`th
/// of them); the pid it names is returned.
fn reexec_by_signal(d: &Daemon, count_before: usize) -> u64 {
    signal(d.pid(), "USR2");
    let deadline = Instant::now() + Duration::from_secs(10);
    let entries = loop {
        if let Some(e) = dump_across_exec(&d.query) {
            let done = e.iter().filter(|v| msg_starts(v, "re-executed")).count() > count_before;
            let failed: Vec<_> = e
                .iter()
                .filter(|v| msg_starts(v, "cannot re-execute"))
                .collect();
            assert!(failed.is_empty(), "re-exec failed: {failed:?}");
            if done {
                break e;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no re-executed entry within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let msg = entries
        .iter()
        .rev()
        .find(|v| msg_starts(v, "re-executed"))
        .unwrap()["msg"]
        .as_str()
        .unwrap()
        .to_owned();
    // "re-executed (pid N): serving"
    msg.split("pid ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {msg:?}"))
}

#[test]
fn sigusr2_keeps_entries_sequence_numbers_counters_pid_and_sockets() {
    let d = Daemon::start(&[]);
    for i in 0..20 {
        d.send(format!("<13>Nov 21 23:40:10 before: message {i}").as_bytes());
    }
    let before = d.wait_for("20 messages", |e| {
        e.iter().filter(|v| v["app"] == "before").count() == 20
    });
    let stats_before = d.stats();
    let last_seq = before.last().unwrap()["seq"].as_u64().unwrap();

    let pid = reexec_by_signal(&d, 0);
    assert_eq!(pid, u64::from(d.pid()), "exec keeps the pid");
    assert!(is_running(d.pid()));

    let after = d.dump();
    assert_eq!(
        keyed(&after[..before.len()]),
        keyed(&before),
        "the same entries under the same sequence numbers"
    );
    assert_eq!(counters(&d.stats()), counters(&stats_before));

    // /dev/log still works, and a cursor from before reads on from there.
    d.send(b"<13>Nov 21 23:40:11 after: new one");
    d.entry_with_msg("new one");
    let out = d.logread(&["--after-seq", &last_seq.to_string(), "-o", "json"]);
    let newer = parse_lines(&out.stdout);
    assert!(newer.iter().all(|e| e["seq"].as_u64().unwrap() > last_seq));
    assert!(newer.iter().any(|e| e["msg"] == "new one"), "{newer:?}");
    assert!(!newer.iter().any(|e| e["app"] == "before"), "{newer:?}");
    let c = &d.stats()["inputs"]["syslog"];
    assert_eq!(
        c["stored"].as_u64().unwrap(),
        stats_before["inputs"]["syslog"]["stored"].as_u64().unwrap() + 1
    );
    d.assert_still_serves();
}

#[test]
fn the_reexec_command_returns_once_the_new_program_serves() {
    let pids = tempfile::tempdir().unwrap();
    let pidfile = pids.path().join("ringlogd.pid");
    let d = Daemon::start(&["--pidfile", pidfile.to_str().unwrap()]);
    d.send(b"<13>Nov 21 23:40:10 kept: before the upgrade");
    d.entry_with_msg("before the upgrade");
    let seq = d.entry_with_msg("before the upgrade")["seq"].clone();

    let out = Command::new(RINGLOGD)
        .arg("--runtime-dir")
        .arg(d.dir.path())
        .args([
            "--no-kmsg",
            "--pidfile",
            pidfile.to_str().unwrap(),
            "--reexec",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_success(&out, &format!("--reexec: {stdout}"));
    assert!(stdout.contains("re-executed"), "{stdout}");
    // Serving the moment it returns: no waiting here.
    let entries = d.dump();
    let kept = entries
        .iter()
        .find(|e| e["msg"] == "before the upgrade")
        .expect("the entry is still there");
    assert_eq!(kept["seq"], seq);
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        d.pid().to_string()
    );
    d.assert_still_serves();
}

#[test]
fn the_reexec_command_fails_clearly_without_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(RINGLOGD)
        .arg("--runtime-dir")
        .arg(dir.path())
        .args(["--no-kmsg", "--reexec"])
        .env_remove("MAINPID")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--reexec needs --pidfile"), "{err}");

    let pidfile = dir.path().join("pid");
    std::fs::write(&pidfile, "not a pid\n").unwrap();
    let out = Command::new(RINGLOGD)
        .arg("--runtime-dir")
        .arg(dir.path())
        .args([
            "--no-kmsg",
            "--reexec",
            "--pidfile",
            pidfile.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds no pid"), "{err}");
}

#[test]
fn a_failed_exec_is_an_err_entry_and_the_daemon_runs_on() {
    // A copy of the program that is gone by the time SIGUSR2 comes.
    let d = CopiedDaemon::start();
    let (pid, copy) = (d.child.id(), d.exe());
    std::fs::remove_file(&copy).unwrap();
    signal(pid, "USR2");
    let q = QueryAt(d.query());
    let entries = q.wait_for("the failure entry", |e| {
        e.iter().any(|v| msg_starts(v, "cannot re-execute"))
    });
    let e = entries
        .iter()
        .find(|v| msg_starts(v, "cannot re-execute"))
        .unwrap();
    assert_eq!(e["severity"], "err");
    let msg = e["msg"].as_str().unwrap();
    assert!(
        msg.contains(copy.to_str().unwrap()) && msg.ends_with("; running on"),
        "{msg}"
    );
    assert!(is_running(pid));
    assert_eq!(entries[0]["msg"], "memlogd started", "the ring is intact");
}

/// A query socket that is not a [`Daemon`]'s.
struct QueryAt(PathBuf);

impl QueryAt {
    fn dump(&self) -> Vec<Value> {
        let mut c = UnixStream::connect(&self.0).unwrap();
        c.write_all(&[0]).unwrap();
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut c, &mut out).unwrap();
        parse_lines(&out)
    }

    fn wait_for(&self, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        poll(what, Duration::from_secs(10), || self.dump(), |e| pred(e))
    }
}

/// Write numbered lines to `w` until told to stop, each in two writes
/// (so some are cut between reads, and between processes), and return how
/// many were written.
fn writer(mut w: UnixStream) -> Background<usize> {
    Background::spawn(move |stop| {
        let mut n = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            w.write_all(format!("line-{n:07}-").as_bytes()).unwrap();
            w.write_all(b"end\n").unwrap();
            n += 1;
            if n % 64 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        drop(w);
        n
    })
}

#[test]
fn an_intake_fd_written_throughout_two_reexecs_loses_and_repeats_no_line() {
    let d = Daemon::start(&["--max-lines", "100000", "--max-bytes", "64M"]);
    let w = d.pass_socketpair("stream");
    let handle = writer(w);
    d.wait_until("lines flowing", |d| d.fd_counter("stored") > 100);
    reexec_by_signal(&d, 0);
    d.wait_until("more lines", |d| d.fd_counter("stored") > 3000);
    reexec_by_signal(&d, 1);
    d.wait_until("more lines after", |d| d.fd_counter("stored") > 6000);
    let n = handle.stop();
    d.wait_until("every line", |d| d.fd_counter("stored") >= n as u64);
    d.wait_until("the fd closed", |d| {
        d.stats()["open"]["intake_fds_open"] == 0
    });
    // As a user checks: logread, the stream's source only.
    let out = d.logread(&["-s", "stream", "-o", "cat"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let want: Vec<String> = (0..n).map(|i| format!("line-{i:07}-end")).collect();
    assert_eq!(lines.len(), want.len(), "lines lost or repeated");
    for (i, (got, want)) in lines.iter().zip(&want).enumerate() {
        assert_eq!(got, want, "line {i}");
    }
    d.assert_ledger("fd", &[("dropped", 0)]);
}

#[test]
fn a_tcp_connection_and_its_unfinished_frame_survive_a_reexec() {
    let (d, addr) = Daemon::start_on_loopback("tcp", &[]);
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(b"<13>Nov 21 23:40:10 tcp: first\n<13>Nov 21 23:40:10 tcp: sec")
        .unwrap();
    d.entry_with_msg("first");
    reexec_by_signal(&d, 0);
    c.write_all(b"ond\n").unwrap();
    let e = d.entry_with_msg("second");
    assert_eq!(e["input"], "net");
    // The listener was handed over too.
    let mut c2 = std::net::TcpStream::connect(addr).unwrap();
    c2.write_all(b"<13>Nov 21 23:40:10 tcp: new connection\n")
        .unwrap();
    d.entry_with_msg("new connection");
}

/// Kernel records in the format of a saved /dev/kmsg, numbered `range`.
fn kmsg_file(path: &Path, range: std::ops::Range<u64>) {
    let mut text = String::new();
    for i in range {
        text += &format!("6,{i},{},-;kernel record {i}\n", 1000 + i);
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn kernel_records_are_not_stored_twice_after_a_reexec() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kmsg.txt");
    kmsg_file(&file, 0..10);
    let d = Daemon::start_with_kmsg(&["--kmsg", file.to_str().unwrap()]);
    d.wait_for("10 kernel records", |e| {
        e.iter().filter(|v| v["input"] == "kmsg").count() == 10
    });
    reexec_by_signal(&d, 0);
    let entries = d.wait_for("the second replay's note", |e| {
        e.iter().any(|v| {
            v["msg"]
                .as_str()
                .unwrap_or("")
                .ends_with("(10 of them were in the ring already)")
        })
    });
    let seqs: Vec<u64> = entries
        .iter()
        .filter(|v| v["input"] == "kmsg")
        .map(|v| v["kmsg_seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..10).collect::<Vec<_>>());
    let c = d.assert_ledger_balances("kmsg");
    assert_eq!(c["stored"], 10);
}

/// Whether this test may read the real /dev/kmsg (root): under CI it
/// must; elsewhere the test is skipped, saying why.
fn real_kmsg_or_skip() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs the tests as root; this one needs /dev/kmsg"
    );
    eprintln!("skipped: reading /dev/kmsg needs root");
    false
}

#[test]
fn the_real_kernel_log_is_not_read_twice_after_a_reexec() {
    if !real_kmsg_or_skip() {
        return;
    }
    let d = Daemon::start_with_kmsg(&[]);
    d.wait_for("kernel records", |e| e.iter().any(|v| v["input"] == "kmsg"));
    reexec_by_signal(&d, 0);
    let marker = unique("ringlogd-restart-test");
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .unwrap()
        .write_all(format!("<6>{marker}\n").as_bytes())
        .unwrap();
    let entries = d.wait_for(&marker, |e| {
        e.iter()
            .any(|v| v["msg"].as_str().unwrap_or("").contains(&marker))
    });
    let mut seqs: Vec<u64> = entries
        .iter()
        .filter(|v| v["input"] == "kmsg")
        .map(|v| v["kmsg_seq"].as_u64().unwrap())
        .collect();
    let n = seqs.len();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "a kernel record was stored twice");
}

// ---- the systemd fd store ---------------------------------------------

/// systemd's side of the fd store: NOTIFY_SOCKET, the fds it keeps (by
/// name, a duplicate of one already kept ignored as systemd does), and
/// starting the daemon with them as LISTEN_FDS.
struct FakeSystemd {
    dir: tempfile::TempDir,
    notify: UnixDatagram,
    store: Vec<(String, OwnedFd)>,
    notices: Vec<String>,
}

impl FakeSystemd {
    fn new() -> FakeSystemd {
        let dir = tempfile::tempdir().unwrap();
        let notify = UnixDatagram::bind(dir.path().join("notify")).unwrap();
        notify.set_nonblocking(true).unwrap();
        std::fs::create_dir(dir.path().join("run")).unwrap();
        FakeSystemd {
            dir,
            notify,
            store: Vec::new(),
            notices: Vec::new(),
        }
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn query(&self) -> QueryAt {
        QueryAt(self.run_dir().join("memlogdq.sock"))
    }

    /// Take every waiting notification, as systemd would.
    fn pump(&mut self) {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        loop {
            let mut buf = [0u8; 4096];
            let mut iov = [IoSliceMut::new(&mut buf)];
            let mut cmsg = nix::cmsg_space!([RawFd; 16]);
            let msg = match recvmsg::<()>(
                self.notify.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => m,
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(e) => panic!("recvmsg: {e}"),
            };
            let mut fds = Vec::new();
            for c in msg.cmsgs().unwrap() {
                if let ControlMessageOwned::ScmRights(v) = c {
                    // SAFETY: the kernel just installed these fds for us.
                    fds.extend(v.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                }
            }
            let n = msg.bytes;
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let fields: HashMap<&str, &str> =
                text.lines().filter_map(|l| l.split_once('=')).collect();
            let name = fields.get("FDNAME").copied().unwrap_or("stored").to_owned();
            if fields.get("FDSTOREREMOVE") == Some(&"1") {
                self.store.retain(|(n, _)| *n != name);
            }
            if fields.get("FDSTORE") == Some(&"1") {
                assert!(
                    name.len() <= 255
                        && name.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b':'),
                    "an invalid FDNAME: {name:?}"
                );
                for fd in fds {
                    let st = nix::sys::stat::fstat(&fd).unwrap();
                    let same = self.store.iter().any(|(_, f)| {
                        let s = nix::sys::stat::fstat(f).unwrap();
                        (s.st_dev, s.st_ino) == (st.st_dev, st.st_ino)
                    });
                    if !same {
                        self.store.push((name.clone(), fd));
                    }
                }
            }
            self.notices.push(text);
        }
    }

    /// Pump until `pred` holds for the store's names.
    fn wait_store(&mut self, what: &str, pred: impl Fn(&[&str]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.pump();
            let names: Vec<&str> = self.store.iter().map(|(n, _)| n.as_str()).collect();
            if pred(&names) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the store holds {names:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_notice(&mut self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.pump();
            if let Some(i) = self.notices.iter().position(|n| n.contains(what)) {
                self.notices.drain(..=i);
                return;
            }
            assert!(Instant::now() < deadline, "no {what} from ringlogd");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start ringlogd with every stored fd as 3, 4, ... and LISTEN_PID its
    /// own pid (a shell that execs it keeps the pid), and wait for READY=1.
    fn start(&mut self, args: &[&str]) -> Started {
        let names: Vec<String> = self.store.iter().map(|(n, _)| n.clone()).collect();
        let from: Vec<RawFd> = self.store.iter().map(|(_, f)| f.as_raw_fd()).collect();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
            .arg(RINGLOGD)
            .arg("--runtime-dir")
            .arg(self.run_dir())
            .args(args)
            .env("NOTIFY_SOCKET", self.dir.path().join("notify"))
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("stderr")).unwrap());
        if !from.is_empty() {
            cmd.env("LISTEN_FDS", from.len().to_string())
                .env("LISTEN_FDNAMES", names.join(":"));
        }
        // SAFETY: only dup2 and close run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                use nix::libc;
                let high = 1000;
                for (i, &fd) in from.iter().enumerate() {
                    if libc::dup2(fd, high + i as RawFd) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for i in 0..from.len() as RawFd {
                    if libc::dup2(high + i, 3 + i) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(high + i);
                }
                Ok(())
            })
        };
        let child = Started(Some(cmd.spawn().expect("start ringlogd")));
        self.wait_notice("READY=1");
        child
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }
}

/// A started daemon, killed if a failing test leaves it running.
struct Started(Option<Child>);

impl Started {
    fn pid(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    fn stop(mut self, sig: &str) {
        let mut c = self.0.take().unwrap();
        signal(c.id(), sig);
        wait_timeout(&mut c, Duration::from_secs(10));
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn stats_at(q: &QueryAt) -> Value {
    let mut c = UnixStream::connect(&q.0).unwrap();
    c.write_all(b"{\"mode\":\"stats\"}\n").unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut c, &mut out).unwrap();
    serde_json::from_slice(&out).unwrap()
}

fn send_to(q: &FakeSystemd, msg: &str) {
    send_datagram(&q.run_dir().join("log"), msg.as_bytes());
}

fn lines_of(entries: &[Value], source: &str) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e["input"] == "fd" && e["source"] == source)
        .map(|e| e["msg"].as_str().unwrap().to_owned())
        .collect()
}

/// The fd store across a restart: `sig` stops the first daemon (TERM for
/// `systemctl restart`, KILL for a crash).
fn fd_store_restart(sig: &str) {
    let mut m = FakeSystemd::new();
    let kmsg = m.dir.path().join("kmsg.txt");
    kmsg_file(&kmsg, 0..5);
    let args = ["--kmsg", kmsg.to_str().unwrap()];
    let d = m.start(&args);
    let q = m.query();
    for i in 0..10 {
        send_to(&m, &format!("<13>Nov 21 23:40:10 kept: message {i}"));
    }
    // An odd name, escaped in its FDNAME and read on under it.
    let source = "svc: ünïcode 100%";
    let (mut w, theirs) = UnixStream::pair().unwrap();
    send_fds(
        &m.run_dir().join("linuxkit-external-logging.sock"),
        source.as_bytes(),
        &[theirs.as_raw_fd()],
    )
    .unwrap();
    drop(theirs);
    w.write_all(b"a1\nb").unwrap();
    let before = q.wait_for("the messages and a1", |e| {
        e.iter().filter(|v| v["app"] == "kept").count() == 10
            && lines_of(e, source) == ["a1"]
            && e.iter().filter(|v| v["input"] == "kmsg").count() == 5
    });
    m.wait_store("the ring and the intake fd", |names| {
        names.contains(&"ring") && names.iter().any(|n| n.starts_with("fd."))
    });
    let stats_before = stats_at(&q);
    d.stop(sig);
    m.pump();
    if sig == "TERM" {
        assert!(
            m.store.iter().any(|(n, _)| n == "state"),
            "a clean stop leaves the unfinished lines"
        );
    }
    // Written while no daemon runs: it waits in the pipe.
    w.write_all(b"2\nc3\n").unwrap();

    let d2 = m.start(&args);
    let after = q.wait_for("c3", |e| lines_of(e, source).contains(&"c3".to_owned()));
    assert_eq!(
        keyed(&after[..before.len()]),
        keyed(&before),
        "the same entries under the same sequence numbers; stderr: {}",
        m.stderr()
    );
    let lines = lines_of(&after, source);
    if sig == "TERM" {
        assert_eq!(lines, ["a1", "b2", "c3"]);
    } else {
        // A crash loses at most the line being written.
        assert!(
            lines == ["a1", "b2", "c3"] || lines == ["a1", "2", "c3"],
            "{lines:?}"
        );
    }
    let kernel: Vec<u64> = after
        .iter()
        .filter(|v| v["input"] == "kmsg")
        .map(|v| v["kmsg_seq"].as_u64().unwrap())
        .collect();
    assert_eq!(kernel, (0..5).collect::<Vec<_>>(), "kernel records once");
    let stats = stats_at(&q);
    let c = |s: &Value, input: &str, k: &str| s["inputs"][input][k].as_u64().unwrap();
    assert_eq!(
        c(&stats, "syslog", "stored"),
        c(&stats_before, "syslog", "stored")
    );
    assert_eq!(c(&stats, "kmsg", "stored"), 5);
    assert_eq!(
        c(&stats, "fd", "stored"),
        c(&stats_before, "fd", "stored") + 2,
        "the counters go on"
    );
    // The state was used up; an fd that ends leaves the store.
    m.wait_store("no state", |names| !names.contains(&"state"));
    drop(w);
    m.wait_store("the intake fd removed", |names| {
        names == ["ring"]
            || (names.contains(&"ring") && !names.iter().any(|n| n.starts_with("fd.")))
    });
    send_to(&m, "<13>Nov 21 23:40:12 kept: after the restart");
    q.wait_for("a new message", |e| {
        e.iter().any(|v| v["msg"] == "after the restart")
    });
    assert!(is_running(d2.pid()));
    d2.stop("TERM");
}

#[test]
fn the_fd_store_keeps_the_ring_and_intake_fds_across_a_clean_restart() {
    fd_store_restart("TERM");
}

#[test]
fn the_fd_store_keeps_the_ring_and_intake_fds_across_a_crash() {
    fd_store_restart("KILL");
}

/// A large ring's compression dictionary goes through the fd store with
/// the memfd, so a successor after a crash reads every chunk that names it.
#[test]
fn the_fd_store_keeps_the_compression_dictionary_across_a_crash() {
    let mut m = FakeSystemd::new();
    let args = ["--max-bytes", "16M", "--max-lines", "1000000", "--no-kmsg"];
    let d = m.start(&args);
    let q = m.query();
    // Several 256 KiB chunks sealed, the first one enough to learn from.
    let n = 12_000;
    for i in 0..n {
        send_to(&m, &super::dictionary::line(i));
    }
    let dicts = |s: &Value| {
        (
            s["ring"]["dicts"].as_u64().unwrap(),
            s["ring"]["dict_bytes"].as_u64().unwrap(),
        )
    };
    // The compressor thread learns it after the entries are stored, and
    // the ring takes what it finished when it next stores one: a line
    // every poll until it shows.
    let mut sent = n;
    let held = dicts(&poll(
        "one dictionary learned",
        Duration::from_secs(10),
        || {
            send_to(&m, &super::dictionary::line(sent));
            sent += 1;
            stats_at(&q)
        },
        |s| dicts(s).0 == 1,
    ));
    let before = q.wait_for("every line", |e| {
        e.iter().filter(|v| v["app"] == "sshd").count() == sent
    });
    m.wait_store("the ring", |names| names.contains(&"ring"));
    d.stop("KILL");
    m.pump();

    let d2 = m.start(&args);
    assert_eq!(dicts(&stats_at(&q)), held, "stderr: {}", m.stderr());
    let after = q.dump();
    assert_eq!(
        keyed(&after[..before.len()]),
        keyed(&before),
        "every entry read back, the compressed ones too"
    );
    d2.stop("TERM");
}

// ---- --snapshot ---------------------------------------------------------

#[test]
fn a_clean_stop_writes_the_snapshot_and_the_next_start_loads_it() {
    let keep = tempfile::tempdir().unwrap();
    let snap = keep.path().join("ring.snapshot");
    let args = ["--snapshot", snap.to_str().unwrap()];
    let d = Daemon::start(&args);
    assert!(!snap.exists(), "written at a clean stop, not before");
    for i in 0..10 {
        d.send(format!("<13>Nov 21 23:40:10 snap: message {i}").as_bytes());
    }
    let before = d.wait_for("10 messages", |e| {
        e.iter().filter(|v| v["app"] == "snap").count() == 10
    });
    let stats_before = d.stats();
    assert!(d.stop().success());
    assert!(snap.exists(), "a clean stop writes the snapshot");

    let d = Daemon::start_with_kmsg(&["--no-kmsg", "--snapshot", snap.to_str().unwrap()]);
    let after = d.dump();
    assert_eq!(keyed(&after[..before.len()]), keyed(&before));
    // Right after them, the entry that marks the boundary. The first
    // daemon read no kernel log, so only this boot is named.
    assert_eq!(
        after[before.len()]["msg"],
        format!(
            "memlogd started; loaded {} entries from {}; this is boot {}",
            before.len(),
            snap.display(),
            this_boot()
        )
    );
    assert_eq!(
        stats_before["inputs"]["syslog"],
        d.stats()["inputs"]["syslog"],
        "the counters go on"
    );
    assert!(
        !d.stderr_text().contains("warning"),
        "a good snapshot is no warning: {}",
        d.stderr_text()
    );
    d.assert_still_serves();
}

fn this_boot() -> String {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    id.trim().to_owned()
}

/// After a snapshot's entries, one entry marks where the boot that wrote
/// them ends and names it (the boot whose kernel log the ring had read)
/// and the boot that loaded them: a reader tells the two boots' entries
/// apart. Both are this machine's boot here; the first comes from the
/// snapshot, the second from the kernel.
#[test]
fn after_a_loaded_snapshot_an_entry_names_the_boot_it_came_from_and_this_one() {
    if !real_kmsg_or_skip() {
        return;
    }
    let keep = tempfile::tempdir().unwrap();
    let snap = keep.path().join("ring.snapshot");
    let args = ["--snapshot", snap.to_str().unwrap()];
    let d = Daemon::start_with_kmsg(&args);
    d.wait_for("kernel records", |e| e.iter().any(|v| v["input"] == "kmsg"));
    assert!(d.stop().success());

    let d = Daemon::start_with_kmsg(&["--no-kmsg", "--snapshot", snap.to_str().unwrap()]);
    let after = d.dump();
    let at = after
        .iter()
        .position(|v| {
            v["msg"]
                .as_str()
                .unwrap()
                .starts_with("memlogd started; loaded")
        })
        .expect("the entry after the snapshot's");
    let boot = this_boot();
    assert_eq!(
        after[at]["msg"],
        format!(
            "memlogd started; loaded {at} entries from {}, of boot {boot}; this is boot {boot}",
            snap.display()
        ),
        "it follows exactly the loaded entries"
    );
    assert_eq!(
        after[0]["msg"], "memlogd started",
        "the first boot's entries come first"
    );
}

#[test]
fn a_missing_snapshot_is_normal() {
    let keep = tempfile::tempdir().unwrap();
    let snap = keep.path().join("none-yet");
    let d = Daemon::start_with_kmsg(&["--no-kmsg", "--snapshot", snap.to_str().unwrap()]);
    assert_eq!(d.dump()[0]["msg"], "memlogd started");
    assert_eq!(d.stderr_text(), "");
    d.assert_still_serves();
}

/// Start on a bad snapshot: refused on stderr and in the ring, and served.
fn refused(bytes: &[u8], why: &str) {
    let keep = tempfile::tempdir().unwrap();
    let snap = keep.path().join("ring.snapshot");
    std::fs::write(&snap, bytes).unwrap();
    let d = Daemon::start_with_kmsg(&["--no-kmsg", "--snapshot", snap.to_str().unwrap()]);
    let entries = d.wait_for("the refusal", |e| {
        e.iter()
            .any(|v| v["msg"].as_str().unwrap_or("").contains("refused"))
    });
    let e = entries
        .iter()
        .find(|v| v["msg"].as_str().unwrap_or("").contains("refused"))
        .unwrap();
    let msg = e["msg"].as_str().unwrap();
    assert_eq!(e["severity"], "warning");
    assert!(
        msg.starts_with(&format!("--snapshot {}: refused: ", snap.display()))
            && msg.ends_with("; starting with an empty ring"),
        "{why}: {msg}"
    );
    let stderr = d.stderr_text();
    assert!(stderr.contains(msg), "{why}: stderr says it too: {stderr}");
    assert!(
        !entries.iter().any(|v| v["input"] == "syslog"),
        "{why}: nothing from the bad file"
    );
    d.assert_still_serves();
}

/// A real snapshot's bytes, from a daemon stopped cleanly.
fn real_snapshot() -> Vec<u8> {
    let keep = tempfile::tempdir().unwrap();
    let snap = keep.path().join("ring.snapshot");
    let d = Daemon::start(&["--snapshot", snap.to_str().unwrap()]);
    for i in 0..50 {
        d.send(format!("<13>Nov 21 23:40:10 snap: message {i}").as_bytes());
    }
    d.wait_for("50 messages", |e| {
        e.iter().filter(|v| v["app"] == "snap").count() == 50
    });
    assert!(d.stop().success());
    std::fs::read(&snap).expect("a clean stop writes the snapshot")
}

#[test]
fn a_torn_snapshot_is_refused_and_the_daemon_serves() {
    let bytes = real_snapshot();
    refused(&bytes[..bytes.len() / 2], "cut in half");
}

#[test]
fn a_snapshot_of_random_bytes_is_refused_and_the_daemon_serves() {
    let bytes: Vec<u8> = noise(0x9e37_79b9_7f4a_7c15)
        .take(64 << 10)
        .map(|x| x as u8)
        .collect();
    refused(&bytes, "random bytes");
}

#[test]
fn a_snapshot_of_another_format_version_is_refused_and_the_daemon_serves() {
    let mut bytes = real_snapshot();
    let at = SNAPSHOT_VERSION_AT;
    let v = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    bytes[at..at + 4].copy_from_slice(&(v + 100).to_le_bytes());
    refused(&bytes, "a newer format version");
}
