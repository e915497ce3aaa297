//! A syslog TCP byte stream into frames (RFC 6587), one message each.
//!
//! The framing is chosen per message by its first byte, as RFC 6587 §3.4
//! suggests and rsyslog and syslog-ng do: a digit `1`-`9` starts
//! octet-counting (`MSG-LEN SP MSG`), anything else (normally `<`) a frame
//! that ends at LF or NUL. A syslog message starts with `<PRI>`, so digits
//! not followed by a space and a `<` are the start of an LF-framed line
//! after all: a plain-text sender whose line starts with `2026 was...`
//! does not have its next 2026 bytes swallowed.
//!
//! Memory is bounded per stream: a frame longer than the limit keeps its
//! first `limit` bytes, is flagged cut, and the rest of it is skipped, so a
//! 1 MiB line without a newline, or a garbage length, costs at most `limit`
//! bytes. Pure: no I/O, so it is unit-tested and fuzzed alone.

/// Where the framer is inside the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum State {
    /// Between frames.
    Start,
    /// Reading the digits of an octet count (they are also in `buf`, to
    /// become the start of a line if no space and `<` follow).
    Count { value: usize, digits: u8 },
    /// After the count's space, which is in `buf` too: a `<` must follow.
    CountSpace { value: usize },
    /// Reading the `left` remaining bytes of an octet-counted frame.
    Octets { left: usize },
    /// Reading a frame that ends at LF or NUL.
    Line,
}

/// Octet counts have at most this many digits (just under 1 GB): longer
/// runs of digits are text. The count's digits and space are held until
/// the `<` decides, so `buf` may hold this many bytes plus one beyond the
/// limit.
const MAX_COUNT_DIGITS: u8 = 9;

/// Splits one stream into frames. Each connection has its own.
#[derive(Debug)]
pub struct Framer {
    limit: usize,
    state: State,
    /// The current frame's bytes so far (at most `limit`), when it did not
    /// arrive in one piece.
    buf: Vec<u8>,
    /// The current frame went past `limit`.
    cut: bool,
}

/// A framer's state between two reads, for handing a connection over to
/// another process ([`Framer::saved`], [`Framer::resume`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedFramer {
    state: State,
    buf: Vec<u8>,
    cut: bool,
}

impl Framer {
    /// What this framer holds of an unfinished frame.
    pub fn saved(&self) -> SavedFramer {
        SavedFramer {
            state: self.state,
            buf: self.buf.clone(),
            cut: self.cut,
        }
    }

    /// A framer that goes on where `saved` left off. A saved frame longer
    /// than `limit` allows (the limit changed) is cut to it.
    pub fn resume(limit: usize, saved: SavedFramer) -> Framer {
        let mut f = Framer::new(limit);
        let mut buf = saved.buf;
        let room = f.limit + MAX_COUNT_DIGITS as usize + 1;
        let cut = saved.cut || buf.len() > room;
        buf.truncate(room);
        f.state = saved.state;
        f.buf = buf;
        f.cut = cut;
        f
    }

    /// A framer that keeps at most `limit` bytes of a frame (at least 16).
    pub fn new(limit: usize) -> Framer {
        Framer {
            limit: limit.max(16),
            state: State::Start,
            buf: Vec::new(),
            cut: false,
        }
    }

    /// Bytes of an unfinished frame held: never more than the limit plus an
    /// octet count's digits and space.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether the stream is between frames.
    pub fn is_idle(&self) -> bool {
        self.state == State::Start
    }

