//! Compression dictionaries learned from the ring's own chunks.
//!
//! A chunk compressed on its own pays again for everything that repeats
//! across chunks (host and app names, message templates). The compressor
//! thread keeps the newest records it compressed ([`Trainer`]) and, once it
//! has seen enough, makes a dictionary of them: zstd's raw-content kind,
//! the records themselves, newest last. On the corpus this compressed
//! unseen lines as well as a dictionary from zstd's trainer, which takes
//! several MiB and a tenth of a second to build one; this takes a copy.
//! The dictionary is offered to the ring only if it compresses the chunk at
//! hand better than what is used now, and a new one is made when chunks
//! compress clearly worse than they did when the dictionary was new (the
//! mix of sources has changed). None of it runs on the ingest path.
//!
//! The ring keeps each dictionary in a slot of its memfd (state
//! [`STATE_DICT`](super::store::STATE_DICT), checked by CRC like a sealed
//! chunk), so re-exec, the fd store and snapshots carry it, and its pages
//! count in the ring's bytes. Every zstd chunk names the dictionary it was
//! compressed with; a dictionary stays as long as a chunk names it or it is
//! the one in use ([`Dicts`]), so a new one never makes an old chunk
//! unreadable. A chunk whose dictionary is missing or damaged is refused
//! like a damaged chunk.

use std::collections::VecDeque;
use std::ops::ControlFlow;

use zstd::zstd_safe::{CDict, DDict};

use super::limits::Limits;
use super::store::{
    page_round, SlotHeader, CODEC_RAW, CODEC_ZSTD, MAX_CHUNK_RECORDS, SLOT_HEADER, SLOT_MAGIC,
    STATE_DICT, STATE_SEALED,
};
use super::{chunk, Ring};

/// Dictionaries held at once: the one in use and older ones that chunks
/// still name. A new one is taken only when a place is free.
pub const MAX_DICTS: usize = 4;
/// The zstd level chunks are compressed at, with a dictionary or without.
pub const LEVEL: i32 = 1;
/// Records seen before the first dictionary, as a multiple of its size.
const WINDOW_PER_DICT: usize = 2;
/// Windows of fresh samples between two trainings after the first: a
/// mix that keeps changing costs at most one training per this many.
const RETRAIN_WINDOWS: usize = 8;
/// A new dictionary must make the chunk at hand this much smaller (a
/// fraction of its size with what is used now) to be offered.
const MIN_GAIN: f64 = 0.03;
/// Train again when the recent compression ratio falls below this
/// fraction of the ratio the dictionary had when it was new.
const RETRAIN_BELOW: f64 = 0.95;
/// Chunks that set a new dictionary's ratio, and the weight a later chunk
/// has in the running ratio.
const SETTLE_CHUNKS: u32 = 4;
const EWMA_WEIGHT: f64 = 0.125;

/// The smallest budget that gets dictionaries: beside its slot, a
/// dictionary costs about 1 MiB of the daemon's memory outside the ring
/// (zstd's prepared forms and contexts), too much for a small ring.
pub const MIN_DICT_BUDGET: usize = super::limits::LARGE_RING;

/// The dictionary size for a ring of these limits, 0 for none: a 256th of
/// the budget, at most 64 KiB, for a budget of at least
/// [`MIN_DICT_BUDGET`].
pub fn dict_size(limits: Limits) -> usize {
    if limits.max_bytes < MIN_DICT_BUDGET {
        return 0;
    }
    (limits.max_bytes / 256).min(64 << 10)
}

/// One dictionary the ring holds.
pub struct Installed {
    pub id: u32,
    pub slot: u32,
    pub gen: u64,
    /// Resident bytes of its slot.
    pub footprint: usize,
    ddict: DDict<'static>,
}

/// The dictionaries the ring holds, and which one new chunks use.
#[derive(Default)]
pub struct Dicts {
    pub list: Vec<Installed>,
    /// The id of the dictionary new chunks are compressed with.
    pub current: Option<u32>,
}

