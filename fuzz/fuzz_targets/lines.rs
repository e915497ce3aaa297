//! The fd line splitter on any byte stream, cut into reads anywhere: the
//! lines it hands over do not depend on where the reads were cut, match a
//! plain reading of the whole stream (split at `\n`, one `\r` dropped, cut
//! at the limit), and it never holds more than the limit plus one byte.
//!
//! Input: the limit (one byte), the cut points (one byte: a read size
//! pattern), then the stream.
#![no_main]

mod reads;

use libfuzzer_sys::fuzz_target;
use ringlogd::parse::lines::{level_prefix, Line, LineSplitter};

type Lines = Vec<(Vec<u8>, bool)>;

fn run(max: usize, reads: &[&[u8]]) -> Lines {
    let mut s = LineSplitter::new(max);
    let mut out = Lines::new();
    for r in reads {
        s.feed(r, |l: Line<'_>| out.push((l.bytes.to_vec(), l.truncated)));
    }
    s.finish(|l: Line<'_>| out.push((l.bytes.to_vec(), l.truncated)));
    out
}

fuzz_target!(|data: &[u8]| {
    let [max, pattern, stream @ ..] = data else {
        return;
    };
    let max = usize::from(*max).max(1);
    // The same stream in reads of 1..=8 bytes, sizes taken from `pattern`.
    let whole = reads::same_however_cut(stream, *pattern, "lines", |r| run(max, r));

    // The plain reading.
    let mut pieces: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    if pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    assert_eq!(
        whole.len(),
        pieces.len(),
        "one line per newline, plus the tail"
    );
    for ((got, cut), piece) in whole.iter().zip(&pieces) {
        let want = piece.strip_suffix(b"\r").unwrap_or(piece);
        assert!(!got.contains(&b'\n'));
        if want.len() <= max {
            assert_eq!((got.as_slice(), *cut), (want, false));
        } else {
            assert!(*cut, "a line over the limit is flagged");
            assert!(got.len() <= max && want.starts_with(got), "cut is a prefix");
            // Cut at the limit, or up to 3 bytes earlier to keep a UTF-8
            // character whole.
            assert!(got.len() + 3 >= max, "cut {} bytes short", max - got.len());
        }
        let (level, rest) = level_prefix(got);
        assert_eq!(level.is_some(), rest.len() + 3 == got.len());
    }
});