    /// Feed the next bytes of the stream; `emit(frame, cut)` is called for
    /// every frame they complete, `cut` when it was longer than the limit.
    pub fn push(&mut self, mut input: &[u8], emit: &mut impl FnMut(&[u8], bool)) {
        while let Some(&b) = input.first() {
            match self.state {
                State::Start => match b {
                    // Empty frames, and the CR of a CRLF sender, carry nothing.
                    b'\n' | b'\0' | b'\r' => input = &input[1..],
                    b'1'..=b'9' => {
                        self.state = State::Count {
                            value: 0,
                            digits: 0,
                        }
                    }
                    _ => self.state = State::Line,
                },
                State::Count { value, digits } => {
                    if b.is_ascii_digit() && digits < MAX_COUNT_DIGITS {
                        self.buf.push(b);
                        self.state = State::Count {
                            value: value * 10 + usize::from(b - b'0'),
                            digits: digits + 1,
                        };
                        input = &input[1..];
                    } else if b == b' ' {
                        self.buf.push(b);
                        self.state = State::CountSpace { value };
                        input = &input[1..];
                    } else {
                        // Not a count: the digits start a line.
                        self.state = State::Line;
                    }
                }
                State::CountSpace { value } => {
                    if b == b'<' {
                        self.buf.clear();
                        self.state = State::Octets { left: value };
                    } else {
                        self.state = State::Line;
                    }
                }
                State::Octets { left } => {
                    let n = left.min(input.len());
                    if n == left && self.buf.is_empty() && n <= self.limit {
                        // The whole frame is here: no copy.
                        emit(&input[..n], false);
                        self.state = State::Start;
                    } else {
                        self.keep(&input[..n]);
                        if n == left {
                            self.emit_buf(emit, false);
                        } else {
                            self.state = State::Octets { left: left - n };
                        }
                    }
                    input = &input[n..];
                }
                State::Line => match memchr::memchr2(b'\n', b'\0', input) {
                    Some(end) => {
                        if self.buf.is_empty() && !self.cut && end <= self.limit {
                            emit(&input[..end], false);
                            self.state = State::Start;
                        } else {
                            self.keep(&input[..end]);
                            self.emit_buf(emit, false);
                        }
                        input = &input[end + 1..];
                    }
                    None => {
                        self.keep(input);
                        input = &[];
                    }
                },
            }
        }
    }

    /// The stream ended. An unfinished frame is emitted flagged cut (its
    /// end never came); returns whether there was one.
    pub fn finish(&mut self, emit: &mut impl FnMut(&[u8], bool)) -> bool {
        let partial = self.state != State::Start && !self.buf.is_empty();
        if partial {
            self.emit_buf(emit, true);
        }
        self.state = State::Start;
        self.buf.clear();
        self.cut = false;
        partial
    }

