//! The harness every integration test uses: start the real `ringlogd`
//! binary on sockets in a temporary directory, talk to it over those
//! sockets, stop it by its pid.

use std::io::{IoSlice, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod captures;
pub mod journal_remote;
pub mod receiver;
pub mod syslogd;

pub const RINGLOGD: &str = env!("CARGO_BIN_EXE_ringlogd");
pub const LOGREAD: &str = env!("CARGO_BIN_EXE_logread");
pub const LOGWRITE: &str = env!("CARGO_BIN_EXE_logwrite");
/// A LinuxKit init stand-in that passes fds with Python's socket.send_fds.
pub const FAKE_INIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/support/fake_init.py");

/// A running daemon in its own temporary directory.
pub struct Daemon {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    pub query: PathBuf,
    /// Where the daemon's stderr goes, when the test reads it.
    pub stderr: Option<PathBuf>,
    /// The fd intake socket, `DIR/linuxkit-external-logging.sock`.
    pub intake: PathBuf,
}

impl Daemon {
    /// Start with `--runtime-dir` and `--no-kmsg` plus `args`, and wait until
    /// it serves. Without kernel messages the ring starts with exactly the
    /// `memlogd started` entry, which most tests count on.
    pub fn start(args: &[&str]) -> Daemon {
        Daemon::spawn(args, false)
    }

    /// Start reading kernel messages too: the real `/dev/kmsg`, or the
    /// `--kmsg PATH` in `args`. Its stderr goes to a file ([`Daemon::stderr_text`]).
    pub fn start_with_kmsg(args: &[&str]) -> Daemon {
        Daemon::spawn(args, true)
    }

    /// [`Daemon::start_with_kmsg`] in a directory the test made, so it can
    /// watch the sockets appear while the daemon starts.
    pub fn start_with_kmsg_in(dir: tempfile::TempDir, args: &[&str]) -> Daemon {
        Daemon::spawn_in(dir, args, true)
    }

    /// [`Daemon::start`] in a directory the test made, so something can
    /// wait for its sockets before the daemon starts.
    pub fn start_in(dir: tempfile::TempDir, args: &[&str]) -> Daemon {
        Daemon::spawn_in(dir, args, false)
    }

    /// [`Daemon::start`] under a wrapper that execs the daemon, e.g.
    /// `["prlimit", "--nofile=64:64"]`: the pid stays the daemon's.
    pub fn start_under(wrapper: &[&str], args: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        Daemon::spawn_wrapped(dir, wrapper, args, false)
    }

    /// [`Daemon::start_under`] with its stderr captured, as
    /// [`Daemon::start_with_kmsg`] does (pass `--no-kmsg` to leave the
    /// kernel's log out).
    pub fn start_under_with_kmsg(wrapper: &[&str], args: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        Daemon::spawn_wrapped(dir, wrapper, args, true)
    }

    fn spawn(args: &[&str], kmsg: bool) -> Daemon {
        Daemon::spawn_in(tempfile::tempdir().expect("temp dir"), args, kmsg)
    }

    fn spawn_in(dir: tempfile::TempDir, args: &[&str], kmsg: bool) -> Daemon {
        Daemon::spawn_wrapped(dir, &[], args, kmsg)
    }

    fn spawn_wrapped(
        dir: tempfile::TempDir,
        wrapper: &[&str],
        args: &[&str],
        kmsg: bool,
    ) -> Daemon {
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(require(program));
                c.args(rest).arg(RINGLOGD);
                c
            }
            None => Command::new(RINGLOGD),
        };
        cmd.arg("--runtime-dir").arg(dir.path());
        let mut stderr = None;
        if kmsg {
            let path = dir.path().join("stderr");
            cmd.stderr(std::fs::File::create(&path).expect("stderr file"));
            stderr = Some(path);
        } else {
            cmd.arg("--no-kmsg");
        }
        let child = cmd
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .expect("start ringlogd");
        let d = Daemon {
            child,
            log: dir.path().join("log"),
            query: dir.path().join("memlogdq.sock"),
            stderr,
            intake: dir.path().join("linuxkit-external-logging.sock"),
            dir,
        };
        d.wait_ready();
        d
    }

    /// What the daemon wrote to stderr so far (only for
    /// [`Daemon::start_with_kmsg`]).
    pub fn stderr_text(&self) -> String {
        let path = self.stderr.as_ref().expect("stderr is captured");
        std::fs::read_to_string(path).expect("read stderr")
    }

    /// Wait until the daemon answers a query: its loop runs, so every
    /// socket it serves is bound. (The query socket accepts connections as
    /// soon as it is bound, before the network sockets are.)
    fn wait_ready(&self) {
        if !wait_answers(&self.query) {
            panic!("ringlogd did not start serving {}", self.query.display());
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many fds the daemon holds once it is up and idle: after a query
    /// has been answered (every fd it opens at start is open by then), and
    /// once the count has held still for a while (the connection that saw
    /// it serving is closed). The baseline for tests that check fds are let
    /// go; counted straight after start, it may catch either half-done.
    pub fn settled_fds(&self) -> usize {
        self.stats();
        let mut last = open_fds(self.pid());
        let mut still = 0;
        while still < 5 {
            std::thread::sleep(Duration::from_millis(20));
            let now = open_fds(self.pid());
            if now == last {
                still += 1;
            } else {
                (last, still) = (now, 0);
            }
        }
        last
    }

    /// Send one datagram to the daemon's syslog socket.
    pub fn send(&self, bytes: &[u8]) {
        send_datagram(&self.log, bytes);
    }

    /// Send `n` datagrams, `make(i)` for i in 0..n, from one socket,
    /// blocking while the daemon's queue is full (so none is lost on the way).
    pub fn send_many(&self, n: usize, make: impl Fn(usize) -> String) {
        let s = UnixDatagram::unbound().unwrap();
        for i in 0..n {
            s.send_to(make(i).as_bytes(), &self.log)
                .expect("send to /dev/log socket");
        }
    }

    /// [`Daemon::start`] for a test that acts as other users: with root, a
    /// daemon whose directory every user can reach ([`Daemon::open_dir`]);
    /// without, None ([`root_or_skip`] says why, and fails under CI).
    pub fn start_for_others(what: &str, args: &[&str]) -> Option<Daemon> {
        if !root_or_skip(what) {
            return None;
        }
        let d = Daemon::start(args);
        d.open_dir();
        Some(d)
    }

    /// Let every user reach the sockets in the daemon's directory (the
    /// socket modes still decide who may connect).
    pub fn open_dir(&self) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Run `logger -u LOG ARGS` as `uid` (its group too): a real client
    /// whose credentials the kernel gives the daemon.
    pub fn logger_as(&self, uid: u32, args: &[&str]) {
        run_ok(
            as_user(uid, uid)
                .arg(require("logger"))
                .arg("-u")
                .arg(&self.log)
                .args(args),
        );
    }

    /// Pass `fds` to the daemon's fd intake under `name`, in one datagram.
    pub fn pass_fds(&self, name: &[u8], fds: &[RawFd]) {
        send_fds(&self.intake, name, fds).expect("send fds to the intake socket");
    }

    /// Pass one end of a new socketpair under `name`; the other end, to
    /// write the lines to.
    pub fn pass_socketpair(&self, name: &str) -> UnixStream {
        let (ours, theirs) = UnixStream::pair().unwrap();
        self.pass_fds(name.as_bytes(), &[theirs.as_raw_fd()]);
        ours
    }

    /// The entries from intake source `source`, in ring order.
    pub fn entries_of(&self, source: &str) -> Vec<Value> {
        self.dump()
            .into_iter()
            .filter(|e| e["source"] == source && e["input"] == "fd")
            .collect()
    }

    /// The messages of `source`, once there are `n` of them.
    pub fn wait_lines(&self, source: &str, n: usize) -> Vec<String> {
        let entries = self.wait_for(&format!("{n} lines from {source}"), |e| {
            e.iter()
                .filter(|v| v["source"] == source && v["input"] == "fd")
                .count()
                >= n
        });
        entries
            .into_iter()
            .filter(|v| v["source"] == source && v["input"] == "fd")
            .map(|v| v["msg"].as_str().unwrap().to_owned())
            .collect()
    }

    /// A raw query: send `request`, read until the daemon closes.
    pub fn query_raw(&self, request: &[u8]) -> Vec<u8> {
        let mut c = UnixStream::connect(&self.query).expect("connect query socket");
        c.write_all(request).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut out = Vec::new();
        c.read_to_end(&mut out).expect("read query reply");
        out
    }

    /// Every entry in the ring (memlogd mode 0), parsed; not the notes of
    /// what fair eviction took, which are no entries.
    pub fn dump(&self) -> Vec<Value> {
        let mut lines = parse_lines(&self.query_raw(&[0]));
        lines.retain(|v| !is_eviction_note(v));
        lines
    }

    /// The daemon's counters.
    pub fn stats(&self) -> Value {
        let out = self.query_raw(b"{\"mode\":\"stats\"}\n");
        serde_json::from_slice(&out).expect("stats is one JSON object")
    }

    /// Dump until `pred` holds for the entries (the daemon works
    /// asynchronously), failing after 10 s.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        poll(what, Duration::from_secs(10), || self.dump(), |e| pred(e))
    }

    /// Wait until `pred` holds (it may query the daemon), failing after 10 s.
    pub fn wait_until(&self, what: &str, pred: impl Fn(&Daemon) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pred(self) {
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; stats: {}", self.stats());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A counter of the fd intake's ledger (0 while nothing arrived).
    pub fn fd_counter(&self, name: &str) -> u64 {
        self.stats()["inputs"]["fd"][name].as_u64().unwrap_or(0)
    }

    /// The first of the daemon's own entries (input `internal`) whose msg
    /// contains `needle`, once it has arrived.
    pub fn internal_with(&self, needle: &str) -> Value {
        let is_it =
            |v: &Value| v["input"] == "internal" && v["msg"].as_str().unwrap().contains(needle);
        let entries = self.wait_for(needle, |e| e.iter().any(is_it));
        entries.into_iter().find(is_it).unwrap()
    }

    /// The first entry whose msg is `msg`, once it has arrived.
    pub fn entry_with_msg(&self, msg: &str) -> Value {
        let entries = self.wait_for(msg, |e| e.iter().any(|v| v["msg"] == msg));
        entries.into_iter().find(|v| v["msg"] == msg).unwrap()
    }

    /// Run our logread against this daemon.
    pub fn logread(&self, args: &[&str]) -> Output {
        self.logread_command()
            .args(args)
            .output()
            .expect("run logread")
    }

    /// Our logread against this daemon, to run.
    pub fn logread_command(&self) -> Command {
        let mut c = Command::new(LOGREAD);
        c.arg("--socket").arg(&self.query);
        c
    }

    /// Start our logread with `args` (a follow) against this daemon, its
    /// stdout piped.
    pub fn spawn_logread(&self, args: &[&str]) -> Child {
        self.logread_command()
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("run logread")
    }

    /// SIGTERM, then wait for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        signal(self.child.id(), "TERM");
        let status = wait_timeout(&mut self.child, Duration::from_secs(10));
        std::mem::forget(self);
        status
    }

    /// Stop with SIGTERM (a clean stop, which writes a `--snapshot`), then
    /// start again in the same directory with `args`: the same socket paths.
    pub fn restart(mut self, args: &[&str]) -> Daemon {
        signal(self.child.id(), "TERM");
        let status = wait_timeout(&mut self.child, Duration::from_secs(10));
        assert!(status.success(), "ringlogd stopped with {status}");
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        let kmsg = self.stderr.is_some();
        drop(self);
        Daemon::spawn_in(dir, args, kmsg)
    }

    /// [`Daemon::stop`], and what the daemon wrote to stderr (only for
    /// [`Daemon::start_with_kmsg`]).
    pub fn stop_with_stderr(self) -> (std::process::ExitStatus, String) {
        let path = self.stderr.clone().expect("stderr is captured");
        let status = self.stop();
        let text = std::fs::read_to_string(path).expect("read stderr");
        (status, text)
    }

    /// A daemon that listens for `proto` (`udp`, `tcp`) on a free loopback
    /// port, with `args` besides, and the address it took.
    pub fn start_on_loopback(proto: &str, args: &[&str]) -> (Daemon, std::net::SocketAddr) {
        let flag = format!("--{proto}");
        let d = Daemon::start(&[&[flag.as_str(), "127.0.0.1:0"], args].concat());
        let addr = d.listening(proto);
        (d, addr)
    }

    /// The address ringlogd says it listens on for `proto` (`udp`, `tcp`),
    /// from its `listening on` entry: the tests bind port 0.
    pub fn listening(&self, proto: &str) -> std::net::SocketAddr {
        self.listening_all(proto)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("ringlogd listens on no {proto} socket"))
    }

    /// Every address ringlogd listens on for `proto`, in flag order.
    pub fn listening_all(&self, proto: &str) -> Vec<std::net::SocketAddr> {
        let prefix = format!("listening on {proto} ");
        self.dump()
            .iter()
            .filter(|e| e["input"] == "internal")
            .filter_map(|e| e["msg"].as_str()?.strip_prefix(&prefix)?.parse().ok())
            .collect()
    }

    /// Read the stats until `pred` holds for the counters of `input`,
    /// failing after 10 s.
    pub fn wait_for_counters(&self, input: &str, pred: impl Fn(&Value) -> bool) -> Value {
        poll(
            &format!("the {input} counters"),
            Duration::from_secs(10),
            || self.stats()["inputs"][input].clone(),
            pred,
        )
    }

    /// The msgs that start with `prefix`, in ring order, once there are
    /// `n` of them.
    pub fn wait_msgs_starting(&self, prefix: &str, n: usize) -> Vec<String> {
        let entries = self.wait_for(&format!("{n} messages {prefix}"), |e| {
            e.iter().filter(|v| msg_starts(v, prefix)).count() == n
        });
        entries
            .iter()
            .filter(|v| msg_starts(v, prefix))
            .map(|v| v["msg"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The first entry whose msg contains `needle`, once it has arrived.
    pub fn entry_with_text(&self, needle: &str) -> Value {
        let has = |v: &Value| v["msg"].as_str().is_some_and(|m| m.contains(needle));
        let entries = self.wait_for(needle, |e| e.iter().any(has));
        entries.into_iter().find(has).unwrap()
    }

    /// The first entry whose msg starts with `prefix`, once it has arrived.
    pub fn entry_starting(&self, prefix: &str) -> Value {
        let entries = self.wait_for(prefix, |e| e.iter().any(|v| msg_starts(v, prefix)));
        entries.into_iter().find(|v| msg_starts(v, prefix)).unwrap()
    }

    /// Check the ledger's promise for `input`: received = stored + dropped.
    pub fn assert_ledger_balances(&self, input: &str) -> Value {
        let stats = self.stats();
        let c = &stats["inputs"][input];
        let received = c["received"].as_u64().unwrap();
        let stored = c["stored"].as_u64().unwrap();
        let dropped = c["dropped"].as_u64().unwrap();
        assert_eq!(received, stored + dropped, "ledger for {input}: {c}");
        c.clone()
    }

    /// The ledger for `input` balances, and holds each (counter, value)
    /// of `want`.
    pub fn assert_ledger(&self, input: &str, want: &[(&str, u64)]) -> Value {
        let c = self.assert_ledger_balances(input);
        for (counter, value) in want {
            assert_eq!(c[*counter], *value, "{counter} of {input}: {c}");
        }
        c
    }
}

impl Daemon {
    /// The check every robustness case ends with: the daemon still runs,
    /// a normal message sent now is stored and readable, and for every
    /// input received = stored + dropped.
    pub fn assert_still_serves(&self) {
        assert!(is_running(self.pid()), "ringlogd is gone");
        let msg = unique("still-serving");
        self.send(format!("<13>Nov 21 23:40:10 still: {msg}").as_bytes());
        // A filtered query, so that a large ring is not dumped whole.
        let request = format!("{{\"app\":\"still\",\"grep\":\"{msg}\"}}\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = parse_lines(&self.query_raw(request.as_bytes()));
            if let Some(e) = got.first() {
                assert_eq!(e["msg"], msg.as_str());
                assert_eq!(e["severity"], "notice");
                break;
            }
            assert!(Instant::now() < deadline, "a normal message was not stored");
            std::thread::sleep(Duration::from_millis(20));
        }
        let stats = self.stats();
        for (input, c) in stats["inputs"].as_object().expect("inputs") {
            let n = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{input}.{k}: {c}"));
            assert_eq!(
                n("received"),
                n("stored") + n("dropped"),
                "ledger for {input}: {c}"
            );
        }
        assert!(is_running(self.pid()), "ringlogd is gone");
    }
}

/// A real receiver a route sends to: what it has written down so far, and
/// how to wait for more.
pub trait Received {
    /// How often its record is read again while waiting.
    const EVERY: Duration;

    /// Everything it has received so far, one JSON object each.
    fn received(&self) -> Vec<Value>;

    /// What a failed wait shows of the last reading, and of the receiver.
    fn describe(&self, got: &[Value]) -> String;

    /// Wait until `pred` holds for what it received, failing after `secs`.
    fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let limit = (Duration::from_secs(secs), Self::EVERY);
        poll_every(
            what,
            limit,
            || self.received(),
            |r| pred(r),
            |r| self.describe(r),
        )
    }
}

/// Read with `get` every 20 ms until `pred` holds for what it returns, and
/// return that; fail after `limit`, showing `what` and the last reading.
pub fn poll<T: std::fmt::Debug>(
    what: &str,
    limit: Duration,
    get: impl FnMut() -> T,
    pred: impl Fn(&T) -> bool,
) -> T {
    let every = Duration::from_millis(20);
    poll_every(what, (limit, every), get, pred, |got| format!("{got:#?}"))
}

/// [`poll`] for `limit` every `every`, failing with what `explain` makes
/// of the last reading.
pub fn poll_every<T>(
    what: &str,
    (limit, every): (Duration, Duration),
    mut get: impl FnMut() -> T,
    pred: impl Fn(&T) -> bool,
    explain: impl Fn(&T) -> String,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        let got = get();
        if pred(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last read:\n{}",
            explain(&got)
        );
        std::thread::sleep(every);
    }
}

/// Check that entry `e` holds each (key, value) of `want`.
pub fn assert_fields(e: &Value, want: &[(&str, &str)]) {
    for (key, value) in want {
        assert_eq!(e[*key], *value, "{key} in {e}");
    }
}

/// Check that entry `e` is from this machine, with the RFC 5424 header a
/// sender such as `logger --msgid` wrote: app, pid and msgid.
pub fn assert_local_header(e: &Value, app: &str, pid: &str, msgid: &str) {
    assert_fields(
        e,
        &[
            ("host", hostname().as_str()),
            ("app", app),
            ("pid", pid),
            ("msgid", msgid),
        ],
    );
}

/// Whether entry `v`'s msg starts with `prefix`.
pub fn msg_starts(v: &Value, prefix: &str) -> bool {
    v["msg"].as_str().unwrap_or("").starts_with(prefix)
}

/// A dump that may meet an exec: a connection the old program accepted
/// is closed by it, so a cut or failed reply is `None`, not a failure.
pub fn dump_across_exec(query: &Path) -> Option<Vec<Value>> {
    let mut c = UnixStream::connect(query).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    c.write_all(&[0]).ok()?;
    let mut out = Vec::new();
    c.read_to_end(&mut out).ok()?;
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).ok())
        .collect()
}

