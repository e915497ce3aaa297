//! One syslog datagram or frame into one [`Record`]: `syslog_loose` wrapped
//! once, plus the fixes its gaps need with the clients that really talk to
//! `/dev/log`.
//!
//! What is fixed around `syslog_loose` (each seen with a real client):
//! - glibc's and `logger`'s hostname-less `<PRI>Mmm dd hh:mm:ss TAG: MSG` is
//!   read as host=TAG, no app: on local sockets that field is the tag.
//! - Python's `SysLogHandler` sends `<PRI>msg\0` with no timestamp, which
//!   `syslog_loose` refuses whole: we read the PRI ourselves and look for a
//!   `TAG[PID]: ` the way journald does.
//! - `Feb 29` with a non-leap current year made the whole message fail: the
//!   year resolver never yields an invalid date, and handles Dec/Jan rollover.
//! - A BOM and one trailing NUL stay in msg; trailing newlines too: removed.
//! - `logger --octet-count` puts `LEN ` in front even on a datagram: removed.
//! - syslog-ng with `frac-digits()` writes `Nov 22 00:26:48.925863` in RFC
//!   3164, whose fraction `syslog_loose` does not read: it is read here.
//! - From the network, a lone `tag:` field is the tag, not a host.
//! - An RFC 3164 message whose text starts with `[x y="z"]` has it eaten as
//!   structured data (3164 has none): the text is put back.
//! - No PRI, or an impossible one, means user.notice with the whole text as
//!   msg, counted as malformed; nothing is ever dropped.
//! - Structured data and the message share `--max-line-len`, as one text on
//!   the wire: elements and params are kept in order, whole, while they fit
//!   it and [`MAX_SD_ELEMENTS`] / [`MAX_SD_PARAMS`]; the message gets what
//!   is left. Anything left out flags the entry truncated.

use std::borrow::Cow;

use std::cell::Cell;

use chrono::{DateTime, Datelike, FixedOffset, Local, NaiveDate, TimeDelta, TimeZone, Utc};
use syslog_loose::{
    parse_message_with_year_tz, IncompleteDate, ProcId, Protocol, StructuredElement, Variant,
};

use super::escape_invalid_utf8;
use crate::record::{
    sd_element_len, sd_len, sd_param_len, truncated_str, Input, Peer, Record, RecordRef, SdRef,
    MAX_SD_ELEMENTS, MAX_SD_PARAMS,
};

/// Default facility and severity when a message carries no PRI (RFC 3164
/// §4.3.3): user.notice.
const DEFAULT_PRI: u8 = 13;

/// Where a message came from, which decides how ambiguous headers are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A local socket (`/dev/log`): senders omit the hostname, and a missing
    /// host is this machine.
    Local,
    /// The network: a single header field is a hostname, and a missing host
    /// stays missing.
    Remote,
}

/// The result of parsing one message.
#[derive(Debug)]
pub struct Parsed {
    pub record: Record,
    /// No usable header (no PRI or an invalid one): the text was kept raw.
    pub malformed: bool,
}

/// [`Parsed`], with the text still in the receive buffer (or the scratch).
#[derive(Debug)]
pub struct ParsedRef<'a> {
    pub record: RecordRef<'a>,
    pub malformed: bool,
}

/// Room for the text when it cannot be borrowed from the received bytes:
/// invalid UTF-8 written out as `\xNN`, or a 3164 stamp's fraction taken
/// out for syslog_loose. Kept by the caller so that it is reused.
#[derive(Debug, Default)]
pub struct Scratch {
    text: String,
    defrac: String,
}

/// Turns syslog messages into records. Holds what every message needs but
/// none carries: this machine's name and the length limit.
#[derive(Clone, Debug)]
pub struct SyslogParser {
    local_host: String,
    max_msg_len: usize,
    /// What reading a zoneless RFC 3164 stamp needs from the receive time
    /// (the local UTC offset, the year and month): worked out once a
    /// minute, not per message.
    minute: Cell<Minute>,
    /// The last RFC 3164 day read and the date it resolved to: a burst of
    /// messages mostly shares its day, and turning a day into a date is
    /// most of what reading a stamp costs. Forgotten when the minute moves.
    day: Cell<Option<DayMemo>>,
    /// Read the common RFC 3164 shapes directly ([`fast_3164`]); off only
    /// in the test that checks it agrees with syslog_loose.
    fast_path: bool,
}

