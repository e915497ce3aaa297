//! The query server: clients connect to the query socket, say what they
//! want in their first bytes, and are served from the ring through a cursor.
//!
//! No client ever gets a private copy of the ring: a cursor is a sequence
//! number, and a client's only buffer is the bounded batch of lines being
//! written to it. A client is written to only while its socket accepts
//! bytes, so a stopped reader costs one cursor and never blocks anyone; if
//! the ring laps it, it is told how many entries it missed and goes on.

pub mod format;
pub mod request;

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use serde::Serialize;

use crate::ledger::Ledger;
use crate::record::{now_ns, Input};
use crate::ring::{Ring, RingStats};
use request::{parse_request, Mode, Parse, Request};

/// How long a client may take to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Lines are batched up to about this many bytes before writing.
const BATCH_BYTES: usize = 64 << 10;
/// At most this much is written to one client per turn of the event loop,
/// so a fast reader of a large dump cannot hold up ingest.
const WRITE_BUDGET: usize = 256 << 10;

/// Counters for the query side, shown in stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueryCounters {
    /// Connections accepted.
    pub connections: u64,
    /// Connections closed because no request arrived in time.
    pub timeouts: u64,
    /// Requests refused as malformed (bad mode byte, bad JSON).
    pub bad_requests: u64,
    /// Times a reader was lapped by the ring and told so.
    pub lapped: u64,
    /// Entries readers missed because the ring overwrote them first.
    pub missed: u64,
}

enum Phase {
    /// Waiting for the request bytes.
    Request { buf: Vec<u8>, deadline: Instant },
    /// Sending entries from `cursor`; a dump stops at `end`, a follow never.
    Stream { cursor: u64, end: Option<u64> },
    /// Sending what is buffered, then closing.
    Finish,
}

struct Client {
    stream: UnixStream,
    phase: Phase,
    out: Vec<u8>,
    out_pos: usize,
    /// The last write hit `WouldBlock`: wait for a writable event.
    blocked: bool,
}

enum Pump {
    /// Nothing more to do until new entries or a writable event.
    Idle,
    /// The write budget ran out with more to send: come back next turn.
    More,
    Close,
}

/// The listening query socket and every connected client.
pub struct QueryServer {
    listener: UnixListener,
    clients: Vec<Option<Client>>,
    free: Vec<usize>,
    token_base: usize,
    /// Clients in the request phase, by deadline (deadlines only grow).
    deadlines: VecDeque<(Instant, usize)>,
    /// Clients to pump again next turn.
    pending: Vec<usize>,
    started: Instant,
    pub counters: QueryCounters,
}

impl QueryServer {
    /// Serve `listener`; client tokens are `token_base` and up.
    pub fn new(listener: UnixListener, token_base: usize) -> QueryServer {
        QueryServer {
            listener,
            clients: Vec::new(),
            free: Vec::new(),
            token_base,
            deadlines: VecDeque::new(),
            pending: Vec::new(),
            started: Instant::now(),
            counters: QueryCounters::default(),
        }
    }

    pub fn listener_mut(&mut self) -> &mut UnixListener {
        &mut self.listener
    }

