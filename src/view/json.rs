//! The JSON line a record is read as, written by hand: memlogd's `time`,
//! `source`, `msg` first, then ours, absent fields left out. A dump writes
//! one per entry, so this avoids serde's per-field machinery and escapes
//! strings eight bytes at a time.

use super::timefmt;
use crate::record::{facility_name, severity_name, RecordRef, SdRef};

/// Append `r` as one JSON line (with its `\n`). `seq` is left out for an
/// entry that is not in the ring; `missed` is only on a lapped reader's
/// notice.
pub fn write_line(r: &RecordRef, seq: Option<u64>, missed: Option<u64>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"time\":\"");
    timefmt::write_utc_nanos(r.received_ns, out);
    out.extend_from_slice(b"\",\"source\":");
    write_str(r.source, out);
    out.extend_from_slice(b",\"msg\":");
    write_str(r.msg, out);
    if let Some(seq) = seq {
        key(out, "seq");
        write_u64(seq, out);
    }
    key(out, "input");
    write_str(r.input.as_str(), out);
    if let Some(ts) = &r.timestamp {
        key(out, "timestamp");
        out.push(b'"');
        timefmt::write_with_offset(ts, out);
        out.push(b'"');
    }
    for (name, value) in [
        ("facility", r.facility.and_then(facility_name)),
        ("severity", r.severity.and_then(severity_name)),
        ("host", r.host),
        ("app", r.app),
        ("pid", r.pid.as_deref()),
        ("msgid", r.msgid),
    ] {
        if let Some(v) = value {
            key(out, name);
            write_str(v, out);
        }
    }
    if !r.sd.is_empty() {
        key(out, "sd");
        write_sd(&r.sd, out);
    }
    if let Some(p) = &r.peer {
        key(out, "peer");
        out.extend_from_slice(b"{\"pid\":");
        write_u64(p.pid.into(), out);
        out.extend_from_slice(b",\"uid\":");
        write_u64(p.uid.into(), out);
        out.extend_from_slice(b",\"gid\":");
        write_u64(p.gid.into(), out);
        out.push(b'}');
    }
    if let Some(a) = &r.peer_addr {
        key(out, "peer_addr");
        write_str(&a.to_string(), out);
    }
    if r.truncated {
        key(out, "truncated");
        out.extend_from_slice(b"true");
    }
    if let Some(m) = missed {
        key(out, "missed");
        write_u64(m, out);
    }
    if let Some(k) = &r.kernel {
        key(out, "kmsg_seq");
        write_u64(k.seq, out);
        key(out, "kmsg_usec");
        write_u64(k.usec, out);
        if k.fragment {
            key(out, "kmsg_fragment");
            out.extend_from_slice(b"true");
        }
    }
    out.extend_from_slice(b"}\n");
}

/// `v` (a reply: counters, an error) as one JSON line, with DEL and the C1
/// controls escaped as [`write_str`] escapes them. serde_json leaves them
/// raw; outside a string JSON has only ASCII punctuation, so escaping each
/// one wherever it is stays valid.
pub fn value_line(v: &serde_json::Value) -> String {
    let text = v.to_string();
    let mut line = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        match u32::from(c) {
            n @ 0x7f..=0x9f => line.push_str(&format!("\\u{n:04x}")),
            _ => line.push(c),
        }
    }
    line.push('\n');
    line
}

/// Structured data as one object per SD-ID holding one key per
/// PARAM-NAME, so no object has a duplicate key. RFC 5424 lets a name
/// repeat within an element: its values become an array, in order (a name
/// sent once stays a plain string). A repeated SD-ID, which RFC 5424
/// forbids but a sender can write, has its params joined to the first
/// element of that ID. No value is lost either way.
fn write_sd(sd: &[SdRef], out: &mut Vec<u8>) {
    out.push(b'{');
    let ids: Vec<&str> = sd.iter().map(|e| e.id).collect();
    for (i, same_id) in groups(&ids).iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(ids[same_id[0]], out);
        out.push(b':');
        let params: Vec<(&str, &str)> = same_id
            .iter()
            .flat_map(|&e| sd[e].params.iter().map(|(k, v)| (*k, v.as_ref())))
            .collect();
        let names: Vec<&str> = params.iter().map(|(k, _)| *k).collect();
        out.push(b'{');
        for (j, same_name) in groups(&names).iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            write_str(names[same_name[0]], out);
            out.push(b':');
            if let [one] = same_name[..] {
                write_str(params[one].1, out);
                continue;
            }
            out.push(b'[');
            for (n, &p) in same_name.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_str(params[p].1, out);
            }
            out.push(b']');
        }
        out.push(b'}');
    }
    out.push(b'}');
}

/// The positions of `keys` grouped by equal key: each group in order, the
/// groups in the order their keys first appear. Sorting, not comparing
/// every pair, so a long list costs n log n.
fn groups(keys: &[&str]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| keys[a].cmp(keys[b]).then(a.cmp(&b)));
    let mut groups: Vec<Vec<usize>> = order
        .chunk_by(|&a, &b| keys[a] == keys[b])
        .map(<[usize]>::to_vec)
        .collect();
    groups.sort_by_key(|g| g[0]);
    groups
}

