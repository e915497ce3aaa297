//! The query socket's request parsers (memlogd's mode byte, a JSON line,
//! HTTP) on any bytes a client can send, as the server sees them: growing
//! a read at a time. Never panics; never asks for more bytes once the
//! request is longer than the limit (the server's buffer stays bounded:
//! each input is also tried padded past the limit);
//! with the stream ended, always decides; and a decision, once made, does
//! not change as more bytes arrive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringlogd::query::request::{parse_request, Parse, MAX_REQUEST_LEN};

const NOW: i64 = 1_795_391_994_000_000_000;

fn decided(p: &Parse) -> Option<String> {
    match p {
        Parse::Incomplete => None,
        other => Some(format!("{other:?}")),
    }
}

fuzz_target!(|data: &[u8]| {
    let ended = parse_request(data, true, NOW);
    if !data.is_empty() {
        assert!(
            !matches!(ended, Parse::Incomplete),
            "an ended request must be decided"
        );
    }
    let open = parse_request(data, false, NOW);
    // The same start, padded past the limit with its own last byte (so a
    // line or a header keeps going): the server must not be told to keep
    // buffering. The fuzzer's inputs stay short; the padding reaches the
    // limit (for one input length in eight: parsing 64 KiB is slow).
    if let (Some(&last), 0) = (data.last(), data.len() % 8) {
        let mut long = data.to_vec();
        long.resize(MAX_REQUEST_LEN + 2, last);
        assert!(
            !matches!(parse_request(&long, false, NOW), Parse::Incomplete),
            "{} bytes buffered and still incomplete",
            long.len()
        );
    }
    // The server parses again after each read: the first decision is the
    // one that counts, and it must not depend on where the reads ended.
    let mut first = None;
    for end in 1..=data.len().min(512) {
        if let Some(d) = decided(&parse_request(&data[..end], false, NOW)) {
            first = Some((end, d));
            break;
        }
    }
    if let Some((end, d)) = first {
        assert_eq!(
            decided(&open).as_deref(),
            Some(d.as_str()),
            "decided after {end} bytes, then changed its mind"
        );
    }
});
