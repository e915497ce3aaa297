//! Captures: the entries around a trigger, kept whatever floods after it.
//!
//! A trigger is a condition on entries (the daemon builds them from
//! `--capture` filters; the ring only calls them). When an entry meets
//! one, the entries received from `before` ahead of it to `after` behind it
//! become a capture: a run of sequence numbers that eviction passes over
//! (it is *pinned*) until the capture is released. A trigger while a
//! capture is still open extends it, up to `max_span` from its start, so a
//! restart loop makes one growing capture, not hundreds.
//!
//! Captures have a budget inside the ring's: their bytes (see
//! [`Capture::bytes`]), a number of captures, and half of `max_lines`
//! (so the ring always has room for new entries). A capture that needs
//! room releases the oldest complete ones first (counted); an open
//! capture is never released for budget: one that reaches the budget is
//! closed early and marked cut, and a trigger that finds no room at all is
//! counted as refused.
//!
//! The table lives in the memfd beside the ledger, so captures and their
//! pins survive a re-exec, an fd-store restart and (saved with the chunks)
//! a snapshot. Every field is a plain integer: a successor checks them
//! before it trusts them, as it checks chunks.

use std::ops::ControlFlow;
use std::ptr::NonNull;

use super::persist::SEQ_LIMIT;
use super::{ReadCache, Ring};
use crate::record::RecordRef;

/// The most captures the table holds.
pub const MAX_CAPTURES: usize = 32;
/// Default `--capture-before`: 30 s.
pub const DEFAULT_BEFORE_NS: i64 = 30_000_000_000;
/// Default `--capture-after`: 10 s.
pub const DEFAULT_AFTER_NS: i64 = 10_000_000_000;
/// Default `--capture-max-span`: 5 min.
pub const DEFAULT_MAX_SPAN_NS: i64 = 300_000_000_000;
/// Default `--capture-max`.
pub const DEFAULT_MAX: usize = 16;

const TABLE_MAGIC: u32 = u32::from_le_bytes(*b"RLCP");

/// The slot holds a capture.
const USED: u32 = 1;
/// Its window has closed: no entry joins it any more.
const COMPLETE: u32 = 2;
/// It was closed before its window ended, because the budget was reached.
const CUT: u32 = 4;
/// It starts later than its window, because the budget was reached.
const START_CUT: u32 = 8;
/// Written to the capture directory.
const WRITTEN: u32 = 16;

/// A condition on entries that starts (or extends) a capture.
pub type Trigger = Box<dyn Fn(&RecordRef) -> bool + Send>;

/// What makes and bounds captures; none are made without triggers.
pub struct CaptureRules {
    pub triggers: Vec<Trigger>,
    pub before_ns: i64,
    pub after_ns: i64,
    pub max_span_ns: i64,
    /// Bytes all captures may pin together.
    pub max_bytes: usize,
    /// Captures kept at most.
    pub max: usize,
}

impl Default for CaptureRules {
    fn default() -> Self {
        CaptureRules {
            triggers: Vec::new(),
            before_ns: DEFAULT_BEFORE_NS,
            after_ns: DEFAULT_AFTER_NS,
            max_span_ns: DEFAULT_MAX_SPAN_NS,
            max_bytes: 0,
            max: DEFAULT_MAX,
        }
    }
}

impl std::fmt::Debug for CaptureRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureRules")
            .field("triggers", &self.triggers.len())
            .field("before_ns", &self.before_ns)
            .field("after_ns", &self.after_ns)
            .field("max_span_ns", &self.max_span_ns)
            .field("max_bytes", &self.max_bytes)
            .field("max", &self.max)
            .finish()
    }
}

/// One capture, as the memfd keeps it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capture {
    /// Counts from 1 and is never reused, not across restarts either.
    pub id: u64,
    /// The entry that started it.
    pub trigger_seq: u64,
    pub trigger_ns: i64,
    /// Its entries are `first_seq..=last_seq`.
    pub first_seq: u64,
    pub last_seq: u64,
    /// Its window: entries received from `start_ns` to `end_ns`.
    pub start_ns: i64,
    pub end_ns: i64,
    /// Entries it holds.
    pub entries: u64,
    /// What its entries take, an upper bound: the chunks' stored bytes for
    /// those that were in the ring when it began (a share of each chunk,
    /// by entries), their encoded size for those that joined it later.
    pub bytes: u64,
    /// Which trigger started it: its place among the `--capture` filters.
    pub rule: u32,
    flags: u32,
    /// Triggers that extended it.
    pub extended: u32,
    _pad: u32,
}

