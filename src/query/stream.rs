//! One reader's walk through the ring: where it starts, what it is owed,
//! and how it is told what eviction took before it got there.
//!
//! A reader is owed the entries held when it asked (from its start up to
//! the ring's next sequence number then) and every entry after. Fair
//! eviction leaves holes in the ring, and a hole that was there before the
//! reader asked is nothing it missed; an entry it was owed and the ring
//! took before it got there is, and the reader is told how many in the
//! stream, at the gap. A reader that gave a cursor (`after_seq`) claims
//! everything after it, so every gap it meets is news to it.

use std::ops::ControlFlow;

use super::budget::TurnBudget;
use super::request::{Mode, Query};
use super::{QueryCounters, BATCH_BYTES};
use crate::record::{now_ns, Record, Severity};
use crate::ring::{ReadCache, Ring};
use crate::view::filter::Filter;
use crate::view::format::{self, Format};
use crate::view::json;

/// A client reading entries.
pub(super) struct Stream {
    pub(super) cursor: u64,
    /// A dump stops here; a follow never does.
    pub(super) end: Option<u64>,
    filter: Filter,
    format: Format,
    /// Frame the body as HTTP chunks.
    pub(super) chunked: bool,
    /// Frame the body as [`crate::view::frames`] says.
    pub(super) framed: bool,
    /// Still looking for where a tail (`n`) starts; nothing is sent until
    /// it is found.
    pub(super) seek: Option<Seek>,
    /// The chunk this reader is in, decompressed.
    cache: ReadCache,
    /// Entries from here on that eviction takes before the reader gets
    /// them are reported as missed, wherever they were.
    report_from: u64,
    /// Below `report_from`: the entries held when the reader asked that it
    /// has not been given or told of yet.
    owed: Option<Owed>,
    /// The fair-eviction notes this reader was told of (their ids).
    told: Vec<u64>,
}

/// The entries a reader was owed below `below` (the ring's next sequence
/// number when it asked), counted, since the holes among them are not.
struct Owed {
    below: u64,
    /// Entries held then, from the cursor up, not yet given or reported.
    left: u64,
    /// Of those, the ones the ring took, not yet reported: the gaps the
    /// reader meets next tell of them.
    taken: u64,
    /// The ring's removals when `taken` was last counted: while unchanged,
    /// the ring took nothing more.
    squared_at: u64,
}

/// The walk back from the newest entry for the n-th newest match, done a
/// budget of entries per turn like every other scan, so that a tail over a
/// large ring with a rare match does not hold up ingest.
pub(super) struct Seek {
    want: u64,
    found: u64,
    /// The next entry to examine is the one just below this.
    below: u64,
    /// Where the walk stops (the read's start: `after_seq`, or the oldest).
    floor: u64,
    /// Entries walked over so far: at a match, what the reader is owed.
    walked: u64,
}

/// Where a read starts: after `after_seq`, or the newest `tail` matching
/// entries, or the oldest held; a follow starts at the next entry. A
/// cursor ahead of the ring (no entry after it was ever handed out: the
/// ring was lost, e.g. in a restart) starts at the oldest held.
pub(super) fn open_stream(q: Query, chunked: bool, ring: &Ring) -> Stream {
    // A range (a capture's) is read as the whole ring is, within it.
    let (from, upto) = match q.within {
        Some((from, to)) => (Some(from), to.min(ring.next_seq())),
        None => (None, ring.next_seq()),
    };
    let end = (q.mode == Mode::Dump).then_some(upto);
    let after_seq = q.after_seq.filter(|&a| a < ring.next_seq());
    let ahead = after_seq.is_none() && q.after_seq.is_some();
    let mut cursor = match (q.mode, after_seq) {
        _ if ahead => ring.first_seq(),
        (_, Some(after)) => after.saturating_add(1),
        (Mode::Follow, None) => ring.next_seq(),
        _ => from.map_or(ring.first_seq(), |f| f.max(ring.first_seq())),
    };
    let mut seek = None;
    if let (Some(n), true) = (q.tail, q.mode != Mode::Follow) {
        // The newest n matching entries: walk back from the newest (in
        // `pump`, a budget at a time). None match: start at the next.
        seek = (n > 0).then_some(Seek {
            want: n,
            found: 0,
            below: upto,
            floor: cursor,
            walked: 0,
        });
        cursor = ring.next_seq();
    }
    let mut cache = ReadCache::new();
    Stream {
        cursor,
        end,
        filter: q.filter,
        format: q.format,
        chunked,
        framed: q.framed,
        seek,
        report_from: match after_seq {
            // A cursor given is a claim on everything after it.
            Some(after) => after.saturating_add(1),
            None if ahead => ring.first_seq(),
            None => ring.next_seq(),
        },
        // From the oldest, it is owed all the ring holds; a tail, what its
        // seek walks over (counted there).
        owed: (after_seq.is_none() && !ahead && q.mode != Mode::Follow).then(|| Owed {
            below: upto,
            left: match (q.tail, from) {
                (Some(_), _) => 0,
                (None, Some(_)) => ring.held_between(cursor, upto, &mut cache),
                (None, None) => ring.len() as u64,
            },
            taken: 0,
            squared_at: ring.removals(),
        }),
        // Moved in after `owed` counted with it.
        cache,
        told: Vec::new(),
    }
}

