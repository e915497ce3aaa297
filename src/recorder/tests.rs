use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use super::*;
use crate::record::{Input, RecordRef};
use crate::ring::capture::CaptureRules;
use crate::ring::Limits;

const SEC: i64 = 1_000_000_000;

/// A ring whose captures start at a message `BOOM`, with 2 s before and
/// 1 s after it.
fn ring() -> Ring {
    let mut ring = Ring::new(Limits {
        max_lines: 1 << 20,
        max_bytes: 256 << 20,
    });
    ring.set_capture_rules(CaptureRules {
        triggers: vec![Box::new(|r: &RecordRef| r.msg == "BOOM")],
        before_ns: 2 * SEC,
        after_ns: SEC,
        max_bytes: 64 << 20,
        ..CaptureRules::default()
    });
    ring
}

fn push(ring: &mut Ring, t: i64, msg: &str) -> u64 {
    ring.push_ref(&RecordRef::new(Input::Syslog, t, "app", msg))
        .expect("stored")
}

fn tick_until_written(rec: &mut Recorder, ring: &mut Ring, id: u64) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut problems = Vec::new();
    while !ring.capture(id).is_some_and(|c| c.is_written()) {
        problems.extend(rec.tick(ring));
        assert!(Instant::now() < deadline, "not written: {problems:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
    problems
}

/// A complete capture of `n` lines of some 50 bytes and its trigger.
fn capture_of(ring: &mut Ring, n: i64) {
    for i in 0..n {
        push(ring, 9 * SEC + i, &format!("line {i} {}", "x".repeat(40)));
    }
    push(ring, 10 * SEC, "BOOM");
    ring.tick_captures(12 * SEC);
}

fn unzstd(path: &Path) -> String {
    let mut s = String::new();
    zstd::Decoder::new(std::fs::File::open(path).unwrap())
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    s
}

use std::path::Path;

#[test]
fn a_complete_capture_is_written_once_as_its_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut ring = ring();
    push(&mut ring, 0, "long before");
    let first = push(&mut ring, 9 * SEC, "just before");
    push(&mut ring, 10 * SEC, "BOOM");
    let last = push(&mut ring, 10 * SEC + 1, "just after");
    push(&mut ring, 20 * SEC, "long after");
    let c = ring.captures()[0];
    assert_eq!(
        (c.first_seq, c.last_seq, c.is_complete()),
        (first, last, true)
    );
    let mut rec = Recorder::new(dir.path().into(), 1 << 20, "b00t".into());
    assert_eq!(
        tick_until_written(&mut rec, &mut ring, c.id),
        Vec::<String>::new()
    );
    let path = dir.path().join(format!("capture-b00t-{}.jsonl.zst", c.id));
    assert_eq!(rec.path_of(c.id), path);
    let mut want = Vec::new();
    for r in ring.iter_from(first).take_while(|r| r.seq <= last) {
        write_json_line(&r.as_ref(), &mut want);
    }
    assert_eq!(unzstd(&path), String::from_utf8(want).unwrap());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(rec.counters.files, 1);
    assert_eq!(rec.counters.bytes, std::fs::metadata(&path).unwrap().len());
    // Written: not again, whatever the turns.
    for _ in 0..10 {
        rec.tick(&mut ring);
    }
    assert_eq!((rec.counters.files, rec.next_deadline()), (1, None));
}

#[test]
fn an_open_capture_is_not_written_until_complete() {
    let dir = tempfile::tempdir().unwrap();
    let mut ring = ring();
    push(&mut ring, 10 * SEC, "BOOM");
    let mut rec = Recorder::new(dir.path().into(), 1 << 20, "b".into());
    rec.tick(&mut ring);
    assert!(rec.next_deadline().is_none());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    ring.tick_captures(12 * SEC);
    let id = ring.captures()[0].id;
    tick_until_written(&mut rec, &mut ring, id);
}

