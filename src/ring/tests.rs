//! The ring's unit tests: bounds, eviction policies, reading back.

use super::*;
use crate::record::Input;
use std::ops::ControlFlow;

/// Limits of `max_lines` entries and `max_bytes` bytes.
fn bounded(max_lines: usize, max_bytes: usize) -> Limits {
    Limits {
        max_lines,
        max_bytes,
    }
}

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
    let mut ring = Ring::new(bounded(10, DEFAULT_MAX_BYTES));
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
    let mut ring = Ring::new(bounded(1_000_000, max_bytes));
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
    assert!(
        ring.bytes_used() <= empty + 64,
        "{} after clear",
        ring.bytes_used()
    );
    assert_eq!(ring.ledger.input(Input::Syslog).cleared, 11);
    assert_eq!(ring.push(&rec(12, 10)), Some(11));
    assert_eq!(ring.iter_from(0).map(|r| r.seq).collect::<Vec<_>>(), [11]);
}

#[test]
fn set_limits_keeps_the_newest_and_the_sequence() {
    let mut ring = Ring::new(Limits::default());
    for i in 0..100 {
        ring.push(&rec(i, 100));
    }
    ring.set_limits(bounded(10, DEFAULT_MAX_BYTES));
    assert_eq!((ring.len(), ring.first_seq()), (10, 90));
    assert_eq!(ring.get(99).unwrap().app.as_deref(), Some("app99"));
    ring.set_limits(bounded(1000, MIN_MAX_BYTES));
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
    let mut ring = Ring::new(bounded(100, 64 << 10));
    ring.push(&rec(0, 10));
    ring.push(&rec(1, 20_000));
    ring.push(&rec(2, 10));
    assert_eq!(ring.get(1).unwrap().msg.len(), 20_000);
    assert_eq!(ring.get(2).unwrap().msg.len(), 10);
}

#[test]
fn mixed_lines_and_bytes_keep_counts_consistent() {
    let mut ring = Ring::new(bounded(300, 32 << 10));
    for i in 0..5000 {
        ring.push(&rec(i, i % 500));
        assert!(ring.len() <= 300);
        let c = *ring.ledger.input(Input::Syslog);
        assert_eq!(c.stored - c.evicted, ring.len() as u64);
    }
}

fn from(source: &str, severity: u8, i: usize) -> Record {
    let mut r = Record::new(
        Input::Syslog,
        1_700_000_000_000_000_000 + i as i64 * 1000,
        source,
        format!(
            "{source} line {i}: connection from 10.0.{}.{} closed",
            i % 7,
            i % 250
        ),
    );
    r.severity = Some(severity);
    r
}

fn held_msgs(ring: &Ring) -> Vec<String> {
    ring.iter_from(0).map(|r| r.msg).collect()
}

#[test]
fn fair_eviction_keeps_quiet_errors_through_a_flood() {
    let mut ring = Ring::new(bounded(2000, 1 << 20));
    let mut quiet = Vec::new();
    for i in 0..60_000 {
        ring.push(&from("flood", 7, i));
        if i % 1000 == 0 {
            for q in ["q1", "q2", "q3"] {
                let r = from(q, 3, i);
                quiet.push(r.msg.clone());
                ring.push(&r);
            }
        }
    }
    let held = held_msgs(&ring);
    for q in &quiet {
        assert!(held.contains(q), "{q} was evicted");
    }
    assert_eq!(ring.len(), 2000);
    let seqs: Vec<u64> = ring.iter_from(0).map(|r| r.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "held entries in order"
    );
    let flood = ring
        .source_stats()
        .into_iter()
        .find(|s| s.name == "flood")
        .unwrap();
    assert_eq!(flood.stored, 60_000);
    assert_eq!(flood.evicted, flood.stored - flood.held);
    assert_eq!(flood.held as usize, 2000 - quiet.len());
    let c = ring.ledger.input(Input::Syslog);
    assert_eq!(c.stored - c.evicted, ring.len() as u64);
}

