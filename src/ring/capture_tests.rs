//! Unit tests of captures and of the eviction log, on the ring alone.

use super::capture::{CaptureRules, Trigger};
use super::*;
use crate::record::Input;

const T0: i64 = 1_700_000_000_000_000_000;
const MS: i64 = 1_000_000;
const SEC: i64 = 1_000_000_000;

fn line(source: &str, severity: u8, at_ns: i64, msg: String) -> Record {
    let mut r = Record::new(Input::Syslog, at_ns, source, msg);
    r.severity = Some(severity);
    r
}

/// A ring of 1000 entries and 1 MiB that evicts as `evict` says.
fn small_ring(evict: Evict) -> Ring {
    let limits = Limits {
        max_lines: 1000,
        max_bytes: 1 << 20,
    };
    let opts = RingOptions {
        evict,
        ..RingOptions::default()
    };
    Ring::with_options(limits, opts).expect("a memfd")
}

fn errors() -> Trigger {
    Box::new(|r: &RecordRef| r.severity.is_some_and(|s| s <= 3))
}

fn rules(before_ns: i64, after_ns: i64, max_span_ns: i64, max_bytes: usize) -> CaptureRules {
    CaptureRules {
        triggers: vec![errors()],
        before_ns,
        after_ns,
        max_span_ns,
        max_bytes,
        max: 16,
    }
}

/// 200 lines, an err, 200 lines within 401 ms of `T0`; then `flood` info
/// lines from 2 s on. The burst's messages, in order.
fn burst_then_flood(ring: &mut Ring, flood: usize) -> Vec<String> {
    let mut burst = Vec::new();
    for i in 0..401 {
        let sev = if i == 200 { 3 } else { 6 };
        let r = line("app", sev, T0 + i as i64 * MS, format!("burst {i}"));
        burst.push(r.msg.clone());
        ring.push(&r);
    }
    for i in 0..flood {
        ring.push(&line(
            "app",
            6,
            T0 + 2 * SEC + i as i64,
            format!("flood {i}"),
        ));
    }
    burst
}

fn msgs_between(ring: &Ring, first: u64, last: u64) -> Vec<String> {
    ring.iter_from(first)
        .take_while(|r| r.seq <= last)
        .map(|r| r.msg)
        .collect()
}

#[test]
fn the_burst_around_an_error_survives_a_flood_and_is_lost_without_a_capture() {
    let mut ring = small_ring(Evict::Fair);
    ring.set_capture_rules(rules(5 * SEC, SEC, 300 * SEC, 256 << 10));
    ring.push(&line("app", 6, T0 - 10 * SEC, "long before".into()));
    let burst = burst_then_flood(&mut ring, 50_000);
    let caps = ring.captures();
    assert_eq!(caps.len(), 1, "{caps:?}");
    let c = caps[0];
    assert!(c.is_complete() && !c.is_cut() && !c.is_start_cut(), "{c:?}");
    assert_eq!((c.id, c.trigger_seq, c.entries), (1, 201, 401));
    assert_eq!(msgs_between(&ring, c.first_seq, c.last_seq), burst);
    assert_eq!(ring.len(), 1000, "the ring's bound holds beside the pins");
    let s = ring.capture_stats();
    assert_eq!(
        (s.counters.started, s.counters.completed, s.entries_pinned),
        (1, 1, 401)
    );

    let mut plain = small_ring(Evict::Fair);
    let burst = burst_then_flood(&mut plain, 50_000);
    let held: Vec<String> = plain.iter_from(0).map(|r| r.msg).collect();
    // Fair eviction keeps the error itself, but not what led to it.
    let kept: Vec<&String> = burst.iter().filter(|m| held.contains(m)).collect();
    assert_eq!(
        kept,
        ["burst 200"],
        "without a capture the flood takes the context"
    );
}

