//! One route: a cursor into the ring, a connection, and what moves the one
//! along the other.
//!
//! Two cursors: `cursor` is the next entry to look at, `done` the first
//! entry not yet delivered (every entry before it was written to the
//! socket, acknowledged for RELP, answered with a 2xx for a journal
//! upload, or skipped by the filter). When a connection breaks, `cursor`
//! goes back to `done` and what was not delivered is sent again on the
//! next connection; the ring keeps it meanwhile. Entries the ring evicted
//! before the route got to them are counted as lost, the receiver is sent
//! one message saying how many and which, and an internal entry records it.
//!
//! The route never waits: it writes while the socket takes bytes, reads
//! what the server sent while there is some, and leaves everything else to
//! the next readiness event or deadline. Each call does a bounded amount of
//! work, so a fast route cannot hold up ingest or the other routes.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

use mio::{Registry, Token};

mod fill;
mod upload;

use super::captured::CaptureWalk;
use super::conn::Conn;
use super::http_upload::{self, Upload};
use super::journal;
use super::lost::Lost;
use super::relp;
use super::spec::{RouteSpec, Transport};
use super::tls::TlsClient;
use super::wire::Wire;
use crate::ingest;
use crate::ingest::notice::Notices;
use crate::record::{now_ns, Record, Severity};
use crate::ring::{ReadCache, Ring};
use crate::view::filter::Filter;

/// Bytes written per route per turn of the event loop, at most.
const WRITE_BUDGET: usize = 256 << 10;
/// Entries examined per route per turn, at most, so a filter that matches
/// little cannot hold up ingest.
const SCAN_BUDGET: usize = 20_000;
/// Bytes read from a server per turn, at most.
const READ_BUDGET: usize = 256 << 10;
/// How long a connection (with its TLS handshake or RELP open) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait after a failure; it doubles with each failure in a row.
pub const BACKOFF_MIN: Duration = Duration::from_millis(200);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A connection that stayed open this long ends the backoff: one that
/// breaks sooner (a server that accepts and hangs up) keeps doubling it.
const STABLE: Duration = Duration::from_secs(10);
/// How often a name lookup on its helper thread is checked.
const RESOLVE_POLL: Duration = Duration::from_millis(20);

/// What a route counted, for stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Entries written to a socket (again after a reconnect, for RELP).
    pub sent: u64,
    /// RELP: entries the server acknowledged.
    pub acknowledged: u64,
    /// Entries that never reached the receiver as far as the route can
    /// tell: evicted from the ring before they were sent (or, for RELP,
    /// before they were acknowledged), refused by the receiver, or UDP
    /// datagrams the receiver's host refused.
    pub lost: u64,
    /// Connections opened after the first.
    pub reconnects: u64,
    /// RELP and journal uploads: entries written in full whose answer
    /// the connection lost; they are sent again, so the receiver may hold
    /// them twice.
    pub resent: u64,
}

/// Where a route is.
enum Phase {
    /// Not connected; the next attempt is at `at`.
    Down {
        at: Instant,
    },
    /// A host name being looked up on a helper thread.
    Resolving(Receiver<io::Result<Vec<SocketAddr>>>),
    /// TCP connect or TLS handshake under way.
    Connecting {
        deadline: Instant,
    },
    /// RELP `open` sent, its answer awaited.
    Opening {
        deadline: Instant,
    },
    Open,
}

/// What a batch of output bytes holds: up to `end` in `out`, so many
/// entries (and a notice of lost entries), after which the cursor is
/// `cursor`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Mark {
    pub end: usize,
    pub cursor: u64,
    pub entries: u64,
    pub notice: Lost,
    pub txnr: u32,
}

/// What one call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Waits for an event or a deadline.
    Idle,
    /// A budget ran out: call again next turn.
    More,
}

