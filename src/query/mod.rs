//! The query server: clients connect to the query socket, say what they
//! want in their first bytes, and are served from the ring through a cursor.
//!
//! No client ever gets a private copy of the ring: a cursor is a sequence
//! number, and a client's only buffer is the bounded batch of lines being
//! written to it. A client is written to only while its socket accepts
//! bytes, so a stopped reader costs one cursor and never blocks anyone; if
//! the ring laps it, it is told how many entries it missed and goes on.

pub mod access;
pub mod filter;
pub mod format;
pub mod http;
pub mod json;
pub mod request;
pub mod timefmt;

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::ops::ControlFlow;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use serde::Serialize;
use serde_json::json;

use crate::record::{now_ns, Input, Record, Severity};
use crate::ring::{ReadCache, Ring};
use crate::spare_fd::SpareFd;
use filter::Filter;
use format::Format;
use request::{parse_request, Dialect, Mode, Parse, Query, Request};

/// How long a client may take to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Lines are batched up to about this many bytes before writing.
const BATCH_BYTES: usize = 64 << 10;
/// At most this much is written to one client per turn of the event loop,
/// so a fast reader of a large dump cannot hold up ingest.
const WRITE_BUDGET: usize = 256 << 10;
/// At most this many entries are examined for one client per turn, so a
/// filter that matches little cannot hold up ingest either.
const SCAN_BUDGET: usize = 20_000;

/// What a connection refused for want of fds is told (the client has not
/// said its dialect yet: the JSON error line).
const OUT_OF_FDS: &[u8] =
    b"{\"error\":\"ringlogd is out of file descriptors: connection refused, try again\"}\n";

/// Counters for the query side, shown in stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueryCounters {
    /// Connections accepted.
    pub connections: u64,
    /// Connections closed because no request arrived in time.
    pub timeouts: u64,
    /// Requests refused as malformed (bad mode byte, bad JSON, bad HTTP).
    pub bad_requests: u64,
    /// Connections accepted only to be closed, the daemon being out of
    /// file descriptors.
    pub refused: u64,
    /// Times a reader was lapped by the ring and told so.
    pub lapped: u64,
    /// Entries readers missed because the ring overwrote them first.
    pub missed: u64,
}

/// A client reading entries.
struct Stream {
    cursor: u64,
    /// A dump stops here; a follow never does.
    end: Option<u64>,
    filter: Filter,
    format: Format,
    /// Frame the body as HTTP chunks.
    chunked: bool,
    /// Still looking for where a tail (`n`) starts; nothing is sent until
    /// it is found.
    seek: Option<Seek>,
    /// The chunk this reader is in, decompressed.
    cache: ReadCache,
    /// Entries from here on that eviction takes before the reader gets
    /// them are reported as missed; older ones were gone before it asked.
    report_from: u64,
}

/// The walk back from the newest entry for the n-th newest match, done a
/// budget of entries per turn like every other scan, so that a tail over a
/// large ring with a rare match does not hold up ingest.
struct Seek {
    want: u64,
    found: u64,
    /// The next entry to examine is the one just below this.
    below: u64,
    /// Where the walk stops (the read's start: `after_seq`, or the oldest).
    floor: u64,
}

enum Phase {
    /// Waiting for the request bytes.
    Request {
        buf: Vec<u8>,
        deadline: Instant,
    },
    Stream(Box<Stream>),
    /// Sending what is buffered, then closing.
    Finish,
}

struct Client {
    stream: UnixStream,
    /// Set when the peer may read only the entries it sent (see `access`).
    only_uid: Option<u32>,
    phase: Phase,
    out: Vec<u8>,
    out_pos: usize,
    /// The last write hit `WouldBlock`: wait for a writable event.
    blocked: bool,
}

enum Pump {
    /// Nothing more to do until new entries or a writable event.
    Idle,
    /// A budget ran out with more to send: come back next turn.
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
    access: access::Policy,
    spare: SpareFd,
    pub counters: QueryCounters,
    /// The routes' figures, when there are routes.
    pub routes: Option<crate::route::Board>,
}

