//! Syslog over the network: UDP sockets (one message per datagram) and TCP
//! listeners with their connections (RFC 6587 framing, [`Framer`]).
//!
//! Nothing listens unless asked (`--udp`, `--tcp`). Every record gets input
//! `net`, is parsed as remote (a lone header field is a host), and carries
//! the address it came from in `peer_addr`.
//!
//! A sender can cost only itself: each connection holds at most one frame
//! limit of unfinished bytes, is read for a bounded share of every turn of
//! the event loop, and is closed after `--tcp-idle-timeout` of silence.
//! Past `--tcp-max-conns`, new connections are accepted and closed at once,
//! counted, and reported as internal entries (at most one per
//! [`REFUSAL_REPORT_EVERY`], with the count since).
//!
//! UDP has no flow control: when ringlogd falls behind, the kernel drops
//! datagrams from a full socket buffer. SO_RXQ_OVFL reports how many with
//! every datagram after them, and they are counted as received and
//! dropped for `net`, so even that loss shows in the ledger.

use std::io::{self, IoSliceMut, Read};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Interest, Registry, Token};
use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
};
use socket2::{Domain, Protocol, Socket, Type};

use super::Drain;
use crate::config::NetSettings;
use crate::ingest;
use crate::parse::frames::Framer;
use crate::parse::syslog::{Origin, SyslogParser};
use crate::record::{now_ns, Input, Severity};
use crate::ring::Ring;
use crate::spare_fd::SpareFd;

/// The largest UDP payload is 65,507 bytes (IPv4) or 65,527 (IPv6): a
/// buffer this size receives every datagram whole.
const READ_BUFFER: usize = 64 << 10;
/// A frame may be this much longer than `--max-line-len`, for its header
/// and structured data; the parser then cuts the text itself at the limit.
pub const HEADER_ROOM: usize = 2048;
/// Bytes read from one connection per turn, so one fast sender cannot hold
/// up the others (nor /dev/log, nor readers).
const TCP_READ_BUDGET: usize = 256 << 10;
/// Asked of the kernel for UDP sockets, so bursts wait in the socket
/// (capped by net.core.rmem_max).
const UDP_RECV_BUFFER: usize = 4 << 20;
/// Connections waiting to be accepted, per listener.
const LISTEN_BACKLOG: i32 = 1024;
/// Refused connections are reported at most this often.
pub const REFUSAL_REPORT_EVERY: Duration = Duration::from_secs(10);
/// A bound socket: where messages or connections arrive.
enum Listener {
    Udp(Udp),
    Tcp(TcpListener, SocketAddr),
}

struct Udp {
    socket: UdpSocket,
    addr: SocketAddr,
    /// The kernel's count of datagrams it dropped on this socket, as last
    /// reported (SO_RXQ_OVFL).
    kernel_dropped: u32,
}

/// One accepted TCP connection.
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    framer: Framer,
    last_active: Instant,
}

/// Counts connections refused for `--tcp-max-conns`, and says so without
/// flooding the ring when someone opens thousands.
#[derive(Default)]
struct Refusals {
    total: u64,
    /// Refused since the last report.
    unreported: u64,
    last_report: Option<Instant>,
}

/// Every UDP socket, TCP listener and TCP connection.
pub struct NetSource {
    parser: SyslogParser,
    listeners: Vec<Listener>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    open: usize,
    listener_base: usize,
    conn_base: usize,
    max_conns: usize,
    idle_timeout: Option<Duration>,
    frame_limit: usize,
    buf: Vec<u8>,
    refusals: Refusals,
    /// Lent to accept a connection when out of fds, so it can be closed.
    spare: SpareFd,
    /// When idle connections are next looked for (only while any is open).
    next_sweep: Option<Instant>,
}