impl Capture {
    pub fn is_complete(&self) -> bool {
        self.flags & COMPLETE != 0
    }

    /// Closed early: the budget was reached before its window ended.
    pub fn is_cut(&self) -> bool {
        self.flags & CUT != 0
    }

    /// Starts later than its window: the budget did not hold all of it.
    pub fn is_start_cut(&self) -> bool {
        self.flags & START_CUT != 0
    }

    pub fn is_written(&self) -> bool {
        self.flags & WRITTEN != 0
    }

    fn holds(&self, seq: u64) -> bool {
        self.first_seq <= seq && seq <= self.last_seq
    }
}

/// Counters of what captures did, kept in the memfd with the table.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CaptureCounters {
    pub started: u64,
    pub completed: u64,
    /// Triggers that extended an open capture instead of starting one.
    pub extended: u64,
    /// Captures released to make room for a newer one.
    pub released_for_budget: u64,
    /// Captures released by a reader (`--release`, `--clear`).
    pub released: u64,
    /// Triggers that found no room (every capture kept was still open).
    pub refused: u64,
    /// Captures closed early because the budget was reached.
    pub cut: u64,
}

/// Captures now, for stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CaptureStats {
    pub open: u64,
    pub complete: u64,
    pub entries_pinned: u64,
    pub bytes_pinned: u64,
    pub max_bytes: u64,
    #[serde(flatten)]
    pub counters: CaptureCounters,
}

/// The table in the memfd.
#[repr(C)]
pub struct CaptureTable {
    magic: u32,
    _pad: u32,
    next_id: u64,
    counters: CaptureCounters,
    slots: [Capture; MAX_CAPTURES],
}

impl CaptureTable {
    pub const LEN: usize = std::mem::size_of::<CaptureTable>();

    /// The table's bytes, for a snapshot.
    pub(super) fn as_bytes(&self) -> &[u8] {
        // SAFETY: plain integers in C layout, no padding bytes read as
        // anything but bytes.
        unsafe { std::slice::from_raw_parts((self as *const Self).cast(), Self::LEN) }
    }

    /// Put back a table saved by [`CaptureTable::as_bytes`]; false if the
    /// bytes are not one (they are checked again by [`Ring`] on loading).
    pub(super) fn set_from(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() != Self::LEN || bytes[..4] != TABLE_MAGIC.to_le_bytes() {
            return false;
        }
        // SAFETY: any bytes are a valid table (plain integers); the length
        // is checked.
        *self = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        true
    }
}

/// The table, where the ring keeps it: in the memfd's header region.
pub(super) struct TableCell(pub(super) NonNull<CaptureTable>);

impl TableCell {
    pub(super) fn get(&self) -> &CaptureTable {
        // SAFETY: points into the header mapping of the ring's store, which
        // lives as long as the ring; every bit pattern is a valid table.
        unsafe { self.0.as_ref() }
    }

    fn get_mut(&mut self) -> &mut CaptureTable {
        // SAFETY: as in `get`; only the ring holds the cell.
        unsafe { self.0.as_mut() }
    }
}

// The table is part of the ring's store, which the ring owns.
unsafe impl Send for TableCell {}

/// The ring's captures: rules from the configuration, the table in the
/// memfd, and what the hot paths ask of them, kept at hand.
pub(super) struct Captures {
    pub(super) rules: CaptureRules,
    pub(super) table: TableCell,
    /// The open capture's slot, and its place in `pins`.
    open: Option<usize>,
    open_pin: usize,
    /// `(first_seq, last_seq)` of every capture: eviction passes these.
    pub(super) pins: Vec<(u64, u64)>,
    entries: u64,
    bytes: u64,
}

impl Captures {
    pub(super) fn new(table: NonNull<CaptureTable>) -> Captures {
        Captures {
            rules: CaptureRules::default(),
            table: TableCell(table),
            open: None,
            open_pin: 0,
            pins: Vec::new(),
            entries: 0,
            bytes: 0,
        }
    }

