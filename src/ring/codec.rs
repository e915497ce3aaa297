//! How a record is laid out as bytes inside the ring's chunks.
//!
//! One record is one contiguous run of bytes, depending only on its chunk's
//! base time and the local host name (so chunks can be compressed, moved
//! and rewritten without touching anything outside the ring), and small:
//! what a record costs beyond its text is mostly varints.
//!
//! Layout: `input:u8 flags:u8 pri:u8 more:u8`, then varints: the receive
//! time as a zigzag delta from the chunk's base time; if `TS`, the message's
//! own time as zigzag seconds from the base time's second, nanoseconds, and
//! its UTC offset in minutes (zigzag); if `PEER`, pid, uid, gid; if
//! `KERNEL`, the kernel's sequence number and microseconds. Then strings as
//! varint length + bytes: `source` unless `SOURCE_IS_APP`, `msg`; `host`
//! unless `HOST_LOCAL`, `app`, `pid`, `msgid` as varint (length + 1, 0 for
//! absent) + bytes; the structured data as a varint count of elements, each
//! an id and a varint count of name/value pairs.
//!
//! `pri` is `facility << 3 | severity` (facility ≤ 23 fits);
//! `FACILITY`/`SEVERITY` in `more` say whether each is present.

use std::borrow::Cow;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use chrono::{DateTime, FixedOffset};

use crate::record::{Input, KernelMeta, Peer, RecordRef, SdRef};

// `flags`
const TRUNCATED: u8 = 1;
const TS: u8 = 2;
const PEER: u8 = 4;
const KERNEL: u8 = 8;
const KFRAGMENT: u8 = 16;
const SOURCE_IS_APP: u8 = 32;
const HOST_LOCAL: u8 = 64;
// `more`
const FACILITY: u8 = 1;
const SEVERITY: u8 = 2;
const PEER_ADDR: u8 = 4;

/// Byte offset of the input code: eviction reads it without decoding.
pub const INPUT_OFFSET: usize = 0;

/// What records in one chunk share, so that each need not store it.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// Receive times are stored relative to this.
    pub base_ns: i64,
    /// This machine's host name: a record from here stores a flag instead.
    pub local_host: &'a str,
}

