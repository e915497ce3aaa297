//! The ring: a bounded, in-memory sequence of records, oldest evicted first.
//!
//! Records are stored encoded ([`codec`]) back to back in chunks of a few
//! KiB, so a record costs its encoded size plus four bytes of index, and
//! freeing memory means dropping whole chunks rather than thousands of small
//! allocations. The ring is bounded twice: by a number of entries
//! (`max_lines`) and by the bytes its chunks really occupy (`max_bytes`,
//! counted from allocation sizes, not from payload lengths).
//!
//! Every record gets the next sequence number. Readers hold a sequence
//! number (their cursor) rather than a copy of anything: a reader whose
//! cursor is older than [`Ring::first_seq`] has been lapped and can tell
//! exactly how many entries it missed.

pub mod codec;

use std::collections::VecDeque;

use crate::ledger::Ledger;
use crate::record::{Input, Record, RecordRef};

/// Default `--max-lines`, as memlogd.
pub const DEFAULT_MAX_LINES: usize = 5000;
/// Default `--max-bytes`: 8 MiB.
pub const DEFAULT_MAX_BYTES: usize = 8 << 20;
/// The smallest byte budget the ring accepts: below it, one chunk would be
/// a large part of the whole and eviction would be too coarse.
pub const MIN_MAX_BYTES: usize = 16 << 10;

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

/// Default `--source-share`.
pub const DEFAULT_SOURCE_SHARE: f64 = 0.125;

/// How the ring stores and evicts, beside its [`Limits`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RingOptions {
    pub compress: Compress,
    pub evict: Evict,
    /// Under [`Evict::Fair`], the fraction of held entries one source may
    /// hold before it is evicted first.
    pub source_share: f64,
}

impl Eq for RingOptions {}

impl Default for RingOptions {
    fn default() -> Self {
        RingOptions {
            compress: Compress::Zstd,
            evict: Evict::Fair,
            source_share: DEFAULT_SOURCE_SHARE,
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

/// A run of encoded records; `ends[i]` is where record `first_seq + i` ends.
struct Chunk {
    first_seq: u64,
    /// Receive times in the chunk are stored relative to this.
    base_ns: i64,
    data: Vec<u8>,
    ends: Vec<u32>,
}

impl Chunk {
    /// What this chunk really occupies: its two buffers and its header.
    fn bytes(&self) -> usize {
        self.data.capacity() + self.ends.capacity() * 4 + std::mem::size_of::<Chunk>()
    }

    fn record(&self, idx: usize) -> &[u8] {
        let start = if idx == 0 {
            0
        } else {
            self.ends[idx - 1] as usize
        };
        &self.data[start..self.ends[idx] as usize]
    }
}

/// Figures that describe the ring's state, for stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RingStats {
    pub entries: usize,
    pub bytes: usize,
    pub max_lines: usize,
    pub max_bytes: usize,
    pub first_seq: u64,
    pub next_seq: u64,
}

/// The bounded store every source pushes into and every query reads from.
pub struct Ring {
    chunks: VecDeque<Chunk>,
    /// How many records at the front of `chunks[0]` are already evicted.
    head: usize,
    next_seq: u64,
    len: usize,
    used: usize,
    limits: Limits,
    chunk_size: usize,
    scratch: Vec<u8>,
    /// A freed chunk kept for reuse (its bytes stay in `used`).
    spare: Option<Chunk>,
    /// This machine's host name, shared by the records that carry it.
    local_host: String,
    /// New entries are refused (and counted as dropped) while paused.
    paused: bool,
    /// What arrived, what was kept and what was lost, per input.
    pub ledger: Ledger,
}

impl Ring {
    /// An empty ring. `limits.max_bytes` is raised to [`MIN_MAX_BYTES`] and
    /// `limits.max_lines` to 1 if given lower.
    pub fn new(limits: Limits) -> Ring {
        let limits = Limits {
            max_lines: limits.max_lines.max(1),
            max_bytes: limits.max_bytes.max(MIN_MAX_BYTES),
        };
        // About 1/16 of the budget per chunk: eviction by bytes frees at most
        // that much at once, and the chunk headers stay negligible.
        let chunk_size = (limits.max_bytes / 16).clamp(1 << 10, 64 << 10);
        Ring {
            chunks: VecDeque::new(),
            head: 0,
            next_seq: 0,
            len: 0,
            used: 0,
            limits,
            chunk_size,
            scratch: Vec::new(),
            spare: None,
            local_host: String::new(),
            paused: false,
            ledger: Ledger::default(),
        }
    }

    /// A ring stored as `opts` says, in a fresh memfd.
    pub fn with_options(limits: Limits, opts: RingOptions) -> std::io::Result<Ring> {
        let _ = opts;
        Ok(Ring::new(limits))
    }

    /// The memfd the ring lives in: hand it to a successor (re-exec, the
    /// systemd fd store) and [`Ring::adopt`] it there.
    pub fn memfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }

    /// Go on from the ring a predecessor left in `fd`: the same entries,
    /// sequence numbers and counters.
    pub fn adopt(
        fd: std::os::fd::OwnedFd,
        limits: Limits,
        opts: RingOptions,
    ) -> Result<Ring, RingError> {
        let _ = (fd, limits, opts);
        Err(RingError("not yet".into()))
    }

    /// Write the ring to `path` (through a temporary file, renamed).
    pub fn save_snapshot(&self, path: &std::path::Path) -> Result<(), RingError> {
        let _ = path;
        Err(RingError("not yet".into()))
    }

    /// A ring holding what a snapshot file holds.
    pub fn load_snapshot(
        path: &std::path::Path,
        limits: Limits,
        opts: RingOptions,
    ) -> Result<Ring, RingError> {
        let _ = (path, limits, opts);
        Err(RingError("not yet".into()))
    }

    /// Where the kernel log was left, if a predecessor said.
    pub fn kmsg_resume(&self) -> Option<KmsgResume> {
        None
    }

    /// Note where the kernel log has been read up to (kept in the memfd).
    pub fn set_kmsg_resume(&mut self, resume: KmsgResume) {
        let _ = resume;
    }

    /// This machine's host name: records that carry it store a flag instead.
    pub fn set_local_host(&mut self, host: impl Into<String>) {
        // Chunks already written were encoded against the old name.
        if self.is_empty() {
            self.local_host = host.into();
        }
    }

    fn context(&self, base_ns: i64) -> codec::Context<'_> {
        codec::Context {
            base_ns,
            local_host: &self.local_host,
        }
    }

