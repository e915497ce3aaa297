//! The ring's memory: one memfd, mapped shared, that holds everything a
//! successor process needs to go on from where this one stopped.
//!
//! Layout: a header region ([`Header`] at 0, the [`Ledger`] at
//! [`LEDGER_OFFSET`], the per-source table at [`SOURCES_OFFSET`]), then
//! `slot_count` slots of `slot_size` bytes. A slot holds one chunk: a
//! [`SlotHeader`] and the chunk's bytes (raw while it is the open chunk,
//! compressed once sealed) or a compression dictionary. Only pages written
//! are resident, and a freed slot's pages are given back with
//! `FALLOC_FL_PUNCH_HOLE`, so the memfd's size is address space, not
//! memory.
//!
//! Everything here is plain integers in C layout, so any bytes a foreign or
//! torn memfd holds are valid values: [`crate::ring::persist`] checks them
//! before trusting them.

use std::num::NonZeroUsize;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;

use nix::fcntl::{fallocate, FallocateFlags};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

use super::capture::CaptureTable;
use crate::ledger::Ledger;

pub const PAGE: usize = 4096;
pub const MAGIC: [u8; 8] = *b"RINGLOGD";
/// The memfd and snapshot format. A successor refuses any other.
pub const VERSION: u32 = 1;
pub const SLOT_MAGIC: u32 = u32::from_le_bytes(*b"RLCK");
pub const LEDGER_OFFSET: usize = 512;
pub const SOURCES_OFFSET: usize = 1024;
/// Sources counted by name; later ones share the entry `(other)`.
pub const MAX_SOURCES: usize = 1024;
pub const SOURCE_NAME_MAX: usize = 46;
/// Where the capture table starts: right after the source table.
pub const CAPTURES_OFFSET: usize =
    SOURCES_OFFSET + MAX_SOURCES * std::mem::size_of::<SourceEntry>();
pub const HEADER_LEN: usize =
    page_round(SOURCES_OFFSET + MAX_SOURCES * std::mem::size_of::<SourceEntry>());
/// Bytes of a slot before its chunk's data.
pub const SLOT_HEADER: usize = std::mem::size_of::<SlotHeader>();
/// The dead-entry bitmap's capacity: the most records one chunk holds.
pub const MAX_CHUNK_RECORDS: usize = 64 * 64;

pub const fn page_round(n: usize) -> usize {
    n.div_ceil(PAGE) * PAGE
}

/// The ring's own state, at offset 0 of the memfd.
#[repr(C)]
pub struct Header {
    pub magic: [u8; 8],
    pub version: u32,
    pub header_len: u32,
    pub slot_size: u32,
    pub slot_count: u32,
    /// Generation of the newest slot written: a newer copy of a chunk wins.
    pub gen: u64,
    /// The sequence number the next entry gets.
    pub next_seq: u64,
    /// 1 when `resume` holds a cookie.
    pub resume_valid: u32,
    pub local_host_len: u32,
    /// An input's resume cookie (see `Ring::resume_cookie`); the layout
    /// is the same as when it held the kernel log's point by name.
    pub resume: [u8; 56],
    pub local_host: [u8; 256],
    pub sources_len: u32,
}

/// One source's counters in the memfd.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SourceEntry {
    pub name_len: u16,
    pub name: [u8; SOURCE_NAME_MAX],
    pub stored: u64,
    pub evicted: u64,
}

pub const STATE_FREE: u32 = 0;
pub const STATE_OPEN: u32 = 1;
pub const STATE_SEALED: u32 = 2;
/// A slot holding a compression dictionary (see [`crate::ring::dict`]),
/// not a chunk: `stored_len` bytes of it, `crc` over them, its id in
/// `dict`. A memfd from before dictionaries has none.
pub const STATE_DICT: u32 = 3;
pub const CODEC_RAW: u32 = 0;
pub const CODEC_ZSTD: u32 = 1;