impl NetSource {
    /// Bind every listener `settings` asks for, after the ones handed in
    /// by socket activation (`handed`: used as they are, with only
    /// SO_RXQ_OVFL turned on). Listeners get tokens from `listener_base` up
    /// and connections from `conn_base` up; the daemon keeps those ranges
    /// apart.
    pub fn bind(
        settings: &NetSettings,
        handed: (Vec<std::net::UdpSocket>, Vec<std::net::TcpListener>),
        parser: SyslogParser,
        max_line_len: usize,
        listener_base: usize,
        conn_base: usize,
    ) -> Result<NetSource, String> {
        let mut listeners = Vec::new();
        let (handed_udp, handed_tcp) = handed;
        for s in handed_udp {
            let addr = s
                .local_addr()
                .map_err(|e| format!("handed-in udp socket: {e}"))?;
            setsockopt(&s, sockopt::RxqOvfl, &1)
                .map_err(|e| format!("udp {addr}: cannot enable SO_RXQ_OVFL: {e}"))?;
            listeners.push(Listener::Udp(Udp {
                socket: UdpSocket::from_std(s),
                addr,
                kernel_dropped: 0,
            }));
        }
        for s in handed_tcp {
            let addr = s
                .local_addr()
                .map_err(|e| format!("handed-in tcp socket: {e}"))?;
            listeners.push(Listener::Tcp(TcpListener::from_std(s), addr));
        }
        for &addr in &settings.udp {
            let s =
                socket(addr, Type::DGRAM, Protocol::UDP).map_err(|e| format!("udp {addr}: {e}"))?;
            let _ = s.set_recv_buffer_size(UDP_RECV_BUFFER);
            setsockopt(&s, sockopt::RxqOvfl, &1)
                .map_err(|e| format!("udp {addr}: cannot enable SO_RXQ_OVFL: {e}"))?;
            let socket = UdpSocket::from_std(s.into());
            let local = socket.local_addr().unwrap_or(addr);
            listeners.push(Listener::Udp(Udp {
                socket,
                addr: local,
                kernel_dropped: 0,
            }));
        }
        for &addr in &settings.tcp {
            let tcp = listen_tcp(addr).map_err(|e| format!("tcp {addr}: {e}"))?;
            let local = tcp.local_addr().unwrap_or(addr);
            listeners.push(Listener::Tcp(tcp, local));
        }
        Ok(NetSource {
            parser,
            listeners,
            conns: Vec::new(),
            free: Vec::new(),
            open: 0,
            listener_base,
            conn_base,
            max_conns: settings.tcp_max_conns,
            idle_timeout: settings.tcp_idle_timeout,
            frame_limit: max_line_len.saturating_add(HEADER_ROOM),
            buf: vec![0; READ_BUFFER],
            refusals: Refusals::default(),
            spare: SpareFd::new(),
            next_sweep: None,
        })
    }

