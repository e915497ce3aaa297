//! The HTTP/1.1 dialect, so `curl --unix-socket` needs no special client.
//! Requests are parsed with `httparse`; every answer closes the connection.
//!
//! `GET /logs` takes the query's options as parameters (`follow=1` dumps
//! then streams, chunked, until the client leaves), `GET /stats` the
//! counters, `GET /metrics` the same as Prometheus metrics, `POST /pause`, `/resume` and `/clear` change the ring, and
//! `POST /intake/NAME/close` closes the intake fds passed as NAME
//! (percent-encoded). `GET /captures` lists the captures held,
//! `GET /captures/ID` dumps one (with the parameters of `/logs`, but
//! `follow`) and `POST /captures/ID/release` releases it.

use super::request::{Dialect, Mode, Parse, Query, Request, MAX_REQUEST_LEN};
use crate::control::Control;
use crate::view::format::Format;

/// The most header lines read from one request.
const MAX_HEADERS: usize = 64;

/// The method and target of the HTTP request whose head is in `buf`:
/// `Ok(None)` while the head is incomplete (and no longer than
/// `max_len`), or the status and reason to refuse it with.
pub fn request_line(
    buf: &[u8],
    eof: bool,
    max_len: usize,
) -> Result<Option<(&str, &str)>, (u16, String)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) if buf.len() > max_len => {
            return Err((431, "request head too large".into()))
        }
        Ok(httparse::Status::Partial) if eof => {
            return Err((400, "incomplete HTTP request".into()))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err((400, format!("bad HTTP request: {e}"))),
    }
    Ok(Some((req.method.unwrap_or(""), req.path.unwrap_or(""))))
}