/// The head of a slot. A sealed slot's data never changes; only `dead`
/// does, as entries are evicted.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SlotHeader {
    pub magic: u32,
    pub state: u32,
    pub gen: u64,
    /// The chunk covers sequence numbers `first_seq..end_seq`; entries in
    /// that range that it does not hold were evicted.
    pub first_seq: u64,
    pub end_seq: u64,
    /// Receive times in the chunk are stored relative to this.
    pub base_ns: i64,
    /// Records in the chunk, dead ones included.
    pub count: u32,
    /// Bytes of the framed records, uncompressed.
    pub raw_len: u32,
    /// Bytes of data after this header.
    pub stored_len: u32,
    pub codec: u32,
    /// CRC-32 of the stored data, for a sealed slot.
    pub crc: u32,
    /// The dictionary a zstd chunk was compressed with (0: none); a
    /// dictionary slot's own id. Zero in memfds from before dictionaries.
    pub dict: u32,
    /// Bit i set: record i was evicted.
    pub dead: [u64; MAX_CHUNK_RECORDS / 64],
}

impl SlotHeader {
    /// The header of a raw chunk in the open state (the chunk being filled,
    /// or one sealed and waiting for compression): nothing dead yet.
    pub fn raw(
        gen: u64,
        first_seq: u64,
        end_seq: u64,
        base_ns: i64,
        count: u32,
        raw_len: u32,
    ) -> SlotHeader {
        SlotHeader {
            magic: SLOT_MAGIC,
            state: STATE_OPEN,
            gen,
            first_seq,
            end_seq,
            base_ns,
            count,
            raw_len,
            stored_len: 0,
            codec: CODEC_RAW,
            crc: 0,
            dict: 0,
            dead: [0; MAX_CHUNK_RECORDS / 64],
        }
    }

    pub fn is_dead(&self, i: usize) -> bool {
        self.dead[i / 64] & (1 << (i % 64)) != 0
    }
}

/// The memfd and its two mappings (the header's never moves; the slots'
/// moves when the store grows).
pub struct Store {
    fd: OwnedFd,
    header: NonNull<u8>,
    slots: NonNull<u8>,
    pub slot_size: usize,
    pub slot_count: usize,
}

// The mappings belong to the store alone.
unsafe impl Send for Store {}

impl Store {
    /// A new, empty store in a fresh memfd.
    pub fn create(slot_size: usize, slot_count: usize) -> std::io::Result<Store> {
        let fd = memfd_create("ringlogd-ring", MFdFlags::MFD_CLOEXEC)?;
        let store = Store::map(fd, slot_size, slot_count)?;
        let h = store.header_ptr();
        // SAFETY: the header mapping is HEADER_LEN bytes, fresh and zeroed.
        unsafe {
            (*h).magic = MAGIC;
            (*h).version = VERSION;
            (*h).header_len = HEADER_LEN as u32;
            (*h).slot_size = slot_size as u32;
            (*h).slot_count = slot_count as u32;
        }
        Ok(store)
    }

    /// Map `fd` as a store of this geometry, growing the file to fit.
    pub fn map(fd: OwnedFd, slot_size: usize, slot_count: usize) -> std::io::Result<Store> {
        let total = HEADER_LEN + slot_size * slot_count;
        let len = nix::sys::stat::fstat(fd.as_fd())?.st_size as usize;
        if len < total {
            nix::unistd::ftruncate(fd.as_fd(), total as i64)?;
        }
        let header = map_shared(&fd, HEADER_LEN, 0)?;
        let slots = match map_shared(&fd, slot_size * slot_count, HEADER_LEN) {
            Ok(s) => s,
            Err(e) => {
                // SAFETY: mapped just above with this length.
                unsafe {
                    let _ = munmap(header.cast(), HEADER_LEN);
                }
                return Err(e);
            }
        };
        Ok(Store {
            fd,
            header,
            slots,
            slot_size,
            slot_count,
        })
    }

