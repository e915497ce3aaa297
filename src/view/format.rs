//! Records as the bytes clients read: the memlogd JSON line (with our extra
//! keys after memlogd's three), and the text formats operators know from
//! memlogd, /var/log/messages and journalctl. The JSON line can be read
//! back into a [`Record`], so a client can request JSON and still print
//! any format.
//!
//! What a sender wrote can never pass for a second entry, nor act on the
//! reader's terminal. In every text format a reader gets:
//! - control characters (C0 but tab and newline, DEL, C1 U+0080..U+009F)
//!   are written `\xNN`, the code point in two hex digits, the form the
//!   parsers already use for bytes that are not UTF-8;
//! - a newline in the message starts a continuation line indented to the
//!   column where the message began (`cat`, which has no prefix, indents by
//!   two spaces) in memlogd, short, short-iso and cat, so no continuation
//!   starts at column 0; in rfc5424 and rfc3164, one message per line, it
//!   is written `\n`;
//! - a tab stays in the message (it moves the cursor, it cannot start a
//!   line) and is `\x09` in a header field;
//! - header fields (source, host, app, pid) carry no control character and
//!   no separator of their format: whitespace is `\xNN` in short and
//!   short-iso, `;` is `\;` in memlogd's source (as memlogd writes it), and
//!   rfc5424 / rfc3164 keep only printable ASCII in them, as those RFCs do.
//!
//! A backslash is not escaped, so message text that spells `\x1b` reads the
//! same as an escaped ESC: ambiguous to the eye, harmless to the terminal.
//! The JSON line escapes the same characters (`\u001b`, `\u0085`).
//! Routes forward text as the sender wrote it ([`Text::AsSent`]): the
//! receiving syslog server applies its own escaping.

use std::io::Write as _;

use chrono::DateTime;
use serde::Deserialize;

use super::{json, timefmt};
use crate::record::{
    Input, KernelMeta, Peer, Record, RecordRef, SdElement, FACILITY_NAMES, SEVERITY_NAMES,
};
use crate::view::filter::DEFAULT_SEVERITY;

/// How entries are written out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line, every field (the query socket's default).
    #[default]
    Json,
    /// memlogd's `TIME;SOURCE;MSG`.
    Memlogd,
    /// `Nov 21 23:40:10 host app[pid]: msg`, local time, like /var/log/messages.
    Short,
    /// `2026-11-21T23:40:10+00:00 host app[pid]: msg`.
    ShortIso,
    /// RFC 5424, one message per line.
    Rfc5424,
    /// RFC 3164 as relays send it: `<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`,
    /// the message's own time in local time.
    Rfc3164,
    /// The message text alone.
    Cat,
}

impl Format {
    pub const NAMES: &'static str = "json, memlogd, short, short-iso, rfc5424, rfc3164, cat";

    pub fn parse(s: &str) -> Result<Format, String> {
        Ok(match s {
            "json" => Format::Json,
            "memlogd" => Format::Memlogd,
            "short" => Format::Short,
            "short-iso" => Format::ShortIso,
            "rfc5424" => Format::Rfc5424,
            "rfc3164" => Format::Rfc3164,
            "cat" => Format::Cat,
            _ => return Err(format!("format: {s:?} is not one of {}", Format::NAMES)),
        })
    }

    /// The name [`Format::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Memlogd => "memlogd",
            Format::Short => "short",
            Format::ShortIso => "short-iso",
            Format::Rfc5424 => "rfc5424",
            Format::Rfc3164 => "rfc3164",
            Format::Cat => "cat",
        }
    }

    /// Whether the format shows local time, in the zone of whoever writes
    /// it.
    pub fn is_local_time(self) -> bool {
        matches!(self, Format::Short | Format::ShortIso | Format::Rfc3164)
    }
}

/// How the text a sender wrote goes into a format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Text {
    /// For readers: control characters escaped and newlines made
    /// continuations or `\n` (see the module's notes).
    Escaped,
    /// For a relay to another syslog server: the message as the sender
    /// wrote it (header fields are still limited as the RFCs require).
    AsSent,
}

/// Append `r` in `format`, ending with `\n`, to `out`, escaped for a reader.
pub fn write_record(r: &RecordRef, format: Format, out: &mut Vec<u8>) {
    write_record_as(r, format, Text::Escaped, out);
}

