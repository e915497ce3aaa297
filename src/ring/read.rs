//! Reading the ring from a cursor: single entries, forward and backward
//! scans. A reader keeps one decompressed chunk in its [`ReadCache`], so a
//! reader moving through a chunk decompresses it once, and a gap between
//! its cursor and the next entry tells it how many entries it missed.

use std::ops::ControlFlow;

use super::chunk::FramePos;
use super::directory::ChunkMeta;
use super::store::{SlotHeader, CODEC_RAW, STATE_OPEN};
use super::{chunk, codec, Ring};
use crate::record::{Record, RecordRef};

/// One decompressed chunk, kept by a reader between calls so a reader
/// moving through a chunk decompresses it once.
#[derive(Default)]
pub struct ReadCache {
    pub(super) key: Option<(u32, u64)>,
    pub(super) buf: Vec<u8>,
    pub(super) dctx: Option<zstd::zstd_safe::DCtx<'static>>,
    /// How far this reader's last walk of the open chunk (slot and
    /// generation) got: a follower at the head goes on from there instead
    /// of walking the open chunk's frames from its first every turn.
    open_walked: Option<((u32, u64), FramePos)>,
}

impl ReadCache {
    pub fn new() -> ReadCache {
        ReadCache::default()
    }

    /// Give the buffer back once the reader has caught up.
    pub(super) fn release(&mut self) {
        if self.key.is_some() {
            self.key = None;
            self.buf = Vec::new();
        }
    }
}

/// Copy the live frames of a chunk to `out`, with gaps that account for
/// the dead ones.
pub(super) fn copy_live(data: &[u8], hdr: &SlotHeader, out: &mut Vec<u8>) {
    let mut next = hdr.first_seq;
    chunk::for_each_frame(data, hdr.count as usize, hdr.first_seq, |fr| {
        if !hdr.is_dead(fr.idx) {
            chunk::put_frame(out, fr.seq - next, fr.bytes);
            next = fr.seq + 1;
        }
        ControlFlow::Continue(())
    });
}

impl Ring {
    /// The record with sequence number `seq`, if the ring still holds it.
    pub fn get(&self, seq: u64) -> Option<Record> {
        let mut found = None;
        self.scan_from(seq, &mut ReadCache::new(), |r| {
            if r.seq == seq {
                found = Some(r.to_record());
            }
            ControlFlow::Break(())
        });
        found
    }

    /// Owned copies of the records from `seq` on: for tests and tools; the
    /// daemon's readers use [`Ring::scan_from`].
    pub fn iter_from(&self, seq: u64) -> impl Iterator<Item = Record> {
        let mut v = Vec::new();
        self.scan_from(seq, &mut ReadCache::new(), |r| {
            v.push(r.to_record());
            ControlFlow::Continue(())
        });
        v.into_iter()
    }

