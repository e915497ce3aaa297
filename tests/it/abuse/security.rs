//! Who can read the log, and what the daemon does with paths others can
//! touch: --query-mode and --query-group, readers narrowed to their own
//! entries by the kernel's word on who they are (SO_PEERCRED), and socket
//! creation that no symlink or swapped file can turn against a file.
//!
//! Readers and senders run as other users with `setpriv`, which needs root:
//! under CI (root) that is required; elsewhere those tests are skipped,
//! saying why.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;

use crate::support::*;
use serde_json::Value;

/// A group no account uses, for --query-group.
const READERS: u32 = 4242;
/// A query socket every user may connect to, with a query group none of
/// the readers below is in.
const OPEN_TO_ALL: &[&str] = &["--query-mode", "0666", "--query-group", "4242"];

const ALICE: u32 = 65534;
const BOB: u32 = 65533;
const CAROL: u32 = 65532;

/// Send one message as `uid` with logger; returns its text.
fn send_as(d: &Daemon, uid: u32) -> String {
    let msg = unique(&format!("from-{uid}"));
    d.logger_as(uid, &["-t", "sec", &msg]);
    d.entry_with_msg(&msg);
    msg
}

/// The entries a reader gets as JSON lines.
fn read_as(d: &Daemon, uid: u32, gid: u32, groups: &[u32]) -> Vec<Value> {
    let out = logread_as(d, uid, gid, groups, &["--json"]);
    assert_success(&out, &format!("logread as {uid}"));
    parse_lines(&out.stdout)
}

fn msgs(entries: &[Value]) -> Vec<&str> {
    entries.iter().map(|e| e["msg"].as_str().unwrap()).collect()
}

#[test]
fn query_mode_and_group_are_applied_and_the_defaults_stay_closed() {
    let d = Daemon::start(&[]);
    assert_eq!(socket_mode(&d.log), 0o666);
    assert_eq!(socket_mode(&d.query), 0o600);
    assert_eq!(socket_mode(&d.intake), 0o600);
    drop(d);

    if !root_or_skip("giving the query socket to another group") {
        return;
    }
    let d = Daemon::start(&["--query-group", &READERS.to_string()]);
    assert_eq!(socket_mode(&d.query), 0o660, "the group's default mode");
    assert_eq!(fs::metadata(&d.query).unwrap().gid(), READERS);
    assert_eq!(
        socket_mode(&d.intake),
        0o600,
        "the intake socket is unchanged"
    );
    drop(d);
    let d = Daemon::start(&["--query-group", "4242", "--query-mode", "0640"]);
    assert_eq!(socket_mode(&d.query), 0o640);
    assert_eq!(fs::metadata(&d.query).unwrap().gid(), READERS);
}

#[test]
fn a_user_the_socket_mode_leaves_out_cannot_read_at_all() {
    let Some(d) = Daemon::start_for_others("reading as another user", &[]) else {
        return;
    };
    let out = logread_as(&d, ALICE, ALICE, &[], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ermission denied"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_reader_outside_the_query_group_sees_only_what_it_sent() {
    let Some(d) = Daemon::start_for_others("reading as other users", OPEN_TO_ALL) else {
        return;
    };
    let from_root = unique("from-root");
    d.send(format!("<13>Nov 21 23:40:10 sec: {from_root}").as_bytes());
    d.entry_with_msg(&from_root);
    let from_alice = send_as(&d, ALICE);
    let from_bob = send_as(&d, BOB);
    // A message that names another uid or pid in its text changes nothing.
    let liar = unique("liar");
    d.logger_as(BOB, &["--id=1", "-t", "root", &format!("uid=0 {liar}")]);
    d.entry_with_msg(&format!("uid=0 {liar}"));

    let alice = read_as(&d, ALICE, ALICE, &[]);
    assert_eq!(
        msgs(&alice),
        [from_alice.as_str()],
        "alice sees her own only"
    );
    assert_eq!(alice[0]["peer"]["uid"], ALICE);
    let bob = read_as(&d, BOB, BOB, &[]);
    assert_eq!(
        msgs(&bob),
        [from_bob.clone(), format!("uid=0 {liar}")],
        "bob sees his own only"
    );

    // The query group, as the primary or a supplementary group, and root
    // read everything: the start entry, root's, alice's and bob's.
    let all = d.dump();
    assert!(all.len() >= 5, "{all:?}");
    for (gid, groups) in [(READERS, &[][..]), (CAROL, &[READERS][..])] {
        let got = read_as(&d, CAROL, gid, groups);
        assert_eq!(
            msgs(&got),
            msgs(&all),
            "carol in the group (gid {gid}, {groups:?})"
        );
    }
    let carol = read_as(&d, CAROL, CAROL, &[]);
    assert!(
        carol.is_empty(),
        "carol outside the group sent nothing: {carol:?}"
    );

    // Every dialect: the memlogd mode byte, a JSON filter, HTTP.
    let text = logread_as(&d, ALICE, ALICE, &[], &[]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains(&from_alice));
    let curl = as_user(ALICE, ALICE)
        .arg(require("curl"))
        .args(["-s", "--unix-socket"])
        .arg(&d.query)
        .arg("http://localhost/logs?format=cat")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(curl.stdout).unwrap(),
        format!("{from_alice}\n")
    );
    let tail = logread_as(&d, ALICE, ALICE, &[], &["-n", "5", "-o", "cat"]);
    assert_eq!(
        String::from_utf8(tail.stdout).unwrap(),
        format!("{from_alice}\n")
    );
}