    /// Store `record` as the newest entry, evicting the oldest ones as the
    /// bounds require, and return its sequence number. Counts it as stored
    /// for its input; while paused, counts it as dropped and returns `None`.
    pub fn push(&mut self, record: &Record) -> Option<u64> {
        self.push_ref(&record.as_ref())
    }

    /// [`Ring::push`] for a record whose text lives elsewhere.
    pub fn push_ref(&mut self, record: &RecordRef) -> Option<u64> {
        if self.paused {
            self.ledger.input_mut(record.input).dropped += 1;
            return None;
        }
        while self.len >= self.limits.max_lines {
            self.evict_one();
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let tail_base = self.chunks.back().map(|c| c.base_ns);
        if let Some(base) = tail_base {
            codec::encode(record, self.context(base), &mut scratch);
        }
        let fits = self
            .chunks
            .back()
            .is_some_and(|c| c.data.len() + scratch.len() <= c.data.capacity());
        if !fits {
            // A new chunk, based on this record's time.
            scratch.clear();
            codec::encode(record, self.context(record.received_ns), &mut scratch);
            self.start_chunk(record.received_ns, scratch.len());
        }
        let tail = self.chunks.back_mut().expect("a chunk was just ensured");
        let before = tail.bytes();
        tail.data.extend_from_slice(&scratch);
        tail.ends.push(tail.data.len() as u32);
        self.used += tail.bytes() - before;
        self.scratch = scratch;
        while self.chunks.len() > 1 && self.used > self.limits.max_bytes {
            self.evict_front_chunk();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.len += 1;
        self.ledger.input_mut(record.input).stored += 1;
        Some(seq)
    }

    /// Open a new tail chunk with room for at least `n` bytes, evicting whole
    /// chunks first if the budget needs it. A chunk freed earlier is reused,
    /// so a full ring in steady state allocates nothing.
    fn start_chunk(&mut self, base_ns: i64, n: usize) {
        // A record larger than a chunk gets a chunk of its own size.
        let cap = self.chunk_size.max(n);
        let reuse = if cap == self.chunk_size {
            self.spare.take()
        } else {
            None
        };
        let mut chunk = match reuse {
            Some(c) => {
                // Its bytes left `used` when it was dropped.
                self.used -= c.bytes();
                c
            }
            None => Chunk {
                first_seq: 0,
                base_ns: 0,
                data: Vec::with_capacity(cap),
                ends: Vec::with_capacity((cap / 64).max(4)),
            },
        };
        chunk.first_seq = self.next_seq;
        chunk.base_ns = base_ns;
        chunk.data.clear();
        chunk.ends.clear();
        let need = chunk.bytes();
        while !self.chunks.is_empty() && self.used + need > self.limits.max_bytes {
            self.evict_front_chunk();
        }
        self.used += need;
        self.chunks.push_back(chunk);
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
        while let Some(front) = self.chunks.front() {
            for i in self.head..front.ends.len() {
                if let Some(input) = Input::from_code(front.record(i)[codec::INPUT_OFFSET]) {
                    self.ledger.input_mut(input).cleared += 1;
                }
            }
            self.drop_front_chunk();
        }
        if let Some(spare) = self.spare.take() {
            self.used -= spare.bytes();
        }
        self.len = 0;
    }

    /// The receive times of the oldest and newest entries held.
    pub fn time_span(&self) -> Option<(i64, i64)> {
        let oldest = self.get_ref(self.first_seq())?.received_ns;
        let newest = self.get_ref(self.next_seq.checked_sub(1)?)?.received_ns;
        Some((oldest, newest))
    }

    /// Records from the newest back to `seq` (or the oldest held).
    pub fn iter_back_to(&self, seq: u64) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        let start = seq.max(self.first_seq());
        (start..self.next_seq)
            .rev()
            .filter_map(move |s| self.get_ref(s))
    }

    /// The oldest sequence number still held (equal to `next_seq` when empty).
    pub fn first_seq(&self) -> u64 {
        self.next_seq - self.len as u64
    }

    /// The sequence number the next pushed record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the ring's storage occupies now.
    pub fn bytes_used(&self) -> usize {
        self.used
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// New bounds for a running ring (SIGHUP): what is held stays, except
    /// the oldest entries beyond the new bounds, which are evicted now (a
    /// byte budget below one chunk of the old size empties the ring). Raised
    /// to the minimums as in [`Ring::new`]; new chunks get the size the new
    /// budget calls for.
    pub fn set_limits(&mut self, limits: Limits) {
        let fresh = Ring::new(limits);
        self.limits = fresh.limits;
        self.chunk_size = fresh.chunk_size;
        while self.len > self.limits.max_lines {
            self.evict_one();
        }
        while self.used > self.limits.max_bytes {
            if let Some(spare) = self.spare.take() {
                self.used -= spare.bytes();
            } else if self.chunks.is_empty() {
                break;
            } else {
                self.evict_front_chunk();
            }
        }
    }

    pub fn stats(&self) -> RingStats {
        RingStats {
            entries: self.len,
            bytes: self.used,
            max_lines: self.limits.max_lines,
            max_bytes: self.limits.max_bytes,
            first_seq: self.first_seq(),
            next_seq: self.next_seq,
        }
    }

    /// The record with sequence number `seq`, if the ring still holds it.
    pub fn get(&self, seq: u64) -> Option<Record> {
        self.get_ref(seq).map(|r| r.to_record())
    }

    /// [`Ring::get`] without copying: the text stays in the ring.
    pub fn get_ref(&self, seq: u64) -> Option<RecordRef<'_>> {
        let (c, i) = self.locate(seq)?;
        let chunk = &self.chunks[c];
        codec::decode(seq, chunk.record(i), self.context(chunk.base_ns))
    }

    /// Records from `seq` onwards (or from the oldest held, if `seq` was
    /// evicted), oldest first, walking the chunks in order.
    pub fn iter_from(&self, seq: u64) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        let start = seq.max(self.first_seq());
        let (mut c, mut i) = self.locate(start).unwrap_or((self.chunks.len(), 0));
        let mut seq = start;
        std::iter::from_fn(move || loop {
            let chunk = self.chunks.get(c)?;
            if i >= chunk.ends.len() {
                c += 1;
                i = 0;
                continue;
            }
            let r = codec::decode(seq, chunk.record(i), self.context(chunk.base_ns));
            i += 1;
            seq += 1;
            if r.is_some() {
                return r;
            }
        })
    }

