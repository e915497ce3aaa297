//! The query server: clients connect to the query socket, say what they
//! want in their first bytes, and are served from the ring through a cursor.
//!
//! No client ever gets a private copy of the ring: a cursor is a sequence
//! number, and a client's only buffer is the bounded batch of lines being
//! written to it. A client is written to only while its socket accepts
//! bytes, so a stopped reader costs one cursor and never blocks anyone; if
//! the ring laps it, it is told how many entries it missed and goes on.
//!
//! Every client's work (reading its request, scanning, writing) is done in
//! one round-robin queue under one budget of time per turn of the event
//! loop, shared by all clients, so that no request and no number of
//! clients holds up ingest for longer than that budget.

pub mod access;
pub mod budget;
pub mod captures;
pub mod http;
pub mod limits;
pub mod request;
mod stream;

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;

use nix::sys::socket::{getsockopt, sockopt};
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use serde::Serialize;
use serde_json::json;

use crate::control::{Control, Outcome};
use crate::metrics;
use crate::record::now_ns;
use crate::ring::Ring;
use crate::spare_fd::SpareFd;
use crate::view::{frames, json};
use budget::TurnBudget;
use limits::{ClientLimits, Tally};
use request::{parse_request, Dialect, Parse, Request};
use stream::{cursor_ahead_notice, fill, open_stream, seek, Stream};

/// How long a client may take to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Lines are batched up to about this many bytes before writing: large
/// writes wake the reader less often, which is most of a dump's cost in
/// the kernel.
const BATCH_BYTES: usize = 256 << 10;
/// What a client's buffer is cut back to once a batch comes out short of
/// [`BATCH_BYTES`] (it has caught up): a follower at the head needs no
/// more, and many followers should not each hold a dump's batch.
const KEPT_BUFFER: usize = 64 << 10;
/// At most this much is written to one client before the next in the
/// queue gets its turn, so that readers of large dumps share the budget.
const WRITE_BUDGET: usize = 256 << 10;

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
    /// Reads whose cursor (`after_seq`) was ahead of the ring, and were
    /// told so and served from the oldest entry.
    pub cursor_ahead: u64,
}

enum Phase {
    /// Waiting for the request bytes.
    Request {
        buf: Vec<u8>,
        deadline: Instant,
    },
    Stream(Box<Stream>),
    /// A control command is with the daemon (see
    /// [`QueryServer::take_controls`]); its answer goes out in this dialect.
    Asked(Dialect),
    /// Sending what is buffered, then closing.
    Finish,
}

struct Client {
    /// Where it is in `clients`.
    idx: usize,
    stream: UnixStream,
    /// Set when the peer may read only the entries it sent (see `access`).
    only_uid: Option<u32>,
    phase: Phase,
    out: Vec<u8>,
    out_pos: usize,
    /// The last write hit `WouldBlock`: wait for a writable event.
    blocked: bool,
    /// In the ready queue.
    queued: bool,
    /// The socket has bytes (or the end) to read.
    readable: bool,
    /// The peer stopped reading, or the socket failed.
    hung_up: bool,
    failed: bool,
}

/// How reading from a client ended.
enum ReadEnd {
    /// Everything readable was read.
    Drained,
    /// The turn's budget ran out first: read the rest next turn.
    Later,
    Close,
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
    /// Clients with work to do, served in turn under the shared budget.
    ready: VecDeque<usize>,
    started: Instant,
    access: access::Policy,
    tally: Tally,
    spare: SpareFd,
    pub counters: QueryCounters,
    /// The routes' figures, when there are routes.
    pub routes: Option<crate::route::Board>,
    /// The intake's figures.
    pub intake: Option<crate::source::intake_board::Board>,
    /// What is open now, as the daemon last said.
    pub gauges: crate::stats::Gauges,
    /// Control commands read from clients, for the daemon to carry out.
    asks: Vec<ControlAsk>,
    /// The `--capture` filters' texts, for the list of captures.
    pub capture_filters: captures::RuleTexts,
}

/// A control command a client sent, which the daemon carries out and
/// [`QueryServer::answer`]s.
#[derive(Debug)]
pub struct ControlAsk {
    /// The client that asked, to answer.
    pub client: usize,
    pub control: Control,
    /// Who asked, as the kernel says: `uid U (pid P)`.
    pub requester: String,
}