impl SyslogParser {
    pub fn new(local_host: impl Into<String>, max_msg_len: usize) -> SyslogParser {
        SyslogParser {
            local_host: local_host.into(),
            max_msg_len,
            minute: Cell::new(Minute {
                minute: i64::MIN,
                offset: FixedOffset::east_opt(0).expect("zero offset"),
                year: 1970,
                month: 1,
            }),
            day: Cell::new(None),
            fast_path: true,
        }
    }

    /// Parse one message received at `received_ns` from a sender the kernel
    /// identified as `peer`.
    pub fn parse(
        &self,
        raw: &[u8],
        received_ns: i64,
        input: Input,
        origin: Origin,
        peer: Option<Peer>,
    ) -> Parsed {
        let mut scratch = Scratch::default();
        let p = self.parse_ref(raw, received_ns, input, origin, peer, &mut scratch);
        Parsed {
            record: p.record.to_record(),
            malformed: p.malformed,
        }
    }

    /// [`SyslogParser::parse`] without copying: the record borrows from
    /// `raw`, from this parser (the host name) or from `scratch`.
    pub fn parse_ref<'a>(
        &'a self,
        raw: &'a [u8],
        received_ns: i64,
        input: Input,
        origin: Origin,
        peer: Option<Peer>,
        scratch: &'a mut Scratch,
    ) -> ParsedRef<'a> {
        let Scratch { text, defrac } = scratch;
        let t: &'a str = match std::str::from_utf8(raw) {
            Ok(t) => t,
            Err(_) => {
                text.clear();
                text.push_str(&escape_invalid_utf8(raw));
                text
            }
        };
        let t = strip_octet_count(clean_ends(t));
        let mut record = RecordRef::new(input, received_ns, "", "");
        record.peer = peer;
        let malformed = match split_pri(t) {
            Pri::Valid(pri, rest) => {
                self.parse_with_header(t, pri, rest, origin, defrac, &mut record);
                false
            }
            Pri::Missing | Pri::Invalid => {
                record.facility = Some(DEFAULT_PRI >> 3);
                record.severity = Some(DEFAULT_PRI & 7);
                // Text without a header is kept as it came: the PRI-like
                // junk in front is part of what the sender said.
                record.msg = t;
                true
            }
        };
        if record.host.is_none() && origin == Origin::Local {
            record.host = Some(&self.local_host);
        }
        record.source = record.app.unwrap_or("syslog");
        let room = self.max_msg_len.saturating_sub(sd_len(&record.sd));
        let (msg, cut) = truncated_str(record.msg, room);
        record.msg = msg;
        record.truncated |= cut;
        ParsedRef { record, malformed }
    }

    /// The local UTC offset, year and month at `received_ns`, looked up
    /// once a minute.
    fn minute(&self, received_ns: i64) -> Minute {
        let minute = received_ns.div_euclid(60_000_000_000);
        let cached = self.minute.get();
        if cached.minute == minute {
            return cached;
        }
        let now = DateTime::<Utc>::from_timestamp_nanos(received_ns);
        let fresh = Minute {
            minute,
            offset: *now.with_timezone(&Local).offset(),
            year: now.year(),
            month: now.month(),
        };
        self.minute.set(fresh);
        self.day.set(None);
        fresh
    }

    fn parse_with_header<'a>(
        &self,
        t: &'a str,
        pri: u8,
        after_pri: &'a str,
        origin: Origin,
        defrac: &'a mut String,
        r: &mut RecordRef<'a>,
    ) {
        r.facility = Some(pri >> 3);
        r.severity = Some(pri & 7);
        let at = self.minute(r.received_ns);
        let (now_year, now_month, offset) = (at.year, at.month, at.offset);
        // syslog_loose reads no fraction in an RFC 3164 stamp: parse
        // without it and add it back.
        let (t, fraction): (&'a str, u32) = match fraction_3164(after_pri) {
            Some((start, end, nanos)) => {
                let at = t.len() - after_pri.len();
                defrac.clear();
                defrac.push_str(&t[..at + start]);
                defrac.push_str(&t[at + end..]);
                (defrac, nanos)
            }
            None => (t, 0),
        };
        if fraction == 0 && self.fast_path {
            if let Some(f) = fast_3164(after_pri, at, &self.day) {
                r.timestamp = Some(f.timestamp);
                r.host = f.host;
                r.app = Some(f.app);
                r.pid = f.pid.map(Cow::Borrowed);
                r.msg = strip_bom(f.msg);
                return;
            }
        }
        let m = parse_message_with_year_tz(
            t,
            move |d: IncompleteDate| resolve_year(d, now_year, now_month),
            Some(offset),
            Variant::Either,
        );
        if m.facility.is_none() {
            // syslog_loose gave up (no timestamp, as Python sends): keep our
            // PRI and read a tag the way journald does.
            let (app, pid, msg) = split_tag(after_pri);
            r.app = app;
            r.pid = pid.map(Cow::Borrowed);
            r.msg = strip_bom(msg);
            return;
        }
        r.timestamp = m
            .timestamp
            .map(|ts| ts + TimeDelta::nanoseconds(i64::from(fraction)));
        let (mut host, mut app) = (m.hostname, m.appname);
        // `<13>Nov 21 23:40:00 mytag: msg`: a lone field on a local socket
        // is the tag, not a hostname. From the network a lone field is a
        // host, unless it ends in `:`, which no hostname does (busybox
        // `syslogd -R` relays local messages that way).
        let lone_tag = match origin {
            Origin::Local => true,
            // syslog_loose drops that `:`: look for it in the text.
            Origin::Remote => host.is_some_and(|h| {
                t.find(h)
                    .is_some_and(|at| t[at + h.len()..].starts_with(':'))
            }),
        };
        if m.protocol == Protocol::RFC3164 && app.is_none() && lone_tag {
            app = host.take().map(|h| h.trim_end_matches(':'));
        }
        r.host = host;
        r.app = app;
        r.pid = m.procid.map(|p| match p {
            ProcId::PID(n) => pid_as_written(t, app, n),
            ProcId::Name(s) => Cow::Borrowed(s),
        });
        r.msgid = m.msgid;
        let mut msg = m.msg;
        if m.protocol == Protocol::RFC3164 {
            if let Some(first) = m.structured_data.first() {
                // RFC 3164 has no structured data: what looked like it is the
                // start of the text.
                let needle = format!("[{}", first.id);
                if let Some(pos) = t.find(&needle) {
                    msg = &t[pos..];
                }
            }
        } else {
            (r.sd, r.truncated) = bounded_sd(&m.structured_data, self.max_msg_len);
        }
        r.msg = strip_bom(msg);
    }
}

