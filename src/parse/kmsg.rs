//! One `/dev/kmsg` record into one [`Record`]: the kernel's own lines and
//! what user space wrote into the kernel's log.
//!
//! A record (the kernel's `Documentation/ABI/testing/dev-kmsg`) is
//! `PRIO,SEQ,USEC,FLAGS[,MORE...];TEXT\n`, then zero or more continuation
//! lines ` KEY=value\n` (`SUBSYSTEM=`, `DEVICE=`). PRIO is
//! `facility << 3 | severity`; SEQ the kernel's consecutive record number;
//! USEC microseconds since boot; FLAGS `-`, or `c` for a fragment of a line
//! continued in the next record. In TEXT and in the values the kernel writes
//! control bytes, `\` and every byte >= 0x80 as `\xNN`: they are unescaped
//! here so UTF-8 reads as UTF-8.
//!
//! Also here: [`SeqTracker`], which counts the records a reader never saw
//! from the jumps in SEQ.

use std::ops::Range;

use chrono::{DateTime, Utc};

use super::escape_invalid_utf8;
use super::syslog::split_tag;
use crate::record::{truncate_utf8, Input, KernelMeta, Record, SdElement};

/// The SD-ID under which a record's ` KEY=value` lines (and any header
/// fields after FLAGS) are kept.
pub const SD_ID: &str = "kmsg";
/// `source` of the kernel's own records (facility 0).
pub const KERNEL_SOURCE: &str = "kernel";
/// `source` of a record that names no tag, or whose header is unreadable.
pub const UNTAGGED_SOURCE: &str = "kmsg";
/// Highest facility code with a name; the kernel stores up to 255.
const MAX_FACILITY: u64 = 23;

/// The result of parsing one record.
#[derive(Debug)]
pub struct Parsed {
    pub record: Record,
    /// The header was unreadable: the record's text was kept as it came.
    pub malformed: bool,
}

/// Turns `/dev/kmsg` records into [`Record`]s. Holds what every record
/// needs and none carries: this machine's name and the length limit.
#[derive(Clone, Debug)]
pub struct KmsgParser {
    local_host: String,
    max_msg_len: usize,
}

impl KmsgParser {
    pub fn new(local_host: impl Into<String>, max_msg_len: usize) -> KmsgParser {
        KmsgParser {
            local_host: local_host.into(),
            max_msg_len,
        }
    }

    /// Parse one record (one `read()` of `/dev/kmsg`, or a header line and
    /// its continuation lines from a file) received at `received_ns`.
    ///
    /// `boot_ns` is the wall-clock time of boot in nanoseconds since the
    /// epoch, which turns USEC into the record's `timestamp`; `None` when
    /// the record comes from another boot (a replayed file), where no such
    /// conversion would be true.
    pub fn parse(&self, raw: &[u8], received_ns: i64, boot_ns: Option<i64>) -> Parsed {
        let mut record = Record::new(Input::Kmsg, received_ns, UNTAGGED_SOURCE, "");
        let malformed = parse_record(raw, boot_ns, &mut record).is_none();
        if malformed {
            // Kept whole, as it came: the header is part of what was said,
            // and nothing read is thrown away.
            let text = escape_invalid_utf8(trim_newlines(raw));
            record = Record::new(Input::Kmsg, received_ns, UNTAGGED_SOURCE, text);
        }
        record.host = Some(self.local_host.clone());
        record.truncated = truncate_utf8(&mut record.msg, self.max_msg_len);
        Parsed { record, malformed }
    }
}

