//! The daemon's own reports about trouble with its inputs, stored as
//! `internal` entries from `memlogd`, without letting a flood of trouble
//! flood the ring.
//!
//! Each occurrence of a problem is reported once, as one entry. Of one kind
//! of problem at most [`BURST`] entries are written per [`WINDOW`]; the last
//! of those says that more are held back, and the first one after the
//! window says how many were. The counts themselves are always complete:
//! they are in the ledger, which the caller keeps.

use std::time::{Duration, Instant};

use super::note;
use crate::record::Severity;
use crate::ring::Ring;

/// Reports of one kind written per window.
pub const BURST: u32 = 10;
/// How long a burst of reports of one kind lasts.
pub const WINDOW: Duration = Duration::from_secs(60);
#[derive(Debug)]
struct KindState {
    kind: &'static str,
    window_start: Instant,
    written: u32,
    held_back: u64,
}

/// Rate-limited problem reports, per kind of problem.
#[derive(Debug, Default)]
pub struct Notices {
    kinds: Vec<KindState>,
}

impl Notices {
    /// Report one occurrence of a problem of `kind` (a short fixed name,
    /// e.g. `"intake-no-fd"`), with `message` built only if it is written.
    pub fn report(
        &mut self,
        ring: &mut Ring,
        kind: &'static str,
        message: impl FnOnce() -> String,
    ) {
        self.report_at(ring, kind, Instant::now(), message);
    }

    fn report_at(
        &mut self,
        ring: &mut Ring,
        kind: &'static str,
        now: Instant,
        message: impl FnOnce() -> String,
    ) {
        let pos = match self.kinds.iter().position(|k| k.kind == kind) {
            Some(p) => p,
            None => {
                self.kinds.push(KindState {
                    kind,
                    window_start: now,
                    written: 0,
                    held_back: 0,
                });
                self.kinds.len() - 1
            }
        };
        let k = &mut self.kinds[pos];
        if now.duration_since(k.window_start) >= WINDOW {
            k.window_start = now;
            k.written = 0;
        }
        if k.written >= BURST {
            k.held_back += 1;
            return;
        }
        k.written += 1;
        let mut text = message();
        if k.held_back > 0 {
            text.push_str(&format!(
                " ({} more reports like this were held back; the stats count them all)",
                k.held_back
            ));
            k.held_back = 0;
        }
        if k.written == BURST {
            text.push_str(&format!(
                " (further reports like this are held back for {} s; the stats count them all)",
                WINDOW.as_secs()
            ));
        }
        note(ring, Severity::Warning, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Input;
    use crate::ring::Limits;

    fn messages(ring: &Ring) -> Vec<String> {
        ring.iter_from(0).map(|r| r.msg.to_owned()).collect()
    }

    #[test]
    fn each_occurrence_is_one_entry_until_the_burst_is_spent() {
        let mut ring = Ring::new(Limits::default());
        let mut n = Notices::default();
        let t0 = Instant::now();
        for i in 0..25 {
            n.report_at(&mut ring, "a", t0, || format!("problem {i}"));
        }
        n.report_at(&mut ring, "b", t0, || "other kind".into());
        let m = messages(&ring);
        assert_eq!(m.len(), BURST as usize + 1);
        assert_eq!(m[0], "problem 0");
        assert!(
            m[BURST as usize - 1].contains("held back for 60 s"),
            "{m:?}"
        );
        assert_eq!(m[BURST as usize], "other kind");
        assert_eq!(ring.ledger.input(Input::Internal).stored, m.len() as u64);

        // After the window, the next report says how many were held back.
        n.report_at(&mut ring, "a", t0 + WINDOW, || "problem again".into());
        let last = messages(&ring).pop().unwrap();
        assert!(last.starts_with("problem again (15 more reports"), "{last}");
    }
}