pub struct Route {
    pub spec: RouteSpec,
    filter: Filter,
    wire: Wire,
    tls: Option<TlsClient>,
    token: Token,
    phase: Phase,
    conn: Option<Conn>,
    /// Where this connection goes, once resolved.
    addrs: Vec<SocketAddr>,
    addr_next: usize,
    peer: Option<SocketAddr>,
    cursor: u64,
    done: u64,
    out: Vec<u8>,
    out_pos: usize,
    /// What `out` holds and is not yet written, oldest first.
    marks: VecDeque<Mark>,
    /// RELP: frames written or queued and not yet acknowledged; journal:
    /// the upload awaiting its answer.
    unacked: VecDeque<Mark>,
    txnr: u32,
    relp_in: relp::Reader,
    /// Journal routes: the HTTP exchange.
    upload: Option<Upload>,
    /// Entries lost and not yet told to the receiver.
    pending_lost: Lost,
    /// `capture=1`: the captures' runs still to deliver.
    walk: Option<CaptureWalk>,
    writable: bool,
    readable: bool,
    backoff: Duration,
    /// Failed attempts since the last connection that opened.
    failures: u32,
    /// When the current connection opened.
    opened_at: Option<Instant>,
    ever_open: bool,
    pub counters: Counters,
    notices: Notices,
    /// Reports gathered while the ring is borrowed, stored after.
    reports: Vec<(&'static str, Severity, String)>,
    scratch: Vec<u8>,
    /// The ring chunk this route is reading, decompressed.
    cache: ReadCache,
    read_buf: Vec<u8>,
}

impl Route {
    /// A route that starts at the oldest entry the ring holds and makes its
    /// first attempt at once.
    pub fn new(spec: RouteSpec, token: Token, start: u64) -> Result<Route, String> {
        let tls = if spec.transport.is_tls() {
            Some(TlsClient::new(&spec)?)
        } else {
            None
        };
        let wire = Wire {
            format: spec.format,
            framing: spec.transport.is_stream().then_some(spec.framing),
        };
        Ok(Route {
            filter: spec.filter(),
            wire,
            tls,
            token,
            phase: Phase::Down { at: Instant::now() },
            conn: None,
            addrs: Vec::new(),
            addr_next: 0,
            peer: None,
            cursor: start,
            done: start,
            out: Vec::new(),
            out_pos: 0,
            marks: VecDeque::new(),
            unacked: VecDeque::new(),
            txnr: 0,
            relp_in: relp::Reader::default(),
            upload: spec.transport.is_journal().then(|| Upload::new(&spec)),
            pending_lost: Lost::default(),
            walk: spec.captured.then(CaptureWalk::default),
            writable: false,
            readable: false,
            backoff: BACKOFF_MIN,
            failures: 0,
            opened_at: None,
            ever_open: false,
            counters: Counters::default(),
            notices: Notices::default(),
            reports: Vec::new(),
            scratch: Vec::new(),
            cache: ReadCache::new(),
            read_buf: vec![0; 16 << 10],
            spec,
        })
    }

    /// The first entry not yet delivered.
    pub fn done(&self) -> u64 {
        self.done
    }

    pub fn state(&self) -> &'static str {
        match self.phase {
            Phase::Down { .. } => "down",
            Phase::Resolving(_) | Phase::Connecting { .. } | Phase::Opening { .. } => "connecting",
            Phase::Open => "connected",
        }
    }