#[test]
fn a_large_capture_is_formatted_a_budget_per_turn() {
    let dir = tempfile::tempdir().unwrap();
    let mut ring = ring();
    let n = 30_000;
    capture_of(&mut ring, n);
    let c = ring.captures()[0];
    assert_eq!(c.entries, n as u64 + 1);
    let mut rec = Recorder::new(dir.path().into(), 64 << 20, "b".into());
    let (mut turns, mut before) = (0, 0);
    let mut longest = Duration::ZERO;
    let sent = |rec: &Recorder| rec.formatting.as_ref().map(|f| f.sent);
    while rec.writing.is_none() {
        let t = Instant::now();
        rec.tick(&mut ring);
        longest = longest.max(t.elapsed());
        turns += 1;
        // The last turn's lines are not counted here: the capture is
        // no longer being formatted.
        if let Some(now) = sent(&rec) {
            let turn = now - before;
            assert!(
                turn < FORMAT_BUDGET as u64 + 1024,
                "a turn formatted {turn} bytes"
            );
            before = now;
        }
    }
    // Some 2.4 MB of lines: ten turns or so, never one.
    assert!(turns >= 5, "{turns} turns");
    eprintln!(
        "{} entries formatted in {turns} turns, the longest {longest:?}",
        n + 1
    );
    tick_until_written(&mut rec, &mut ring, c.id);
    let text = unzstd(&rec.path_of(c.id));
    assert_eq!(text.lines().count(), n as usize + 1);
}

#[test]
fn the_oldest_capture_files_go_first_and_nothing_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("capture-notes.txt");
    std::fs::write(&foreign, "x".repeat(10_000)).unwrap();
    let mut ring = ring();
    let mut rec = Recorder::new(dir.path().into(), 1, "b".into());
    let mut ids = Vec::new();
    for k in 0..3 {
        push(&mut ring, (10 + 10 * k) * SEC, "BOOM");
        ring.tick_captures((12 + 10 * k) * SEC);
        let id = ring.captures().last().unwrap().id;
        tick_until_written(&mut rec, &mut ring, id);
        ids.push(id);
    }
    // A bound of 1 byte keeps the newest only.
    assert!(!rec.path_of(ids[0]).exists() && !rec.path_of(ids[1]).exists());
    assert!(rec.path_of(ids[2]).exists());
    assert!(foreign.exists());
    assert_eq!((rec.counters.files, rec.counters.removed), (3, 2));
}

#[test]
fn a_missing_directory_is_counted_and_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone");
    let mut ring = ring();
    let mut rec = Recorder::new(gone.clone(), 1 << 20, "b".into());
    let mut problems = Vec::new();
    for k in 0..2 {
        push(&mut ring, (10 + 10 * k) * SEC, "BOOM");
        ring.tick_captures((12 + 10 * k) * SEC);
        let deadline = Instant::now() + Duration::from_secs(30);
        while rec.counters.failed < k as u64 + 1 {
            problems.extend(rec.tick(&mut ring));
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("gone"), "{problems:?}");
    // Once the directory is there, the next capture is written.
    std::fs::create_dir(&gone).unwrap();
    push(&mut ring, 40 * SEC, "BOOM");
    ring.tick_captures(42 * SEC);
    let id = ring.captures().last().unwrap().id;
    tick_until_written(&mut rec, &mut ring, id);
    assert_eq!(rec.counters.files, 1);
}

#[test]
fn a_capture_released_while_formatted_is_counted_and_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut ring = ring();
    capture_of(&mut ring, 20_000);
    let id = ring.captures()[0].id;
    let mut rec = Recorder::new(dir.path().into(), 64 << 20, "b".into());
    rec.tick(&mut ring);
    assert!(rec.formatting.as_ref().is_some_and(|f| f.sent > 0));
    assert!(ring.release_capture(id));
    let problems = rec.tick(&mut ring);
    assert!(
        problems[0].contains("released before it was written"),
        "{problems:?}"
    );
    assert_eq!(rec.counters.failed, 1);
    // The next capture is written whole, none of the first in it.
    push(&mut ring, 30 * SEC, "BOOM");
    ring.tick_captures(32 * SEC);
    let next = ring.captures()[0].id;
    tick_until_written(&mut rec, &mut ring, next);
    assert!(!rec.path_of(id).exists());
    assert_eq!(unzstd(&rec.path_of(next)).lines().count(), 1);
}