/// A daemon started from its own copy of the program, in a directory of
/// its own, so that the test can replace or remove the program under it
/// (as an upgrade does). Killed when dropped.
pub struct CopiedDaemon {
    pub bin: tempfile::TempDir,
    pub dir: tempfile::TempDir,
    pub child: Child,
}

impl CopiedDaemon {
    /// Copy the program and start the copy with `--no-kmsg` (stderr
    /// discarded) on sockets in a temporary directory; wait until it serves.
    pub fn start() -> CopiedDaemon {
        let bin = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let exe = bin.path().join("ringlogd");
        install_program(Path::new(RINGLOGD), &exe, 0o755);
        let child = Command::new(&exe)
            .arg("--runtime-dir")
            .arg(dir.path())
            .arg("--no-kmsg")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let d = CopiedDaemon { bin, dir, child };
        assert!(wait_answers(&d.query()), "the copied daemon did not serve");
        d
    }

    /// The copy of the program it runs.
    pub fn exe(&self) -> PathBuf {
        self.bin.path().join("ringlogd")
    }

    pub fn query(&self) -> PathBuf {
        self.dir.path().join("memlogdq.sock")
    }
}

impl Drop for CopiedDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Put a copy of the program `src` at `dest` with `mode`, written by a
/// child process (`install`). Were it written here, a child another test
/// thread forks at that moment would hold the file open for writing until
/// it execs, and executing the copy would fail with ETXTBSY meanwhile.
pub fn install_program(src: &Path, dest: &Path, mode: u32) {
    run_ok(
        Command::new("install")
            .arg("-m")
            .arg(format!("{mode:o}"))
            .arg(src)
            .arg(dest),
    );
}