/// The structured data of `elements`, in order and whole, that fits in
/// `budget` bytes and the count limits; and whether any was left out.
fn bounded_sd<'a>(
    elements: &[StructuredElement<&'a str>],
    budget: usize,
) -> (Vec<SdRef<'a>>, bool) {
    let mut kept = Vec::with_capacity(elements.len().min(MAX_SD_ELEMENTS));
    let (mut used, mut params) = (0, 0);
    for e in elements {
        used += sd_element_len(e.id);
        if kept.len() == MAX_SD_ELEMENTS || used > budget {
            return (kept, true);
        }
        let mut element = SdRef {
            id: e.id,
            params: Vec::with_capacity(e.params.len().min(MAX_SD_PARAMS - params)),
        };
        for (name, value) in e.params() {
            used += sd_param_len(name, &value);
            if params == MAX_SD_PARAMS || used > budget {
                kept.push(element);
                return (kept, true);
            }
            params += 1;
            element.params.push((*name, Cow::Owned(value)));
        }
        kept.push(element);
    }
    (kept, false)
}

/// The receive-time context of zoneless RFC 3164 stamps for one minute.
#[derive(Clone, Copy, Debug)]
struct Minute {
    minute: i64,
    offset: FixedOffset,
    year: i32,
    month: u32,
}

/// An RFC 3164 `Mmm dd` and the date it was resolved to.
#[derive(Clone, Copy, Debug)]
struct DayMemo {
    key: [u8; 6],
    date: NaiveDate,
}

/// An RFC 3164 header read without syslog_loose.
struct Fast<'a> {
    timestamp: DateTime<FixedOffset>,
    host: Option<&'a str>,
    app: &'a str,
    pid: Option<&'a str>,
    msg: &'a str,
}

