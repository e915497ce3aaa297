//! What the heap knows of each chunk without decoding it: its sequence
//! range, its live entries per source and severity class, and (on demand)
//! one small fact per record. Eviction and stats work from this directory;
//! the records themselves stay in the memfd.
//!
//! Beside the sources, [`Owned`] counts entries per source and sender uid
//! (the uid the kernel gave, for entries that carry one), so a reader
//! restricted to its own entries can be shown its own sources and nothing
//! of anyone else's. Each record's [`Entry`] names its (source, uid) pair
//! by a 16-bit id that fits in the entry's padding: the index stays 16
//! bytes an entry, and eviction counts a pair without hashing. The pairs
//! live on the heap only, so the memfd's format is unchanged (a re-exec
//! onto an older or newer ringlogd still adopts the ring); a successor
//! rebuilds them from the records it decodes when it adopts the memfd: the
//! entries held per pair are exact again, and stored and evicted count
//! from there (stored = held, evicted = 0 at adoption).
//!
//! The cost: no heap bytes per entry; about 90 bytes per pair (its
//! figures, its place in the lookup table), counted in the ring's budget;
//! on a push, one compare when the source's last sender sent it again, or
//! else a lookup with a multiply-and-shift hash.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::evict::TIERS;

/// Eviction classes, evicted first to last: debug/info (or no severity),
/// notice/warning, err and worse.
pub(super) const CLASS_LOW: u8 = 0;
pub(super) const CLASS_MID: u8 = 1;
pub(super) const CLASS_HIGH: u8 = 2;

pub(super) fn class_of(severity: Option<u8>) -> u8 {
    match severity {
        Some(0..=3) => CLASS_HIGH,
        Some(4 | 5) => CLASS_MID,
        _ => CLASS_LOW,
    }
}

/// Live entries of one source and class in a chunk.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tally {
    pub(super) source: u16,
    pub(super) class: u8,
    pub(super) live: u32,
}

/// What eviction needs to know of one record without decoding it again.
#[derive(Clone, Copy, Debug)]
pub(super) struct Entry {
    pub(super) seq: u64,
    pub(super) source: u16,
    /// Its (source, sender uid) pair in [`Owned`]; 0 for none.
    pub(super) owned: u16,
    pub(super) class: u8,
    pub(super) input: u8,
    pub(super) live: bool,
}

// The pair id lives in what was padding: the index costs what it did.
const _: () = assert!(std::mem::size_of::<Entry>() == 16);

/// A chunk as the heap knows it; its bytes are in the memfd.
#[derive(Debug)]
pub(super) struct ChunkMeta {
    pub(super) slot: u32,
    pub(super) gen: u64,
    pub(super) first_seq: u64,
    pub(super) end_seq: u64,
    pub(super) base_ns: i64,
    pub(super) count: u32,
    pub(super) live: u32,
    pub(super) raw_len: u32,
    /// Bytes counted for the slot: its resident pages.
    pub(super) footprint: usize,
    /// The oldest live entry's sequence number (when `live > 0`).
    pub(super) first_live: u64,
    pub(super) tallies: Vec<Tally>,
    /// Per-record facts, kept for the open chunk and built on demand for
    /// a sealed chunk eviction works on.
    pub(super) index: Option<Vec<Entry>>,
    /// Per eviction tier: entries before this position of `index` hold
    /// none of the tier's live entries.
    pub(super) hints: [u32; TIERS],
    /// The `over_epoch` the over-share tiers' hints were made in.
    pub(super) hints_epoch: u64,
    /// The ring's `release_epoch` every hint was made in.
    pub(super) release_epoch: u64,
}

impl ChunkMeta {
    /// Heap bytes beside the ChunkMeta itself.
    pub(super) fn heap_bytes(&self) -> usize {
        self.tallies.capacity() * std::mem::size_of::<Tally>()
            + self
                .index
                .as_ref()
                .map_or(0, |i| i.capacity() * std::mem::size_of::<Entry>())
    }

    pub(super) fn tally_mut(&mut self, source: u16, class: u8) -> &mut Tally {
        let pos = match self
            .tallies
            .iter()
            .rposition(|t| t.source == source && t.class == class)
        {
            Some(p) => p,
            None => {
                self.tallies.push(Tally {
                    source,
                    class,
                    live: 0,
                });
                self.tallies.len() - 1
            }
        };
        &mut self.tallies[pos]
    }
}

/// Sources by name: ids for tallies, and how many entries each holds.
#[derive(Default)]
pub(super) struct Sources {
    pub(super) ids: HashMap<Box<str>, u16>,
    /// Live entries per source id, by class.
    pub(super) held: Vec<[u64; 3]>,
    /// The id the last lookup found.
    pub(super) last: Option<u16>,
}