    fn locate(&self, seq: u64) -> Option<(usize, usize)> {
        if seq < self.first_seq() || seq >= self.next_seq {
            return None;
        }
        let c = self.chunks.partition_point(|c| c.first_seq <= seq) - 1;
        Some((c, (seq - self.chunks[c].first_seq) as usize))
    }

    fn evict_one(&mut self) {
        let Some(front) = self.chunks.front() else {
            return;
        };
        let code = front.record(self.head)[codec::INPUT_OFFSET];
        if let Some(input) = Input::from_code(code) {
            self.ledger.input_mut(input).evicted += 1;
        }
        self.head += 1;
        self.len -= 1;
        if self.head == front.ends.len() {
            self.drop_front_chunk();
        }
    }

    fn evict_front_chunk(&mut self) {
        let Some(front) = self.chunks.front() else {
            return;
        };
        for i in self.head..front.ends.len() {
            if let Some(input) = Input::from_code(front.record(i)[codec::INPUT_OFFSET]) {
                self.ledger.input_mut(input).evicted += 1;
            }
        }
        self.len -= front.ends.len() - self.head;
        self.drop_front_chunk();
    }

    fn drop_front_chunk(&mut self) {
        if let Some(c) = self.chunks.pop_front() {
            self.used -= c.bytes();
            if c.data.capacity() == self.chunk_size && self.spare.is_none() {
                // Kept for the next chunk, and counted while kept.
                self.used += c.bytes();
                self.spare = Some(c);
            }
        }
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
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
            assert!(ring.bytes_used() <= max_bytes, "over budget at {i}");
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
        ring.clear();
        assert!(ring.is_empty());
        assert_eq!(ring.first_seq(), 11);
        assert_eq!(ring.bytes_used(), 0);
        assert_eq!(ring.ledger.input(Input::Syslog).cleared, 11);
        assert_eq!(ring.push(&rec(12, 10)), Some(11));
        assert_eq!(
            ring.iter_back_to(0).map(|r| r.seq).collect::<Vec<_>>(),
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
}
