//! Records as the bytes clients read: the memlogd JSON line (with our extra
//! keys after memlogd's three) and the `TIME;SOURCE;MSG` text line.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::record::{facility_name, severity_name, Record, SdElement};

/// RFC 3339 in UTC with nanoseconds, trailing zeros of the fraction dropped,
/// exactly as Go's `time.RFC3339Nano` prints it (memlogd's `time`).
pub fn rfc3339_nanos(ns: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_nanos(ns);
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = t.timestamp_subsec_nanos();
    if frac != 0 {
        let digits = format!("{frac:09}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

struct Sd<'a>(&'a [SdElement]);

impl Serialize for Sd<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for e in self.0 {
            m.serialize_entry(&e.id, &Params(&e.params))?;
        }
        m.end()
    }
}

struct Params<'a>(&'a [(String, String)]);

impl Serialize for Params<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct PeerJson {
    pid: u32,
    uid: u32,
    gid: u32,
}

/// The JSON line's keys, in the order they are written: memlogd's `time`,
/// `source`, `msg` first, then ours. Absent fields are left out.
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    source: &'a str,
    msg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    input: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    facility: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    severity: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    msgid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sd: Option<Sd<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<PeerJson>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    missed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kmsg_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kmsg_usec: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    kmsg_fragment: bool,
}

impl<'a> Line<'a> {
    fn of(r: &'a Record, seq: Option<u64>) -> Line<'a> {
        Line {
            time: rfc3339_nanos(r.received_ns),
            source: &r.source,
            msg: &r.msg,
            seq,
            input: r.input.as_str(),
            timestamp: r
                .timestamp
                .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            facility: r.facility.and_then(facility_name),
            severity: r.severity.and_then(severity_name),
            host: r.host.as_deref(),
            app: r.app.as_deref(),
            pid: r.pid.as_deref(),
            msgid: r.msgid.as_deref(),
            sd: (!r.sd.is_empty()).then_some(Sd(&r.sd)),
            peer: r.peer.map(|p| PeerJson {
                pid: p.pid,
                uid: p.uid,
                gid: p.gid,
            }),
            truncated: r.truncated,
            missed: None,
            kmsg_seq: r.kernel.map(|k| k.seq),
            kmsg_usec: r.kernel.map(|k| k.usec),
            kmsg_fragment: r.kernel.is_some_and(|k| k.fragment),
        }
    }
}

/// Append `r` as one JSON line (with its `\n`) to `out`.
pub fn write_json_line(r: &Record, out: &mut Vec<u8>) {
    let line = Line::of(r, Some(r.seq));
    // Writing to a Vec cannot fail, and every value here serializes.
    serde_json::to_writer(&mut *out, &line).expect("a record always serializes");
    out.push(b'\n');
}

/// Append the line that tells a reader it was lapped: an `internal` entry
/// from `memlogd` with a `missed` count, and no `seq` of its own since it
/// is not in the ring.
pub fn write_missed_line(now_ns: i64, missed: u64, out: &mut Vec<u8>) {
    let r = Record::internal(
        now_ns,
        4,
        format!("{missed} entries were overwritten in the ring before this reader got them"),
    );
    let mut line = Line::of(&r, None);
    line.missed = Some(missed);
    serde_json::to_writer(&mut *out, &line).expect("a record always serializes");
    out.push(b'\n');
}

/// memlogd's text form: `TIME;SOURCE;MSG`, with `;` in SOURCE written `\;`.
pub fn text_line(time: &str, source: &str, msg: &str) -> String {
    format!("{};{};{}", time, source.replace(';', "\\;"), msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Input, KernelMeta, Peer};

    #[test]
    fn time_matches_go_rfc3339nano() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nanos(1_720_000_000_974_497_577),
            "2024-07-03T09:46:40.974497577Z"
        );
        assert_eq!(
            rfc3339_nanos(1_720_000_000_500_000_000),
            "2024-07-03T09:46:40.5Z"
        );
    }

    #[test]
    fn memlogd_keys_come_first_and_absent_fields_are_left_out() {
        let mut r = Record::new(Input::Fd, 0, "svc.out", "hello");
        r.seq = 3;
        let mut out = Vec::new();
        write_json_line(&r, &mut out);
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
        r.sd = vec![SdElement {
            id: "a@1".into(),
            params: vec![("k".into(), "v".into())],
        }];
        r.peer = Some(Peer {
            pid: 1,
            uid: 2,
            gid: 3,
        });
        r.truncated = true;
        let mut out = Vec::new();
        write_json_line(&r, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["facility"], "user");
        assert_eq!(v["severity"], "err");
        assert_eq!(v["sd"]["a@1"]["k"], "v");
        assert_eq!(v["peer"]["uid"], 2);
        assert_eq!(v["truncated"], true);
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
        write_json_line(&r, &mut out);
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
        write_json_line(&r, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["kmsg_fragment"], true);
        r.kernel = None;
        let mut out = Vec::new();
        write_json_line(&r, &mut out);
        assert!(!String::from_utf8(out).unwrap().contains("kmsg_"));
    }

    #[test]
    fn semicolons_in_the_source_are_escaped() {
        assert_eq!(text_line("T", "a;b", "m;n"), "T;a\\;b;m;n");
    }
}
