//! Changes to the daemon's state that clients (over the query socket) and
//! signals (SIGUSR1) may ask for: pause, resume, clear, closing the
//! intake fds of one name, and releasing a capture. The query server only parses and answers them;
//! the daemon carries them out here. Each leaves an `internal` entry
//! saying what happened, so the ring tells its own story.

use crate::ingest;
use crate::record::Severity;
use crate::ring::Ring;
use crate::source::intake_board::{self as intake, Board};

/// Changes to the daemon's state a client may ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Refuse new entries (counted as dropped), keep what is held.
    Pause,
    Resume,
    /// Empty the ring; counters stay.
    Clear,
    /// Close every intake fd passed under this name.
    DropFd(String),
    /// Release the capture with this id: its entries are no longer pinned.
    ReleaseCapture(u64),
}

/// What came of a control command, for whoever asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Paused, resumed or cleared: the ring's state now.
    Done { paused: bool, entries: usize },
    /// This many intake fds are closed (before the intake reads again).
    Closed(usize),
    /// The capture with this id is released.
    Released(u64),
    /// Nothing was done, and why.
    Refused(String),
}

/// Carry out `control` for `requester` (who asked, in the kernel's words:
/// a uid and pid, or a signal's sender), on the ring and, to drop fds, the
/// intake's board.
pub fn apply(
    ring: &mut Ring,
    intake: Option<&Board>,
    control: Control,
    requester: &str,
) -> Outcome {
    match control {
        Control::DropFd(name) => match drop_intake_fds(ring, intake, &name, requester) {
            Ok(n) => Outcome::Closed(n),
            Err(why) => Outcome::Refused(why),
        },
        Control::ReleaseCapture(id) => match release_capture(ring, id, requester) {
            Ok(()) => Outcome::Released(id),
            Err(why) => Outcome::Refused(why),
        },
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
            done(ring)
        }
    }
}

fn done(ring: &Ring) -> Outcome {
    Outcome::Done {
        paused: ring.is_paused(),
        entries: ring.len(),
    }
}

fn set_paused(ring: &mut Ring, paused: bool) -> Outcome {
    if ring.is_paused() == paused {
        return done(ring);
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
    done(ring)
}

/// Why capture `id` can be neither read nor released: it is not held.
pub fn capture_not_held(id: u64) -> String {
    format!(
        "no capture {id} is held (released, or never made): `logread --captures` lists those held"
    )
}

/// Release capture `id`; the entry left says who asked.
fn release_capture(ring: &mut Ring, id: u64, requester: &str) -> Result<(), String> {
    if !ring.release_capture(id) {
        return Err(capture_not_held(id));
    }
    ingest::note(
        ring,
        Severity::Notice,
        format!("capture {id} released on request of {requester}"),
    );
    Ok(())
}

/// Close every intake fd passed as `name`; the entry left says who asked.
/// Returns how many fds are closed (before the intake reads again), or why
/// none is.
fn drop_intake_fds(
    ring: &mut Ring,
    board: Option<&Board>,
    name: &str,
    requester: &str,
) -> Result<usize, String> {
    let n = board.map_or(0, |b| intake::request_drop(b, name));
    if n == 0 {
        return Err(format!("no intake fd named {name:?}"));
    }
    let fds = if n == 1 { "fd" } else { "fds" };
    ingest::note(
        ring,
        Severity::Notice,
        format!("intake: closed {n} {fds} named {name:?} on request of {requester}"),
    );
    Ok(n)
}