fn key(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

pub(super) fn write_u64(v: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each of the eight bytes of `w` that is `b` (SWAR: the
/// classic has-zero-byte test on `w` xor `b` in every byte; it may also
/// flag a byte next to a match, never miss one).
fn bytes_equal(w: u64, b: u8) -> u64 {
    let x = w ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Flags bytes below 0x20, DEL and 0xC2 (the first byte of a C1 control).
fn control_bytes(w: u64) -> u64 {
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    below_space | bytes_equal(w, 0x7f) | bytes_equal(w, 0xc2)
}

/// Whether byte `c` is below 0x20, DEL or 0xC2: what [`control_bytes`]
/// flags, a byte at a time (bitwise, so a loop over bytes need not branch).
pub(super) fn control_byte(c: u8) -> bool {
    (c < 0x20) | (c == 0x7f) | (c == 0xc2)
}

/// Whether any of the eight bytes in `w` is below 0x20, DEL or 0xC2: a
/// word without one is copied as it is by the text formats and the JSON
/// line alike.
pub(super) fn may_hold_control(w: u64) -> bool {
    control_bytes(w) != 0
}

/// Whether any of the eight bytes in `w` is `"`, `\\`, or a byte
/// [`may_hold_control`] flags.
fn needs_escape(w: u64) -> bool {
    control_bytes(w) | bytes_equal(w, b'"') | bytes_equal(w, b'\\') != 0
}

/// Whether `flag` holds for no byte of `b`. Every byte is looked at, with
/// no early exit, so the compiler checks many at a time: the escaping
/// writers ask it first, since most text needs no escape.
pub(super) fn none_flagged(b: &[u8], flag: impl Fn(u8) -> bool) -> bool {
    let mut flagged = false;
    for &c in b {
        flagged |= flag(c);
    }
    !flagged
}

/// `s` as a JSON string, quotes included. Besides what JSON requires, DEL
/// and the C1 controls (U+0080..U+009F) are written `\u00NN`: JSON allows
/// them raw, but a terminal showing the line would obey them.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let b = s.as_bytes();
    // Most strings need no escape at all: copied at once.
    if none_flagged(b, |c| control_byte(c) | (c == b'"') | (c == b'\\')) {
        out.extend_from_slice(b);
        out.push(b'"');
        return;
    }
    let mut done = 0;
    let mut i = 0;
    while i < b.len() {
        if i + 8 <= b.len() {
            let w = u64::from_le_bytes(b[i..i + 8].try_into().expect("eight bytes"));
            if !needs_escape(w) {
                i += 8;
                continue;
            }
        }
        let (mut c, mut len) = (b[i], 1);
        if c == 0xc2 && matches!(b.get(i + 1), Some(0x80..=0x9f)) {
            // U+0080..U+009F is 0xC2 then the code point's own byte.
            (c, len) = (b[i + 1], 2);
        } else if c >= 0x80 {
            // Any other byte of a multi-byte character.
            i += 1;
            continue;
        }
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f | 0x7f..=0x9f => b"",
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&b[done..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 15)]);
        } else {
            out.extend_from_slice(esc);
        }
        i += len;
        done = i;
    }
    out.extend_from_slice(&b[done..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde_json's escaping, plus DEL and C1 controls as `\u00NN`.
    fn expected(s: &str) -> String {
        let mut e = String::new();
        for c in serde_json::to_string(s).unwrap().chars() {
            match u32::from(c) {
                n @ (0x7f..=0x9f) => e.push_str(&format!("\\u{n:04x}")),
                _ => e.push(c),
            }
        }
        e
    }

    #[test]
    fn strings_escape_as_serde_json_does_and_controls_too() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "plain ascii text, long enough for several words".into(),
            "quote\" back\\slash".into(),
            "ctl \u{0}\u{1}\u{8}\u{c}\n\r\t\u{1b}\u{1f} end".into(),
            "ünïcødé ✓ 日本語 \u{7f} ©\u{a0}\u{9b}2J \u{80}\u{9f}".into(),
        ];
        // Every character up to U+00A0 at every position within an 8-byte
        // word (U+0080.. are two bytes, so they straddle words too).
        for c in (0u32..=0xa0).filter_map(char::from_u32) {
            for pos in 0..9 {
                let mut s = "abcdefghijklmnop".to_string();
                s.insert(pos, c);
                samples.push(s);
            }
        }
        for s in samples {
            let mut out = Vec::new();
            write_str(&s, &mut out);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text, expected(&s), "{s:?}");
            assert_eq!(serde_json::from_str::<String>(&text).unwrap(), s);
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    }

    fn sd_json(sd: &[(&'static str, &[(&'static str, &'static str)])]) -> String {
        let sd: Vec<SdRef> = sd
            .iter()
            .map(|(id, params)| SdRef {
                id,
                params: params.iter().map(|(k, v)| (*k, (*v).into())).collect(),
            })
            .collect();
        let mut out = Vec::new();
        write_sd(&sd, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn repeated_sd_names_become_arrays_and_repeated_ids_join() {
        assert_eq!(
            sd_json(&[("a@1", &[("k", "1"), ("z", "2")])]),
            r#"{"a@1":{"k":"1","z":"2"}}"#
        );
        assert_eq!(
            sd_json(&[("o", &[("ip", "1"), ("x", "y"), ("ip", "2"), ("ip", "3")])]),
            r#"{"o":{"ip":["1","2","3"],"x":"y"}}"#
        );
        assert_eq!(
            sd_json(&[
                ("b", &[("k", "1")]),
                ("a", &[]),
                ("b", &[("k", "2"), ("j", "3")])
            ]),
            r#"{"b":{"k":["1","2"],"j":"3"},"a":{}}"#
        );
    }

    #[test]
    fn replies_escape_controls_too() {
        let v = serde_json::json!({ "sources": { "a\u{9b}2J\u{7f}\u{1b}": 1 } });
        let line = value_line(&v);
        assert_eq!(line, "{\"sources\":{\"a\\u009b2J\\u007f\\u001b\":1}}\n");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&line).unwrap(), v);
    }

    #[test]
    fn numbers() {
        for v in [0, 7, 10, 99, 12345, u64::MAX] {
            let mut out = Vec::new();
            write_u64(v, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), v.to_string());
        }
    }
}
