//! The ring: a bounded, in-memory sequence of records that every source
//! pushes into and every query reads from.
//!
//! Records are encoded ([`codec`]) and framed ([`chunk`]) back to back in
//! chunks. The newest chunk stays raw, so a push is a copy; a full chunk is
//! sealed: compressed with zstd level 1 (unless `--compress none`) into a
//! slot of its own. All of it lives in one memfd ([`store`]) together with
//! the ledger and the ring's own state, so a successor process (re-exec,
//! the systemd fd store, even after a crash) adopts the memfd and goes on
//! with the same entries, sequence numbers and counters ([`persist`]).
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

pub mod chunk;
pub mod codec;
mod compressor;
pub mod persist;
mod seqmark;
pub mod store;

use std::collections::{HashMap, VecDeque};
use std::ops::{ControlFlow, Deref, DerefMut};
use std::ptr::NonNull;

use crate::ledger::Ledger;
use crate::record::{truncated_str, Input, Record, RecordRef};
pub use seqmark::{SeqMark, SeqMarkNews};
use store::{
    page_round, SlotHeader, Store, CODEC_RAW, CODEC_ZSTD, MAX_CHUNK_RECORDS, MAX_SOURCES, PAGE,
    SLOT_HEADER, SLOT_MAGIC, SOURCES_OFFSET, SOURCE_NAME_MAX, STATE_OPEN, STATE_SEALED,
};

/// Default `--max-lines`, as memlogd.
pub const DEFAULT_MAX_LINES: usize = 5000;
/// Default `--max-bytes`: 8 MiB.
pub const DEFAULT_MAX_BYTES: usize = 8 << 20;
/// The smallest byte budget the ring accepts: below it, one chunk would be
/// a large part of the whole and eviction would be too coarse.
pub const MIN_MAX_BYTES: usize = 16 << 10;
/// Default `--source-share`.
pub const DEFAULT_SOURCE_SHARE: f64 = 0.125;
/// The longest text a record carries unless told otherwise (`--max-line-len`).
pub const DEFAULT_MAX_TEXT: usize = 8192;
/// The largest raw chunk: bigger chunks compress better, smaller ones make
/// eviction finer; past this the gain in size is small.
const MAX_CHUNK: usize = 128 << 10;

/// How full chunks are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compress {
    /// zstd level 1; the newest chunk stays raw.
    #[default]
    Zstd,
    /// Every chunk stays raw.
    None,
}

impl Compress {
    pub fn as_str(self) -> &'static str {
        match self {
            Compress::Zstd => "zstd",
            Compress::None => "none",
        }
    }
}

/// What a full ring evicts first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Evict {
    /// Sources over their share lose their oldest entries first, and
    /// debug/info entries go before err and worse.
    #[default]
    Fair,
    /// Oldest first, whatever its source.
    Fifo,
}

impl Evict {
    pub fn as_str(self) -> &'static str {
        match self {
            Evict::Fair => "fair",
            Evict::Fifo => "fifo",
        }
    }
}

/// How the ring stores and evicts, beside its [`Limits`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RingOptions {
    pub compress: Compress,
    pub evict: Evict,
    /// Under [`Evict::Fair`], the fraction of held entries one source may
    /// hold before it is evicted first.
    pub source_share: f64,
    /// The longest message text a record may carry: a slot has room for
    /// one record with this much text however large chunks are.
    pub max_text: usize,
}

impl Eq for RingOptions {}

impl Default for RingOptions {
    fn default() -> Self {
        RingOptions {
            compress: Compress::Zstd,
            evict: Evict::Fair,
            source_share: DEFAULT_SOURCE_SHARE,
            max_text: DEFAULT_MAX_TEXT,
        }
    }
}

/// Where a restarted daemon goes on reading the kernel log: the boot it
/// read and the next kernel sequence number it had not stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsgResume {
    /// `/proc/sys/kernel/random/boot_id` of the boot the records came from.
    pub boot_id: String,
    pub next_seq: u64,
}

/// Why a memfd or snapshot could not be taken over.
#[derive(Debug)]
pub struct RingError(pub String);

impl std::fmt::Display for RingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RingError {}

/// A ring's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_lines: usize,
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_lines: DEFAULT_MAX_LINES,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl Limits {
    /// Raised to the minimums the ring accepts.
    fn clamped(self) -> Limits {
        Limits {
            max_lines: self.max_lines.max(1),
            max_bytes: self.max_bytes.max(MIN_MAX_BYTES),
        }
    }

    /// The raw size at which a chunk is sealed: about 1/16 of the budget,
    /// so eviction by bytes frees at most that much at once.
    fn chunk_cap(self) -> usize {
        let cap = (self.max_bytes / 16).clamp(1 << 10, MAX_CHUNK);
        // Whole pages with the slot's header: the rest would be resident
        // and unused.
        page_round(SLOT_HEADER + cap) - SLOT_HEADER
    }

    /// Sources counted by name: a small ring cannot afford the whole table.
    fn max_sources(self) -> usize {
        (self.max_bytes / 2048).clamp(16, MAX_SOURCES)
    }

    /// Slots the memfd needs: a sealed chunk takes at least one page, so
    /// with one slot per page of budget the bytes run out first. Slots are
    /// address space, not memory, until written.
    fn slot_count(self) -> usize {
        (self.max_bytes / PAGE).max(8)
    }
}