    /// Append to the current frame what fits under the limit.
    fn keep(&mut self, bytes: &[u8]) {
        let room = self.limit.saturating_sub(self.buf.len());
        if bytes.len() > room {
            self.cut = true;
        }
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn emit_buf(&mut self, emit: &mut impl FnMut(&[u8], bool), ended_early: bool) {
        emit(&self.buf, self.cut || ended_early);
        self.buf.clear();
        self.cut = false;
        self.state = State::Start;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::uncut as whole;

    /// Every frame of `chunks` fed in order, then finished.
    fn frames(limit: usize, chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut f = Framer::new(limit);
        let mut out = Vec::new();
        let mut emit =
            |b: &[u8], cut: bool| out.push((String::from_utf8_lossy(b).into_owned(), cut));
        for c in chunks {
            f.push(c, &mut emit);
            assert!(f.buffered() <= limit.max(16) + 10);
        }
        f.finish(&mut emit);
        out
    }

    #[test]
    fn lf_and_nul_framing() {
        assert_eq!(
            frames(100, &[b"<13>a\n<14>b\0<15>c\r\n\n\n"]),
            whole(&["<13>a", "<14>b", "<15>c\r"])
        );
    }

    #[test]
    fn octet_counting() {
        assert_eq!(
            frames(100, &[b"5 <13>a5 <1>\ny10 <13>1 - \nz"]),
            whole(&["<13>a", "<1>\ny", "<13>1 - \nz"])
        );
    }

    #[test]
    fn framing_is_chosen_per_message() {
        assert_eq!(
            frames(100, &[b"<13>lf\n6 <13>oc<13>lf again\n2 <1"]),
            whole(&["<13>lf", "<13>oc", "<13>lf again", "<1"])
        );
    }

    #[test]
    fn every_split_of_the_stream_gives_the_same_frames() {
        let stream: &[u8] =
            b"<13>one\n12 <13>two\nmore3 <ab\0<9>x\n1234567890123 too many digits\n12 no pri\n";
        let want = frames(100, &[stream]);
        assert_eq!(
            want,
            whole(&[
                "<13>one",
                "<13>two\nmore",
                "<ab",
                "<9>x",
                "1234567890123 too many digits",
                "12 no pri",
            ])
        );
        for a in 0..stream.len() {
            for b in a..stream.len() {
                let got = frames(100, &[&stream[..a], &stream[a..b], &stream[b..]]);
                assert_eq!(got, want, "split at {a} and {b}");
            }
        }
    }

    #[test]
    fn digits_without_a_space_are_text() {
        assert_eq!(
            frames(100, &[b"2026 was a year\n"]),
            whole(&["2026 was a year"])
        );
        assert_eq!(frames(100, &[b"0 zero\n"]), whole(&["0 zero"]));
    }

    #[test]
    fn a_long_line_is_cut_and_the_rest_skipped() {
        let mut long = vec![b'x'; 100];
        long.push(b'\n');
        long.extend_from_slice(b"<13>next\n");
        let got = frames(16, &[&long[..50], &long[50..]]);
        assert_eq!(
            got,
            vec![("x".repeat(16), true), ("<13>next".to_owned(), false)]
        );
    }

    #[test]
    fn a_long_octet_counted_frame_is_cut_and_the_rest_skipped() {
        let mut s = b"40 ".to_vec();
        s.push(b'<');
        s.extend_from_slice(&[b'y'; 39]);
        s.extend_from_slice(b"3 <ab");
        assert_eq!(
            frames(16, &[&s]),
            vec![
                (format!("<{}", "y".repeat(15)), true),
                ("<ab".to_owned(), false)
            ]
        );
    }

    #[test]
    fn a_stream_ending_mid_frame_keeps_the_part_flagged() {
        assert_eq!(
            frames(100, &[b"<13>a\n<13>unterminated"]),
            vec![("<13>a".into(), false), ("<13>unterminated".into(), true)]
        );
        assert_eq!(
            frames(100, &[b"20 <13>short"]),
            vec![("<13>short".into(), true)]
        );
        assert_eq!(frames(100, &[b"123"]), vec![("123".into(), true)]);
        assert_eq!(frames(100, &[b"5 "]), vec![("5 ".into(), true)]);
        assert_eq!(frames(100, &[b"5 <"]), vec![("<".into(), true)]);
        assert_eq!(frames(100, &[b"\n\n"]), vec![]);
    }

    #[test]
    fn a_megabyte_without_a_newline_holds_only_the_limit() {
        let mut f = Framer::new(1024);
        let chunk = vec![b'g'; 64 << 10];
        let mut n = 0;
        for _ in 0..16 {
            f.push(&chunk, &mut |_, _| n += 1);
            assert!(f.buffered() <= 1024);
        }
        assert_eq!(n, 0);
        f.push(b"\n<13>after\n", &mut |b, cut| {
            n += 1;
            assert_eq!(cut, b.len() == 1024);
        });
        assert_eq!(n, 2);
        assert!(f.is_idle());
    }

    #[test]
    fn binary_garbage_never_panics_and_stays_bounded() {
        // A fixed pseudo-random stream: every byte value, in every state.
        let mut x: u32 = 0x1234_5678;
        let bytes: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect();
        let mut f = Framer::new(64);
        let mut total = 0;
        for c in bytes.chunks(777) {
            f.push(c, &mut |b, _| {
                assert!(b.len() <= 64);
                total += 1;
            });
            assert!(f.buffered() <= 64 + 10);
        }
        assert!(total > 0);
    }
}