#[test]
fn fair_eviction_under_a_byte_budget_and_fifo_for_comparison() {
    for evict in [Evict::Fair, Evict::Fifo] {
        let opts = RingOptions {
            evict,
            ..RingOptions::default()
        };
        let max_bytes = 256 << 10;
        let mut ring = Ring::with_options(bounded(1_000_000, max_bytes), opts).unwrap();
        let mut quiet = Vec::new();
        for i in 0..100_000 {
            ring.push(&from("flood", 6, i));
            if i % 2000 == 0 {
                let r = from("quiet", 2, i);
                quiet.push(r.msg.clone());
                ring.push(&r);
            }
            assert!(ring.bytes_used() <= max_bytes, "over budget at {i}");
        }
        let held = held_msgs(&ring);
        let kept = quiet.iter().filter(|q| held.contains(q)).count();
        match evict {
            Evict::Fair => assert_eq!(kept, quiet.len(), "fair keeps every quiet error"),
            Evict::Fifo => assert!(kept < quiet.len() / 2, "fifo kept {kept}"),
        }
        let c = ring.ledger.input(Input::Syslog);
        assert_eq!(c.stored - c.evicted, ring.len() as u64);
        assert_eq!(held.len(), ring.len());
    }
}

#[test]
fn errors_outlive_debug_lines_of_the_same_source() {
    let mut ring = Ring::new(bounded(500, 1 << 20));
    for i in 0..5000 {
        ring.push(&from("app", if i % 100 == 0 { 3 } else { 7 }, i));
    }
    let held = ring.iter_from(0).collect::<Vec<_>>();
    let errors = held.iter().filter(|r| r.severity == Some(3)).count();
    assert_eq!(errors, 50, "every err line is held");
}

#[test]
fn compression_holds_several_times_more_per_byte() {
    let fill = |compress| {
        let mut ring = Ring::with_options(
            bounded(10_000_000, 4 << 20),
            RingOptions {
                compress,
                ..RingOptions::default()
            },
        )
        .unwrap();
        for i in 0..200_000 {
            ring.push(&from(["sshd", "cron", "kernel"][i % 3], 6, i));
        }
        ring.bytes_used() as f64 / ring.len() as f64
    };
    let zstd = fill(Compress::Zstd);
    let none = fill(Compress::None);
    assert!(
        zstd * 3.0 < none,
        "zstd {zstd:.1} vs none {none:.1} bytes/entry"
    );
}

#[test]
fn readers_see_gaps_as_missed_entries() {
    let mut ring = Ring::new(bounded(100, 1 << 20));
    ring.push(&from("quiet", 3, 0));
    for i in 1..1000 {
        ring.push(&from("flood", 7, i));
    }
    let mut seqs = Vec::new();
    ring.scan_from(0, &mut ReadCache::new(), |r| {
        seqs.push(r.seq);
        ControlFlow::Continue(())
    });
    assert_eq!(seqs[0], 0, "the quiet entry is held");
    assert_eq!(seqs[1], 901, "the flood's oldest went");
    assert_eq!(ring.first_seq(), 0);
    let mut back = Vec::new();
    ring.scan_back(905, &mut ReadCache::new(), |r| {
        back.push(r.seq);
        ControlFlow::Continue(())
    });
    assert_eq!(back, [904, 903, 902, 901, 0]);
    assert_eq!(ring.get(500), None);
    assert_eq!(ring.get(950).unwrap().seq, 950);
}