#[test]
fn a_restricted_follower_gets_only_its_own_new_entries() {
    let Some(d) = Daemon::start_for_others("following as another user", &["--query-mode", "0666"])
    else {
        return;
    };
    let mut follower = as_user(ALICE, ALICE)
        .arg(LOGREAD)
        .arg("--socket")
        .arg(&d.query)
        .args(["-f", "-o", "cat"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    d.wait_until("the follower", |d| d.stats()["queries"]["followers"] == 1);
    let bob = send_as(&d, BOB);
    let alice = send_as(&d, ALICE);
    d.send(b"<13>Nov 21 23:40:10 sec: from root while following");
    let last = send_as(&d, ALICE);
    // Alice's two lines, and nothing else in between.
    let mut out = follower.stdout.take().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(&last) {
        let n = std::io::Read::read(&mut out, &mut buf).unwrap();
        assert!(n > 0, "the follower ended");
        got.extend_from_slice(&buf[..n]);
    }
    signal(follower.id(), "TERM");
    let _ = follower.wait();
    assert_eq!(
        String::from_utf8(got).unwrap(),
        format!("{alice}\n{last}\n")
    );
    assert!(!bob.is_empty());
}

#[test]
fn a_restricted_reader_may_not_pause_clear_or_resume() {
    let Some(d) = Daemon::start_for_others("controls as another user", OPEN_TO_ALL) else {
        return;
    };
    let mine = send_as(&d, ALICE);
    let before = d.dump().len();
    for flag in ["--clear", "--pause", "--resume"] {
        let out = logread_as(&d, ALICE, ALICE, &[], &[flag]);
        assert_eq!(out.status.code(), Some(1), "{flag}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("only root"), "{flag}: {err}");
    }
    assert_eq!(d.dump().len(), before, "nothing was cleared");
    assert_eq!(d.stats()["paused"], false);
    // Counters are no one's text: anyone who can connect may read them.
    let stats = logread_as(&d, ALICE, ALICE, &[], &["--stats"]);
    assert!(stats.status.success());
    // A member of the group may.
    let out = logread_as(&d, CAROL, CAROL, &[READERS], &["--clear"]);
    assert_success(&out, "logread --clear as a member of the group");
    assert!(!d.dump().iter().any(|e| e["msg"] == mine.as_str()));
}

/// Start the daemon with every socket under `dir` (not --runtime-dir: the
/// harness's own directory is safe). Returns the exit status and stderr
/// when it fails to start within 10 s, else stops it and returns None.
fn try_start(sockets: &[(&str, &Path)]) -> Option<(Option<i32>, String)> {
    let mut cmd = ringlogd_command();
    for (flag, path) in sockets {
        cmd.arg(flag).arg(path);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let query = sockets
        .iter()
        .find(|(f, _)| *f == "--socket-query")
        .unwrap()
        .1;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return Some((status.code(), err));
        }
        if std::os::unix::net::UnixStream::connect(query).is_ok() {
            signal(child.id(), "TERM");
            assert!(wait_timeout(&mut child, std::time::Duration::from_secs(10)).success());
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("ringlogd neither served nor exited");
}

fn sockets_in(dir: &Path) -> [(&'static str, std::path::PathBuf); 3] {
    [
        ("--syslog-socket", dir.join("log")),
        ("--socket-query", dir.join("q.sock")),
        ("--socket-log", dir.join("intake.sock")),
    ]
}

fn start_in(dir: &Path) -> Option<(Option<i32>, String)> {
    let s = sockets_in(dir);
    try_start(&s.iter().map(|(f, p)| (*f, p.as_path())).collect::<Vec<_>>())
}

#[test]
fn a_symlink_where_a_socket_goes_is_refused_and_left_alone() {
    for victim in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let precious = dir.path().join("precious");
        fs::write(&precious, "keep me\n").unwrap();
        fs::set_permissions(&precious, fs::Permissions::from_mode(0o600)).unwrap();
        let sockets = sockets_in(dir.path());
        let link = &sockets[victim].1;
        std::os::unix::fs::symlink(&precious, link).unwrap();

        let (code, err) = start_in(dir.path()).expect("refused");
        assert_eq!(code, Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.contains("symlink") && err.contains(link.to_str().unwrap()),
            "{err}"
        );
        assert!(fs::symlink_metadata(link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&precious).unwrap(), "keep me\n");
        assert_eq!(
            fs::metadata(&precious).unwrap().permissions().mode() & 0o7777,
            0o600,
            "mode untouched"
        );
        // A dangling symlink is refused the same way.
        fs::remove_file(&precious).unwrap();
        let (code, err) = start_in(dir.path()).expect("refused");
        assert_eq!(code, Some(1), "{err}");
        assert!(!precious.exists(), "nothing created through the link");
    }
}

/// A new directory `name` in a temporary one (kept while the first is
/// held), whose mode and owner a test may change.
fn dir_of_its_own(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join(name);
    fs::create_dir(&dir).unwrap();
    (top, dir)
}

#[test]
fn a_directory_others_may_write_to_is_refused_unless_sticky() {
    let (_top, dir) = dir_of_its_own("shared");
    for mode in [0o777, 0o770, 0o730] {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
        let (code, err) = start_in(&dir).expect("refused");
        assert_eq!(code, Some(1), "{mode:o}: {err}");
        assert!(
            err.contains("refusing") && err.contains("not sticky"),
            "{err}"
        );
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "nothing created");
    }
    // Sticky, as /tmp is: others cannot rename or remove what is ours.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
    assert_eq!(start_in(&dir), None, "a sticky directory is fine");
    // A missing directory below a refused one is not created either.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let below = dir.join("a/b");
    let (code, _) = start_in(&below).expect("refused");
    assert_eq!(code, Some(1));
    assert!(!dir.join("a").exists());
}

#[test]
fn a_directory_another_user_owns_is_refused() {
    if !root_or_skip("a directory of another user") {
        return;
    }
    let (_top, dir) = dir_of_its_own("theirs");
    nix::unistd::chown(&dir, Some(ALICE.into()), None).unwrap();
    let (code, err) = start_in(&dir).expect("refused");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&format!("uid {ALICE}")), "{err}");
}

#[test]
fn a_symlinked_directory_is_resolved_once_and_never_followed_again() {
    let top = tempfile::tempdir().unwrap();
    let (real, elsewhere) = (top.path().join("real"), top.path().join("elsewhere"));
    fs::create_dir(&real).unwrap();
    fs::create_dir(&elsewhere).unwrap();
    let link = top.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let mut child = ringlogd_command()
        .arg("--runtime-dir")
        .arg(&link)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_socket(&real.join("memlogdq.sock")));
    assert!(fs::symlink_metadata(real.join("log"))
        .unwrap()
        .file_type()
        .is_socket());
    // Re-point the link at a directory holding files with the sockets'
    // names: stopping must remove the real sockets, and only them.
    fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    for name in ["log", "memlogdq.sock", "linuxkit-external-logging.sock"] {
        fs::write(elsewhere.join(name), "decoy").unwrap();
    }
    signal(child.id(), "TERM");
    assert!(wait_timeout(&mut child, std::time::Duration::from_secs(10)).success());
    assert_eq!(
        fs::read_dir(&real).unwrap().count(),
        0,
        "its sockets are gone"
    );
    for name in ["log", "memlogdq.sock", "linuxkit-external-logging.sock"] {
        assert_eq!(fs::read_to_string(elsewhere.join(name)).unwrap(), "decoy");
    }
}

#[test]
fn a_file_swapped_in_for_a_socket_is_never_removed() {
    let d = Daemon::start(&[]);
    let precious = d.dir.path().join("precious");
    fs::write(&precious, "keep me\n").unwrap();
    // A regular file renamed over the syslog socket, a symlink over the
    // query socket.
    let file = d.dir.path().join("file");
    fs::write(&file, "mine\n").unwrap();
    fs::rename(&file, &d.log).unwrap();
    let tmp_link = d.dir.path().join("tmp-link");
    std::os::unix::fs::symlink(&precious, &tmp_link).unwrap();
    fs::rename(&tmp_link, &d.query).unwrap();
    let (log, query, intake) = (d.log.clone(), d.query.clone(), d.intake.clone());
    let dir = d.dir.path().to_owned();
    let mut d = d;
    signal(d.pid(), "TERM");
    assert!(wait_timeout(&mut d.child, std::time::Duration::from_secs(10)).success());
    assert_eq!(fs::read_to_string(&log).unwrap(), "mine\n");
    assert!(fs::symlink_metadata(&query)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_to_string(&precious).unwrap(), "keep me\n");
    assert!(!intake.exists(), "its own socket is removed");
    assert!(dir.exists());
}