/// Fill `r` from a well-formed record; `None` at the first thing that does
/// not fit the format (then `r` is half-filled and must be discarded).
fn parse_record(raw: &[u8], boot_ns: Option<i64>, r: &mut Record) -> Option<()> {
    let raw = trim_newlines(raw);
    let mut lines = raw.split(|&b| b == b'\n');
    let first = lines.next()?;
    let semi = first.iter().position(|&b| b == b';')?;
    let header = std::str::from_utf8(&first[..semi]).ok()?;
    let text = &first[semi + 1..];

    let mut fields = header.split(',');
    let prio = decimal(fields.next()?)?;
    let seq = decimal(fields.next()?)?;
    let usec = decimal(fields.next()?)?;
    let flags = fields.next()?;
    let facility = prio >> 3;
    if facility > MAX_FACILITY {
        return None;
    }
    r.facility = Some(facility as u8);
    r.severity = Some((prio & 7) as u8);
    r.kernel = Some(KernelMeta {
        seq,
        usec,
        fragment: flags.contains('c'),
    });
    r.timestamp = boot_ns.and_then(|boot| wall_clock(boot, usec));

    // Fields after FLAGS are extensions (`caller=T1` with
    // CONFIG_PRINTK_CALLER): kept beside the KEY=value lines.
    let mut params: Vec<(String, String)> = fields.map(key_value_str).collect();
    for line in lines {
        let line = line.strip_prefix(b" ").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        params.push(key_value(line));
    }
    if !params.is_empty() {
        r.sd.push(SdElement {
            id: SD_ID.to_owned(),
            params,
        });
    }

    let text = unescape(text);
    if facility == 0 {
        r.source = KERNEL_SOURCE.to_owned();
        r.msg = text;
    } else {
        // User space wrote it (`echo '<30>systemd[1]: ...' > /dev/kmsg`):
        // its tag and pid are read the way /dev/log's are.
        let (app, pid, msg) = split_tag(&text);
        r.app = app.map(str::to_owned);
        r.pid = pid.map(str::to_owned);
        r.source = app.unwrap_or(UNTAGGED_SOURCE).to_owned();
        r.msg = msg.to_owned();
    }
    Some(())
}

/// Boot time plus USEC as a UTC timestamp; `None` past the year 2262.
fn wall_clock(boot_ns: i64, usec: u64) -> Option<DateTime<chrono::FixedOffset>> {
    let ns = i64::try_from(usec)
        .ok()?
        .checked_mul(1000)?
        .checked_add(boot_ns)?;
    Some(DateTime::<Utc>::from_timestamp_nanos(ns).fixed_offset())
}

/// A field of ASCII digits only (`str::parse` would also take a `+`).
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn trim_newlines(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| c != b'\n').map_or(0, |i| i + 1);
    &b[..end]
}

/// `KEY=value` with the value unescaped; a line without `=` is all key, so
/// that nothing the kernel wrote is lost.
fn key_value(line: &[u8]) -> (String, String) {
    match line.iter().position(|&b| b == b'=') {
        Some(eq) => (unescape(&line[..eq]), unescape(&line[eq + 1..])),
        None => (unescape(line), String::new()),
    }
}

fn key_value_str(field: &str) -> (String, String) {
    key_value(field.as_bytes())
}