impl Sources {
    pub(super) fn total(&self, id: u16) -> u64 {
        self.held[id as usize].iter().sum()
    }
}

/// One (source, sender uid) pair's figures.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct OwnedCounts {
    pub(super) source: u16,
    pub(super) uid: u32,
    pub(super) stored: u64,
    pub(super) held: u64,
    pub(super) evicted: u64,
}

/// Entries per source and sender uid, for the entries whose sender the
/// kernel identified. Pair 0 collects the rest (no sender uid, or a pair
/// past [`MAX_OWNED_PAIRS`]) and is never shown.
pub(super) struct Owned {
    ids: HashMap<(u16, u32), u16, BuildHasherDefault<PairHasher>>,
    pub(super) counts: Vec<OwnedCounts>,
    /// Per source id, the uid and pair its last lookup found: a source is
    /// mostly one sender's, so most pushes find their pair here.
    last: Vec<(u32, u16)>,
}

/// Hashes a (source, uid) pair with a multiply. The keys are the ring's
/// own source ids and the kernel's uids, small integers no sender picks,
/// so a keyed hash (SipHash, a tenth of a push) buys nothing here.
#[derive(Default)]
pub(super) struct PairHasher(u64);

impl Hasher for PairHasher {
    fn finish(&self) -> u64 {
        let x = self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^ (x >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u16(&mut self, n: u16) {
        self.0 = self.0.rotate_left(32) ^ u64::from(n);
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = self.0.rotate_left(32) ^ u64::from(n);
    }
}

/// The most (source, uid) pairs counted: only root (or a container's uid
/// range) sends as many uids, and the table stays small (about 40 bytes a
/// pair, counted in the ring's heap).
pub(super) const MAX_OWNED_PAIRS: usize = 16 * 1024;

impl Default for Owned {
    fn default() -> Owned {
        Owned {
            ids: HashMap::default(),
            counts: vec![OwnedCounts::default()],
            last: Vec::new(),
        }
    }
}

impl Owned {
    /// The id of the pair (`source`, `uid`), registering it the first
    /// time; 0 with no uid or past the bound.
    pub(super) fn id(&mut self, source: u16, uid: Option<u32>) -> u16 {
        let Some(uid) = uid else {
            return 0;
        };
        if let Some(&(u, id)) = self.last.get(source as usize) {
            if u == uid && id != 0 {
                return id;
            }
        }
        let id = match self.ids.get(&(source, uid)) {
            Some(&id) => id,
            None if self.counts.len() > MAX_OWNED_PAIRS => return 0,
            None => {
                let id = self.counts.len() as u16;
                self.ids.insert((source, uid), id);
                self.counts.push(OwnedCounts {
                    source,
                    uid,
                    ..OwnedCounts::default()
                });
                id
            }
        };
        if self.last.len() <= source as usize {
            self.last.resize(source as usize + 1, (0, 0));
        }
        self.last[source as usize] = (uid, id);
        id
    }

    pub(super) fn stored(&mut self, id: u16) {
        let c = &mut self.counts[id as usize];
        c.stored += 1;
        c.held += 1;
    }

    pub(super) fn evicted(&mut self, id: u16) {
        let c = &mut self.counts[id as usize];
        c.held = c.held.saturating_sub(1);
        c.evicted += 1;
    }

    /// Every entry gone, not evicted: stored and evicted stay.
    pub(super) fn clear(&mut self) {
        for c in &mut self.counts {
            c.held = 0;
        }
    }

    /// The pairs of `uid` with anything stored.
    pub(super) fn of(&self, uid: u32) -> impl Iterator<Item = &OwnedCounts> {
        self.counts[1..]
            .iter()
            .filter(move |c| c.uid == uid && c.stored > 0)
    }

    /// Heap bytes the pairs take.
    pub(super) fn heap_bytes(&self) -> usize {
        self.counts.capacity() * std::mem::size_of::<OwnedCounts>()
            + self.ids.capacity() * (std::mem::size_of::<((u16, u32), u16)>() + 1)
            + self.last.capacity() * std::mem::size_of::<(u32, u16)>()
    }
}

pub(super) fn new_open(slot: u32, gen: u64, seq: u64) -> ChunkMeta {
    ChunkMeta {
        slot,
        gen,
        first_seq: seq,
        end_seq: seq,
        base_ns: 0,
        count: 0,
        live: 0,
        raw_len: 0,
        footprint: 0,
        first_live: seq,
        tallies: Vec::new(),
        index: Some(Vec::new()),
        hints: [0; TIERS],
        hints_epoch: 0,
        release_epoch: 0,
    }
}
