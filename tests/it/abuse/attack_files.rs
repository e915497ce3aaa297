//! The files ringlogd writes (the snapshot, its sequence mark, the pid
//! file) against a local attacker, and sequence numbers across every kind
//! of stop: private whatever the umask, never written through a symlink
//! another user planted in a shared directory, never loaded from a file
//! someone else could have written, a failed save an error and a failing
//! exit, and a follower's cursor never left pointing into the future.
//!
//! The attacker is a real other uid (`setpriv`), and files change hands
//! with chown, which needs root: under CI (root) that is required; elsewhere
//! those tests are skipped, saying why.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;
use serde_json::Value;

/// The attacker: nobody.
const ATTACKER: u32 = 65534;

/// The attacker plants a symlink `name` in `dir` that aims at `victim`:
/// its path.
fn plant_symlink(victim: &Path, dir: &Path, name: &str) -> PathBuf {
    let link = dir.join(name);
    run_ok(
        as_user(ATTACKER, ATTACKER)
            .arg(require("ln"))
            .arg("-s")
            .arg(victim)
            .arg(&link),
    );
    link
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// A directory every user can reach, for files other uids must see.
fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    dir
}

/// Where an attacker plants symlinks: in a directory every user can reach,
/// a root file `victim` the links aim at, and a sticky directory `shared`
/// anyone may write to, as /tmp is. (base, victim, shared); None
/// without root, which acting as the attacker needs ([`root_or_skip`]
/// says why).
fn victim_and_shared_dir() -> Option<(tempfile::TempDir, PathBuf, PathBuf)> {
    if !root_or_skip("planting symlinks as another user") {
        return None;
    }
    let base = open_tempdir();
    let victim = base.path().join("victim");
    fs::write(&victim, "precious\n").unwrap();
    let shared = base.path().join("shared");
    fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    Some((base, victim, shared))
}

/// Send `n` messages from `app`; return the entries once all are in.
fn log(d: &Daemon, app: &str, n: usize) -> Vec<Value> {
    for i in 0..n {
        d.send(format!("<13>Dec  7 06:00:00 {app}: {app} message {i}").as_bytes());
    }
    let entries = d.wait_for(&format!("{n} from {app}"), |e| {
        e.iter().filter(|v| v["app"] == app).count() == n
    });
    entries.into_iter().filter(|v| v["app"] == app).collect()
}

fn seq(e: &Value) -> u64 {
    e["seq"].as_u64().unwrap()
}

/// What a follower that saw everything up to `cursor` gets on resuming.
fn resume(d: &Daemon, cursor: u64) -> Vec<Value> {
    let out = d.logread(&["--after-seq", &cursor.to_string(), "-o", "json"]);
    assert!(out.status.success(), "{out:?}");
    parse_lines(&out.stdout)
}

/// Log 20 entries `new` and check that a follower resuming after `cursor`
/// gets exactly them; they are returned.
fn assert_resumes_after(d: &Daemon, cursor: u64) -> Vec<Value> {
    let new = log(d, "new", 20);
    let got: Vec<Value> = resume(d, cursor)
        .into_iter()
        .filter(|v| v["app"] == "new")
        .collect();
    assert_eq!(got, new, "every new entry, after the cursor");
    new
}

/// The entries of `app` the ring holds.
fn entries_of_app(d: &Daemon, app: &str) -> Vec<Value> {
    d.dump().into_iter().filter(|v| v["app"] == app).collect()
}

/// How many entries of `app` the ring holds.
fn count_app(d: &Daemon, app: &str) -> usize {
    entries_of_app(d, app).len()
}

/// Log 5 entries `before` into `d` (started with a snapshot) and stop it
/// cleanly, saving them.
fn seed_snapshot(d: Daemon) {
    log(&d, "before", 5);
    assert!(d.stop().success());
}

fn snapshot_args(snap: &Path) -> Vec<&str> {
    vec!["--snapshot", snap.to_str().unwrap()]
}

/// A snapshot's path in a new temporary directory (the first of the pair).
fn snapshot_in_tempdir() -> (tempfile::TempDir, PathBuf) {
    let keep = tempfile::tempdir().unwrap();
    let snap = keep.path().join("ring.snapshot");
    (keep, snap)
}

/// `PATH.seq`, where the sequence mark of the snapshot at PATH is kept.
fn mark_of(snap: &Path) -> PathBuf {
    PathBuf::from(format!("{}.seq", snap.display()))
}

// ---- the snapshot's file ---------------------------------------------------

