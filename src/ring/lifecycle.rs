//! A chunk's life after the open one fills: sealed (compressed off the
//! ingest path by the compressor thread, or kept raw when that does not
//! pay), indexed again when eviction needs its records, and compacted
//! (rewritten without its dead entries, merged with a neighbour when both
//! are small) once eviction has moved past it.

use std::ops::ControlFlow;

use super::directory::{class_of, new_open, ChunkMeta, Entry, Tally};
use super::evict::TIERS;
use super::limits::Compress;
use super::read::copy_live;
use super::store::{
    page_round, SlotHeader, Store, CODEC_RAW, CODEC_ZSTD, MAX_CHUNK_RECORDS, SLOT_HEADER,
    SLOT_MAGIC, STATE_OPEN, STATE_SEALED,
};
use super::{chunk, codec, compressor, dict, Ring};
use crate::record::Record;

/// Chunks waiting for the compressor thread before storing waits for it.
pub(super) const MAX_PENDING_COMPRESSIONS: usize = 4;

impl Ring {
    /// Seal the open chunk: write its live records, compressed, to a slot
    /// of their own; the open slot starts over.
    pub(super) fn seal(&mut self) {
        let open_slot = self.open.slot;
        let next = self.store.header().next_seq;
        if self.open.live == 0 {
            self.pages -= self.open.footprint;
            self.store.punch(open_slot as usize, SLOT_HEADER);
            self.open.footprint = page_round(SLOT_HEADER);
            self.pages += self.open.footprint;
            self.reset_open(open_slot, next);
            self.recount_heap();
            return;
        }
        if self.open.live == self.open.count {
            self.seal_in_place();
            return;
        }
        // Some entries of the open chunk were evicted (a small ring): write
        // the live ones to a slot of their own.
        let mut raw = std::mem::take(&mut self.scratch);
        raw.clear();
        let hdr = *self.store.slot_header(open_slot as usize);
        let data = &self.store.slot_data(open_slot as usize)[..self.open.raw_len as usize];
        copy_live(data, &hdr, &mut raw);
        let open_fp = self.open.footprint;
        let mut meta = std::mem::replace(&mut self.open, new_open(0, 0, 0));
        let index = meta.index.take();
        let slot = self.take_slot();
        self.write_raw(slot, &mut meta, &raw);
        let key = (meta.slot, meta.gen);
        self.scratch = raw;
        // At 16 bytes an entry the index would cost as much as the
        // compressed records: eviction rebuilds it for the chunk it works on.
        drop(index);
        meta.index = None;
        meta.hints = [0; TIERS];
        // The open slot's pages go back, so it holds only what it needs
        // (a burst of large records, a budget lowered by SIGHUP).
        self.pages -= open_fp;
        self.store.punch(open_slot as usize, SLOT_HEADER);
        self.open = new_open(open_slot, 0, next);
        self.open.footprint = page_round(SLOT_HEADER);
        self.pages += self.open.footprint;
        self.sealed.push_back(meta);
        self.reset_open(open_slot, next);
        self.recount_heap();
        self.queue_compression(key);
    }

    /// Seal the open chunk where it is: its slot becomes a sealed chunk
    /// (compressed later by the compressor thread) and a fresh slot takes
    /// the next records. Ingest never waits for zstd.
    pub(super) fn seal_in_place(&mut self) {
        let next = self.store.header().next_seq;
        let mut meta = std::mem::replace(&mut self.open, new_open(0, 0, 0));
        meta.index = None;
        meta.hints = [0; TIERS];
        let key = (meta.slot, meta.gen);
        self.sealed.push_back(meta);
        let (slot, footprint) = match self.warm.take() {
            Some(w) => (w.slot, w.footprint),
            None => {
                let slot = self.take_slot();
                self.pages += page_round(SLOT_HEADER);
                (slot, page_round(SLOT_HEADER))
            }
        };
        self.open.footprint = 0;
        self.reset_open(slot, next);
        self.open.footprint = footprint;
        self.recount_heap();
        self.queue_compression(key);
    }