    /// Room for `slot_count` slots (never fewer than now).
    pub fn grow(&mut self, slot_count: usize) -> std::io::Result<()> {
        if slot_count <= self.slot_count {
            return Ok(());
        }
        let total = HEADER_LEN + self.slot_size * slot_count;
        nix::unistd::ftruncate(self.fd.as_fd(), total as i64)?;
        let slots = map_shared(&self.fd, self.slot_size * slot_count, HEADER_LEN)?;
        // SAFETY: the old mapping is no longer referenced: callers hold no
        // borrow of the store across this `&mut self` call.
        unsafe {
            let _ = munmap(self.slots.cast(), self.slot_size * self.slot_count);
        }
        self.slots = slots;
        self.slot_count = slot_count;
        self.header_mut().slot_count = slot_count as u32;
        Ok(())
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn header_ptr(&self) -> *mut Header {
        self.header.as_ptr().cast()
    }

    pub fn header(&self) -> &Header {
        // SAFETY: the mapping is at least HEADER_LEN bytes, page-aligned,
        // and every bit pattern is a valid Header.
        unsafe { &*self.header_ptr() }
    }

    pub fn header_mut(&mut self) -> &mut Header {
        // SAFETY: as in `header`; `&mut self` makes the borrow unique.
        unsafe { &mut *self.header_ptr() }
    }

    /// The ledger's place in the memfd. It is handed out as a raw pointer
    /// because the ring keeps it for its whole life (see `LedgerCell`).
    pub fn ledger_ptr(&self) -> NonNull<Ledger> {
        const _: () = assert!(std::mem::size_of::<Header>() <= LEDGER_OFFSET);
        const _: () = assert!(LEDGER_OFFSET + std::mem::size_of::<Ledger>() <= SOURCES_OFFSET);
        // SAFETY: in bounds of the header mapping (asserted above).
        unsafe { NonNull::new_unchecked(self.header.as_ptr().add(LEDGER_OFFSET).cast()) }
    }

    /// The capture table's place in the memfd, after the source table in
    /// what was the header region's spare end: a memfd from before
    /// captures holds zeroes there, an empty table.
    pub fn captures_ptr(&self) -> NonNull<CaptureTable> {
        const _: () = assert!(CAPTURES_OFFSET + CaptureTable::LEN <= HEADER_LEN);
        // SAFETY: in bounds of the header mapping (asserted above), and
        // aligned (the offset is a multiple of 64).
        unsafe { NonNull::new_unchecked(self.header.as_ptr().add(CAPTURES_OFFSET).cast()) }
    }

    pub fn sources(&self) -> &[SourceEntry] {
        // SAFETY: the table lies within the header mapping; any bytes are
        // valid entries.
        unsafe {
            std::slice::from_raw_parts(self.header.as_ptr().add(SOURCES_OFFSET).cast(), MAX_SOURCES)
        }
    }

    pub fn sources_mut(&mut self) -> &mut [SourceEntry] {
        // SAFETY: as in `sources`, uniquely borrowed.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.header.as_ptr().add(SOURCES_OFFSET).cast(),
                MAX_SOURCES,
            )
        }
    }

    pub fn slot_header(&self, slot: usize) -> &SlotHeader {
        assert!(slot < self.slot_count);
        // SAFETY: in bounds, aligned to the slot size (a page multiple).
        unsafe { &*self.slots.as_ptr().add(slot * self.slot_size).cast() }
    }

    pub fn slot_header_mut(&mut self, slot: usize) -> &mut SlotHeader {
        assert!(slot < self.slot_count);
        // SAFETY: as in `slot_header`, uniquely borrowed.
        unsafe { &mut *self.slots.as_ptr().add(slot * self.slot_size).cast() }
    }

    /// The data part of a slot: everything after its header.
    pub fn slot_data(&self, slot: usize) -> &[u8] {
        assert!(slot < self.slot_count);
        // SAFETY: in bounds of the slot mapping.
        unsafe {
            std::slice::from_raw_parts(
                self.slots.as_ptr().add(slot * self.slot_size + SLOT_HEADER),
                self.slot_size - SLOT_HEADER,
            )
        }
    }

    /// A slot's header and data, both writable.
    pub fn slot_mut(&mut self, slot: usize) -> (&mut SlotHeader, &mut [u8]) {
        assert!(slot < self.slot_count);
        // SAFETY: header and data are disjoint parts of the slot.
        unsafe {
            let base = self.slots.as_ptr().add(slot * self.slot_size);
            (
                &mut *base.cast(),
                std::slice::from_raw_parts_mut(base.add(SLOT_HEADER), self.slot_size - SLOT_HEADER),
            )
        }
    }

    /// The slots that hold any data: only these can hold a chunk. Found
    /// with SEEK_DATA/SEEK_HOLE, because reading a hole of a memfd through
    /// the mapping would allocate a page for it.
    pub fn slots_in_use(&self) -> Vec<usize> {
        use nix::unistd::{lseek, Whence};
        let end = (HEADER_LEN + self.slot_size * self.slot_count) as i64;
        let mut slots = Vec::new();
        let mut pos = HEADER_LEN as i64;
        while pos < end {
            let Ok(data) = lseek(self.fd.as_fd(), pos, Whence::SeekData) else {
                break;
            };
            if data >= end {
                break;
            }
            let hole = lseek(self.fd.as_fd(), data, Whence::SeekHole).unwrap_or(end);
            let first = (data as usize - HEADER_LEN) / self.slot_size;
            let last = ((hole.min(end) as usize - HEADER_LEN).saturating_sub(1)) / self.slot_size;
            for slot in first..=last.min(self.slot_count - 1) {
                if slots.last() != Some(&slot) {
                    slots.push(slot);
                }
            }
            pos = hole;
        }
        slots
    }

    /// Give back a slot's memory from byte `from` (of the slot) to its end.
    pub fn punch(&self, slot: usize, from: usize) {
        let from = page_round(from);
        if from >= self.slot_size {
            return;
        }
        let offset = HEADER_LEN + slot * self.slot_size + from;
        // A memfd always supports it; if not, the pages stay counted by the
        // kernel but the ring's own count stays right.
        let _ = fallocate(
            self.fd.as_fd(),
            FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
            offset as i64,
            (self.slot_size - from) as i64,
        );
    }

    /// Free a slot but keep its pages: only its header says it is free
    /// (so a successor adopting the memfd ignores, and punches, it).
    pub fn retire(&mut self, slot: usize) {
        let h = self.slot_header_mut(slot);
        h.magic = 0;
        h.state = STATE_FREE;
    }

    /// Free a slot: its header says so first, then its pages go.
    pub fn free(&mut self, slot: usize) {
        let h = self.slot_header_mut(slot);
        h.magic = 0;
        h.state = STATE_FREE;
        self.punch(slot, 0);
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: both were mapped with these lengths and nothing borrows
        // them once the store is dropped.
        unsafe {
            let _ = munmap(self.header.cast(), HEADER_LEN);
            let _ = munmap(self.slots.cast(), self.slot_size * self.slot_count);
        }
    }
}

fn map_shared(fd: &OwnedFd, len: usize, offset: usize) -> std::io::Result<NonNull<u8>> {
    let len = NonZeroUsize::new(len).ok_or(std::io::ErrorKind::InvalidInput)?;
    // SAFETY: a fresh shared mapping of our own memfd; nothing else in this
    // process maps it.
    let p = unsafe {
        mmap(
            None,
            len,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED | MapFlags::MAP_NORESERVE,
            fd,
            offset as i64,
        )?
    };
    Ok(p.cast())
}