#[test]
fn held_between_counts_what_a_scan_finds_and_removals_only_go_up() {
    let mut ring = Ring::new(bounded(3000, 8 << 20));
    let mut removals = ring.removals();
    for i in 0..5000 {
        // Two severities, so fair eviction leaves holes inside chunks.
        ring.push(&from(
            if i % 3 == 0 { "a" } else { "b" },
            3 + (i % 2) as u8 * 4,
            i,
        ));
        assert!(ring.removals() >= removals);
        removals = ring.removals();
    }
    assert_eq!(
        removals,
        5000 - ring.len() as u64,
        "every entry taken is counted"
    );
    let mut seqs = Vec::new();
    ring.scan_from(0, &mut ReadCache::new(), |r| {
        seqs.push(r.seq);
        ControlFlow::Continue(())
    });
    let mut cache = ReadCache::new();
    for (a, b) in [
        (0, u64::MAX),
        (0, 2500),
        (1234, 4321),
        (4999, 5000),
        (7000, 8000),
        (3000, 100),
    ] {
        let want = seqs.iter().filter(|&&s| a <= s && s < b).count() as u64;
        assert_eq!(ring.held_between(a, b, &mut cache), want, "{a}..{b}");
    }
    ring.clear();
    assert_eq!(ring.removals(), 5000, "a clear counts too");
}

fn dup(ring: &Ring) -> std::os::fd::OwnedFd {
    ring.memfd().unwrap().try_clone_to_owned().unwrap()
}

#[test]
fn a_successor_adopts_the_memfd_with_entries_sequence_and_counters() {
    let limits = bounded(100_000, 1 << 20);
    let mut ring = Ring::new(limits);
    ring.set_local_host("here");
    for i in 0..30_000 {
        ring.push(&from(["a", "b"][i % 2], 6, i));
    }
    ring.set_resume_cookie([7; 56]);
    let before: Vec<Record> = ring.iter_from(0).collect();
    let ledger = *ring.ledger.input(Input::Syslog);
    let sources = ring.source_stats();
    let fd = dup(&ring);
    drop(ring);
    let mut next = Ring::adopt(fd, limits, RingOptions::default()).unwrap();
    assert_eq!(next.iter_from(0).collect::<Vec<_>>(), before);
    assert_eq!(*next.ledger.input(Input::Syslog), ledger);
    assert_eq!(next.source_stats(), sources);
    assert_eq!(next.next_seq(), 30_000);
    assert_eq!(next.resume_cookie(), Some([7; 56]));
    assert_eq!(next.push(&from("a", 6, 30_000)), Some(30_000));
    assert!(next.bytes_used() <= limits.max_bytes);
}

#[test]
fn a_crash_mid_push_loses_only_the_record_being_written() {
    let limits = Limits::default();
    let mut ring = Ring::new(limits);
    for i in 0..10 {
        ring.push(&from("a", 6, i));
    }
    // A record written but not yet counted, then garbage counted as one.
    let slot = ring.open.slot as usize;
    let (h, data) = ring.store.slot_mut(slot);
    let at = h.raw_len as usize;
    data[at..at + 5].copy_from_slice(&[3, 0, 0xff, 0xff, 0xff]);
    h.count += 1;
    h.end_seq += 1;
    let fd = dup(&ring);
    drop(ring);
    let mut next = Ring::adopt(fd, limits, RingOptions::default()).unwrap();
    assert_eq!(next.len(), 10);
    assert_eq!(next.push(&from("a", 6, 10)), Some(10));
    assert_eq!(next.iter_from(0).count(), 11);
}

#[test]
fn a_foreign_or_newer_memfd_is_refused_clearly() {
    let fd = nix::sys::memfd::memfd_create("x", nix::sys::memfd::MFdFlags::empty()).unwrap();
    nix::unistd::write(&fd, &[0x5a; 8192]).unwrap();
    let e = Ring::adopt(fd, Limits::default(), RingOptions::default()).unwrap_err();
    assert!(e.to_string().contains("not a ringlogd ring"), "{e}");
    let ring = Ring::new(Limits::default());
    let fd = dup(&ring);
    nix::sys::uio::pwrite(&fd, &99u32.to_le_bytes(), 8).unwrap();
    let e = Ring::adopt(fd, Limits::default(), RingOptions::default()).unwrap_err();
    assert!(e.to_string().contains("format version 99"), "{e}");
}

