//! Unit tests of the compression dictionaries: chunks compressed with one
//! read back, a new one in the middle of a ring leaves the older chunks
//! readable, both survive adoption and snapshots, and a damaged one makes
//! only the chunks that name it refused.

use super::*;
use crate::record::Input;
use zstd::zstd_safe::DDict;

const LIMITS: Limits = Limits {
    max_lines: 10_000_000,
    max_bytes: dict::MIN_DICT_BUDGET,
};

/// A ring of [`LIMITS`] whose chunks are small (16 KiB), so that a
/// dictionary matters to each and a change of log shows in the ratio.
fn small_chunks() -> Ring {
    let mut ring = Ring::new(LIMITS);
    ring.chunk_cap = 16 << 10;
    ring
}

/// A small pseudo-random number from `i`, the same on every run.
fn mix(i: usize) -> usize {
    (i.wrapping_mul(2_654_435_761) >> 7) % 100_000
}

/// Template `k` of a log whose words come from `words`: fixed text, as a
/// program's message formats are.
fn template(words: &[&str], k: usize) -> String {
    (0..12)
        .map(|w| words[mix(k * 31 + w) % words.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Entry `i` of a log of `templates` message formats made of `words`,
/// each with a varying number and address.
fn entry(words: &[&str], source: &str, templates: usize, i: usize) -> Record {
    let n = mix(i);
    let msg = format!(
        "{} {} from 198.51.100.{} port {}",
        template(words, n % templates),
        n % 1000,
        n % 256,
        30000 + n % 3000
    );
    let mut r = Record::new(
        Input::Syslog,
        1_700_000_000_000_000_000 + i as i64 * 1_000_000,
        source,
        msg,
    );
    r.app = Some(source.into());
    r.host = Some("gateway".into());
    r
}

/// Entry `i` of an sshd-like log.
fn sshd(i: usize) -> Record {
    const WORDS: [&str; 16] = [
        "authentication",
        "failure",
        "invalid",
        "user",
        "session",
        "opened",
        "closed",
        "password",
        "accepted",
        "publickey",
        "disconnect",
        "preauth",
        "received",
        "connection",
        "reset",
        "negotiate",
    ];
    entry(&WORDS, "sshd", 20, i)
}

/// Entry `i` of another log altogether: a storage daemon's reports.
fn blocks(i: usize) -> Record {
    const WORDS: [&str; 16] = [
        "DataNode",
        "PacketResponder",
        "block",
        "replica",
        "namesystem",
        "addStoredBlock",
        "blockMap",
        "updated",
        "terminating",
        "serving",
        "deleting",
        "verification",
        "succeeded",
        "transmitted",
        "datanode",
        "pipeline",
    ];
    entry(&WORDS, "hdfs", 20, i)
}

/// Push `n` records made by `make` from `from` on, letting the
/// compressor thread keep up.
fn push_all(ring: &mut Ring, make: fn(usize) -> Record, from: usize, n: usize) -> Vec<Record> {
    let mut pushed = Vec::new();
    for i in from..from + n {
        let mut r = make(i);
        r.seq = ring.push(&r).expect("stored");
        pushed.push(r);
        if i % 500 == 0 {
            ring.take_compressed(true);
        }
    }
    ring.take_compressed(true);
    pushed
}

/// The dictionary ids the sealed compressed chunks name (0 for none),
/// with how many chunks name each.
fn named(ring: &Ring) -> std::collections::BTreeMap<u32, usize> {
    let mut m = std::collections::BTreeMap::new();
    for meta in &ring.sealed {
        let h = ring.store.slot_header(meta.slot as usize);
        if h.state == store::STATE_SEALED && h.codec == store::CODEC_ZSTD {
            *m.entry(h.dict).or_default() += 1;
        }
    }
    m
}

fn held(ring: &Ring) -> Vec<Record> {
    ring.iter_from(0).collect()
}

/// A ring that learned a dictionary from sshd lines, then was fed a log
/// unlike it and learned another: chunks of both kinds in one ring.
fn two_dictionaries() -> (Ring, Vec<Record>) {
    let mut ring = small_chunks();
    let mut pushed = push_all(&mut ring, sshd, 0, 3000);
    assert_eq!(ring.dicts.list.len(), 1, "one dictionary learned");
    let first = ring.dicts.current.expect("in use");
    pushed.extend(push_all(&mut ring, blocks, 3000, 12_000));
    let second = ring.dicts.current.expect("in use");
    assert_ne!(first, second, "a second dictionary for the new log");
    let named = named(&ring);
    assert!(named.get(&first).is_some_and(|&n| n > 0), "{named:?}");
    assert!(named.get(&second).is_some_and(|&n| n > 0), "{named:?}");
    // What the budget kept is what was pushed, read back exactly.
    let kept = held(&ring);
    assert_eq!(kept.len(), ring.len());
    for r in &kept {
        assert_eq!(*r, pushed[r.seq as usize]);
    }
    assert!(
        kept.first().is_some_and(|r| r.source == "sshd"),
        "both logs held"
    );
    (ring, kept)
}

#[test]
fn chunks_compressed_with_dictionaries_read_back_across_a_change() {
    let (ring, pushed) = two_dictionaries();
    assert_eq!(held(&ring), pushed);
    // Each dictionary's slot is counted in the ring's bytes.
    let dict_pages: usize = ring.dicts.list.iter().map(|d| d.footprint).sum();
    assert!(dict_pages >= 2 * page_round(SLOT_HEADER + 1));
    assert!(ring.pages >= dict_pages);
}

#[test]
fn a_dictionary_pays_on_the_log_it_was_learned_from() {
    let mut with = small_chunks();
    push_all(&mut with, sshd, 0, 20_000);
    let opts = RingOptions::default();
    // The same ring without training: a budget too small for a dictionary
    // gets none, so compare chunk bytes, not budgets.
    let mut without = Ring::with_options(LIMITS, opts).unwrap();
    without.chunk_cap = 16 << 10;
    without.compressor = compressor::Compressor::start(0);
    push_all(&mut without, sshd, 0, 20_000);
    assert!(without.dicts.list.is_empty());
    let stored = |r: &Ring, dict: bool| -> (usize, usize) {
        r.sealed
            .iter()
            .map(|m| *r.store.slot_header(m.slot as usize))
            .filter(|h| h.codec == store::CODEC_ZSTD && (h.dict != 0) == dict)
            .fold((0, 0), |(s, n), h| {
                (s + h.stored_len as usize, n + h.count as usize)
            })
    };
    let (s1, n1) = stored(&with, true);
    let (s0, n0) = stored(&without, false);
    assert!(n1 > 0 && n0 > 0);
    let (b1, b0) = (s1 as f64 / n1 as f64, s0 as f64 / n0 as f64);
    assert!(
        b1 < b0 * 0.95,
        "{b1:.1} bytes per entry with a dictionary, {b0:.1} without"
    );
}

#[test]
fn dictionaries_survive_adoption_and_snapshots() {
    let (ring, pushed) = two_dictionaries();
    let ids: Vec<u32> = named(&ring).keys().copied().collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring.snapshot");
    ring.save_snapshot(&path).unwrap();
    let fd = ring.memfd().unwrap().try_clone_to_owned().unwrap();
    drop(ring);
    let mut next = Ring::adopt(fd, LIMITS, RingOptions::default()).unwrap();
    assert_eq!(held(&next), pushed);
    assert_eq!(named(&next).keys().copied().collect::<Vec<_>>(), ids);
    // The successor goes on with the newest dictionary.
    let current = next.dicts.current;
    assert!(current.is_some());
    let more = push_all(&mut next, blocks, 15_000, 500);
    assert!(held(&next).ends_with(&more));
    assert_eq!(next.dicts.current, current);

    let bytes = std::fs::read(&path).unwrap();
    let loaded = Ring::from_snapshot(&bytes, &path, LIMITS, RingOptions::default()).unwrap();
    assert_eq!(held(&loaded), pushed);
    assert_eq!(named(&loaded).keys().copied().collect::<Vec<_>>(), ids);
}

#[test]
fn a_damaged_dictionary_refuses_only_the_chunks_that_name_it() {
    let (mut ring, pushed) = two_dictionaries();
    let victim = ring.dicts.list.iter().min_by_key(|d| d.gen).unwrap();
    let (id, slot) = (victim.id, victim.slot as usize);
    // The seq ranges of the chunks that name it, and of the others.
    let mut lost = Vec::new();
    for m in &ring.sealed {
        let h = ring.store.slot_header(m.slot as usize);
        if h.codec == store::CODEC_ZSTD && h.dict == id {
            lost.push(m.first_seq..m.end_seq);
        }
    }
    assert!(!lost.is_empty());
    ring.store.slot_mut(slot).1[100] ^= 0x55;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring.snapshot");
    ring.save_snapshot(&path).unwrap();
    let fd = ring.memfd().unwrap().try_clone_to_owned().unwrap();
    drop(ring);
    let want: Vec<Record> = pushed
        .into_iter()
        .filter(|r| !lost.iter().any(|l| l.contains(&r.seq)))
        .collect();
    let bytes = std::fs::read(&path).unwrap();
    let loaded = Ring::from_snapshot(&bytes, &path, LIMITS, RingOptions::default()).unwrap();
    let mut next = Ring::adopt(fd, LIMITS, RingOptions::default()).unwrap();
    for r in [&loaded, &next] {
        assert!(!r.dicts.has(id), "the damaged dictionary is refused");
        assert!(!named(r).contains_key(&id));
        assert_eq!(held(r), want, "every other entry is kept");
        assert_eq!(r.len(), want.len());
    }
    assert!(next.push(&sshd(99_999)).is_some());
}

#[test]
fn decompressing_with_the_wrong_or_no_dictionary_fails_cleanly() {
    let mut ring = small_chunks();
    push_all(&mut ring, sshd, 0, 12_000);
    let d = &ring.dicts.list[0];
    let len = ring.store.slot_header(d.slot as usize).stored_len as usize;
    let dict_bytes = ring.store.slot_data(d.slot as usize)[..len].to_vec();
    let raw: Vec<u8> = (0..4000).flat_map(|i| sshd(i).msg.into_bytes()).collect();
    let mut cctx = zstd::bulk::Compressor::new(dict::LEVEL).unwrap();
    let active = dict::Active::new(1, &dict_bytes).unwrap();
    let packed = compressor::compress(&mut cctx, Some(&active), &raw, Vec::new()).unwrap();
    let ddict = DDict::create(&dict_bytes);
    let mut dctx = chunk::dctx().unwrap();
    let mut out = Vec::new();
    assert!(chunk::decompress(
        &mut dctx,
        &packed,
        raw.len(),
        Some(&ddict),
        &mut out
    ));
    assert_eq!(out, raw);
    // Without its dictionary, or with another, the frame does not decode.
    assert!(!chunk::decompress(
        &mut dctx,
        &packed,
        raw.len(),
        None,
        &mut out
    ));
    let other = DDict::create(b"a dictionary of other words entirely, not trained");
    assert!(!chunk::decompress(
        &mut dctx,
        &packed,
        raw.len(),
        Some(&other),
        &mut out
    ));
    // Damaged bytes: refused, never a panic.
    let mut bad = packed.clone();
    for i in (0..bad.len()).step_by(97) {
        bad[i] ^= 0xa5;
    }
    let _ = chunk::decompress(&mut dctx, &bad, raw.len(), Some(&ddict), &mut out);
    assert!(!chunk::decompress(
        &mut dctx,
        &packed[..packed.len() / 2],
        raw.len(),
        Some(&ddict),
        &mut out
    ));
}