impl Dicts {
    /// The prepared dictionary `id` names, if the ring holds it.
    pub fn ddict(&self, id: u32) -> Option<&DDict<'static>> {
        self.list.iter().find(|d| d.id == id).map(|d| &d.ddict)
    }

    pub fn has(&self, id: u32) -> bool {
        self.list.iter().any(|d| d.id == id)
    }

    /// Resident bytes of every dictionary's slot.
    pub fn footprint(&self) -> usize {
        self.list.iter().map(|d| d.footprint).sum()
    }

    /// An id no dictionary held has, never 0 (which means none).
    pub fn next_id(&self) -> u32 {
        let mut id = self.list.iter().map(|d| d.id).max().unwrap_or(0);
        loop {
            id = id.wrapping_add(1);
            if id != 0 && !self.has(id) {
                return id;
            }
        }
    }

    /// Hold `bytes` as dictionary `id`, kept in `slot`; the newest
    /// generation becomes the current one. False if zstd refuses the
    /// bytes as a dictionary (damaged, or foreign).
    pub fn add(&mut self, id: u32, slot: u32, gen: u64, footprint: usize, bytes: &[u8]) -> bool {
        let Some(ddict) = DDict::try_create(bytes) else {
            return false;
        };
        self.list.push(Installed {
            id,
            slot,
            gen,
            footprint,
            ddict,
        });
        self.current = self.list.iter().max_by_key(|d| d.gen).map(|d| d.id);
        true
    }

    /// Stop holding dictionary `id`; its slot and footprint, for the
    /// caller to free.
    pub fn remove(&mut self, id: u32) -> Option<(u32, usize)> {
        let i = self.list.iter().position(|d| d.id == id)?;
        let d = self.list.swap_remove(i);
        if self.current == Some(id) {
            self.current = None;
        }
        Some((d.slot, d.footprint))
    }
}

/// The compressor thread's dictionary in use: its id and prepared form.
pub struct Active {
    pub id: u32,
    pub cdict: CDict<'static>,
}

impl Active {
    /// `None` if zstd cannot prepare `bytes` as a dictionary.
    pub fn new(id: u32, bytes: &[u8]) -> Option<Active> {
        Some(Active {
            id,
            cdict: CDict::try_create(bytes, LEVEL)?,
        })
    }
}

/// The newest records and the running compression ratio, on the
/// compressor thread: says when a dictionary is due and makes it.
pub struct Trainer {
    /// The dictionary size to make; 0 turns dictionaries off.
    size: usize,
    /// Per chunk seen, newest last: whole records from its end, end to
    /// end, no more than `size` bytes of them in all.
    samples: VecDeque<Vec<u8>>,
    sampled: usize,
    /// Sample bytes seen since the last training.
    fresh: usize,
    /// The ratio of the current dictionary's first chunks, once settled.
    base: Option<f64>,
    settling: (u32, f64),
    recent: f64,
    /// A dictionary was trained (and maybe offered) already.
    trained: bool,
}

impl Trainer {
    pub fn new(size: usize) -> Trainer {
        Trainer {
            size,
            samples: VecDeque::new(),
            sampled: 0,
            fresh: 0,
            base: None,
            settling: (0, 0.0),
            recent: 0.0,
            trained: false,
        }
    }

    fn window(&self) -> usize {
        self.size * WINDOW_PER_DICT
    }