/// Whether process `pid` exists and has not exited (a zombie has).
pub fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Resident memory of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, &["VmRSS:"])
}

/// Memory process `pid` owns, in KiB: its anonymous pages and its shared
/// memory (the ring's memfd). Unlike VmRSS this leaves out the program's
/// own text, which is file-backed, shared with every other copy of the
/// binary, and grows as code paths run for the first time.
pub fn owned_kib(pid: u32) -> u64 {
    status_kib(pid, &["RssAnon:", "RssShmem:"])
}

/// The sum of `keys`' sizes in `/proc/PID/status`, in KiB.
fn status_kib(pid: u32, keys: &[&str]) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    keys.iter()
        .map(|key| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{key} in /proc/{pid}/status"))
        })
        .sum()
}

/// How many fds process `pid` has open.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Raise this process's soft fd limit to its hard limit, for tests that
/// hold many connections or fds.
pub fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    hard
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send `bytes` as one datagram from an unbound socket to the socket at
/// `path` (a syslog socket other than a [`Daemon`]'s own).
pub fn send_datagram(path: &Path, bytes: &[u8]) {
    let s = UnixDatagram::unbound().unwrap();
    s.send_to(bytes, path)
        .unwrap_or_else(|e| panic!("send to {}: {e}", path.display()));
}

