//! The HTTP exchange of `journal+http://` and `journal+https://` routes,
//! as `systemd-journal-remote --listen-http(s)` speaks it: each batch of
//! entries (in the export format, [`super::journal`]) is one
//! `POST /upload` on a kept-alive connection, and the next batch waits for
//! the answer to this one.
//!
//! So a batch holds what the ring had when the previous answer came: one
//! entry at a time when logs trickle (each goes at once), up to
//! [`BATCH_BYTES`] under load. Only a 2xx answer delivers the batch; the
//! route takes any other answer, a broken connection or no answer within
//! [`ANSWER_TIMEOUT`] as a failure, and sends the batch again on the next
//! connection. A server that closes the connection between uploads, after
//! answering one (an idle timeout, `Connection: close`), is within HTTP's
//! rules: the route opens another at once, without a warning.

use std::collections::VecDeque;
use std::io::Write as _;
use std::time::{Duration, Instant};

use super::journal::Device;
use super::link::Mark;
use super::lost::Lost;
use super::spec::RouteSpec;

/// A batch's body, at most (give or take the last entry).
pub const BATCH_BYTES: usize = 256 << 10;
/// How long a request may wait for its answer, from when it was queued.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest answer read (journal-remote's are a line of text).
const ANSWER_MAX: usize = 64 << 10;

/// The receiver's answer to one upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub code: u16,
    /// The body, which says why when it is not a 2xx.
    pub text: String,
    /// The receiver said it closes the connection after this answer
    /// (`Connection: close`, or HTTP/1.0 without keep-alive): the next
    /// upload goes on a new one, never into the close.
    pub closes: bool,
}

impl Answer {
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

/// One journal route's uploads.
pub struct Upload {
    /// The `Host:` header.
    host: String,
    pub device: Device,
    /// An answer read in part.
    answer: Vec<u8>,
    /// When the request awaiting its answer was queued.
    since: Option<Instant>,
    /// The last answer on this connection accepted the upload it
    /// answered.
    accepted: bool,
}

impl Upload {
    pub fn new(spec: &RouteSpec) -> Upload {
        let host = if spec.host.contains(':') {
            format!("[{}]:{}", spec.host, spec.port)
        } else {
            format!("{}:{}", spec.host, spec.port)
        };
        Upload {
            host,
            device: Device::this(),
            answer: Vec::new(),
            since: None,
            accepted: false,
        }
    }

    /// A request is out and its answer not in.
    pub fn busy(&self) -> bool {
        self.since.is_some()
    }

    /// When the answer is overdue.
    pub fn deadline(&self) -> Option<Instant> {
        self.since.map(|t| t + ANSWER_TIMEOUT)
    }

    /// The batch's body is in `out`, with `marks` for its entries: put the
    /// request line and headers before it (the marks' offsets move with
    /// it), and return the mark that the answer settles.
    pub(super) fn seal(
        &mut self,
        out: &mut Vec<u8>,
        marks: &mut VecDeque<Mark>,
        now: Instant,
    ) -> Mark {
        let mut head = Vec::with_capacity(160);
        let _ = write!(
            head,
            "POST /upload HTTP/1.1\r\nHost: {}\r\nUser-Agent: ringlogd/{}\r\n\
             Content-Type: application/vnd.fdo.journal\r\nContent-Length: {}\r\n\r\n",
            self.host,
            env!("CARGO_PKG_VERSION"),
            out.len()
        );
        out.splice(0..0, head.iter().copied());
        let mut batch = Mark {
            end: out.len(),
            cursor: 0,
            entries: 0,
            notice: Lost::default(),
            txnr: 0,
        };
        for m in marks.iter_mut() {
            m.end += head.len();
            batch.cursor = m.cursor;
            batch.entries += m.entries;
            batch.notice.merge(m.notice);
        }
        self.since = Some(now);
        batch
    }

