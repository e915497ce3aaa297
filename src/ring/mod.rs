//! The ring: a bounded, in-memory sequence of records that every source
//! pushes into and every query reads from.
//!
//! Records are encoded ([`codec`]) and framed ([`chunk`]) back to back in
//! chunks. The newest chunk stays raw, so a push is a copy; a full chunk is
//! sealed: compressed with zstd level 1 (unless `--compress none`), with a
//! dictionary learned from the ring's own chunks once there is one
//! ([`dict`]), into a slot of its own. All of it lives in one memfd
//! ([`store`]) together with the ledger and the ring's own state, so a
//! successor process (re-exec, the systemd fd store, even after a crash)
//! adopts the memfd and goes on with the same entries, sequence numbers and
//! counters ([`persist`]).
//!
//! The ring is bounded twice: by a number of entries (`max_lines`) and by
//! the memory it really occupies (`max_bytes`: resident pages of the
//! memfd, sealed chunks at their compressed size, plus every index the
//! ring keeps on the heap). When a bound is reached, [`Evict::Fair`] takes
//! whole entries from a source holding more than its share first, and
//! debug/info before notice/warning before err and worse; [`Evict::Fifo`]
//! takes the oldest. An evicted entry is marked dead in its chunk's bitmap
//! at once; a chunk is rewritten without its dead entries when eviction
//! moves past it, and freed when none is left.
//!
//! Every record gets the next sequence number. Readers hold a sequence
//! number (their cursor) and a [`ReadCache`] (one decompressed chunk); a
//! reader that finds a gap between its cursor and the next entry held was
//! overtaken by eviction and knows exactly how many entries it missed.

pub mod capture;
pub mod chunk;
pub mod codec;
mod compressor;
mod dict;
mod directory;
mod evict;
mod evictlog;
mod lifecycle;
mod limits;
pub mod persist;
mod read;
mod seqmark;
mod slots;
pub mod store;

use std::collections::VecDeque;
use std::ops::{ControlFlow, Deref, DerefMut};
use std::ptr::NonNull;

use crate::ledger::Ledger;
use crate::record::{truncated_str, Record, RecordRef};
use capture::Captures;
use directory::{class_of, new_open, ChunkMeta, Entry, Owned, Sources};
use evict::TIERS;
use evictlog::EvictionLog;
pub use limits::{
    Compress, Evict, Limits, RingOptions, DEFAULT_MAX_BYTES, DEFAULT_MAX_LINES, DEFAULT_MAX_TEXT,
    DEFAULT_SOURCE_SHARE, MIN_MAX_BYTES,
};
pub use read::ReadCache;
pub use seqmark::{SeqMark, SeqMarkNews};
use slots::WarmSlot;
use store::{page_round, Store, MAX_CHUNK_RECORDS, SLOT_HEADER, SOURCES_OFFSET, SOURCE_NAME_MAX};

/// An input's resume point, as the ring keeps it for a successor.
pub type ResumeCookie = [u8; 56];

/// Why a memfd or snapshot could not be taken over.
#[derive(Debug)]
pub struct RingError(pub String);

impl std::fmt::Display for RingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RingError {}

/// The ledger, where the ring keeps it: in the memfd's header.
pub struct LedgerCell(NonNull<Ledger>);

impl Deref for LedgerCell {
    type Target = Ledger;
    fn deref(&self) -> &Ledger {
        // SAFETY: points into the header mapping of the ring's store, which
        // lives as long as the ring and never moves; every bit pattern is a
        // valid Ledger.
        unsafe { self.0.as_ref() }
    }
}

impl DerefMut for LedgerCell {
    fn deref_mut(&mut self) -> &mut Ledger {
        // SAFETY: as in `deref`; only the ring hands out this reference.
        unsafe { self.0.as_mut() }
    }
}

// The ledger is part of the ring's store, which the ring owns.
unsafe impl Send for LedgerCell {}

/// Figures that describe the ring's state, for stats.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct RingStats {
    pub entries: usize,
    /// All-in: resident pages of the memfd and every index on the heap.
    pub bytes: usize,
    /// What the held entries take encoded but uncompressed.
    pub raw_bytes: usize,
    pub chunks: usize,
    /// Compression dictionaries held (learned from the ring's chunks), and
    /// the bytes of memfd they take (part of `bytes`).
    pub dicts: usize,
    pub dict_bytes: usize,
    pub max_lines: usize,
    pub max_bytes: usize,
    pub first_seq: u64,
    pub next_seq: u64,
    pub compress: &'static str,
    pub evict: &'static str,
    pub source_share: f64,
}