#[test]
fn snapshots_round_trip_and_refuse_torn_foreign_and_other_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring.snap");
    let limits = bounded(100_000, 2 << 20);
    let mut ring = Ring::new(limits);
    for i in 0..20_000 {
        ring.push(&from(["a", "b", "c"][i % 3], (i % 8) as u8, i));
    }
    ring.save_snapshot(&path).unwrap();
    let owners = crate::private_file::owners(None);
    let (loaded, note) = Ring::load_snapshot(&path, limits, RingOptions::default(), &owners)
        .unwrap()
        .unwrap();
    assert_eq!(note, None, "written private");
    assert_eq!(
        loaded.iter_from(0).collect::<Vec<_>>(),
        ring.iter_from(0).collect::<Vec<_>>()
    );
    assert_eq!(loaded.next_seq(), ring.next_seq());
    assert_eq!(
        loaded.ledger.input(Input::Syslog),
        ring.ledger.input(Input::Syslog)
    );
    let good = std::fs::read(&path).unwrap();
    let cases: [(&str, Vec<u8>); 4] = [
        ("torn", good[..good.len() / 2].to_vec()),
        ("damaged", {
            let mut b = good.clone();
            b[good.len() / 2] ^= 1;
            b
        }),
        ("not a ringlogd snapshot", b"hello, world\n".repeat(100)),
        ("format version 2", {
            let mut b = good.clone();
            b[8] = 2;
            // Re-seal so only the version is wrong.
            let body = b.len() - 12;
            let crc = crc32fast::hash(&b[..body]);
            b[body..body + 4].copy_from_slice(&crc.to_le_bytes());
            b
        }),
    ];
    for (why, bytes) in cases {
        std::fs::write(&path, bytes).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let e = Ring::from_snapshot(&bytes, &path, limits, RingOptions::default()).unwrap_err();
        assert!(e.to_string().contains(why), "{why}: {e}");
    }
}

/// The bytes the kernel holds for a memfd.
fn allocated(fd: &std::os::fd::OwnedFd) -> usize {
    use std::os::fd::AsFd;
    nix::sys::stat::fstat(fd.as_fd()).unwrap().st_blocks as usize * 512
}

#[test]
fn adopting_a_large_ring_touches_only_the_slots_in_use() {
    let limits = bounded(10_000_000, 1 << 30);
    let mut ring = Ring::new(limits);
    for i in 0..5000 {
        ring.push(&from("a", 6, i));
    }
    let fd = dup(&ring);
    drop(ring);
    let before = allocated(&fd);
    let probe = fd.try_clone().unwrap();
    let next = Ring::adopt(fd, limits, RingOptions::default()).unwrap();
    assert_eq!(next.len(), 5000);
    let after = allocated(&probe);
    assert!(
        after <= before + (64 << 10),
        "adopting allocated {} bytes of a 1 GiB ring's memfd",
        after - before
    );
}

#[test]
fn the_pages_the_ring_counts_are_the_pages_its_memfd_holds() {
    // Through compression, eviction and the slot kept warm for the next
    // open chunk, what --max-bytes is checked against stays what the
    // kernel really holds for the memfd.
    let limits = bounded(1_000_000, 2 << 20);
    for compress in [Compress::Zstd, Compress::None] {
        let opts = RingOptions {
            compress,
            ..RingOptions::default()
        };
        let mut ring = Ring::with_options(limits, opts).unwrap();
        let fd = dup(&ring);
        for i in 0..200_000 {
            ring.push(&from(["a", "b", "c"][i % 3], (i % 8) as u8, i));
            if i % 20_000 == 19_999 {
                ring.take_compressed(true);
                assert_eq!(ring.pages, allocated(&fd), "{compress:?} after {i}");
            }
        }
        assert!(ring.stats().bytes <= limits.max_bytes);
        assert!(
            ring.ledger.input(Input::Syslog).evicted > 0,
            "the budget bound"
        );
        drop(ring);
        let probe = fd.try_clone().unwrap();
        let next = Ring::adopt(fd, limits, opts).unwrap();
        assert_eq!(next.pages, allocated(&probe), "{compress:?} adopted");
    }
}