/// Append `r` in `format`, ending with `\n`, to `out`, its text as `text`
/// says.
pub fn write_record_as(r: &RecordRef, format: Format, text: Text, out: &mut Vec<u8>) {
    if format == Format::Json {
        return write_json_line(r, out);
    }
    // Room for the usual entry at once, not at each piece.
    out.reserve(r.msg.len() + 128);
    let start = out.len();
    let msg_as = match text {
        Text::AsSent => MsgAs::Raw,
        Text::Escaped if matches!(format, Format::Rfc5424 | Format::Rfc3164) => MsgAs::OneLine,
        Text::Escaped => MsgAs::Continued,
    };
    match format {
        Format::Json => unreachable!("handled above"),
        Format::Memlogd => {
            timefmt::write_utc_nanos(r.received_ns, out);
            out.push(b';');
            push_field(out, r.source, |c| c == ';');
            out.push(b';');
        }
        Format::Short | Format::ShortIso => {
            let secs = r.received_ns.div_euclid(1_000_000_000);
            if format == Format::Short {
                timefmt::write_local_short(secs, out);
            } else {
                timefmt::write_local_iso(secs, out);
            }
            let separator = |c: char| c.is_whitespace();
            out.push(b' ');
            push_field(out, r.host.unwrap_or("-"), separator);
            out.push(b' ');
            push_field(out, r.app.unwrap_or(r.source), separator);
            if let Some(pid) = &r.pid {
                out.push(b'[');
                push_field(out, pid, separator);
                out.push(b']');
            }
            out.extend_from_slice(b": ");
        }
        Format::Rfc5424 => write_rfc5424_header(r, msg_as, out),
        Format::Rfc3164 => write_rfc3164_header(r, out),
        Format::Cat => {}
    }
    // Most messages are plain, and are copied as they are: no newline to
    // look for, nothing to escape.
    if msg_as == MsgAs::Raw || is_plain(r.msg.as_bytes()) {
        out.extend_from_slice(r.msg.as_bytes());
        out.push(b'\n');
        return;
    }
    // The column the message starts at, counted only for a message that
    // has a continuation line to indent.
    let indent = match format {
        Format::Cat => CAT_INDENT,
        _ if msg_as == MsgAs::Continued && r.msg.as_bytes().contains(&b'\n') => {
            chars_in(&out[start..])
        }
        _ => 0,
    };
    push_msg(out, r.msg, msg_as, indent);
    out.push(b'\n');
}

/// The characters in `utf8`: its bytes but UTF-8's continuation bytes.
fn chars_in(utf8: &[u8]) -> usize {
    utf8.iter().filter(|&&b| (b as i8) >= -0x40).count()
}

/// Append a line that is not an entry (from a daemon that is not
/// ringlogd) with its controls escaped as in a message, newlines as `\n`.
pub fn write_other_line(line: &str, out: &mut Vec<u8>) {
    push_msg(out, line, MsgAs::OneLine, 0);
    out.push(b'\n');
}

/// How far `cat` indents a continuation line: it has no prefix to align
/// under, and a continuation must never start at column 0.
const CAT_INDENT: usize = 2;

/// What a newline and a control character in the message become.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MsgAs {
    /// Unchanged.
    Raw,
    /// Controls `\xNN`, a newline `\n`: the entry stays one line.
    OneLine,
    /// Controls `\xNN`, a newline starts an indented continuation line.
    Continued,
}

/// The character (C0 control, DEL or C1 control) that starts at byte `i`
/// of `b` and needs escaping, with its length in bytes; `None` for a tab,
/// a newline or anything printable.
fn control_at(b: &[u8], i: usize) -> Option<(u8, usize)> {
    match b[i] {
        b'\t' | b'\n' => None,
        c @ (0..=0x1f | 0x7f) => Some((c, 1)),
        // C1 controls are U+0080..U+009F: 0xC2 then 0x80..0x9F in UTF-8.
        0xc2 => match b.get(i + 1) {
            Some(&c @ 0x80..=0x9f) => Some((c, 2)),
            _ => None,
        },
        _ => None,
    }
}

fn push_hex(out: &mut Vec<u8>, code: u32) {
    if code <= 0xff {
        let _ = write!(out, "\\x{code:02x}");
    } else {
        let _ = write!(out, "\\u{{{code:x}}}");
    }
}