    /// Have the chunk known by `key` (raw, in the open state) compressed,
    /// or with `--compress none` marked sealed as it is.
    pub(super) fn queue_compression(&mut self, key: (u32, u64)) {
        if self.opts.compress == Compress::Zstd {
            if self.compressor.is_none() {
                self.compressor = compressor::Compressor::start(dict::dict_size(self.limits));
                self.send_current_dict();
            }
            let raw_len = self
                .sealed
                .iter()
                .find(|m| (m.slot, m.gen) == key)
                .map_or(0, |m| m.raw_len as usize);
            // A compressor that falls behind (a slow CPU, a long burst)
            // would leave the budget to raw chunks: past a few waiting,
            // storing waits for it instead.
            while self
                .compressor
                .as_ref()
                .is_some_and(|c| c.pending >= MAX_PENDING_COMPRESSIONS)
            {
                match self.compressor.as_mut().and_then(|c| c.take(true)) {
                    Some(d) => self.finish_compression(d),
                    None => break,
                }
            }
            let mut raw = self.spare_bufs.pop().unwrap_or_default();
            raw.clear();
            raw.extend_from_slice(&self.store.slot_data(key.0 as usize)[..raw_len]);
            let job = compressor::Job { key, raw };
            let job = match &mut self.compressor {
                Some(c) => match c.send(job) {
                    Ok(()) => return,
                    Err(job) => job,
                },
                None => job,
            };
            // No thread: compress here.
            let cctx = self.cctx.get_or_insert_with(|| {
                zstd::bulk::Compressor::new(dict::LEVEL).expect("zstd compression context")
            });
            let packed = compressor::compress(cctx, None, &job.raw, Vec::new());
            self.finish_compression(compressor::Done {
                key,
                raw: job.raw,
                packed,
                dict: 0,
                trained: None,
            });
        } else if let Some(ci) = self.sealed.iter().position(|m| (m.slot, m.gen) == key) {
            self.seal_raw(ci);
        }
    }

    /// Take what the compressor thread has finished; with `wait`, all of it.
    pub fn take_compressed(&mut self, wait: bool) {
        while let Some(d) = self.compressor.as_mut().and_then(|c| c.take(wait)) {
            self.finish_compression(d);
        }
    }

    /// Put a compressed chunk in place of its raw copy, if that is still
    /// held as it was.
    pub(super) fn finish_compression(&mut self, mut d: compressor::Done) {
        if let Some(bytes) = d.trained.take() {
            self.install_dict(bytes);
        }
        let found = self.sealed.iter().position(|m| (m.slot, m.gen) == d.key);
        if let Some(ci) = found {
            // A dictionary let go while the chunk was on its way (a newer
            // one came in meanwhile): the chunk stays raw.
            let dict_held = d.dict == 0 || self.dicts.has(d.dict);
            match d.packed.as_deref() {
                Some(packed) if dict_held && self.has_free() => {
                    let slot2 = self.pop_free().expect("checked");
                    let raw_slot = d.key.0 as usize;
                    let old = *self.store.slot_header(raw_slot);
                    let gen = self.next_gen();
                    let (h, data) = self.store.slot_mut(slot2 as usize);
                    data[..packed.len()].copy_from_slice(packed);
                    *h = SlotHeader {
                        magic: SLOT_MAGIC,
                        state: STATE_SEALED,
                        gen,
                        stored_len: packed.len() as u32,
                        codec: CODEC_ZSTD,
                        crc: crc32fast::hash(packed),
                        dict: d.dict,
                        ..old
                    };
                    // The compressed copy is whole and newer: the raw one goes.
                    let meta = &mut self.sealed[ci];
                    let raw_fp = meta.footprint;
                    meta.slot = slot2;
                    meta.gen = gen;
                    meta.footprint = page_round(SLOT_HEADER + packed.len());
                    self.pages += self.sealed[ci].footprint;
                    self.release_slot(raw_slot as u32, raw_fp);
                    if self.evicting == Some(d.key) {
                        self.evicting = Some((slot2, gen));
                    }
                }
                _ => self.seal_raw(ci),
            }
        }
        // Raw buffers only, and two of them: a chunk is up to 256 KiB, and
        // every spare kept is resident memory outside the ring's budget.
        if self.spare_bufs.len() < 2 {
            self.spare_bufs.push(d.raw);
        }
    }

