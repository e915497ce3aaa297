//! The `/dev/kmsg` record parser on any bytes a read (or a replayed file)
//! can hold: never panics, keeps what it cannot read as text, respects the
//! length limit, and hands the ring a record it can store and print. The
//! sequence tracker sees every record's number and never overflows.
//!
//! Input: one option byte (limit, boot time known or not), then the record.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use ringlogd::parse::kmsg::{KmsgParser, SeqTracker};

const NOW: i64 = 1_795_306_793_000_000_000;
const BOOTS: [Option<i64>; 4] = [
    Some(1_795_305_842_000_000_000),
    None,
    Some(i64::MAX),
    Some(i64::MIN),
];
const LIMITS: [usize; 4] = [8192, 1024, 16, 1];

fuzz_target!(|data: &[u8]| {
    let Some((&opt, raw)) = data.split_first() else {
        return;
    };
    let limit = LIMITS[usize::from(opt) & 3];
    let boot = BOOTS[usize::from(opt >> 2) & 3];
    let parser = KmsgParser::new("thishost", limit);
    let p = parser.parse(raw, NOW, boot);
    let r = &p.record;
    assert!(r.msg.len() <= limit, "msg longer than the limit");
    common::assert_codes_in_range(r.facility, r.severity);
    assert_eq!(
        p.malformed,
        r.kernel.is_none(),
        "a readable header gives kernel metadata"
    );
    common::storable_and_printable(&r.as_ref(), NOW, "thishost");

    // Several records in a row, as a replayed file has them: one per line.
    let mut seqs = SeqTracker::default();
    for line in raw.split(|&b| b == b'\n') {
        if let Some(k) = parser.parse(line, NOW, boot).record.kernel {
            if let Some(lost) = seqs.observe(k.seq) {
                assert!(lost.start < lost.end && lost.end == k.seq);
            }
        }
    }
});
