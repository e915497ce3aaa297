//! Where records from every input enter the ring, and the one place that
//! counts them arriving.
//!
//! Trouble the daemon reports about its inputs and routes goes through
//! [`notice::Notices`], which keeps a flood of trouble from flooding the
//! ring.
//!
//! The ledger promises `received = stored + dropped` for each input. The
//! ring counts what it stores and what it refuses (while paused); what
//! arrives, and what is lost before it could be stored (a kernel gap, a
//! socket's overflow), is counted here. Sources, routes and control
//! commands report through these functions and never touch the ledger's
//! arrival counts themselves, so each side of the invariant has one writer.

pub mod notice;

use crate::record::{now_ns, Input, Record, RecordRef, Severity};
use crate::ring::Ring;

/// Store one record an input delivered: count it received (and malformed
/// or truncated, as its parser said), then push it. The sequence number
/// it got, or `None` when the ring refused it (paused; counted dropped).
pub fn store(ring: &mut Ring, record: &RecordRef, malformed: bool) -> Option<u64> {
    let counters = ring.ledger.input_mut(record.input);
    counters.received += 1;
    counters.malformed += u64::from(malformed);
    counters.truncated += u64::from(record.truncated);
    ring.push_ref(record)
}

/// Count `n` records of `input` that arrived but were lost before they
/// could be stored, e.g. numbers the kernel skipped or datagrams a socket
/// dropped. The caller tells readers why, with [`note`].
pub fn lost(ring: &mut Ring, input: Input, n: u64) {
    let counters = ring.ledger.input_mut(input);
    counters.received += n;
    counters.dropped += n;
}

/// Store a message from the daemon itself, as an `internal` entry.
pub fn note(ring: &mut Ring, severity: Severity, msg: impl Into<String>) {
    store(
        ring,
        &Record::internal(now_ns(), severity, msg).as_ref(),
        false,
    );
}
