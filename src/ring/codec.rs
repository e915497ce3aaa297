//! How a [`Record`] is laid out as bytes inside the ring's chunks.
//!
//! One record is one contiguous run of bytes: a fixed 12-byte head, the
//! optional fixed-size parts the flags announce, then length-prefixed strings.
//! Compact (a 100-byte syslog message costs about 30 bytes beyond its text)
//! and position-independent, so chunks can later be compressed or moved into
//! shared memory without touching anything outside the ring.
//!
//! Layout: `input:u8 flags:u8 facility:u8 severity:u8 received_ns:i64`,
//! then `[ts_secs:i64 ts_nanos:u32 ts_offset:i32]` if `TS`,
//! `[pid:u32 uid:u32 gid:u32]` if `PEER`, `[family:u8 (4 or 6) ip:4|16
//! port:u16 (scope_id:u32 for 6)]` if `PEER_ADDR`, then `source`, `msg` as varint
//! length + bytes, `host`, `app`, `pid`, `msgid` as varint (length + 1, 0 for
//! absent) + bytes, and the structured data as a varint count of elements,
//! each an id and a varint count of name/value pairs.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use chrono::{DateTime, FixedOffset};

use crate::record::{Input, Peer, Record, SdElement};

const TRUNCATED: u8 = 1;
const TS: u8 = 2;
const PEER: u8 = 4;
const FACILITY: u8 = 8;
const SEVERITY: u8 = 16;
const PEER_ADDR: u8 = 32;

/// Byte offset of the input code: eviction reads it without decoding.
pub const INPUT_OFFSET: usize = 0;

