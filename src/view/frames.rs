//! Framed answers: how the query server hands ringlogd's own `logread`
//! entries already in its format, so that it copies them out in large
//! writes and still knows, following, where to resume.
//!
//! The answer opens with one line, `ringlogd-frames FORMAT`, naming the
//! format of what follows (JSON when the daemon cannot write the one asked
//! for). Then come frames, each `LEN SEQ\n` and LEN bytes of whole
//! entries; SEQ is the sequence number of the last entry the frame
//! covers (matching or not), or `-` for a frame of notices only, so a
//! reader that resumes after it loses and repeats nothing. A dump ends
//! with the connection. Neither memlogd's JSON lines nor an error reply
//! (both start with `{`) can be taken for the opening line.

use std::io::Write as _;

use super::format::Format;

/// What the opening line starts with.
pub const OPENING: &str = "ringlogd-frames ";

/// The longest frame head a reader accepts: two numbers and a space.
pub const MAX_HEAD: usize = 48;

/// The line that opens a framed answer in `format`.
pub fn opening(format: Format) -> Vec<u8> {
    format!("{OPENING}{}\n", format.name()).into_bytes()
}

/// The format an opening line names; `None` for any other line.
pub fn opened(line: &str) -> Option<Format> {
    Format::parse(line.strip_prefix(OPENING)?.trim_end()).ok()
}

/// Append `body` as one frame covering the entries up to `last_seq`.
pub fn frame(body: &[u8], last_seq: Option<u64>, out: &mut Vec<u8>) {
    out.reserve(body.len() + MAX_HEAD);
    write_head(body.len(), last_seq, out);
    out.extend_from_slice(body);
}

/// Make the bytes after `room` (at least [`MAX_HEAD`] bytes left free at
/// the start of `out`) one frame covering the entries up to `last_seq`,
/// its head written just before them, so the entries are not copied.
/// Returns where the frame starts.
pub fn head_into_room(out: &mut [u8], room: usize, last_seq: Option<u64>) -> usize {
    let mut head = Vec::with_capacity(MAX_HEAD);
    write_head(out.len() - room, last_seq, &mut head);
    let start = room - head.len();
    out[start..room].copy_from_slice(&head);
    start
}

/// `LEN SEQ\n`, with `-` for no sequence number.
fn write_head(len: usize, last_seq: Option<u64>, out: &mut Vec<u8>) {
    let _ = match last_seq {
        Some(seq) => writeln!(out, "{len} {seq}"),
        None => writeln!(out, "{len} -"),
    };
}

/// The time zone local times are written in here, as a reader names it
/// to the daemon: its `TZ` entry (`TZ=Europe/Paris`), empty when there
/// is none (the system's zone).
pub fn zone() -> String {
    std::env::var_os("TZ").map_or_else(String::new, |tz| format!("TZ={}", tz.to_string_lossy()))
}

/// The format a framed answer is written in: the one asked for, but JSON
/// when it shows local time and the reader's zone (`zone`, as [`zone`]
/// names it) is not this process's, for the reader to format in its own.
pub fn answer_format(asked: Format, reader_zone: Option<&str>) -> Format {
    match reader_zone {
        Some(z) if asked.is_local_time() && z != zone() => Format::Json,
        _ => asked,
    }
}

/// A frame's head read back: its length and the entry it covers up to.
pub fn head(line: &str) -> Option<(usize, Option<u64>)> {
    let (len, seq) = line.trim_end_matches('\n').split_once(' ')?;
    let seq = match seq {
        "-" => None,
        s => Some(s.parse().ok()?),
    };
    Some((len.parse().ok()?, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back() {
        let mut out = opening(Format::ShortIso);
        frame(b"a\nb\n", Some(41), &mut out);
        let mut roomy = vec![0; MAX_HEAD];
        roomy.extend_from_slice(b"c\n");
        let start = head_into_room(&mut roomy, MAX_HEAD, Some(u64::MAX));
        assert_eq!(roomy[start..], *format!("2 {}\nc\n", u64::MAX).as_bytes());
        frame(b"notice\n", None, &mut out);
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.split_inclusive('\n');
        assert_eq!(opened(lines.next().unwrap()), Some(Format::ShortIso));
        assert_eq!(head(lines.next().unwrap()), Some((4, Some(41))));
        assert_eq!(lines.next(), Some("a\n"));
        assert_eq!(lines.next(), Some("b\n"));
        assert_eq!(head(lines.next().unwrap()), Some((7, None)));
        for other in [
            "{\"error\":\"x\"}\n",
            "{\"time\":\"2026\"}\n",
            "ringlogd-frames xml\n",
        ] {
            assert_eq!(opened(other), None, "{other}");
        }
        for bad in ["", "12", "x 1", "1 x", "-1 2\n"] {
            assert_eq!(head(bad), None, "{bad}");
        }
    }
}