/// One source's figures, for stats.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SourceStats {
    pub name: String,
    pub stored: u64,
    pub held: u64,
    pub evicted: u64,
}

/// The bounded store every source pushes into and every query reads from.
pub struct Ring {
    /// What arrived, what was kept and what was lost, per input.
    pub ledger: LedgerCell,
    store: Store,
    limits: Limits,
    opts: RingOptions,
    chunk_cap: usize,
    sealed: VecDeque<ChunkMeta>,
    open: ChunkMeta,
    /// Slots freed, for reuse first.
    free_slots: Vec<u32>,
    /// One freed slot whose pages were kept, to take the next open chunk:
    /// records written into pages already there cost no page faults,
    /// where a punched slot has every page faulted in and zeroed again
    /// (at full ingest that was a twentieth of the daemon's time). Its
    /// pages stay counted in `pages`, and go first when the budget binds.
    warm: Option<WarmSlot>,
    /// Slots from here on were never used: a large ring's slots cost
    /// nothing until needed, not even a list entry.
    fresh: u32,
    len: usize,
    /// Resident pages of the memfd the ring counts: the header and source
    /// table, the open chunk's pages, every sealed chunk's.
    pages: usize,
    /// Heap bytes of the chunk directory and its indexes.
    heap: usize,
    sources: Sources,
    /// Entries per source and sender uid, for restricted readers' stats.
    owned: Owned,
    /// The chunk eviction last took from: rewritten without its dead
    /// entries once eviction moves on.
    evicting: Option<(u32, u64)>,
    /// Per eviction tier: no sealed chunk ending at or below this sequence
    /// number holds a live entry of the tier.
    tier_seq: [u64; TIERS],
    /// Sources over their share at the last eviction, and a count of the
    /// times one joined them.
    over: Vec<bool>,
    over_epoch: u64,
    scratch: Vec<u8>,
    frame: Vec<u8>,
    cctx: Option<zstd::bulk::Compressor<'static>>,
    /// Compresses sealed chunks off the ingest path (started on the first).
    compressor: Option<compressor::Compressor>,
    /// Chunk-sized buffers going to and from the compressor, for reuse.
    spare_bufs: Vec<Vec<u8>>,
    dctx: zstd::zstd_safe::DCtx<'static>,
    /// The compression dictionaries chunks name (see [`dict`]).
    dicts: dict::Dicts,
    /// This machine's host name, shared by the records that carry it.
    local_host: String,
    /// New entries are refused (and counted as dropped) while paused.
    paused: bool,
    /// Keeps sequence numbers going up across a crash (see [`seqmark`]).
    seq_mark: Option<SeqMark>,
    /// Entries taken out so far, by eviction or a clear: a reader that
    /// sees it unchanged knows a gap it meets is not news.
    removals: u64,
    /// The entries around triggers, kept from eviction (see [`capture`]).
    captures: Captures,
    /// Counts releases of captures: eviction's proofs of where nothing is
    /// left to take (`tier_seq`, a chunk's `hints`) were made before.
    release_epoch: u64,
    /// What fair eviction took out of turn, for readers (see [`evictlog`]).
    evictions: EvictionLog,
    /// The receive time of the entry being stored: eviction's clock.
    push_ns: i64,
}

/// What fair eviction took out of turn from one source, as a reader is
/// told at the hole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvictionNote {
    /// Tells notes apart: a reader is told of each once.
    pub id: u64,
    pub source: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub count: u64,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("len", &self.len)
            .field("next_seq", &self.next_seq())
            .field("bytes", &self.used())
            .finish()
    }
}

impl Ring {
    /// An empty ring with the default options.
    ///
    /// # Panics
    /// If no memfd can be created (no memory): use [`Ring::with_options`]
    /// to get the error instead.
    pub fn new(limits: Limits) -> Ring {
        Ring::with_options(limits, RingOptions::default()).expect("cannot create the ring's memfd")
    }

    /// An empty ring stored as `opts` says, in a fresh memfd.
    pub fn with_options(limits: Limits, opts: RingOptions) -> std::io::Result<Ring> {
        let limits = limits.clamped();
        let chunk_cap = limits.chunk_cap();
        // Room for one record of the longest text beside its fields.
        let slot_size = page_round(SLOT_HEADER + chunk_cap.max(opts.max_text + (16 << 10)));
        let store = Store::create(slot_size, limits.slot_count())?;
        Ok(Ring::from_store(store, limits, opts))
    }

