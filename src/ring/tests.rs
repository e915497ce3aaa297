//! The ring's unit tests: bounds, eviction policies, reading back.

use super::*;

fn rec(i: usize, len: usize) -> Record {
    let mut r = Record::new(Input::Syslog, i as i64, "t", "x".repeat(len));
    r.app = Some(format!("app{i}"));
    r
}

#[test]
fn sequence_numbers_increase_and_records_read_back() {
    let mut ring = Ring::new(Limits::default());
    for i in 0..100 {
        assert_eq!(ring.push(&rec(i, 10)), Some(i as u64));
    }
    assert_eq!(ring.first_seq(), 0);
    assert_eq!(ring.next_seq(), 100);
    let r = ring.get(42).unwrap();
    assert_eq!(r.seq, 42);
    assert_eq!(r.app.as_deref(), Some("app42"));
    assert!(ring.get(100).is_none());
    let all: Vec<u64> = ring.iter_from(0).map(|r| r.seq).collect();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
}

#[test]
fn evicts_oldest_by_lines() {
    let mut ring = Ring::new(Limits {
        max_lines: 10,
        max_bytes: DEFAULT_MAX_BYTES,
    });
    for i in 0..25 {
        ring.push(&rec(i, 10));
    }
    assert_eq!(ring.len(), 10);
    assert_eq!(ring.first_seq(), 15);
    assert!(ring.get(14).is_none());
    assert_eq!(ring.get(15).unwrap().app.as_deref(), Some("app15"));
    let c = ring.ledger.input(Input::Syslog);
    assert_eq!((c.stored, c.evicted), (25, 15));
}

#[test]
fn byte_budget_bounds_real_usage() {
    let max_bytes = 64 << 10;
    let mut ring = Ring::new(Limits {
        max_lines: 1_000_000,
        max_bytes,
    });
    for i in 0..10_000 {
        ring.push(&rec(i, 200));
        assert!(
            ring.bytes_used() <= max_bytes,
            "over budget at {i}: {}",
            ring.debug_state()
        );
    }
    // Holds most of what the budget allows, and never more.
    assert!(ring.len() > 200, "only {} entries held", ring.len());
    assert_eq!(ring.first_seq() + ring.len() as u64, 10_000);
    let c = ring.ledger.input(Input::Syslog);
    assert_eq!(c.stored - c.evicted, ring.len() as u64);
    assert_eq!(
        ring.iter_from(0).count(),
        ring.len(),
        "every held entry is readable"
    );
}

#[test]
fn pause_drops_and_counts_clear_empties_and_counts() {
    let mut ring = Ring::new(Limits::default());
    for i in 0..10 {
        ring.push(&rec(i, 10));
    }
    ring.set_paused(true);
    assert_eq!(ring.push(&rec(10, 10)), None);
    ring.set_paused(false);
    assert_eq!(ring.push(&rec(11, 10)), Some(10));
    let c = *ring.ledger.input(Input::Syslog);
    assert_eq!((c.stored, c.dropped), (11, 1));
    let empty = Ring::new(Limits::default()).bytes_used();
    ring.clear();
    assert!(ring.is_empty());
    assert_eq!(ring.first_seq(), 11);
    assert!(ring.bytes_used() <= empty + 64, "{} after clear", ring.bytes_used());
    assert_eq!(ring.ledger.input(Input::Syslog).cleared, 11);
    assert_eq!(ring.push(&rec(12, 10)), Some(11));
    assert_eq!(
        ring.iter_from(0).map(|r| r.seq).collect::<Vec<_>>(),
        [11]
    );
}

#[test]
fn set_limits_keeps_the_newest_and_the_sequence() {
    let mut ring = Ring::new(Limits::default());
    for i in 0..100 {
        ring.push(&rec(i, 100));
    }
    ring.set_limits(Limits {
        max_lines: 10,
        max_bytes: DEFAULT_MAX_BYTES,
    });
    assert_eq!((ring.len(), ring.first_seq()), (10, 90));
    assert_eq!(ring.get(99).unwrap().app.as_deref(), Some("app99"));
    ring.set_limits(Limits {
        max_lines: 1000,
        max_bytes: MIN_MAX_BYTES,
    });
    assert!(ring.bytes_used() <= MIN_MAX_BYTES);
    for i in 100..1000 {
        assert_eq!(ring.push(&rec(i, 100)), Some(i as u64));
        assert!(ring.bytes_used() <= MIN_MAX_BYTES, "over budget at {i}");
    }
    assert!(ring.get(999).is_some(), "the newest entry is held");
    let c = ring.ledger.input(Input::Syslog);
    assert_eq!(c.stored - c.evicted, ring.len() as u64);
}

#[test]
fn oversized_record_gets_its_own_chunk() {
    let mut ring = Ring::new(Limits {
        max_lines: 100,
        max_bytes: 64 << 10,
    });
    ring.push(&rec(0, 10));
    ring.push(&rec(1, 20_000));
    ring.push(&rec(2, 10));
    assert_eq!(ring.get(1).unwrap().msg.len(), 20_000);
    assert_eq!(ring.get(2).unwrap().msg.len(), 10);
}

#[test]
fn mixed_lines_and_bytes_keep_counts_consistent() {
    let mut ring = Ring::new(Limits {
        max_lines: 300,
        max_bytes: 32 << 10,
    });
    for i in 0..5000 {
        ring.push(&rec(i, i % 500));
        assert!(ring.len() <= 300);
        let c = *ring.ledger.input(Input::Syslog);
        assert_eq!(c.stored - c.evicted, ring.len() as u64);
    }
}

