//! The ring's byte layout and the ring itself. Any record a source can
//! produce (facility 0-23, severity 0-7, a UTC offset in whole minutes)
//! reads back from its bytes exactly as it went in, and writes out in
//! every format; decoding arbitrary bytes never panics; a ring with small
//! bounds fed a run of such records holds them in order, within its
//! bounds, with the books balanced (under fifo, exactly the newest), and a
//! successor adopting its memfd holds the same. Fed over and over to a
//! ring large enough to learn a compression dictionary, the records read
//! back exactly from chunks compressed with it, here and in a successor.
#![no_main]

mod common;

use std::borrow::Cow;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use arbitrary::{Arbitrary, Unstructured};
use chrono::{DateTime, FixedOffset};
use libfuzzer_sys::fuzz_target;
use ringlogd::record::{Input, KernelMeta, Peer, RecordRef, SdRef};
use ringlogd::ring::{codec, Evict, Limits, Ring, RingOptions};

#[derive(Arbitrary, Debug)]
struct Rec<'a> {
    received_ns: i64,
    timestamp: Option<(i64, u32, i16)>,
    input: u8,
    source: &'a str,
    facility: Option<u8>,
    severity: Option<u8>,
    host: Option<&'a str>,
    /// Use the host name the ring shares instead of `host`.
    local: bool,
    app: Option<&'a str>,
    app_is_source: bool,
    pid: Option<&'a str>,
    msgid: Option<&'a str>,
    sd: Vec<(&'a str, Vec<(&'a str, &'a str)>)>,
    msg: &'a str,
    peer: Option<(u32, u32, u32)>,
    truncated: bool,
    kernel: Option<(u64, u64, bool)>,
    addr: Option<(bool, [u8; 16], u16, u32)>,
}

const LOCAL: &str = "thishost";

impl<'a> Rec<'a> {
    fn record(&'a self) -> RecordRef<'a> {
        let mut r = RecordRef::new(
            Input::from_code(self.input % 5).expect("five inputs"),
            self.received_ns,
            self.source,
            self.msg,
        );
        r.timestamp = self.timestamp.and_then(|(secs, nanos, minutes)| {
            let offset = FixedOffset::east_opt(i32::from(minutes % (24 * 60)) * 60)?;
            Some(DateTime::from_timestamp(secs, nanos % 1_000_000_000)?.with_timezone(&offset))
        });
        r.facility = self.facility.map(|f| f % 24);
        r.severity = self.severity.map(|s| s % 8);
        r.host = if self.local { Some(LOCAL) } else { self.host };
        r.app = self.app;
        if self.app_is_source {
            r.app = Some(self.source);
        }
        r.pid = self.pid.map(Cow::Borrowed);
        r.msgid = self.msgid;
        r.sd = self
            .sd
            .iter()
            .map(|(id, params)| SdRef {
                id,
                params: params
                    .iter()
                    .map(|(k, v)| (*k, Cow::Borrowed(*v)))
                    .collect(),
            })
            .collect();
        r.peer = self.peer.map(|(pid, uid, gid)| Peer { pid, uid, gid });
        r.truncated = self.truncated;
        r.kernel = self.kernel.map(|(seq, usec, fragment)| KernelMeta {
            seq,
            usec,
            fragment,
        });
        r.peer_addr = self.addr.map(|(v6, ip, port, scope)| {
            if v6 {
                SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, scope))
            } else {
                let v4 = [ip[0], ip[1], ip[2], ip[3]];
                SocketAddr::V4(SocketAddrV4::new(v4.into(), port))
            }
        });
        r
    }
}

fuzz_target!(|data: &[u8]| {
    // Bytes the codec never wrote: a clean refusal or some record, no panic.
    let _ = codec::decode(
        0,
        data,
        codec::Context {
            base_ns: 0,
            local_host: LOCAL,
        },
    );

    let mut u = Unstructured::new(data);
    let Ok(max_lines) = u.int_in_range(1..=64usize) else {
        return;
    };
    let Ok(recs) = Vec::<Rec>::arbitrary(&mut u) else {
        return;
    };
    let records: Vec<RecordRef> = recs.iter().map(Rec::record).collect();
    for r in &records {
        common::storable_and_printable(r, r.received_ns.wrapping_add(12345), LOCAL);
    }

    let limits = Limits {
        max_lines,
        max_bytes: 0,
    };
    for evict in [Evict::Fifo, Evict::Fair] {
        let opts = RingOptions {
            evict,
            ..RingOptions::default()
        };
        let mut ring = Ring::with_options(limits, opts).expect("a ring");
        ring.set_local_host(LOCAL);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(ring.push_ref(r), Some(i as u64));
            assert!(ring.len() <= max_lines && !ring.is_empty());
        }
        let held: Vec<_> = ring.iter_from(0).collect();
        assert_eq!(held.len(), ring.len(), "every held record decodes");
        assert!(held.windows(2).all(|w| w[0].seq < w[1].seq), "in order");
        if let (Evict::Fifo, Some(first)) = (evict, held.first()) {
            assert_eq!(first.seq as usize, records.len() - held.len(), "the newest");
        }
        for got in &held {
            let mut want = records[got.seq as usize].to_record();
            want.seq = got.seq;
            assert_eq!(*got, want);
        }
        let stored: u64 = Input::ALL
            .iter()
            .map(|&i| ring.ledger.input(i).stored)
            .sum();
        let gone: u64 = Input::ALL
            .iter()
            .map(|&i| ring.ledger.input(i).evicted)
            .sum();
        assert_eq!(stored, records.len() as u64);
        assert_eq!(stored - gone, ring.len() as u64, "stored - evicted = held");
        // A successor taking over the memfd holds the same.
        let fd = ring.memfd().expect("a memfd").try_clone_to_owned().unwrap();
        drop(ring);
        let next = Ring::adopt(fd, limits, opts).expect("the memfd is adopted");
        assert_eq!(next.iter_from(0).collect::<Vec<_>>(), held);
    }
    with_dictionary(&records);
});

/// Push `records` in turn until a ring of 16 MiB has seen enough of them
/// to make a dictionary, then check every entry it holds, and that a
/// successor holds the same.
fn with_dictionary(records: &[RecordRef]) {
    if records.is_empty() {
        return;
    }
    let limits = Limits {
        max_lines: 1_000_000,
        max_bytes: 16 << 20,
    };
    let mut ring = Ring::with_options(limits, RingOptions::default()).expect("a ring");
    ring.set_local_host(LOCAL);
    let (mut bytes, mut n) = (0, 0);
    // Three chunks of 256 KiB: one to learn from, the next compressed
    // with what was learned.
    while bytes < (800 << 10) && n < 20_000 {
        let r = &records[n % records.len()];
        assert_eq!(ring.push_ref(r), Some(n as u64));
        bytes += r.msg.len() + r.source.len() + 16;
        n += 1;
    }
    ring.take_compressed(true);
    let held: Vec<_> = ring.iter_from(0).collect();
    assert_eq!(held.len(), ring.len(), "every held record decodes");
    for got in &held {
        let mut want = records[got.seq as usize % records.len()].to_record();
        want.seq = got.seq;
        assert_eq!(*got, want);
    }
    let fd = ring.memfd().expect("a memfd").try_clone_to_owned().unwrap();
    drop(ring);
    let next = Ring::adopt(fd, limits, RingOptions::default()).expect("the memfd is adopted");
    assert_eq!(next.iter_from(0).collect::<Vec<_>>(), held);
}