fn month_number(m: [u8; 3]) -> Option<u32> {
    Some(match &m {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

/// A byte no header field of the fast path holds: white space, and
/// anything outside ASCII (it might be Unicode white space; the full
/// parser decides those).
fn space_or_wide(c: u8) -> bool {
    c.is_ascii_whitespace() || c == 0x0b || c >= 0x80
}

/// `:`, `[` or `]`: the bytes that make a field a tag, not a plain name.
fn tag_mark(c: u8) -> bool {
    matches!(c, b':' | b'[' | b']')
}

/// The shapes glibc's `syslog(3)`, `logger` and rsyslog's default template
/// send, read directly: `Mmm dd hh:mm:ss [HOST ]TAG[[PID]]: MSG`. These are
/// most of what a `/dev/log` sees, and nom's general parser costs more than
/// the rest of ingest together. Anything else, or anything this is unsure
/// of, is `None` and goes to syslog_loose, which reads these shapes the same
/// way, only slower: a test checks the two agree on the corpus.
fn fast_3164<'a>(
    after_pri: &'a str,
    at: Minute,
    day_memo: &Cell<Option<DayMemo>>,
) -> Option<Fast<'a>> {
    let b = after_pri.as_bytes();
    if b.len() < 17
        || b[3] != b' '
        || b[6] != b' '
        || b[9] != b':'
        || b[12] != b':'
        || b[15] != b' '
    {
        return None;
    }
    let two = |i: usize| -> Option<u32> {
        let (x, y) = (b[i], b[i + 1]);
        (x.is_ascii_digit() && y.is_ascii_digit())
            .then(|| u32::from(x - b'0') * 10 + u32::from(y - b'0'))
    };
    let (hour, minute, second) = (two(7)?, two(10)?, two(13)?);
    let key: [u8; 6] = b[..6].try_into().ok()?;
    let date = match day_memo.get() {
        Some(m) if m.key == key => m.date,
        _ => {
            let month = month_number([b[0], b[1], b[2]])?;
            let day = match b[4] {
                b' ' if b[5].is_ascii_digit() => u32::from(b[5] - b'0'),
                _ => two(4)?,
            };
            let year = resolve_year((month, day, hour, minute, second), at.year, at.month);
            let date = NaiveDate::from_ymd_opt(year, month, day)?;
            day_memo.set(Some(DayMemo { key, date }));
            date
        }
    };
    let timestamp = at
        .offset
        .from_local_datetime(&date.and_hms_opt(hour, minute, second)?)
        .single()?;
    let rest = &after_pri[16..];
    let r = rest.as_bytes();
    // `first`: the host, or the tag when it ends in `:`.
    let sp = r.iter().position(|&c| c == b' ')?;
    let first = &r[..sp];
    if first.is_empty() || first.iter().any(|&c| space_or_wide(c)) {
        return None;
    }
    let (host, tag, after_tag) = match first.strip_suffix(b":") {
        Some(tag) => (None, tag, sp + 1),
        None => {
            if first == b"-" || first.iter().any(|&c| tag_mark(c)) {
                return None;
            }
            let len = r[sp + 1..].iter().position(|&c| c == b' ')?;
            let tag = r[sp + 1..sp + 1 + len].strip_suffix(b":")?;
            (Some(&rest[..sp]), tag, sp + 1 + len + 1)
        }
    };
    let (app, pid) = match tag.iter().position(|&c| c == b'[') {
        Some(open) => (&tag[..open], Some(tag[open + 1..].strip_suffix(b"]")?)),
        None => (tag, None),
    };
    if app.is_empty()
        || app == b"-"
        || app.iter().any(|&c| tag_mark(c) || space_or_wide(c))
        || pid.is_some_and(|p| p.is_empty() || p.iter().any(|&c| space_or_wide(c)))
    {
        return None;
    }
    let msg = rest[after_tag..].trim_start_matches([' ', '\t']).trim_end();
    if msg.starts_with('[') {
        // Might be taken for structured data: leave it to the full parser.
        return None;
    }
    // Both are ASCII (checked above), so they lie on char boundaries.
    let app_at = app.as_ptr() as usize - rest.as_ptr() as usize;
    let app_str = &rest[app_at..app_at + app.len()];
    let pid_str = pid.map(|p| {
        let at = p.as_ptr() as usize - rest.as_ptr() as usize;
        &rest[at..at + p.len()]
    });
    Some(Fast {
        timestamp,
        host,
        app: app_str,
        pid: pid_str,
        msg,
    })
}

/// The PROCID as the sender wrote it. syslog_loose hands back a number;
/// the text right after the app name (`app[0042]`, `app 0042`) is used when
/// it spells that number, so nothing is allocated and nothing rewritten.
fn pid_as_written<'a>(t: &'a str, app: Option<&'a str>, n: i32) -> Cow<'a, str> {
    let written = app.and_then(|app| {
        let start = (app.as_ptr() as usize).checked_sub(t.as_ptr() as usize)? + app.len();
        let rest = t.get(start + 1..)?;
        let end = rest.find([']', ' ']).unwrap_or(rest.len());
        Some(&rest[..end])
    });
    match written {
        Some(w) if w.parse::<i32>() == Ok(n) => Cow::Borrowed(w),
        _ => Cow::Owned(n.to_string()),
    }
}

/// Drop one trailing NUL (Python, glibc on stream sockets) and any trailing
/// newlines (busybox stdin lines, rsyslog's and syslog-ng's RFC 5424).
fn clean_ends(t: &str) -> &str {
    let t = t.strip_suffix('\0').unwrap_or(t);
    t.trim_end_matches(['\n', '\r'])
}

/// `logger --octet-count` sends RFC 6587 framing even on a datagram:
/// `38 <13>...`. Strip `DIGITS SP` when a PRI follows.
fn strip_octet_count(t: &str) -> &str {
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=6).contains(&digits) && t[digits..].starts_with(" <") {
        &t[digits + 1..]
    } else {
        t
    }
}