    /// Take bytes the receiver sent: the answer, once it is whole.
    pub fn take(&mut self, bytes: &[u8]) -> Result<Option<Answer>, String> {
        self.answer.extend_from_slice(bytes);
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut headers);
            let head_len = match parsed.parse(&self.answer) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) if self.answer.len() < ANSWER_MAX => return Ok(None),
                Ok(httparse::Status::Partial) => {
                    return Err(format!("an HTTP answer longer than {ANSWER_MAX} bytes"))
                }
                Err(e) => return Err(format!("not an HTTP answer: {e}")),
            };
            let code = parsed.code.unwrap_or(0);
            if (100..200).contains(&code) {
                // 100 Continue and the like: the real answer follows.
                self.answer.drain(..head_len);
                continue;
            }
            let header = |name: &str| {
                parsed
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
            };
            let connection = header("Connection")
                .unwrap_or_default()
                .to_ascii_lowercase();
            let closes = connection.split(',').any(|t| t.trim() == "close")
                || (parsed.version == Some(0) && !connection.contains("keep-alive"));
            if header("Transfer-Encoding").is_some() {
                return Err(format!("answer {code} in a transfer encoding (not read)"));
            }
            let body = match header("Content-Length").map(|v| v.parse::<usize>()) {
                Some(Ok(n)) if n <= ANSWER_MAX => n,
                Some(_) => return Err(format!("answer {code} with a bad Content-Length")),
                None if code == 204 || code == 304 => 0,
                None => return Err(format!("answer {code} without a Content-Length")),
            };
            if self.answer.len() < head_len + body {
                return Ok(None);
            }
            let text = String::from_utf8_lossy(&self.answer[head_len..head_len + body])
                .trim()
                .to_owned();
            self.answer.drain(..head_len + body);
            let answer = Answer { code, text, closes };
            // Only an answer to a request counts: a server that talks
            // unasked is not let off the backoff.
            self.accepted = self.since.take().is_some() && answer.accepted();
            return Ok(Some(answer));
        }
    }

    /// The connection is gone: so is what was under way on it. Whether
    /// it ended between uploads after the receiver accepted one, as HTTP
    /// servers close connections.
    pub fn reset(&mut self) -> bool {
        let between = self.since.is_none() && self.accepted;
        self.answer.clear();
        self.since = None;
        self.accepted = false;
        between
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(end: usize, cursor: u64) -> Mark {
        Mark {
            end,
            cursor,
            entries: 1,
            notice: Lost::default(),
            txnr: 0,
        }
    }

    #[test]
    fn a_batch_becomes_one_post_and_its_marks_move_behind_the_head() {
        let spec = RouteSpec::parse("journal+http://[::1]:19532").unwrap();
        let mut u = Upload::new(&spec);
        let mut out = b"MESSAGE=a\n\nMESSAGE=b\n\n".to_vec();
        let mut marks: VecDeque<Mark> = [mark(11, 5), mark(22, 6)].into();
        let batch = u.seal(&mut out, &mut marks, Instant::now());
        let text = String::from_utf8(out.clone()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /upload HTTP/1.1\r\nHost: [::1]:19532\r\n"));
        assert!(head.contains("\r\nContent-Type: application/vnd.fdo.journal\r\n"));
        assert!(head.ends_with("\r\nContent-Length: 22"));
        assert_eq!(body, "MESSAGE=a\n\nMESSAGE=b\n\n");
        let h = head.len() + 4;
        assert_eq!((marks[0].end, marks[1].end), (h + 11, h + 22));
        assert_eq!((batch.end, batch.cursor, batch.entries), (out.len(), 6, 2));
        assert!(u.busy());
    }

    #[test]
    fn answers_are_read_whole_however_they_arrive() {
        let spec = RouteSpec::parse("journal+http://h:1").unwrap();
        let mut u = Upload::new(&spec);
        u.since = Some(Instant::now());
        let answer = b"HTTP/1.1 202 Accepted\r\nContent-Length: 4\r\n\r\nOK.\n";
        for b in &answer[..answer.len() - 1] {
            assert_eq!(u.take(std::slice::from_ref(b)).unwrap(), None);
        }
        let a = u.take(&answer[answer.len() - 1..]).unwrap().unwrap();
        assert_eq!((a.code, a.text.as_str(), a.accepted()), (202, "OK.", true));
        assert!(!u.busy());
        let refused = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 415 Unsupported Media Type\r\n\
                        Content-Length: 9\r\n\r\nwrong type";
        let a = u.take(refused).unwrap().unwrap();
        assert_eq!(
            (a.code, a.text.as_str(), a.accepted()),
            (415, "wrong typ", false)
        );
        assert!(u.take(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(!u.reset(), "a refusal last: not a close between uploads");
    }

    #[test]
    fn an_answer_says_whether_the_receiver_closes_after_it() {
        let spec = RouteSpec::parse("journal+http://h:1").unwrap();
        let closes = |answer: &[u8]| Upload::new(&spec).take(answer).unwrap().unwrap().closes;
        assert!(!closes(
            b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(closes(
            b"HTTP/1.1 202 Accepted\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(closes(
            b"HTTP/1.1 200 OK\r\nconnection: upgrade, close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(closes(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!closes(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        ));
    }

    #[test]
    fn a_close_after_an_accepted_upload_is_between_uploads() {
        let spec = RouteSpec::parse("journal+http://h:1").unwrap();
        let mut u = Upload::new(&spec);
        let ok = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
        u.take(ok).unwrap().unwrap();
        assert!(!u.reset(), "an answer nobody asked for");
        u.since = Some(Instant::now());
        u.take(ok).unwrap().unwrap();
        assert!(u.reset());
        assert!(!u.reset(), "once per connection");
        u.since = Some(Instant::now());
        assert!(!u.reset(), "an upload in flight");
    }
}