/// Append the encoding of `r` (all but its seq) to `out`.
pub fn encode(r: &Record, out: &mut Vec<u8>) {
    let mut flags = 0;
    if r.truncated {
        flags |= TRUNCATED;
    }
    if r.timestamp.is_some() {
        flags |= TS;
    }
    if r.peer.is_some() {
        flags |= PEER;
    }
    if r.facility.is_some() {
        flags |= FACILITY;
    }
    if r.severity.is_some() {
        flags |= SEVERITY;
    }
    if r.peer_addr.is_some() {
        flags |= PEER_ADDR;
    }
    out.extend_from_slice(&[
        r.input as u8,
        flags,
        r.facility.unwrap_or(0),
        r.severity.unwrap_or(0),
    ]);
    out.extend_from_slice(&r.received_ns.to_le_bytes());
    if let Some(ts) = &r.timestamp {
        out.extend_from_slice(&ts.timestamp().to_le_bytes());
        out.extend_from_slice(&ts.timestamp_subsec_nanos().to_le_bytes());
        out.extend_from_slice(&ts.offset().local_minus_utc().to_le_bytes());
    }
    if let Some(p) = &r.peer {
        for v in [p.pid, p.uid, p.gid] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    match &r.peer_addr {
        None => {}
        Some(SocketAddr::V4(a)) => {
            out.push(4);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_le_bytes());
        }
        Some(SocketAddr::V6(a)) => {
            // The flow label is per packet, not part of who sent it; the
            // scope is, for a link-local address.
            out.push(6);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_le_bytes());
            out.extend_from_slice(&a.scope_id().to_le_bytes());
        }
    }
    put_str(out, &r.source);
    put_str(out, &r.msg);
    for s in [&r.host, &r.app, &r.pid, &r.msgid] {
        match s {
            None => put_varint(out, 0),
            Some(s) => {
                put_varint(out, s.len() as u64 + 1);
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
    put_varint(out, r.sd.len() as u64);
    for e in &r.sd {
        put_str(out, &e.id);
        put_varint(out, e.params.len() as u64);
        for (k, v) in &e.params {
            put_str(out, k);
            put_str(out, v);
        }
    }
}

/// Rebuild the record stored in `b` under sequence number `seq`.
/// `None` means the bytes are not a record this codec wrote.
pub fn decode(seq: u64, b: &[u8]) -> Option<Record> {
    let mut r = Reader { b, pos: 0 };
    let head = r.take(4)?;
    let (input, flags, facility, severity) = (head[0], head[1], head[2], head[3]);
    let received_ns = r.i64()?;
    let timestamp = if flags & TS != 0 {
        let secs = r.i64()?;
        let nanos = r.u32()?;
        let offset = FixedOffset::east_opt(r.u32()? as i32)?;
        Some(DateTime::from_timestamp(secs, nanos)?.with_timezone(&offset))
    } else {
        None
    };
    let peer = if flags & PEER != 0 {
        Some(Peer {
            pid: r.u32()?,
            uid: r.u32()?,
            gid: r.u32()?,
        })
    } else {
        None
    };
    let peer_addr = if flags & PEER_ADDR != 0 {
        Some(r.socket_addr()?)
    } else {
        None
    };
    let source = r.string()?;
    let msg = r.string()?;
    let host = r.opt_string()?;
    let app = r.opt_string()?;
    let pid = r.opt_string()?;
    let msgid = r.opt_string()?;
    let n = r.varint()?;
    let mut sd = Vec::new();
    for _ in 0..n {
        let id = r.string()?;
        let np = r.varint()?;
        let mut params = Vec::new();
        for _ in 0..np {
            params.push((r.string()?, r.string()?));
        }
        sd.push(SdElement { id, params });
    }
    Some(Record {
        seq,
        received_ns,
        timestamp,
        input: Input::from_code(input)?,
        source,
        facility: (flags & FACILITY != 0).then_some(facility),
        severity: (flags & SEVERITY != 0).then_some(severity),
        host,
        app,
        pid,
        msgid,
        sd,
        msg,
        peer,
        peer_addr,
        truncated: flags & TRUNCATED != 0,
    })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    fn socket_addr(&mut self) -> Option<SocketAddr> {
        match self.take(1)?[0] {
            4 => {
                let ip: [u8; 4] = self.take(4)?.try_into().ok()?;
                let port = self.u16()?;
                Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
            }
            6 => {
                let ip: [u8; 16] = self.take(16)?.try_into().ok()?;
                let port = self.u16()?;
                let scope = self.u32()?;
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(ip),
                    port,
                    0,
                    scope,
                )))
            }
            _ => None,
        }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.take(1)?.first()?;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn string(&mut self) -> Option<String> {
        let n = usize::try_from(self.varint()?).ok()?;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }

    fn opt_string(&mut self) -> Option<Option<String>> {
        match self.varint()? {
            0 => Some(None),
            n => {
                let n = usize::try_from(n - 1).ok()?;
                Some(Some(String::from_utf8(self.take(n)?.to_vec()).ok()?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_record() -> Record {
        Record {
            seq: 7,
            received_ns: 1_700_000_000_123_456_789,
            timestamp: Some(
                DateTime::parse_from_rfc3339("2026-11-21T23:39:54.708105+01:00").unwrap(),
            ),
            input: Input::Syslog,
            source: "mytag".into(),
            facility: Some(1),
            severity: Some(5),
            host: Some("vm".into()),
            app: Some("mytag".into()),
            pid: Some("123".into()),
            msgid: Some("MID".into()),
            sd: vec![SdElement {
                id: "ex@32473".into(),
                params: vec![
                    ("k".into(), "a\"b]c\\d".into()),
                    ("é".into(), String::new()),
                ],
            }],
            msg: "hello ünïcode".into(),
            peer: Some(Peer {
                pid: 1,
                uid: 2,
                gid: 3,
            }),
            peer_addr: Some("[fe80::1%2]:514".parse().unwrap()),
            truncated: true,
        }
    }

    #[test]
    fn round_trips_every_field() {
        let r = full_record();
        let mut b = Vec::new();
        encode(&r, &mut b);
        assert_eq!(decode(7, &b), Some(r));
    }

    #[test]
    fn round_trips_a_bare_record() {
        let r = Record::new(Input::Fd, -5, "svc.out", "");
        let mut b = Vec::new();
        encode(&r, &mut b);
        assert_eq!(b[INPUT_OFFSET], Input::Fd as u8);
        assert_eq!(decode(0, &b), Some(r));
    }

    #[test]
    fn round_trips_both_address_families() {
        for addr in [
            "127.0.0.1:5514",
            "[::1]:65535",
            "0.0.0.0:0",
            "[fe80::2%7]:1",
        ] {
            let mut r = Record::new(Input::Net, 1, "syslog", "m");
            r.peer_addr = Some(addr.parse().unwrap());
            let mut b = Vec::new();
            encode(&r, &mut b);
            assert_eq!(decode(0, &b), Some(r), "{addr}");
        }
    }

    #[test]
    fn an_unknown_address_family_is_refused() {
        let mut r = Record::new(Input::Net, 1, "syslog", "m");
        r.peer_addr = Some("127.0.0.1:1".parse().unwrap());
        let mut b = Vec::new();
        encode(&r, &mut b);
        b[12] = 5; // the family byte follows the 12-byte head
        assert!(decode(0, &b).is_none());
    }

    #[test]
    fn refuses_every_truncation_of_a_record() {
        let mut b = Vec::new();
        encode(&full_record(), &mut b);
        for n in 0..b.len() {
            assert!(decode(7, &b[..n]).is_none(), "prefix of {n} bytes decoded");
        }
    }
}