/// Append the message text as `msg_as` says; a continuation line is
/// indented by `indent` spaces. Eight bytes at a time while none of them
/// can be a control.
fn push_msg(out: &mut Vec<u8>, msg: &str, msg_as: MsgAs, indent: usize) {
    let b = msg.as_bytes();
    if msg_as == MsgAs::Raw {
        out.extend_from_slice(b);
        return;
    }
    let mut done = 0;
    let mut i = 0;
    while i < b.len() {
        if let Some(word) = b.get(i..i + 8) {
            let w = u64::from_le_bytes(word.try_into().expect("eight bytes"));
            if !json::may_hold_control(w) {
                i += 8;
                continue;
            }
        }
        let (c, len) = match control_at(b, i) {
            Some(found) => found,
            None if b[i] == b'\n' => (b'\n', 1),
            None => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&b[done..i]);
        match (c, msg_as) {
            (b'\n', MsgAs::Continued) => {
                out.push(b'\n');
                out.resize(out.len() + indent, b' ');
            }
            (b'\n', _) => out.extend_from_slice(b"\\n"),
            _ => push_hex(out, u32::from(c)),
        }
        i += len;
        done = i;
    }
    out.extend_from_slice(&b[done..]);
}

/// Whether `b` holds nothing [`push_msg`] changes: no control character
/// but tab, so no newline either (C1's lead byte 0xC2 counts as one).
fn is_plain(b: &[u8]) -> bool {
    json::none_flagged(b, |c| json::control_byte(c) & (c != b'\t'))
}