/// Work on a thread of its own until the test says stop: a sender that
/// keeps the daemon busy while the test looks at something else.
pub struct Background<T> {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<T>,
}

impl<T: Send + 'static> Background<T> {
    /// Run `work`, which must return soon after the flag it gets is set.
    pub fn spawn(work: impl FnOnce(&std::sync::atomic::AtomicBool) -> T + Send + 'static) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || work(&flag));
        Background { stop, handle }
    }

    /// Run `step` on `state` again and again until the test says stop or
    /// `step` returns false; the state is what the work made.
    pub fn repeat(mut state: T, mut step: impl FnMut(&mut T) -> bool + Send + 'static) -> Self {
        Self::spawn(move |stop| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && step(&mut state) {}
            state
        })
    }

    /// Set the flag, wait for the work to end, and return what it made.
    pub fn stop(self) -> T {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// The name ringlogd gives this machine in its entries.
pub fn hostname() -> String {
    ringlogd::daemon::local_hostname()
}

/// Send `fds` to the intake socket at `path` as LinuxKit's init does: one
/// datagram from an unbound socket, the name as payload.
pub fn send_fds(path: &Path, name: &[u8], fds: &[RawFd]) -> nix::Result<usize> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
    let sender = UnixDatagram::unbound().unwrap();
    let addr = UnixAddr::new(path)?;
    let cmsgs = if fds.is_empty() {
        vec![]
    } else {
        vec![ControlMessage::ScmRights(fds)]
    };
    sendmsg(
        sender.as_raw_fd(),
        &[IoSlice::new(name)],
        &cmsgs,
        MsgFlags::empty(),
        Some(&addr),
    )
}

