//! Entries in systemd's Journal Export Format, as `systemd-journal-remote`
//! takes them on `POST /upload`: one `NAME=value` line per field, an empty
//! line after each entry, and a value holding a newline or another
//! control character in the binary form (`NAME`, newline, its length as a
//! little-endian 64-bit number, the bytes, newline).
//!
//! The fields are those journald gives a syslog message (`MESSAGE`,
//! `PRIORITY`, `SYSLOG_FACILITY`, `SYSLOG_IDENTIFIER`, `SYSLOG_PID`,
//! `SYSLOG_TIMESTAMP`), the receive time as the entry's own
//! (`__REALTIME_TIMESTAMP`), the device (`_HOSTNAME`, `_BOOT_ID`,
//! `_MACHINE_ID`), the sender's kernel-checked credentials (`_PID`, `_UID`,
//! `_GID`), one `SD_ID_PARAM` field per structured-data parameter, and
//! where the entry came from in the ring (`RINGLOGD_SEQ`, `RINGLOGD_INPUT`,
//! `RINGLOGD_SOURCE`), so a central `journalctl` can tell a duplicate by
//! its sequence number.

use std::io::Write as _;

use super::lost::Lost;
use crate::record::RecordRef;
use crate::view::timefmt::write_with_offset;

/// The journal's longest field name.
const FIELD_NAME_MAX: usize = 64;

/// What identifies the device in every entry, read once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Device {
    /// `/proc/sys/kernel/random/boot_id` without its dashes.
    pub boot_id: Option<String>,
    /// `/etc/machine-id`.
    pub machine_id: Option<String>,
}

impl Device {
    /// This machine's ids, those it has.
    pub fn this() -> Device {
        let read = |path: &str| std::fs::read_to_string(path).ok().and_then(|s| id128(&s));
        Device {
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            machine_id: read("/etc/machine-id"),
        }
    }
}

/// A 128-bit id as the journal writes it (32 lowercase hex digits), from
/// its text with or without dashes; `None` when it is not one.
fn id128(text: &str) -> Option<String> {
    let hex: String = text.trim().chars().filter(|&c| c != '-').collect();
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// Append `r` to `out` as one entry. `host` is the device's name; a
/// notice of `lost` entries (a message of the route's own, not a ring
/// entry) names them instead of a sequence number.
pub fn encode(r: &RecordRef, host: &str, device: &Device, lost: Lost, out: &mut Vec<u8>) {
    let us = r.received_ns.max(0) / 1000;
    number(out, "__REALTIME_TIMESTAMP", us as u64);
    field(out, "_HOSTNAME", host.as_bytes());
    if let Some(id) = &device.boot_id {
        field(out, "_BOOT_ID", id.as_bytes());
    }
    if let Some(id) = &device.machine_id {
        field(out, "_MACHINE_ID", id.as_bytes());
    }
    if let Some(p) = r.peer {
        number(out, "_PID", p.pid.into());
        number(out, "_UID", p.uid.into());
        number(out, "_GID", p.gid.into());
    }
    if let Some(s) = r.severity {
        number(out, "PRIORITY", s.into());
    }
    if let Some(f) = r.facility {
        number(out, "SYSLOG_FACILITY", f.into());
    }
    field(
        out,
        "SYSLOG_IDENTIFIER",
        r.app.unwrap_or(r.source).as_bytes(),
    );
    if let Some(pid) = &r.pid {
        field(out, "SYSLOG_PID", pid.as_bytes());
    }
    if let Some(ts) = &r.timestamp {
        let start = out.len();
        out.extend_from_slice(b"SYSLOG_TIMESTAMP=");
        write_with_offset(ts, out);
        debug_assert!(!out[start..].contains(&b'\n'));
        out.push(b'\n');
    }
    // A relayed message names its own origin; `_HOSTNAME` is the device
    // that uploaded it.
    if let Some(origin) = r.host.filter(|h| *h != host) {
        field(out, "SYSLOG_HOSTNAME", origin.as_bytes());
    }
    if let Some(id) = r.msgid {
        field(out, "SYSLOG_MSGID", id.as_bytes());
    }
    for e in &r.sd {
        for (name, value) in &e.params {
            sd_field(out, e.id, name, value.as_bytes());
        }
    }
    if lost.is_empty() {
        number(out, "RINGLOGD_SEQ", r.seq);
    } else {
        number(out, "RINGLOGD_LOST", lost.count);
        number(out, "RINGLOGD_LOST_FIRST_SEQ", lost.first);
        number(out, "RINGLOGD_LOST_LAST_SEQ", lost.last);
    }
    field(out, "RINGLOGD_INPUT", r.input.as_str().as_bytes());
    field(out, "RINGLOGD_SOURCE", r.source.as_bytes());
    if r.truncated {
        field(out, "RINGLOGD_TRUNCATED", b"1");
    }
    field(out, "MESSAGE", r.msg.as_bytes());
    out.push(b'\n');
}

/// `NAME=value\n`, or the binary form when the value would break the line
/// or is not printable.
fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    value_of(out, value);
}

fn number(out: &mut Vec<u8>, name: &str, n: u64) {
    let _ = writeln!(out, "{name}={n}");
}

