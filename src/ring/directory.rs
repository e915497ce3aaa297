//! What the heap knows of each chunk without decoding it: its sequence
//! range, its live entries per source and severity class, and (on demand)
//! one small fact per record. Eviction and stats work from this directory;
//! the records themselves stay in the memfd.

use std::collections::HashMap;

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
    pub(super) class: u8,
    pub(super) input: u8,
    pub(super) live: bool,
}

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
    }
}