/// Eviction classes, evicted first to last: debug/info (or no severity),
/// notice/warning, err and worse.
const CLASS_LOW: u8 = 0;
const CLASS_MID: u8 = 1;
const CLASS_HIGH: u8 = 2;

/// Chunks waiting for the compressor thread before storing waits for it.
const MAX_PENDING_COMPRESSIONS: usize = 4;

/// Eviction tiers: six for the fair policy (over-share sources by class,
/// then every source by class), one for fifo.
const TIERS: usize = 7;
const TIER_FIFO: usize = 6;

fn class_of(severity: Option<u8>) -> u8 {
    match severity {
        Some(0..=3) => CLASS_HIGH,
        Some(4 | 5) => CLASS_MID,
        _ => CLASS_LOW,
    }
}

/// Live entries of one source and class in a chunk.
#[derive(Clone, Copy, Debug)]
struct Tally {
    source: u16,
    class: u8,
    live: u32,
}

/// What eviction needs to know of one record without decoding it again.
#[derive(Clone, Copy, Debug)]
struct Entry {
    seq: u64,
    source: u16,
    class: u8,
    input: u8,
    live: bool,
}

/// A chunk as the heap knows it; its bytes are in the memfd.
#[derive(Debug)]
struct ChunkMeta {
    slot: u32,
    gen: u64,
    first_seq: u64,
    end_seq: u64,
    base_ns: i64,
    count: u32,
    live: u32,
    raw_len: u32,
    /// Bytes counted for the slot: its resident pages.
    footprint: usize,
    /// The oldest live entry's sequence number (when `live > 0`).
    first_live: u64,
    tallies: Vec<Tally>,
    /// Per-record facts, kept for the open chunk and built on demand for
    /// a sealed chunk eviction works on.
    index: Option<Vec<Entry>>,
    /// Per eviction tier: entries before this position of `index` hold
    /// none of the tier's live entries.
    hints: [u32; TIERS],
    /// The `over_epoch` the over-share tiers' hints were made in.
    hints_epoch: u64,
}

impl ChunkMeta {
    /// Heap bytes beside the ChunkMeta itself.
    fn heap_bytes(&self) -> usize {
        self.tallies.capacity() * std::mem::size_of::<Tally>()
            + self
                .index
                .as_ref()
                .map_or(0, |i| i.capacity() * std::mem::size_of::<Entry>())
    }

    fn tally_mut(&mut self, source: u16, class: u8) -> &mut Tally {
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
struct Sources {
    ids: HashMap<Box<str>, u16>,
    /// Live entries per source id, by class.
    held: Vec<[u64; 3]>,
    /// The id the last lookup found.
    last: Option<u16>,
}

impl Sources {
    fn total(&self, id: u16) -> u64 {
        self.held[id as usize].iter().sum()
    }
}

/// One decompressed chunk, kept by a reader between calls so a reader
/// moving through a chunk decompresses it once.
#[derive(Default)]
pub struct ReadCache {
    key: Option<(u32, u64)>,
    buf: Vec<u8>,
    dctx: Option<zstd::bulk::Decompressor<'static>>,
}

impl ReadCache {
    pub fn new() -> ReadCache {
        ReadCache::default()
    }

    /// Give the buffer back once the reader has caught up.
    fn release(&mut self) {
        if self.key.is_some() {
            self.key = None;
            self.buf = Vec::new();
        }
    }
}

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

/// What one eviction tier takes: entries of `class` (any, if `None`),
/// from sources over their share only, or from every source.
#[derive(Clone, Copy)]
struct Tier {
    over_share: bool,
    class: Option<u8>,
}

impl Tier {
    const fn over_share(class: u8) -> Tier {
        Tier {
            over_share: true,
            class: Some(class),
        }
    }

    const fn every_source(class: u8) -> Tier {
        Tier {
            over_share: false,
            class: Some(class),
        }
    }

    /// Whether an entry of `source` in `class` is in this tier, given
    /// which sources are over their share.
    fn holds(self, over: &[bool], source: u16, class: u8) -> bool {
        self.class.is_none_or(|k| k == class) && (!self.over_share || over[source as usize])
    }
}

/// A freed slot with its pages kept: see [`Ring`]'s `warm`.
#[derive(Clone, Copy, Debug)]
struct WarmSlot {
    slot: u32,
    /// Its resident bytes, counted in the ring's pages.
    footprint: usize,
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
    dctx: zstd::bulk::Decompressor<'static>,
    /// This machine's host name, shared by the records that carry it.
    local_host: String,
    /// New entries are refused (and counted as dropped) while paused.
    paused: bool,
    /// Keeps sequence numbers going up across a crash (see [`seqmark`]).
    seq_mark: Option<SeqMark>,
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

fn new_open(slot: u32, gen: u64, seq: u64) -> ChunkMeta {
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
            evicting: None,
            tier_seq: [0; TIERS],
            over: Vec::new(),
            over_epoch: 0,
            scratch: Vec::new(),
            frame: Vec::new(),
            cctx: None,
            compressor: None,
            spare_bufs: Vec::new(),
            dctx: zstd::bulk::Decompressor::new().expect("zstd decompression context"),
            local_host: String::new(),
            paused: false,
            seq_mark: None,
        };
        ring.sources.held.push([0; 3]);
        ring.sources.ids.insert("(other)".into(), 0);
        ring
    }

    /// The memfd the ring lives in: hand it to a successor (re-exec, the
    /// systemd fd store) and [`Ring::adopt`] it there.
    pub fn memfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        Some(self.store.fd())
    }