/// The pid of the one live process (other than this one) whose command
/// line mentions `needle`, e.g. its own temporary directory. (SO_PEERCRED
/// on a query connection would name whoever called listen(), which under
/// --daemonize is the parent that has exited.)
pub fn pid_with_arg(needle: &Path) -> u32 {
    let needle = needle.as_os_str().as_encoded_bytes();
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let live = !std::fs::read_to_string(entry.path().join("stat"))
            .unwrap_or_default()
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'));
        if pid != me && live && cmdline.windows(needle.len()).any(|w| w == needle) {
            found.push(pid);
        }
    }
    assert_eq!(
        found.len(),
        1,
        "processes mentioning {:?}: {found:?}",
        String::from_utf8_lossy(needle)
    );
    found[0]
}

/// Wait up to 10 s for process `pid` (not our child) to be gone.
pub fn wait_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let path = format!("/proc/{pid}/stat");
        match std::fs::read_to_string(&path) {
            // A zombie has exited; its parent (init) reaps it.
            Ok(stat)
                if stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|s| s.trim_start().starts_with('Z')) =>
            {
                return true
            }
            Ok(_) => {}
            Err(_) => return true,
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Kill a child when dropped, so a failing test leaves no attacker behind.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Read the child's stdout up to the line `word`.
pub fn wait_for_line(child: &mut Child, word: &str) {
    let out = child.stdout.as_mut().expect("piped stdout");
    let mut seen = Vec::new();
    let mut b = [0u8; 1];
    while !String::from_utf8_lossy(&seen).lines().any(|l| l == word) {
        let n = out.read(&mut b).unwrap();
        assert!(n > 0, "the attacker exited before saying {word:?}");
        seen.push(b[0]);
    }
}

