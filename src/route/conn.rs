//! One route's socket: a connected UDP socket, a TCP stream, or a TCP
//! stream carrying TLS. All are non-blocking and registered with the
//! daemon's poll; every call here returns `WouldBlock` rather than wait.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use mio::net::{TcpStream, UdpSocket};
use mio::{Interest, Registry, Token};
use rustls::ClientConnection;

use super::tls::TlsClient;

/// Plaintext handed to rustls at once, at most: what it buffers stays
/// bounded, and is sent before more is taken.
const TLS_CHUNK: usize = 16 << 10;

pub enum Conn {
    Udp(UdpSocket),
    Tcp {
        stream: TcpStream,
        connected: bool,
    },
    Tls {
        stream: TcpStream,
        connected: bool,
        tls: Box<ClientConnection>,
    },
}

fn would_block() -> io::Error {
    io::ErrorKind::WouldBlock.into()
}

impl Conn {
    /// Start connecting to `addr` (a TCP connect completes later: see
    /// [`Conn::progress`]), and register with `registry`.
    pub fn open(
        addr: SocketAddr,
        tls: Option<&TlsClient>,
        udp: bool,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Conn> {
        let mut conn = if udp {
            let local: SocketAddr = if addr.is_ipv4() {
                "0.0.0.0:0".parse().expect("an address")
            } else {
                "[::]:0".parse().expect("an address")
            };
            let s = UdpSocket::bind(local)?;
            s.connect(addr)?;
            Conn::Udp(s)
        } else {
            let stream = TcpStream::connect(addr)?;
            // Messages go out as they come; batching is done above.
            let _ = stream.set_nodelay(true);
            match tls {
                None => Conn::Tcp {
                    stream,
                    connected: false,
                },
                Some(t) => {
                    let c = ClientConnection::new(Arc::clone(&t.config), t.name.clone())
                        .map_err(|e| io::Error::other(format!("TLS: {e}")))?;
                    Conn::Tls {
                        stream,
                        connected: false,
                        tls: Box::new(c),
                    }
                }
            }
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        match &mut conn {
            Conn::Udp(s) => registry.register(s, token, interest)?,
            Conn::Tcp { stream, .. } | Conn::Tls { stream, .. } => {
                registry.register(stream, token, interest)?
            }
        }
        Ok(conn)
    }

    pub fn deregister(&mut self, registry: &Registry) {
        let _ = match self {
            Conn::Udp(s) => registry.deregister(s),
            Conn::Tcp { stream, .. } | Conn::Tls { stream, .. } => registry.deregister(stream),
        };
    }

    /// Move a connection being set up along: `Ok(true)` once it can carry
    /// messages (TCP connected, TLS handshake done), `Ok(false)` while it
    /// waits, or why it failed.
    pub fn progress(&mut self) -> io::Result<bool> {
        match self {
            Conn::Udp(_) => Ok(true),
            Conn::Tcp { stream, connected } => tcp_connected(stream, connected),
            Conn::Tls {
                stream,
                connected,
                tls,
            } => {
                if !tcp_connected(stream, connected)? {
                    return Ok(false);
                }
                flush_tls(stream, tls)?;
                read_tls(stream, tls)?;
                flush_tls(stream, tls)?;
                Ok(!tls.is_handshaking())
            }
        }
    }

    /// Write some of `buf`: bytes taken, or `WouldBlock`.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Udp(s) => s.send(buf),
            Conn::Tcp { stream, .. } => stream.write(buf),
            Conn::Tls { stream, tls, .. } => {
                if !flush_tls(stream, tls)? || tls.is_handshaking() {
                    return Err(would_block());
                }
                let n = tls.writer().write(&buf[..buf.len().min(TLS_CHUNK)])?;
                // Whatever the socket does not take now stays in rustls
                // (at most one chunk) and goes first next time.
                flush_tls(stream, tls)?;
                Ok(n)
            }
        }
    }

    /// Whether bytes taken by [`Conn::write`] still wait inside the
    /// connection (TLS records the socket did not take yet).
    pub fn has_buffered(&self) -> bool {
        matches!(self, Conn::Tls { tls, .. } if tls.wants_write())
    }

    /// Read what the peer sent: `Ok(0)` at its end, or `WouldBlock`.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Udp(s) => s.recv(buf),
            Conn::Tcp { stream, .. } => stream.read(buf),
            Conn::Tls { stream, tls, .. } => {
                let eof = read_tls(stream, tls)?;
                // Alerts and session tickets may want an answer.
                flush_tls(stream, tls)?;
                match tls.reader().read(buf) {
                    Ok(0) => Ok(0),
                    Ok(n) => Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock && eof => Ok(0),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

/// Whether a non-blocking connect has completed; its error if it failed.
fn tcp_connected(stream: &TcpStream, connected: &mut bool) -> io::Result<bool> {
    if *connected {
        return Ok(true);
    }
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    match stream.peer_addr() {
        Ok(_) => {
            *connected = true;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

/// Send the TLS records rustls holds: `Ok(true)` when none are left.
fn flush_tls(stream: &mut TcpStream, tls: &mut ClientConnection) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(stream) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Take in every TLS record the socket holds: `Ok(true)` at the end of
/// the stream.
fn read_tls(stream: &mut TcpStream, tls: &mut ClientConnection) -> io::Result<bool> {
    loop {
        match tls.read_tls(stream) {
            Ok(0) => return Ok(true),
            Ok(_) => {
                if let Err(e) = tls.process_new_packets() {
                    // Send the alert that says why, if the socket takes it.
                    let _ = flush_tls(stream, tls);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("TLS: {e}"),
                    ));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
