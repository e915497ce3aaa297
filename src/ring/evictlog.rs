//! What fair eviction took out of turn, kept so that a reader meeting the
//! hole is told in the stream, not only in the stats.
//!
//! When the fair policy evicts an entry that is not the oldest held (a
//! source over its share, or a low severity, loses entries before older
//! ones of others), the entry is counted in an *episode* of its source: a
//! run of sequence numbers and a count. A source's episode goes on for
//! [`EPISODE_NS`] of ingest; then the next eviction starts another. So a
//! source flooding for an hour leaves one note every ten seconds, however
//! fast it floods, and the notes' counts add up to what it lost out of
//! turn. Taking the oldest entry leaves no hole and no note.
//!
//! The log is bounded ([`MAX_EPISODES`]); notes whose every sequence
//! number is below the oldest entry held go first, since no reader can
//! meet their holes. It lives on the heap: a successor process starts
//! with none (the stats still count every eviction).

use std::collections::VecDeque;

/// How long one source's episode lasts, in receive time.
pub const EPISODE_NS: i64 = 10_000_000_000;
/// Episodes kept at most.
pub const MAX_EPISODES: usize = 256;

/// What eviction took of one source, out of turn, in one episode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Episode {
    /// Counts up; a reader remembers which it was told of.
    pub id: u64,
    pub source: u16,
    /// The lowest and highest sequence numbers taken.
    pub first_seq: u64,
    pub last_seq: u64,
    pub count: u64,
    started_ns: i64,
}

/// The episodes, oldest first.
#[derive(Debug, Default)]
pub(super) struct EvictionLog {
    episodes: VecDeque<Episode>,
    next_id: u64,
}

impl EvictionLog {
    /// Count the eviction of entry `seq` of `source`, out of turn, at
    /// receive time `now_ns`. `oldest_held` is the oldest sequence number
    /// the ring holds: episodes wholly below it can go.
    pub(super) fn record(&mut self, source: u16, seq: u64, now_ns: i64, oldest_held: u64) {
        let full = self.episodes.len() >= MAX_EPISODES;
        let current = self.episodes.iter_mut().rev().find(|e| e.source == source);
        if let Some(e) =
            current.filter(|e| full || now_ns.saturating_sub(e.started_ns) < EPISODE_NS)
        {
            e.first_seq = e.first_seq.min(seq);
            e.last_seq = e.last_seq.max(seq);
            e.count += 1;
            return;
        }
        if self.episodes.len() >= MAX_EPISODES {
            self.episodes.retain(|e| e.last_seq >= oldest_held);
        }
        if self.episodes.len() >= MAX_EPISODES {
            // Full of holes readers can still meet, and nothing of this
            // source to extend: its note is the one that is not kept.
            return;
        }
        self.next_id += 1;
        self.episodes.push_back(Episode {
            id: self.next_id,
            source,
            first_seq: seq,
            last_seq: seq,
            count: 1,
            started_ns: now_ns,
        });
    }

    /// The episodes with a sequence number in `from..to`.
    pub(super) fn within(&self, from: u64, to: u64) -> impl Iterator<Item = &Episode> {
        self.episodes
            .iter()
            .filter(move |e| e.first_seq < to && e.last_seq >= from)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.episodes.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.episodes.clear();
    }

    /// Heap bytes, counted in the ring's budget.
    pub(super) fn heap_bytes(&self) -> usize {
        self.episodes.capacity() * std::mem::size_of::<Episode>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_makes_one_episode_per_period() {
        let mut log = EvictionLog::default();
        for (i, seq) in (10..20).enumerate() {
            log.record(3, seq, i as i64, 0);
        }
        log.record(3, 40, EPISODE_NS + 5, 0);
        let v: Vec<_> = log
            .within(0, 100)
            .map(|e| (e.first_seq, e.last_seq, e.count))
            .collect();
        assert_eq!(v, [(10, 19, 10), (40, 40, 1)]);
        assert_eq!(log.within(20, 40).count(), 0);
        assert_eq!(log.within(19, 20).count(), 1);
    }

    #[test]
    fn a_full_log_drops_what_no_reader_can_meet_and_never_loses_a_count() {
        let mut log = EvictionLog::default();
        for s in 0..MAX_EPISODES as u16 {
            log.record(s, u64::from(s), 0, 0);
        }
        // Full: source 0 extends its episode rather than start another.
        log.record(0, 1000, EPISODE_NS * 2, 0);
        let first = log.within(0, 1).next().copied().expect("source 0");
        assert_eq!((first.last_seq, first.count), (1000, 2));
        // A new source finds room once old holes are behind the oldest held.
        log.record(999, 2000, EPISODE_NS * 2, 100);
        assert!(log.within(2000, 2001).any(|e| e.source == 999));
        assert!(log.heap_bytes() > 0);
    }
}