/// The value part of a field whose name is already in `out`.
fn value_of(out: &mut Vec<u8>, value: &[u8]) {
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// A structured-data parameter as `SD_<ID>_<PARAM>`, within the journal's
/// field-name rules: `A-Z`, `0-9` and `_` (anything else becomes `_`),
/// at most 64 bytes (the `SD_` prefix keeps it from starting with a digit
/// or `_`).
fn sd_field(out: &mut Vec<u8>, id: &str, param: &str, value: &[u8]) {
    let start = out.len();
    out.extend_from_slice(b"SD_");
    let name = id.bytes().chain([b'_']).chain(param.bytes());
    for b in name.take(FIELD_NAME_MAX - 3) {
        out.push(if b.is_ascii_alphanumeric() {
            b.to_ascii_uppercase()
        } else {
            b'_'
        });
    }
    debug_assert!(out.len() - start <= FIELD_NAME_MAX);
    value_of(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Input, Peer, Record, SdElement};

    /// What `encode` writes for `r`, alone.
    fn encoded(r: &Record, host: &str, device: &Device, lost: Lost) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&r.as_ref(), host, device, lost, &mut out);
        out
    }

    fn device() -> Device {
        Device {
            boot_id: Some("0123456789abcdef0123456789abcdef".into()),
            machine_id: None,
        }
    }

    #[test]
    fn a_syslog_message_becomes_one_entry_with_its_fields() {
        let mut r = Record::new(
            Input::Syslog,
            1_720_000_000_974_497_577,
            "evntslog",
            "hello",
        );
        r.seq = 42;
        r.severity = Some(5);
        r.facility = Some(20);
        r.app = Some("evntslog".into());
        r.pid = Some("1234".into());
        r.host = Some("web1".into());
        r.timestamp = chrono::DateTime::parse_from_rfc3339("2003-10-11T22:14:15.003+02:00").ok();
        r.peer = Some(Peer {
            pid: 7,
            uid: 1000,
            gid: 100,
        });
        r.sd.push(SdElement {
            id: "exampleSDID@32473".into(),
            params: vec![
                ("iut".into(), "3".into()),
                ("event-Source".into(), "App".into()),
            ],
        });
        let text = String::from_utf8(encoded(&r, "box1", &device(), Lost::default())).unwrap();
        assert_eq!(
            text,
            "__REALTIME_TIMESTAMP=1720000000974497\n_HOSTNAME=box1\n\
             _BOOT_ID=0123456789abcdef0123456789abcdef\n_PID=7\n_UID=1000\n_GID=100\n\
             PRIORITY=5\nSYSLOG_FACILITY=20\nSYSLOG_IDENTIFIER=evntslog\nSYSLOG_PID=1234\n\
             SYSLOG_TIMESTAMP=2003-10-11T22:14:15.003+02:00\nSYSLOG_HOSTNAME=web1\n\
             SD_EXAMPLESDID_32473_IUT=3\nSD_EXAMPLESDID_32473_EVENT_SOURCE=App\n\
             RINGLOGD_SEQ=42\nRINGLOGD_INPUT=syslog\nRINGLOGD_SOURCE=evntslog\n\
             MESSAGE=hello\n\n"
        );
    }

    #[test]
    fn a_multi_line_message_goes_in_the_binary_form() {
        let r = Record::new(Input::Fd, 0, "svc.out", "one\ntwo");
        let out = encoded(&r, "box1", &Device::default(), Lost::default());
        let mut want = b"MESSAGE\n".to_vec();
        want.extend_from_slice(&7u64.to_le_bytes());
        want.extend_from_slice(b"one\ntwo\n\n");
        assert!(out.ends_with(&want), "{:?}", String::from_utf8_lossy(&out));
        assert!(
            out.starts_with(b"__REALTIME_TIMESTAMP=0\n_HOSTNAME=box1\nSYSLOG_IDENTIFIER=svc.out\n")
        );
    }

    #[test]
    fn field_names_keep_the_journals_rules() {
        let mut out = Vec::new();
        sd_field(&mut out, "a.b@1", &"p".repeat(100), b"v");
        let name = out.split(|&b| b == b'=').next().unwrap();
        assert_eq!(name.len(), 64);
        assert!(name.starts_with(b"SD_A_B_1_PPP"));
        assert!(name
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_'));
    }

    #[test]
    fn a_loss_notice_names_the_seqs_instead_of_its_own() {
        let r = Record::new(Input::Internal, 0, "memlogd", "lost");
        let text =
            String::from_utf8(encoded(&r, "h", &Device::default(), Lost::run(10, 5))).unwrap();
        assert!(text
            .contains("RINGLOGD_LOST=5\nRINGLOGD_LOST_FIRST_SEQ=10\nRINGLOGD_LOST_LAST_SEQ=14\n"));
        assert!(!text.contains("RINGLOGD_SEQ="));
    }

    #[test]
    fn ids_are_read_with_or_without_dashes() {
        assert_eq!(
            id128("01234567-89ab-cdef-0123-456789ABCDEF\n").as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(id128("uninitialized\n"), None);
    }
}