/// What a reader whose cursor `after` is ahead of the ring is told, in its
/// format: the JSON line has no `seq`, so it is never taken for a cursor.
pub(super) fn cursor_ahead_notice(after: u64, format: Format, ring: &Ring) -> Vec<u8> {
    let mut notice = Record::internal(
        now_ns(),
        Severity::Warning,
        format!(
            "cursor {after} is ahead of the ring, whose next entry is {}: entries handed out \
             before were lost (e.g. in a restart); reading from the oldest entry held",
            ring.next_seq()
        ),
    );
    let mut out = Vec::new();
    if format == Format::Json {
        json::write_line(&notice.as_ref(), None, None, &mut out);
    } else {
        notice.seq = ring.first_seq();
        format::write_record(&notice.as_ref(), format, &mut out);
    }
    out
}

/// Walk a tail's seek back while the turn's budget lasts, moving the
/// cursor to each match; ends the seek at the n-th match or the floor.
pub(super) fn seek(s: &mut Stream, ring: &Ring, budget: &mut TurnBudget) {
    let Stream {
        seek,
        filter,
        cursor,
        cache,
        owed,
        ..
    } = s;
    let Some(k) = seek else {
        return;
    };
    let mut more = false;
    ring.scan_back(k.below, cache, |r| {
        if r.seq < k.floor || k.found >= k.want || budget.is_spent() {
            more = r.seq >= k.floor && k.found < k.want;
            return ControlFlow::Break(());
        }
        k.below = r.seq;
        k.walked += 1;
        if filter.matches(&r) {
            k.found += 1;
            *cursor = r.seq;
            if let Some(o) = owed.as_mut() {
                o.left = k.walked;
            }
        }
        budget.spend(r.msg.len());
        ControlFlow::Continue(())
    });
    if !more {
        *seek = None;
    }
}

/// Tell a reader that `missed` entries before `seq` were evicted before it
/// got them.
fn write_missed(
    seq: u64,
    missed: u64,
    format: Format,
    out: &mut Vec<u8>,
    counters: &mut QueryCounters,
) {
    counters.lapped += 1;
    counters.missed += missed;
    let mut notice = Record::internal(
        now_ns(),
        Severity::Warning,
        format!("{missed} entries were overwritten in the ring before this reader got them"),
    );
    if format == Format::Json {
        format::write_missed_line(&notice.as_ref(), missed, out);
    } else {
        notice.seq = seq;
        format::write_record(&notice.as_ref(), format, out);
    }
}