#[test]
fn a_restart_loop_makes_one_capture_extended_up_to_its_span() {
    let mut ring = Ring::new(Limits::default());
    ring.set_capture_rules(rules(2 * SEC, SEC, 300 * SEC, 1 << 20));
    // An error every 100 ms for 30 s, with a line between.
    for i in 0..300 {
        let at = T0 + i as i64 * 100 * MS;
        ring.push(&line("svc", 6, at, format!("starting {i}")));
        ring.push(&line("svc", 3, at + MS, format!("crashed {i}")));
    }
    ring.tick_captures(T0 + 40 * SEC);
    let caps = ring.captures();
    assert_eq!(caps.len(), 1, "{caps:?}");
    let c = caps[0];
    assert_eq!(c.extended, 299);
    assert_eq!((c.entries, c.first_seq, c.last_seq), (600, 0, 599));
    assert!(c.is_complete());
    assert_eq!(c.end_ns, T0 + 299 * 100 * MS + MS + SEC);
    assert_eq!(ring.capture_stats().counters.extended, 299);

    // With a span of 10 s, the loop makes a capture per 10 s or so.
    let mut ring = Ring::new(Limits::default());
    ring.set_capture_rules(rules(2 * SEC, SEC, 10 * SEC, 1 << 20));
    for i in 0..300 {
        ring.push(&line(
            "svc",
            3,
            T0 + i as i64 * 100 * MS,
            format!("crashed {i}"),
        ));
    }
    let caps = ring.captures();
    assert!((3..=4).contains(&caps.len()), "{caps:?}");
    for c in &caps {
        assert!(c.end_ns - c.start_ns <= 10 * SEC, "{c:?}");
    }
}

#[test]
fn the_budget_releases_the_oldest_complete_captures_and_counts_them() {
    let max_bytes = 8 << 10;
    let mut ring = Ring::new(Limits {
        max_lines: 100_000,
        max_bytes: 1 << 20,
    });
    ring.set_capture_rules(rules(SEC, SEC, 300 * SEC, max_bytes));
    // A trigger every 5 s, 100 lines of 100 bytes around each.
    for round in 0..40 {
        let base = T0 + round * 5 * SEC;
        for i in 0..100 {
            let sev = if i == 50 { 3 } else { 6 };
            ring.push(&line("app", sev, base + i * 10 * MS, "x".repeat(100)));
            let s = ring.capture_stats();
            assert!(s.bytes_pinned <= max_bytes as u64, "{s:?}");
        }
    }
    let s = ring.capture_stats();
    assert_eq!(s.counters.started, 40);
    let held = ring.captures();
    assert!(held.len() < 40 && !held.is_empty());
    assert_eq!(s.counters.released_for_budget, 40 - held.len() as u64);
    // The newest are kept.
    assert_eq!(held.last().map(|c| c.id), Some(40));
    assert_eq!(s.counters.released, 0);
}

#[test]
fn released_entries_are_evicted_again_and_fifo_passes_pins_too() {
    for evict in [Evict::Fair, Evict::Fifo] {
        let mut ring = small_ring(evict);
        ring.set_capture_rules(rules(5 * SEC, SEC, 300 * SEC, 256 << 10));
        let burst = burst_then_flood(&mut ring, 20_000);
        let c = ring.captures()[0];
        assert_eq!(
            msgs_between(&ring, c.first_seq, c.last_seq),
            burst,
            "{evict:?}"
        );
        assert!(ring.release_capture(c.id));
        assert!(!ring.release_capture(c.id), "released once");
        assert_eq!(ring.capture_stats().counters.released, 1);
        for i in 0..2000 {
            ring.push(&line("app", 6, T0 + 3 * SEC + i, format!("after {i}")));
        }
        let held: Vec<String> = ring.iter_from(0).map(|r| r.msg).collect();
        let kept = burst.iter().filter(|m| held.contains(m)).count();
        // Fair eviction keeps the error itself; fifo keeps nothing.
        assert_eq!(kept, usize::from(evict == Evict::Fair), "{evict:?}");
        assert_eq!(ring.len(), 1000);
    }
}