/// Append a header field: a control character, or a character that
/// `separator` says would split the format's fields, is escaped (`;` as
/// `\;`, as memlogd writes it; anything else as `\xNN` / `\u{NNNN}`).
fn push_field(out: &mut Vec<u8>, field: &str, separator: impl Fn(char) -> bool) {
    let plain = |&b: &u8| b.is_ascii_graphic() && !separator(char::from(b));
    if field.as_bytes().iter().all(plain) {
        out.extend_from_slice(field.as_bytes());
        return;
    }
    for c in field.chars() {
        if c == ';' && separator(c) {
            out.extend_from_slice(b"\\;");
        } else if c.is_control() || separator(c) {
            push_hex(out, u32::from(c));
        } else {
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
    }
}

/// Append the printable ASCII of `v` (a header field of RFC 5424 or RFC
/// 3164), at most `max` characters of it, or `-` when none is left.
fn push_printable(out: &mut Vec<u8>, v: &str, max: usize, keep: impl Fn(u8) -> bool) {
    let start = out.len();
    let b = v.as_bytes();
    if b.len() <= max && b.iter().all(|&c| c.is_ascii_graphic() && keep(c)) {
        out.extend_from_slice(b);
    } else {
        out.extend(
            b.iter()
                .copied()
                .filter(|&c| c.is_ascii_graphic() && keep(c))
                .take(max),
        );
    }
    if out.len() == start {
        out.push(b'-');
    }
}

/// `<PRI>` of a record, defaults filled in.
fn push_pri(r: &RecordRef, out: &mut Vec<u8>) {
    let pri =
        u16::from(r.facility.unwrap_or(1)) * 8 + u16::from(r.severity.unwrap_or(DEFAULT_SEVERITY));
    out.push(b'<');
    json::write_u64(pri.into(), out);
    out.push(b'>');
}

/// Everything before the message, with its separating space when there is
/// a message.
fn write_rfc5424_header(r: &RecordRef, msg_as: MsgAs, out: &mut Vec<u8>) {
    push_pri(r, out);
    out.extend_from_slice(b"1 ");
    match &r.timestamp {
        Some(t) => timefmt::write_with_offset(t, out),
        None => timefmt::write_utc_micros(r.received_ns, out),
    }
    // Header fields are PRINTUSASCII without spaces, with length limits.
    let any = |_| true;
    out.push(b' ');
    push_printable(out, r.host.unwrap_or(""), 255, any);
    out.push(b' ');
    push_printable(out, r.app.unwrap_or(r.source), 48, any);
    out.push(b' ');
    push_printable(out, r.pid.as_deref().unwrap_or(""), 128, any);
    out.push(b' ');
    push_printable(out, r.msgid.unwrap_or(""), 32, any);
    out.push(b' ');
    if r.sd.is_empty() {
        out.push(b'-');
    }
    let name = |out: &mut Vec<u8>, n: &str| {
        out.extend(
            n.bytes()
                .filter(|&b| b.is_ascii_graphic() && !matches!(b, b'=' | b']' | b'"'))
                .take(32),
        );
    };
    for e in &r.sd {
        out.push(b'[');
        name(out, e.id);
        for (k, v) in &e.params {
            let escaped = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace(']', "\\]");
            out.push(b' ');
            name(out, k);
            out.extend_from_slice(b"=\"");
            push_msg(out, &escaped, msg_as, 0);
            out.push(b'"');
        }
        out.push(b']');
    }
    if !r.msg.is_empty() {
        out.push(b' ');
    }
}

/// RFC 3164 carries no year and no zone: the time is written as local wall
/// time, which is how receivers (rsyslog, syslog-ng) read it back.
/// Everything before the message.
fn write_rfc3164_header(r: &RecordRef, out: &mut Vec<u8>) {
    push_pri(r, out);
    let secs = match &r.timestamp {
        Some(t) => t.timestamp(),
        None => r.received_ns.div_euclid(1_000_000_000),
    };
    timefmt::write_local_short(secs, out);
    out.push(b' ');
    push_printable(out, r.host.unwrap_or("-"), 255, |_| true);
    out.push(b' ');
    // A TAG ends at '[', ':' or a space, so none of them may be in it.
    push_printable(out, r.app.unwrap_or(r.source), 48, |b| {
        !matches!(b, b'[' | b']' | b':')
    });
    if let Some(pid) = &r.pid {
        out.push(b'[');
        out.extend(pid.bytes().filter(u8::is_ascii_graphic).take(128));
        out.push(b']');
    }
    out.extend_from_slice(b": ");
}

pub use super::timefmt::rfc3339_nanos;

/// Append `r` as one JSON line (with its `\n`) to `out`.
pub fn write_json_line(r: &RecordRef, out: &mut Vec<u8>) {
    json::write_line(r, Some(r.seq), None, out);
}

/// Append the JSON line that tells a reader it was lapped: the `notice`
/// entry with a `missed` count, and no `seq` of its own since it is not in
/// the ring.
pub fn write_missed_line(notice: &RecordRef, missed: u64, out: &mut Vec<u8>) {
    json::write_line(notice, None, Some(missed), out);
}

/// The JSON line read back, every key optional (memlogd sends only `time`,
/// `source` and `msg`).
#[derive(Deserialize)]
struct LineIn {
    time: Option<String>,
    #[serde(default)]
    source: String,
    #[serde(default)]
    msg: String,
    seq: Option<u64>,
    input: Option<String>,
    timestamp: Option<String>,
    facility: Option<String>,
    severity: Option<String>,
    host: Option<String>,
    app: Option<String>,
    pid: Option<String>,
    msgid: Option<String>,
    sd: Option<serde_json::Map<String, serde_json::Value>>,
    peer: Option<PeerIn>,
    peer_addr: Option<String>,
    #[serde(default)]
    truncated: bool,
    kmsg_seq: Option<u64>,
    kmsg_usec: Option<u64>,
    #[serde(default)]
    kmsg_fragment: bool,
}

#[derive(Deserialize)]
struct PeerIn {
    pid: u32,
    uid: u32,
    gid: u32,
}

/// Read a JSON line written by [`write_json_line`] (or by memlogd) back into
/// a record. `None` for anything that is not such a line (an error reply).
pub fn parse_json_line(line: &str) -> Option<Record> {
    let l: LineIn = serde_json::from_str(line).ok()?;
    let received_ns = DateTime::parse_from_rfc3339(l.time.as_deref()?)
        .ok()?
        .timestamp_nanos_opt()?;
    let input = l
        .input
        .and_then(|i| Input::ALL.into_iter().find(|x| x.as_str() == i))
        .unwrap_or(Input::Fd);
    let mut r = Record::new(input, received_ns, l.source, l.msg);
    r.seq = l.seq.unwrap_or(0);
    r.timestamp = l
        .timestamp
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok());
    r.facility = l
        .facility
        .and_then(|f| FACILITY_NAMES.iter().position(|n| *n == f))
        .map(|p| p as u8);
    r.severity = l
        .severity
        .and_then(|f| SEVERITY_NAMES.iter().position(|n| *n == f))
        .map(|p| p as u8);
    r.host = l.host;
    r.app = l.app;
    r.pid = l.pid;
    r.msgid = l.msgid;
    r.sd =
        l.sd.unwrap_or_default()
            .into_iter()
            .map(|(id, params)| SdElement {
                id,
                params: params
                    .as_object()
                    .map(|m| m.iter().flat_map(sd_values).collect())
                    .unwrap_or_default(),
            })
            .collect();
    r.peer = l.peer.map(|p| Peer {
        pid: p.pid,
        uid: p.uid,
        gid: p.gid,
    });
    r.peer_addr = l.peer_addr.and_then(|a| a.parse().ok());
    r.truncated = l.truncated;
    if let (Some(seq), Some(usec)) = (l.kmsg_seq, l.kmsg_usec) {
        r.kernel = Some(KernelMeta {
            seq,
            usec,
            fragment: l.kmsg_fragment,
        });
    }
    Some(r)
}

