//! Filling a route's batch: the next entries from its cursor, as its
//! filter takes them, formatted for its receiver. A route carries the
//! whole stream, or with `capture=1` the captures' runs
//! ([`crate::route::captured`]); either way an entry the ring evicted
//! before the route got to it is counted lost and told to the receiver.

use std::ops::ControlFlow;

use super::{Route, SCAN_BUDGET};
use crate::ring::Ring;
use crate::route::http_upload;
use crate::route::lost::Lost;
use crate::route::spec::Transport;

/// Bytes formatted ahead of the socket, at most.
const BATCH_BYTES: usize = 64 << 10;

impl Route {
    /// Format the next entries into `out`; entries examined.
    pub(super) fn fill(&mut self, ring: &Ring, local_host: &str) -> usize {
        let mut scratch = std::mem::take(&mut self.scratch);
        let scanned = if self.walk.is_some() {
            self.fill_captured(ring, local_host, &mut scratch)
        } else {
            self.fill_stream(ring, local_host, &mut scratch)
        };
        self.scratch = scratch;
        let relp = self.spec.transport == Transport::Relp;
        if self.marks.is_empty() && (!relp || self.unacked.is_empty()) {
            self.done = self.cursor;
        }
        scanned
    }

    /// Every entry from the cursor on.
    fn fill_stream(&mut self, ring: &Ring, local_host: &str, scratch: &mut Vec<u8>) -> usize {
        if self.cursor < ring.first_seq() {
            let (first, lost) = (self.cursor, ring.first_seq() - self.cursor);
            // `done` moves up with the next acknowledgement or write; a
            // RELP frame still unacknowledged may carry an evicted entry.
            self.cursor = ring.first_seq();
            self.note_lost(first, lost);
        }
        self.send_lost_notice(local_host, scratch);
        self.scan(ring, local_host, scratch, u64::MAX, SCAN_BUDGET)
            .0
    }

    /// The captures' entries from the cursor on, run by run; what lies
    /// between runs is skipped, not lost.
    fn fill_captured(&mut self, ring: &Ring, local_host: &str, scratch: &mut Vec<u8>) -> usize {
        let walk = self.walk.as_mut().expect("a capture route");
        if let Some((first, n)) = walk.refresh(&ring.captures(), self.done) {
            self.note_lost(first, n);
        }
        self.send_lost_notice(local_host, scratch);
        let mut scanned = 0;
        while scanned < SCAN_BUDGET {
            let Some((from, last)) = self.walk.as_ref().and_then(|w| w.next(self.cursor)) else {
                break;
            };
            self.cursor = from;
            let held_from = ring.first_seq().min(last + 1);
            if self.cursor < held_from {
                // Its capture was released before the route got here, and
                // eviction took the entries since.
                self.note_lost(self.cursor, held_from - self.cursor);
                self.cursor = held_from;
                self.send_lost_notice(local_host, scratch);
                continue;
            }
            let (n, stopped) = self.scan(ring, local_host, scratch, last, SCAN_BUDGET - scanned);
            scanned += n;
            if stopped {
                break;
            }
            if self.cursor <= last {
                // The ring holds no more of the run: the rest was evicted.
                self.note_lost(self.cursor, last + 1 - self.cursor);
                self.cursor = last + 1;
                self.send_lost_notice(local_host, scratch);
            }
        }
        scanned
    }

    /// Format the entries from the cursor up to `last` that the filter
    /// takes, until the batch is full, the RELP window is, or `budget`
    /// entries were examined. Returns the entries examined, and whether it
    /// stopped for one of those (rather than at `last` or the ring's end).
    fn scan(
        &mut self,
        ring: &Ring,
        local_host: &str,
        scratch: &mut Vec<u8>,
        last: u64,
        budget: usize,
    ) -> (usize, bool) {
        let relp = self.spec.transport == Transport::Relp;
        let batch = match self.upload {
            Some(_) => http_upload::BATCH_BYTES,
            None => BATCH_BYTES,
        };
        let (mut scanned, mut stopped) = (0, false);
        let mut cache = std::mem::take(&mut self.cache);
        ring.scan_from(self.cursor, &mut cache, |r| {
            if r.seq > last {
                return ControlFlow::Break(());
            }
            if relp && self.unacked.len() >= self.spec.window {
                stopped = true;
                return ControlFlow::Break(());
            }
            // Fair eviction takes entries from the middle of the ring too:
            // the receiver hears of them where they were.
            if r.seq > self.cursor {
                self.note_lost(self.cursor, r.seq - self.cursor);
                self.send_lost_notice(local_host, scratch);
            }
            self.cursor = r.seq + 1;
            scanned += 1;
            if self.filter.matches(&r) {
                self.push(&r, local_host, scratch, 1, Lost::default());
            }
            if self.out.len() >= batch || scanned >= budget {
                stopped = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        self.cache = cache;
        (scanned, stopped)
    }
}
