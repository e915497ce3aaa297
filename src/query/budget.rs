//! How much query work one turn of the event loop may do, shared by every
//! client together: a deadline, so that no request and no number of
//! clients can hold up ingest for longer than the deadline plus one entry.
//!
//! Counting entries is not enough: an entry costs what its length and the
//! reader's pattern make it cost, and per-client budgets add up over the
//! clients. The clock is read every few entries or bytes, so the check
//! costs little beside the work it bounds.

use std::time::{Duration, Instant};

/// Query work allowed per turn, for all clients together. Ingest waits at
/// most this (plus one entry's match) behind readers.
pub const TURN_TIME: Duration = Duration::from_millis(1);
/// The clock is read after at most this many entries...
const CHECK_EVERY: u32 = 16;
/// ...or this many bytes of entry text, whichever comes first.
const CHECK_BYTES: usize = 16 << 10;

/// The query work left in this turn.
#[derive(Debug)]
pub struct TurnBudget {
    deadline: Instant,
    spent: bool,
    entries: u32,
    bytes: usize,
}

impl TurnBudget {
    /// A fresh budget, starting now.
    pub fn start() -> TurnBudget {
        TurnBudget::until(Instant::now() + TURN_TIME)
    }

    fn until(deadline: Instant) -> TurnBudget {
        TurnBudget {
            deadline,
            spent: false,
            entries: 0,
            bytes: 0,
        }
    }

    /// Account for one entry (or write) of `bytes`; false once the turn's
    /// time is spent.
    pub fn spend(&mut self, bytes: usize) -> bool {
        if self.spent {
            return false;
        }
        self.entries += 1;
        self.bytes += bytes;
        if self.entries >= CHECK_EVERY || self.bytes >= CHECK_BYTES {
            self.entries = 0;
            self.bytes = 0;
            self.spent = Instant::now() >= self.deadline;
        }
        !self.spent
    }

    /// Whether the turn's time is spent (as of the last clock reading).
    pub fn is_spent(&self) -> bool {
        self.spent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spent_once_the_deadline_passes_and_stays_spent() {
        let mut b = TurnBudget::until(Instant::now() + Duration::from_secs(60));
        assert!((0..1000).all(|_| b.spend(100)));
        assert!(!b.is_spent());
        let mut b = TurnBudget::until(Instant::now());
        // The clock is read every CHECK_EVERY entries, not each one.
        let granted = (0..100).take_while(|_| b.spend(1)).count();
        assert_eq!(granted, CHECK_EVERY as usize - 1);
        assert!(b.is_spent() && !b.spend(0));
        // A large entry reads the clock at once.
        let mut b = TurnBudget::until(Instant::now());
        assert!(!b.spend(CHECK_BYTES));
    }
}