    /// A chunk of `raw` frames was compressed to `stored` bytes with the
    /// dictionary in use: keep its newest records, follow the ratio.
    pub fn observe(&mut self, raw: &[u8], stored: usize) {
        if self.size == 0 {
            return;
        }
        let mut records: Vec<&[u8]> = Vec::new();
        chunk::for_each_frame(raw, usize::MAX, 0, |fr| {
            records.push(fr.bytes);
            ControlFlow::Continue(())
        });
        let seen: usize = records.iter().map(|r| r.len()).sum();
        // Whole records, so a dictionary starts at a record's first byte
        // (an input code, never the first byte of zstd's dictionary mark).
        let mut take = 0;
        let mut from = records.len();
        while from > 0 && take + records[from - 1].len() <= self.size {
            from -= 1;
            take += records[from].len();
        }
        let tail: Vec<u8> = records[from..].concat();
        self.fresh += seen;
        self.sampled += tail.len();
        self.samples.push_back(tail);
        while self.samples.len() > 1
            && self.sampled - self.samples.front().map_or(0, Vec::len) >= self.size
        {
            let d = self.samples.pop_front().expect("more than one");
            self.sampled -= d.len();
        }
        let ratio = raw.len() as f64 / stored.max(1) as f64;
        match self.base {
            None => {
                self.settling.0 += 1;
                self.settling.1 += ratio;
                if self.settling.0 >= SETTLE_CHUNKS {
                    let base = self.settling.1 / f64::from(self.settling.0);
                    self.base = Some(base);
                    self.recent = base;
                }
            }
            Some(_) => self.recent += (ratio - self.recent) * EWMA_WEIGHT,
        }
    }

    /// A new dictionary is in use: its ratio is measured afresh.
    pub fn installed(&mut self) {
        self.base = None;
        self.settling = (0, 0.0);
    }

    /// Whether to train now: a window of fresh samples, and no dictionary
    /// yet or one that compresses clearly worse than it did.
    pub fn due(&self, has_dict: bool) -> bool {
        if self.size == 0 {
            return false;
        }
        if !has_dict && !self.trained {
            return self.fresh >= self.window();
        }
        // A dictionary offered may still be on its way to the ring, or
        // have been refused: either way, the next waits.
        self.fresh >= self.window() * RETRAIN_WINDOWS
            && (!has_dict || self.base.is_some_and(|b| self.recent < b * RETRAIN_BELOW))
    }

    /// A dictionary of the newest whole records held, at most `size`
    /// bytes, oldest first (zstd reaches the end of a dictionary with the
    /// shortest offsets); the next waits for more fresh records.
    pub fn train(&mut self) -> Option<Vec<u8>> {
        self.fresh = 0;
        self.trained = true;
        let mut parts: Vec<&[u8]> = Vec::new();
        let mut len = 0;
        for chunk in self.samples.iter().rev() {
            if len + chunk.len() > self.size {
                break;
            }
            len += chunk.len();
            parts.push(chunk);
        }
        parts.reverse();
        let dict = parts.concat();
        (dict.len() >= 8).then_some(dict)
    }

    /// Whether a candidate that compresses a chunk to `candidate` bytes
    /// is worth offering over what gives `now` bytes.
    pub fn worth(now: usize, candidate: usize) -> bool {
        (candidate as f64) < now as f64 * (1.0 - MIN_GAIN)
    }
}

impl Ring {
    /// Keep `bytes`, trained by the compressor thread, as the dictionary
    /// new chunks use: in a slot of its own, then told to the thread. Not
    /// taken when no place or slot is free (the thread offers another
    /// later).
    pub(super) fn install_dict(&mut self, bytes: Vec<u8>) {
        self.sweep_dicts();
        let payload = self.store.slot_size - SLOT_HEADER;
        if self.dicts.list.len() >= MAX_DICTS || bytes.is_empty() || bytes.len() > payload {
            return;
        }
        let Some(slot) = self.pop_free() else {
            return;
        };
        let gen = self.next_gen();
        let id = self.dicts.next_id();
        let (h, data) = self.store.slot_mut(slot as usize);
        data[..bytes.len()].copy_from_slice(&bytes);
        *h = SlotHeader {
            magic: SLOT_MAGIC,
            state: STATE_DICT,
            gen,
            first_seq: 0,
            end_seq: 0,
            base_ns: 0,
            count: 0,
            raw_len: bytes.len() as u32,
            stored_len: bytes.len() as u32,
            codec: CODEC_RAW,
            crc: crc32fast::hash(&bytes),
            dict: id,
            dead: [0; MAX_CHUNK_RECORDS / 64],
        };
        let footprint = page_round(SLOT_HEADER + bytes.len());
        self.pages += footprint;
        if !self.dicts.add(id, slot, gen, footprint, &bytes) {
            self.give_back(slot, footprint);
            return;
        }
        if let Some(c) = &mut self.compressor {
            c.use_dict(id, bytes);
        }
    }