/// Append the matching entries from the stream's cursor to `out`, up to a
/// batch or while the turn's budget lasts; tell a reader that eviction
/// overtook how many it missed, at the gap.
pub(super) fn fill(
    s: &mut Stream,
    ring: &Ring,
    out: &mut Vec<u8>,
    counters: &mut QueryCounters,
    budget: &mut TurnBudget,
) {
    square_owed(s, ring);
    let stop = s.end.map_or(ring.next_seq(), |e| e.min(ring.next_seq()));
    let mut done = true;
    let Stream {
        cursor,
        filter,
        format,
        cache,
        report_from,
        owed,
        told,
        ..
    } = s;
    let gaps = Gaps {
        report_from: *report_from,
        format: *format,
    };
    ring.scan_from(*cursor, cache, |r| {
        if r.seq >= stop {
            return ControlFlow::Break(());
        }
        if r.seq > *cursor {
            tell_evictions(ring, *cursor..r.seq, filter, told, *format, out);
        }
        gaps.report(*cursor, r.seq, owed, out, counters);
        if let Some(o) = owed.as_mut().filter(|o| r.seq < o.below) {
            o.left = o.left.saturating_sub(1);
        }
        *cursor = r.seq + 1;
        if filter.matches(&r) {
            format::write_record(&r, *format, out);
        }
        let more = budget.spend(r.msg.len());
        if out.len() >= BATCH_BYTES || !more {
            done = false;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    if done && *cursor < stop {
        // Everything from the cursor on was evicted.
        tell_evictions(ring, *cursor..stop, filter, told, *format, out);
        gaps.report(*cursor, stop, owed, out, counters);
        *cursor = stop;
    }
}

/// Tell the reader, at a hole it meets (`gap`), of what fair eviction took
/// out of turn there: one entry per source and episode, each once, if its
/// filter would take an entry of that source.
fn tell_evictions(
    ring: &Ring,
    gap: std::ops::Range<u64>,
    filter: &Filter,
    told: &mut Vec<u64>,
    format: Format,
    out: &mut Vec<u8>,
) {
    for note in ring.evictions_within(gap.start, gap.end) {
        if told.contains(&note.id) {
            continue;
        }
        told.push(note.id);
        let mut notice = Record::internal(
            now_ns(),
            Severity::Notice,
            format!(
                "fair eviction took {} entries of {} between seq {} and {}, ahead of older \
                 entries of other sources",
                note.count, note.source, note.first_seq, note.last_seq
            ),
        );
        notice.sd.push(crate::record::SdElement {
            id: "evicted@ringlogd".into(),
            params: vec![
                ("source".into(), note.source.clone()),
                ("count".into(), note.count.to_string()),
                ("first_seq".into(), note.first_seq.to_string()),
                ("last_seq".into(), note.last_seq.to_string()),
            ],
        });
        let mut about = notice.as_ref();
        about.source = &note.source;
        if !filter.matches(&about) {
            continue;
        }
        if format == Format::Json {
            // No seq: the note is no entry of the ring, never a cursor.
            json::write_line(&notice.as_ref(), None, None, out);
        } else {
            notice.seq = gap.start;
            format::write_record(&notice.as_ref(), format, out);
        }
    }
}

/// How a stream's reader is told of the entries missing between two it
/// got.
struct Gaps {
    report_from: u64,
    format: Format,
}

impl Gaps {
    /// The entries `from..to` are not in the ring. Below `report_from`,
    /// the reader is told of as many as the ring took since it asked
    /// (the rest are holes that were there before); from there on, of all.
    fn report(
        &self,
        from: u64,
        to: u64,
        owed: &mut Option<Owed>,
        out: &mut Vec<u8>,
        counters: &mut QueryCounters,
    ) {
        if let Some(o) = owed.as_mut() {
            let taken = to.min(o.below).saturating_sub(from).min(o.taken);
            if taken > 0 {
                o.taken -= taken;
                o.left -= taken;
                write_missed(from, taken, self.format, out, counters);
            }
        }
        let from = from.max(self.report_from);
        if to > from {
            write_missed(from, to - from, self.format, out, counters);
        }
    }
}

/// Count the entries the reader was owed that the ring took since it last
/// looked: those held when it asked, from its cursor up, less those held
/// now. The ring does not change while a reader is served, so once per
/// turn is enough; the gaps met next tell of them.
fn square_owed(s: &mut Stream, ring: &Ring) {
    let Some(o) = s.owed.as_mut() else {
        return;
    };
    if s.cursor >= o.below {
        s.owed = None;
        return;
    }
    if ring.removals() != o.squared_at {
        o.squared_at = ring.removals();
        o.taken = o
            .left
            .saturating_sub(ring.held_between(s.cursor, o.below, &mut s.cache));
    }
}

/// What a reader that leaves now had been owed and lost to eviction (one
/// the ring lapped while it was not reading): what it would have been
/// told next.
pub(super) fn missed_on_leaving(s: &mut Stream, ring: &Ring) -> u64 {
    let mut missed = 0;
    if let Some(o) = s.owed.as_ref().filter(|o| s.cursor < o.below) {
        missed += o
            .left
            .saturating_sub(ring.held_between(s.cursor, o.below, &mut s.cache));
    }
    // Past the owed part, up to the first entry it still had coming.
    let from = s.cursor.max(s.report_from);
    let stop = ring.next_seq().min(s.end.unwrap_or(u64::MAX));
    let mut first_held = stop;
    if from < stop {
        ring.scan_from(from, &mut s.cache, |r| {
            first_held = r.seq.min(stop);
            ControlFlow::Break(())
        });
    }
    missed + first_held.saturating_sub(from)
}
