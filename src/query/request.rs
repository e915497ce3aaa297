//! What a query client asks for, read from the first bytes it sends.
//!
//! The first byte picks the dialect: memlogd's single mode byte (`0`, `1`,
//! `2` as raw byte values, as LinuxKit's `logread` sends them; the ASCII
//! digits work too, for `printf 0 | socat`), `{` for one JSON line, or an
//! HTTP/1.1 request line for `curl --unix-socket`. All three end in the same
//! [`Request`]. A mode byte may be followed, in the same write, by a JSON
//! line of read options (ringlogd's `logread` asks for its format so): a
//! client that sends the byte alone, as LinuxKit's `logread` does, is
//! answered as memlogd answers, and memlogd itself reads only the byte.

use crate::control::Control;
use serde_json::{Map, Value};

use super::http;
use crate::view::filter::Filter;
use crate::view::format::Format;

/// The longest request accepted before the client is told it is too long.
pub const MAX_REQUEST_LEN: usize = 64 << 10;

/// The ways of reading the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every matching entry held now, then close.
    Dump,
    /// Matching entries that arrive from now on, until the client leaves.
    Follow,
    /// Every matching entry held now, then each new one, with no gap and
    /// no duplicate.
    DumpFollow,
}

/// A read of the ring: which entries, from where, in what format.
#[derive(Clone, Debug)]
pub struct Query {
    pub mode: Mode,
    /// Only the newest N matching entries of the dump.
    pub tail: Option<u64>,
    /// Resume after this sequence number (a cursor from an earlier read).
    pub after_seq: Option<u64>,
    pub filter: Filter,
    pub format: Format,
    /// Answer in frames that say how far the reader got (see
    /// [`crate::view::frames`]); for the JSON dialect and the mode byte.
    pub framed: bool,
    /// The time zone the reader formats local times in (its `TZ`, empty
    /// for none), when it says.
    pub zone: Option<String>,
    /// Read only this capture's entries (a dump; see [`super::captures`]).
    pub capture: Option<u64>,
    /// Only the entries of this range of sequence numbers (set from
    /// `capture`): holes there that were there when the reader asked are
    /// nothing it missed, as in the whole ring.
    pub within: Option<(u64, u64)>,
}

impl Query {
    pub fn new(mode: Mode) -> Query {
        Query {
            mode,
            tail: None,
            after_seq: None,
            filter: Filter::default(),
            format: Format::Json,
            framed: false,
            zone: None,
            capture: None,
            within: None,
        }
    }

    /// Set one option by its key, as JSON requests and HTTP query strings
    /// name them. `now_ns` anchors relative times.
    pub fn set(&mut self, key: &str, value: &str, now_ns: i64) -> Result<(), String> {
        let number = |v: &str| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| format!("{key}: {v:?} is not a whole number"))
        };
        match key {
            "n" => self.tail = Some(number(value)?),
            "after_seq" => self.after_seq = Some(number(value)?),
            "format" => self.format = Format::parse(value)?,
            "frames" => {
                self.framed = match value.trim() {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    v => return Err(format!("frames: {v:?} is not 0 or 1")),
                }
            }
            "tz" => self.zone = Some(value.to_owned()),
            "capture" => self.capture = Some(number(value)?),
            _ => self.filter.set(key, value, now_ns)?,
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub enum Request {
    /// Boxed: a query is large beside the other requests.
    Read(Box<Query>),
    /// The captures held, as JSON.
    Captures,
    Stats,
    /// The stats as Prometheus metrics (HTTP only).
    Metrics,
    Control(Control),
}

/// Which dialect a request came in: decides how answers are framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Memlogd,
    Json,
    Http,
}

/// The outcome of reading the bytes received so far.
#[derive(Debug)]
pub enum Parse {
    /// More bytes are needed.
    Incomplete,
    Done(Request, Dialect),
    /// The request is refused: an HTTP status for the HTTP dialect, and
    /// why, for the client.
    Error {
        dialect: Dialect,
        status: u16,
        why: String,
    },
}