/// Stops a daemon that is not our child (started with --daemonize) when
/// dropped, so a failing test leaves nothing running.
pub struct Detached(pub u32);

impl Detached {
    /// SIGTERM it and wait until it is gone.
    pub fn stop(self) {
        signal(self.0, "TERM");
        assert!(wait_gone(self.0), "daemon {} did not stop", self.0);
        std::mem::forget(self);
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(self.0.to_string())
            .status();
    }
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a JSON line is a note of what fair eviction took out of turn
/// (it has no `seq`: it is no entry of the ring).
pub fn is_eviction_note(v: &Value) -> bool {
    v.get("sd")
        .and_then(|s| s.get("evicted@ringlogd"))
        .is_some()
}

/// The next connection to a stand-in daemon's `listener`, failing (not
/// hanging) if the client never makes it.
pub fn accept_client(listener: &std::os::unix::net::UnixListener) -> UnixStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                return conn;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the client did not connect");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

pub fn parse_lines(out: &[u8]) -> Vec<Value> {
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {}", String::from_utf8_lossy(l)))
        })
        .collect()
}

/// The path of an external program the tests drive. The test command
/// (tests/run.sh) installs them all, so a missing one is a failure.
pub fn require(tool: &str) -> PathBuf {
    find_tool(tool).unwrap_or_else(|| {
        panic!("{tool} is not installed: run tests/run.sh, which installs what the tests drive")
    })
}

