//! The ring's bounds and storage options: how many entries, how many
//! bytes, how large a chunk, and how chunks are compressed and evicted.
//! Kept apart from the ring so the configuration can name them without
//! knowing how the ring works.

use super::store::{page_round, MAX_SOURCES, PAGE, SLOT_HEADER};

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
/// The largest raw chunk of a ring of at least [`LARGE_RING`] bytes:
/// bigger chunks compress better (a longer window for zstd, and a slot's
/// header and last partial page shared by more entries), smaller ones make
/// eviction finer and a reader's one decompression cheaper. 256 KiB took a
/// seventh off the bytes per entry of 128 KiB on the corpus
/// (PERFORMANCE.md).
pub(super) const MAX_CHUNK: usize = 256 << 10;
/// The largest raw chunk of a smaller ring. A chunk in flight is copied
/// whole into buffers outside the ring's budget (the compressor's job, the
/// spares, zstd's window), so on a small ring larger chunks cost more
/// resident memory than they save in the ring: an 8 MiB ring's daemon grew
/// by about 3 MiB with 256 KiB chunks, for 3 % fewer bytes per entry.
pub(super) const MAX_CHUNK_SMALL_RING: usize = 128 << 10;
/// The budget from which a ring takes the larger chunks (and, in
/// `dict`, compression dictionaries).
pub(super) const LARGE_RING: usize = 16 << 20;

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
    pub(super) fn clamped(self) -> Limits {
        Limits {
            max_lines: self.max_lines.max(1),
            max_bytes: self.max_bytes.max(MIN_MAX_BYTES),
        }
    }

    /// The raw size at which a chunk is sealed: about 1/16 of the budget,
    /// so eviction by bytes frees at most that much at once.
    pub(super) fn chunk_cap(self) -> usize {
        let max = if self.max_bytes >= LARGE_RING {
            MAX_CHUNK
        } else {
            MAX_CHUNK_SMALL_RING
        };
        let cap = (self.max_bytes / 16).clamp(1 << 10, max);
        // Whole pages with the slot's header: the rest would be resident
        // and unused.
        page_round(SLOT_HEADER + cap) - SLOT_HEADER
    }

    /// Sources counted by name: a small ring cannot afford the whole table.
    pub(super) fn max_sources(self) -> usize {
        (self.max_bytes / 2048).clamp(16, MAX_SOURCES)
    }

    /// Slots the memfd needs: a sealed chunk takes at least one page, so
    /// with one slot per page of budget the bytes run out first. Slots are
    /// address space, not memory, until written.
    pub(super) fn slot_count(self) -> usize {
        (self.max_bytes / PAGE).max(8)
    }
}