impl Parse {
    pub(crate) fn error(dialect: Dialect, status: u16, why: impl Into<String>) -> Parse {
        Parse::Error {
            dialect,
            status,
            why: why.into(),
        }
    }
}

/// Read a request from the bytes received so far. `eof` says the client
/// has stopped sending, so an unterminated JSON line is complete.
pub fn parse_request(buf: &[u8], eof: bool, now_ns: i64) -> Parse {
    // A client that leaves without a word (a liveness probe) is not an
    // error: the caller closes it when `eof` and still `Incomplete`.
    let Some(&first) = buf.first() else {
        return Parse::Incomplete;
    };
    let memlogd = |mode| match buf.get(1) {
        Some(b'{') => parse_options(mode, &buf[1..], eof, now_ns),
        _ => Parse::Done(Request::Read(Box::new(Query::new(mode))), Dialect::Memlogd),
    };
    match first {
        0 | b'0' => memlogd(Mode::Dump),
        1 | b'1' => memlogd(Mode::Follow),
        2 | b'2' => memlogd(Mode::DumpFollow),
        b'{' => parse_json_line(buf, eof, now_ns),
        b'A'..=b'Z' => http::parse(buf, eof, now_ns),
        other => Parse::error(
            Dialect::Memlogd,
            400,
            format!("unknown mode byte 0x{other:02x}: send 0 (dump), 1 (follow), 2 (dump and follow), a JSON line or an HTTP request"),
        ),
    }
}

/// The JSON line of read options after a mode byte, answered in the JSON
/// dialect.
fn parse_options(mode: Mode, buf: &[u8], eof: bool, now_ns: i64) -> Parse {
    let map = match json_object(buf, eof) {
        Ok(Some(map)) => map,
        Ok(None) => return Parse::Incomplete,
        Err((status, why)) => return Parse::error(Dialect::Json, status, why),
    };
    let mut q = Query::new(mode);
    match set_all(&mut q, &map, now_ns) {
        Ok(()) => Parse::Done(Request::Read(Box::new(q)), Dialect::Json),
        Err(why) => Parse::error(Dialect::Json, 400, why),
    }
}

fn parse_json_line(buf: &[u8], eof: bool, now_ns: i64) -> Parse {
    let map = match json_object(buf, eof) {
        Ok(Some(map)) => map,
        Ok(None) => return Parse::Incomplete,
        Err((status, why)) => return Parse::error(Dialect::Json, status, why),
    };
    match json_request(map, now_ns) {
        Ok(r) => Parse::Done(r, Dialect::Json),
        Err(why) => Parse::error(Dialect::Json, 400, why),
    }
}

/// The JSON object on the first line of `buf`; `None` until it is whole.
/// `Err` holds the HTTP status and why, to refuse the request with.
fn json_object(buf: &[u8], eof: bool) -> Result<Option<Map<String, Value>>, (u16, String)> {
    let line = match buf.iter().position(|&b| b == b'\n') {
        Some(end) => &buf[..end],
        None if buf.len() > MAX_REQUEST_LEN => {
            return Err((
                413,
                format!("request line longer than {MAX_REQUEST_LEN} bytes"),
            ))
        }
        None if eof => buf,
        None => return Ok(None),
    };
    serde_json::from_slice(line)
        .map(Some)
        .map_err(|e| (400, format!("bad JSON request: {e}")))
}

/// Set every key of a read request on `q`.
fn set_all(q: &mut Query, map: &Map<String, Value>, now_ns: i64) -> Result<(), String> {
    for (key, value) in map {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => return Err(format!("{key}: expected a string or a number, got {other}")),
        };
        q.set(key, &text, now_ns).map_err(|e| {
            if e.starts_with("unknown filter") {
                format!("unknown key {key:?}")
            } else {
                e
            }
        })?;
    }
    Ok(())
}

