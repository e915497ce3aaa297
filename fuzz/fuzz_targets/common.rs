//! Checks every target that produces records runs on them: what a parser
//! hands the ring must survive the ring's codec and every output format,
//! and in every format stay one record with no raw control character.

use ringlogd::view::format::{self, Format};
use ringlogd::record::RecordRef;
use ringlogd::ring::codec;

pub const ALL_FORMATS: [Format; 7] = [
    Format::Json,
    Format::Memlogd,
    Format::Short,
    Format::ShortIso,
    Format::Rfc5424,
    Format::Rfc3164,
    Format::Cat,
];

/// The codes a record carries are in range, where it has them: facility
/// 0..=23, severity 0..=7. (ring_codec, which includes this module too,
/// makes up its records' codes and has none to check.)
#[allow(dead_code)]
pub fn assert_codes_in_range(facility: Option<u8>, severity: Option<u8>) {
    assert!(facility.is_none_or(|f| f <= 23), "facility {facility:?}");
    assert!(severity.is_none_or(|s| s <= 7), "severity {severity:?}");
}

/// The record reads back from the ring's bytes exactly as it went in, and
/// writes out in every format: JSON as one line that our own client reads.
pub fn storable_and_printable(r: &RecordRef, base_ns: i64, local_host: &str) {
    let ctx = codec::Context {
        base_ns,
        local_host,
    };
    let mut bytes = Vec::new();
    codec::encode(r, ctx, &mut bytes);
    let back = codec::decode(r.seq, &bytes, ctx).expect("the ring reads back what it wrote");
    assert_eq!(back.to_record(), r.to_record(), "ring round trip");

    for f in ALL_FORMATS {
        let mut out = Vec::new();
        format::write_record(r, f, &mut out);
        assert_eq!(out.last(), Some(&b'\n'), "{f:?} ends with a newline");
        let text = std::str::from_utf8(&out).expect("every format is UTF-8");
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{f:?} lets a control character through: {text:?}"
        );
        match f {
            Format::Json | Format::Rfc5424 | Format::Rfc3164 => assert_eq!(
                out.iter().filter(|&&b| b == b'\n').count(),
                1,
                "{f:?} is one line: {text:?}"
            ),
            _ => assert!(
                text.lines().skip(1).all(|l| l.starts_with(' ')),
                "{f:?}: a continuation line starts at column 0: {text:?}"
            ),
        }
        if f == Format::Json {
            assert!(
                format::parse_json_line(text.trim_end()).is_some(),
                "our own JSON line does not read back: {text}"
            );
        }
    }
}