/// A fraction of a second in an RFC 3164 stamp, as syslog-ng writes it with
/// `frac-digits()`: `Nov 22 00:26:48.925863 host ...`. Returns where the
/// `.DIGITS` starts and ends in `after_pri`, and its value in nanoseconds.
fn fraction_3164(after_pri: &str) -> Option<(usize, usize, u32)> {
    let b = after_pri.as_bytes();
    // `Mmm dd hh:mm:ss`: 15 bytes, the day space-padded.
    let shape = b.len() > 16
        && b[..3].iter().all(u8::is_ascii_alphabetic)
        && b[3] == b' '
        && (b[4] == b' ' || b[4].is_ascii_digit())
        && b[5].is_ascii_digit()
        && b[6] == b' '
        && [7, 8, 10, 11, 13, 14]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
        && b[9] == b':'
        && b[12] == b':'
        && b[15] == b'.';
    if !shape {
        return None;
    }
    let digits = b[16..].iter().take_while(|c| c.is_ascii_digit()).count();
    if !(1..=9).contains(&digits) || b.get(16 + digits) != Some(&b' ') {
        return None;
    }
    let mut nanos: u32 = after_pri[16..16 + digits].parse().ok()?;
    for _ in digits..9 {
        nanos *= 10;
    }
    Some((15, 16 + digits, nanos))
}

fn strip_bom(s: &str) -> &str {
    s.strip_prefix('\u{feff}').unwrap_or(s)
}

enum Pri<'a> {
    Valid(u8, &'a str),
    Missing,
    Invalid,
}

/// `<PRI>` as RFC 5424 defines it: 1 to 3 digits, 0..=191.
fn split_pri(t: &str) -> Pri<'_> {
    let Some(rest) = t.strip_prefix('<') else {
        return Pri::Missing;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if !(1..=3).contains(&digits) || !rest[digits..].starts_with('>') {
        return Pri::Invalid;
    }
    match rest[..digits].parse::<u8>() {
        Ok(p) if p <= 191 => Pri::Valid(p, &rest[digits + 1..]),
        _ => Pri::Invalid,
    }
}

/// journald's reading of `TAG[PID]: MSG`: the tag runs up to `[`, `:` or
/// white space; a `[PID]` may follow; a `:` must. Without that shape the
/// whole text is the message.
pub(crate) fn split_tag(s: &str) -> (Option<&str>, Option<&str>, &str) {
    let end = s
        .find(|c: char| c == ':' || c == '[' || c.is_whitespace())
        .unwrap_or(s.len());
    if end == 0 || end > 48 {
        return (None, None, s);
    }
    let (tag, mut rest) = s.split_at(end);
    let mut pid = None;
    if let Some(r) = rest.strip_prefix('[') {
        match r.find(']') {
            Some(close) if close > 0 && close <= 32 => {
                pid = Some(&r[..close]);
                rest = &r[close + 1..];
            }
            _ => return (None, None, s),
        }
    }
    match rest.strip_prefix(':') {
        Some(msg) => (Some(tag), pid, msg.strip_prefix(' ').unwrap_or(msg)),
        None => (None, None, s),
    }
}

/// The year for an RFC 3164 timestamp, which has none: the receive year,
/// except across New Year (a December stamp read in January is last year's)
/// and never a date that does not exist (Feb 29 goes to the last leap year).
fn resolve_year(d: IncompleteDate, now_year: i32, now_month: u32) -> i32 {
    let (month, day) = (d.0, d.1);
    let mut year = match (month, now_month) {
        (12, 1) => now_year - 1,
        (1, 12) => now_year + 1,
        _ => now_year,
    };
    if month == 2 && day == 29 {
        while NaiveDate::from_ymd_opt(year, 2, 29).is_none() {
            year -= 1;
        }
    }
    year
}

#[cfg(test)]
mod tests;