fn json_request(mut map: Map<String, Value>, now_ns: i64) -> Result<Request, String> {
    let mode = match map.remove("mode") {
        None => "dump".to_owned(),
        Some(Value::String(m)) => m,
        Some(other) => return Err(format!("mode: expected a string, got {other}")),
    };
    // Their one key, taken out before the others are checked.
    let drop_name = (mode == "drop-fd").then(|| map.remove("name")).flatten();
    let release_id = (mode == "release").then(|| map.remove("capture")).flatten();
    let read = |mode| {
        let mut q = Query::new(mode);
        set_all(&mut q, &map, now_ns)?;
        Ok(Request::Read(Box::new(q)))
    };
    let bare = |r: Request| match map.keys().next() {
        Some(k) => Err(format!("unknown key {k:?} for this mode")),
        None => Ok(r),
    };
    match mode.as_str() {
        "dump" => read(Mode::Dump),
        "follow" => read(Mode::Follow),
        "dump+follow" => read(Mode::DumpFollow),
        "stats" => bare(Request::Stats),
        "captures" => bare(Request::Captures),
        "release" => match release_id {
            Some(v) => bare(Request::Control(Control::ReleaseCapture(capture_id(&v)?))),
            None => Err("release needs the \"capture\" id to release".into()),
        },
        "pause" => bare(Request::Control(Control::Pause)),
        "resume" => bare(Request::Control(Control::Resume)),
        "clear" => bare(Request::Control(Control::Clear)),
        "drop-fd" => match drop_name {
            Some(Value::String(name)) => bare(Request::Control(Control::DropFd(name))),
            Some(other) => Err(format!("name: expected a string, got {other}")),
            None => Err("drop-fd needs the \"name\" of the intake fds to close".into()),
        },
        m => Err(format!(
            "unknown mode {m:?}: use dump, follow, dump+follow, stats, captures, pause, resume, clear, \
             release or drop-fd"
        )),
    }
}