/// Append the encoding of `r` (all but its seq) to `out`.
pub fn encode(r: &RecordRef, ctx: Context, out: &mut Vec<u8>) {
    let mut flags = 0;
    let mut more = 0;
    if r.truncated {
        flags |= TRUNCATED;
    }
    if r.timestamp.is_some() {
        flags |= TS;
    }
    if r.peer.is_some() {
        flags |= PEER;
    }
    if let Some(k) = &r.kernel {
        flags |= KERNEL;
        if k.fragment {
            flags |= KFRAGMENT;
        }
    }
    if r.app == Some(r.source) {
        flags |= SOURCE_IS_APP;
    }
    if r.host == Some(ctx.local_host) {
        flags |= HOST_LOCAL;
    }
    if r.facility.is_some() {
        more |= FACILITY;
    }
    if r.severity.is_some() {
        more |= SEVERITY;
    }
    if r.peer_addr.is_some() {
        more |= PEER_ADDR;
    }
    let pri = (r.facility.unwrap_or(0) << 3) | (r.severity.unwrap_or(0) & 7);
    out.extend_from_slice(&[r.input as u8, flags, pri, more]);
    put_varint(out, zigzag(r.received_ns.wrapping_sub(ctx.base_ns)));
    if let Some(ts) = &r.timestamp {
        // Seconds from the chunk's base, then nanoseconds: a sender's stamp
        // is mostly whole seconds close to the base, which compresses to
        // almost nothing (a delta from the receive time would carry that
        // time's noise).
        put_varint(out, zigzag(ts.timestamp().wrapping_sub(base_secs(ctx))));
        put_varint(out, u64::from(ts.timestamp_subsec_nanos()));
        put_varint(out, zigzag(i64::from(ts.offset().local_minus_utc() / 60)));
    }
    if let Some(p) = &r.peer {
        for v in [p.pid, p.uid, p.gid] {
            put_varint(out, u64::from(v));
        }
    }
    if let Some(k) = &r.kernel {
        put_varint(out, k.seq);
        put_varint(out, k.usec);
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
    if flags & SOURCE_IS_APP == 0 {
        put_str(out, r.source);
    }
    put_str(out, r.msg);
    let host = if flags & HOST_LOCAL == 0 {
        r.host
    } else {
        None
    };
    for s in [host, r.app, r.pid.as_deref(), r.msgid] {
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
        put_str(out, e.id);
        put_varint(out, e.params.len() as u64);
        for (k, v) in &e.params {
            put_str(out, k);
            put_str(out, v);
        }
    }
}

/// The record stored in `b` under sequence number `seq`, borrowing its text
/// from `b`. `None` means the bytes are not a record this codec wrote.
pub fn decode<'a>(seq: u64, b: &'a [u8], ctx: Context<'a>) -> Option<RecordRef<'a>> {
    let mut r = Reader { b, pos: 0 };
    let head = r.take(4)?;
    let (input, flags, pri, more) = (head[0], head[1], head[2], head[3]);
    let received_ns = ctx.base_ns.wrapping_add(unzigzag(r.varint()?));
    let timestamp = if flags & TS != 0 {
        let secs = base_secs(ctx).wrapping_add(unzigzag(r.varint()?));
        let utc = utc_time(secs, u32::try_from(r.varint()?).ok()?)?;
        let minutes = i32::try_from(unzigzag(r.varint()?)).ok()?;
        let offset = FixedOffset::east_opt(minutes.checked_mul(60)?)?;
        Some(utc.with_timezone(&offset))
    } else {
        None
    };
    let peer = if flags & PEER != 0 {
        Some(Peer {
            pid: u32::try_from(r.varint()?).ok()?,
            uid: u32::try_from(r.varint()?).ok()?,
            gid: u32::try_from(r.varint()?).ok()?,
        })
    } else {
        None
    };
    let kernel = if flags & KERNEL != 0 {
        Some(KernelMeta {
            seq: r.varint()?,
            usec: r.varint()?,
            fragment: flags & KFRAGMENT != 0,
        })
    } else {
        None
    };
    let peer_addr = if more & PEER_ADDR != 0 {
        Some(r.socket_addr()?)
    } else {
        None
    };
    let source = if flags & SOURCE_IS_APP == 0 {
        Some(r.str()?)
    } else {
        None
    };
    let msg = r.str()?;
    let host = r.opt_str()?;
    let app = r.opt_str()?;
    let pid = r.opt_str()?;
    let msgid = r.opt_str()?;
    let n = r.varint()?;
    let mut sd = Vec::new();
    for _ in 0..n {
        let id = r.str()?;
        let np = r.varint()?;
        let mut params = Vec::new();
        for _ in 0..np {
            params.push((r.str()?, Cow::Borrowed(r.str()?)));
        }
        sd.push(SdRef { id, params });
    }
    Some(RecordRef {
        seq,
        received_ns,
        timestamp,
        input: Input::from_code(input)?,
        source: match source {
            Some(s) => s,
            None => app?,
        },
        facility: (more & FACILITY != 0).then_some(pri >> 3),
        severity: (more & SEVERITY != 0).then_some(pri & 7),
        host: if flags & HOST_LOCAL != 0 {
            Some(ctx.local_host)
        } else {
            host
        },
        app,
        pid: pid.map(Cow::Borrowed),
        msgid,
        sd,
        msg,
        peer,
        peer_addr,
        truncated: flags & TRUNCATED != 0,
        kernel,
    })
}

/// `DateTime::from_timestamp`, with the day of the last call kept: a
/// reader decodes runs of entries from one day, and turning a day number
/// into a date is most of what that call costs. A second within the kept
/// day costs a subtraction, not a division.
fn utc_time(secs: i64, nanos: u32) -> Option<DateTime<chrono::Utc>> {
    use chrono::{NaiveDate, NaiveTime};
    /// The first second of a day, and its date.
    type Day = (i64, NaiveDate);
    thread_local! {
        static DAY: std::cell::Cell<Option<Day>> = const { std::cell::Cell::new(None) };
    }
    let (start, date) = match DAY.get() {
        Some((start, date)) if secs.wrapping_sub(start) as u64 <= 86_399 => (start, date),
        _ => {
            let start = secs - secs.rem_euclid(86_400);
            let day = (start, DateTime::from_timestamp(start, 0)?.date_naive());
            DAY.set(Some(day));
            day
        }
    };
    let time = NaiveTime::from_num_seconds_from_midnight_opt((secs - start) as u32, nanos)?;
    Some(date.and_time(time).and_utc())
}

fn base_secs(ctx: Context) -> i64 {
    ctx.base_ns.div_euclid(1_000_000_000)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
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

/// The varint at `b[*pos..]`, moving `pos` past it.
pub(crate) fn read_varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut r = Reader { b, pos: *pos };
    let v = r.varint()?;
    *pos = r.pos;
    Some(v)
}

/// `bytes` as text if they are UTF-8; ASCII, the usual case, checked a
/// word at a time.
fn utf8(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
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

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
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
            let byte = *self.b.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn str(&mut self) -> Option<&'a str> {
        let n = usize::try_from(self.varint()?).ok()?;
        utf8(self.take(n)?)
    }

    fn opt_str(&mut self) -> Option<Option<&'a str>> {
        match self.varint()? {
            0 => Some(None),
            n => {
                let n = usize::try_from(n - 1).ok()?;
                Some(Some(utf8(self.take(n)?)?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Record, SdElement};

    const CTX: Context = Context {
        base_ns: 1_700_000_000_000_000_000,
        local_host: "thishost",
    };

    fn full_record() -> Record {
        Record {
            seq: 7,
            received_ns: 1_700_000_000_123_456_789,
            timestamp: Some(
                DateTime::parse_from_rfc3339("2026-11-21T23:39:54.708105+01:00").unwrap(),
            ),
            input: Input::Syslog,
            source: "mytag".into(),
            facility: Some(23),
            severity: Some(7),
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
                pid: u32::MAX,
                uid: 2,
                gid: 3,
            }),
            peer_addr: Some("[fe80::1%2]:514".parse().unwrap()),
            truncated: true,
            kernel: None,
        }
    }

    fn round_trip(r: &Record, ctx: Context) -> (Option<Record>, usize) {
        let mut b = Vec::new();
        encode(&r.as_ref(), ctx, &mut b);
        (decode(r.seq, &b, ctx).map(|d| d.to_record()), b.len())
    }

    #[test]
    fn the_kept_day_gives_the_same_time_as_chrono() {
        // Back and forth across day boundaries, before 1970 too, so every
        // call either hits the kept day or replaces it.
        let mut secs = [0i64, 86_399, 86_400, -1, -86_400, -86_401, 1_765_000_000]
            .into_iter()
            .collect::<Vec<_>>();
        for i in 0..2_000i64 {
            secs.push(1_765_000_000 + i * 7_919 - 5_000_000);
            secs.push(1_765_000_000 + (i % 3) * 86_400 + i);
        }
        for (i, s) in secs.into_iter().enumerate() {
            let nanos = (i as u32 * 104_729) % 1_000_000_000;
            assert_eq!(
                utc_time(s, nanos),
                DateTime::from_timestamp(s, nanos),
                "{s}"
            );
        }
        // A leap second's nanoseconds are accepted as chrono accepts them.
        for (s, nanos) in [
            (0, 1_000_000_000),
            (59, 1_500_000_000),
            (86_399, 1_000_000_000),
        ] {
            assert_eq!(
                utc_time(s, nanos),
                DateTime::from_timestamp(s, nanos),
                "{s}"
            );
        }
    }

    #[test]
    fn round_trips_every_field() {
        let r = full_record();
        assert_eq!(round_trip(&r, CTX).0, Some(r));
    }

    #[test]
    fn round_trips_a_bare_record() {
        let r = Record::new(Input::Fd, -5, "svc.out", "");
        let mut b = Vec::new();
        encode(&r.as_ref(), CTX, &mut b);
        assert_eq!(b[INPUT_OFFSET], Input::Fd as u8);
        assert_eq!(decode(0, &b, CTX).map(|d| d.to_record()), Some(r));
    }

    #[test]
    fn shared_parts_are_not_stored_twice() {
        let mut r = full_record();
        r.host = Some("thishost".into());
        r.sd.clear();
        r.timestamp = None;
        r.peer_addr = None;
        let (back, len) = round_trip(&r, CTX);
        assert_eq!(back, Some(r.clone()));
        // head 4, time 4, peer 5+1+1, msg 1+15, app 1+5, pid 1+3, msgid 1+3,
        // empty host 1, sd count 1: neither the host nor the source again.
        assert_eq!(len, 47, "{len}");
        r.source = "other".into();
        let (back, _) = round_trip(&r, CTX);
        assert_eq!(back.unwrap().source, "other");
    }

    #[test]
    fn far_timestamps_and_odd_offsets_survive() {
        let mut r = full_record();
        for ts in [
            "9999-12-31T23:59:59.999999999-23:59",
            "0001-01-01T00:00:00+05:45",
            "1970-01-01T00:00:00Z",
        ] {
            r.timestamp = Some(DateTime::parse_from_rfc3339(ts).unwrap());
            assert_eq!(round_trip(&r, CTX).0, Some(r.clone()), "{ts}");
        }
        r.received_ns = i64::MIN;
        assert_eq!(round_trip(&r, CTX).0, Some(r.clone()));
    }

    fn kernel_record(fragment: bool) -> Record {
        let mut r = Record::new(Input::Kmsg, 42, "kernel", "Linux version 6.18");
        r.facility = Some(0);
        r.severity = Some(5);
        r.sd = vec![SdElement {
            id: "kmsg".into(),
            params: vec![("SUBSYSTEM".into(), "pci".into())],
        }];
        r.kernel = Some(KernelMeta {
            // Past one varint byte, and the extremes of the field.
            seq: u64::MAX,
            usec: 1_353_811,
            fragment,
        });
        r
    }

    #[test]
    fn round_trips_kernel_metadata() {
        for fragment in [false, true] {
            let r = kernel_record(fragment);
            assert_eq!(round_trip(&r, CTX).0, Some(r));
        }
        let mut zero = kernel_record(false);
        zero.kernel = Some(KernelMeta::default());
        assert_eq!(round_trip(&zero, CTX).0, Some(zero));
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
            assert_eq!(round_trip(&r, CTX).0, Some(r), "{addr}");
        }
    }

    #[test]
    fn an_unknown_address_family_is_refused() {
        let mut r = Record::new(Input::Net, 1, "syslog", "m");
        r.peer_addr = Some("127.0.0.1:1".parse().unwrap());
        let ctx = Context {
            base_ns: 1,
            local_host: "",
        };
        let mut b = Vec::new();
        encode(&r.as_ref(), ctx, &mut b);
        // The family byte follows the 4-byte head and the 1-byte time delta.
        assert_eq!(b[5], 4);
        b[5] = 5;
        assert!(decode(0, &b, ctx).is_none());
    }

    #[test]
    fn refuses_every_truncation_of_a_record() {
        for r in [full_record(), kernel_record(true)] {
            let mut b = Vec::new();
            encode(&r.as_ref(), CTX, &mut b);
            for n in 0..b.len() {
                assert!(
                    decode(r.seq, &b[..n], CTX).is_none(),
                    "prefix of {n} bytes decoded"
                );
            }
        }
    }
}