#[test]
fn the_snapshot_and_its_mark_are_private_whatever_the_umask() {
    let (_keep, snap) = snapshot_in_tempdir();
    let d = Daemon::start_under(
        &["sh", "-c", "umask 000 && exec \"$0\" \"$@\""],
        &snapshot_args(&snap),
    );
    log(&d, "secret", 5);
    assert!(d.stop().success());
    assert_eq!(mode(&snap), 0o600, "the snapshot holds every entry's text");
    assert_eq!(mode(&mark_of(&snap)), 0o600);
}

#[test]
fn symlinks_planted_in_a_sticky_directory_are_never_followed() {
    let Some((_base, victim, shared)) = victim_and_shared_dir() else {
        return;
    };
    let snap = shared.join("ring.snapshot");
    // Every name a save might write first, and the files themselves.
    let planted = [
        "ring.tmp",
        "ring.snapshot.tmp",
        ".ring.snapshot.tmp",
        "ring.snapshot.seq",
        "ring.snapshot.seq.tmp",
    ];
    for name in planted {
        plant_symlink(&victim, &shared, name);
    }
    let d = Daemon::start_with_kmsg(&[&["--no-kmsg"], &snapshot_args(&snap)[..]].concat());
    let before = log(&d, "private", 10);
    assert!(d.stop().success());

    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    for file in [snap.clone(), mark_of(&snap)] {
        let meta = fs::symlink_metadata(&file).unwrap();
        assert!(
            meta.is_file(),
            "{} is the daemon's own file",
            file.display()
        );
        assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o600));
    }
    let d = Daemon::start(&snapshot_args(&snap));
    let loaded = entries_of_app(&d, "private");
    assert_eq!(loaded, before, "the snapshot loads");
}

#[test]
fn a_snapshot_others_could_write_is_refused_and_one_they_could_read_is_made_private() {
    if !root_or_skip(
        "a_snapshot_others_could_write_is_refused_and_one_they_could_read_is_made_private",
    ) {
        return;
    }
    let keep = open_tempdir();
    let snap = keep.path().join("ring.snapshot");
    let d = Daemon::start(&snapshot_args(&snap));
    let saved = log(&d, "kept", 3);
    assert!(d.stop().success());
    let good = fs::read(&snap).unwrap();

    // Another user's file: whatever it says could be forged.
    std::os::unix::fs::chown(&snap, Some(ATTACKER), Some(ATTACKER)).unwrap();
    let d = Daemon::start_with_kmsg(&[&["--no-kmsg"], &snapshot_args(&snap)[..]].concat());
    let warning = d.entry_with_msg(&format!(
        "--snapshot {0}: refused: {0} belongs to uid {ATTACKER}, not to root or ringlogd's user, \
         so anyone could have written it; it is replaced at the next clean stop; starting with \
         an empty ring",
        snap.display()
    ));
    assert_eq!(warning["severity"], "warning");
    assert_eq!(count_app(&d, "kept"), 0);
    drop(d);

    // Root's, but others may write to it.
    fs::remove_file(&snap).unwrap();
    fs::write(&snap, &good).unwrap();
    chmod(&snap, 0o666);
    let d = Daemon::start(&snapshot_args(&snap));
    d.wait_for("the refusal", |e| {
        e.iter()
            .any(|v| v["msg"].as_str().unwrap().contains("others may write to"))
    });
    assert_eq!(count_app(&d, "kept"), 0);
    drop(d);

    // Readable by others (copied with a loose umask): loaded, made private.
    chmod(&snap, 0o644);
    let d = Daemon::start(&snapshot_args(&snap));
    d.entry_with_msg(&format!(
        "--snapshot {0}: {0} was readable by others (mode 0644); made it private (0600)",
        snap.display()
    ));
    let loaded = entries_of_app(&d, "kept");
    assert_eq!(loaded, saved);
    assert_eq!(mode(&snap), 0o600);
}

#[test]
fn a_snapshot_path_ending_in_tmp_is_saved_whole_and_loaded() {
    let keep = tempfile::tempdir().unwrap();
    let snap = keep.path().join("x.tmp");
    let d = Daemon::start(&snapshot_args(&snap));
    let saved = log(&d, "dottmp", 10);
    assert!(d.stop().success());
    let d = Daemon::start(&snapshot_args(&snap));
    let loaded = entries_of_app(&d, "dottmp");
    assert_eq!(loaded, saved);
    let mut names: Vec<String> = fs::read_dir(keep.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["x.tmp", "x.tmp.seq"], "no temporary file left");
}