pub(crate) fn parse(buf: &[u8], eof: bool, now_ns: i64) -> Parse {
    let (method, target) = match request_line(buf, eof, MAX_REQUEST_LEN) {
        Ok(Some(line)) => line,
        Ok(None) => return Parse::Incomplete,
        Err((status, why)) => return Parse::error(Dialect::Http, status, why),
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let request = match (method, path) {
        ("GET", "/logs") => logs_query(query, now_ns).map(|q| Request::Read(Box::new(q))),
        ("GET", "/stats") => Ok(Request::Stats),
        ("GET", "/metrics") => Ok(Request::Metrics),
        ("POST", "/pause") => Ok(Request::Control(Control::Pause)),
        ("POST", "/resume") => Ok(Request::Control(Control::Resume)),
        ("POST", "/clear") => Ok(Request::Control(Control::Clear)),
        ("GET", "/captures") => Ok(Request::Captures),
        (m, p) if p.starts_with(CAPTURES_PREFIX) => match capture_route(m, p) {
            Ok(Some(CaptureRoute::Read(id))) => logs_query(query, now_ns).map(|mut q| {
                q.capture = Some(id);
                Request::Read(Box::new(q))
            }),
            Ok(Some(CaptureRoute::Release(id))) => {
                Ok(Request::Control(Control::ReleaseCapture(id)))
            }
            Ok(None) => return Parse::error(Dialect::Http, 405, format!("{method} is not allowed on {path}")),
            Err(why) => return Parse::error(Dialect::Http, 404, why),
        },
        (m, p) if intake_close_target(p).is_some() => {
            match (m, intake_name(p)) {
                ("POST", Ok(name)) => Ok(Request::Control(Control::DropFd(name))),
                ("POST", Err(why)) => Err(why),
                _ => {
                    return Parse::error(
                        Dialect::Http,
                        405,
                        format!("{method} is not allowed on {path}: use POST"),
                    )
                }
            }
        }
        (_, "/logs" | "/stats" | "/metrics" | "/pause" | "/resume" | "/clear" | "/captures") => {
            return Parse::error(Dialect::Http, 405, format!("{method} is not allowed on {path}"))
        }
        _ => {
            return Parse::error(
                Dialect::Http,
                404,
                format!("no such endpoint {path:?}: try GET /logs, GET /stats, GET /metrics, GET /captures, GET /captures/ID, POST /pause, /resume, /clear, /captures/ID/release or /intake/NAME/close"),
            )
        }
    };
    match request {
        Ok(r) => Parse::Done(r, Dialect::Http),
        Err(why) => Parse::error(Dialect::Http, 400, why),
    }
}

const CAPTURES_PREFIX: &str = "/captures/";

/// What `/captures/ID...` asks of capture ID.
enum CaptureRoute {
    Read(u64),
    Release(u64),
}

/// `GET /captures/ID` or `POST /captures/ID/release`: `Ok(None)` for
/// another method on one of them, `Err` for a path that is neither.
fn capture_route(method: &str, path: &str) -> Result<Option<CaptureRoute>, String> {
    let rest = path.strip_prefix(CAPTURES_PREFIX).unwrap_or_default();
    let (id, release) = match rest.strip_suffix("/release") {
        Some(id) => (id, true),
        None => (rest, false),
    };
    let id: u64 = id.parse().map_err(|_| {
        format!("no such endpoint {path:?}: a capture is /captures/ID, ID a whole number")
    })?;
    Ok(match (method, release) {
        ("GET", false) => Some(CaptureRoute::Read(id)),
        ("POST", true) => Some(CaptureRoute::Release(id)),
        _ => None,
    })
}

const INTAKE_PREFIX: &str = "/intake/";
const CLOSE_SUFFIX: &str = "/close";

/// The raw NAME of a path `/intake/NAME/close`.
fn intake_close_target(path: &str) -> Option<&str> {
    path.strip_prefix(INTAKE_PREFIX)?.strip_suffix(CLOSE_SUFFIX)
}

/// NAME of `/intake/NAME/close`, percent-decoded ('+' is itself).
fn intake_name(path: &str) -> Result<String, String> {
    let raw = intake_close_target(path).unwrap_or_default();
    let name: String = form_urlencoded::parse(format!("n={}", raw.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if name.is_empty() {
        return Err("POST /intake/NAME/close needs a NAME".into());
    }
    Ok(name)
}

fn logs_query(query: &str, now_ns: i64) -> Result<Query, String> {
    let mut q = Query::new(Mode::Dump);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "follow" => match value.as_ref() {
                "1" | "true" | "yes" | "" => q.mode = Mode::DumpFollow,
                "0" | "false" | "no" => q.mode = Mode::Dump,
                v => return Err(format!("follow: {v:?} is not 1 or 0")),
            },
            k => q.set(k, &value, now_ns).map_err(|e| {
                if e.starts_with("unknown filter") {
                    format!("unknown parameter {k:?}")
                } else {
                    e
                }
            })?,
        }
    }
    Ok(q)
}

/// The status line's reason phrase.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// A whole response with a JSON body.
pub fn json_response(status: u16, body: &serde_json::Value) -> Vec<u8> {
    let body = crate::view::json::value_line(body);
    response(status, "application/json", body.as_bytes())
}

/// A whole response: `body`, of type `content_type`, then the connection
/// closes.
pub fn response(status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The head of a streamed `/logs` answer; the body follows in chunks.
pub fn stream_head(format: Format) -> Vec<u8> {
    let ctype = match format {
        Format::Json => "application/x-ndjson",
        _ => "text/plain; charset=utf-8",
    };
    format!("HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

/// Wrap `data` as one chunk.
pub fn chunk(data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The chunk that ends a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::request::parse_request;

    fn status(p: Parse) -> u16 {
        match p {
            Parse::Error { status, .. } => status,
            Parse::Done(..) => 200,
            Parse::Incomplete => 0,
        }
    }

    #[test]
    fn routes() {
        let p = parse_request(
            b"GET /logs?priority=err&n=20&source=onboot.%2A HTTP/1.1\r\nHost: x\r\n\r\n",
            false,
            0,
        );
        let Parse::Done(Request::Read(q), Dialect::Http) = p else {
            panic!("{p:?}")
        };
        assert_eq!((q.mode, q.tail), (Mode::Dump, Some(20)));
        assert!(q.filter.source.unwrap().is_match("onboot.x"));
        let p = parse_request(b"GET /logs?follow=1&format=cat HTTP/1.1\r\n\r\n", false, 0);
        let Parse::Done(Request::Read(q), _) = p else {
            panic!()
        };
        assert_eq!((q.mode, q.format), (Mode::DumpFollow, Format::Cat));
        assert!(matches!(
            parse_request(b"POST /clear HTTP/1.1\r\n\r\n", false, 0),
            Parse::Done(Request::Control(Control::Clear), _)
        ));
        assert!(matches!(
            parse_request(b"GET /stats HTTP/1.0\r\n\r\n", false, 0),
            Parse::Done(Request::Stats, _)
        ));
        assert!(matches!(
            parse_request(b"GET /metrics HTTP/1.1\r\n\r\n", false, 0),
            Parse::Done(Request::Metrics, _)
        ));
        assert!(matches!(
            parse_request(b"POST /intake/onboot.a%2Fb+c.out/close HTTP/1.1\r\n\r\n", false, 0),
            Parse::Done(Request::Control(Control::DropFd(n)), _) if n == "onboot.a/b+c.out"
        ));
        assert!(matches!(
            parse_request(b"GET /captures HTTP/1.1\r\n\r\n", false, 0),
            Parse::Done(Request::Captures, _)
        ));
        let p = parse_request(b"GET /captures/4?n=3&format=cat HTTP/1.1\r\n\r\n", false, 0);
        let Parse::Done(Request::Read(q), _) = p else {
            panic!("{p:?}")
        };
        assert_eq!(
            (q.capture, q.tail, q.format),
            (Some(4), Some(3), Format::Cat)
        );
        assert!(matches!(
            parse_request(b"POST /captures/4/release HTTP/1.1\r\n\r\n", false, 0),
            Parse::Done(Request::Control(Control::ReleaseCapture(4)), _)
        ));
        for (request, want) in [
            (&b"GET /captures/4/release HTTP/1.1\r\n\r\n"[..], 405),
            (b"POST /captures/4 HTTP/1.1\r\n\r\n", 405),
            (b"POST /captures HTTP/1.1\r\n\r\n", 405),
            (b"GET /captures/four HTTP/1.1\r\n\r\n", 404),
            (b"GET /captures/ HTTP/1.1\r\n\r\n", 404),
            (b"GET /captures/4?follow=x HTTP/1.1\r\n\r\n", 400),
        ] {
            let got = status(parse_request(request, false, 0));
            assert_eq!(got, want, "{}", String::from_utf8_lossy(request));
        }
        // (request, the client has closed its side, the status it gets; 0 while
        // the request is incomplete)
        let cases: [(&[u8], bool, u16); 11] = [
            (b"GET /intake/x/close HTTP/1.1\r\n\r\n", false, 405),
            (b"POST /intake//close HTTP/1.1\r\n\r\n", false, 400),
            (b"POST /intake/close HTTP/1.1\r\n\r\n", false, 404),
            (b"GET /logs HTTP/1.1\r\n", false, 0),
            (b"GET /logs HTTP/1.1\r\n", true, 400),
            (b"GET /nope HTTP/1.1\r\n\r\n", false, 404),
            (b"DELETE /logs HTTP/1.1\r\n\r\n", false, 405),
            (b"POST /metrics HTTP/1.1\r\n\r\n", false, 405),
            (b"GET /logs?bogus=1 HTTP/1.1\r\n\r\n", false, 400),
            (b"GET /logs?n=x HTTP/1.1\r\n\r\n", false, 400),
            (b"GARBAGE\x01\x02\r\n\r\n", false, 400),
        ];
        for (request, closed, want) in cases {
            let got = status(parse_request(request, closed, 0));
            assert_eq!(got, want, "{}", String::from_utf8_lossy(request));
        }
        let big = [
            b"GET /logs HTTP/1.1\r\nX: ".as_slice(),
            &vec![b'a'; MAX_REQUEST_LEN],
        ]
        .concat();
        assert_eq!(status(parse_request(&big, false, 0)), 431);
    }

    #[test]
    fn chunks() {
        let mut out = Vec::new();
        chunk(b"hello world!", &mut out);
        assert_eq!(out, b"c\r\nhello world!\r\n");
    }
}
