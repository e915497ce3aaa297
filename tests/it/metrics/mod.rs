//! Watching the daemon: `GET /metrics` on the query socket and on the
//! `--metrics` listeners, checked by Prometheus' own `promtool` and
//! scraped by a real `prometheus`, and `GET /health`.

mod endpoint;
mod exposition;
mod prometheus;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use crate::support::{find_tool, Daemon};

/// An HTTP answer: status, head and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    fn parse(raw: &[u8]) -> Answer {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no HTTP head in {text:?}"));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}"));
        Answer {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        }
    }

    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// `GET path` over TCP at `addr` (HTTP/1.0: the body ends at the close).
pub fn get(addr: SocketAddr, path: &str) -> Answer {
    try_get(addr, path).unwrap_or_else(|e| panic!("GET {path} from {addr}: {e}"))
}

/// [`get`], or why it could not be done (nothing listening yet, say).
pub fn try_get(addr: SocketAddr, path: &str) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    Ok(Answer::parse(&raw))
}

/// `GET /metrics` on the daemon's query socket.
pub fn metrics_on_query_socket(d: &Daemon) -> Answer {
    Answer::parse(&d.query_raw(b"GET /metrics HTTP/1.1\r\nHost: ringlogd\r\n\r\n"))
}

/// The samples of an exposition, by series (`name{labels}` as written).
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("{l:?}"));
            let value = value.parse().unwrap_or_else(|_| panic!("value of {l:?}"));
            (series.to_owned(), value)
        })
        .collect()
}

/// A tool of the `prometheus` package. Under CI it must be there (the
/// suite installs it); elsewhere a test without it is skipped, saying why.
pub fn prometheus_tool(tool: &str) -> Option<PathBuf> {
    if let Some(p) = find_tool(tool) {
        return Some(p);
    }
    let why =
        format!("{tool} is not installed (Debian package prometheus; tests/run.sh installs it)");
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("skipped: {why}");
    None
}
