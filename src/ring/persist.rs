//! A ring that outlives its process: taken over from a predecessor's memfd
//! ([`Ring::adopt`]: re-exec, the systemd fd store, a crash under it), or
//! saved to and loaded from a snapshot file ([`Ring::save_snapshot`],
//! [`Ring::load_snapshot`]), which is private (0600) and written as
//! [`crate::private_file`] writes every file.
//!
//! Both trust nothing they read: a slot counts only if its header is
//! consistent and (once sealed) its CRC matches; of two copies of a chunk
//! (a crash between writing the new one and freeing the old) the newer
//! generation wins; the open chunk keeps the records whose count had been
//! written, so a crash loses at most the record being written. A snapshot
//! is checked whole (length and CRC) before anything in it is used.

use std::ops::ControlFlow;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use super::store::{
    Header, SlotHeader, Store, CODEC_RAW, CODEC_ZSTD, HEADER_LEN, LEDGER_OFFSET, MAGIC,
    MAX_CHUNK_RECORDS, MAX_SOURCES, SLOT_HEADER, SLOT_MAGIC, SOURCES_OFFSET, STATE_OPEN,
    STATE_SEALED, VERSION,
};
use super::{chunk, codec, page_round, ChunkMeta, Limits, Ring, RingError, RingOptions};

const SNAP_MAGIC: [u8; 8] = *b"RLSNAPSH";
/// Above any sequence number or generation a ring reaches.
pub(super) const SEQ_LIMIT: u64 = 1 << 62;
const SNAP_END: [u8; 8] = *b"RLSNAPND";

fn err(msg: impl Into<String>) -> RingError {
    RingError(msg.into())
}

/// Check a header read from a memfd or snapshot; the geometry it gives.
fn check_header(h: &Header, what: &str) -> Result<(usize, usize), RingError> {
    if h.magic != MAGIC {
        return Err(err(format!(
            "{what} is not a ringlogd ring (no RINGLOGD mark)"
        )));
    }
    if h.version != VERSION {
        return Err(err(format!(
            "{what} holds a ring in format version {}; this ringlogd reads version {VERSION} \
             only",
            h.version
        )));
    }
    let slot_size = h.slot_size as usize;
    let slot_count = h.slot_count as usize;
    // Sequence numbers and generations count up from 0 by one: a value
    // near the top is damage, and would overflow.
    if h.next_seq >= SEQ_LIMIT || h.gen >= SEQ_LIMIT {
        return Err(err(format!(
            "{what}: the ring's counters are out of range (next sequence number {})",
            h.next_seq
        )));
    }
    if h.header_len as usize != HEADER_LEN
        || slot_size <= SLOT_HEADER
        || slot_size % 4096 != 0
        || slot_size > 1 << 30
        || slot_count == 0
        || slot_count > 1 << 24
    {
        return Err(err(format!(
            "{what}: the ring's geometry is inconsistent (header {}, slots {} x {})",
            h.header_len, slot_count, slot_size
        )));
    }
    Ok((slot_size, slot_count))
}

/// Read a Header out of bytes (which may be anything).
fn header_from(bytes: &[u8]) -> Option<Header> {
    if bytes.len() < std::mem::size_of::<Header>() {
        return None;
    }
    // SAFETY: Header is plain integers in C layout, so any bytes are a
    // valid value; read_unaligned copes with any alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<Header>()) })
}

fn slot_header_from(bytes: &[u8]) -> Option<SlotHeader> {
    if bytes.len() < SLOT_HEADER {
        return None;
    }
    // SAFETY: as in `header_from`.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<SlotHeader>()) })
}