impl QueryServer {
    /// Serve `listener`; client tokens are `token_base` and up.
    /// Members of `group` (and root, and this user) read every entry.
    pub fn new(listener: UnixListener, token_base: usize, group: Option<u32>) -> QueryServer {
        QueryServer {
            listener,
            clients: Vec::new(),
            free: Vec::new(),
            token_base,
            deadlines: VecDeque::new(),
            pending: Vec::new(),
            started: Instant::now(),
            access: access::Policy::new(group),
            spare: SpareFd::new(),
            counters: QueryCounters::default(),
            routes: None,
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

    fn follower_count(&self) -> usize {
        self.clients
            .iter()
            .flatten()
            .filter(|c| matches!(&c.phase, Phase::Stream(s) if s.end.is_none()))
            .count()
    }

    /// Accept every waiting connection.
    pub fn accept(&mut self, registry: &Registry) {
        loop {
            let mut stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of fds: take the connection on the spare fd only to
                // say so and close it, rather than leave the client hanging
                // in the queue.
                Err(e) if SpareFd::is_exhaustion(&e) => {
                    let listener = &self.listener;
                    // The connection is closed inside, so that the spare
                    // can be taken back.
                    let refused = self.spare.lend(|| match listener.accept() {
                        Ok((mut s, _)) => {
                            let _ = s.write(OUT_OF_FDS);
                            true
                        }
                        Err(_) => false,
                    });
                    if refused != Some(true) {
                        return;
                    }
                    self.counters.refused += 1;
                    continue;
                }
                // Out of memory: leave the rest queued in the kernel and try
                // again on the next event rather than spin.
                Err(_) => return,
            };
            let idx = self.free.pop().unwrap_or_else(|| {
                self.clients.push(None);
                self.clients.len() - 1
            });
            // A large send buffer lets a dump go out in few wake-ups; the
            // kernel caps it at net.core.wmem_max.
            let _ = socket2::SockRef::from(&stream).set_send_buffer_size(1 << 20);
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
            let only_uid = self.access.restriction(stream.as_fd());
            self.clients[idx] = Some(Client {
                stream,
                only_uid,
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

    /// Handle readiness on a client's socket. The ring is mutable only for
    /// the control requests (pause, resume, clear).
    pub fn client_event(
        &mut self,
        token: Token,
        event: &mio::event::Event,
        registry: &Registry,
        ring: &mut Ring,
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
                Some(Client { phase: Phase::Stream(s), blocked: false, .. }) if s.end.is_none()
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

    /// Continue the clients whose budget ran out last turn.
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
        let inputs: serde_json::Map<String, serde_json::Value> = ring
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
            Some((o, n)) => (
                json!(format::rfc3339_nanos(o)),
                json!(format::rfc3339_nanos(n)),
            ),
            None => (json!(null), json!(null)),
        };
        r["oldest_time"] = oldest;
        r["newest_time"] = newest;
        let mut q = serde_json::to_value(self.counters).expect("counters serialize");
        q["clients"] = json!(self.client_count());
        q["followers"] = json!(self.follower_count());
        let sources: serde_json::Map<String, serde_json::Value> = ring
            .source_stats()
            .into_iter()
            .map(|s| {
                (
                    s.name,
                    json!({ "stored": s.stored, "held": s.held, "evicted": s.evicted }),
                )
            })
            .collect();
        let mut stats = json!({
            "uptime_secs": self.started.elapsed().as_secs(),
            "paused": ring.is_paused(),
            "ring": r,
            "inputs": inputs,
            "sources": sources,
            "open": ring.ledger.gauges,
            "queries": q,
        });
        if let Some(board) = &self.routes {
            stats["routes"] = crate::route::stats_json(board, ring);
        }
        stats
    }

    /// Read what the client sent. Returns false when it should be closed.
    fn read_request(&mut self, c: &mut Client, ring: &mut Ring) -> bool {
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
            let parsed = match parse_request(buf, eof, now_ns()) {
                Parse::Done(req, dialect) => access::restrict(req, dialect, c.only_uid),
                other => other,
            };
            match parsed {
                Parse::Incomplete if eof => return false,
                Parse::Incomplete => continue,
                Parse::Done(req, dialect) => self.start(c, req, dialect, ring),
                Parse::Error {
                    dialect,
                    status,
                    why,
                } => {
                    self.counters.bad_requests += 1;
                    let body = json!({ "error": why });
                    c.out = match dialect {
                        Dialect::Http => http::json_response(status, &body),
                        _ => json::value_line(&body).into_bytes(),
                    };
                    c.out_pos = 0;
                    c.phase = Phase::Finish;
                }
            }
            if eof {
                return true;
            }
        }
    }

    fn start(&mut self, c: &mut Client, req: Request, dialect: Dialect, ring: &mut Ring) {
        let reply = |body: serde_json::Value| match dialect {
            Dialect::Http => http::json_response(200, &body),
            _ => json::value_line(&body).into_bytes(),
        };
        c.out_pos = 0;
        match req {
            Request::Read(q) => {
                let chunked = dialect == Dialect::Http;
                c.out = if chunked {
                    http::stream_head(q.format)
                } else {
                    Vec::new()
                };
                c.phase = Phase::Stream(Box::new(open_stream(q, chunked, ring)));
            }
            Request::Stats => {
                c.out = reply(self.stats_json(ring));
                c.phase = Phase::Finish;
            }
            Request::Control(ctl) => {
                crate::control::apply(ring, ctl);
                c.out =
                    reply(json!({ "ok": true, "paused": ring.is_paused(), "entries": ring.len() }));
                c.phase = Phase::Finish;
            }
        }
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

    /// Write to `c` until it would block, a budget is spent, or there is
    /// nothing more to send.
    fn pump(&mut self, c: &mut Client, ring: &Ring) -> Pump {
        let mut written = 0;
        let mut scanned = 0;
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
            let Phase::Stream(s) = &mut c.phase else {
                // Finish: everything is written.
                return Pump::Close;
            };
            if scanned >= SCAN_BUDGET {
                return Pump::More;
            }
            if s.seek.is_some() {
                scanned += seek(s, ring, SCAN_BUDGET - scanned);
                if s.seek.is_some() {
                    return Pump::More;
                }
            }
            let mut batch = Vec::new();
            scanned += fill(s, ring, &mut batch, &mut self.counters);
            let done = s.end.is_some_and(|e| s.cursor >= e);
            if s.chunked {
                if !batch.is_empty() {
                    http::chunk(&batch, &mut c.out);
                }
                if done {
                    c.out.extend_from_slice(http::LAST_CHUNK);
                }
            } else {
                c.out = batch;
            }
            if done {
                c.phase = Phase::Finish;
            }
            if c.out.is_empty() {
                return match c.phase {
                    Phase::Finish => Pump::Close,
                    _ if scanned >= SCAN_BUDGET => Pump::More,
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

/// Where a read starts: after `after_seq`, or the newest `tail` matching
/// entries, or the oldest held; a follow starts at the next entry.
fn open_stream(q: Query, chunked: bool, ring: &Ring) -> Stream {
    let end = (q.mode == Mode::Dump).then_some(ring.next_seq());
    let mut cursor = match (q.mode, q.after_seq) {
        (_, Some(after)) => after.saturating_add(1),
        (Mode::Follow, None) => ring.next_seq(),
        _ => ring.first_seq(),
    };
    let mut seek = None;
    if let (Some(n), true) = (q.tail, q.mode != Mode::Follow) {
        // The newest n matching entries: walk back from the newest (in
        // `pump`, a budget at a time). None match: start at the next.
        seek = (n > 0).then_some(Seek {
            want: n,
            found: 0,
            below: ring.next_seq(),
            floor: cursor,
        });
        cursor = ring.next_seq();
    }
    Stream {
        cursor,
        end,
        filter: q.filter,
        format: q.format,
        chunked,
        seek,
        cache: ReadCache::new(),
        report_from: match q.after_seq {
            // A cursor given is a claim on everything after it.
            Some(after) => after.saturating_add(1),
            None => ring.next_seq(),
        },
    }
}

/// Walk a tail's seek back by up to `budget` entries, moving the cursor to
/// each match; ends the seek at the n-th match or the floor. Returns the
/// entries examined.
fn seek(s: &mut Stream, ring: &Ring, budget: usize) -> usize {
    let Stream {
        seek,
        filter,
        cursor,
        cache,
        ..
    } = s;
    let Some(k) = seek else {
        return 0;
    };
    let mut scanned = 0;
    let mut more = false;
    ring.scan_back(k.below, cache, |r| {
        if r.seq < k.floor || k.found >= k.want || scanned >= budget {
            more = r.seq >= k.floor && k.found < k.want;
            return ControlFlow::Break(());
        }
        k.below = r.seq;
        scanned += 1;
        if filter.matches(&r) {
            k.found += 1;
            *cursor = r.seq;
        }
        ControlFlow::Continue(())
    });
    if !more {
        *seek = None;
    }
    scanned
}

/// Tell a reader that `missed` entries before `seq` were evicted before it
/// got them.
fn write_missed(
    seq: u64,
    missed: u64,
    format: Format,
    out: &mut Vec<u8>,
    counters: &mut QueryCounters,
) {
    counters.lapped += 1;
    counters.missed += missed;
    let mut notice = Record::internal(
        now_ns(),
        Severity::Warning,
        format!("{missed} entries were overwritten in the ring before this reader got them"),
    );
    if format == Format::Json {
        format::write_missed_line(&notice.as_ref(), missed, out);
    } else {
        notice.seq = seq;
        format::write_record(&notice.as_ref(), format, out);
    }
}

/// Append the matching entries from the stream's cursor to `out`, up to a
/// batch; tell a reader that eviction overtook how many it missed. Returns
/// entries examined.
fn fill(s: &mut Stream, ring: &Ring, out: &mut Vec<u8>, counters: &mut QueryCounters) -> usize {
    let stop = s.end.map_or(ring.next_seq(), |e| e.min(ring.next_seq()));
    let mut scanned = 0;
    let mut done = true;
    let Stream {
        cursor,
        filter,
        format,
        cache,
        report_from,
        ..
    } = s;
    let report_from = *report_from;
    ring.scan_from(*cursor, cache, |r| {
        if r.seq >= stop {
            return ControlFlow::Break(());
        }
        let from = (*cursor).max(report_from);
        if r.seq > from {
            write_missed(from, r.seq - from, *format, out, counters);
        }
        *cursor = r.seq + 1;
        scanned += 1;
        if filter.matches(&r) {
            format::write_record(&r, *format, out);
        }
        if out.len() >= BATCH_BYTES || scanned >= SCAN_BUDGET {
            done = false;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    if done && *cursor < stop {
        // Everything from the cursor on was evicted.
        let from = (*cursor).max(report_from);
        if stop > from {
            write_missed(from, stop - from, *format, out, counters);
        }
        *cursor = stop;
    }
    scanned
}