#[test]
fn a_stale_temporary_file_is_removed_at_start() {
    let (keep, snap) = snapshot_in_tempdir();
    // What a save killed halfway leaves: its temporary name, half written.
    let stale = keep.path().join(".ring.snapshot.tmp.4242.00c0ffee00c0ffee");
    let stale_mark = keep
        .path()
        .join(".ring.snapshot.seq.tmp.4242.0123456789abcdef");
    fs::write(&stale, b"RLSNAPSH half").unwrap();
    fs::write(&stale_mark, b"12").unwrap();
    let d = Daemon::start(&snapshot_args(&snap));
    for p in [&stale, &stale_mark] {
        d.entry_with_msg(&format!(
            "removed {}, left by a save that did not finish",
            p.display()
        ));
        assert!(!p.exists());
    }
}

/// A tmpfs of 64 KiB, unmounted when dropped: a filesystem that fills up.
struct TinyFs(tempfile::TempDir);

impl TinyFs {
    fn mount() -> TinyFs {
        let dir = tempfile::tempdir().unwrap();
        run_ok(
            Command::new(require("mount"))
                .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "ringlogd-test"])
                .arg(dir.path()),
        );
        TinyFs(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// Send `n` entries of 100 bytes that do not compress.
fn send_noise(d: &Daemon, app: &str, n: usize) {
    let mut bits = noise(0x2545_f491_4f6c_dd1d);
    for i in 0..n {
        let noise: String = bits.by_ref().take(6).map(|x| format!("{x:016x}")).collect();
        d.send(format!("<13>Dec  7 06:00:00 {app}: {i} {noise}").as_bytes());
    }
}

/// The snapshot's filesystem fills up while it is saved (ENOSPC from
/// write): an error and a failing exit; the previous snapshot stays whole,
/// even under a name that ends in `.tmp`; and a follower that read what the
/// failed run held gets every entry of the next.
#[test]
fn a_save_that_runs_out_of_space_fails_the_exit_and_loses_no_number() {
    if !root_or_skip("a_save_that_runs_out_of_space_fails_the_exit_and_loses_no_number") {
        return;
    }
    let tiny = TinyFs::mount();
    let snap = tiny.path().join("ring.tmp");
    let args = [&["--no-kmsg"], &snapshot_args(&snap)[..]].concat();
    seed_snapshot(Daemon::start_with_kmsg(&args));
    let previous = fs::read(&snap).unwrap();

    // A route that forwards errors: the failed save reaches it.
    let errors = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let route = format!("udp://{}?priority=err", errors.local_addr().unwrap());
    let d = Daemon::start_with_kmsg(&[&args[..], &["--route", &route]].concat());
    // 2000 entries of 100 bytes: far more than 64 KiB.
    send_noise(&d, "bulk", 2000);
    d.wait_until("2000 entries", |d| {
        d.stats()["sources"]["bulk"]["stored"].as_u64() == Some(2000)
    });
    let cursor = seq(d.dump().last().unwrap());
    let (status, stderr) = d.stop_with_stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "ringlogd: --snapshot {}: cannot write",
            snap.display()
        )) && stderr.contains("No space left on device"),
        "{stderr}"
    );
    errors
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let n = errors.recv(&mut buf).expect("the error reaches the route");
    let forwarded = String::from_utf8_lossy(&buf[..n]);
    assert!(forwarded.contains("No space left on device"), "{forwarded}");
    assert_eq!(fs::read(&snap).unwrap(), previous, "the previous snapshot");

    let d = Daemon::start_with_kmsg(&args);
    assert_resumes_after(&d, cursor);
    assert_eq!(count_app(&d, "before"), 5, "the previous snapshot loads");
}

// ---- the pid file ----------------------------------------------------------

#[test]
fn the_pidfile_is_never_written_through_a_symlink() {
    let Some((_base, victim, shared)) = victim_and_shared_dir() else {
        return;
    };
    let pidfile = plant_symlink(&victim, &shared, "ringlogd.pid");
    let d = Daemon::start(&["--pidfile", pidfile.to_str().unwrap()]);
    // Answered only once the loop runs: the pid file is written by then.
    d.dump();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    let meta = fs::symlink_metadata(&pidfile).unwrap();
    assert!(meta.is_file());
    // No log data in it: readable by init scripts and monitors.
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o644));
    assert_eq!(
        fs::read_to_string(&pidfile).unwrap(),
        format!("{}\n", d.pid())
    );
    assert!(d.stop().success());
    assert!(!pidfile.exists(), "removed at exit");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
}