impl QueryServer {
    /// Serve `listener`; client tokens are `token_base` and up.
    /// Members of `group` (and root, and this user) read every entry; at
    /// most `limits` connections are open at once.
    pub fn new(
        listener: UnixListener,
        token_base: usize,
        group: Option<u32>,
        limits: ClientLimits,
    ) -> QueryServer {
        QueryServer {
            listener,
            clients: Vec::new(),
            free: Vec::new(),
            token_base,
            deadlines: VecDeque::new(),
            ready: VecDeque::new(),
            started: Instant::now(),
            access: access::Policy::new(group),
            tally: Tally::new(limits),
            spare: SpareFd::new(),
            counters: QueryCounters::default(),
            routes: None,
            intake: None,
            gauges: Default::default(),
            asks: Vec::new(),
            capture_filters: Default::default(),
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
            let only_uid = self.access.restriction(stream.as_fd());
            if let Err(why) = self.tally.admit(only_uid) {
                // One line on a fresh socket fits its buffer: no wait.
                let line = json!({ "error": format!("connection refused: {why}") });
                let _ = stream.write(format!("{line}\n").as_bytes());
                continue;
            }
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
                self.tally.release(only_uid);
                continue;
            }
            let deadline = Instant::now() + REQUEST_TIMEOUT;
            self.deadlines.push_back((deadline, idx));
            self.clients[idx] = Some(Client {
                idx,
                stream,
                only_uid,
                phase: Phase::Request {
                    buf: Vec::new(),
                    deadline,
                },
                out: Vec::new(),
                out_pos: 0,
                blocked: false,
                queued: false,
                readable: false,
                hung_up: false,
                failed: false,
            });
            self.counters.connections += 1;
        }
    }

    /// Note readiness on a client's socket; the work waits for its turn in
    /// [`QueryServer::run_pending`]. A client that is gone is closed at
    /// once, so that its fd is free for a connection accepted next.
    pub fn client_event(
        &mut self,
        token: Token,
        event: &mio::event::Event,
        registry: &Registry,
        ring: &Ring,
    ) {
        let idx = token.0 - self.token_base;
        let Some(c) = self.clients.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        if event.is_writable() {
            c.blocked = false;
        }
        c.readable |= event.is_readable();
        c.hung_up |= event.is_write_closed();
        c.failed |= event.is_error();
        let gone = c.failed || (c.hung_up && c.out_pos >= c.out.len());
        if gone && !c.queued {
            let mut c = self.clients[idx].take().expect("checked above");
            self.count_left_lapped(&mut c, ring);
            self.close(idx, c, registry);
        } else {
            self.enqueue(idx);
        }
    }

    /// New entries are in the ring: queue every follower that can take them.
    pub fn ring_advanced(&mut self) {
        for idx in 0..self.clients.len() {
            let wants = matches!(
                &self.clients[idx],
                Some(Client { phase: Phase::Stream(s), blocked: false, .. }) if s.end.is_none()
            );
            if wants {
                self.enqueue(idx);
            }
        }
    }

    fn enqueue(&mut self, idx: usize) {
        if let Some(c) = self.clients.get_mut(idx).and_then(Option::as_mut) {
            if !c.queued {
                c.queued = true;
                self.ready.push_back(idx);
            }
        }
    }

    /// Whether some client has more to do right now.
    pub fn has_pending(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Serve the ready clients in turn until the turn's budget is spent;
    /// those left over go first next turn. The ring is mutable only for
    /// the control requests (pause, resume, clear).
    pub fn run_pending(&mut self, registry: &Registry, ring: &Ring) {
        let mut budget = TurnBudget::start();
        while !budget.is_spent() {
            let Some(idx) = self.ready.pop_front() else {
                break;
            };
            let Some(mut c) = self.clients.get_mut(idx).and_then(Option::take) else {
                continue;
            };
            c.queued = false;
            match self.serve(&mut c, ring, &mut budget) {
                Pump::Close => {
                    self.count_left_lapped(&mut c, ring);
                    self.close(idx, c, registry);
                }
                Pump::More => {
                    c.queued = true;
                    self.ready.push_back(idx);
                    self.clients[idx] = Some(c);
                }
                Pump::Idle => self.clients[idx] = Some(c),
            }
        }
    }

    /// One client's turn: read what it sent, then write what it is owed.
    fn serve(&mut self, c: &mut Client, ring: &Ring, budget: &mut TurnBudget) -> Pump {
        if c.failed {
            return Pump::Close;
        }
        if c.readable {
            match self.read_request(c, ring, budget) {
                ReadEnd::Drained => c.readable = false,
                ReadEnd::Later => return Pump::More,
                ReadEnd::Close => return Pump::Close,
            }
        }
        if c.hung_up && c.out_pos >= c.out.len() {
            // The reader is gone: nothing it could still receive.
            return Pump::Close;
        }
        if c.blocked || matches!(c.phase, Phase::Request { .. } | Phase::Asked(_)) {
            return Pump::Idle;
        }
        self.pump(c, ring, budget)
    }

    /// A reader that leaves while entries it was owed have been evicted
    /// missed them: count them as it would have been told next.
    fn count_left_lapped(&mut self, c: &mut Client, ring: &Ring) {
        let Phase::Stream(s) = &mut c.phase else {
            return;
        };
        let missed = stream::missed_on_leaving(s, ring);
        if missed > 0 {
            self.counters.lapped += 1;
            self.counters.missed += missed;
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

    /// The stats a reader gets: the daemon's figures, with this server's.
    pub fn stats_json(&self, ring: &Ring, only_uid: Option<u32>) -> serde_json::Value {
        crate::stats::assemble(crate::stats::Views {
            ring,
            open: self.gauges,
            queries: self.figures(only_uid),
            routes: self.routes.as_ref(),
            intake: self.intake.as_ref(),
            uptime: self.started.elapsed(),
            only_uid,
        })
    }

    /// This server's own figures; a restricted reader's refusals are its own.
    fn figures(&self, only_uid: Option<u32>) -> serde_json::Value {
        let mut q = serde_json::to_value(self.counters).expect("counters serialize");
        q["clients"] = json!(self.client_count());
        q["followers"] = json!(self.follower_count());
        q["limited"] = json!(self.tally.refused());
        q["limited_by_uid"] = self.tally.refused_by_uid_json(only_uid);
        q
    }

    /// Read what the client sent, and start serving its request once it
    /// is whole; bytes after the request are read and dropped.
    fn read_request(&mut self, c: &mut Client, ring: &Ring, budget: &mut TurnBudget) -> ReadEnd {
        let mut tmp = [0u8; 4096];
        loop {
            if budget.is_spent() {
                return ReadEnd::Later;
            }
            let eof = match c.stream.read(&mut tmp) {
                Ok(0) => true,
                Ok(n) => {
                    budget.spend(n);
                    if let Phase::Request { buf, .. } = &mut c.phase {
                        buf.extend_from_slice(&tmp[..n]);
                    } else {
                        // Anything after the request is ignored.
                        continue;
                    }
                    false
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadEnd::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return ReadEnd::Close,
            };
            let Phase::Request { buf, .. } = &c.phase else {
                // A half-closed reader still gets its entries.
                return ReadEnd::Drained;
            };
            let parsed = match parse_request(buf, eof, now_ns()) {
                Parse::Done(req, dialect) => access::restrict(req, dialect, c.only_uid),
                other => other,
            };
            match parsed {
                Parse::Incomplete if eof => return ReadEnd::Close,
                Parse::Incomplete => continue,
                Parse::Done(req, dialect) => self.start(c, req, dialect, ring),
                Parse::Error {
                    dialect,
                    status,
                    why,
                } => {
                    self.counters.bad_requests += 1;
                    c.out = reply(dialect, status, &json!({ "error": why }));
                    c.out_pos = 0;
                    c.phase = Phase::Finish;
                }
            }
            if eof {
                return ReadEnd::Drained;
            }
        }
    }

    fn start(&mut self, c: &mut Client, req: Request, dialect: Dialect, ring: &Ring) {
        c.out_pos = 0;
        match req {
            Request::Read(mut q) => {
                if let Some(id) = q.capture {
                    if let Err((status, why)) = captures::narrow(&mut q, id, ring) {
                        c.out = reply(dialect, status, &json!({ "error": why }));
                        c.phase = Phase::Finish;
                        return;
                    }
                }
                let chunked = dialect == Dialect::Http;
                q.framed &= !chunked;
                c.out = if chunked {
                    http::stream_head(q.format)
                } else if q.framed {
                    q.format = frames::answer_format(q.format, q.zone.as_deref());
                    frames::opening(q.format)
                } else {
                    Vec::new()
                };
                if let Some(after) = q.after_seq.filter(|&a| a >= ring.next_seq()) {
                    self.counters.cursor_ahead += 1;
                    let notice = cursor_ahead_notice(after, q.format, ring);
                    if chunked {
                        http::chunk(&notice, &mut c.out);
                    } else if q.framed {
                        frames::frame(&notice, None, &mut c.out);
                    } else {
                        c.out.extend_from_slice(&notice);
                    }
                }
                c.phase = Phase::Stream(Box::new(open_stream(*q, chunked, ring)));
            }
            Request::Captures => {
                let list = captures::list_json(ring, &self.capture_filters, c.only_uid);
                c.out = reply(dialect, 200, &list);
                c.phase = Phase::Finish;
            }
            Request::Stats => {
                c.out = reply(dialect, 200, &self.stats_json(ring, c.only_uid));
                c.phase = Phase::Finish;
            }
            Request::Metrics => {
                let reader = match c.only_uid {
                    None => metrics::Reader::Whole,
                    Some(_) => metrics::Reader::Restricted,
                };
                let body = metrics::exposition(&self.stats_json(ring, c.only_uid), reader);
                c.out = http::response(200, metrics::CONTENT_TYPE, body.as_bytes());
                c.phase = Phase::Finish;
            }
            Request::Control(control) => {
                let requester = match getsockopt(&c.stream.as_fd(), sockopt::PeerCredentials) {
                    Ok(p) => format!("uid {} (pid {})", p.uid(), p.pid()),
                    Err(e) => format!("a reader whose credentials cannot be read ({e})"),
                };
                self.asks.push(ControlAsk {
                    client: c.idx,
                    control,
                    requester,
                });
                c.phase = Phase::Asked(dialect);
            }
        }
    }

    /// The control commands clients sent since the last call, for the
    /// daemon to carry out and [`QueryServer::answer`].
    pub fn take_controls(&mut self) -> Vec<ControlAsk> {
        std::mem::take(&mut self.asks)
    }

    /// Tell the client that asked what came of its control command, then
    /// close it. A client gone meanwhile is skipped.
    pub fn answer(&mut self, client: usize, outcome: Outcome) {
        let Some(c) = self.clients.get_mut(client).and_then(Option::as_mut) else {
            return;
        };
        let Phase::Asked(dialect) = c.phase else {
            return;
        };
        let (status, body) = match outcome {
            Outcome::Done { paused, entries } => (
                200,
                json!({ "ok": true, "paused": paused, "entries": entries }),
            ),
            Outcome::Closed(n) => (200, json!({ "ok": true, "closed": n })),
            Outcome::Released(id) => (200, json!({ "ok": true, "released": id })),
            Outcome::Refused(why) => (404, json!({ "error": why })),
        };
        c.out = reply(dialect, status, &body);
        c.out_pos = 0;
        c.phase = Phase::Finish;
        self.enqueue(client);
    }

    /// Write to `c` until it would block, a budget is spent, or there is
    /// nothing more to send.
    fn pump(&mut self, c: &mut Client, ring: &Ring, budget: &mut TurnBudget) -> Pump {
        let mut written = 0;
        loop {
            if c.out_pos < c.out.len() {
                match c.stream.write(&c.out[c.out_pos..]) {
                    Ok(0) => return Pump::Close,
                    Ok(n) => {
                        c.out_pos += n;
                        written += n;
                        if !budget.spend(n) || written >= WRITE_BUDGET {
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
            let caught_up = c.out.len() < BATCH_BYTES;
            c.out.clear();
            if caught_up && c.out.capacity() > KEPT_BUFFER {
                c.out.shrink_to(KEPT_BUFFER);
            }
            c.out_pos = 0;
            let Phase::Stream(s) = &mut c.phase else {
                // Finish: everything is written.
                return Pump::Close;
            };
            if budget.is_spent() {
                return Pump::More;
            }
            if s.seek.is_some() {
                seek(s, ring, budget);
                if s.seek.is_some() {
                    return Pump::More;
                }
            }
            let done = if s.chunked {
                let mut batch = Vec::new();
                fill(s, ring, &mut batch, &mut self.counters, budget);
                if !batch.is_empty() {
                    http::chunk(&batch, &mut c.out);
                }
                let done = s.end.is_some_and(|e| s.cursor >= e);
                if done {
                    c.out.extend_from_slice(http::LAST_CHUNK);
                }
                done
            } else {
                // Into the buffer the last batch left (no copy, no growing
                // it again), after room for a frame's head.
                let room = if s.framed { frames::MAX_HEAD } else { 0 };
                c.out.resize(room, 0);
                fill(s, ring, &mut c.out, &mut self.counters, budget);
                if c.out.len() == room {
                    c.out.clear();
                } else if s.framed {
                    let last = Some(s.cursor.saturating_sub(1));
                    c.out_pos = frames::head_into_room(&mut c.out, room, last);
                }
                s.end.is_some_and(|e| s.cursor >= e)
            };
            if done {
                c.phase = Phase::Finish;
            }
            if c.out.is_empty() {
                return match c.phase {
                    Phase::Finish => Pump::Close,
                    _ if budget.is_spent() => Pump::More,
                    _ => Pump::Idle,
                };
            }
        }
    }

    fn close(&mut self, idx: usize, mut c: Client, registry: &Registry) {
        let _ = registry.deregister(&mut c.stream);
        let _ = c.stream.shutdown(std::net::Shutdown::Both);
        self.tally.release(c.only_uid);
        drop(c);
        self.free.push(idx);
    }
}

/// A JSON answer in the client's dialect: an HTTP response with `status`,
/// or one line.
fn reply(dialect: Dialect, status: u16, body: &serde_json::Value) -> Vec<u8> {
    match dialect {
        Dialect::Http => http::json_response(status, body),
        _ => json::value_line(body).into_bytes(),
    }
}
