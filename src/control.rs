//! Changes to the daemon's state that clients (over the query socket) and
//! signals (SIGUSR1) may ask for: pause, resume, clear. Each leaves an
//! `internal` entry saying what happened, so the ring tells its own story.

use crate::ingest;
use crate::query::request::Control;
use crate::record::Severity;
use crate::ring::Ring;

/// Carry out `control` on the ring.
pub fn apply(ring: &mut Ring, control: Control) {
    match control {
        Control::Pause => set_paused(ring, true),
        Control::Resume => set_paused(ring, false),
        Control::Clear => {
            let n = ring.len();
            ring.clear();
            ingest::note(
                ring,
                Severity::Notice,
                format!("ring cleared on request: {n} entries removed"),
            );
        }
    }
}

fn set_paused(ring: &mut Ring, paused: bool) {
    if ring.is_paused() == paused {
        return;
    }
    // Logged while storing is on, so the entry itself is kept.
    if paused {
        ingest::note(
            ring,
            Severity::Notice,
            "ring paused: new entries are dropped and counted",
        );
        ring.set_paused(true);
    } else {
        ring.set_paused(false);
        let dropped: u64 = ring.ledger.inputs().map(|(_, c)| c.dropped).sum();
        ingest::note(
            ring,
            Severity::Notice,
            format!("ring resumed; {dropped} entries dropped since start, pauses included"),
        );
    }
}