    /// The socket is ready for something.
    pub fn event(&mut self, event: &mio::event::Event) {
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.readable = true;
        }
        if event.is_writable() || event.is_error() {
            self.writable = true;
        }
    }

    /// When the route wants to be called without an event.
    pub fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Down { at } => Some(at),
            Phase::Resolving(_) => Some(Instant::now() + RESOLVE_POLL),
            Phase::Connecting { deadline } | Phase::Opening { deadline } => Some(deadline),
            Phase::Open => self.upload.as_ref().and_then(Upload::deadline),
        }
    }

    /// Do what can be done now: connect, read acknowledgements, send.
    pub fn pump(
        &mut self,
        ring: &mut Ring,
        registry: &Registry,
        now: Instant,
        local_host: &str,
    ) -> Work {
        let work = self.step(ring, registry, now, local_host);
        for (kind, sev, msg) in self.reports.drain(..) {
            if sev == Severity::Info {
                // Connects are few; they are not rate-limited with the
                // warnings, so a flapping receiver cannot hide them all.
                ingest::note(ring, sev, msg);
            } else {
                self.notices.report(ring, kind, || msg);
            }
        }
        work
    }

    fn step(&mut self, ring: &Ring, registry: &Registry, now: Instant, local_host: &str) -> Work {
        // A few phase changes per call at most (down, resolved,
        // connected, open); the bound only guards against a bug looping.
        for _ in 0..8 {
            match &self.phase {
                Phase::Down { at } => {
                    if now < *at {
                        return Work::Idle;
                    }
                    self.start(registry, now);
                }
                Phase::Resolving(rx) => match rx.try_recv() {
                    Ok(Ok(addrs)) if !addrs.is_empty() => {
                        self.addrs = addrs;
                        self.addr_next = 0;
                        self.connect(registry, now);
                    }
                    Ok(Ok(_)) => self.fail(registry, now, "the name has no address".into()),
                    Ok(Err(e)) => self.fail(registry, now, format!("cannot resolve: {e}")),
                    Err(TryRecvError::Empty) => return Work::Idle,
                    Err(TryRecvError::Disconnected) => {
                        self.fail(registry, now, "the name lookup failed".into())
                    }
                },
                Phase::Connecting { deadline } => {
                    let deadline = *deadline;
                    let conn = self.conn.as_mut().expect("a connection while connecting");
                    match conn.progress() {
                        Ok(true) => {
                            self.writable = true;
                            self.readable = true;
                            if self.spec.transport == Transport::Relp {
                                self.send_open();
                                self.phase = Phase::Opening { deadline };
                            } else {
                                self.opened(now);
                            }
                        }
                        Ok(false) if now >= deadline => {
                            self.fail(registry, now, "timed out connecting".into())
                        }
                        Ok(false) => return Work::Idle,
                        Err(e) => self.fail(registry, now, describe(&e)),
                    }
                }
                Phase::Opening { deadline } => {
                    let deadline = *deadline;
                    if let Err(e) = self.write_out() {
                        self.fail(registry, now, e);
                        continue;
                    }
                    match self.read_in() {
                        Err(e) => self.fail(registry, now, e),
                        Ok(_) if matches!(self.phase, Phase::Open) => {}
                        Ok(_) if now >= deadline => {
                            self.fail(registry, now, "no answer to the RELP open command".into())
                        }
                        Ok(_) => return Work::Idle,
                    }
                }
                Phase::Open => return self.run(ring, registry, now, local_host),
            }
        }
        Work::More
    }

    /// Look up the host or connect at once to an address.
    fn start(&mut self, registry: &Registry, now: Instant) {
        if let Ok(ip) = self.spec.host.parse::<IpAddr>() {
            self.addrs = vec![SocketAddr::new(ip, self.spec.port)];
            self.connect(registry, now);
            return;
        }
        if self.addr_next < self.addrs.len() {
            // Other addresses of the last lookup are tried first.
            self.connect(registry, now);
            return;
        }
        // getaddrinfo blocks, maybe for seconds: never on the loop.
        let (tx, rx) = mpsc::channel();
        let target = (self.spec.host.clone(), self.spec.port);
        let spawned = std::thread::Builder::new()
            .name("route-resolve".into())
            .spawn(move || {
                let _ = tx.send(target.to_socket_addrs().map(Iterator::collect));
            });
        match spawned {
            Ok(_) => self.phase = Phase::Resolving(rx),
            Err(e) => self.fail(registry, now, format!("cannot start a name lookup: {e}")),
        }
    }

    fn connect(&mut self, registry: &Registry, now: Instant) {
        let addr = self.addrs[self.addr_next % self.addrs.len()];
        self.addr_next += 1;
        self.peer = Some(addr);
        let udp = self.spec.transport == Transport::Udp;
        match Conn::open(addr, self.tls.as_ref(), udp, registry, self.token) {
            Ok(c) => {
                self.conn = Some(c);
                self.phase = Phase::Connecting {
                    deadline: now + CONNECT_TIMEOUT,
                };
            }
            Err(e) => self.fail(registry, now, describe(&e)),
        }
    }

    fn send_open(&mut self) {
        self.out.clear();
        self.out_pos = 0;
        self.txnr = 1;
        relp::frame(1, "open", relp::open_offers().as_bytes(), &mut self.out);
    }

    /// The connection carries messages from now on.
    fn opened(&mut self, now: Instant) {
        self.phase = Phase::Open;
        self.opened_at = Some(now);
        // No failure since the last open: an HTTP server ended that one
        // between uploads, and saying so would give the route an entry to
        // upload, and the server a connection to end, without end.
        let quiet = self.ever_open && self.failures == 0;
        self.failures = 0;
        if self.ever_open {
            self.counters.reconnects += 1;
        }
        self.ever_open = true;
        if quiet {
            return;
        }
        let peer = self.peer.map(|p| p.to_string()).unwrap_or_default();
        let from = self.done;
        self.report(
            "route-up",
            Severity::Info,
            format!(
                "route {}: connected to {peer}; sending from entry {from}",
                self.spec.address()
            ),
        );
    }

    /// The connection failed or broke: drop it, take back what was not
    /// delivered, and try again after the backoff.
    fn fail(&mut self, registry: &Registry, now: Instant, why: String) {
        let was_open = matches!(self.phase, Phase::Open);
        if let Some(mut c) = self.conn.take() {
            c.deregister(registry);
        }
        // What was not delivered goes again; so does the notice of losses
        // it may have carried.
        let acked = self.spec.transport.acknowledges();
        let undelivered = if acked { &self.unacked } else { &self.marks };
        for m in undelivered {
            self.pending_lost.merge(m.notice);
        }
        if acked {
            // Written in full and unanswered: the receiver may have them.
            let entries = |q: &VecDeque<Mark>| q.iter().map(|m| m.entries).sum::<u64>();
            self.counters.resent += entries(&self.unacked).saturating_sub(entries(&self.marks));
        }
        let resend = self.cursor - self.done;
        self.cursor = self.done;
        self.out.clear();
        self.out_pos = 0;
        self.marks.clear();
        self.unacked.clear();
        self.relp_in.clear();
        let between_uploads = self.upload.as_mut().is_some_and(Upload::reset);
        self.writable = false;
        self.readable = false;
        if between_uploads {
            // An HTTP server's way to end a kept-alive connection.
            self.phase = Phase::Down { at: now };
            return;
        }
        if was_open
            && self
                .opened_at
                .is_some_and(|t| now.duration_since(t) >= STABLE)
        {
            self.backoff = BACKOFF_MIN;
        }
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.phase = Phase::Down { at: now + wait };
        self.failures += 1;
        if was_open || self.failures == 1 {
            let what = if was_open {
                "connection lost"
            } else {
                "cannot connect"
            };
            let peer = self.peer.map(|p| format!(" ({p})")).unwrap_or_default();
            let again = if resend > 0 && acked {
                format!("; {resend} entries not acknowledged will be sent again")
            } else {
                String::new()
            };
            self.report(
                "route-down",
                Severity::Warning,
                format!(
                    "route {}{peer}: {what}: {why}; retrying with backoff up to {} s, \
                     entries wait in the ring{again}",
                    self.spec.address(),
                    BACKOFF_MAX.as_secs()
                ),
            );
        }
    }

    /// Open: take in acknowledgements and send while the socket takes it.
    fn run(&mut self, ring: &Ring, registry: &Registry, now: Instant, local_host: &str) -> Work {
        let mut work = match self.read_in() {
            Ok(w) => w,
            Err(e) => {
                self.fail(registry, now, e);
                return Work::Idle;
            }
        };
        if let Some(at) = self.upload.as_ref().and_then(Upload::deadline) {
            if now >= at {
                let why = format!(
                    "no answer to an upload in {:?}",
                    http_upload::ANSWER_TIMEOUT
                );
                self.fail(registry, now, why);
                return Work::Idle;
            }
        }
        let mut written = 0;
        let mut scanned = 0;
        loop {
            if self.out_pos < self.out.len() || self.conn.as_ref().is_some_and(Conn::has_buffered) {
                if !self.writable {
                    return work;
                }
                match self.write_some() {
                    Ok(n) => written += n,
                    Err(e) => {
                        self.fail(registry, now, e);
                        return Work::Idle;
                    }
                }
                if !self.writable {
                    return work;
                }
                if written >= WRITE_BUDGET {
                    return Work::More;
                }
                continue;
            }
            if scanned >= SCAN_BUDGET {
                return Work::More;
            }
            if self.upload.as_ref().is_some_and(Upload::busy) {
                return work;
            }
            scanned += self.fill(ring, local_host);
            self.seal_upload(now);
            if self.out.is_empty() {
                if scanned >= SCAN_BUDGET {
                    work = Work::More;
                }
                return work;
            }
        }
    }

    /// Write what is pending until done or the socket is full; bytes
    /// written. `Err` when the connection is broken.
    fn write_some(&mut self) -> Result<usize, String> {
        let udp = self.spec.transport == Transport::Udp;
        let mut written = 0;
        loop {
            // UDP: one datagram per mark; streams: everything at once.
            let end = match self.marks.front() {
                Some(m) if udp => m.end,
                _ => self.out.len(),
            };
            let conn = self.conn.as_mut().expect("open means connected");
            if self.out_pos >= end && !conn.has_buffered() {
                return Ok(written);
            }
            match conn.write(&self.out[self.out_pos..end]) {
                Ok(n) => {
                    written += n;
                    if udp {
                        self.out_pos = end;
                    } else {
                        self.out_pos += n;
                    }
                    if n == 0 && self.out_pos < end {
                        return Err("the connection took no bytes".into());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.writable = false;
                    return Ok(written);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if udp && e.raw_os_error() == Some(nix::libc::ECONNREFUSED) => {
                    // An ICMP port unreachable for a datagram sent before:
                    // that one was lost, and the receiver is down.
                    self.counters.lost += 1;
                    return Err(
                        "the receiver's host refused a datagram (nothing listens on the port)"
                            .into(),
                    );
                }
                Err(e) if udp => {
                    // A datagram the kernel will not send (too large) is
                    // dropped, and the others go on.
                    self.counters.lost += 1;
                    let size = end - self.out_pos;
                    self.out_pos = end;
                    if let Some(m) = self.marks.front_mut() {
                        m.entries = 0;
                    }
                    self.report(
                        "route-dgram",
                        Severity::Warning,
                        format!(
                            "route {}: a datagram of {size} bytes could not be sent and is lost: {e}",
                            self.spec.address()
                        ),
                    );
                }
                Err(e) => return Err(describe(&e)),
            }
            self.written_up_to();
        }
    }

    /// Account for the marks the write position has passed.
    fn written_up_to(&mut self) {
        let acked = self.spec.transport.acknowledges();
        while let Some(m) = self.marks.front() {
            if m.end > self.out_pos {
                break;
            }
            self.counters.sent += m.entries;
            if !acked {
                self.done = self.done.max(m.cursor);
            }
            self.marks.pop_front();
        }
        if self.out_pos >= self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            if !acked {
                // Entries after the last one sent were filtered out.
                self.done = self.cursor;
            }
        }
    }

    /// Write the RELP open (or anything queued) without the fill logic.
    fn write_out(&mut self) -> Result<(), String> {
        if self.writable && self.out_pos < self.out.len() {
            self.write_some()?;
        }
        Ok(())
    }

    /// Count `lost` entries from `first` on that the ring evicted before
    /// this route delivered them, to be told to the receiver and reported
    /// in the ring.
    fn note_lost(&mut self, first: u64, lost: u64) {
        self.counters.lost += lost;
        self.pending_lost.merge(Lost::run(first, lost));
        self.report(
            "route-lost",
            Severity::Warning,
            format!(
                "route {}: {lost} entries were overwritten in the ring before this route \
                 delivered them (they are counted whether or not they matched its filter)",
                self.spec.address()
            ),
        );
    }

    /// Tell the receiver how many entries it will never get, and which,
    /// once the window allows a message.
    fn send_lost_notice(&mut self, local_host: &str, scratch: &mut Vec<u8>) {
        let relp = self.spec.transport == Transport::Relp;
        if self.pending_lost.is_empty() || (relp && self.unacked.len() >= self.spec.window) {
            return;
        }
        let lost = std::mem::take(&mut self.pending_lost);
        let text = lost.notice(&self.spec.address());
        let notice = Record::internal(now_ns(), Severity::Warning, text);
        self.push(&notice.as_ref(), local_host, scratch, 0, lost);
    }

    /// Append one message (an entry, or a notice of `notice` lost ones).
    fn push(
        &mut self,
        r: &crate::record::RecordRef,
        local_host: &str,
        scratch: &mut Vec<u8>,
        entries: u64,
        notice: Lost,
    ) {
        let mut txnr = 0;
        if let Some(u) = &self.upload {
            journal::encode(r, local_host, &u.device, notice, &mut self.out);
        } else if self.spec.transport == Transport::Relp {
            self.txnr = relp::next_txnr(self.txnr);
            txnr = self.txnr;
            let start = relp::begin_frame(txnr, "syslog", &mut self.out);
            self.wire.encode(r, local_host, scratch, &mut self.out);
            relp::end_frame(start, &mut self.out);
        } else {
            self.wire.encode(r, local_host, scratch, &mut self.out);
        }
        let mark = Mark {
            end: self.out.len(),
            cursor: self.cursor,
            entries,
            notice,
            txnr,
        };
        self.marks.push_back(mark);
        if txnr != 0 {
            self.unacked.push_back(mark);
        }
    }

    /// Read what the server sent: RELP answers, or the end of a stream.
    fn read_in(&mut self) -> Result<Work, String> {
        if !self.readable {
            return Ok(Work::Idle);
        }
        let mut total = 0;
        loop {
            let conn = self.conn.as_mut().expect("reading means connected");
            match conn.read(&mut self.read_buf) {
                Ok(0) if !matches!(conn, Conn::Udp(_)) => {
                    return Err("the receiver closed the connection".into())
                }
                Ok(n) => {
                    total += n;
                    if self.spec.transport == Transport::Relp {
                        self.relp_in.feed(&self.read_buf[..n]);
                        self.take_answers()?;
                    } else if let Some(u) = self.upload.as_mut() {
                        if let Some(a) = u.take(&self.read_buf[..n])? {
                            self.uploaded(&a)?;
                            if a.closes {
                                // Between uploads: a new connection, quietly.
                                return Err("the receiver closes the connection".into());
                            }
                        }
                    }
                    // Anything else a server sends is not ours to read.
                    if total >= READ_BUDGET {
                        return Ok(Work::More);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Ok(Work::Idle);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::ECONNREFUSED) => {
                    // UDP: an ICMP port unreachable for a datagram sent.
                    self.counters.lost += 1;
                    return Err(
                        "the receiver's host refused a datagram (nothing listens on the port)"
                            .into(),
                    );
                }
                Err(e) => return Err(describe(&e)),
            }
        }
    }

    /// Act on every whole RELP frame the server sent.
    fn take_answers(&mut self) -> Result<(), String> {
        while let Some(f) = self.relp_in.next_frame()? {
            if f.command == "serverclose" {
                return Err("the RELP server closed the session".into());
            }
            if f.command != "rsp" {
                return Err(format!("unexpected RELP command {:?}", f.command));
            }
            let (ok, text) = f.status();
            if let Phase::Opening { .. } = self.phase {
                if f.txnr != 1 {
                    return Err(format!("answer {} to an open with TXNR 1", f.txnr));
                }
                if !ok {
                    return Err(format!("the RELP server refused the session: {text}"));
                }
                let offers = String::from_utf8_lossy(&f.data);
                let syslog = offers
                    .lines()
                    .filter_map(|l| l.strip_prefix("commands="))
                    .any(|c| c.split(',').any(|c| c.trim() == "syslog"));
                if !syslog {
                    return Err("the RELP server does not offer the syslog command".into());
                }
                self.opened(Instant::now());
                continue;
            }
            let Some(front) = self.unacked.front().copied() else {
                return Err(format!("an answer ({}) to nothing sent", f.txnr));
            };
            if front.txnr != f.txnr {
                return Err(format!(
                    "answer {} out of order (expected {})",
                    f.txnr, front.txnr
                ));
            }
            self.unacked.pop_front();
            if ok {
                self.counters.acknowledged += front.entries;
            } else {
                // The server said no to this message: sending it again
                // would get the same answer.
                self.counters.lost += front.entries;
                self.report(
                    "route-refused",
                    Severity::Warning,
                    format!(
                        "route {}: the receiver refused an entry and it is lost: {text}",
                        self.spec.address()
                    ),
                );
            }
            self.settle(front.cursor);
        }
        Ok(())
    }

    /// Everything before `cursor` was confirmed.
    fn settle(&mut self, cursor: u64) {
        self.done = self.done.max(cursor);
        if self.unacked.is_empty() && self.marks.is_empty() {
            self.done = self.cursor;
        }
    }

    fn report(&mut self, kind: &'static str, severity: Severity, msg: String) {
        self.reports.push((kind, severity, msg));
    }
}

fn describe(e: &io::Error) -> String {
    e.to_string()
}