    /// Where the kernel log was left, if a predecessor said.
    pub fn kmsg_resume(&self) -> Option<KmsgResume> {
        let h = self.store.header();
        (h.kmsg_valid == 1).then(|| {
            let id = &h.kmsg_boot_id;
            let n = id.iter().position(|&b| b == 0).unwrap_or(id.len());
            KmsgResume {
                boot_id: String::from_utf8_lossy(&id[..n]).into_owned(),
                next_seq: h.kmsg_next_seq,
            }
        })
    }

    /// Note where the kernel log has been read up to (kept in the memfd).
    pub fn set_kmsg_resume(&mut self, resume: KmsgResume) {
        let h = self.store.header_mut();
        let id = resume.boot_id.as_bytes();
        let n = id.len().min(h.kmsg_boot_id.len());
        h.kmsg_boot_id = [0; 48];
        h.kmsg_boot_id[..n].copy_from_slice(&id[..n]);
        h.kmsg_next_seq = resume.next_seq;
        h.kmsg_valid = 1;
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
        self.len += 1;
        self.ledger.input_mut(record.input).stored += 1;
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

    /// Make the open chunk a fresh, empty one in `slot`.
    fn reset_open(&mut self, slot: u32, seq: u64) {
        let gen = self.next_gen();
        *self.store.slot_header_mut(slot as usize) = SlotHeader::raw(gen, seq, seq, 0, 0, 0);
        let footprint = self.open.footprint;
        self.open = new_open(slot, gen, seq);
        // The slot's pages stay resident and counted: the next records go
        // into them.
        self.open.footprint = footprint;
    }

    fn next_gen(&mut self) -> u64 {
        let h = self.store.header_mut();
        h.gen += 1;
        h.gen
    }

    /// A free slot, evicting the oldest chunk if there is none.
    fn take_slot(&mut self) -> u32 {
        loop {
            if let Some(s) = self.pop_free() {
                return s;
            }
            if self.sealed.is_empty() {
                // Cannot happen: the open slot is never in the free list
                // and there are at least eight slots.
                panic!("the ring has no free slot and no sealed chunk");
            }
            // Only after a snapshot or a predecessor with fewer, larger
            // slots: the policy still decides what goes.
            if !self.evict_for_bytes() {
                self.evict_chunk(0);
            }
        }
    }

    fn has_free(&self) -> bool {
        !self.free_slots.is_empty() || (self.fresh as usize) < self.store.slot_count
    }

    fn pop_free(&mut self) -> Option<u32> {
        if let Some(s) = self.free_slots.pop() {
            return Some(s);
        }
        if (self.fresh as usize) < self.store.slot_count {
            self.fresh += 1;
            return Some(self.fresh - 1);
        }
        if self.cool_warm() {
            return self.free_slots.pop();
        }
        None
    }

    /// Free `slot`, whose resident pages (`footprint` bytes, counted in
    /// `pages`) are no longer needed: kept warm for the next open chunk
    /// when it has more pages than the warm slot, given back otherwise.
    fn release_slot(&mut self, slot: u32, footprint: usize) {
        if footprint > self.warm.map_or(page_round(SLOT_HEADER), |w| w.footprint) {
            self.cool_warm();
            self.store.retire(slot as usize);
            self.warm = Some(WarmSlot { slot, footprint });
        } else {
            self.give_back(slot, footprint);
        }
    }

    /// Give back the warm slot's pages, if there is one; true if so.
    fn cool_warm(&mut self) -> bool {
        let Some(w) = self.warm.take() else {
            return false;
        };
        self.give_back(w.slot, w.footprint);
        true
    }

    /// Free `slot` with its pages, no longer counted, for reuse.
    fn give_back(&mut self, slot: u32, footprint: usize) {
        self.pages -= footprint;
        self.store.free(slot as usize);
        self.free_slots.push(slot);
    }

    /// Seal the open chunk: write its live records, compressed, to a slot
    /// of their own; the open slot starts over.
    fn seal(&mut self) {
        let open_slot = self.open.slot;
        let next = self.store.header().next_seq;
        if self.open.live == 0 {
            self.pages -= self.open.footprint;
            self.store.punch(open_slot as usize, SLOT_HEADER);
            self.open.footprint = page_round(SLOT_HEADER);
            self.pages += self.open.footprint;
            self.reset_open(open_slot, next);
            self.recount_heap();
            return;
        }
        if self.open.live == self.open.count {
            self.seal_in_place();
            return;
        }
        // Some entries of the open chunk were evicted (a small ring): write
        // the live ones to a slot of their own.
        let mut raw = std::mem::take(&mut self.scratch);
        raw.clear();
        let hdr = *self.store.slot_header(open_slot as usize);
        let data = &self.store.slot_data(open_slot as usize)[..self.open.raw_len as usize];
        copy_live(data, &hdr, &mut raw);
        let open_fp = self.open.footprint;
        let mut meta = std::mem::replace(&mut self.open, new_open(0, 0, 0));
        let index = meta.index.take();
        let slot = self.take_slot();
        self.write_raw(slot, &mut meta, &raw);
        let key = (meta.slot, meta.gen);
        self.scratch = raw;
        // At 16 bytes an entry the index would cost as much as the
        // compressed records: eviction rebuilds it for the chunk it works on.
        drop(index);
        meta.index = None;
        meta.hints = [0; TIERS];
        // The open slot's pages go back, so it holds only what it needs
        // (a burst of large records, a budget lowered by SIGHUP).
        self.pages -= open_fp;
        self.store.punch(open_slot as usize, SLOT_HEADER);
        self.open = new_open(open_slot, 0, next);
        self.open.footprint = page_round(SLOT_HEADER);
        self.pages += self.open.footprint;
        self.sealed.push_back(meta);
        self.reset_open(open_slot, next);
        self.recount_heap();
        self.queue_compression(key);
    }

    /// Seal the open chunk where it is: its slot becomes a sealed chunk
    /// (compressed later by the compressor thread) and a fresh slot takes
    /// the next records. Ingest never waits for zstd.
    fn seal_in_place(&mut self) {
        let next = self.store.header().next_seq;
        let mut meta = std::mem::replace(&mut self.open, new_open(0, 0, 0));
        meta.index = None;
        meta.hints = [0; TIERS];
        let key = (meta.slot, meta.gen);
        self.sealed.push_back(meta);
        let (slot, footprint) = match self.warm.take() {
            Some(w) => (w.slot, w.footprint),
            None => {
                let slot = self.take_slot();
                self.pages += page_round(SLOT_HEADER);
                (slot, page_round(SLOT_HEADER))
            }
        };
        self.open.footprint = 0;
        self.reset_open(slot, next);
        self.open.footprint = footprint;
        self.recount_heap();
        self.queue_compression(key);
    }

    /// Have the chunk known by `key` (raw, in the open state) compressed,
    /// or with `--compress none` marked sealed as it is.
    fn queue_compression(&mut self, key: (u32, u64)) {
        if self.opts.compress == Compress::Zstd {
            if self.compressor.is_none() {
                self.compressor = compressor::Compressor::start();
            }
            let raw_len = self
                .sealed
                .iter()
                .find(|m| (m.slot, m.gen) == key)
                .map_or(0, |m| m.raw_len as usize);
            // A compressor that falls behind (a slow CPU, a long burst)
            // would leave the budget to raw chunks: past a few waiting,
            // storing waits for it instead.
            while self
                .compressor
                .as_ref()
                .is_some_and(|c| c.pending >= MAX_PENDING_COMPRESSIONS)
            {
                match self.compressor.as_mut().and_then(|c| c.take(true)) {
                    Some(d) => self.finish_compression(d),
                    None => break,
                }
            }
            let mut raw = self.spare_bufs.pop().unwrap_or_default();
            raw.clear();
            raw.extend_from_slice(&self.store.slot_data(key.0 as usize)[..raw_len]);
            let job = compressor::Job { key, raw };
            let job = match &mut self.compressor {
                Some(c) => match c.send(job) {
                    Ok(()) => return,
                    Err(job) => job,
                },
                None => job,
            };
            // No thread: compress here.
            let cctx = self.cctx.get_or_insert_with(|| {
                zstd::bulk::Compressor::new(1).expect("zstd compression context")
            });
            let packed = compressor::compress(cctx, &job.raw, Vec::new());
            self.finish_compression(compressor::Done {
                key,
                raw: job.raw,
                packed,
            });
        } else if let Some(ci) = self.sealed.iter().position(|m| (m.slot, m.gen) == key) {
            self.seal_raw(ci);
        }
    }

    /// Take what the compressor thread has finished; with `wait`, all of it.
    pub fn take_compressed(&mut self, wait: bool) {
        while let Some(d) = self.compressor.as_mut().and_then(|c| c.take(wait)) {
            self.finish_compression(d);
        }
    }

    /// Put a compressed chunk in place of its raw copy, if that is still
    /// held as it was.
    fn finish_compression(&mut self, d: compressor::Done) {
        let found = self.sealed.iter().position(|m| (m.slot, m.gen) == d.key);
        if let Some(ci) = found {
            match d.packed.as_deref() {
                Some(packed) if self.has_free() => {
                    let slot2 = self.pop_free().expect("checked");
                    let raw_slot = d.key.0 as usize;
                    let old = *self.store.slot_header(raw_slot);
                    let gen = self.next_gen();
                    let (h, data) = self.store.slot_mut(slot2 as usize);
                    data[..packed.len()].copy_from_slice(packed);
                    *h = SlotHeader {
                        magic: SLOT_MAGIC,
                        state: STATE_SEALED,
                        gen,
                        stored_len: packed.len() as u32,
                        codec: CODEC_ZSTD,
                        crc: crc32fast::hash(packed),
                        ..old
                    };
                    // The compressed copy is whole and newer: the raw one goes.
                    let meta = &mut self.sealed[ci];
                    let raw_fp = meta.footprint;
                    meta.slot = slot2;
                    meta.gen = gen;
                    meta.footprint = page_round(SLOT_HEADER + packed.len());
                    self.pages += self.sealed[ci].footprint;
                    self.release_slot(raw_slot as u32, raw_fp);
                    if self.evicting == Some(d.key) {
                        self.evicting = Some((slot2, gen));
                    }
                }
                _ => self.seal_raw(ci),
            }
        }
        let mut bufs = [Some(d.raw), d.packed];
        for b in bufs.iter_mut().filter_map(Option::take) {
            if self.spare_bufs.len() < 4 {
                self.spare_bufs.push(b);
            }
        }
    }

    /// Mark sealed chunk `ci`, still raw in its open-state slot, sealed as
    /// it is: checksum and state, the state last.
    fn seal_raw(&mut self, ci: usize) {
        let slot = self.sealed[ci].slot as usize;
        let raw_len = self.sealed[ci].raw_len as usize;
        let crc = crc32fast::hash(&self.store.slot_data(slot)[..raw_len]);
        let h = self.store.slot_header_mut(slot);
        if h.state != STATE_OPEN {
            return;
        }
        h.codec = CODEC_RAW;
        h.stored_len = raw_len as u32;
        h.crc = crc;
        h.state = STATE_SEALED;
    }

    /// Write `raw` (live frames only) into `slot` as a chunk sealed but not
    /// yet compressed (raw, in the open state, which a successor also reads
    /// as raw), and describe it in `meta` (whose seq range, base and
    /// tallies are kept). The caller then queues it for compression.
    fn write_raw(&mut self, slot: u32, meta: &mut ChunkMeta, raw: &[u8]) {
        let gen = self.next_gen();
        let (h, data) = self.store.slot_mut(slot as usize);
        data[..raw.len()].copy_from_slice(raw);
        *h = SlotHeader::raw(
            gen,
            meta.first_seq,
            meta.end_seq,
            meta.base_ns,
            meta.live,
            raw.len() as u32,
        );
        meta.slot = slot;
        meta.gen = gen;
        meta.count = meta.live;
        meta.raw_len = raw.len() as u32;
        meta.footprint = page_round(SLOT_HEADER + raw.len());
        self.pages += meta.footprint;
    }

    /// The raw frames of a chunk: the slot itself, or decompressed into
    /// `buf`.
    fn chunk_bytes<'a>(
        store: &'a Store,
        meta: &ChunkMeta,
        buf: &'a mut Vec<u8>,
        dctx: &mut zstd::bulk::Decompressor<'static>,
    ) -> Option<&'a [u8]> {
        let h = store.slot_header(meta.slot as usize);
        let data = store.slot_data(meta.slot as usize);
        if h.state == STATE_OPEN || h.codec == CODEC_RAW {
            return data.get(..meta.raw_len as usize);
        }
        let stored = data.get(..h.stored_len as usize)?;
        chunk::decompress(dctx, stored, meta.raw_len as usize, buf).then_some(&buf[..])
    }

    /// Build the per-record index of sealed chunk `ci`, if it has none.
    fn ensure_index(&mut self, ci: usize) {
        if self.sealed[ci].index.is_some() {
            return;
        }
        let mut buf = Vec::new();
        let meta = &self.sealed[ci];
        let hdr = *self.store.slot_header(meta.slot as usize);
        let mut entries = Vec::with_capacity(meta.count as usize);
        let mut names = Vec::new();
        if let Some(data) = Ring::chunk_bytes(&self.store, meta, &mut buf, &mut self.dctx) {
            let ctx = codec::Context {
                base_ns: meta.base_ns,
                local_host: &self.local_host,
            };
            chunk::for_each_frame(data, meta.count as usize, meta.first_seq, |fr| {
                let (source, severity) = match codec::decode(fr.seq, fr.bytes, ctx) {
                    Some(r) => (r.source.to_owned(), r.severity),
                    None => (String::new(), None),
                };
                names.push(source);
                entries.push(Entry {
                    seq: fr.seq,
                    source: 0,
                    class: class_of(severity),
                    input: fr.bytes.first().copied().unwrap_or(u8::MAX),
                    live: !hdr.is_dead(fr.idx),
                });
                ControlFlow::Continue(())
            });
        }
        for (e, name) in entries.iter_mut().zip(&names) {
            e.source = self.source_id(name);
        }
        let meta = &mut self.sealed[ci];
        meta.index = Some(entries);
        meta.hints = [0; TIERS];
        self.recount_heap();
    }

    /// Whether an entry of `source` and `class` is in the tier eviction is
    /// working on: `over` = only sources over their share.
    fn over_share(&self, source: u16) -> bool {
        self.sources.total(source) as f64 > self.opts.source_share * self.len as f64
    }

    /// The oldest entry to evict next: (chunk position, entry index), the
    /// position being `sealed.len()` for the open chunk.
    ///
    /// Tiers are tried in order; each remembers how far eviction has
    /// proven it empty (`tier_seq` across chunks, `ChunkMeta::hints`
    /// within one), so a ring of many chunks whose oldest ones hold only
    /// protected entries does not scan them again for every eviction. A
    /// source that goes over its share can make older entries match the
    /// over-share tiers: that forgets their marks (`over_epoch`).
    fn pick_victim(&mut self) -> Option<(usize, usize)> {
        const FAIR: [Tier; 6] = [
            Tier::over_share(CLASS_LOW),
            Tier::over_share(CLASS_MID),
            Tier::over_share(CLASS_HIGH),
            Tier::every_source(CLASS_LOW),
            Tier::every_source(CLASS_MID),
            Tier::every_source(CLASS_HIGH),
        ];
        const FIFO: [Tier; 1] = [Tier {
            over_share: false,
            class: None,
        }];
        let fifo = self.opts.evict == Evict::Fifo;
        if !fifo {
            let n = self.sources.held.len();
            self.over.resize(n, false);
            let mut newly = false;
            for s in 0..n {
                let o = self.over_share(s as u16);
                newly |= o && !self.over[s];
                self.over[s] = o;
            }
            if newly {
                self.over_epoch += 1;
                self.tier_seq[..3].fill(0);
            }
        }
        let tiers: &[Tier] = if fifo { &FIFO } else { &FAIR };
        for (t, &kind) in tiers.iter().enumerate() {
            let tier = if fifo { TIER_FIFO } else { t };
            let matches = |source: u16, c: u8| kind.holds(&self.over, source, c);
            let any =
                self.sources.held.iter().enumerate().any(|(s, held)| {
                    (0..3u8).any(|c| held[c as usize] > 0 && matches(s as u16, c))
                });
            if !any {
                continue;
            }
            let n = self.sealed.len();
            let floor = self.tier_seq[tier];
            let start = self.sealed.partition_point(|m| m.end_seq <= floor);
            let mut proven = floor;
            let mut found = None;
            for ci in start..=n {
                let meta = if ci < n { &self.sealed[ci] } else { &self.open };
                if !meta
                    .tallies
                    .iter()
                    .any(|t| t.live > 0 && matches(t.source, t.class))
                {
                    if ci < n {
                        proven = meta.end_seq;
                    }
                    continue;
                }
                found = Some(ci);
                break;
            }
            self.tier_seq[tier] = proven;
            let Some(ci) = found else {
                continue;
            };
            if ci < n {
                self.ensure_index(ci);
            }
            let epoch = self.over_epoch;
            let over = &self.over;
            let meta = if ci < n {
                &mut self.sealed[ci]
            } else {
                &mut self.open
            };
            if meta.hints_epoch != epoch {
                meta.hints_epoch = epoch;
                meta.hints[..3].fill(0);
            }
            let from = meta.hints[tier] as usize;
            let index = meta.index.as_ref()?;
            let pos = index
                .get(from..)?
                .iter()
                .position(|e| e.live && kind.holds(over, e.source, e.class))
                .map(|p| p + from);
            if let Some(i) = pos {
                meta.hints[tier] = i as u32;
                return Some((ci, i));
            }
        }
        None
    }

    /// Evict one entry, chosen as the policy says. False if none is held.
    fn evict_one(&mut self) -> bool {
        let Some((ci, i)) = self.pick_victim() else {
            return false;
        };
        let key = self.chunk_key(ci);
        if let Some(prev) = self.evicting.filter(|&k| Some(k) != key) {
            self.evicting = key;
            // Eviction moved on: rewrite the chunk it leaves without its
            // dead entries (this may shift positions, so pick again).
            if self.compact_key(prev) {
                return self.evict_one();
            }
        }
        self.evicting = key;
        self.kill(ci, i);
        true
    }

    fn chunk_key(&self, ci: usize) -> Option<(u32, u64)> {
        let meta = self.sealed.get(ci).unwrap_or(&self.open);
        Some((meta.slot, meta.gen))
    }

    /// Free memory: evict entries until a chunk is freed or rewritten.
    fn evict_for_bytes(&mut self) -> bool {
        if self.opts.evict == Evict::Fifo {
            if self.sealed.is_empty() {
                return false;
            }
            self.evict_chunk(0);
            return true;
        }
        let before = self.used();
        // Bounded: each round kills an entry or fails.
        for _ in 0..(MAX_CHUNK_RECORDS * 2) {
            if !self.evict_one() {
                return false;
            }
            if self.used() < before {
                return true;
            }
        }
        // A chunk of dead entries waits for eviction to move on; move it.
        if let Some(k) = self.evicting.take() {
            self.compact_key(k);
        }
        true
    }

    /// Mark entry `i` of chunk `ci` evicted, and free the chunk if that was
    /// its last live entry.
    fn kill(&mut self, ci: usize, i: usize) {
        let n = self.sealed.len();
        let store = &mut self.store;
        let meta: &mut ChunkMeta = if ci < n {
            &mut self.sealed[ci]
        } else {
            &mut self.open
        };
        let Some(index) = meta.index.as_mut() else {
            return;
        };
        let e = &mut index[i];
        if !e.live {
            return;
        }
        e.live = false;
        let e = *e;
        let next_live = index[i..].iter().find(|e| e.live).map(|e| e.seq);
        store.slot_header_mut(meta.slot as usize).dead[i / 64] |= 1 << (i % 64);
        meta.live -= 1;
        meta.tally_mut(e.source, e.class).live -= 1;
        if e.seq == meta.first_live {
            if let Some(next) = next_live {
                meta.first_live = next;
            }
        }
        let empty = meta.live == 0;
        self.sources.held[e.source as usize][e.class as usize] -= 1;
        self.store.sources_mut()[e.source as usize].evicted += 1;
        if let Some(input) = Input::from_code(e.input) {
            self.ledger.input_mut(input).evicted += 1;
        }
        self.len -= 1;
        if empty && ci < n {
            self.remove_sealed(ci);
        }
    }

    /// Evict every live entry of sealed chunk `ci` and free it.
    fn evict_chunk(&mut self, ci: usize) {
        self.ensure_index(ci);
        let count = self.sealed[ci].index.as_ref().map_or(0, Vec::len);
        for i in 0..count {
            if ci >= self.sealed.len() {
                break;
            }
            // `kill` frees the chunk with its last entry.
            let last = self.sealed[ci].live == 1;
            self.kill(ci, i);
            if last {
                return;
            }
        }
        if ci < self.sealed.len() && self.sealed[ci].live == 0 {
            self.remove_sealed(ci);
        }
    }

    fn remove_sealed(&mut self, ci: usize) {
        if let Some(meta) = self.sealed.remove(ci) {
            self.release_slot(meta.slot, meta.footprint);
            if self.evicting == Some((meta.slot, meta.gen)) {
                self.evicting = None;
            }
            self.recount_heap();
        }
    }

    /// Rewrite the sealed chunk known by `key` without its dead entries,
    /// and merge it into the chunk before it when both are small. True if
    /// anything changed.
    fn compact_key(&mut self, key: (u32, u64)) -> bool {
        let Some(ci) = self.sealed.iter().position(|m| (m.slot, m.gen) == key) else {
            return false;
        };
        let meta = &self.sealed[ci];
        // Rewriting costs a decompression and a compression: only for a
        // chunk with a good part of it dead, so tiers that alternate between
        // chunks cannot make every eviction a rewrite.
        if meta.live == meta.count || (meta.count - meta.live) * 4 < meta.count {
            return false;
        }
        if meta.live == 0 {
            self.remove_sealed(ci);
            return true;
        }
        // The chunk before it too, if both together fit in one chunk: the
        // survivors of several chunks (a flood's quiet neighbours, the
        // sources under their share) gather in full chunks, which compress
        // well, rather than in many small ones.
        self.compact_at(ci, true)
    }

    /// [`Ring::compact_key`] for sealed chunk `ci`, merging it into the
    /// chunk before it if `may_merge` and both fit in one.
    fn compact_at(&mut self, ci: usize, may_merge: bool) -> bool {
        let meta = &self.sealed[ci];
        let merge = may_merge && ci > 0 && {
            let prev = &self.sealed[ci - 1];
            let live_raw = |m: &ChunkMeta| m.raw_len as u64 * m.live as u64 / m.count.max(1) as u64;
            live_raw(prev) + live_raw(meta) <= self.chunk_cap as u64
                && (prev.live + meta.live) as usize <= MAX_CHUNK_RECORDS
        };
        let first = if merge { ci - 1 } else { ci };
        let mut records: Vec<Record> = Vec::new();
        let mut buf = Vec::new();
        for k in first..=ci {
            let meta = &self.sealed[k];
            let hdr = *self.store.slot_header(meta.slot as usize);
            let Some(data) = Ring::chunk_bytes(&self.store, meta, &mut buf, &mut self.dctx) else {
                continue;
            };
            let ctx = codec::Context {
                base_ns: meta.base_ns,
                local_host: &self.local_host,
            };
            chunk::for_each_frame(data, meta.count as usize, meta.first_seq, |fr| {
                if !hdr.is_dead(fr.idx) {
                    if let Some(r) = codec::decode(fr.seq, fr.bytes, ctx) {
                        records.push(r.to_record());
                    }
                }
                ControlFlow::Continue(())
            });
        }
        let base = self.sealed[first].base_ns;
        let mut raw = Vec::new();
        let mut scratch = Vec::new();
        let mut next = self.sealed[first].first_seq;
        let mut tallies: Vec<Tally> = Vec::new();
        for r in &records {
            scratch.clear();
            codec::encode(&r.as_ref(), self.context(base), &mut scratch);
            chunk::put_frame(&mut raw, r.seq - next, &scratch);
            next = r.seq + 1;
            let source = self.source_id(&r.source);
            let class = class_of(r.severity);
            match tallies
                .iter_mut()
                .find(|t| t.source == source && t.class == class)
            {
                Some(t) => t.live += 1,
                None => tallies.push(Tally {
                    source,
                    class,
                    live: 1,
                }),
            }
        }
        if raw.len() > self.store.slot_size - SLOT_HEADER {
            // Re-encoded against one base, the two did not fit after all.
            return merge && self.compact_at(ci, false);
        }
        let mut meta = ChunkMeta {
            slot: 0,
            gen: 0,
            first_seq: self.sealed[first].first_seq,
            end_seq: self.sealed[ci].end_seq,
            base_ns: base,
            count: records.len() as u32,
            live: records.len() as u32,
            raw_len: 0,
            footprint: 0,
            first_live: records.first().map_or(0, |r| r.seq),
            tallies,
            index: None,
            hints: [0; TIERS],
            hints_epoch: 0,
        };
        let slot = match self.pop_free() {
            Some(s) => s,
            // No room to rewrite: leave the dead entries where they are.
            None => return false,
        };
        self.write_raw(slot, &mut meta, &raw);
        let key = (meta.slot, meta.gen);
        // The new copy is complete and newer; now the old ones go.
        for _ in first..=ci {
            self.remove_sealed(first);
        }
        self.sealed.insert(first, meta);
        self.recount_heap();
        self.queue_compression(key);
        true
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
        self.evicting = None;
        self.len = 0;
        self.recount();
    }

    /// Count the pages and heap afresh from what the ring holds.
    fn recount(&mut self) {
        let sources = self.store.header().sources_len as usize;
        self.pages = page_round(SOURCES_OFFSET + 64 * sources.max(1))
            + self.open.footprint
            + self.warm.map_or(0, |w| w.footprint)
            + self.sealed.iter().map(|m| m.footprint).sum::<usize>();
        self.recount_heap();
    }

    fn recount_heap(&mut self) {
        self.heap = self.open.heap_bytes()
            + self.sealed.iter().map(ChunkMeta::heap_bytes).sum::<usize>()
            + self.sealed.capacity() * std::mem::size_of::<ChunkMeta>();
    }

    /// What the ring occupies: memfd pages and heap.
    fn used(&self) -> usize {
        self.pages + self.heap
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
        if self.used() > limits.max_bytes && self.open.count > 0 {
            // The open chunk may have grown for the old budget.
            self.seal();
        }
        while self.used() > limits.max_bytes {
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
        let table = self.store.sources();
        let mut v: Vec<SourceStats> = (0..self.sources.held.len())
            .map(|id| {
                let e = &table[id];
                let n = (e.name_len as usize).min(SOURCE_NAME_MAX);
                SourceStats {
                    name: String::from_utf8_lossy(&e.name[..n]).into_owned(),
                    stored: e.stored,
                    held: self.sources.total(id as u16),
                    evicted: e.evicted,
                }
            })
            .filter(|s| s.stored > 0)
            .collect();
        v.sort_by(|a, b| b.stored.cmp(&a.stored).then(a.name.cmp(&b.name)));
        v
    }

    /// The record with sequence number `seq`, if the ring still holds it.
    pub fn get(&self, seq: u64) -> Option<Record> {
        let mut found = None;
        self.scan_from(seq, &mut ReadCache::new(), |r| {
            if r.seq == seq {
                found = Some(r.to_record());
            }
            ControlFlow::Break(())
        });
        found
    }

    /// Owned copies of the records from `seq` on: for tests and tools; the
    /// daemon's readers use [`Ring::scan_from`].
    pub fn iter_from(&self, seq: u64) -> impl Iterator<Item = Record> {
        let mut v = Vec::new();
        self.scan_from(seq, &mut ReadCache::new(), |r| {
            v.push(r.to_record());
            ControlFlow::Continue(())
        });
        v.into_iter()
    }

    /// Call `f` with each record held whose sequence number is `from` or
    /// more, oldest first, until it breaks.
    pub fn scan_from(
        &self,
        from: u64,
        cache: &mut ReadCache,
        mut f: impl FnMut(RecordRef<'_>) -> ControlFlow<()>,
    ) {
        let start = self.sealed.partition_point(|m| m.end_seq <= from);
        let n = self.sealed.len();
        for ci in start..=n {
            let meta = if ci < n {
                &self.sealed[ci]
            } else {
                cache.release();
                &self.open
            };
            if meta.live == 0 || meta.end_seq <= from {
                continue;
            }
            let Some(data) = self.cached_bytes(meta, cache) else {
                continue;
            };
            let hdr = self.store.slot_header(meta.slot as usize);
            let ctx = self.context(meta.base_ns);
            let mut stop = false;
            chunk::for_each_frame(data, meta.count as usize, meta.first_seq, |fr| {
                if fr.seq < from || hdr.is_dead(fr.idx) {
                    return ControlFlow::Continue(());
                }
                if let Some(r) = codec::decode(fr.seq, fr.bytes, ctx) {
                    if f(r).is_break() {
                        stop = true;
                        return ControlFlow::Break(());
                    }
                }
                ControlFlow::Continue(())
            });
            if stop {
                return;
            }
        }
    }

    /// Call `f` with each record held whose sequence number is below
    /// `below`, newest first, until it breaks.
    pub fn scan_back(
        &self,
        below: u64,
        cache: &mut ReadCache,
        mut f: impl FnMut(RecordRef<'_>) -> ControlFlow<()>,
    ) {
        let n = self.sealed.len();
        for ci in (0..=n).rev() {
            let meta = if ci < n { &self.sealed[ci] } else { &self.open };
            if meta.live == 0 || meta.first_seq >= below {
                continue;
            }
            let Some(data) = self.cached_bytes(meta, cache) else {
                continue;
            };
            let hdr = self.store.slot_header(meta.slot as usize);
            let ctx = self.context(meta.base_ns);
            for fr in chunk::frames(data, meta.count as usize, meta.first_seq)
                .into_iter()
                .rev()
            {
                if fr.seq >= below || hdr.is_dead(fr.idx) {
                    continue;
                }
                if let Some(r) = codec::decode(fr.seq, fr.bytes, ctx) {
                    if f(r).is_break() {
                        return;
                    }
                }
            }
        }
    }

    /// A chunk's raw frames for a reader: the slot for a raw chunk, else
    /// the reader's cache, decompressing only when it holds another chunk.
    fn cached_bytes<'a>(&'a self, meta: &ChunkMeta, cache: &'a mut ReadCache) -> Option<&'a [u8]> {
        let h = self.store.slot_header(meta.slot as usize);
        if h.state == STATE_OPEN || h.codec == CODEC_RAW {
            return self
                .store
                .slot_data(meta.slot as usize)
                .get(..meta.raw_len as usize);
        }
        let key = (meta.slot, meta.gen);
        if cache.key != Some(key) {
            cache.key = None;
            let dctx = match &mut cache.dctx {
                Some(d) => d,
                None => cache.dctx.insert(zstd::bulk::Decompressor::new().ok()?),
            };
            let stored = self
                .store
                .slot_data(meta.slot as usize)
                .get(..h.stored_len as usize)?;
            if !chunk::decompress(dctx, stored, meta.raw_len as usize, &mut cache.buf) {
                return None;
            }
            cache.key = Some(key);
        }
        Some(&cache.buf)
    }
}

/// Copy the live frames of a chunk to `out`, with gaps that account for
/// the dead ones.
fn copy_live(data: &[u8], hdr: &SlotHeader, out: &mut Vec<u8>) {
    let mut next = hdr.first_seq;
    chunk::for_each_frame(data, hdr.count as usize, hdr.first_seq, |fr| {
        if !hdr.is_dead(fr.idx) {
            chunk::put_frame(out, fr.seq - next, fr.bytes);
            next = fr.seq + 1;
        }
        ControlFlow::Continue(())
    });
}

#[cfg(test)]
mod tests;
