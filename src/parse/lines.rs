//! A byte stream cut into lines: what a program writes to its stdout or
//! stderr, read from a passed fd (and TCP's LF framing later).
//!
//! The rules, memlogd's made exact:
//! - a line ends at `\n`, and one `\r` right before it is not part of it;
//! - an empty line is a line;
//! - a line longer than the limit is cut there (at a UTF-8 character
//!   boundary when the cut would split one), flagged truncated and handed
//!   over at once; the rest of it, up to the next `\n`, is dropped;
//! - what is left without a `\n` when the stream ends is a line too (one
//!   trailing `\r` dropped as well).
//!
//! The splitter holds at most one partial line, never more than the limit
//! plus one byte, whatever the stream does. It knows nothing of fds, clocks
//! or records: it is fed bytes and hands back lines.

use memchr::memchr;

/// One line as the splitter hands it over: its bytes without the `\n` (and
/// the `\r` before it), and whether it was cut at the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    pub bytes: &'a [u8],
    pub truncated: bool,
}

/// Cuts a byte stream into [`Line`]s of at most `max_len` bytes.
#[derive(Debug)]
pub struct LineSplitter {
    max_len: usize,
    /// The start of the current line when a chunk ended inside it. Holds up
    /// to `max_len + 1` bytes: a `\r` just past the limit may still turn out
    /// to be the one before `\n`, and then the line was not too long.
    partial: Vec<u8>,
    /// The current line was already handed over cut: drop bytes up to the
    /// next `\n`.
    skipping: bool,
}

impl LineSplitter {
    /// A splitter for lines of at most `max_len` bytes (at least 1).
    pub fn new(max_len: usize) -> LineSplitter {
        LineSplitter {
            max_len: max_len.max(1),
            partial: Vec::new(),
            skipping: false,
        }
    }

    /// A splitter that goes on from the state a predecessor left
    /// ([`LineSplitter::state`]): the start of an unfinished line, and
    /// whether the rest of a line already handed over cut is being skipped.
    /// A partial longer than the limit allows is cut to it.
    pub fn resume(max_len: usize, mut partial: Vec<u8>, skipping: bool) -> LineSplitter {
        let max_len = max_len.max(1);
        partial.truncate(max_len + 1);
        LineSplitter {
            max_len,
            partial,
            skipping,
        }
    }

    /// What is held between two chunks of the stream, for handing the
    /// stream over to another process: `(partial line, skipping)`.
    pub fn state(&self) -> (&[u8], bool) {
        (&self.partial, self.skipping)
    }

    /// Whether a line has been started and not finished.
    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty()
    }

    /// Feed the next bytes of the stream; `emit` gets every line they
    /// complete (or cut), in order.
    pub fn feed(&mut self, bytes: &[u8], mut emit: impl FnMut(Line<'_>)) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let newline = memchr(b'\n', rest);
            if self.skipping {
                match newline {
                    Some(i) => {
                        self.skipping = false;
                        rest = &rest[i + 1..];
                        continue;
                    }
                    None => return,
                }
            }
            let Some(i) = newline else {
                self.keep(rest, &mut emit);
                return;
            };
            let piece = &rest[..i];
            rest = &rest[i + 1..];
            if self.partial.is_empty() {
                // The common case: a whole line inside one chunk, no copy.
                emit(self.finished(piece));
            } else if self.partial.len() + piece.len() > self.max_len + 1 {
                // Too long even without a final '\r'. Keep one byte past
                // the limit so the cut can see whether it splits a character.
                let need = self.max_len + 1 - self.partial.len();
                self.partial
                    .extend_from_slice(&piece[..need.min(piece.len())]);
                emit(cut(&self.partial, self.max_len));
                self.partial.clear();
            } else {
                self.partial.extend_from_slice(piece);
                let line = std::mem::take(&mut self.partial);
                emit(self.finished(&line));
                self.partial = line;
                self.partial.clear();
                self.release_large_buffer();
            }
        }
    }

    /// The stream ended: hand over the unfinished last line, if any, and
    /// start afresh.
    pub fn finish(&mut self, mut emit: impl FnMut(Line<'_>)) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            emit(self.finished(&line));
        }
        self.partial = Vec::new();
        self.skipping = false;
    }

    /// A line whose end was found: without its '\r', cut if still too long.
    fn finished<'a>(&self, line: &'a [u8]) -> Line<'a> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > self.max_len {
            cut(line, self.max_len)
        } else {
            Line {
                bytes: line,
                truncated: false,
            }
        }
    }

    /// Hold `bytes`, the start of a line whose end has not arrived; once
    /// the line is certainly too long, hand it over cut and skip the rest.
    fn keep(&mut self, bytes: &[u8], emit: &mut impl FnMut(Line<'_>)) {
        if self.partial.len() + bytes.len() <= self.max_len + 1 {
            self.partial.extend_from_slice(bytes);
            return;
        }
        let need = self.max_len + 1 - self.partial.len();
        self.partial
            .extend_from_slice(&bytes[..need.min(bytes.len())]);
        emit(cut(&self.partial, self.max_len));
        self.partial.clear();
        self.release_large_buffer();
        self.skipping = true;
    }

    /// Many fds may each hold a splitter: give back a buffer a long line
    /// grew, rather than keep it for a stream that may stay quiet.
    fn release_large_buffer(&mut self) {
        if self.partial.capacity() > 16 << 10 {
            self.partial = Vec::new();
        }
    }
}

