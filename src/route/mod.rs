//! Routes out: the ring forwarded to central syslog servers over UDP, TCP,
//! TLS or RELP, or uploaded to a `systemd-journal-remote` over HTTP(S)
//! (`--route URL`).
//!
//! Each route is a cursor into the ring plus a connection ([`link`]), so N
//! routes cost N cursors, and a receiver that is down for a while misses
//! nothing the ring still holds: the route resumes from its cursor when the
//! receiver is back. Routes are driven by the daemon's event loop like any
//! socket: non-blocking, written only while writable, a bounded amount of
//! work per turn, reconnecting after an exponential backoff that the loop's
//! timeout wakes. A slow or dead receiver costs its route only.

pub mod captured;
pub mod conn;
pub mod http_upload;
pub mod journal;
pub mod link;
pub mod lost;
pub mod relp;
pub mod spec;
pub mod tls;
pub mod wire;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use mio::{Registry, Token};
use serde::Serialize;

use crate::ring::Ring;
use link::{Route, Work};
use spec::RouteSpec;

/// One route's figures as stats show them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RouteStats {
    pub url: String,
    /// `connected`, `connecting` or `down`.
    pub state: &'static str,
    pub sent: u64,
    /// RELP and journal uploads only (`null` for the others, which have
    /// no acknowledgements).
    pub acknowledged: Option<u64>,
    pub lost: u64,
    pub reconnects: u64,
    /// Entries sent again because a connection broke before their
    /// acknowledgement: the receiver may hold them twice (`null` where
    /// nothing is acknowledged).
    pub resent: Option<u64>,
    /// The first entry not yet delivered; the stats turn it into `lag`.
    #[serde(skip)]
    pub done: u64,
}

/// Shared with the query server, which answers stats requests.
pub type Board = Rc<RefCell<Vec<RouteStats>>>;

/// Every route of the daemon.
pub struct Routes {
    routes: Vec<Route>,
    token_base: usize,
    local_host: String,
    board: Board,
    /// Routes whose budget ran out: the loop must not sleep.
    more: bool,
}

impl Routes {
    /// The routes of `specs`, starting at `start` (the ring's oldest entry)
    /// or, for a URL in `resume`, where a predecessor had delivered up to,
    /// with tokens from `token_base` up. TLS files are read here: a bad one
    /// is a start-up error.
    pub fn new(
        specs: &[RouteSpec],
        token_base: usize,
        start: u64,
        resume: &[(String, u64)],
        local_host: String,
    ) -> Result<Routes, String> {
        let routes = specs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let from = resume
                    .iter()
                    .find(|(url, _)| *url == s.url)
                    .map_or(start, |&(_, done)| done);
                Route::new(s.clone(), Token(token_base + i), from)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let r = Routes {
            routes,
            token_base,
            local_host,
            board: Board::default(),
            more: false,
        };
        r.publish();
        Ok(r)
    }

    pub fn board(&self) -> Board {
        Rc::clone(&self.board)
    }

    pub fn event(&mut self, t: Token, event: &mio::event::Event) {
        if let Some(r) = self.routes.get_mut(t.0 - self.token_base) {
            r.event(event);
        }
    }

    /// Let every route do what it can now.
    pub fn pump(&mut self, ring: &mut Ring, registry: &Registry, now: Instant) {
        self.more = false;
        for r in &mut self.routes {
            if r.pump(ring, registry, now, &self.local_host) == Work::More {
                self.more = true;
            }
        }
        self.publish();
    }

    /// Each route's first entry not yet delivered, by URL: where a
    /// successor goes on.
    pub fn progress(&self) -> Vec<(String, u64)> {
        self.routes
            .iter()
            .map(|r| (r.spec.url.clone(), r.done()))
            .collect()
    }

    /// Some route has work left over from its budget.
    pub fn has_more(&self) -> bool {
        self.more
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.routes.iter().filter_map(Route::deadline).min()
    }

    fn publish(&self) {
        let mut board = self.board.borrow_mut();
        board.resize_with(self.routes.len(), RouteStats::default);
        for (b, r) in board.iter_mut().zip(&self.routes) {
            let c = r.counters;
            let acked = r.spec.transport.acknowledges();
            *b = RouteStats {
                url: r.spec.url.clone(),
                state: r.state(),
                sent: c.sent,
                acknowledged: acked.then_some(c.acknowledged),
                lost: c.lost,
                reconnects: c.reconnects,
                resent: acked.then_some(c.resent),
                done: r.done(),
            };
        }
    }
}

/// The routes' stats as JSON, `lag` being the entries not yet delivered
/// and `lag_secs` how long ago the oldest of them was received (0 when
/// none is waiting).
pub fn stats_json(board: &Board, ring: &Ring) -> serde_json::Value {
    let next = ring.next_seq();
    let now = crate::record::now_ns();
    serde_json::Value::Array(
        board
            .borrow()
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).expect("route stats serialize");
                v["lag"] = serde_json::json!(next.saturating_sub(s.done));
                let waiting = oldest_received_from(ring, s.done);
                let lag_ns = waiting.map_or(0, |at| now.saturating_sub(at).max(0));
                v["lag_secs"] = serde_json::json!(lag_ns as f64 / 1e9);
                v
            })
            .collect(),
    )
}

/// When the oldest entry held from `seq` on was received.
fn oldest_received_from(ring: &Ring, seq: u64) -> Option<i64> {
    let mut at = None;
    ring.scan_from(seq, &mut crate::ring::ReadCache::new(), |r| {
        at = Some(r.received_ns);
        std::ops::ControlFlow::Break(())
    });
    at
}
