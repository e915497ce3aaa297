//! The memfd's slots: which are free, which one keeps its pages warm for
//! the next open chunk, and which were never touched. A freed slot's pages
//! are given back to the kernel unless it is the warm one, because pages
//! that stay resident count against `max_bytes`.

use super::directory::new_open;
use super::store::{page_round, SlotHeader, SLOT_HEADER};
use super::Ring;

/// A freed slot with its pages kept: see [`Ring`]'s `warm`.
#[derive(Clone, Copy, Debug)]
pub(super) struct WarmSlot {
    pub(super) slot: u32,
    /// Its resident bytes, counted in the ring's pages.
    pub(super) footprint: usize,
}

impl Ring {
    /// Make the open chunk a fresh, empty one in `slot`.
    pub(super) fn reset_open(&mut self, slot: u32, seq: u64) {
        let gen = self.next_gen();
        *self.store.slot_header_mut(slot as usize) = SlotHeader::raw(gen, seq, seq, 0, 0, 0);
        let footprint = self.open.footprint;
        self.open = new_open(slot, gen, seq);
        // The slot's pages stay resident and counted: the next records go
        // into them.
        self.open.footprint = footprint;
    }

    pub(super) fn next_gen(&mut self) -> u64 {
        let h = self.store.header_mut();
        h.gen += 1;
        h.gen
    }

    /// A free slot, evicting the oldest chunk if there is none.
    pub(super) fn take_slot(&mut self) -> u32 {
        loop {
            if let Some(s) = self.pop_free() {
                return s;
            }
            if self.sealed.is_empty() {
                // Cannot happen: the open slot is never in the free list
                // and there are at least eight slots.
                panic!("the ring has no free slot and no sealed chunk");
            }
            // Only after a snapshot or a predecessor with fewer, larger
            // slots: the policy still decides what goes.
            if !self.evict_for_bytes() {
                self.evict_chunk(0);
            }
        }
    }

    pub(super) fn has_free(&self) -> bool {
        !self.free_slots.is_empty() || (self.fresh as usize) < self.store.slot_count
    }

    pub(super) fn pop_free(&mut self) -> Option<u32> {
        if let Some(s) = self.free_slots.pop() {
            return Some(s);
        }
        if (self.fresh as usize) < self.store.slot_count {
            self.fresh += 1;
            return Some(self.fresh - 1);
        }
        if self.cool_warm() {
            return self.free_slots.pop();
        }
        None
    }

    /// Free `slot`, whose resident pages (`footprint` bytes, counted in
    /// `pages`) are no longer needed: kept warm for the next open chunk
    /// when it has more pages than the warm slot, given back otherwise.
    pub(super) fn release_slot(&mut self, slot: u32, footprint: usize) {
        if footprint > self.warm.map_or(page_round(SLOT_HEADER), |w| w.footprint) {
            self.cool_warm();
            self.store.retire(slot as usize);
            self.warm = Some(WarmSlot { slot, footprint });
        } else {
            self.give_back(slot, footprint);
        }
    }

    /// Give back the warm slot's pages, if there is one; true if so.
    pub(super) fn cool_warm(&mut self) -> bool {
        let Some(w) = self.warm.take() else {
            return false;
        };
        self.give_back(w.slot, w.footprint);
        true
    }

    /// Free `slot` with its pages, no longer counted, for reuse.
    pub(super) fn give_back(&mut self, slot: u32, footprint: usize) {
        self.pages -= footprint;
        self.store.free(slot as usize);
        self.free_slots.push(slot);
    }
}