/// A capture id as a JSON request gives it: a whole number, or one as a
/// string, as every other number in a request may be.
fn capture_id(v: &Value) -> Result<u64, String> {
    let id = match v {
        Value::String(s) => s.trim().parse().ok(),
        _ => v.as_u64(),
    };
    id.ok_or_else(|| format!("capture: {v} is not a capture id (a whole number)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(p: Parse) -> (Request, Dialect) {
        match p {
            Parse::Done(r, d) => (r, d),
            other => panic!("not done: {other:?}"),
        }
    }

    fn error(p: Parse) -> String {
        match p {
            Parse::Error { why, .. } => why,
            other => panic!("not an error: {other:?}"),
        }
    }

    fn mode(p: Parse) -> Mode {
        match done(p).0 {
            Request::Read(q) => q.mode,
            other => panic!("not a read: {other:?}"),
        }
    }

    #[test]
    fn memlogd_mode_bytes() {
        assert_eq!(mode(parse_request(&[0], false, 0)), Mode::Dump);
        assert_eq!(mode(parse_request(&[1], false, 0)), Mode::Follow);
        assert_eq!(mode(parse_request(&[2], false, 0)), Mode::DumpFollow);
        assert_eq!(mode(parse_request(b"2", false, 0)), Mode::DumpFollow);
        assert!(matches!(parse_request(&[], false, 0), Parse::Incomplete));
        for bad in [3u8, 0xff, b'x', b'\n'] {
            assert!(error(parse_request(&[bad], false, 0)).contains("mode byte"));
        }
    }

    #[test]
    fn a_mode_byte_may_carry_read_options() {
        let (r, d) = done(parse_request(
            b"\x02{\"format\":\"short\",\"frames\":1,\"tz\":\"\",\"app\":\"a\"}\n",
            false,
            0,
        ));
        let Request::Read(q) = r else { panic!() };
        assert_eq!((q.mode, d), (Mode::DumpFollow, Dialect::Json));
        assert_eq!(
            (q.format, q.framed, q.zone.as_deref()),
            (Format::Short, true, Some(""))
        );
        assert_eq!(q.filter.app.as_deref(), Some("a"));
        assert!(matches!(
            parse_request(b"\0{\"format\"", false, 0),
            Parse::Incomplete
        ));
        assert!(error(parse_request(b"\0{\"frames\":2}\n", false, 0)).contains("frames"));
        assert!(error(parse_request(b"\0{\"mode\":\"stats\"}\n", false, 0)).contains("mode"));
        // The byte alone, or with anything but options, is memlogd's.
        for memlogd in [&b"\0"[..], b"0\n", b"1x"] {
            let (r, d) = done(parse_request(memlogd, false, 0));
            assert_eq!(d, Dialect::Memlogd);
            let Request::Read(q) = r else { panic!() };
            assert_eq!((q.format, q.framed), (Format::Json, false));
        }
    }

    #[test]
    fn json_requests() {
        assert!(matches!(
            parse_request(b"{\"mode\":\"stats\"", false, 0),
            Parse::Incomplete
        ));
        assert!(matches!(
            done(parse_request(b"{\"mode\":\"stats\"}\n", false, 0)).0,
            Request::Stats
        ));
        let (r, d) = done(parse_request(
            br#"{"mode":"dump","n":5,"priority":"err","source":"onboot.*","after_seq":"7","format":"short"}"#,
            true,
            0,
        ));
        assert_eq!(d, Dialect::Json);
        let Request::Read(q) = r else { panic!() };
        assert_eq!(q.tail, Some(5));
        assert_eq!(q.after_seq, Some(7));
        assert_eq!(q.format, Format::Short);
        assert_eq!(q.filter.severity, Some((0, 3)));
        assert!(matches!(
            done(parse_request(b"{\"mode\":\"pause\"}\n", false, 0)).0,
            Request::Control(Control::Pause)
        ));
        assert!(
            error(parse_request(b"{\"mode\":\"dump\",\"x\":1}\n", false, 0))
                .contains("unknown key")
        );
        assert!(
            error(parse_request(b"{\"mode\":\"stats\",\"n\":1}\n", false, 0))
                .contains("unknown key")
        );
        assert!(error(parse_request(b"{\"priority\":\"loud\"}\n", false, 0)).contains("loud"));
        assert!(error(parse_request(b"{\"n\":[1]}\n", false, 0)).contains("expected"));
        assert!(error(parse_request(b"{nope}\n", false, 0)).contains("bad JSON"));
        assert!(error(parse_request(b"{\"mode\":\"x\"}\n", false, 0)).contains("unknown mode"));
        assert!(matches!(
            done(parse_request(br#"{"mode":"drop-fd","name":"yes.out"}"#, true, 0)).0,
            Request::Control(Control::DropFd(n)) if n == "yes.out"
        ));
        assert!(error(parse_request(br#"{"mode":"drop-fd"}"#, true, 0)).contains("name"));
        assert!(error(parse_request(br#"{"mode":"drop-fd","name":1}"#, true, 0)).contains("name"));
        assert!(error(parse_request(
            br#"{"mode":"drop-fd","name":"a","n":1}"#,
            true,
            0
        ))
        .contains("unknown key"));
        assert!(matches!(
            done(parse_request(b"{\"mode\":\"captures\"}", true, 0)).0,
            Request::Captures
        ));
        for release in [
            &br#"{"mode":"release","capture":3}"#[..],
            br#"{"mode":"release","capture":"3"}"#,
        ] {
            assert!(matches!(
                done(parse_request(release, true, 0)).0,
                Request::Control(Control::ReleaseCapture(3))
            ));
        }
        for bad in [
            &br#"{"mode":"release"}"#[..],
            br#"{"mode":"release","capture":-1}"#,
            br#"{"mode":"release","capture":"x"}"#,
        ] {
            assert!(error(parse_request(bad, true, 0)).contains("capture"));
        }
        let Request::Read(q) = done(parse_request(br#"{"capture":2,"format":"cat"}"#, true, 0)).0
        else {
            panic!()
        };
        assert_eq!(
            (q.capture, q.within, q.format),
            (Some(2), None, Format::Cat)
        );
        let long = vec![b'{'; MAX_REQUEST_LEN + 1];
        assert!(error(parse_request(&long, false, 0)).contains("longer"));
    }
}
