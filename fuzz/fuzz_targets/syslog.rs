//! The syslog normaliser on any bytes a sender can put in a datagram or a
//! frame: `parse_ref` (the hot path) and `parse` must agree, never panic,
//! respect the length limit (structured data and text together) and the
//! structured data's count limits, and produce a record the ring can store and
//! the query side can write out.
//!
//! Input: one option byte (origin, limit, receive time), then the message.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use ringlogd::parse::syslog::{Origin, Scratch, SyslogParser};
use ringlogd::record::{sd_len, Input, Peer, MAX_SD_ELEMENTS, MAX_SD_PARAMS};

/// Receive times that move RFC 3164's year guessing: mid-year, New Year's
/// Eve, New Year's Day, a leap day, before 1970, the far end of i64.
const TIMES: [i64; 8] = [
    1_795_391_994_000_000_000, // 2026-11-22
    1_798_761_599_000_000_000, // 2026-12-31T23:59:59Z
    1_767_225_600_000_000_000, // 2026-01-01
    1_709_164_800_000_000_000, // 2024-02-29
    -1_000_000_000,
    0,
    i64::MAX,
    i64::MIN,
];
const LIMITS: [usize; 4] = [8192, 1024, 16, 1];

fuzz_target!(|data: &[u8]| {
    let Some((&opt, raw)) = data.split_first() else {
        return;
    };
    let origin = if opt & 1 == 0 {
        Origin::Local
    } else {
        Origin::Remote
    };
    let limit = LIMITS[usize::from(opt >> 1) & 3];
    let now = TIMES[usize::from(opt >> 3) & 7];
    let peer = Some(Peer {
        pid: 42,
        uid: 1000,
        gid: 1000,
    });
    let parser = SyslogParser::new("thishost", limit);

    let mut scratch = Scratch::default();
    let by_ref = parser.parse_ref(raw, now, Input::Syslog, origin, peer, &mut scratch);
    let owned = parser.parse(raw, now, Input::Syslog, origin, peer);
    assert_eq!(by_ref.malformed, owned.malformed);
    assert_eq!(
        by_ref.record.to_record(),
        owned.record,
        "parse_ref and parse differ"
    );

    let r = &by_ref.record;
    assert!(
        sd_len(&r.sd) + r.msg.len() <= limit,
        "structured data and msg longer than the limit"
    );
    assert!(r.sd.len() <= MAX_SD_ELEMENTS, "{} SD elements", r.sd.len());
    let params: usize = r.sd.iter().map(|e| e.params.len()).sum();
    assert!(params <= MAX_SD_PARAMS, "{params} SD params");
    assert!(
        r.facility.is_some() && r.severity.is_some(),
        "a syslog record always has a priority: {:?} {:?}",
        r.facility,
        r.severity
    );
    common::assert_codes_in_range(r.facility, r.severity);
    assert_eq!(r.peer, peer, "the kernel's credentials are kept as given");
    if origin == Origin::Local {
        assert!(r.host.is_some(), "a local message always has a host");
    }

    common::storable_and_printable(r, now, "thishost");
});
