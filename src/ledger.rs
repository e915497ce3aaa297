//! The loss ledger: the one place that counts, per input, what arrived, what
//! was stored and everything that was lost or damaged on the way.
//!
//! The invariant every test leans on is `received = stored + dropped` per
//! input; `evicted` then says how many stored entries the ring has since
//! overwritten and `cleared` how many a clear request removed, so
//! `stored - evicted - cleared` is what the ring holds. What readers missed
//! is counted by the query server.

use serde::Serialize;

use crate::record::Input;

/// Counters for one kind of input.
///
/// Plain `u64`s in C layout: the ledger lives in the ring's memfd, so a
/// successor process goes on counting from the same figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[repr(C)]
pub struct InputCounters {
    /// Messages, lines or records that reached the daemon.
    pub received: u64,
    /// Of those, entries pushed into the ring.
    pub stored: u64,
    /// Of those, entries refused before the ring (never counted as stored).
    pub dropped: u64,
    /// Stored entries whose header could not be parsed, kept as raw text.
    pub malformed: u64,
    /// Stored entries cut at the length limit.
    pub truncated: u64,
    /// Stored entries later overwritten by newer ones (the ring was full).
    pub evicted: u64,
    /// Stored entries removed by a clear request.
    pub cleared: u64,
}

/// Every counter the daemon keeps.
#[derive(Clone, Debug, Default)]
#[repr(C)]
pub struct Ledger {
    inputs: [InputCounters; Input::ALL.len()],
    /// Where what is open now (the stats' gauges) was once kept; left so
    /// that a memfd written before and after reads the same.
    _reserved: [u64; 2],
}

impl Ledger {
    pub fn input(&self, input: Input) -> &InputCounters {
        &self.inputs[input as usize]
    }

    pub fn input_mut(&mut self, input: Input) -> &mut InputCounters {
        &mut self.inputs[input as usize]
    }

    /// Every input with its counters, in code order.
    pub fn inputs(&self) -> impl Iterator<Item = (Input, &InputCounters)> {
        Input::ALL
            .iter()
            .map(move |&i| (i, &self.inputs[i as usize]))
    }
}
