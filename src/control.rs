//! Changes to the daemon's state that clients (over the query socket) and
//! signals (SIGUSR1) may ask for: pause, resume, clear, and closing the
//! intake fds of one name. Each leaves an `internal` entry saying what
//! happened, so the ring tells its own story.

use std::os::fd::BorrowedFd;

use nix::sys::socket::{getsockopt, sockopt};

use crate::ingest;
use crate::query::request::Control;
use crate::record::Severity;
use crate::ring::Ring;
use crate::source::intake_board::{self as intake, Board};

/// Carry out `control` on the ring. Dropping intake fds needs the intake
/// as well: [`drop_intake_fds`] does it, and here it changes nothing.
pub fn apply(ring: &mut Ring, control: Control) {
    match control {
        Control::DropFd(_) => {}
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

/// Close every intake fd passed as `name`, for the client on `who` (a
/// reader allowed to change the daemon's state); the entry left says who
/// asked, from the kernel's word on the connection. Returns how many fds
/// are closed (before the intake reads again), or why none is.
pub fn drop_intake_fds(
    ring: &mut Ring,
    board: Option<&Board>,
    name: &str,
    who: BorrowedFd<'_>,
) -> Result<usize, String> {
    let n = board.map_or(0, |b| intake::request_drop(b, name));
    if n == 0 {
        return Err(format!("no intake fd named {name:?}"));
    }
    let peer = match getsockopt(&who, sockopt::PeerCredentials) {
        Ok(c) => format!("uid {} (pid {})", c.uid(), c.pid()),
        Err(e) => format!("a reader whose credentials cannot be read ({e})"),
    };
    let fds = if n == 1 { "fd" } else { "fds" };
    ingest::note(
        ring,
        Severity::Notice,
        format!("intake: closed {n} {fds} named {name:?} on request of {peer}"),
    );
    Ok(n)
}