#[test]
fn a_damaged_count_of_sources_is_not_charged_to_the_budget() {
    // A header whose count of sources was overwritten claims the whole
    // table: adopted as it was, the ring counted 17 pages of sources that
    // were never there, more than its 64 KiB budget, and evicted every
    // entry for them.
    let limits = bounded(1000, 64 << 10);
    let mut ring = Ring::new(limits);
    for i in 0..400 {
        ring.push(&from(["a", "b", "c"][i % 3], (i % 8) as u8, i));
    }
    let fd = dup(&ring);
    drop(ring);
    let at = std::mem::offset_of!(store::Header, sources_len) as i64;
    nix::sys::uio::pwrite(&fd, &u32::MAX.to_le_bytes(), at).unwrap();
    let next = Ring::adopt(fd, limits, RingOptions::default()).unwrap();
    assert_eq!(next.len(), 400, "every entry kept");
    assert!(next.stats().bytes <= limits.max_bytes, "{:?}", next.stats());
    let names: Vec<_> = next.source_stats().into_iter().map(|s| s.name).collect();
    for name in ["a", "b", "c"] {
        assert!(
            names.iter().any(|n| n.as_ref() as &str == name),
            "{names:?}"
        );
    }
}

/// A record of `source` that the kernel said `uid` sent (none: no peer).
fn sent_by(uid: Option<u32>, source: &str, severity: u8, i: usize) -> Record {
    let mut r = from(source, severity, i);
    r.peer = uid.map(|uid| crate::record::Peer {
        pid: 4000 + uid,
        uid,
        gid: uid,
    });
    r
}

/// Per source, the entries of `uid` the ring holds, read back from it.
fn held_of(ring: &Ring, uid: u32) -> std::collections::BTreeMap<String, u64> {
    let mut held = std::collections::BTreeMap::new();
    for r in ring.iter_from(0) {
        if r.peer.map(|p| p.uid) == Some(uid) {
            *held.entry(r.source).or_default() += 1;
        }
    }
    held
}

/// Per source, what the ring's stats say of `uid`: (stored, held, evicted).
fn figures_of(ring: &Ring, uid: u32) -> std::collections::BTreeMap<String, (u64, u64, u64)> {
    ring.source_stats_of(uid)
        .into_iter()
        .map(|s| (s.name, (s.stored, s.held, s.evicted)))
        .collect()
}

/// Three senders in two sources: uid 1000 in "mine", root in "mine" and
/// "roots", and entries with no sender uid in "mine"; severities vary so
/// fair eviction picks from the middle of chunks.
fn push_mixed(ring: &mut Ring, range: std::ops::Range<usize>) -> [u64; 3] {
    let mut sent = [0; 3];
    for i in range {
        let (uid, source, k) = match i % 5 {
            0 | 1 => (Some(1000), "mine", 0),
            2 => (Some(0), "mine", 1),
            3 => (Some(0), "roots", 2),
            _ => (None, "mine", 1),
        };
        if uid.is_some() {
            sent[k] += 1;
        }
        ring.push(&sent_by(uid, source, [7, 6, 3][i % 3], i));
    }
    sent
}

