//! The TCP framer (RFC 6587) on any byte stream, cut into reads anywhere:
//! the frames do not depend on where the reads were cut, none is longer
//! than the limit, an LF-framed frame holds no LF or NUL, and the framer
//! never holds more than the limit plus an octet count.
//!
//! Input: the limit (one byte, times 4), the read size pattern (one byte),
//! then the stream.
#![no_main]

mod reads;

use libfuzzer_sys::fuzz_target;
use ringlogd::parse::frames::Framer;

type Frames = Vec<(Vec<u8>, bool)>;

fn run(limit: usize, reads: &[&[u8]]) -> (Frames, bool) {
    let mut f = Framer::new(limit);
    let mut out = Frames::new();
    for r in reads {
        f.push(r, &mut |frame: &[u8], cut| out.push((frame.to_vec(), cut)));
        assert!(
            f.buffered() <= limit.max(16) + 10,
            "framer holds {} bytes",
            f.buffered()
        );
    }
    let partial = f.finish(&mut |frame: &[u8], cut| out.push((frame.to_vec(), cut)));
    assert!(f.is_idle());
    (out, partial)
}

fuzz_target!(|data: &[u8]| {
    let [limit, pattern, stream @ ..] = data else {
        return;
    };
    let limit = usize::from(*limit) * 4;
    let whole = reads::same_however_cut(stream, *pattern, "frames", |r| run(limit, r));

    let total: usize = whole.0.iter().map(|(f, _)| f.len()).sum();
    assert!(
        total <= stream.len(),
        "frames hold more bytes than the stream"
    );
    for (frame, _) in &whole.0 {
        assert!(
            frame.len() <= limit.max(16),
            "frame of {} bytes",
            frame.len()
        );
    }
});