/// `line` cut to at most `max_len` bytes, flagged truncated.
fn cut(line: &[u8], max_len: usize) -> Line<'_> {
    Line {
        bytes: &line[..utf8_cut_point(line, max_len)],
        truncated: true,
    }
}

/// The largest length up to `max_len` that does not end inside a UTF-8
/// character which continues past `max_len`. Bytes that are not UTF-8 are
/// cut anywhere: they will be escaped, not decoded.
fn utf8_cut_point(bytes: &[u8], max_len: usize) -> usize {
    if bytes.len() <= max_len {
        return bytes.len();
    }
    let is_continuation = |b: u8| b & 0xC0 == 0x80;
    if !is_continuation(bytes[max_len]) {
        return max_len;
    }
    // Walk back over at most three continuation bytes to the lead byte.
    let mut lead = max_len;
    while lead > 0 && max_len - lead < 3 {
        lead -= 1;
        if !is_continuation(bytes[lead]) {
            let width = match bytes[lead] {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => return max_len,
            };
            return if lead + width > max_len {
                lead
            } else {
                max_len
            };
        }
    }
    max_len
}

/// A leading `<N>` with N from 0 to 7, as journald reads it on stdout
/// streams: the severity and the text after it. Anything else is no prefix.
pub fn level_prefix(line: &[u8]) -> (Option<u8>, &[u8]) {
    match line {
        [b'<', d @ b'0'..=b'7', b'>', rest @ ..] => (Some(d - b'0'), rest),
        _ => (None, line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::uncut as plain;

    /// Every line from feeding `chunks` and then ending the stream.
    fn split(max_len: usize, chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut s = LineSplitter::new(max_len);
        let mut out = Vec::new();
        let mut push =
            |l: Line<'_>| out.push((String::from_utf8_lossy(l.bytes).into_owned(), l.truncated));
        for c in chunks {
            s.feed(c, &mut push);
        }
        s.finish(&mut push);
        out
    }

    /// `stream` gives `want` however it arrives: cut in two at every
    /// point, and byte by byte.
    fn assert_split_however_it_arrives(max_len: usize, stream: &[u8], want: &[(String, bool)]) {
        for at in 0..=stream.len() {
            let (a, b) = stream.split_at(at);
            assert_eq!(split(max_len, &[a, b]), want, "split at {at}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(split(max_len, &bytes), want, "byte by byte");
    }

    #[test]
    fn lines_end_at_newline_and_drop_one_cr() {
        assert_eq!(split(100, &[b"a\nb\r\nc\r\r\n"]), plain(&["a", "b", "c\r"]));
    }

    #[test]
    fn empty_lines_are_lines() {
        assert_eq!(split(100, &[b"\n\na\n\r\n"]), plain(&["", "", "a", ""]));
    }

    #[test]
    fn a_final_line_without_newline_comes_at_the_end() {
        assert_eq!(split(100, &[b"a\nlast"]), plain(&["a", "last"]));
        assert_eq!(split(100, &[b"a\nlast\r"]), plain(&["a", "last"]));
        assert_eq!(split(100, &[b""]), plain(&[]));
        assert_eq!(split(100, &[b"a\n"]), plain(&["a"]));
    }

    #[test]
    fn lines_span_chunks_in_any_split() {
        let want = plain(&["one", "two", "", "three", "four"]);
        assert_split_however_it_arrives(100, b"one\r\ntwo\n\nthree\nfour", &want);
    }

    #[test]
    fn a_long_line_is_cut_and_its_rest_dropped() {
        let want = vec![
            ("abcd".to_string(), true),
            ("next".to_string(), false),
            ("wxyz".to_string(), true),
        ];
        assert_eq!(split(4, &[b"abcdefgh\nnext\nwxyz12345"]), want);
        // The same, however it arrives.
        assert_split_however_it_arrives(4, b"abcdefgh\nnext\nwxyz12345", &want);
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_not_cut() {
        assert_eq!(split(4, &[b"abcd\n"]), plain(&["abcd"]));
        assert_eq!(split(4, &[b"abcd\r\n"]), plain(&["abcd"]));
        assert_eq!(split(4, &[b"ab", b"cd\r", b"\n"]), plain(&["abcd"]));
        assert_eq!(split(4, &[b"abcd\r"]), plain(&["abcd"]));
        assert_eq!(split(4, &[b"abcd\rx\n"]), vec![("abcd".to_string(), true)]);
        assert_eq!(split(4, &[b"abcde\n"]), vec![("abcd".to_string(), true)]);
    }

    #[test]
    fn a_cut_never_splits_a_utf8_character() {
        // "aé" is 3 bytes; a limit of 2 would split the é.
        assert_eq!(split(2, &["aéz\n".as_bytes()]), vec![("a".into(), true)]);
        assert_eq!(split(3, &["aéz\n".as_bytes()]), vec![("aé".into(), true)]);
        // A 4-byte character cut after 1, 2 or 3 of its bytes.
        for max in 1..=3 {
            let out = split(max, &["😀x\n".as_bytes()]);
            assert_eq!(out, vec![(String::new(), true)], "max {max}");
        }
        // The same when the line arrives in pieces.
        let stream = "aéz\n".as_bytes();
        for at in 0..=stream.len() {
            let (a, b) = stream.split_at(at);
            assert_eq!(split(2, &[a, b]), vec![("a".into(), true)], "at {at}");
        }
        // Bytes that are not UTF-8 are cut where the limit says.
        let mut s = LineSplitter::new(2);
        let mut got = Vec::new();
        s.feed(b"\x80\x80\x80\n", |l| got.push(l.bytes.to_vec()));
        assert_eq!(got, vec![b"\x80\x80".to_vec()]);
    }

    #[test]
    fn memory_stays_bounded_by_the_limit() {
        let mut s = LineSplitter::new(64);
        let mut n = 0;
        for _ in 0..10_000 {
            s.feed(&[b'x'; 1000], |_| n += 1);
            assert!(s.partial.len() <= 65);
        }
        assert_eq!(n, 1, "one cut line, the rest skipped");
        s.feed(b"\nok\n", |l| {
            assert_eq!(l.bytes, b"ok");
            n += 1
        });
        assert_eq!(n, 2);
    }

    #[test]
    fn level_prefixes() {
        assert_eq!(level_prefix(b"<3>oops"), (Some(3), &b"oops"[..]));
        assert_eq!(level_prefix(b"<0>"), (Some(0), &b""[..]));
        assert_eq!(level_prefix(b"<8>no"), (None, &b"<8>no"[..]));
        assert_eq!(level_prefix(b"<12>no"), (None, &b"<12>no"[..]));
        assert_eq!(level_prefix(b"<3no"), (None, &b"<3no"[..]));
        assert_eq!(level_prefix(b" <3>no"), (None, &b" <3>no"[..]));
    }
}