    /// Mark sealed chunk `ci`, still raw in its open-state slot, sealed as
    /// it is: checksum and state, the state last.
    pub(super) fn seal_raw(&mut self, ci: usize) {
        let slot = self.sealed[ci].slot as usize;
        let raw_len = self.sealed[ci].raw_len as usize;
        let crc = crc32fast::hash(&self.store.slot_data(slot)[..raw_len]);
        let h = self.store.slot_header_mut(slot);
        if h.state != STATE_OPEN {
            return;
        }
        h.codec = CODEC_RAW;
        h.stored_len = raw_len as u32;
        h.crc = crc;
        h.state = STATE_SEALED;
    }

    /// Write `raw` (live frames only) into `slot` as a chunk sealed but not
    /// yet compressed (raw, in the open state, which a successor also reads
    /// as raw), and describe it in `meta` (whose seq range, base and
    /// tallies are kept). The caller then queues it for compression.
    pub(super) fn write_raw(&mut self, slot: u32, meta: &mut ChunkMeta, raw: &[u8]) {
        let gen = self.next_gen();
        let (h, data) = self.store.slot_mut(slot as usize);
        data[..raw.len()].copy_from_slice(raw);
        *h = SlotHeader::raw(
            gen,
            meta.first_seq,
            meta.end_seq,
            meta.base_ns,
            meta.live,
            raw.len() as u32,
        );
        meta.slot = slot;
        meta.gen = gen;
        meta.count = meta.live;
        meta.raw_len = raw.len() as u32;
        meta.footprint = page_round(SLOT_HEADER + raw.len());
        self.pages += meta.footprint;
    }

