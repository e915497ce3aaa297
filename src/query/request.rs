//! What a query client asks for, read from the first bytes it sends.
//!
//! The first byte picks the dialect: memlogd's single mode byte (`0`, `1`,
//! `2`, sent as the raw byte values by LinuxKit's `logread`; the ASCII digits
//! are accepted too, for `printf 0 | socat`), or `{` for one JSON line.

use serde::Deserialize;

/// The longest request line accepted before the client is told it is too long.
pub const MAX_REQUEST_LEN: usize = 64 << 10;

/// What a client asks for: a mode, and for dumps optionally only the
/// newest `tail` entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub mode: Mode,
    pub tail: Option<u64>,
}

impl From<Mode> for Request {
    fn from(mode: Mode) -> Request {
        Request { mode, tail: None }
    }
}

/// The ways of reading the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every entry the ring holds now, then close.
    Dump,
    /// Entries that arrive from now on, until the client leaves.
    Follow,
    /// Every entry held now, then each new one, with no gap and no duplicate.
    DumpFollow,
    /// The daemon's counters as one JSON object, then close.
    Stats,
}

/// The outcome of reading the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse {
    /// More bytes are needed.
    Incomplete,
    Done(Request),
    /// The request is malformed: this says why, for the client.
    Error(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRequest {
    mode: String,
    /// Only the newest N entries of the dump.
    n: Option<u64>,
}

/// Read a request from the bytes received so far. `eof` says the client
/// has stopped sending, so an unterminated JSON line is complete.
pub fn parse_request(buf: &[u8], eof: bool) -> Parse {
    // A client that leaves without a word (a liveness probe) is not an
    // error: the caller closes it when `eof` and still `Incomplete`.
    let Some(&first) = buf.first() else {
        return Parse::Incomplete;
    };
    match first {
        0 | b'0' => Parse::Done(Mode::Dump.into()),
        1 | b'1' => Parse::Done(Mode::Follow.into()),
        2 | b'2' => Parse::Done(Mode::DumpFollow.into()),
        b'{' => parse_json_line(buf, eof),
        other => Parse::Error(format!(
            "unknown mode byte 0x{other:02x}: send 0 (dump), 1 (follow), 2 (dump and follow) or a JSON line"
        )),
    }
}

fn parse_json_line(buf: &[u8], eof: bool) -> Parse {
    let line = match buf.iter().position(|&b| b == b'\n') {
        Some(end) => &buf[..end],
        None if eof => buf,
        None if buf.len() > MAX_REQUEST_LEN => {
            return Parse::Error(format!("request line longer than {MAX_REQUEST_LEN} bytes"))
        }
        None => return Parse::Incomplete,
    };
    let req: JsonRequest = match serde_json::from_slice(line) {
        Ok(r) => r,
        Err(e) => return Parse::Error(format!("bad JSON request: {e}")),
    };
    let mode = match req.mode.as_str() {
        "dump" => Mode::Dump,
        "follow" => Mode::Follow,
        "dump+follow" => Mode::DumpFollow,
        "stats" => Mode::Stats,
        m => {
            return Parse::Error(format!(
                "unknown mode {m:?}: use dump, follow, dump+follow or stats"
            ))
        }
    };
    Parse::Done(Request { mode, tail: req.n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memlogd_mode_bytes() {
        assert_eq!(parse_request(&[0], false), Parse::Done(Mode::Dump.into()));
        assert_eq!(parse_request(&[1], false), Parse::Done(Mode::Follow.into()));
        assert_eq!(
            parse_request(&[2], false),
            Parse::Done(Mode::DumpFollow.into())
        );
        assert_eq!(
            parse_request(b"2", false),
            Parse::Done(Mode::DumpFollow.into())
        );
        assert_eq!(parse_request(&[], false), Parse::Incomplete);
        for bad in [3u8, 0xff, b'x'] {
            assert!(matches!(parse_request(&[bad], false), Parse::Error(_)));
        }
    }

    #[test]
    fn json_requests() {
        assert_eq!(
            parse_request(b"{\"mode\":\"stats\"", false),
            Parse::Incomplete
        );
        assert_eq!(
            parse_request(b"{\"mode\":\"stats\"}\n", false),
            Parse::Done(Mode::Stats.into())
        );
        assert_eq!(
            parse_request(b"{\"mode\":\"dump\",\"n\":5}", true),
            Parse::Done(Request {
                mode: Mode::Dump,
                tail: Some(5)
            })
        );
        assert!(matches!(
            parse_request(b"{\"mode\":\"dump\",\"x\":1}\n", false),
            Parse::Error(e) if e.contains("unknown field")
        ));
        assert!(matches!(parse_request(b"{nope}\n", false), Parse::Error(_)));
        let long = vec![b'{'; MAX_REQUEST_LEN + 1];
        assert!(matches!(parse_request(&long, false), Parse::Error(_)));
    }
}
