//! The `--metrics` listeners: TCP sockets where Prometheus scrapes the
//! daemon. They answer `GET /metrics` (the stats as Prometheus metrics)
//! and `GET /health` (200 while the ring takes entries, 503 with the
//! reason while it is paused or the daemon is out of fds), and nothing
//! else: never an entry, never a change to the ring.
//!
//! Served by the event loop like every socket: non-blocking, at most
//! [`MAX_CONNS`] connections at once (more are closed as they come), a
//! request of at most [`MAX_REQUEST`] bytes, and [`DEADLINE`] for the
//! whole exchange, past which a slow client is dropped. A scrape costs one
//! stats document, made only when one is asked for.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use serde_json::Value;

use crate::metrics::{self, Reader};
use crate::query::http;
use crate::spare_fd::SpareFd;

/// Most scrape connections open at once: Prometheus opens one per
/// target, and a few more are for people with curl.
pub const MAX_CONNS: usize = 16;
/// The longest request read; a longer one is refused.
pub const MAX_REQUEST: usize = 8 << 10;
/// How long a connection may take to send its request and read the
/// answer.
pub const DEADLINE: Duration = Duration::from_secs(5);
/// Most listeners (`--metrics` flags); their tokens come first.
pub const MAX_LISTENERS: usize = 256;

/// What an out-of-fds refusal says, on the spare fd.
const OUT_OF_FDS: &str =
    "out of file descriptors: connections, intake fds and files cannot be opened\n";

/// What a scrape needs from the daemon, asked for when a request is whole.
pub struct Scrape<'a> {
    /// The stats document, as a reader who sees everything gets it.
    pub stats: &'a dyn Fn() -> Value,
    /// The ring drops new entries.
    pub paused: bool,
}

struct Conn {
    stream: TcpStream,
    /// Accepted on the spare fd: answered 503, and the spare taken back
    /// when it closes.
    out_of_fds: bool,
    request: Vec<u8>,
    /// The answer, once the request is whole, and how much of it is sent.
    out: Option<Vec<u8>>,
    sent: usize,
    deadline: Instant,
}

/// Every `--metrics` listener and its connections.
pub struct ScrapeServer {
    listeners: Vec<(TcpListener, SocketAddr)>,
    conns: Vec<Option<Conn>>,
    token_base: usize,
    spare: SpareFd,
}