// ---- sequence numbers ------------------------------------------------------

#[test]
fn a_clean_stop_and_start_go_on_with_the_next_number() {
    let (_keep, snap) = snapshot_in_tempdir();
    let d = Daemon::start(&snapshot_args(&snap));
    let last = seq(log(&d, "first", 5).last().unwrap());
    assert!(d.stop().success());
    let d = Daemon::start(&snapshot_args(&snap));
    let started = d
        .dump()
        .into_iter()
        .find(|v| {
            v["msg"]
                .as_str()
                .unwrap()
                .starts_with("memlogd started; loaded")
        })
        .unwrap();
    assert_eq!(seq(&started), last + 1, "no gap after a clean stop");
}

/// The reproduction: a clean stop with --snapshot, a start that loads it,
/// 50 entries read by a follower, kill -9, a start, 20 new entries.
#[test]
fn a_follower_gets_every_new_entry_after_a_crash_that_followed_a_restore() {
    let (_keep, snap) = snapshot_in_tempdir();
    seed_snapshot(Daemon::start(&snapshot_args(&snap)));

    let d = Daemon::start(&snapshot_args(&snap));
    let seen = log(&d, "seen", 50);
    let cursor = seq(seen.last().unwrap());
    signal(d.pid(), "KILL");
    drop(d);

    let d = Daemon::start(&snapshot_args(&snap));
    let new = assert_resumes_after(&d, cursor);
    assert!(seq(&new[0]) > cursor);
    // At this rate a crash costs at most one block of 1000 numbers.
    assert!(
        seq(&new[0]) <= cursor + 1000,
        "{} after {cursor}",
        seq(&new[0])
    );
    assert_eq!(count_app(&d, "before"), 5, "the snapshot was loaded");
}

/// A save that fails (the directory no longer writable by the user the
/// daemon runs as) leaves the previous snapshot: entries resume above
/// every number the failed run gave.
#[test]
fn a_follower_gets_every_new_entry_after_a_failed_save() {
    if !root_or_skip("a_follower_gets_every_new_entry_after_a_failed_save") {
        return;
    }
    let keep = open_tempdir();
    let state = keep.path().join("state");
    fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(ATTACKER), Some(ATTACKER)).unwrap();
    chmod(&state, 0o700);
    let snap = state.join("ring.snapshot");
    let args = [
        &["--no-kmsg", "--user", "nobody"],
        &snapshot_args(&snap)[..],
    ]
    .concat();

    seed_snapshot(Daemon::start_with_kmsg(&args));
    assert_eq!(
        fs::metadata(&snap).unwrap().uid(),
        ATTACKER,
        "written as nobody"
    );

    let d = Daemon::start_with_kmsg(&args);
    let seen = log(&d, "seen", 50);
    let cursor = seq(seen.last().unwrap());
    chmod(&state, 0o500);
    let (status, stderr) = d.stop_with_stderr();
    assert_eq!(
        status.code(),
        Some(1),
        "a failed save fails the exit: {stderr}"
    );
    assert!(
        stderr.contains(&format!("ringlogd: --snapshot {}: cannot", snap.display()))
            && stderr.contains("Permission denied"),
        "{stderr}"
    );

    chmod(&state, 0o700);
    let d = Daemon::start_with_kmsg(&args);
    assert_resumes_after(&d, cursor);
    assert_eq!(count_app(&d, "before"), 5, "the previous snapshot is whole");
}

/// A re-exec hands the ring over with its own counter (no gap); the
/// successor keeps the mark, so a crash after it still resumes above.
#[test]
fn a_follower_gets_every_new_entry_after_a_crash_that_followed_a_reexec() {
    let (_keep, snap) = snapshot_in_tempdir();
    seed_snapshot(Daemon::start(&snapshot_args(&snap)));

    let d = Daemon::start(&snapshot_args(&snap));
    let pre = seq(log(&d, "pre", 10).last().unwrap());
    signal(d.pid(), "USR2");
    d.wait_for("the re-exec", |e| {
        e.iter()
            .any(|v| v["msg"].as_str().unwrap().starts_with("re-executed"))
    });
    let post = log(&d, "post", 10);
    assert!(seq(&post[0]) < pre + 10, "no gap at a re-exec: {post:?}");
    let cursor = seq(post.last().unwrap());
    signal(d.pid(), "KILL");
    drop(d);

    let d = Daemon::start(&snapshot_args(&snap));
    assert_resumes_after(&d, cursor);
}
