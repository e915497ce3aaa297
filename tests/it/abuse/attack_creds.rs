//! What a local user on the same machine cannot do through the daemon's
//! sockets, its start-up, its signals or its re-exec: get root's messages
//! attributed to itself, steer where the sockets are created, pause the
//! ring, or make an upgrade lose it.
//!
//! The attacker runs as another uid with `setpriv`, which needs root:
//! under CI (root) that is required; elsewhere those tests are skipped,
//! saying why.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::Value;

/// The uid the kernel's placeholder credentials name (the overflow uid),
/// and the attacker's.
const NOBODY: u32 = 65534;
/// Messages the early sender sends: many more than the socket queues
/// (net.unix.max_dgram_qlen, 10 to 512), so some are always queued before
/// the daemon first reads.
const EARLY: usize = 600;

/// A sender, as root, that starts before the daemon: it retries sendto on
/// `log` until the socket is there, then sends [`EARLY`] numbered messages
/// `early: TAG N` as fast as the socket takes them (blocking when full).
fn early_sender(log: &Path, tag: &str) -> Child {
    let script = r#"
import os, socket, sys, time
path, tag, n = os.environ["EARLY_LOG"], sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
deadline = time.time() + 30
i = tries = 0
while i < n:
    try:
        s.sendto(("<13>early: %s %d" % (tag, i)).encode(), path)
        i += 1
    except (FileNotFoundError, ConnectionRefusedError):
        if tries == 0:
            print("retrying", flush=True)
        tries += 1
        # No sleep: the first datagram goes the moment the path is bound.
        if time.time() > deadline:
            sys.exit("the socket never appeared")
"#;
    let mut child = Command::new(require("python3"))
        .args(["-c", script])
        // Not on its command line, where the daemon's directory must be
        // found once (pid_with_arg).
        .env("EARLY_LOG", log)
        .arg(tag)
        .arg(EARLY.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the early sender");
    // Its first try failed: it is retrying before the daemon binds.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "retrying\n");
    child
}

/// Entries in the snapshot the early tests start from.
const FILL: u64 = 20_000;

/// A snapshot of a ring of [`FILL`] entries, for a daemon that restarts
/// with `--snapshot`: it loads it before it serves, as part of its start.
fn filled_snapshot(keep: &Path) -> PathBuf {
    let snap = keep.join("ring.snapshot");
    let d = Daemon::start(&["--snapshot", snap.to_str().unwrap()]);
    let pad = "x".repeat(300);
    for i in 0..FILL {
        d.send(format!("<13>fill: {i} {pad}").as_bytes());
    }
    d.wait_for_counters("syslog", |c| c["received"].as_u64() == Some(FILL));
    assert!(d.stop().success());
    assert!(snap.exists(), "a clean stop writes the snapshot");
    snap
}

/// Our logread's JSON dump of the daemon on `query`, as `uid` (None: as
/// this process, root).
fn read_as(query: &Path, uid: Option<u32>) -> Vec<Value> {
    let mut c = match uid {
        Some(uid) => {
            let mut c = as_user(uid, uid);
            c.arg(LOGREAD);
            c
        }
        None => Command::new(LOGREAD),
    };
    let out = run_ok(c.arg("--socket").arg(query).arg("--json"));
    parse_lines(&out.stdout)
}

/// Wait for the early sender to finish and every message to be stored,
/// then check what a user would: no entry has a sender the kernel did not
/// vouch for, every early message is root's, and `nobody` reads none.
fn check_early_messages(query: &Path, sender: &mut Child, tag: &str) {
    let status = wait_timeout(sender, Duration::from_secs(30));
    assert!(status.success(), "the early sender: {status}");
    let prefix = format!("{tag} ");
    let deadline = Instant::now() + Duration::from_secs(10);
    let entries = loop {
        let all = read_as(query, None);
        let early: Vec<Value> = all
            .into_iter()
            .filter(|e| e["msg"].as_str().is_some_and(|m| m.starts_with(&prefix)))
            .collect();
        if early.len() == EARLY {
            break early;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {EARLY} early messages stored",
            early.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let made_up: Vec<&Value> = entries
        .iter()
        .filter(|e| e["peer"]["pid"] == 0 || e["peer"]["uid"] == NOBODY)
        .collect();
    assert!(
        made_up.is_empty(),
        "{} of {EARLY} early messages carry a sender the kernel never vouched for, e.g. {}",
        made_up.len(),
        made_up[0]
    );
    // The socket passes credentials from before it could receive: every
    // one of root's messages is root's.
    let not_root: Vec<&Value> = entries.iter().filter(|e| e["peer"]["uid"] != 0).collect();
    assert!(
        not_root.is_empty(),
        "{} of {EARLY} early messages are not root's, e.g. {}",
        not_root.len(),
        not_root[0]
    );
    let seen = read_as(query, Some(NOBODY));
    assert!(
        seen.is_empty(),
        "nobody reads {} entries, e.g. {}",
        seen.len(),
        seen[0]
    );
}

/// What the early-message tests start from: a runtime directory others can
/// reach, a snapshot to load (so that the start takes a while), and an
/// [`early_sender`] tagged `label` already retrying on its `/dev/log`.
struct EarlyStart {
    dir: tempfile::TempDir,
    /// Holds the snapshot.
    _keep: tempfile::TempDir,
    snap: PathBuf,
    tag: String,
    sender: Child,
}

fn early_start(label: &str) -> EarlyStart {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let keep = tempfile::tempdir().unwrap();
    let snap = filled_snapshot(keep.path());
    let tag = unique(label);
    let sender = early_sender(&dir.path().join("log"), &tag);
    EarlyStart {
        dir,
        _keep: keep,
        snap,
        tag,
        sender,
    }
}

#[test]
fn messages_sent_while_the_daemon_starts_are_never_anyone_else_s() {
    if !root_or_skip("reading as nobody") {
        return;
    }
    let mut early = early_start("start");
    let d = Daemon::start_in(
        early.dir,
        &[
            "--query-mode",
            "0666",
            "--snapshot",
            early.snap.to_str().unwrap(),
        ],
    );
    check_early_messages(&d.query, &mut early.sender, &early.tag);
}

#[test]
fn messages_sent_while_a_daemonizing_daemon_starts_are_never_anyone_else_s() {
    if !root_or_skip("reading as nobody") {
        return;
    }
    let mut early = early_start("daemonize");
    let dir = early.dir.path();
    run_ok(
        ringlogd_command()
            .arg("--runtime-dir")
            .arg(dir)
            .args(["--daemonize", "--query-mode", "0666", "--snapshot"])
            .arg(&early.snap)
            .stdin(Stdio::null()),
    );
    let daemon = Detached(pid_with_arg(dir));
    check_early_messages(&dir.join("memlogdq.sock"), &mut early.sender, &early.tag);
    daemon.stop();
}

#[test]
fn datagrams_queued_on_an_inherited_socket_are_no_one_s() {
    if !root_or_skip("reading as nobody") {
        return;
    }
    // The parent binds the syslog socket without asking for credentials,
    // root logs to it, and only then does the parent exec the daemon with
    // the socket as --fd-syslog: those datagrams carry no credentials.
    let parent = r#"
import os, socket, sys
argv = sys.argv[1:]
path = os.path.join(argv[argv.index("--runtime-dir") + 1], "inherited.sock")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
tx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for i in range(5):
    tx.sendto(("<13>queued: before the daemon %d" % i).encode(), path)
os.set_inheritable(s.fileno(), True)
os.execv(argv[0], argv + ["--fd-syslog", str(s.fileno())])
"#;
    let python = require("python3");
    let d = Daemon::start_under(
        &[python.to_str().unwrap(), "-c", parent],
        &["--query-mode", "0666"],
    );
    d.open_dir();
    let inherited = d.dir.path().join("inherited.sock");
    let after = unique("after");
    send_datagram(&inherited, format!("<13>queued: {after}").as_bytes());
    let entries = d.wait_for("6 messages", |e| {
        e.iter().filter(|v| v["app"] == "queued").count() == 6
    });
    let queued: Vec<&Value> = entries.iter().filter(|v| v["app"] == "queued").collect();
    for e in &queued[..5] {
        assert!(
            e.get("peer").is_none(),
            "no sender the kernel vouched for: {e}"
        );
    }
    assert_eq!(queued[5]["msg"], after.as_str());
    assert_eq!(queued[5]["peer"]["uid"], 0, "credentials are on now");
    let seen = read_as(&d.query, Some(NOBODY));
    assert!(seen.is_empty(), "nobody reads {seen:?}");
}

/// Start the daemon with `--runtime-dir dir`; its exit code and stderr if
/// it refuses to start, else `None` once it served (and was stopped).
fn start_with_runtime_dir(dir: &Path) -> Option<(Option<i32>, String)> {
    let mut child = ringlogd_command()
        .arg("--runtime-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let query = dir.join("memlogdq.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return Some((status.code(), err));
        }
        if std::os::unix::net::UnixStream::connect(&query).is_ok() {
            signal(child.id(), "TERM");
            assert!(wait_timeout(&mut child, Duration::from_secs(10)).success());
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("ringlogd neither served nor exited");
}

#[test]
fn a_runtime_dir_through_another_user_s_symlink_is_refused() {
    if !root_or_skip("a symlink of another user") {
        return;
    }
    // A sticky directory everyone may write to, as /tmp.
    let top = tempfile::tempdir().unwrap();
    fs::set_permissions(top.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    // Root's own directory, somewhere the attacker wants root's sockets.
    let roots = tempfile::tempdir().unwrap();
    let theirs = top.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    nix::unistd::chown(&theirs, Some(NOBODY.into()), Some(NOBODY.into())).unwrap();
    for (name, target) in [("X", theirs.as_path()), ("Y", roots.path())] {
        let link = top.path().join(name);
        run_ok(
            as_user(NOBODY, NOBODY)
                .arg("ln")
                .arg("-s")
                .arg(target)
                .arg(&link),
        );
        let (code, err) = start_with_runtime_dir(&link).expect("refused");
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains(&format!("refusing to follow {}", link.display()))
                && err.contains(&format!("uid {NOBODY}")),
            "{err}"
        );
        assert_eq!(
            fs::read_dir(target).unwrap().count(),
            0,
            "nothing created through {name}"
        );
    }
    // Root's own symlink in the same directory is followed.
    let link = top.path().join("Z");
    std::os::unix::fs::symlink(roots.path(), &link).unwrap();
    assert_eq!(start_with_runtime_dir(&link), None, "root's symlink works");
}

/// Send SIGUSR1 to `pid` as `nobody`, as any process of the daemon's user
/// under `--user nobody` may.
fn sigusr1_as_nobody(pid: u32) {
    run_ok(as_user(NOBODY, NOBODY).args(["kill", "-USR1", &pid.to_string()]));
}

#[test]
fn with_no_signal_control_the_daemon_s_user_cannot_pause_it() {
    if !root_or_skip("signalling as nobody") {
        return;
    }
    let d = Daemon::start(&["--user", "nobody", "--no-signal-control"]);
    d.entry_starting("running as nobody");
    sigusr1_as_nobody(d.pid());
    let refusal = d.entry_starting("ignored SIGUSR1");
    let msg = refusal["msg"].as_str().unwrap();
    assert!(msg.contains(&format!("uid {NOBODY}")), "{msg}");
    assert_eq!(refusal["severity"], "warning");
    assert_eq!(d.stats()["paused"], false);
    let after = unique("after-usr1");
    d.send(format!("<13>still: {after}").as_bytes());
    d.entry_with_msg(&after);
    assert_eq!(d.stats()["paused"], false);
    // Root still controls it by signal.
    signal(d.pid(), "USR1");
    d.wait_until("root's pause", |d| d.stats()["paused"] == true);
}

#[test]
fn without_no_signal_control_the_daemon_s_user_can_pause_it() {
    if !root_or_skip("signalling as nobody") {
        return;
    }
    let d = Daemon::start(&["--user", "nobody"]);
    d.entry_starting("running as nobody");
    sigusr1_as_nobody(d.pid());
    d.wait_until("the pause", |d| d.stats()["paused"] == true);
    let lost = unique("while-paused");
    d.send(format!("<13>lost: {lost}").as_bytes());
    d.wait_for_counters("syslog", |c| c["dropped"].as_u64() >= Some(1));
    assert!(!d.dump().iter().any(|e| e["msg"] == lost.as_str()));
}

/// What the upgrade tests do with a [`CopiedDaemon`].
impl CopiedDaemon {
    /// Put `content` at the program's path with `mode`, as a new file.
    /// Replace the program with `content`: written to a file that is
    /// never run, then installed by a child (see `install_program`).
    fn replace(&self, content: &[u8], mode: u32) {
        let new = self.bin.path().join("ringlogd.new");
        fs::write(&new, content).unwrap();
        install_program(&new, &self.exe(), mode);
    }

    fn send(&self, msg: &str) {
        send_datagram(&self.dir.path().join("log"), msg.as_bytes());
    }

    /// SIGUSR2, then the ring once it holds more than `before` entries
    /// starting with `prefix`; the daemon must still run.
    fn reexec_until(&self, prefix: &str, before: usize) -> Vec<Value> {
        signal(self.child.id(), "USR2");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            assert!(is_running(self.child.id()), "the daemon is gone");
            // A connection may meet the exec: then ask again.
            if let Some(entries) = dump_across_exec(&self.query()) {
                if count(&entries, prefix) > before {
                    return entries;
                }
            }
            assert!(Instant::now() < deadline, "no {prefix:?} entry within 15 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn count(entries: &[Value], prefix: &str) -> usize {
    entries.iter().filter(|e| msg_starts(e, prefix)).count()
}

#[test]
fn a_reexec_onto_a_program_that_would_not_run_is_refused_and_keeps_the_ring() {
    let d = CopiedDaemon::start();
    let good = fs::read(RINGLOGD).unwrap();
    let kept: Vec<String> = (0..20).map(|i| unique(&format!("kept-{i}"))).collect();
    for m in &kept {
        d.send(&format!("<13>before: {m}"));
    }
    let broken: [(&str, Vec<u8>, u32, &str); 3] = [
        (
            "a script that exits 1",
            b"#!/bin/sh\nexit 1\n".to_vec(),
            0o755,
            "not an ELF program",
        ),
        ("a truncated ELF", good[..4096].to_vec(), 0o755, "--version"),
        (
            "a file without execute permission",
            good.clone(),
            0o644,
            "not executable",
        ),
    ];
    for (i, (what, content, mode, why)) in broken.into_iter().enumerate() {
        d.replace(&content, mode);
        let entries = d.reexec_until("cannot re-execute", i);
        let refusal = entries
            .iter()
            .filter(|e| msg_starts(e, "cannot re-execute"))
            .nth(i)
            .unwrap();
        let msg = refusal["msg"].as_str().unwrap();
        assert_eq!(refusal["severity"], "err", "{what}: {msg}");
        assert!(
            msg.contains(why) && msg.ends_with("; running on"),
            "{what}: {msg}"
        );
        assert_eq!(entries[0]["msg"], "memlogd started", "{what}: ring intact");
        for m in &kept {
            assert!(
                entries.iter().any(|e| e["msg"] == m.as_str()),
                "{what}: {m} lost"
            );
        }
        let after = unique("after-refusal");
        d.send(&format!("<13>after: {after}"));
        let q = d.query();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !dump_across_exec(&q).is_some_and(|e| e.iter().any(|v| v["msg"] == after.as_str())) {
            assert!(Instant::now() < deadline, "{what}: ingest stopped");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // The real program re-executes as before, the ring intact.
    d.replace(&good, 0o755);
    let entries = d.reexec_until("re-executed", 0);
    for m in &kept {
        assert!(entries.iter().any(|e| e["msg"] == m.as_str()), "{m} lost");
    }
    assert_eq!(entries[0]["msg"], "memlogd started");
}