impl ScrapeServer {
    /// Listen on every address of `addrs`; tokens are `token_base` and up.
    pub fn bind(addrs: &[SocketAddr], token_base: usize) -> Result<ScrapeServer, String> {
        let listeners = addrs
            .iter()
            .map(|&addr| {
                crate::source::net::listen_tcp(addr).map_err(|e| format!("--metrics {addr}: {e}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        ScrapeServer::new(listeners, token_base)
    }

    /// Go on listening on the sockets a re-executing predecessor handed
    /// over.
    pub fn adopt(
        handed: impl Iterator<Item = OwnedFd>,
        token_base: usize,
    ) -> Result<ScrapeServer, String> {
        let listeners = handed
            .map(|fd| {
                let l = std::net::TcpListener::from(fd);
                l.set_nonblocking(true)?;
                Ok(TcpListener::from_std(l))
            })
            .collect::<io::Result<Vec<_>>>()
            .map_err(|e| e.to_string())?;
        ScrapeServer::new(listeners, token_base)
    }

    fn new(listeners: Vec<TcpListener>, token_base: usize) -> Result<ScrapeServer, String> {
        if listeners.len() > MAX_LISTENERS {
            return Err(format!("at most {MAX_LISTENERS} --metrics addresses"));
        }
        let listeners = listeners
            .into_iter()
            .map(|l| {
                let at = l.local_addr().map_err(|e| format!("--metrics: {e}"))?;
                Ok((l, at))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(ScrapeServer {
            listeners,
            conns: (0..MAX_CONNS).map(|_| None).collect(),
            token_base,
            spare: SpareFd::new(),
        })
    }

    /// The listeners' fds, for a successor started by re-exec.
    pub fn listener_fds(&self) -> Vec<RawFd> {
        self.listeners.iter().map(|(l, _)| l.as_raw_fd()).collect()
    }

    /// Where it listens, with the port the kernel picked for port 0.
    pub fn listening(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.listeners.iter().map(|(_, a)| *a)
    }

    pub fn register(&mut self, registry: &Registry) -> io::Result<()> {
        for (i, (l, _)) in self.listeners.iter_mut().enumerate() {
            registry.register(l, Token(self.token_base + i), Interest::READABLE)?;
        }
        Ok(())
    }

    /// A readiness event for one of its tokens.
    pub fn event(&mut self, token: Token, registry: &Registry, scrape: &Scrape<'_>) {
        let i = token.0 - self.token_base;
        if i < MAX_LISTENERS {
            self.accept(i, registry);
        } else if let Some(slot) = self.conns.get_mut(i - MAX_LISTENERS) {
            if let Some(c) = slot {
                if serve(c, scrape) == Step::Close && close(slot, registry, &mut self.spare) {
                    self.accept_waiting(registry);
                }
            }
        }
    }

    /// The spare fd is back: accept what waited for it meanwhile (an
    /// edge-triggered listener says nothing more until another arrives).
    fn accept_waiting(&mut self, registry: &Registry) {
        for i in 0..self.listeners.len() {
            self.accept(i, registry);
        }
    }

    /// Accept every waiting connection on listener `i`.
    fn accept(&mut self, i: usize, registry: &Registry) {
        let Some((listener, _)) = self.listeners.get(i) else {
            return;
        };
        loop {
            let stream = match listener.accept() {
                Ok((s, _)) => (s, false),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if SpareFd::is_exhaustion(&e) => {
                    // Out of fds: the spare goes to one connection, which
                    // is served like any other but answered 503 (its
                    // request read first: a socket closed with unread
                    // bytes is reset, and the client may lose the answer).
                    // The spare comes back when it closes; until then
                    // the next ones wait in the queue.
                    if !self.spare.release() {
                        return;
                    }
                    match listener.accept() {
                        Ok((s, _)) => (s, true),
                        Err(_) => {
                            self.spare.restore();
                            return;
                        }
                    }
                }
                Err(_) => return,
            };
            let (mut stream, out_of_fds) = stream;
            // Full: closed at once, so that no client waits in a queue.
            let Some(idx) = self.conns.iter().position(Option::is_none) else {
                self.spare.restore();
                continue;
            };
            let token = Token(self.token_base + MAX_LISTENERS + idx);
            if registry
                .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                .is_err()
            {
                self.spare.restore();
                continue;
            }
            self.conns[idx] = Some(Conn {
                stream,
                out_of_fds,
                request: Vec::new(),
                out: None,
                sent: 0,
                deadline: Instant::now() + DEADLINE,
            });
        }
    }

    /// The soonest a connection runs out of time.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns.iter().flatten().map(|c| c.deadline).min()
    }

    /// Drop the connections past their deadline.
    pub fn expire(&mut self, now: Instant, registry: &Registry) {
        let mut spare_back = false;
        for slot in &mut self.conns {
            if slot.as_ref().is_some_and(|c| c.deadline <= now) {
                spare_back |= close(slot, registry, &mut self.spare);
            }
        }
        if spare_back {
            self.accept_waiting(registry);
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Waiting for more of the request, or for room to write.
    Wait,
    Close,
}

/// Read what the client sent; once the request is whole, answer it, as
/// far as the socket takes the answer.
fn serve(c: &mut Conn, scrape: &Scrape<'_>) -> Step {
    if c.out.is_none() {
        let mut buf = [0u8; 1024];
        let eof = loop {
            match c.stream.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => {
                    c.request.extend_from_slice(&buf[..n]);
                    if c.request.len() > MAX_REQUEST {
                        break false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Step::Close,
            }
        };
        let answer = answer(&c.request, eof, scrape);
        match answer.map(|a| {
            if c.out_of_fds {
                text(503, OUT_OF_FDS)
            } else {
                a
            }
        }) {
            Some(out) => c.out = Some(out),
            None if eof => return Step::Close,
            None => return Step::Wait,
        }
    }
    let out = c.out.as_deref().unwrap_or_default();
    while c.sent < out.len() {
        match c.stream.write(&out[c.sent..]) {
            Ok(0) => return Step::Close,
            Ok(n) => c.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Step::Close,
        }
    }
    Step::Close
}

/// The whole answer to `request`, or `None` while it is incomplete.
fn answer(request: &[u8], eof: bool, scrape: &Scrape<'_>) -> Option<Vec<u8>> {
    let (method, target) = match http::request_line(request, eof, MAX_REQUEST) {
        Ok(Some(line)) => line,
        Ok(None) => return None,
        Err((status, why)) => return Some(text(status, &format!("{why}\n"))),
    };
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    Some(match (method, path) {
        ("GET", "/metrics") => {
            let body = metrics::exposition(&(scrape.stats)(), Reader::Whole);
            http::response(200, metrics::CONTENT_TYPE, body.as_bytes())
        }
        ("GET", "/health") => match health(scrape.paused) {
            Ok(()) => text(200, "ok\n"),
            Err(why) => text(503, why),
        },
        (method, "/metrics" | "/health") => {
            text(405, &format!("{method} is not allowed on {path}: use GET\n"))
        }
        _ => text(404, &format!("no such endpoint {path:?}: this listener serves only GET /metrics and GET /health\n")),
    })
}

/// Whether the ring takes entries now, and why not.
fn health(paused: bool) -> Result<(), &'static str> {
    if paused {
        return Err("paused: the ring drops new entries until it is resumed (logread --resume, or SIGUSR1)\n");
    }
    // The one way to know that an fd can be had: take one.
    match std::fs::File::open("/dev/null") {
        Err(e) if SpareFd::is_exhaustion(&e) => Err(OUT_OF_FDS),
        _ => Ok(()),
    }
}

/// A plain-text answer.
fn text(status: u16, body: &str) -> Vec<u8> {
    http::response(status, "text/plain; charset=utf-8", body.as_bytes())
}

/// Close the connection in `slot`; true when that gave the spare fd back.
fn close(slot: &mut Option<Conn>, registry: &Registry, spare: &mut SpareFd) -> bool {
    let Some(mut c) = slot.take() else {
        return false;
    };
    let _ = registry.deregister(&mut c.stream);
    let _ = c.stream.shutdown(std::net::Shutdown::Both);
    drop(c.stream);
    if c.out_of_fds {
        spare.restore();
    }
    c.out_of_fds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(out: &[u8]) -> &str {
        std::str::from_utf8(&out[9..12]).unwrap()
    }

    #[test]
    fn serves_metrics_and_health_only() {
        let stats =
            || serde_json::json!({ "paused": false, "inputs": { "syslog": { "received": 5 } } });
        let scrape = Scrape {
            stats: &stats,
            paused: false,
        };
        let ask = |r: &[u8]| answer(r, false, &scrape).map(|o| String::from_utf8(o).unwrap());
        let metrics = ask(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
        assert!(metrics.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        assert!(
            metrics.contains("\nringlogd_received_total{input=\"syslog\"} 5\n"),
            "{metrics}"
        );
        assert!(ask(b"GET /health HTTP/1.1\r\n\r\n")
            .unwrap()
            .ends_with("\r\n\r\nok\n"));
        let cases: [(&[u8], &str); 5] = [
            (b"GET /logs HTTP/1.1\r\n\r\n", "404"),
            (b"GET /stats HTTP/1.1\r\n\r\n", "404"),
            (b"POST /pause HTTP/1.1\r\n\r\n", "404"),
            (b"POST /metrics HTTP/1.1\r\n\r\n", "405"),
            (b"\x01\x02\r\n\r\n", "400"),
        ];
        for (request, want) in cases {
            assert_eq!(status(&answer(request, false, &scrape).unwrap()), want);
        }
        assert_eq!(ask(b"GET /metrics HTTP/1.1\r\n"), None, "incomplete");
        assert_eq!(
            status(&answer(b"GET /metrics HTTP/1.1\r\n", true, &scrape).unwrap()),
            "400"
        );
        let long = [
            b"GET /metrics HTTP/1.1\r\nX: ".as_slice(),
            &[b'a'; MAX_REQUEST],
        ]
        .concat();
        assert_eq!(status(&answer(&long, false, &scrape).unwrap()), "431");
    }

    #[test]
    fn health_says_why_it_is_unavailable() {
        let stats = || Value::Null;
        let paused = Scrape {
            stats: &stats,
            paused: true,
        };
        let out =
            String::from_utf8(answer(b"GET /health HTTP/1.0\r\n\r\n", false, &paused).unwrap())
                .unwrap();
        assert!(
            out.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{out}"
        );
        assert!(out.ends_with("\r\n\r\npaused: the ring drops new entries until it is resumed (logread --resume, or SIGUSR1)\n"), "{out}");
    }
}