#[test]
fn per_uid_source_counts_follow_push_eviction_and_clear() {
    for evict in [Evict::Fair, Evict::Fifo] {
        let limits = bounded(3000, 256 << 10);
        let opts = RingOptions {
            evict,
            ..RingOptions::default()
        };
        let mut ring = Ring::with_options(limits, opts).unwrap();
        let [mine, roots_mine, roots] = push_mixed(&mut ring, 0..20_000);
        ring.take_compressed(true);
        let c = ring.ledger.input(Input::Syslog);
        assert!(c.evicted > 10_000, "{evict:?}: the bounds evicted");

        let user = figures_of(&ring, 1000);
        assert_eq!(user.keys().collect::<Vec<_>>(), ["mine"], "{evict:?}");
        let (stored, held, evicted) = user["mine"];
        assert_eq!(stored, mine);
        assert_eq!(held, held_of(&ring, 1000)["mine"], "{evict:?}");
        assert_eq!(stored - held, evicted, "{evict:?}");
        let root = figures_of(&ring, 0);
        assert_eq!(root["mine"].0, roots_mine);
        assert_eq!(root["roots"].0, roots);
        for (name, held) in held_of(&ring, 0) {
            assert_eq!(root[&name].1, held, "{evict:?} {name}");
            assert_eq!(root[&name].0 - root[&name].1, root[&name].2);
        }
        // A uid that sent nothing has no sources.
        assert!(ring.source_stats_of(1001).is_empty());
        // The whole-source figures count every sender, with no uid too.
        let all = ring.source_stats();
        let total_mine = all.iter().find(|s| s.name == "mine").unwrap();
        assert!(total_mine.stored > mine + roots_mine);

        ring.clear();
        assert_eq!(figures_of(&ring, 1000)["mine"], (mine, 0, evicted));
    }
}

#[test]
fn per_uid_held_counts_are_rebuilt_when_a_successor_adopts_the_ring() {
    let limits = bounded(3000, 256 << 10);
    let mut ring = Ring::new(limits);
    push_mixed(&mut ring, 0..20_000);
    let held = held_of(&ring, 1000)["mine"];
    let fd = dup(&ring);
    drop(ring);
    let mut next = Ring::adopt(fd, limits, RingOptions::default()).unwrap();
    // Held is exact again; stored and evicted count from here.
    assert_eq!(figures_of(&next, 1000)["mine"], (held, held, 0));
    for (name, held) in held_of(&next, 0) {
        assert_eq!(figures_of(&next, 0)[&name], (held, held, 0), "{name}");
    }
    // And go on counting as entries come and go.
    let [mine, ..] = push_mixed(&mut next, 20_000..30_000);
    let (stored, held, evicted) = figures_of(&next, 1000)["mine"];
    assert_eq!(held, held_of(&next, 1000)["mine"]);
    assert_eq!(stored, held + evicted);
    assert!(stored >= mine && evicted > 0);

    // A snapshot is adopted the same way.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring.snapshot");
    next.save_snapshot(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let loaded = Ring::from_snapshot(&bytes, &path, limits, RingOptions::default()).unwrap();
    assert_eq!(figures_of(&loaded, 1000)["mine"], (held, held, 0));
    assert!(loaded
        .source_stats_of(1000)
        .iter()
        .all(|s| s.name == "mine"));
}

#[test]
fn a_successor_at_the_smallest_budget_holds_every_entry_its_predecessor_held() {
    // A predecessor at its byte budget left its open chunk raw; the
    // successor's own open chunk needs a page more, which must not cost
    // an entry the predecessor held.
    for max_lines in [1, 2, 5, 17, 64] {
        for len in [10, 300, 1000, 3000, 7000] {
            for n in [1, 3, 10, 40, 200] {
                let limits = bounded(max_lines, MIN_MAX_BYTES);
                for evict in [Evict::Fifo, Evict::Fair] {
                    let opts = RingOptions {
                        evict,
                        ..RingOptions::default()
                    };
                    let mut ring = Ring::with_options(limits, opts).unwrap();
                    for i in 0..n {
                        ring.push(&rec(i, len + i % 7));
                    }
                    let held: Vec<Record> = ring.iter_from(0).collect();
                    let fd = dup(&ring);
                    drop(ring);
                    let next = Ring::adopt(fd, limits, opts).unwrap();
                    assert_eq!(
                        next.iter_from(0).collect::<Vec<_>>(),
                        held,
                        "{max_lines} lines, {n} records of {len} bytes, {evict:?}"
                    );
                }
            }
        }
    }
}