    /// A fresh ring over a fresh `store`: slot 0 holds the open chunk.
    fn from_store(store: Store, limits: Limits, opts: RingOptions) -> Ring {
        let mut ring = Ring::from_store_parts(store, limits, opts);
        if ring.store.header().sources_len == 0 {
            ring.store.header_mut().sources_len = 1;
            let e = &mut ring.store.sources_mut()[0];
            e.name_len = 7;
            e.name[..7].copy_from_slice(b"(other)");
        }
        let seq = ring.store.header().next_seq;
        ring.reset_open(0, seq);
        // reset_open wrote the slot's header: its first page is resident.
        ring.open.footprint = page_round(SLOT_HEADER);
        ring.recount();
        ring
    }

    /// The ring's heap side over `store`, holding nothing yet.
    fn from_store_parts(store: Store, limits: Limits, opts: RingOptions) -> Ring {
        let payload = store.slot_size - SLOT_HEADER;
        let ledger = LedgerCell(store.ledger_ptr());
        let store_captures = store.captures_ptr();
        let mut ring = Ring {
            ledger,
            store,
            limits,
            opts,
            chunk_cap: limits.chunk_cap().min(payload),
            sealed: VecDeque::new(),
            open: new_open(0, 0, 0),
            free_slots: Vec::new(),
            warm: None,
            fresh: 1,
            len: 0,
            pages: 0,
            heap: 0,
            sources: Sources::default(),
            owned: Owned::default(),
            evicting: None,
            tier_seq: [0; TIERS],
            over: Vec::new(),
            over_epoch: 0,
            scratch: Vec::new(),
            frame: Vec::new(),
            cctx: None,
            compressor: None,
            spare_bufs: Vec::new(),
            dctx: chunk::dctx().expect("zstd decompression context"),
            dicts: dict::Dicts::default(),
            local_host: String::new(),
            paused: false,
            seq_mark: None,
            removals: 0,
            captures: Captures::new(store_captures),
            release_epoch: 0,
            evictions: EvictionLog::default(),
            push_ns: 0,
        };
        let next_seq = ring.store.header().next_seq;
        ring.captures.adopt(next_seq);
        ring.sources.held.push([0; 3]);
        ring.sources.ids.insert("(other)".into(), 0);
        ring
    }