    /// What is listening where: (`"udp"` or `"tcp"`, the bound address,
    /// with the port the kernel picked for port 0).
    pub fn listening(&self) -> impl Iterator<Item = (&'static str, SocketAddr)> + '_ {
        self.listeners.iter().map(|l| match l {
            Listener::Udp(u) => ("udp", u.addr),
            Listener::Tcp(_, a) => ("tcp", *a),
        })
    }

    /// The fd numbers of the UDP sockets and of the TCP listeners, for a
    /// successor started by re-exec.
    pub fn listener_fds(&self) -> (Vec<std::os::fd::RawFd>, Vec<std::os::fd::RawFd>) {
        let (mut udp, mut tcp) = (Vec::new(), Vec::new());
        for l in &self.listeners {
            match l {
                Listener::Udp(u) => udp.push(u.socket.as_raw_fd()),
                Listener::Tcp(t, _) => tcp.push(t.as_raw_fd()),
            }
        }
        (udp, tcp)
    }

    /// Every open TCP connection with its unfinished frame, for a
    /// successor. The connections stay open here.
    pub fn hand_over(&self) -> Vec<crate::handover::ConnState> {
        self.conns
            .iter()
            .flatten()
            .map(|c| crate::handover::ConnState {
                fd: c.stream.as_raw_fd(),
                peer: c.peer,
                framer: c.framer.saved(),
            })
            .collect()
    }

    /// Go on reading a connection a predecessor had accepted, from where
    /// its framer was.
    pub fn resume_conn(
        &mut self,
        fd: std::os::fd::OwnedFd,
        peer: SocketAddr,
        framer: crate::parse::frames::SavedFramer,
        registry: &Registry,
    ) -> io::Result<()> {
        let std = std::net::TcpStream::from(fd);
        std.set_nonblocking(true)?;
        let idx = self.add(TcpStream::from_std(std), peer, registry);
        if let Some(c) = idx.and_then(|i| self.conns[i].as_mut()) {
            c.framer = Framer::resume(self.frame_limit, framer);
        }
        Ok(())
    }

    /// Register every listener with the poll.
    pub fn register(&mut self, registry: &Registry) -> io::Result<()> {
        for (i, l) in self.listeners.iter_mut().enumerate() {
            let token = Token(self.listener_base + i);
            match l {
                Listener::Udp(u) => registry.register(&mut u.socket, token, Interest::READABLE)?,
                Listener::Tcp(s, _) => registry.register(s, token, Interest::READABLE)?,
            }
        }
        Ok(())
    }

    /// Apply new connection limits (SIGHUP): they hold for connections
    /// accepted from now on, and the idle timeout for every open one.
    pub fn set_limits(&mut self, max_conns: usize, idle_timeout: Option<Duration>, now: Instant) {
        self.max_conns = max_conns;
        self.idle_timeout = idle_timeout;
        self.next_sweep = match idle_timeout {
            Some(t) if self.open > 0 => Some(now + sweep_interval(t)),
            _ => None,
        };
    }

    /// Whether `token` is one of this source's sockets.
    pub fn owns(&self, token: Token) -> bool {
        self.listener_index(token).is_some() || self.conn_index(token).is_some()
    }

    /// TCP connections open now.
    pub fn open_connections(&self) -> usize {
        self.open
    }

    fn listener_index(&self, token: Token) -> Option<usize> {
        let i = token.0.checked_sub(self.listener_base)?;
        (i < self.listeners.len()).then_some(i)
    }

    fn conn_index(&self, token: Token) -> Option<usize> {
        let i = token.0.checked_sub(self.conn_base)?;
        (i < self.conns.len()).then_some(i)
    }

    /// Read what the socket behind `token` has, up to `budget` messages
    /// (or accepted connections).
    pub fn drain(
        &mut self,
        token: Token,
        ring: &mut Ring,
        registry: &Registry,
        budget: usize,
    ) -> Drain {
        if let Some(i) = self.listener_index(token) {
            match &self.listeners[i] {
                Listener::Udp(_) => self.drain_udp(i, ring, budget),
                Listener::Tcp(..) => self.accept(i, ring, registry, budget),
            }
        } else if let Some(i) = self.conn_index(token) {
            self.read_conn(i, ring, registry, budget)
        } else {
            Drain::Idle
        }
    }

    fn drain_udp(&mut self, i: usize, ring: &mut Ring, budget: usize) -> Drain {
        let Listener::Udp(udp) = &mut self.listeners[i] else {
            return Drain::Idle;
        };
        let mut errors = 0;
        for _ in 0..budget {
            let got = recv_datagram(udp.socket.as_raw_fd(), &mut self.buf);
            let (n, peer, dropped) = match got {
                Ok(Some(d)) => d,
                Ok(None) => return Drain::Idle,
                // One datagram's trouble (or a pending ICMP error): go on,
                // but never spin on an error that does not go away.
                Err(_) => {
                    errors += 1;
                    if errors > 16 {
                        return Drain::Idle;
                    }
                    continue;
                }
            };
            if let Some(total) = dropped {
                let lost = u64::from(total.wrapping_sub(udp.kernel_dropped));
                udp.kernel_dropped = total;
                ingest::lost(ring, Input::Net, lost);
            }
            match peer {
                Some(peer) => store(&self.parser, ring, &self.buf[..n], false, peer, now_ns()),
                // Only a socket of another family could lack an address.
                None => ingest::lost(ring, Input::Net, 1),
            }
        }
        Drain::More
    }

    fn accept(&mut self, i: usize, ring: &mut Ring, registry: &Registry, budget: usize) -> Drain {
        for _ in 0..budget {
            let Listener::Tcp(listener, local) = &self.listeners[i] else {
                return Drain::Idle;
            };
            let local = *local;
            match listener.accept() {
                Ok((stream, peer)) => {
                    if self.open >= self.max_conns {
                        // Accepting and closing at once frees the kernel's
                        // queue, and the sender learns at once.
                        drop(stream);
                        let why = format!("{} open, the most --tcp-max-conns allows", self.open);
                        self.refuse(ring, local, peer, &why);
                    } else {
                        self.add(stream, peer, registry);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Drain::Idle,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                // Out of fds: accept on the spare fd only to close it, so
                // the sender learns at once instead of waiting in the queue.
                Err(e) if SpareFd::is_exhaustion(&e) => {
                    // The connection is closed inside, so that the spare
                    // can be taken back.
                    let peer = self
                        .spare
                        .lend(|| listener.accept().map(|(_, peer)| peer).ok());
                    match peer.flatten() {
                        Some(peer) => {
                            self.refuse(ring, local, peer, "ringlogd is out of file descriptors")
                        }
                        None => return Drain::Idle,
                    }
                }
                // Out of memory: leave the rest queued in the kernel and try
                // again on the next connection rather than spin.
                Err(_) => return Drain::Idle,
            }
        }
        Drain::More
    }

    fn add(
        &mut self,
        mut stream: TcpStream,
        peer: SocketAddr,
        registry: &Registry,
    ) -> Option<usize> {
        let idx = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        // epoll reports data that arrived before registration, so nothing
        // sent right after connecting waits for a second edge.
        if registry
            .register(&mut stream, Token(self.conn_base + idx), Interest::READABLE)
            .is_err()
        {
            self.free.push(idx);
            return None;
        }
        let now = Instant::now();
        self.conns[idx] = Some(Conn {
            stream,
            peer,
            framer: Framer::new(self.frame_limit),
            last_active: now,
        });
        self.open += 1;
        if self.next_sweep.is_none() {
            self.next_sweep = self.idle_timeout.map(|t| now + sweep_interval(t));
        }
        Some(idx)
    }

    /// Read one connection for at most its share of this turn.
    fn read_conn(
        &mut self,
        i: usize,
        ring: &mut Ring,
        registry: &Registry,
        budget: usize,
    ) -> Drain {
        let Some(conn) = self.conns[i].as_mut() else {
            return Drain::Idle;
        };
        let (parser, peer) = (&self.parser, conn.peer);
        let (mut frames, mut bytes) = (0, 0);
        loop {
            if frames >= budget || bytes >= TCP_READ_BUDGET {
                return Drain::More;
            }
            match conn.stream.read(&mut self.buf) {
                // The sender closed (or reset) the connection.
                Ok(0) => break,
                Ok(n) => {
                    bytes += n;
                    conn.last_active = Instant::now();
                    // Frames that arrived in one read arrived together.
                    let now = now_ns();
                    conn.framer
                        .push(&self.buf[..n], &mut |f: &[u8], cut: bool| {
                            frames += 1;
                            store(parser, ring, f, cut, peer, now);
                        });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Drain::Idle,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.close(i, ring, registry);
        Drain::Idle
    }

    /// Close connection `i`, keeping what it left of an unfinished frame.
    fn close(&mut self, i: usize, ring: &mut Ring, registry: &Registry) {
        let Some(mut conn) = self.conns[i].take() else {
            return;
        };
        let (parser, peer, now) = (&self.parser, conn.peer, now_ns());
        conn.framer.finish(&mut |f: &[u8], cut: bool| {
            store(parser, ring, f, cut, peer, now);
        });
        let _ = registry.deregister(&mut conn.stream);
        self.free.push(i);
        self.open -= 1;
        if self.open == 0 {
            self.next_sweep = None;
        }
    }

    fn refuse(&mut self, ring: &mut Ring, local: SocketAddr, peer: SocketAddr, why: &str) {
        let r = &mut self.refusals;
        r.total += 1;
        let now = Instant::now();
        if r.last_report
            .is_some_and(|t| now.duration_since(t) < REFUSAL_REPORT_EVERY)
        {
            r.unreported += 1;
            return;
        }
        r.last_report = Some(now);
        r.unreported = 0;
        ingest::note(
            ring,
            Severity::Warning,
            format!(
                "tcp {local}: refused a connection from {peer}: {why}; {} refused since start",
                r.total
            ),
        );
    }

    /// When [`NetSource::tick`] has something to do next, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        let report = (self.refusals.unreported > 0)
            .then_some(self.refusals.last_report)
            .flatten()
            .map(|t| t + REFUSAL_REPORT_EVERY);
        [self.next_sweep, report].into_iter().flatten().min()
    }

    /// Timers: close connections idle past the timeout, and report refused
    /// connections not yet reported.
    pub fn tick(&mut self, now: Instant, ring: &mut Ring, registry: &Registry) {
        let r = &mut self.refusals;
        if r.unreported > 0
            && r.last_report
                .is_some_and(|t| now.duration_since(t) >= REFUSAL_REPORT_EVERY)
        {
            ingest::note(
                ring,
                Severity::Warning,
                format!(
                    "tcp: refused {} more connections in the last {} s, past --tcp-max-conns {} or the fd limit; {} refused since start",
                    r.unreported,
                    REFUSAL_REPORT_EVERY.as_secs(),
                    self.max_conns,
                    r.total
                ),
            );
            r.unreported = 0;
            r.last_report = Some(now);
        }
        let (Some(idle), Some(sweep)) = (self.idle_timeout, self.next_sweep) else {
            return;
        };
        if now < sweep {
            return;
        }
        for i in 0..self.conns.len() {
            let stale = self.conns[i]
                .as_ref()
                .is_some_and(|c| now.duration_since(c.last_active) >= idle);
            if stale {
                self.close(i, ring, registry);
            }
        }
        if self.open > 0 {
            self.next_sweep = Some(now + sweep_interval(idle));
        }
    }
}

/// Idle connections are looked for this often: often enough that one is
/// closed soon after its timeout, rarely enough to cost nothing.
fn sweep_interval(idle: Duration) -> Duration {
    (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

/// A non-blocking socket bound to `addr`. An IPv6 socket takes IPv6 only,
/// so `[::]:514` and `0.0.0.0:514` can both be bound, and a v4 peer is never
/// shown as `::ffff:a.b.c.d`.
fn socket(addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    if ty == Type::STREAM {
        // A restarted daemon can bind again while old connections linger
        // in TIME_WAIT.
        s.set_reuse_address(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind: {e}")))?;
    Ok(s)
}

/// A non-blocking TCP listener on `addr`, as [`socket`] binds it.
pub fn listen_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = socket(addr, Type::STREAM, Protocol::TCP)?;
    s.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(s.into()))
}

/// One datagram into `buf`: its length, sender, and the kernel's running
/// count of datagrams it dropped on this socket. `Ok(None)` when empty.
type Datagram = (usize, Option<SocketAddr>, Option<u32>);

fn recv_datagram(fd: std::os::fd::RawFd, buf: &mut [u8]) -> Result<Option<Datagram>, Errno> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(u32);
    let msg =
        match recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT) {
            Ok(m) => m,
            Err(Errno::EAGAIN) => return Ok(None),
            Err(e) => return Err(e),
        };
    let mut dropped = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::RxqOvfl(n) = c {
                dropped = Some(n);
            }
        }
    }
    let peer = msg.address.as_ref().and_then(|a| {
        a.as_sockaddr_in()
            .map(|v4| SocketAddr::from(*v4))
            .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6)))
    });
    Ok(Some((msg.bytes, peer, dropped)))
}

/// Parse one message from `peer` and store it, counting it for `net`.
fn store(
    parser: &SyslogParser,
    ring: &mut Ring,
    bytes: &[u8],
    cut: bool,
    peer: SocketAddr,
    received_ns: i64,
) {
    let parsed = parser.parse(bytes, received_ns, Input::Net, Origin::Remote, None);
    let mut record = parsed.record;
    record.peer_addr = Some(peer);
    record.truncated |= cut;
    ingest::store(ring, &record.as_ref(), parsed.malformed);
}