fn as_bytes<T>(v: &T) -> &[u8] {
    // SAFETY: used only for the plain-integer C-layout types of `store`.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

/// A slot worth keeping: (slot, gen, first_seq, end_seq).
struct Candidate {
    slot: usize,
    gen: u64,
    first: u64,
    end: u64,
}

impl Ring {
    /// Go on from the ring a predecessor left in `fd`: the same entries,
    /// sequence numbers and counters. `limits` and `opts` are this
    /// process's (older chunks keep how they were stored).
    pub fn adopt(fd: OwnedFd, limits: Limits, opts: RingOptions) -> Result<Ring, RingError> {
        let mut buf = vec![0u8; std::mem::size_of::<Header>()];
        let n = nix::sys::uio::pread(fd.as_fd(), &mut buf, 0)
            .map_err(|e| err(format!("cannot read the ring's memfd: {e}")))?;
        let h =
            header_from(&buf[..n]).ok_or_else(|| err("the memfd is too short to hold a ring"))?;
        let (slot_size, slot_count) = check_header(&h, "the memfd")?;
        let len = nix::sys::stat::fstat(fd.as_fd())
            .map_err(|e| err(format!("cannot stat the ring's memfd: {e}")))?
            .st_size as usize;
        if len < HEADER_LEN + slot_size * slot_count {
            return Err(err(format!(
                "the memfd is {len} bytes, too short for the ring its header describes"
            )));
        }
        let store = Store::map(fd, slot_size, slot_count)
            .map_err(|e| err(format!("cannot map the ring's memfd: {e}")))?;
        Ok(Ring::recover(store, limits, opts))
    }

    /// Build the ring's heap side from whatever consistent chunks `store`
    /// holds, freeing the rest.
    fn recover(store: Store, limits: Limits, opts: RingOptions) -> Ring {
        let limits = limits.clamped();
        let payload = store.slot_size - SLOT_HEADER;
        let mut ring = Ring::bare(store, limits, opts);
        let mut next_seq = ring.store.header().next_seq;
        let mut candidates = Vec::new();
        let in_use = ring.store.slots_in_use();
        // Dictionaries first: the chunks name them.
        let dict_slots = ring.recover_dicts(&in_use);
        for slot in in_use {
            if dict_slots.contains(&slot) {
                continue;
            }
            let h = ring.store.slot_header(slot);
            let sane = h.magic == SLOT_MAGIC
                && (h.state == STATE_OPEN || h.state == STATE_SEALED)
                && h.first_seq <= h.end_seq
                && h.end_seq < SEQ_LIMIT
                && h.gen < SEQ_LIMIT
                && h.count as usize <= MAX_CHUNK_RECORDS
                && h.count > 0
                && (h.raw_len as usize) <= (1 << 30)
                && match h.state {
                    STATE_OPEN => h.raw_len as usize <= payload,
                    _ => {
                        (h.stored_len as usize) <= payload
                            && (h.codec == CODEC_RAW || h.codec == CODEC_ZSTD)
                            && (h.codec != CODEC_RAW || h.stored_len == h.raw_len)
                            // Its dictionary, if it names one, is whole.
                            && (h.dict == 0 || (h.codec == CODEC_ZSTD && ring.dicts.has(h.dict)))
                            && crc32fast::hash(&ring.store.slot_data(slot)[..h.stored_len as usize])
                                == h.crc
                    }
                };
            if sane {
                candidates.push(Candidate {
                    slot,
                    gen: h.gen,
                    first: h.first_seq,
                    end: h.end_seq,
                });
            } else {
                // Damaged, or freed with its pages kept (a warm slot).
                ring.store.free(slot);
            }
        }
        // Newest generation first: of overlapping copies, the newer wins.
        candidates.sort_by_key(|c| std::cmp::Reverse(c.gen));
        let mut kept: Vec<Candidate> = Vec::new();
        for c in candidates {
            if kept.iter().any(|k| c.first < k.end && k.first < c.end) {
                ring.store.free(c.slot);
            } else {
                kept.push(c);
            }
        }
        kept.sort_by_key(|c| c.first);
        let mut used_slots = vec![false; ring.store.slot_count];
        for &slot in &dict_slots {
            used_slots[slot] = true;
        }
        // Every chunk comes back sealed, the predecessor's open one too (a
        // chunk in the open state is raw, so its intact records are kept);
        // below, the newest of them is opened again if it was the open one.
        for c in &kept {
            let open = ring.store.slot_header(c.slot).state == STATE_OPEN;
            let Some(meta) = ring.load_chunk(c.slot, open) else {
                ring.store.free(c.slot);
                continue;
            };
            // Pages past what the chunk holds (a slot reused warm, a chunk
            // trimmed to its intact records) are not counted: they go.
            ring.store.punch(c.slot, meta.footprint);
            next_seq = next_seq.max(meta.end_seq);
            used_slots[c.slot] = true;
            ring.sealed.push_back(meta);
        }
        ring.store.header_mut().next_seq = next_seq;
        ring.store.header_mut().gen = ring
            .store
            .header()
            .gen
            .max(kept.iter().map(|c| c.gen).max().unwrap_or(0));
        if !ring.reopen_newest(next_seq) {
            // The lowest free slot; with none free (a ring whose every slot
            // holds a chunk), the oldest chunk makes room.
            let slot = match (0..ring.store.slot_count).find(|&s| !used_slots[s]) {
                Some(s) => s,
                None => {
                    let m = ring.sealed.pop_front().expect("slots hold chunks");
                    ring.store.free(m.slot as usize);
                    m.slot as usize
                }
            };
            used_slots[slot] = true;
            ring.open.footprint = page_round(SLOT_HEADER);
            ring.reset_open(slot as u32, next_seq);
        }
        let fresh = used_slots.iter().rposition(|&u| u).map_or(0, |s| s + 1);
        ring.fresh = fresh as u32;
        ring.free_slots = (0..fresh as u32)
            .rev()
            .filter(|&s| !used_slots[s as usize])
            .collect();
        ring.len =
            ring.sealed.iter().map(|m| m.live as usize).sum::<usize>() + ring.open.live as usize;
        ring.recount();
        ring.sweep_dicts();
        // Chunks the predecessor sealed but had not compressed yet.
        let raw: Vec<(u32, u64)> = ring
            .sealed
            .iter()
            .filter(|m| ring.store.slot_header(m.slot as usize).state == STATE_OPEN)
            .map(|m| (m.slot, m.gen))
            .collect();
        for key in raw {
            ring.queue_compression(key);
        }
        ring.set_limits(limits);
        ring
    }

    /// Go on writing into the predecessor's open chunk, when it is the
    /// newest one loaded and nothing was lost after it. A fresh open chunk
    /// would cost a page more than the predecessor used, and a ring at its
    /// byte budget would evict an entry for it on adoption.
    fn reopen_newest(&mut self, next_seq: u64) -> bool {
        let Some(last) = self.sealed.back() else {
            return false;
        };
        let h = self.store.slot_header(last.slot as usize);
        if h.state != STATE_OPEN || last.end_seq != next_seq {
            return false;
        }
        let newest = self.sealed.len() - 1;
        self.ensure_index(newest);
        let meta = self.sealed.pop_back().expect("checked");
        self.open = meta;
        self.open.hints = [0; super::TIERS];
        true
    }

    /// A ring over `store` with nothing loaded: the table of sources, the
    /// local host name and the ledger come from the store's header.
    fn bare(store: Store, limits: Limits, opts: RingOptions) -> Ring {
        let mut ring = Ring::from_store_parts(store, limits, opts);
        let h = ring.store.header();
        let n = (h.local_host_len as usize).min(h.local_host.len());
        ring.local_host = String::from_utf8_lossy(&h.local_host[..n]).into_owned();
        let claimed = (ring.store.header().sources_len as usize).clamp(1, MAX_SOURCES);
        ring.sources.ids.clear();
        ring.sources.held.clear();
        // The table ends at the first entry no predecessor could have
        // written (no name, too long, not UTF-8, a name already seen): a
        // damaged count must not make the ring count, and charge to its
        // budget, a table of sources that is not there. Records carry
        // their source's name, so loading the chunks puts back any source
        // the table lost.
        let mut sources = 0;
        for id in 0..claimed {
            let e = ring.store.sources()[id];
            let len = e.name_len as usize;
            let name = match std::str::from_utf8(e.name.get(..len).unwrap_or_default()) {
                Ok(name)
                    if (id == 0 || !name.is_empty()) && !ring.sources.ids.contains_key(name) =>
                {
                    name.to_owned()
                }
                _ if id == 0 => String::new(),
                _ => break,
            };
            ring.sources.ids.insert(name.into(), id as u16);
            ring.sources.held.push([0; 3]);
            sources = id + 1;
        }
        ring.store.header_mut().sources_len = sources as u32;
        ring
    }

    /// The heap side of the chunk in `slot`, from its records. An open
    /// chunk keeps its intact records; its header is trimmed to them.
    fn load_chunk(&mut self, slot: usize, open: bool) -> Option<ChunkMeta> {
        let h = *self.store.slot_header(slot);
        let mut meta = ChunkMeta {
            slot: slot as u32,
            gen: h.gen,
            first_seq: h.first_seq,
            end_seq: h.end_seq,
            base_ns: h.base_ns,
            count: h.count,
            live: 0,
            raw_len: h.raw_len,
            footprint: page_round(
                SLOT_HEADER
                    + if h.state == STATE_OPEN {
                        h.raw_len as usize
                    } else {
                        h.stored_len as usize
                    },
            ),
            first_live: 0,
            tallies: Vec::new(),
            index: None,
            hints: [0; super::TIERS],
            hints_epoch: 0,
            release_epoch: 0,
        };
        let mut buf = Vec::new();
        let data =
            Ring::chunk_bytes(&self.store, &meta, &mut buf, &mut self.dctx, &self.dicts)?.to_vec();
        let ctx = codec::Context {
            base_ns: h.base_ns,
            local_host: &self.local_host,
        };
        let mut found = Vec::new();
        let mut intact = 0;
        chunk::for_each_frame(&data, h.count as usize, h.first_seq, |fr| {
            if fr.seq >= h.end_seq {
                return ControlFlow::Break(());
            }
            let Some(r) = codec::decode(fr.seq, fr.bytes, ctx) else {
                return ControlFlow::Break(());
            };
            intact = fr.bytes.as_ptr() as usize - data.as_ptr() as usize + fr.bytes.len();
            found.push((
                fr.seq,
                r.source.to_owned(),
                super::class_of(r.severity),
                r.peer.map(|p| p.uid),
                !h.is_dead(fr.idx),
            ));
            ControlFlow::Continue(())
        });
        if found.is_empty() {
            return None;
        }
        if found.len() != h.count as usize {
            if !open {
                // A sealed chunk is whole or nothing: its CRC matched, so
                // this is a record this version cannot read.
                return None;
            }
            let sh = self.store.slot_header_mut(slot);
            sh.count = found.len() as u32;
            sh.raw_len = intact as u32;
            sh.end_seq = found.last().map_or(h.first_seq, |f| f.0 + 1);
            meta.count = sh.count;
            meta.raw_len = sh.raw_len;
            meta.end_seq = sh.end_seq;
        }
        // Eviction builds the chunk's index when it needs one.
        for (seq, source, class, uid, live) in found {
            if !live {
                continue;
            }
            let source = self.source_id(&source);
            // What a predecessor stored and evicted per uid was on its
            // heap: counting starts again from the entries held.
            let owned = self.owned.id(source, uid);
            self.owned.stored(owned);
            meta.live += 1;
            if meta.live == 1 {
                meta.first_live = seq;
            }
            meta.tally_mut(source, class).live += 1;
            self.sources.held[source as usize][class as usize] += 1;
        }
        if meta.live == 0 {
            return None;
        }
        Some(meta)
    }

    /// Write the ring to `path`, through a temporary file renamed over it,
    /// so a crash while saving leaves the previous snapshot whole.
    pub fn save_snapshot(&self, path: &Path) -> Result<(), RingError> {
        let mut out = Vec::with_capacity(self.used());
        out.extend_from_slice(&SNAP_MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        let sources = (self.store.header().sources_len as usize).clamp(1, MAX_SOURCES);
        out.extend_from_slice(&(sources as u32).to_le_bytes());
        let mut head = vec![0u8; SOURCES_OFFSET];
        let h = as_bytes(self.store.header());
        head[..h.len()].copy_from_slice(h);
        let ledger = as_bytes(&*self.ledger);
        head[LEDGER_OFFSET..LEDGER_OFFSET + ledger.len()].copy_from_slice(ledger);
        out.extend_from_slice(&head);
        for e in &self.store.sources()[..sources] {
            out.extend_from_slice(as_bytes(e));
        }
        let chunks: Vec<&ChunkMeta> = self
            .sealed
            .iter()
            .chain(std::iter::once(&self.open))
            .filter(|m| m.count > 0)
            .collect();
        // Dictionaries go first, as slots like the chunks: a loader puts
        // them back in slots, where the ring finds them as in a memfd.
        let dicts = self.dict_slots();
        out.extend_from_slice(&((dicts.len() + chunks.len()) as u32).to_le_bytes());
        for (sh, data) in dicts {
            out.extend_from_slice(as_bytes(&sh));
            out.extend_from_slice(data);
        }
        for m in chunks {
            let mut sh = *self.store.slot_header(m.slot as usize);
            let data = self.store.slot_data(m.slot as usize);
            let stored = if sh.state == STATE_OPEN {
                // Saved as a sealed raw chunk: the loader starts a new open one.
                let raw = &data[..sh.raw_len as usize];
                sh.state = STATE_SEALED;
                sh.codec = CODEC_RAW;
                sh.stored_len = sh.raw_len;
                sh.crc = crc32fast::hash(raw);
                raw
            } else {
                &data[..sh.stored_len as usize]
            };
            out.extend_from_slice(as_bytes(&sh));
            out.extend_from_slice(stored);
        }
        // Captures after the chunks: a loader from before them stops at
        // the chunks and takes the rest for the trailer's checked bytes.
        out.extend_from_slice(self.captures.table.get().as_bytes());
        let len = out.len() as u64 + 8 + 4 + 8;
        out.extend_from_slice(&len.to_le_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&SNAP_END);
        crate::private_file::write_atomic(path, &out, 0o600)
            .map(|_| ())
            .map_err(err)
    }

    /// The ring the snapshot at `path` holds, stored as `limits` and `opts`
    /// say; `None` when there is no snapshot yet. The file is read as
    /// [`crate::private_file::read_checked`] reads one that `owners` may
    /// own (no symlink, no one else could have written it), then as
    /// [`Ring::from_snapshot`] reads it. With the ring, a note for the log
    /// if the file had to be made private.
    pub fn load_snapshot(
        path: &Path,
        limits: Limits,
        opts: RingOptions,
        owners: &[u32],
    ) -> Result<Option<(Ring, Option<String>)>, RingError> {
        let Some(file) = crate::private_file::read_checked(path, owners).map_err(err)? else {
            return Ok(None);
        };
        let ring = Ring::from_snapshot(&file.bytes, path, limits, opts)?;
        Ok(Some((ring, file.warning)))
    }

    /// A ring holding what `bytes`, read from the snapshot at `path`, hold.
    /// A torn, foreign or other-version snapshot is refused.
    pub fn from_snapshot(
        bytes: &[u8],
        path: &Path,
        limits: Limits,
        opts: RingOptions,
    ) -> Result<Ring, RingError> {
        let shown = path.display();
        let fixed = 8 + 4 + 4 + SOURCES_OFFSET;
        if bytes.len() < 8 || bytes[..8] != SNAP_MAGIC {
            return Err(err(format!("{shown} is not a ringlogd snapshot")));
        }
        let trailer = 8 + 4 + 8;
        if bytes.len() < fixed + 4 + trailer || bytes[bytes.len() - 8..] != SNAP_END {
            return Err(err(format!(
                "the snapshot {shown} is torn (it ends before its end mark); not loaded"
            )));
        }
        let body = bytes.len() - 12;
        let len = u64::from_le_bytes(bytes[body - 8..body].try_into().expect("8 bytes"));
        let crc = u32::from_le_bytes(bytes[body..body + 4].try_into().expect("4 bytes"));
        if len != bytes.len() as u64 || crc32fast::hash(&bytes[..body]) != crc {
            return Err(err(format!(
                "the snapshot {shown} is damaged (its length or checksum does not match); not loaded"
            )));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(err(format!(
                "the snapshot {shown} is in format version {version}; this ringlogd reads \
                 version {VERSION} only"
            )));
        }
        let sources = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize;
        let head = &bytes[16..16 + SOURCES_OFFSET];
        let h = header_from(head).ok_or_else(|| err("snapshot header too short"))?;
        let (_, _) = check_header(&h, &format!("the snapshot {shown}"))?;
        if sources == 0 || sources > MAX_SOURCES {
            return Err(err(format!(
                "the snapshot {shown} is inconsistent: {sources} sources"
            )));
        }
        let mut pos = 16 + SOURCES_OFFSET;
        let entry = std::mem::size_of::<super::store::SourceEntry>();
        let table = bytes
            .get(pos..pos + sources * entry)
            .ok_or_else(|| err(format!("the snapshot {shown} is inconsistent")))?
            .to_vec();
        pos += sources * entry;
        let count = u32::from_le_bytes(
            bytes
                .get(pos..pos + 4)
                .ok_or_else(|| err(format!("the snapshot {shown} is inconsistent")))?
                .try_into()
                .expect("4 bytes"),
        ) as usize;
        pos += 4;
        let mut chunks = Vec::new();
        for _ in 0..count {
            let sh = bytes
                .get(pos..)
                .and_then(slot_header_from)
                .ok_or_else(|| err(format!("the snapshot {shown} is inconsistent")))?;
            pos += SLOT_HEADER;
            let data = bytes
                .get(pos..pos + sh.stored_len as usize)
                .ok_or_else(|| err(format!("the snapshot {shown} is inconsistent")))?;
            pos += sh.stored_len as usize;
            chunks.push((sh, data));
        }
        let limits = limits.clamped();
        let fresh = Ring::with_options(limits, opts)
            .map_err(|e| err(format!("cannot create the ring: {e}")))?;
        let mut store = fresh.into_store();
        let payload = store.slot_size - SLOT_HEADER;
        let need = chunks.len() + 8;
        if store.slot_count < need {
            store
                .grow(need)
                .map_err(|e| err(format!("cannot grow the ring's memfd: {e}")))?;
        }
        {
            let hm = store.header_mut();
            hm.next_seq = h.next_seq;
            hm.gen = h.gen;
            hm.resume_valid = h.resume_valid;
            hm.resume = h.resume;
            hm.local_host = h.local_host;
            hm.local_host_len = h.local_host_len;
            hm.sources_len = sources as u32;
        }
        // SAFETY: the ledger is plain u64s; `head` holds its bytes.
        let ledger: crate::ledger::Ledger =
            unsafe { std::ptr::read_unaligned(head[LEDGER_OFFSET..].as_ptr().cast()) };
        // SAFETY: the store's ledger place is valid for writes of a Ledger.
        unsafe { store.ledger_ptr().as_ptr().write(ledger) };
        for (id, e) in table.chunks_exact(entry).enumerate() {
            // SAFETY: SourceEntry is plain integers and bytes.
            store.sources_mut()[id] = unsafe { std::ptr::read_unaligned(e.as_ptr().cast()) };
        }
        // Slot 0 is the fresh ring's open chunk: chunks go after it.
        let mut slot = 1;
        for (sh, data) in chunks {
            if data.len() > payload || slot >= store.slot_count {
                continue;
            }
            let (dst_h, dst) = store.slot_mut(slot);
            dst[..data.len()].copy_from_slice(data);
            *dst_h = sh;
            slot += 1;
        }
        // The capture table, if the snapshot has one (checked again, with
        // the ring, when the ring is rebuilt).
        let rest = bytes.get(pos..body - 8).unwrap_or_default();
        // SAFETY: the store's capture place is valid for a table, and no
        // ring holds it yet.
        let table = unsafe { store.captures_ptr().as_mut() };
        if !rest.is_empty() && !table.set_from(rest) {
            return Err(err(format!(
                "the snapshot {shown} is inconsistent: {} bytes after its chunks are not a \
                 capture table",
                rest.len()
            )));
        }
        store.free(0);
        Ok(Ring::recover(store, limits, opts))
    }

    /// The ring's store, for a caller that rebuilds a ring over it.
    fn into_store(self) -> Store {
        self.store
    }
}