/// `tool` on PATH, or in an sbin directory (daemons live there, and a
/// non-root PATH may lack it).
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// Deterministic noise from `seed` (xorshift64): input that does not
/// compress, or garbage.
pub fn noise(seed: u64) -> impl Iterator<Item = u64> {
    let step = |&x: &u64| {
        let x = x ^ (x << 13);
        let x = x ^ (x >> 7);
        Some(x ^ (x << 17))
    };
    std::iter::successors(Some(seed), step).skip(1)
}

/// Messages are unique per test run so parallel tests never confuse theirs.
pub fn unique(label: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{label}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Check that the program behind `out` (`what`) exited 0, showing its
/// stderr otherwise.
/// Wait up to 10 s for a peer just started as `child` to take `port`
/// (`listening` says when), failing with what it logged (`log`) if it
/// exits first or never does.
pub fn wait_peer_listening(
    name: &str,
    child: &mut Child,
    port: u16,
    listening: impl Fn() -> bool,
    log: impl Fn() -> String,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !listening() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{name} exited ({status}): {}", log());
        }
        assert!(
            Instant::now() < deadline,
            "{name} does not listen on {port}: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A checker that prints nothing when all is well (a linter, a verifier):
/// it exits 0 and says nothing, on stdout or stderr, since even a warning
/// with exit 0 is a finding.
pub fn assert_silent_success(out: &Output, what: &str) {
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "{what}: {}\n{said}",
        out.status
    );
}

pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn socket_mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Wait up to 10 s until something accepts connections at `path`.
/// Wait up to 10 s for a daemon to answer on its query socket at `path`.
pub fn wait_answers(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if answers_stats(path) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Whether a stats request on the query socket at `path` gets its answer.
fn answers_stats(path: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(path) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut answer = Vec::new();
    s.write_all(b"{\"mode\":\"stats\"}\n").is_ok()
        && s.read_to_end(&mut answer).is_ok()
        && serde_json::from_slice::<serde_json::Value>(&answer).is_ok()
}

pub fn wait_socket(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if UnixStream::connect(path).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// The daemon's command with `--no-kmsg`, for tests that count what the
/// ring holds (the kernel's log would add its own lines).
pub fn ringlogd_command() -> Command {
    let mut c = Command::new(RINGLOGD);
    c.arg("--no-kmsg");
    c
}

/// A uid no account uses (`nobody`'s), for a reader or sender that is not
/// root.
pub const NOBODY: u32 = 65534;

/// Whether this test may act as other users (setpriv needs root). Under CI
/// it must: a missing requirement fails the test; elsewhere it is skipped,
/// saying why.
pub fn root_or_skip(what: &str) -> bool {
    if nix::unistd::getuid().is_root() {
        return true;
    }
    let why = format!("{what} needs root (setpriv to another user)");
    assert!(
        std::env::var_os("CI").is_none(),
        "{why}; CI must run the tests as root"
    );
    eprintln!("skipped: {why}");
    false
}

/// `setpriv` running its command as `uid`, with primary group `gid` and
/// no supplementary groups.
pub fn as_user(uid: u32, gid: u32) -> Command {
    as_user_in(uid, gid, &[])
}

/// Our logread against `d` as `uid` (primary group `gid`, supplementary
/// `groups`).
pub fn logread_as(d: &Daemon, uid: u32, gid: u32, groups: &[u32], args: &[&str]) -> Output {
    as_user_in(uid, gid, groups)
        .arg(LOGREAD)
        .arg("--socket")
        .arg(&d.query)
        .args(args)
        .output()
        .unwrap()
}

/// [`as_user`] with exactly the supplementary `groups`.
pub fn as_user_in(uid: u32, gid: u32, groups: &[u32]) -> Command {
    let mut c = Command::new(require("setpriv"));
    c.args(["--reuid", &uid.to_string(), "--regid", &gid.to_string()]);
    if groups.is_empty() {
        c.arg("--clear-groups");
    } else {
        let list: Vec<String> = groups.iter().map(u32::to_string).collect();
        c.args(["--groups", &list.join(",")]);
    }
    c
}

/// A Python another user can run: the one on PATH may live in root's home.
pub fn python_for_others() -> PathBuf {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .map(PathBuf::from)
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| require("python3"))
}

/// Send `payload` as one datagram to the socket at `path`, as `uid`.
pub fn send_datagram_as(uid: u32, path: &Path, payload: &[u8]) {
    const SEND: &str = "import socket, sys\n\
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
        s.sendto(sys.stdin.buffer.read(), sys.argv[1])";
    let mut child = as_user(uid, uid)
        .arg(python_for_others())
        .args(["-c", SEND])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("run python3 as another user");
    child.stdin.take().unwrap().write_all(payload).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "sending as uid {uid}: {status}");
}
