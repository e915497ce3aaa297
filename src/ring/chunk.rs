//! How records sit inside a chunk, and how a full chunk is compressed.
//!
//! A chunk's data is a run of frames, `varint(len) varint(gap) record`:
//! `gap` is how many sequence numbers lie between this record and the one
//! before it (0 unless entries between them were evicted), so a chunk is
//! self-describing and can be rewritten without its evicted entries.

use std::ops::ControlFlow;

use zstd::zstd_safe::{DCtx, DDict};

use super::codec::{put_varint, read_varint};

/// One record's place in a chunk.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Position in the chunk, the bit of the dead-entry bitmap.
    pub idx: usize,
    pub seq: u64,
    pub bytes: &'a [u8],
    /// Where the next frame starts: a walk can go on from here.
    pub next: FramePos,
}

/// A place between two frames of a chunk: its byte offset, the next
/// frame's index, and the sequence number the next frame's gap counts
/// from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FramePos {
    pub offset: usize,
    pub idx: usize,
    pub seq: u64,
}

/// Append a frame to `out`.
pub fn put_frame(out: &mut Vec<u8>, gap: u64, record: &[u8]) {
    put_varint(out, record.len() as u64);
    put_varint(out, gap);
    out.extend_from_slice(record);
}

/// Call `f` with each of the first `count` frames of `data`, whose first
/// record is at or after `first_seq`. Stops at the first malformed frame:
/// a torn chunk yields what it holds intact.
pub fn for_each_frame<'a>(
    data: &'a [u8],
    count: usize,
    first_seq: u64,
    f: impl FnMut(Frame<'a>) -> ControlFlow<()>,
) {
    let start = FramePos {
        offset: 0,
        idx: 0,
        seq: first_seq,
    };
    for_each_frame_from(data, start, count, f);
}

/// [`for_each_frame`] from `at`, a place an earlier walk of the same
/// frames reached (a chunk's frames never change once written).
pub fn for_each_frame_from<'a>(
    data: &'a [u8],
    at: FramePos,
    count: usize,
    mut f: impl FnMut(Frame<'a>) -> ControlFlow<()>,
) {
    let mut pos = at.offset;
    let mut next = at.seq;
    for idx in at.idx..count {
        let Some(len) = read_varint(data, &mut pos) else {
            return;
        };
        let Some(gap) = read_varint(data, &mut pos) else {
            return;
        };
        let Some(end) = usize::try_from(len).ok().and_then(|l| pos.checked_add(l)) else {
            return;
        };
        let Some(bytes) = data.get(pos..end) else {
            return;
        };
        pos = end;
        let seq = next.saturating_add(gap);
        next = seq.saturating_add(1);
        let after = FramePos {
            offset: end,
            idx: idx + 1,
            seq: next,
        };
        if f(Frame {
            idx,
            seq,
            bytes,
            next: after,
        })
        .is_break()
        {
            return;
        }
    }
}

/// Every frame of a chunk, in order.
pub fn frames(data: &[u8], count: usize, first_seq: u64) -> Vec<Frame<'_>> {
    let mut v = Vec::with_capacity(count);
    for_each_frame(data, count, first_seq, |fr| {
        v.push(fr);
        ControlFlow::Continue(())
    });
    v
}

/// Decompress a sealed chunk's data into `out` (cleared first), with the
/// dictionary it was compressed with, if any.
pub fn decompress(
    dctx: &mut DCtx<'static>,
    stored: &[u8],
    raw_len: usize,
    dict: Option<&DDict<'_>>,
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    out.reserve(raw_len);
    let n = match dict {
        Some(d) => dctx.decompress_using_ddict(out, stored, d),
        None => dctx.decompress(out, stored),
    };
    matches!(n, Ok(n) if n == raw_len)
}

/// A decompression context, `None` when zstd cannot allocate one.
pub fn dctx() -> Option<DCtx<'static>> {
    DCtx::try_create()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_with_gaps() {
        let mut data = Vec::new();
        put_frame(&mut data, 0, b"a");
        put_frame(&mut data, 3, b"bb");
        put_frame(&mut data, 0, b"");
        let f = frames(&data, 3, 10);
        let got: Vec<(usize, u64, &[u8])> = f.iter().map(|f| (f.idx, f.seq, f.bytes)).collect();
        assert_eq!(
            got,
            [(0, 10, &b"a"[..]), (1, 14, &b"bb"[..]), (2, 15, &b""[..])]
        );
    }

    #[test]
    fn a_walk_goes_on_from_where_an_earlier_one_stopped() {
        let mut data = Vec::new();
        for (gap, r) in [(0, &b"a"[..]), (2, b"bb"), (0, b"c"), (1, b"dd")] {
            put_frame(&mut data, gap, r);
        }
        let all = frames(&data, 4, 10);
        let mut got = Vec::new();
        for_each_frame_from(&data, all[1].next, 4, |fr| {
            got.push((fr.idx, fr.seq, fr.bytes.to_vec()));
            ControlFlow::Continue(())
        });
        let want: Vec<_> = all[2..]
            .iter()
            .map(|f| (f.idx, f.seq, f.bytes.to_vec()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(want.iter().map(|w| w.1).collect::<Vec<_>>(), [14, 16]);
    }

    #[test]
    fn a_torn_chunk_yields_what_is_intact() {
        let mut data = Vec::new();
        put_frame(&mut data, 0, b"whole");
        put_frame(&mut data, 0, b"cut short");
        data.truncate(data.len() - 3);
        assert_eq!(frames(&data, 2, 0).len(), 1);
        assert_eq!(frames(&[0xff; 20], 5, 0).len(), 0);
    }
}