    /// The memfd the ring lives in: hand it to a successor (re-exec, the
    /// systemd fd store) and [`Ring::adopt`] it there.
    pub fn memfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        Some(self.store.fd())
    }

    /// Where an input with positions of its own (the kernel log) was
    /// left, if a predecessor said: bytes only that input reads.
    pub fn resume_cookie(&self) -> Option<ResumeCookie> {
        let h = self.store.header();
        (h.resume_valid == 1).then_some(h.resume)
    }

    /// Keep where that input has been read up to, in the memfd, so a
    /// successor goes on from there.
    pub fn set_resume_cookie(&mut self, cookie: ResumeCookie) {
        let h = self.store.header_mut();
        h.resume = cookie;
        h.resume_valid = 1;
    }

    /// This machine's host name: records that carry it store a flag instead.
    pub fn set_local_host(&mut self, host: impl Into<String>) {
        // Chunks already written were encoded against the old name.
        if !self.is_empty() || self.next_seq() > 0 {
            return;
        }
        let host = host.into();
        let h = self.store.header_mut();
        let n = host.len().min(h.local_host.len());
        if n < host.len() {
            // Too long to keep in the header: stored in every record instead.
            return;
        }
        h.local_host[..n].copy_from_slice(&host.as_bytes()[..n]);
        h.local_host_len = n as u32;
        self.local_host = host;
    }

    fn context(&self, base_ns: i64) -> codec::Context<'_> {
        codec::Context {
            base_ns,
            local_host: &self.local_host,
        }
    }

    /// Store `record` as the newest entry, evicting others as the bounds
    /// require, and return its sequence number. Counts it as stored for its
    /// input; while paused, counts it as dropped and returns `None`.
    pub fn push(&mut self, record: &Record) -> Option<u64> {
        self.push_ref(&record.as_ref())
    }

    /// [`Ring::push`] for a record whose text lives elsewhere.
    pub fn push_ref(&mut self, record: &RecordRef) -> Option<u64> {
        if self.paused {
            self.ledger.input_mut(record.input).dropped += 1;
            return None;
        }
        if self.compressor.as_ref().is_some_and(|c| c.pending > 0) {
            self.take_compressed(false);
        }
        self.push_ns = record.received_ns;
        while self.len >= self.limits.max_lines {
            if !self.evict_one() {
                break;
            }
        }
        let seq = self.store.header().next_seq;
        self.cover_seq(seq);
        let payload = self.store.slot_size - SLOT_HEADER;
        let mut base = if self.open.count == 0 {
            record.received_ns
        } else {
            self.open.base_ns
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        self.encode_frame(record, base, &mut scratch);
        let mut frame_len = self.frame.len();
        if self.open.count > 0
            && (self.open.raw_len as usize + frame_len > self.chunk_cap.max(frame_len)
                || self.open.count as usize >= MAX_CHUNK_RECORDS)
        {
            self.seal();
            base = record.received_ns;
            self.encode_frame(record, base, &mut scratch);
            frame_len = self.frame.len();
        }
        if frame_len > payload {
            // Longer than a slot: keep what fits, flagged.
            let over = frame_len - payload + 16;
            let (msg, _) = truncated_str(record.msg, record.msg.len().saturating_sub(over));
            let mut cut = record.clone();
            cut.msg = msg;
            cut.truncated = true;
            self.ledger.input_mut(record.input).truncated += 1;
            self.encode_frame(&cut, base, &mut scratch);
            if self.frame.len() > payload {
                cut.sd.clear();
                self.encode_frame(&cut, base, &mut scratch);
            }
            frame_len = self.frame.len();
            if frame_len > payload {
                self.scratch = scratch;
                self.ledger.input_mut(record.input).dropped += 1;
                return None;
            }
        }
        self.scratch = scratch;
        if self.open.count == 0 {
            self.open.base_ns = base;
            self.open.first_seq = seq;
            self.open.first_live = seq;
            let h = self.store.slot_header_mut(self.open.slot as usize);
            h.base_ns = base;
            h.first_seq = seq;
        }
        let source = self.source_id(record.source);
        let class = class_of(record.severity);
        let owned = self.owned.id(source, record.peer.map(|p| p.uid));
        // The record first, then the count that makes it part of the chunk:
        // a crash in between leaves the chunk as it was.
        let at = self.open.raw_len as usize;
        let (h, data) = self.store.slot_mut(self.open.slot as usize);
        data[at..at + frame_len].copy_from_slice(&self.frame);
        h.raw_len = (at + frame_len) as u32;
        h.end_seq = seq + 1;
        h.count += 1;
        self.store.header_mut().next_seq = seq + 1;
        self.open.raw_len += frame_len as u32;
        self.open.count += 1;
        self.open.live += 1;
        self.open.end_seq = seq + 1;
        self.open.tally_mut(source, class).live += 1;
        if let Some(index) = &mut self.open.index {
            let before = index.capacity();
            index.push(Entry {
                seq,
                source,
                owned,
                class,
                input: record.input as u8,
                live: true,
            });
            self.heap += (index.capacity() - before) * std::mem::size_of::<Entry>();
        }
        let fp = page_round(SLOT_HEADER + self.open.raw_len as usize);
        if fp > self.open.footprint {
            self.pages += fp - self.open.footprint;
            self.open.footprint = fp;
        }
        self.sources.held[source as usize][class as usize] += 1;
        self.store.sources_mut()[source as usize].stored += 1;
        self.owned.stored(owned);
        self.len += 1;
        self.ledger.input_mut(record.input).stored += 1;
        if self.captures.watching() {
            self.capture_pushed(record, seq, frame_len);
        }
        while self.used() > self.limits.max_bytes && self.len > 1 {
            if !self.cool_warm() && !self.evict_for_bytes() {
                break;
            }
        }
        Some(seq)
    }

    /// Encode `record` against `base` and frame it into `self.frame`.
    fn encode_frame(&mut self, record: &RecordRef, base: i64, scratch: &mut Vec<u8>) {
        scratch.clear();
        codec::encode(record, self.context(base), scratch);
        self.frame.clear();
        chunk::put_frame(&mut self.frame, 0, scratch);
    }

    /// The id of a source name, registering it (in the memfd's table too)
    /// the first time; past the table's size, `(other)`.
    fn source_id(&mut self, name: &str) -> u16 {
        let (name, _) = truncated_str(name, SOURCE_NAME_MAX);
        // Most pushes come from the source of the one before: compared
        // with the name in the table, no hashing and no allocation.
        if let Some(id) = self.sources.last {
            let e = &self.store.sources()[id as usize];
            if e.name.get(..e.name_len as usize) == Some(name.as_bytes()) {
                return id;
            }
        }
        let id = match self.sources.ids.get(name) {
            Some(&id) => id,
            None => {
                let n = self.sources.held.len();
                if n >= self.limits.max_sources() {
                    0
                } else {
                    let before = page_round(SOURCES_OFFSET + 64 * n);
                    self.sources.ids.insert(name.into(), n as u16);
                    self.sources.held.push([0; 3]);
                    let e = &mut self.store.sources_mut()[n];
                    e.name = [0; SOURCE_NAME_MAX];
                    e.name[..name.len()].copy_from_slice(name.as_bytes());
                    e.name_len = name.len() as u16;
                    e.stored = 0;
                    e.evicted = 0;
                    self.store.header_mut().sources_len = (n + 1) as u32;
                    self.pages += page_round(SOURCES_OFFSET + 64 * (n + 1)) - before;
                    n as u16
                }
            }
        };
        // `(other)` holds no one name to compare with.
        self.sources.last = (id != 0).then_some(id);
        id
    }

    /// Stop (`true`) or resume storing new entries. What is held stays.
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Drop every entry held, counting each as cleared for its input.
    /// Sequence numbers go on from where they were.
    pub fn clear(&mut self) {
        let mut inputs = Vec::new();
        self.scan_from(0, &mut ReadCache::new(), |r| {
            inputs.push(r.input);
            ControlFlow::Continue(())
        });
        for input in inputs {
            self.ledger.input_mut(input).cleared += 1;
        }
        while !self.sealed.is_empty() {
            self.remove_sealed(0);
        }
        self.cool_warm();
        let next = self.next_seq();
        let slot = self.open.slot;
        self.store.punch(slot as usize, SLOT_HEADER);
        self.open.footprint = page_round(SLOT_HEADER);
        self.reset_open(slot, next);
        for h in &mut self.sources.held {
            *h = [0; 3];
        }
        self.owned.clear();
        self.evicting = None;
        self.release_all_captures();
        self.evictions.clear();
        self.removals += self.len as u64;
        self.len = 0;
        self.recount();
    }

    /// Count the pages and heap afresh from what the ring holds.
    fn recount(&mut self) {
        let sources = self.store.header().sources_len as usize;
        // The capture table's page is resident once it is written.
        self.pages = page_round(SOURCES_OFFSET + 64 * sources.max(1))
            + store::PAGE
            + self.open.footprint
            + self.warm.map_or(0, |w| w.footprint)
            + self.dicts.footprint()
            + self.sealed.iter().map(|m| m.footprint).sum::<usize>();
        self.recount_heap();
    }

    fn recount_heap(&mut self) {
        self.heap = self.open.heap_bytes()
            + self.evictions.heap_bytes()
            + self.sealed.iter().map(ChunkMeta::heap_bytes).sum::<usize>()
            + self.sealed.capacity() * std::mem::size_of::<ChunkMeta>();
    }

    /// What the ring occupies: memfd pages and heap.
    fn used(&self) -> usize {
        self.pages + self.heap + self.owned.heap_bytes()
    }

    /// The receive times of the oldest and newest entries held.
    pub fn time_span(&self) -> Option<(i64, i64)> {
        let mut cache = ReadCache::new();
        let mut oldest = None;
        self.scan_from(0, &mut cache, |r| {
            oldest = Some(r.received_ns);
            ControlFlow::Break(())
        });
        let mut newest = None;
        self.scan_back(u64::MAX, &mut cache, |r| {
            newest = Some(r.received_ns);
            ControlFlow::Break(())
        });
        Some((oldest?, newest?))
    }

    /// The oldest sequence number still held (equal to `next_seq` when empty).
    pub fn first_seq(&self) -> u64 {
        if let Some(m) = self.sealed.iter().find(|m| m.live > 0) {
            return m.first_live;
        }
        if self.open.live > 0 {
            return self.open.first_live;
        }
        self.next_seq()
    }

    /// The sequence number the next pushed record will get.
    pub fn next_seq(&self) -> u64 {
        self.store.header().next_seq
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// How many entries were taken out (evicted or cleared) so far: it
    /// only goes up, so a reader can tell whether any left since it looked.
    pub fn removals(&self) -> u64 {
        self.removals
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the ring's storage occupies now.
    pub fn bytes_used(&self) -> usize {
        self.used()
    }

    #[cfg(test)]
    fn debug_state(&self) -> String {
        format!(
            "len {} pages {} heap {} open(raw {} count {} live {} fp {}) sealed {:?}",
            self.len,
            self.pages,
            self.heap,
            self.open.raw_len,
            self.open.count,
            self.open.live,
            self.open.footprint,
            self.sealed
                .iter()
                .map(|m| (m.count, m.live, m.footprint, m.raw_len))
                .collect::<Vec<_>>()
        )
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn options(&self) -> RingOptions {
        self.opts
    }

    /// New bounds for a running ring (SIGHUP): what is held stays, except
    /// what the new bounds evict now. Raised to the minimums as in
    /// [`Ring::new`]; new chunks get the size the new budget calls for.
    pub fn set_limits(&mut self, limits: Limits) {
        let limits = limits.clamped();
        self.limits = limits;
        self.chunk_cap = limits.chunk_cap().min(self.store.slot_size - SLOT_HEADER);
        // More slots become fresh ones; fewer are not needed (a slot holds
        // at least a page, so the budget binds first).
        let _ = self.store.grow(limits.slot_count());
        while self.len > limits.max_lines {
            if !self.evict_one() {
                break;
            }
        }
        if self.used() > limits.max_bytes && self.open.count > 0 && self.len > 1 {
            // The open chunk may have grown for the old budget.
            self.seal();
        }
        // As in `push`, the newest entry stays however large it is.
        while self.used() > limits.max_bytes && self.len > 1 {
            if !self.cool_warm() && !self.evict_for_bytes() {
                break;
            }
        }
    }

    pub fn stats(&self) -> RingStats {
        RingStats {
            entries: self.len,
            bytes: self.used(),
            raw_bytes: self.open.raw_len as usize
                + self
                    .sealed
                    .iter()
                    .map(|m| m.raw_len as usize)
                    .sum::<usize>(),
            chunks: self.sealed.len() + usize::from(self.open.count > 0),
            dicts: self.dicts.list.len(),
            dict_bytes: self.dicts.footprint(),
            max_lines: self.limits.max_lines,
            max_bytes: self.limits.max_bytes,
            first_seq: self.first_seq(),
            next_seq: self.next_seq(),
            compress: self.opts.compress.as_str(),
            evict: self.opts.evict.as_str(),
            source_share: self.opts.source_share,
        }
    }

    /// Per source: entries stored, held now and evicted, busiest first.
    pub fn source_stats(&self) -> Vec<SourceStats> {
        let v = (0..self.sources.held.len())
            .map(|id| {
                let e = &self.store.sources()[id];
                SourceStats {
                    name: self.source_name(id as u16),
                    stored: e.stored,
                    held: self.sources.total(id as u16),
                    evicted: e.evicted,
                }
            })
            .filter(|s| s.stored > 0)
            .collect();
        busiest_first(v)
    }

    /// [`Ring::source_stats`] counting only the entries the kernel said
    /// `uid` sent, and only the sources it sent any to. Held is exact;
    /// stored and evicted count from this process's adoption of the ring,
    /// if it adopted one (the pairs live on the heap only).
    pub fn source_stats_of(&self, uid: u32) -> Vec<SourceStats> {
        let v = self
            .owned
            .of(uid)
            .map(|c| SourceStats {
                name: self.source_name(c.source),
                stored: c.stored,
                held: c.held,
                evicted: c.evicted,
            })
            .collect();
        busiest_first(v)
    }

    /// What fair eviction took out of turn with a sequence number in
    /// `from..to`: the notes a reader is told at the holes there.
    pub fn evictions_within(&self, from: u64, to: u64) -> Vec<EvictionNote> {
        if self.evictions.is_empty() {
            return Vec::new();
        }
        self.evictions
            .within(from, to)
            .map(|e| EvictionNote {
                id: e.id,
                source: self.source_name(e.source),
                first_seq: e.first_seq,
                last_seq: e.last_seq,
                count: e.count,
            })
            .collect()
    }

    fn source_name(&self, id: u16) -> String {
        let e = &self.store.sources()[id as usize];
        let n = (e.name_len as usize).min(SOURCE_NAME_MAX);
        String::from_utf8_lossy(&e.name[..n]).into_owned()
    }
}

fn busiest_first(mut v: Vec<SourceStats>) -> Vec<SourceStats> {
    v.sort_by(|a, b| b.stored.cmp(&a.stored).then(a.name.cmp(&b.name)));
    v
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod capture_tests;

#[cfg(test)]
mod dict_tests;