    /// Whether a push has anything to do here.
    pub(super) fn watching(&self) -> bool {
        !self.rules.triggers.is_empty() || self.open.is_some()
    }

    /// Whether eviction must pass over `seq`.
    #[inline]
    pub(super) fn pinned(&self, seq: u64) -> bool {
        self.pins.iter().any(|&(a, b)| a <= seq && seq <= b)
    }

    /// Whether every entry of `first..end` is pinned.
    pub(super) fn pins_all(&self, first: u64, end: u64) -> bool {
        self.pins
            .iter()
            .any(|&(a, b)| a <= first && end.saturating_sub(1) <= b)
    }

    /// Whether any entry of `first..end` is pinned.
    pub(super) fn pins_any(&self, first: u64, end: u64) -> bool {
        self.pins.iter().any(|&(a, b)| a < end && first <= b)
    }

    fn line_budget(max_lines: usize) -> u64 {
        (max_lines / 2) as u64
    }

    /// Bring the cached pins and totals in line with the table.
    fn refresh(&mut self) {
        let t = self.table.get();
        self.pins.clear();
        self.entries = 0;
        self.bytes = 0;
        self.open = None;
        for (i, c) in t.slots.iter().enumerate() {
            if c.flags & USED == 0 {
                continue;
            }
            self.pins.push((c.first_seq, c.last_seq));
            self.entries += c.entries;
            self.bytes += c.bytes;
            if !c.is_complete() {
                self.open = Some(i);
                self.open_pin = self.pins.len() - 1;
            }
        }
    }

    /// Check the table a predecessor left (or zeroes, in a memfd older
    /// than captures): a slot that cannot be a capture of this ring is
    /// dropped. `next_seq` is the ring's next sequence number.
    pub(super) fn adopt(&mut self, next_seq: u64) {
        let t = self.table.get_mut();
        if t.magic != TABLE_MAGIC {
            *t = CaptureTable {
                magic: TABLE_MAGIC,
                _pad: 0,
                next_id: 1,
                counters: CaptureCounters::default(),
                slots: [Capture::default(); MAX_CAPTURES],
            };
        }
        t.next_id = t.next_id.clamp(1, SEQ_LIMIT);
        let mut open = 0;
        for c in t.slots.iter_mut() {
            let sane = c.flags & USED != 0
                && c.id > 0
                && c.id < t.next_id
                && c.first_seq <= c.trigger_seq
                && c.trigger_seq <= c.last_seq
                && c.last_seq < next_seq.max(1)
                && c.start_ns <= c.end_ns
                && c.entries <= c.last_seq - c.first_seq + 1
                && c.bytes < 1 << 40;
            if !sane {
                *c = Capture::default();
            } else if !c.is_complete() {
                open += 1;
                if open > 1 {
                    // Only one capture is ever open: the older ones close.
                    c.flags |= COMPLETE;
                }
            }
        }
        self.refresh();
    }
}

impl Ring {
    /// Make captures as `rules` say from now on. Captures held stay.
    pub fn set_capture_rules(&mut self, rules: CaptureRules) {
        self.captures.rules = rules;
    }