    /// Call `f` with each record held whose sequence number is `from` or
    /// more, oldest first, until it breaks.
    pub fn scan_from(
        &self,
        from: u64,
        cache: &mut ReadCache,
        mut f: impl FnMut(RecordRef<'_>) -> ControlFlow<()>,
    ) {
        let start = self.sealed.partition_point(|m| m.end_seq <= from);
        let n = self.sealed.len();
        for ci in start..=n {
            let meta = if ci < n {
                &self.sealed[ci]
            } else {
                cache.release();
                &self.open
            };
            if meta.live == 0 || meta.end_seq <= from {
                continue;
            }
            let resumed = cache.open_walked;
            let Some(data) = self.cached_bytes(meta, cache) else {
                continue;
            };
            let hdr = self.store.slot_header(meta.slot as usize);
            let ctx = self.context(meta.base_ns);
            let mut stop = false;
            let key = (meta.slot, meta.gen);
            let start = match resumed {
                Some((k, at)) if ci == n && k == key && at.seq <= from => at,
                _ => FramePos {
                    offset: 0,
                    idx: 0,
                    seq: meta.first_seq,
                },
            };
            let mut walked = start;
            chunk::for_each_frame_from(data, start, meta.count as usize, |fr| {
                if fr.seq < from || hdr.is_dead(fr.idx) {
                    walked = fr.next;
                    return ControlFlow::Continue(());
                }
                if let Some(r) = codec::decode(fr.seq, fr.bytes, ctx) {
                    if f(r).is_break() {
                        stop = true;
                        return ControlFlow::Break(());
                    }
                }
                walked = fr.next;
                ControlFlow::Continue(())
            });
            if ci == n {
                cache.open_walked = Some((key, walked));
            }
            if stop {
                return;
            }
        }
    }

    /// How many entries the ring holds with sequence numbers in
    /// `from..to`: whole chunks by their live count, the (at most two)
    /// chunks cut by a bound frame by frame, decompressed in `cache`.
    pub fn held_between(&self, from: u64, to: u64, cache: &mut ReadCache) -> u64 {
        let start = self.sealed.partition_point(|m| m.end_seq <= from);
        let mut held = 0;
        for meta in self.sealed.iter().skip(start).chain([&self.open]) {
            if meta.first_seq >= to {
                break;
            }
            if meta.live == 0 || meta.end_seq <= from {
                continue;
            }
            if meta.first_seq >= from && meta.end_seq <= to {
                held += u64::from(meta.live);
                continue;
            }
            let Some(data) = self.cached_bytes(meta, cache) else {
                continue;
            };
            let hdr = self.store.slot_header(meta.slot as usize);
            chunk::for_each_frame(data, meta.count as usize, meta.first_seq, |fr| {
                if fr.seq >= to {
                    return ControlFlow::Break(());
                }
                if fr.seq >= from && !hdr.is_dead(fr.idx) {
                    held += 1;
                }
                ControlFlow::Continue(())
            });
        }
        held
    }

    /// Call `f` with each record held whose sequence number is below
    /// `below`, newest first, until it breaks.
    pub fn scan_back(
        &self,
        below: u64,
        cache: &mut ReadCache,
        mut f: impl FnMut(RecordRef<'_>) -> ControlFlow<()>,
    ) {
        let n = self.sealed.len();
        for ci in (0..=n).rev() {
            let meta = if ci < n { &self.sealed[ci] } else { &self.open };
            if meta.live == 0 || meta.first_seq >= below {
                continue;
            }
            let Some(data) = self.cached_bytes(meta, cache) else {
                continue;
            };
            let hdr = self.store.slot_header(meta.slot as usize);
            let ctx = self.context(meta.base_ns);
            for fr in chunk::frames(data, meta.count as usize, meta.first_seq)
                .into_iter()
                .rev()
            {
                if fr.seq >= below || hdr.is_dead(fr.idx) {
                    continue;
                }
                if let Some(r) = codec::decode(fr.seq, fr.bytes, ctx) {
                    if f(r).is_break() {
                        return;
                    }
                }
            }
        }
    }

    /// A chunk's raw frames for a reader: the slot for a raw chunk, else
    /// the reader's cache, decompressing only when it holds another chunk.
    pub(super) fn cached_bytes<'a>(
        &'a self,
        meta: &ChunkMeta,
        cache: &'a mut ReadCache,
    ) -> Option<&'a [u8]> {
        let h = self.store.slot_header(meta.slot as usize);
        if h.state == STATE_OPEN || h.codec == CODEC_RAW {
            return self
                .store
                .slot_data(meta.slot as usize)
                .get(..meta.raw_len as usize);
        }
        let key = (meta.slot, meta.gen);
        if cache.key != Some(key) {
            cache.key = None;
            let dctx = match &mut cache.dctx {
                Some(d) => d,
                None => cache.dctx.insert(chunk::dctx()?),
            };
            Ring::chunk_bytes(&self.store, meta, &mut cache.buf, dctx, &self.dicts)?;
            cache.key = Some(key);
        }
        Some(&cache.buf)
    }
}