    /// The raw frames of a chunk: the slot itself, or decompressed into
    /// `buf`.
    pub(super) fn chunk_bytes<'a>(
        store: &'a Store,
        meta: &ChunkMeta,
        buf: &'a mut Vec<u8>,
        dctx: &mut zstd::zstd_safe::DCtx<'static>,
        dicts: &dict::Dicts,
    ) -> Option<&'a [u8]> {
        let h = store.slot_header(meta.slot as usize);
        let data = store.slot_data(meta.slot as usize);
        if h.state == STATE_OPEN || h.codec == CODEC_RAW {
            return data.get(..meta.raw_len as usize);
        }
        let stored = data.get(..h.stored_len as usize)?;
        let dict = match h.dict {
            0 => None,
            id => Some(dicts.ddict(id)?),
        };
        chunk::decompress(dctx, stored, meta.raw_len as usize, dict, buf).then_some(&buf[..])
    }

    /// Build the per-record index of sealed chunk `ci`, if it has none.
    pub(super) fn ensure_index(&mut self, ci: usize) {
        if self.sealed[ci].index.is_some() {
            return;
        }
        let mut buf = Vec::new();
        let meta = &self.sealed[ci];
        let hdr = *self.store.slot_header(meta.slot as usize);
        let mut entries = Vec::with_capacity(meta.count as usize);
        let mut names = Vec::new();
        let mut uids = Vec::new();
        if let Some(data) =
            Ring::chunk_bytes(&self.store, meta, &mut buf, &mut self.dctx, &self.dicts)
        {
            let ctx = codec::Context {
                base_ns: meta.base_ns,
                local_host: &self.local_host,
            };
            chunk::for_each_frame(data, meta.count as usize, meta.first_seq, |fr| {
                let (source, severity, uid) = match codec::decode(fr.seq, fr.bytes, ctx) {
                    Some(r) => (r.source.to_owned(), r.severity, r.peer.map(|p| p.uid)),
                    None => (String::new(), None, None),
                };
                names.push(source);
                uids.push(uid);
                entries.push(Entry {
                    seq: fr.seq,
                    source: 0,
                    owned: 0,
                    class: class_of(severity),
                    input: fr.bytes.first().copied().unwrap_or(u8::MAX),
                    live: !hdr.is_dead(fr.idx),
                });
                ControlFlow::Continue(())
            });
        }
        for ((e, name), uid) in entries.iter_mut().zip(&names).zip(uids) {
            e.source = self.source_id(name);
            e.owned = self.owned.id(e.source, uid);
        }
        let meta = &mut self.sealed[ci];
        meta.index = Some(entries);
        meta.hints = [0; TIERS];
        self.recount_heap();
    }

    /// Rewrite the sealed chunk known by `key` without its dead entries,
    /// and merge it into the chunk before it when both are small. True if
    /// anything changed.
    pub(super) fn compact_key(&mut self, key: (u32, u64)) -> bool {
        let Some(ci) = self.sealed.iter().position(|m| (m.slot, m.gen) == key) else {
            return false;
        };
        let meta = &self.sealed[ci];
        // Rewriting costs a decompression and a compression: only for a
        // chunk with a good part of it dead, so tiers that alternate between
        // chunks cannot make every eviction a rewrite.
        if meta.live == meta.count || (meta.count - meta.live) * 4 < meta.count {
            return false;
        }
        if meta.live == 0 {
            self.remove_sealed(ci);
            return true;
        }
        // The chunk before it too, if both together fit in one chunk: the
        // survivors of several chunks (a flood's quiet neighbours, the
        // sources under their share) gather in full chunks, which compress
        // well, rather than in many small ones.
        self.compact_at(ci, true)
    }

    /// [`Ring::compact_key`] for sealed chunk `ci`, merging it into the
    /// chunk before it if `may_merge` and both fit in one.
    pub(super) fn compact_at(&mut self, ci: usize, may_merge: bool) -> bool {
        let meta = &self.sealed[ci];
        let merge = may_merge && ci > 0 && {
            let prev = &self.sealed[ci - 1];
            let live_raw = |m: &ChunkMeta| m.raw_len as u64 * m.live as u64 / m.count.max(1) as u64;
            live_raw(prev) + live_raw(meta) <= self.chunk_cap as u64
                && (prev.live + meta.live) as usize <= MAX_CHUNK_RECORDS
        };
        let first = if merge { ci - 1 } else { ci };
        let mut records: Vec<Record> = Vec::new();
        let mut buf = Vec::new();
        for k in first..=ci {
            let meta = &self.sealed[k];
            let hdr = *self.store.slot_header(meta.slot as usize);
            let Some(data) =
                Ring::chunk_bytes(&self.store, meta, &mut buf, &mut self.dctx, &self.dicts)
            else {
                continue;
            };
            let ctx = codec::Context {
                base_ns: meta.base_ns,
                local_host: &self.local_host,
            };
            chunk::for_each_frame(data, meta.count as usize, meta.first_seq, |fr| {
                if !hdr.is_dead(fr.idx) {
                    if let Some(r) = codec::decode(fr.seq, fr.bytes, ctx) {
                        records.push(r.to_record());
                    }
                }
                ControlFlow::Continue(())
            });
        }
        let base = self.sealed[first].base_ns;
        let mut raw = Vec::new();
        let mut scratch = Vec::new();
        let mut next = self.sealed[first].first_seq;
        let mut tallies: Vec<Tally> = Vec::new();
        for r in &records {
            scratch.clear();
            codec::encode(&r.as_ref(), self.context(base), &mut scratch);
            chunk::put_frame(&mut raw, r.seq - next, &scratch);
            next = r.seq + 1;
            let source = self.source_id(&r.source);
            let class = class_of(r.severity);
            match tallies
                .iter_mut()
                .find(|t| t.source == source && t.class == class)
            {
                Some(t) => t.live += 1,
                None => tallies.push(Tally {
                    source,
                    class,
                    live: 1,
                }),
            }
        }
        if raw.len() > self.store.slot_size - SLOT_HEADER {
            // Re-encoded against one base, the two did not fit after all.
            return merge && self.compact_at(ci, false);
        }
        let mut meta = ChunkMeta {
            slot: 0,
            gen: 0,
            first_seq: self.sealed[first].first_seq,
            end_seq: self.sealed[ci].end_seq,
            base_ns: base,
            count: records.len() as u32,
            live: records.len() as u32,
            raw_len: 0,
            footprint: 0,
            first_live: records.first().map_or(0, |r| r.seq),
            tallies,
            index: None,
            hints: [0; TIERS],
            hints_epoch: 0,
            release_epoch: 0,
        };
        let slot = match self.pop_free() {
            Some(s) => s,
            // No room to rewrite: leave the dead entries where they are.
            None => return false,
        };
        self.write_raw(slot, &mut meta, &raw);
        let key = (meta.slot, meta.gen);
        // The new copy is complete and newer; now the old ones go.
        for _ in first..=ci {
            self.remove_sealed(first);
        }
        self.sealed.insert(first, meta);
        self.recount_heap();
        self.queue_compression(key);
        true
    }
}