    /// Every capture held, oldest first.
    pub fn captures(&self) -> Vec<Capture> {
        let mut v: Vec<Capture> = self
            .captures
            .table
            .get()
            .slots
            .iter()
            .filter(|c| c.flags & USED != 0)
            .copied()
            .collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// The capture `id`, if held.
    pub fn capture(&self, id: u64) -> Option<Capture> {
        self.captures
            .table
            .get()
            .slots
            .iter()
            .copied()
            .find(|c| c.flags & USED != 0 && c.id == id)
    }

    /// Figures for stats.
    pub fn capture_stats(&self) -> CaptureStats {
        let c = &self.captures;
        let held = self.captures();
        CaptureStats {
            open: held.iter().filter(|c| !c.is_complete()).count() as u64,
            complete: held.iter().filter(|c| c.is_complete()).count() as u64,
            entries_pinned: c.entries,
            bytes_pinned: c.bytes,
            max_bytes: c.rules.max_bytes as u64,
            counters: c.table.get().counters,
        }
    }

    /// Release capture `id`: its entries become ordinary again. False if
    /// no such capture is held.
    pub fn release_capture(&mut self, id: u64) -> bool {
        let found = self.release_where(|c| c.id == id);
        if found {
            self.captures.table.get_mut().counters.released += 1;
        }
        found
    }

    /// Release every capture (the ring is being cleared); counted as
    /// released by a reader.
    pub(super) fn release_all_captures(&mut self) {
        let n = self.captures().len() as u64;
        if n > 0 {
            self.release_where(|_| true);
            self.captures.table.get_mut().counters.released += n;
        }
    }

    fn release_where(&mut self, mut which: impl FnMut(&Capture) -> bool) -> bool {
        let mut found = false;
        for c in self.captures.table.get_mut().slots.iter_mut() {
            if c.flags & USED != 0 && which(c) {
                *c = Capture::default();
                found = true;
            }
        }
        if found {
            self.captures.refresh();
            // Entries eviction passed over are candidates again: what it
            // proved of chunks and tiers no longer holds.
            self.tier_seq.fill(0);
            self.release_epoch += 1;
        }
        found
    }

    /// Mark capture `id` written to the capture directory.
    pub fn set_capture_written(&mut self, id: u64) {
        for c in self.captures.table.get_mut().slots.iter_mut() {
            if c.flags & USED != 0 && c.id == id {
                c.flags |= WRITTEN;
            }
        }
    }

    /// Close the open capture if its window ended before `now_ns` (no
    /// entry arrived to close it). The daemon calls this now and then.
    pub fn tick_captures(&mut self, now_ns: i64) {
        if let Some(i) = self.captures.open {
            if now_ns > self.captures.table.get().slots[i].end_ns {
                self.complete_capture(i, false);
            }
        }
    }

    /// When the open capture's window ends, in ns since the epoch.
    pub fn capture_deadline(&self) -> Option<i64> {
        self.captures
            .open
            .map(|i| self.captures.table.get().slots[i].end_ns)
    }

    fn complete_capture(&mut self, i: usize, cut: bool) {
        let t = self.captures.table.get_mut();
        t.slots[i].flags |= COMPLETE | if cut { CUT } else { 0 };
        t.counters.completed += 1;
        t.counters.cut += u64::from(cut);
        self.captures.open = None;
    }

    /// After `record` was stored as `seq` in `frame_len` bytes: add it to
    /// the open capture, or close that; start or extend one if it is a
    /// trigger.
    pub(super) fn capture_pushed(&mut self, record: &RecordRef, seq: u64, frame_len: usize) {
        let t = record.received_ns;
        if let Some(i) = self.captures.open {
            let c = self.captures.table.get().slots[i];
            if t > c.end_ns {
                self.complete_capture(i, false);
            } else if self.make_room(1, frame_len as u64, Some(i)) {
                let caps = &mut self.captures;
                let c = &mut caps.table.get_mut().slots[i];
                c.last_seq = seq;
                c.entries += 1;
                c.bytes += frame_len as u64;
                caps.entries += 1;
                caps.bytes += frame_len as u64;
                caps.pins[caps.open_pin].1 = seq;
            } else {
                self.complete_capture(i, true);
            }
        }
        let Some(rule) = self.captures.rules.triggers.iter().position(|f| f(record)) else {
            return;
        };
        let rules = &self.captures.rules;
        let (after, span) = (rules.after_ns, rules.max_span_ns);
        if let Some(i) = self.captures.open {
            let caps = &mut self.captures;
            let tbl = caps.table.get_mut();
            let c = &mut tbl.slots[i];
            c.end_ns = c
                .end_ns
                .max(t.saturating_add(after).min(c.start_ns.saturating_add(span)));
            c.extended += 1;
            tbl.counters.extended += 1;
            return;
        }
        self.start_capture(seq, t, rule as u32);
    }

    /// Start a capture at trigger `seq`, received at `t`.
    fn start_capture(&mut self, seq: u64, t: i64, rule: u32) {
        let rules = &self.captures.rules;
        let start_ns = t.saturating_sub(rules.before_ns);
        let end_ns = t
            .saturating_add(rules.after_ns)
            .min(start_ns.saturating_add(rules.max_span_ns));
        let max_bytes = rules.max_bytes as u64;
        let max_lines = Captures::line_budget(self.limits.max_lines);
        // Walk back from the newest chunk to the one the window starts in,
        // as far as the budget allows.
        let (mut first, mut entries, mut bytes) = (seq, 0u64, 0u64);
        let mut start_cut = false;
        let n = self.sealed.len();
        let mut cache = ReadCache::new();
        for ci in (0..=n).rev() {
            let meta = if ci < n { &self.sealed[ci] } else { &self.open };
            if meta.live == 0 || meta.first_seq > seq {
                continue;
            }
            let size = if ci < n {
                meta.footprint as u64
            } else {
                u64::from(meta.raw_len)
            };
            let (from, held) = if meta.base_ns >= start_ns {
                (meta.first_live, u64::from(meta.live))
            } else {
                // The window starts in this chunk: find its first entry.
                let mut from = None;
                let end = meta.end_seq;
                self.scan_from(meta.first_seq, &mut cache, |r| {
                    if r.seq >= end {
                        return ControlFlow::Break(());
                    }
                    if r.received_ns >= start_ns {
                        from = Some(r.seq);
                        return ControlFlow::Break(());
                    }
                    ControlFlow::Continue(())
                });
                match from {
                    Some(f) => (f, self.held_between(f, end, &mut cache)),
                    None => break,
                }
            };
            let share = size * held / u64::from(meta.live).max(1);
            if bytes + share > max_bytes || entries + held > max_lines {
                start_cut = true;
                break;
            }
            first = from;
            entries += held;
            bytes += share;
            if meta.base_ns < start_ns {
                break;
            }
        }
        if entries == 0 {
            // Not even the trigger's chunk fits: the trigger alone.
            entries = 1;
            bytes = self.frame.len() as u64;
            first = seq;
            start_cut = true;
        }
        if !self.make_room(entries, bytes, None) {
            self.captures.table.get_mut().counters.refused += 1;
            return;
        }
        let caps = &mut self.captures;
        let tbl = caps.table.get_mut();
        let Some(i) = tbl.slots.iter().position(|c| c.flags & USED == 0) else {
            tbl.counters.refused += 1;
            return;
        };
        let id = tbl.next_id;
        tbl.next_id += 1;
        tbl.counters.started += 1;
        tbl.slots[i] = Capture {
            id,
            trigger_seq: seq,
            trigger_ns: t,
            first_seq: first,
            last_seq: seq,
            start_ns,
            end_ns,
            entries,
            bytes,
            rule,
            flags: USED | if start_cut { START_CUT } else { 0 },
            extended: 0,
            _pad: 0,
        };
        caps.refresh();
    }

    /// Make room for `entries` and `bytes` more pinned, and (for a new
    /// capture, `open` = None) a slot, releasing the oldest complete
    /// captures as needed. False if complete captures do not free enough.
    fn make_room(&mut self, entries: u64, bytes: u64, open: Option<usize>) -> bool {
        let max_bytes = self.captures.rules.max_bytes as u64;
        let max_lines = Captures::line_budget(self.limits.max_lines);
        let max = self.captures.rules.max.clamp(1, MAX_CAPTURES);
        loop {
            let caps = &self.captures;
            let fits = caps.bytes + bytes <= max_bytes
                && caps.entries + entries <= max_lines
                && (open.is_some() || caps.pins.len() < max);
            if fits {
                return true;
            }
            let oldest = self
                .captures
                .table
                .get()
                .slots
                .iter()
                .filter(|c| c.flags & USED != 0 && c.is_complete())
                .min_by_key(|c| c.id)
                .map(|c| c.id);
            let Some(id) = oldest else {
                return false;
            };
            self.release_where(|c| c.id == id);
            self.captures.table.get_mut().counters.released_for_budget += 1;
        }
    }

    /// A pinned entry was evicted anyway (the ring had no other way to
    /// free a slot): the capture holding it holds one fewer.
    pub(super) fn capture_lost(&mut self, seq: u64) {
        for c in self.captures.table.get_mut().slots.iter_mut() {
            if c.flags & USED != 0 && c.holds(seq) {
                c.entries = c.entries.saturating_sub(1);
            }
        }
        self.captures.refresh();
    }
}