#[test]
fn captures_and_their_pins_survive_adoption_and_a_snapshot() {
    let limits = Limits {
        max_lines: 1000,
        max_bytes: 1 << 20,
    };
    let mut ring = Ring::new(limits);
    ring.set_capture_rules(rules(5 * SEC, SEC, 300 * SEC, 256 << 10));
    let burst = burst_then_flood(&mut ring, 5_000);
    let caps = ring.captures();
    let fd = ring.memfd().unwrap().try_clone_to_owned().unwrap();
    drop(ring);
    let mut next = Ring::adopt(fd, limits, RingOptions::default()).unwrap();
    assert_eq!(next.captures(), caps);
    for i in 0..5_000 {
        next.push(&line("app", 6, T0 + 3 * SEC + i, format!("later {i}")));
    }
    let c = caps[0];
    assert_eq!(msgs_between(&next, c.first_seq, c.last_seq), burst);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring.snap");
    next.save_snapshot(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut loaded = Ring::from_snapshot(&bytes, &path, limits, RingOptions::default()).unwrap();
    assert_eq!(loaded.captures(), caps);
    for i in 0..5_000 {
        loaded.push(&line("app", 6, T0 + 4 * SEC + i, format!("loaded {i}")));
    }
    assert_eq!(msgs_between(&loaded, c.first_seq, c.last_seq), burst);
    // The next capture gets a new id, never one used before.
    loaded.set_capture_rules(rules(SEC, SEC, 300 * SEC, 256 << 10));
    loaded.push(&line("app", 3, T0 + 10 * SEC, "again".into()));
    assert_eq!(loaded.captures().last().map(|c| c.id), Some(2));
}

#[test]
fn a_damaged_capture_table_is_dropped_slot_by_slot() {
    let limits = Limits::default();
    let mut ring = Ring::new(limits);
    ring.set_capture_rules(rules(5 * SEC, SEC, 300 * SEC, 256 << 10));
    burst_then_flood(&mut ring, 10);
    ring.tick_captures(T0 + 60 * SEC);
    let fd = ring.memfd().unwrap().try_clone_to_owned().unwrap();
    drop(ring);
    // The first slot's last_seq, far past the ring's end.
    let slot0 = store::CAPTURES_OFFSET + 16 + std::mem::size_of::<capture::CaptureCounters>();
    let last_seq = slot0 + 32;
    nix::sys::uio::pwrite(&fd, &u64::MAX.to_le_bytes(), last_seq as i64).unwrap();
    let next = Ring::adopt(fd, limits, RingOptions::default()).unwrap();
    assert_eq!(next.captures(), []);
    assert_eq!(next.len(), 411);
}

#[test]
fn fair_eviction_notes_count_what_each_source_lost_out_of_turn() {
    let mut ring = small_ring(Evict::Fair);
    for q in ["q1", "q2", "q3"] {
        for i in 0..10 {
            ring.push(&line(q, 6, T0 + i, format!("{q} {i}")));
        }
    }
    // 60 s of flood at 1000 lines a second: notes per 10 s episode.
    for i in 0..60_000 {
        ring.push(&line(
            "flood",
            6,
            T0 + SEC + i as i64 * MS,
            format!("flood {i}"),
        ));
    }
    let notes = ring.evictions_within(0, ring.next_seq());
    let flood = ring
        .source_stats()
        .into_iter()
        .find(|s| s.name == "flood")
        .unwrap();
    assert!((6..=7).contains(&notes.len()), "{notes:?}");
    assert!(notes.iter().all(|n| n.source == "flood"), "{notes:?}");
    assert_eq!(notes.iter().map(|n| n.count).sum::<u64>(), flood.evicted);
    assert!(notes.windows(2).all(|w| w[0].last_seq < w[1].first_seq));
    // Fifo takes the oldest: no holes, no notes.
    let mut fifo = small_ring(Evict::Fifo);
    for i in 0..5000 {
        fifo.push(&line("flood", 6, T0 + i, format!("flood {i}")));
    }
    assert_eq!(fifo.evictions_within(0, u64::MAX), []);
}
