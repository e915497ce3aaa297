//! What a `capture=1` route carries: the entries of the captures, not the
//! stream.
//!
//! A capture's first entries were already in the ring when its trigger
//! came, so a route cannot decide entry by entry as it passes them; it
//! walks the captures instead. Each turn it takes in the captures the ring
//! holds, as runs of sequence numbers ([`CaptureWalk::refresh`]), and sends
//! the runs in order from its cursor: entries between runs are skipped
//! (they belong to no capture, and are not lost), overlapping captures are
//! one run (no entry twice), and an open capture is a run that grows.
//!
//! A run is kept until the route delivered all of it, even if the ring
//! released its capture meanwhile: the route then sends what the ring
//! still holds of it and counts the rest as lost, like any entry evicted
//! before a route got to it. Runs start no earlier than the first entry
//! not yet delivered, so a connection that breaks sends again exactly
//! what was not delivered.

use crate::ring::capture::Capture;

/// Runs kept at most: far more than the ring's captures (32), for a route
/// that is down while captures are made and released. Past it, the oldest
/// run is given up and its entries counted as lost.
const MAX_RUNS: usize = 256;

/// The runs of captured entries a route has still to deliver.
#[derive(Debug, Default)]
pub struct CaptureWalk {
    /// `(first, last)`, sorted, disjoint and not adjacent.
    runs: Vec<(u64, u64)>,
}

impl CaptureWalk {
    /// Take in `captures` (as the ring holds them now) and forget what was
    /// delivered: everything before `done`. Returns the entries of runs
    /// given up for [`MAX_RUNS`], as `(first, count)`.
    pub fn refresh(&mut self, captures: &[Capture], done: u64) -> Option<(u64, u64)> {
        for c in captures {
            let first = c.first_seq.max(done);
            if c.entries > 0 && first <= c.last_seq {
                self.add(first, c.last_seq);
            }
        }
        self.runs.retain(|r| r.1 >= done);
        if let Some(r) = self.runs.first_mut() {
            r.0 = r.0.max(done);
        }
        if self.runs.len() > MAX_RUNS {
            let (first, last) = self.runs.remove(0);
            return Some((first, last - first + 1));
        }
        None
    }

    /// The run to read from `cursor`: `(from, last)` with `from` the first
    /// captured entry at or after `cursor`.
    pub fn next(&self, cursor: u64) -> Option<(u64, u64)> {
        self.runs
            .iter()
            .find(|r| r.1 >= cursor)
            .map(|&(first, last)| (first.max(cursor), last))
    }

    /// Add the run `first..=last`, merged with those it touches.
    fn add(&mut self, mut first: u64, mut last: u64) {
        let at = self.runs.partition_point(|r| r.1.saturating_add(1) < first);
        let mut end = at;
        while end < self.runs.len() && self.runs[end].0 <= last.saturating_add(1) {
            first = first.min(self.runs[end].0);
            last = last.max(self.runs[end].1);
            end += 1;
        }
        self.runs.splice(at..end, [(first, last)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(first_seq: u64, last_seq: u64) -> Capture {
        let mut c = Capture::default();
        (c.first_seq, c.last_seq) = (first_seq, last_seq);
        c.entries = last_seq - first_seq + 1;
        c
    }

    #[test]
    fn runs_merge_and_skip_what_no_capture_holds() {
        let mut w = CaptureWalk::default();
        w.refresh(&[capture(10, 20), capture(15, 30), capture(50, 60)], 0);
        assert_eq!(w.runs, [(10, 30), (50, 60)]);
        assert_eq!(w.next(0), Some((10, 30)));
        assert_eq!(w.next(25), Some((25, 30)));
        assert_eq!(w.next(31), Some((50, 60)));
        assert_eq!(w.next(61), None);
        // Adjacent runs are one.
        w.refresh(&[capture(31, 40)], 0);
        assert_eq!(w.runs, [(10, 40), (50, 60)]);
    }

    #[test]
    fn an_open_capture_grows_and_delivered_runs_are_forgotten() {
        let mut w = CaptureWalk::default();
        w.refresh(&[capture(10, 12)], 0);
        w.refresh(&[capture(10, 18)], 13);
        assert_eq!(w.runs, [(13, 18)]);
        // Released by the ring: the run stays until delivered.
        w.refresh(&[], 15);
        assert_eq!(w.runs, [(15, 18)]);
        w.refresh(&[], 19);
        assert_eq!(w.next(19), None);
        // A capture reaching back into what was delivered starts after it.
        w.refresh(&[capture(5, 25)], 19);
        assert_eq!(w.runs, [(19, 25)]);
    }

    #[test]
    fn runs_past_the_bound_are_given_up_oldest_first() {
        let mut w = CaptureWalk::default();
        for k in 0..MAX_RUNS as u64 {
            assert_eq!(w.refresh(&[capture(10 * k, 10 * k + 4)], 0), None);
        }
        let given_up = w.refresh(&[capture(100_000, 100_001)], 0);
        assert_eq!(given_up, Some((0, 5)));
        assert_eq!(w.runs.len(), MAX_RUNS);
    }
}