/// Undo the kernel's `\xNN` escapes. Bytes that then do not form UTF-8 are
/// written `\xNN` again rather than replaced, so nothing is lost; a `\` not
/// followed by `x` and two hex digits (never written by the kernel) stays.
pub fn unescape(b: &[u8]) -> String {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            if let (Some(hi), Some(lo)) = (
                b.get(i + 2).and_then(|&c| hex(c)),
                b.get(i + 3).and_then(|&c| hex(c)),
            ) {
                out.push(hi << 4 | lo);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    escape_invalid_utf8(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Follows the kernel's consecutive sequence numbers and says how many
/// records were skipped: after `EPIPE` (the kernel overwrote records before
/// they were read), or between two records of a replayed file.
#[derive(Clone, Debug, Default)]
pub struct SeqTracker {
    next: Option<u64>,
}

impl SeqTracker {
    /// Note the record numbered `seq`; return the numbers skipped just before
    /// it, if any. The first record sets the start: what the kernel dropped
    /// before anyone read it is not a loss of this reader. A number that
    /// goes backwards (two captures in one file) starts over.
    pub fn observe(&mut self, seq: u64) -> Option<Range<u64>> {
        let lost = match self.next {
            Some(want) if seq > want => Some(want..seq),
            _ => None,
        };
        self.next = seq.checked_add(1);
        lost
    }

    /// The sequence number expected next, once a record was seen.
    pub fn expected(&self) -> Option<u64> {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_306_793_000_000_000;
    /// 2026-11-22T00:04:02Z, a boot time.
    const BOOT: i64 = 1_795_305_842_000_000_000;

    fn parse(raw: &[u8]) -> Parsed {
        KmsgParser::new("thishost", 8192).parse(raw, NOW, Some(BOOT))
    }

    #[test]
    fn a_kernel_record() {
        let p = parse(b"6,340,1353811,-;EXT4-fs (vda): mounted filesystem r/w\n");
        assert!(!p.malformed);
        let r = p.record;
        assert_eq!(r.input, Input::Kmsg);
        assert_eq!(r.source, "kernel");
        assert_eq!((r.facility, r.severity), (Some(0), Some(6)));
        assert_eq!(r.app, None);
        assert_eq!(r.pid, None);
        assert_eq!(r.host.as_deref(), Some("thishost"));
        assert_eq!(r.msg, "EXT4-fs (vda): mounted filesystem r/w");
        assert_eq!(
            r.kernel,
            Some(KernelMeta {
                seq: 340,
                usec: 1_353_811,
                fragment: false
            })
        );
        assert_eq!(r.received_ns, NOW);
        let ts = r.timestamp.unwrap();
        assert_eq!(
            ts.timestamp_nanos_opt(),
            Some(BOOT + 1_353_811_000),
            "boot time plus USEC"
        );
        assert_eq!(ts.offset().local_minus_utc(), 0);
        assert!(r.sd.is_empty());
        assert!(!r.truncated);
    }

    #[test]
    fn facility_and_severity_for_every_prio() {
        for prio in 0u64..192 {
            let p = parse(format!("{prio},1,2,-;x").as_bytes());
            assert!(!p.malformed, "prio {prio}");
            assert_eq!(p.record.facility, Some((prio / 8) as u8), "prio {prio}");
            assert_eq!(p.record.severity, Some((prio % 8) as u8), "prio {prio}");
        }
    }

    #[test]
    fn user_space_records_get_their_tag_and_pid() {
        let r = parse(b"30,12,5000000,-;systemd[1]: Started Journal Service.\n").record;
        assert_eq!((r.facility, r.severity), (Some(3), Some(6)));
        assert_eq!(r.source, "systemd");
        assert_eq!(r.app.as_deref(), Some("systemd"));
        assert_eq!(r.pid.as_deref(), Some("1"));
        assert_eq!(r.msg, "Started Journal Service.");

        let r = parse(b"13,13,5000001,-;mytag: no pid").record;
        assert_eq!(r.source, "mytag");
        assert_eq!(r.pid, None);
        assert_eq!(r.msg, "no pid");

        let r = parse(b"12,14,5000002,-;no tag at all here").record;
        assert_eq!(r.source, "kmsg");
        assert_eq!(r.app, None);
        assert_eq!(r.msg, "no tag at all here");
    }

    #[test]
    fn a_kernel_line_that_looks_tagged_stays_whole() {
        // Facility 0 is the kernel: `usb 1-1:` is text, not a tag.
        let r = parse(b"6,7,8,-;usb 1-1: new high-speed USB device").record;
        assert_eq!(r.source, "kernel");
        assert_eq!(r.app, None);
        assert_eq!(r.msg, "usb 1-1: new high-speed USB device");
    }

    #[test]
    fn continuation_lines_become_structured_data() {
        let raw = b"6,271,2000,-;pci 0000:00:01.0: [8086:7000] type 00 class 0x060100\n SUBSYSTEM=pci\n DEVICE=+pci:0000:00:01.0\n";
        let r = parse(raw).record;
        assert_eq!(
            r.msg,
            "pci 0000:00:01.0: [8086:7000] type 00 class 0x060100"
        );
        assert_eq!(
            r.sd,
            vec![SdElement {
                id: "kmsg".into(),
                params: vec![
                    ("SUBSYSTEM".into(), "pci".into()),
                    ("DEVICE".into(), "+pci:0000:00:01.0".into()),
                ],
            }]
        );
    }

    #[test]
    fn extra_header_fields_are_kept() {
        let r = parse(b"6,1,2,-,caller=T1;text\n").record;
        assert_eq!(r.msg, "text");
        assert_eq!(r.sd[0].params, vec![("caller".into(), "T1".into())]);
    }

    #[test]
    fn escapes_are_undone_and_invalid_utf8_stays_escaped() {
        let r = parse(b"6,1,2,-;back\\x5cslash caf\\xc3\\xa9 bad\\xff\\xfe end\\x0anext\n").record;
        assert_eq!(r.msg, "back\\slash café bad\\xff\\xfe end\nnext");
        // A truncated UTF-8 sequence at the end stays escaped too.
        assert_eq!(parse(b"6,1,2,-;x\\xc3").record.msg, "x\\xc3");
        // Values are escaped the same way.
        let r = parse(b"6,1,2,-;m\n DEVICE=caf\\xc3\\xa9\\x5c\n").record;
        assert_eq!(r.sd[0].params[0].1, "café\\");
    }

    #[test]
    fn unescape_leaves_what_is_not_an_escape() {
        assert_eq!(unescape(b"a\\b"), "a\\b");
        assert_eq!(unescape(b"\\x4"), "\\x4");
        assert_eq!(unescape(b"\\xzz"), "\\xzz");
        assert_eq!(unescape(b"\\x41\\X41\\"), "A\\X41\\");
        assert_eq!(unescape(b""), "");
    }

    #[test]
    fn raw_invalid_bytes_in_a_file_are_escaped_not_replaced() {
        let r = parse(b"6,1,2,-;raw \xff byte").record;
        assert_eq!(r.msg, "raw \\xff byte");
    }

    #[test]
    fn the_fragment_flag() {
        let r = parse(b"4,90,100,c;first half").record;
        assert!(r.kernel.unwrap().fragment);
        assert_eq!(r.msg, "first half");
        assert!(!parse(b"4,91,100,-;whole").record.kernel.unwrap().fragment);
    }

    #[test]
    fn no_boot_time_means_no_timestamp_but_usec_is_kept() {
        let r = KmsgParser::new("h", 100)
            .parse(b"6,1,2500000,-;x", NOW, None)
            .record;
        assert_eq!(r.timestamp, None);
        assert_eq!(r.kernel.unwrap().usec, 2_500_000);
    }

    #[test]
    fn malformed_records_are_kept_raw_and_flagged() {
        for raw in [
            &b"no header at all\n"[..],
            b"6,1,2;too few fields",
            b"x,1,2,-;prio not a number",
            b"6,+1,2,-;sign in seq",
            b"6,1,,-;empty usec",
            b"192,1,2,-;facility 24 has no name",
            b"6,18446744073709551616,2,-;seq overflows u64",
            b"",
            b"\n",
        ] {
            let p = parse(raw);
            assert!(p.malformed, "{:?}", String::from_utf8_lossy(raw));
            let r = p.record;
            assert_eq!(r.input, Input::Kmsg);
            assert_eq!(r.source, "kmsg");
            assert_eq!(r.facility, None);
            assert_eq!(r.kernel, None);
            assert_eq!(r.host.as_deref(), Some("thishost"));
            assert_eq!(r.msg.as_bytes(), trim_newlines(raw));
        }
        let p = parse(b"garbage \xff\n");
        assert_eq!(p.record.msg, "garbage \\xff");
    }

    #[test]
    fn long_text_is_cut_at_the_limit_on_a_char_boundary() {
        let parser = KmsgParser::new("h", 10);
        let r = parser
            .parse("6,1,2,-;aaaaaaaaaé tail".as_bytes(), NOW, None)
            .record;
        assert_eq!(r.msg, "aaaaaaaaa");
        assert!(r.truncated);
        let r = parser.parse(b"6,1,2,-;short", NOW, None).record;
        assert!(!r.truncated);
        let p = parser.parse(b"malformed and long", NOW, None);
        assert!(p.malformed && p.record.truncated);
        assert_eq!(p.record.msg, "malformed ");
    }

    #[test]
    fn huge_usec_gives_no_timestamp_rather_than_a_wrong_one() {
        let r = parse(b"6,1,18446744073709551615,-;x").record;
        assert_eq!(r.timestamp, None);
        assert_eq!(r.kernel.unwrap().usec, u64::MAX);
    }

    #[test]
    fn the_gap_count() {
        let mut t = SeqTracker::default();
        assert_eq!(t.expected(), None);
        // Whatever the kernel dropped before the first read is not ours.
        assert_eq!(t.observe(1018), None);
        assert_eq!(t.observe(1019), None);
        assert_eq!(t.expected(), Some(1020));
        assert_eq!(t.observe(1025), Some(1020..1025));
        assert_eq!(t.observe(1025 + 1), None);
        // Backwards: a second capture in the same file, not a loss.
        assert_eq!(t.observe(3), None);
        assert_eq!(t.observe(4), None);
        assert_eq!(t.observe(4), None, "a repeated record loses nothing");
        assert_eq!(t.observe(u64::MAX), Some(5..u64::MAX));
        assert_eq!(t.expected(), None, "nothing can follow u64::MAX");
        assert_eq!(t.observe(0), None);
    }
}