/// The params a JSON SD key stands for: one for a string, one per value
/// for the array a repeated name is written as.
fn sd_values((name, value): (&String, &serde_json::Value)) -> Vec<(String, String)> {
    let one = |v: &serde_json::Value| (name.clone(), v.as_str().unwrap_or_default().to_owned());
    match value.as_array() {
        Some(values) => values.iter().map(one).collect(),
        None => vec![one(value)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Input, KernelMeta, Peer};

    const PEER: Peer = Peer {
        pid: 1,
        uid: 2,
        gid: 3,
    };

    /// Structured data of one element with one param.
    fn one_param(id: &str, name: &str, value: &str) -> Vec<SdElement> {
        vec![SdElement {
            id: id.into(),
            params: vec![(name.into(), value.into())],
        }]
    }

    #[test]
    fn a_message_called_plain_is_one_every_format_copies_unchanged() {
        let mut escaped = 0;
        for c in (0..0x800)
            .chain([0xfeff, 0x1f600])
            .filter_map(char::from_u32)
        {
            // Long enough that the check runs many bytes at a time.
            let msg = format!("{}{c}{}", "a".repeat(20), "b".repeat(20));
            let mut changed = false;
            for msg_as in [MsgAs::OneLine, MsgAs::Continued] {
                let mut out = Vec::new();
                push_msg(&mut out, &msg, msg_as, 2);
                changed |= out != msg.as_bytes();
            }
            if is_plain(msg.as_bytes()) {
                assert!(!changed, "{c:?} was called plain and changed");
            } else {
                escaped += usize::from(changed);
            }
            if c.is_control() && c != '\t' {
                assert!(!is_plain(msg.as_bytes()), "{c:?} was called plain");
            }
        }
        // C0 but tab, DEL and C1: 31 + 1 + 32.
        assert_eq!(escaped, 64);
    }

    #[test]
    fn memlogd_keys_come_first_and_absent_fields_are_left_out() {
        let mut r = Record::new(Input::Fd, 0, "svc.out", "hello");
        r.seq = 3;
        let mut out = Vec::new();
        write_json_line(&r.as_ref(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"time\":\"1970-01-01T00:00:00Z\",\"source\":\"svc.out\",\"msg\":\"hello\",\"seq\":3,\"input\":\"fd\"}\n"
        );
    }

    #[test]
    fn every_field_is_named() {
        let mut r = Record::new(Input::Syslog, 0, "app", "m");
        r.facility = Some(1);
        r.severity = Some(3);
        r.sd = one_param("a@1", "k", "v");
        r.peer = Some(PEER);
        r.truncated = true;
        let mut out = Vec::new();
        write_json_line(&r.as_ref(), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["facility"], "user");
        assert_eq!(v["severity"], "err");
        assert_eq!(v["sd"]["a@1"]["k"], "v");
        assert_eq!(v["peer"]["uid"], 2);
        assert_eq!(v["truncated"], true);
        assert!(
            v.get("peer_addr").is_none(),
            "absent when not from the network"
        );
        r.peer_addr = Some("127.0.0.1:5514".parse().unwrap());
        out.clear();
        write_json_line(&r.as_ref(), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["peer_addr"], "127.0.0.1:5514");
    }

    #[test]
    fn json_lines_read_back_into_records() {
        let mut r = Record::new(Input::Syslog, 1_720_000_000_974_497_577, "app", "m\"x");
        r.seq = 9;
        r.facility = Some(3);
        r.severity = Some(4);
        r.host = Some("h".into());
        r.app = Some("app".into());
        r.pid = Some("12".into());
        r.msgid = Some("M".into());
        r.sd = one_param("a@1", "k", "v]\"");
        r.peer = Some(PEER);
        r.timestamp = Some(DateTime::parse_from_rfc3339("2024-07-03T09:46:40.5+02:00").unwrap());
        r.peer_addr = Some("[::1]:5514".parse().unwrap());
        let mut out = Vec::new();
        write_json_line(&r.as_ref(), &mut out);
        let back = parse_json_line(std::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(back, r);
        let memlogd = parse_json_line(r#"{"time":"2024-07-02T19:22:51.974497577Z","source":"memlogd","msg":"memlogd started"}"#).unwrap();
        assert_eq!(memlogd.source, "memlogd");
        assert!(parse_json_line(r#"{"error":"x"}"#).is_none());
    }

    #[test]
    fn text_formats() {
        let mut r = Record::new(Input::Syslog, 1_720_000_000_974_497_577, "sshd", "hello");
        r.host = Some("web1".into());
        r.app = Some("sshd".into());
        r.pid = Some("42".into());
        r.facility = Some(4);
        r.severity = Some(3);
        let render = |r: &Record, f| {
            let mut out = Vec::new();
            write_record(&r.as_ref(), f, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            render(&r, Format::Memlogd),
            "2024-07-03T09:46:40.974497577Z;sshd;hello\n"
        );
        assert_eq!(render(&r, Format::Cat), "hello\n");
        assert!(
            render(&r, Format::Short).ends_with(" web1 sshd[42]: hello\n"),
            "{}",
            render(&r, Format::Short)
        );
        assert!(
            render(&r, Format::ShortIso).contains("T")
                && render(&r, Format::ShortIso).ends_with(" web1 sshd[42]: hello\n")
        );
        assert_eq!(
            render(&r, Format::Rfc5424),
            "<35>1 2024-07-03T09:46:40.974497Z web1 sshd 42 - - hello\n"
        );
        r.sd = one_param("x@1", "k", "a\"b]c\\d");
        r.host = None;
        assert_eq!(
            render(&r, Format::Rfc5424),
            "<35>1 2024-07-03T09:46:40.974497Z - sshd 42 - [x@1 k=\"a\\\"b\\]c\\\\d\"] hello\n"
        );
        let line = render(&r, Format::Rfc3164);
        assert!(line.starts_with("<35>"), "{line}");
        assert!(line.ends_with(" - sshd[42]: hello\n"), "{line}");
        r.app = Some("we ird:[tag]".into());
        r.host = Some("web1".into());
        assert!(
            render(&r, Format::Rfc3164).ends_with(" web1 weirdtag[42]: hello\n"),
            "a TAG cannot hold a space, a colon or brackets"
        );
        for name in Format::NAMES.split(", ") {
            assert!(Format::parse(name).is_ok());
        }
        assert!(Format::parse("xml").is_err());
    }

    #[test]
    fn repeated_sd_names_read_back_as_repeated_params() {
        let mut r = Record::new(Input::Syslog, 0, "app", "m");
        r.sd = vec![SdElement {
            id: "origin".into(),
            params: vec![
                ("ip".into(), "10.0.0.1".into()),
                ("software".into(), "x".into()),
                ("ip".into(), "10.0.0.2".into()),
            ],
        }];
        let mut out = Vec::new();
        write_json_line(&r.as_ref(), &mut out);
        let line = String::from_utf8(out).unwrap();
        assert!(
            line.contains(r#""sd":{"origin":{"ip":["10.0.0.1","10.0.0.2"],"software":"x"}}"#),
            "{line}"
        );
        let back = parse_json_line(&line).unwrap();
        assert_eq!(
            back.sd[0].params,
            [
                ("ip".into(), "10.0.0.1".into()),
                ("ip".into(), "10.0.0.2".into()),
                ("software".into(), "x".into())
            ]
        );
    }

    #[test]
    fn kernel_keys_come_last_and_only_for_kernel_records() {
        let mut r = Record::new(Input::Kmsg, 0, "kernel", "hello");
        r.kernel = Some(KernelMeta {
            seq: 340,
            usec: 1_353_811,
            fragment: false,
        });
        let mut out = Vec::new();
        write_json_line(&r.as_ref(), &mut out);
        let line = String::from_utf8(out).unwrap();
        assert!(
            line.ends_with(",\"kmsg_seq\":340,\"kmsg_usec\":1353811}\n"),
            "{line}"
        );
        r.kernel = Some(KernelMeta {
            fragment: true,
            ..r.kernel.unwrap()
        });
        let mut out = Vec::new();
        write_json_line(&r.as_ref(), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["kmsg_fragment"], true);
        r.kernel = None;
        let mut out = Vec::new();
        write_json_line(&r.as_ref(), &mut out);
        assert!(!String::from_utf8(out).unwrap().contains("kmsg_"));
    }

    fn render(r: &Record, format: Format) -> String {
        let mut out = Vec::new();
        write_record(&r.as_ref(), format, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn semicolons_in_the_source_are_escaped() {
        let r = Record::new(Input::Fd, 0, "a;b", "m;n");
        assert_eq!(
            render(&r, Format::Memlogd),
            "1970-01-01T00:00:00Z;a\\;b;m;n\n"
        );
    }

    /// A message that tries to start a record of its own and to move the
    /// cursor: one record, every control written out.
    fn forged() -> Record {
        let mut r = Record::new(
            Input::Syslog,
            0,
            "evil",
            "harmless\n2026-12-07T06:00:00Z;sshd;Accepted\x1b[2K\rX\u{9b}2J\u{7f}\tend",
        );
        r.app = Some("evil".into());
        r.host = Some("h".into());
        r
    }

    #[test]
    fn human_formats_indent_continuations_and_escape_controls() {
        let r = forged();
        let prefix = "1970-01-01T00:00:00Z;evil;";
        assert_eq!(
            render(&r, Format::Memlogd),
            format!(
                "{prefix}harmless\n{}2026-12-07T06:00:00Z;sshd;Accepted\\x1b[2K\\x0dX\\x9b2J\\x7f\tend\n",
                " ".repeat(prefix.len())
            )
        );
        assert_eq!(
            render(&r, Format::Cat),
            "harmless\n  2026-12-07T06:00:00Z;sshd;Accepted\\x1b[2K\\x0dX\\x9b2J\\x7f\tend\n"
        );
        for format in [Format::Short, Format::ShortIso] {
            let text = render(&r, format);
            let (first, second) = text.split_once('\n').unwrap();
            let column = first.find("harmless").unwrap();
            assert_eq!(&second[..column], " ".repeat(column), "{text}");
            assert!(second[column..].starts_with("2026-12-07T06"), "{text}");
        }
    }

    #[test]
    fn wire_formats_stay_one_line() {
        let mut r = forged();
        r.sd = one_param("x@1", "k", "a\nb\x1b");
        for format in [Format::Rfc5424, Format::Rfc3164] {
            let text = render(&r, format);
            assert_eq!(text.matches('\n').count(), 1, "{text}");
            assert!(
                text.ends_with(": harmless\\n2026-12-07T06:00:00Z;sshd;Accepted\\x1b[2K\\x0dX\\x9b2J\\x7f\tend\n")
                    || text.ends_with("] harmless\\n2026-12-07T06:00:00Z;sshd;Accepted\\x1b[2K\\x0dX\\x9b2J\\x7f\tend\n"),
                "{text}"
            );
        }
        assert!(render(&r, Format::Rfc5424).contains("[x@1 k=\"a\\nb\\x1b\"]"));
        let mut raw = Vec::new();
        write_record_as(&r.as_ref(), Format::Rfc5424, Text::AsSent, &mut raw);
        assert!(
            String::from_utf8(raw)
                .unwrap()
                .ends_with(&format!(" {}\n", r.msg)),
            "a relay gets the text as sent"
        );
    }

    #[test]
    fn header_fields_carry_no_control_and_no_separator() {
        let mut r = Record::new(Input::Fd, 0, "src\n;x\x1b", "m");
        assert_eq!(
            render(&r, Format::Memlogd),
            "1970-01-01T00:00:00Z;src\\x0a\\;x\\x1b;m\n"
        );
        r.host = Some("a b\tc".into());
        r.app = Some("sshd\u{2028}x".into());
        r.pid = Some("1 2".into());
        let text = render(&r, Format::Short);
        assert!(
            text.ends_with(" a\\x20b\\x09c sshd\\u{2028}x[1\\x202]: m\n"),
            "{text}"
        );
    }
}
