//! The daemon's figures as one JSON document, the answer to a stats query.
//!
//! Assembled here, in one place, from read-only views of whoever keeps
//! them: the ring (its state, the ledger per input, the sources, the
//! daemon's gauges), the query server, the routes and the intake. None of those
//! builds another's part.
//!
//! A reader restricted to its own entries gets counts, and the names of
//! its own sources only: `sources` lists the sources it sent entries to,
//! with the figures of its own entries there (as the ring counts them per
//! sender uid), never another user's source or figure. It gets no routes
//! (their addresses are the machine's), and the intake's totals without
//! its fds' names (an fd has no sender uid).

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::record::Input;
use crate::recorder::WrittenCounters;
use crate::ring::Ring;
use crate::route;
use crate::source::intake_board;
use crate::view::timefmt::rfc3339_nanos;

/// What is open right now, as the sources last said: not counters, but
/// what an operator checks first when something is refused. Kept by
/// whoever serves the stats, set by the daemon every turn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Gauges {
    /// Fds passed over the intake socket and being read.
    pub intake_fds_open: u64,
    /// TCP connections being read.
    pub tcp_connections: u64,
    /// What the capture directory saw, kept by the daemon (not a gauge:
    /// the stats show it as `captures_written`).
    #[serde(skip)]
    pub captures_written: WrittenCounters,
}

/// What the stats are made of.
pub struct Views<'a> {
    pub ring: &'a Ring,
    pub open: Gauges,
    /// The query server's own figures, already as JSON.
    pub queries: Value,
    pub routes: Option<&'a route::Board>,
    pub intake: Option<&'a intake_board::Board>,
    /// How long the daemon has been serving.
    pub uptime: Duration,
    /// The one sender uid whose entries the reader may read, if it is
    /// restricted.
    pub only_uid: Option<u32>,
}

/// The stats document.
pub fn assemble(v: Views<'_>) -> Value {
    let ring = v.ring;
    let inputs: Map<String, Value> = ring
        .ledger
        .inputs()
        .filter(|(i, c)| **c != Default::default() || *i == Input::Syslog)
        .map(|(i, c)| {
            (
                i.as_str().to_owned(),
                serde_json::to_value(c).expect("counters serialize"),
            )
        })
        .collect();
    let mut r = serde_json::to_value(ring.stats()).expect("ring stats serialize");
    let (oldest, newest) = match ring.time_span() {
        Some((o, n)) => (json!(rfc3339_nanos(o)), json!(rfc3339_nanos(n))),
        None => (json!(null), json!(null)),
    };
    r["oldest_time"] = oldest;
    r["newest_time"] = newest;
    let restricted = v.only_uid.is_some();
    let sources = match v.only_uid {
        None => ring.source_stats(),
        Some(uid) => ring.source_stats_of(uid),
    };
    let sources: Map<String, Value> = sources
        .into_iter()
        .map(|s| {
            (
                s.name,
                json!({ "stored": s.stored, "held": s.held, "evicted": s.evicted }),
            )
        })
        .collect();
    let mut stats = json!({
        "uptime_secs": v.uptime.as_secs(),
        "paused": ring.is_paused(),
        "ring": r,
        "inputs": inputs,
        "sources": sources,
        "captures": ring.capture_stats(),
        "captures_written": v.open.captures_written,
        "open": v.open,
        "queries": v.queries,
    });
    if let (Some(board), false) = (v.routes, restricted) {
        stats["routes"] = route::stats_json(board, ring);
    }
    if let Some(board) = v.intake {
        stats["intake"] = intake_board::stats_json(board);
        if restricted {
            if let Some(intake) = stats["intake"].as_object_mut() {
                intake.remove("fds");
            }
        }
    }
    stats
}