    /// Tell a compressor thread just started which dictionary to use.
    pub(super) fn send_current_dict(&mut self) {
        let Some(d) = self
            .dicts
            .current
            .and_then(|id| self.dicts.list.iter().find(|d| d.id == id))
        else {
            return;
        };
        let bytes = self.dict_bytes(d).to_vec();
        let id = d.id;
        if let Some(c) = &mut self.compressor {
            c.use_dict(id, bytes);
        }
    }

    /// Free the dictionaries no chunk names any more, but the one in use.
    pub(super) fn sweep_dicts(&mut self) {
        if self.dicts.list.len() <= 1 {
            return;
        }
        let named: Vec<u32> = self
            .sealed
            .iter()
            .map(|m| self.store.slot_header(m.slot as usize))
            .filter(|h| h.state == STATE_SEALED && h.codec == CODEC_ZSTD)
            .map(|h| h.dict)
            .collect();
        let unused: Vec<u32> = self
            .dicts
            .list
            .iter()
            .map(|d| d.id)
            .filter(|&id| Some(id) != self.dicts.current && !named.contains(&id))
            .collect();
        for id in unused {
            if let Some((slot, footprint)) = self.dicts.remove(id) {
                self.give_back(slot, footprint);
            }
        }
    }

    /// Take back the dictionaries a predecessor's memfd holds, before its
    /// chunks (which name them) are loaded: those whose slot is whole
    /// (its CRC matches), newest first, at most [`MAX_DICTS`]. The others'
    /// slots are freed; a chunk that names one is then refused. Returns
    /// the slots kept.
    pub(super) fn recover_dicts(&mut self, in_use: &[usize]) -> Vec<usize> {
        let payload = self.store.slot_size - SLOT_HEADER;
        let mut found: Vec<(u64, usize)> = Vec::new();
        for &slot in in_use {
            let h = self.store.slot_header(slot);
            if h.magic != SLOT_MAGIC || h.state != STATE_DICT {
                continue;
            }
            let len = h.stored_len as usize;
            let whole = h.dict != 0
                && len > 0
                && len <= payload
                && h.gen < super::persist::SEQ_LIMIT
                && crc32fast::hash(&self.store.slot_data(slot)[..len]) == h.crc;
            if whole {
                found.push((h.gen, slot));
            } else {
                self.store.free(slot);
            }
        }
        found.sort_by_key(|&(gen, _)| std::cmp::Reverse(gen));
        let mut kept = Vec::new();
        for (gen, slot) in found {
            let h = *self.store.slot_header(slot);
            if kept.len() >= MAX_DICTS || self.dicts.has(h.dict) {
                self.store.free(slot);
                continue;
            }
            let len = h.stored_len as usize;
            let footprint = page_round(SLOT_HEADER + len);
            self.store.punch(slot, footprint);
            let bytes = self.store.slot_data(slot)[..len].to_vec();
            if self.dicts.add(h.dict, slot as u32, gen, footprint, &bytes) {
                kept.push(slot);
            } else {
                self.store.free(slot);
            }
        }
        kept
    }

    /// Each dictionary's slot header and bytes, for a snapshot.
    pub(super) fn dict_slots(&self) -> Vec<(SlotHeader, &[u8])> {
        self.dicts
            .list
            .iter()
            .map(|d| (*self.store.slot_header(d.slot as usize), self.dict_bytes(d)))
            .collect()
    }

    /// The bytes of dictionary `d`, in its slot.
    fn dict_bytes(&self, d: &Installed) -> &[u8] {
        let len = self.store.slot_header(d.slot as usize).stored_len as usize;
        &self.store.slot_data(d.slot as usize)[..len]
    }
}
