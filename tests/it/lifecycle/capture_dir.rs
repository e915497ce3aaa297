//! The capture directory (`--capture-dir`): each complete capture is one
//! file that the real `zstd` and `jq` read, mode 0600, holding exactly the
//! capture's entries as the JSON lines a dump gives; the directory stays
//! under `--capture-dir-max`, oldest capture files first, and nothing else
//! in it is touched; a re-exec does not write a capture again.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::captures::*;
use crate::support::*;

/// A daemon capturing around lines that start with `BOOM`, writing to
/// `dir`, with `extra` arguments.
fn start(dir: &Path, extra: &[&str]) -> Daemon {
    let mut args = capture_args("grep=^BOOM");
    args.extend(["--capture-dir".to_owned(), dir.to_str().unwrap().to_owned()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    Daemon::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Where capture `id` of this boot is written.
fn capture_file(dir: &Path, id: u64) -> PathBuf {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot id");
    dir.join(format!("capture-{}-{id}.jsonl.zst", boot.trim()))
}

/// The file as `zstd -dc FILE | jq -c .` reads it.
fn read_with_zstd_and_jq(path: &Path) -> Vec<Value> {
    let mut zstd = Command::new(require("zstd"))
        .arg("-dc")
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run zstd");
    let jq = Command::new(require("jq"))
        .arg("-c")
        .arg(".")
        .stdin(zstd.stdout.take().expect("zstd's stdout"))
        .output()
        .expect("run jq");
    let unzstd = zstd.wait().expect("zstd's status");
    assert!(unzstd.success(), "zstd -dc {}: {unzstd}", path.display());
    assert!(
        jq.status.success(),
        "jq: {}",
        String::from_utf8_lossy(&jq.stderr)
    );
    parse_lines(&jq.stdout)
}

/// Wait until this daemon counts `files` capture files written; its stats.
fn wait_written(d: &Daemon, files: u64) -> Value {
    poll(
        &format!("{files} capture files written"),
        Duration::from_secs(15),
        || d.stats(),
        |s| s["captures_written"]["files"].as_u64() >= Some(files),
    )
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_complete_capture_is_one_private_zstd_file_of_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), &[]);
    make_capture(&d, "cd", "BOOM disk on fire", 1);
    let s = wait_written(&d, 1);
    let path = capture_file(dir.path(), 1);
    let got = read_with_zstd_and_jq(&path);
    assert_eq!(got, window(&d.dump(), "BOOM disk on fire"));
    assert_context(&msgs(&got), "cd", "BOOM disk on fire");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    let written = &s["captures_written"];
    assert_eq!(written["bytes"].as_u64(), Some(meta.len()), "{s}");
    assert_eq!(written["failed"], 0, "{s}");
    assert_eq!(
        names(dir.path()),
        [path.file_name().unwrap().to_str().unwrap()]
    );
}

#[test]
fn the_directory_bound_removes_the_oldest_capture_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    let lookalike = dir.path().join("capture-old.jsonl");
    std::fs::write(&notes, "x".repeat(10_000)).unwrap();
    std::fs::write(&lookalike, "kept").unwrap();
    // One byte: only the newest capture file stays.
    let d = start(dir.path(), &["--capture-dir-max", "1"]);
    for n in 1..=3 {
        make_capture(&d, &format!("b{n}"), &format!("BOOM {n}"), n);
        let s = wait_written(&d, n);
        assert!(capture_file(dir.path(), n).exists(), "capture {n}: {s}");
        if n > 1 {
            assert!(
                !capture_file(dir.path(), n - 1).exists(),
                "capture {}",
                n - 1
            );
        }
    }
    let s = d.stats();
    assert_eq!(s["captures_written"]["removed"], 2, "{s}");
    assert_eq!(std::fs::read_to_string(&notes).unwrap().len(), 10_000);
    assert_eq!(std::fs::read_to_string(&lookalike).unwrap(), "kept");
    assert_eq!(names(dir.path()).len(), 3, "{:?}", names(dir.path()));
}

#[test]
fn a_reexec_does_not_write_a_capture_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), &[]);
    make_capture(&d, "r1", "BOOM one", 1);
    wait_written(&d, 1);
    let first = std::fs::metadata(capture_file(dir.path(), 1)).unwrap();
    signal(d.pid(), "USR2");
    poll(
        "the successor's re-executed entry",
        Duration::from_secs(15),
        || dump_across_exec(&d.query).unwrap_or_default(),
        |e| e.iter().any(|v| msg_starts(v, "re-executed")),
    );
    // The successor writes captures oldest first: once it wrote the
    // second, it had passed over the first, marked written in the ring.
    make_capture(&d, "r2", "BOOM two", 2);
    let s = wait_written(&d, 1);
    assert_eq!(s["captures_written"]["files"], 1, "{s}");
    assert!(capture_file(dir.path(), 2).exists());
    let again = std::fs::metadata(capture_file(dir.path(), 1)).unwrap();
    assert_eq!(
        (again.ino(), again.mtime_nsec()),
        (first.ino(), first.mtime_nsec())
    );
    assert_eq!(names(dir.path()).len(), 2, "{:?}", names(dir.path()));
}