    /// Whether `token` belongs to one of this server's clients.
    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.token_base
    }

    pub fn client_count(&self) -> usize {
        self.clients.len() - self.free.len()
    }

    /// Accept every waiting connection.
    pub fn accept(&mut self, registry: &Registry) {
        loop {
            let mut stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of fds or memory: leave the rest queued in the kernel
                // and try again on the next event rather than spin.
                Err(_) => return,
            };
            let idx = self.free.pop().unwrap_or_else(|| {
                self.clients.push(None);
                self.clients.len() - 1
            });
            let token = Token(self.token_base + idx);
            if registry
                .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                .is_err()
            {
                self.free.push(idx);
                continue;
            }
            let deadline = Instant::now() + REQUEST_TIMEOUT;
            self.deadlines.push_back((deadline, idx));
            self.clients[idx] = Some(Client {
                stream,
                phase: Phase::Request {
                    buf: Vec::new(),
                    deadline,
                },
                out: Vec::new(),
                out_pos: 0,
                blocked: false,
            });
            self.counters.connections += 1;
        }
    }

    /// Handle readiness on a client's socket.
    pub fn client_event(
        &mut self,
        token: Token,
        event: &mio::event::Event,
        registry: &Registry,
        ring: &Ring,
    ) {
        let idx = token.0 - self.token_base;
        let Some(mut c) = self.clients.get_mut(idx).and_then(Option::take) else {
            return;
        };
        if event.is_writable() {
            c.blocked = false;
        }
        let mut close = event.is_error();
        if !close && event.is_readable() {
            close = !self.read_request(&mut c, ring);
        }
        if !close && event.is_write_closed() && c.out_pos >= c.out.len() {
            // The reader is gone: nothing it could still receive.
            close = true;
        }
        self.finish_turn(idx, c, close, registry, ring);
    }

    /// New entries are in the ring: feed every follower that can take them.
    pub fn ring_advanced(&mut self, registry: &Registry, ring: &Ring) {
        for idx in 0..self.clients.len() {
            let wants = matches!(
                &self.clients[idx],
                Some(Client {
                    phase: Phase::Stream { end: None, .. },
                    blocked: false,
                    ..
                })
            );
            if wants {
                let c = self.clients[idx].take().expect("checked above");
                self.finish_turn(idx, c, false, registry, ring);
            }
        }
    }

    /// Whether some client has more to send right now.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Continue the clients whose write budget ran out last turn.
    pub fn run_pending(&mut self, registry: &Registry, ring: &Ring) {
        for idx in std::mem::take(&mut self.pending) {
            if let Some(c) = self.clients.get_mut(idx).and_then(Option::take) {
                self.finish_turn(idx, c, false, registry, ring);
            }
        }
    }

    /// The earliest request deadline, for the poll timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.front().map(|&(d, _)| d)
    }

    /// Close clients whose request did not arrive in time.
    pub fn expire(&mut self, now: Instant, registry: &Registry) {
        while let Some(&(deadline, idx)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            let still_waiting = matches!(
                &self.clients[idx],
                Some(Client { phase: Phase::Request { deadline: d, .. }, .. }) if *d == deadline
            );
            if still_waiting {
                self.counters.timeouts += 1;
                let c = self.clients[idx].take().expect("checked above");
                self.close(idx, c, registry);
            }
        }
    }

    /// The daemon's counters as one JSON object.
    pub fn stats_json(&self, ring: &Ring) -> serde_json::Value {
        stats_json(
            &ring.stats(),
            &ring.ledger,
            &self.counters,
            self.client_count(),
            self.started.elapsed(),
        )
    }

    /// Read what the client sent. Returns false when it should be closed.
    fn read_request(&mut self, c: &mut Client, ring: &Ring) -> bool {
        let mut tmp = [0u8; 4096];
        loop {
            let eof = match c.stream.read(&mut tmp) {
                Ok(0) => true,
                Ok(n) => {
                    if let Phase::Request { buf, .. } = &mut c.phase {
                        buf.extend_from_slice(&tmp[..n]);
                    } else {
                        // Anything after the request is ignored.
                        continue;
                    }
                    false
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            };
            let Phase::Request { buf, .. } = &c.phase else {
                // A half-closed reader still gets its entries.
                return true;
            };
            match parse_request(buf, eof) {
                Parse::Incomplete if eof => return false,
                Parse::Incomplete => continue,
                Parse::Done(req) => self.start(c, req, ring),
                Parse::Error(why) => {
                    self.counters.bad_requests += 1;
                    let line = serde_json::json!({ "error": why });
                    c.out = format!("{line}\n").into_bytes();
                    c.out_pos = 0;
                    c.phase = Phase::Finish;
                }
            }
            if eof {
                return true;
            }
        }
    }

    fn start(&mut self, c: &mut Client, req: Request, ring: &Ring) {
        let dump_from = match req.tail {
            Some(n) => ring.next_seq().saturating_sub(n).max(ring.first_seq()),
            None => ring.first_seq(),
        };
        c.phase = match req.mode {
            Mode::Dump => Phase::Stream {
                cursor: dump_from,
                end: Some(ring.next_seq()),
            },
            Mode::Follow => Phase::Stream {
                cursor: ring.next_seq(),
                end: None,
            },
            Mode::DumpFollow => Phase::Stream {
                cursor: dump_from,
                end: None,
            },
            Mode::Stats => {
                c.out = format!("{}\n", self.stats_json(ring)).into_bytes();
                c.out_pos = 0;
                Phase::Finish
            }
        };
    }

    fn finish_turn(
        &mut self,
        idx: usize,
        mut c: Client,
        close: bool,
        registry: &Registry,
        ring: &Ring,
    ) {
        let outcome = if close {
            Pump::Close
        } else if c.blocked || matches!(c.phase, Phase::Request { .. }) {
            Pump::Idle
        } else {
            self.pump(&mut c, ring)
        };
        match outcome {
            Pump::Close => self.close(idx, c, registry),
            Pump::More => {
                self.pending.push(idx);
                self.clients[idx] = Some(c);
            }
            Pump::Idle => self.clients[idx] = Some(c),
        }
    }

    /// Write to `c` until it would block, its budget is spent, or there is
    /// nothing more to send.
    fn pump(&mut self, c: &mut Client, ring: &Ring) -> Pump {
        let mut written = 0;
        loop {
            if c.out_pos < c.out.len() {
                match c.stream.write(&c.out[c.out_pos..]) {
                    Ok(0) => return Pump::Close,
                    Ok(n) => {
                        c.out_pos += n;
                        written += n;
                        if written >= WRITE_BUDGET {
                            return Pump::More;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        c.blocked = true;
                        return Pump::Idle;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Pump::Close,
                }
                continue;
            }
            c.out.clear();
            c.out_pos = 0;
            let Phase::Stream { cursor, end } = &mut c.phase else {
                // Finish: everything is written.
                return Pump::Close;
            };
            if *cursor < ring.first_seq() {
                let missed = ring.first_seq() - *cursor;
                self.counters.lapped += 1;
                self.counters.missed += missed;
                format::write_missed_line(now_ns(), missed, &mut c.out);
                *cursor = ring.first_seq();
            }
            let stop = end.map_or(ring.next_seq(), |e| e.min(ring.next_seq()));
            for r in ring.iter_from(*cursor).take_while(|r| r.seq < stop) {
                format::write_json_line(&r, &mut c.out);
                *cursor = r.seq + 1;
                if c.out.len() >= BATCH_BYTES {
                    break;
                }
            }
            if c.out.is_empty() {
                return match end {
                    Some(e) if *cursor >= *e => Pump::Close,
                    _ => Pump::Idle,
                };
            }
        }
    }

    fn close(&mut self, idx: usize, mut c: Client, registry: &Registry) {
        let _ = registry.deregister(&mut c.stream);
        let _ = c.stream.shutdown(std::net::Shutdown::Both);
        drop(c);
        self.free.push(idx);
    }
}

#[derive(Serialize)]
struct Stats<'a> {
    uptime_secs: u64,
    ring: &'a RingStats,
    inputs: serde_json::Map<String, serde_json::Value>,
    queries: &'a QueryCounters,
    clients: usize,
}

fn stats_json(
    ring: &RingStats,
    ledger: &Ledger,
    queries: &QueryCounters,
    clients: usize,
    uptime: Duration,
) -> serde_json::Value {
    let inputs = ledger
        .inputs()
        .filter(|(i, c)| **c != Default::default() || *i == Input::Syslog)
        .map(|(i, c)| {
            (
                i.as_str().to_owned(),
                serde_json::to_value(c).expect("counters serialize"),
            )
        })
        .collect();
    serde_json::to_value(Stats {
        uptime_secs: uptime.as_secs(),
        ring,
        inputs,
        queries,
        clients,
    })
    .expect("stats serialize")
}
