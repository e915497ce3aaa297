//! Choosing what to lose when a bound is reached. The fair policy takes
//! from sources over their share first and from low severities before
//! high ones, in tiers; fifo takes the oldest. An evicted entry is marked
//! dead in its chunk at once, and counted for its input.

use super::directory::{ChunkMeta, CLASS_HIGH, CLASS_LOW, CLASS_MID};
use super::limits::Evict;
use super::store::MAX_CHUNK_RECORDS;
use super::Ring;
use crate::record::Input;

/// Eviction tiers: six for the fair policy (over-share sources by class,
/// then every source by class), one for fifo.
pub(super) const TIERS: usize = 7;
pub(super) const TIER_FIFO: usize = 6;

/// What one eviction tier takes: entries of `class` (any, if `None`),
/// from sources over their share only, or from every source.
#[derive(Clone, Copy)]
pub(super) struct Tier {
    pub(super) over_share: bool,
    pub(super) class: Option<u8>,
}

impl Tier {
    const fn over_share(class: u8) -> Tier {
        Tier {
            over_share: true,
            class: Some(class),
        }
    }

    const fn every_source(class: u8) -> Tier {
        Tier {
            over_share: false,
            class: Some(class),
        }
    }

    /// Whether an entry of `source` in `class` is in this tier, given
    /// which sources are over their share.
    fn holds(self, over: &[bool], source: u16, class: u8) -> bool {
        self.class.is_none_or(|k| k == class) && (!self.over_share || over[source as usize])
    }
}

impl Ring {
    /// Whether an entry of `source` and `class` is in the tier eviction is
    /// working on: `over` = only sources over their share.
    pub(super) fn over_share(&self, source: u16) -> bool {
        self.sources.total(source) as f64 > self.opts.source_share * self.len as f64
    }

    /// The oldest entry to evict next: (chunk position, entry index), the
    /// position being `sealed.len()` for the open chunk.
    ///
    /// Tiers are tried in order; each remembers how far eviction has
    /// proven it empty (`tier_seq` across chunks, `ChunkMeta::hints`
    /// within one), so a ring of many chunks whose oldest ones hold only
    /// protected entries does not scan them again for every eviction. A
    /// source that goes over its share can make older entries match the
    /// over-share tiers: that forgets their marks (`over_epoch`).
    pub(super) fn pick_victim(&mut self) -> Option<(usize, usize)> {
        const FAIR: [Tier; 6] = [
            Tier::over_share(CLASS_LOW),
            Tier::over_share(CLASS_MID),
            Tier::over_share(CLASS_HIGH),
            Tier::every_source(CLASS_LOW),
            Tier::every_source(CLASS_MID),
            Tier::every_source(CLASS_HIGH),
        ];
        const FIFO: [Tier; 1] = [Tier {
            over_share: false,
            class: None,
        }];
        let fifo = self.opts.evict == Evict::Fifo;
        if !fifo {
            let n = self.sources.held.len();
            self.over.resize(n, false);
            let mut newly = false;
            for s in 0..n {
                let o = self.over_share(s as u16);
                newly |= o && !self.over[s];
                self.over[s] = o;
            }
            if newly {
                self.over_epoch += 1;
                self.tier_seq[..3].fill(0);
            }
        }
        let tiers: &[Tier] = if fifo { &FIFO } else { &FAIR };
        for (t, &kind) in tiers.iter().enumerate() {
            let tier = if fifo { TIER_FIFO } else { t };
            let over = &self.over;
            let any = self.sources.held.iter().enumerate().any(|(s, held)| {
                (0..3u8).any(|c| held[c as usize] > 0 && kind.holds(over, s as u16, c))
            });
            if !any {
                continue;
            }
            let n = self.sealed.len();
            let floor = self.tier_seq[tier];
            let start = self.sealed.partition_point(|m| m.end_seq <= floor);
            let mut proven = floor;
            let mut victim = None;
            for ci in start..=n {
                let meta = if ci < n { &self.sealed[ci] } else { &self.open };
                let candidate = meta
                    .tallies
                    .iter()
                    .any(|t| t.live > 0 && kind.holds(&self.over, t.source, t.class))
                    && !self.captures.pins_all(meta.first_live, meta.end_seq);
                if candidate {
                    if ci < n {
                        self.ensure_index(ci);
                    }
                    victim = self.victim_in(ci, tier, kind).map(|i| (ci, i));
                    if victim.is_some() {
                        break;
                    }
                }
                // Nothing of the tier here that eviction may take (until a
                // source goes over its share, or a capture is released).
                if ci < n {
                    proven = self.sealed[ci].end_seq;
                }
            }
            self.tier_seq[tier] = proven;
            if victim.is_some() {
                return victim;
            }
        }
        None
    }

    /// The first entry of chunk `ci` that tier `tier` (of kind `kind`)
    /// takes and no capture pins, from where the chunk's hint says.
    fn victim_in(&mut self, ci: usize, tier: usize, kind: Tier) -> Option<usize> {
        let n = self.sealed.len();
        let (epoch, released) = (self.over_epoch, self.release_epoch);
        let over = &self.over;
        let captures = &self.captures;
        let meta = if ci < n {
            &mut self.sealed[ci]
        } else {
            &mut self.open
        };
        if meta.hints_epoch != epoch {
            meta.hints_epoch = epoch;
            meta.hints[..3].fill(0);
        }
        if meta.release_epoch != released {
            meta.release_epoch = released;
            meta.hints.fill(0);
        }
        let from = meta.hints[tier] as usize;
        let index = meta.index.as_ref()?;
        let pinned = !captures.pins.is_empty();
        let pos = index.get(from..)?.iter().position(|e| {
            e.live && kind.holds(over, e.source, e.class) && !(pinned && captures.pinned(e.seq))
        });
        let i = pos.map_or(index.len(), |p| p + from);
        meta.hints[tier] = i as u32;
        pos.map(|_| i)
    }

    /// Evict one entry, chosen as the policy says. False if none is held.
    pub(super) fn evict_one(&mut self) -> bool {
        let Some((ci, i)) = self.pick_victim() else {
            return false;
        };
        let key = self.chunk_key(ci);
        if let Some(prev) = self.evicting.filter(|&k| Some(k) != key) {
            self.evicting = key;
            // Eviction moved on: rewrite the chunk it leaves without its
            // dead entries (this may shift positions, so pick again).
            if self.compact_key(prev) {
                return self.evict_one();
            }
        }
        self.evicting = key;
        self.kill(ci, i);
        true
    }

    pub(super) fn chunk_key(&self, ci: usize) -> Option<(u32, u64)> {
        let meta = self.sealed.get(ci).unwrap_or(&self.open);
        Some((meta.slot, meta.gen))
    }

    /// Free memory: evict entries until a chunk is freed or rewritten.
    pub(super) fn evict_for_bytes(&mut self) -> bool {
        if self.opts.evict == Evict::Fifo {
            let Some(oldest) = self.sealed.front() else {
                return false;
            };
            if !self.captures.pins_any(oldest.first_live, oldest.end_seq) {
                self.evict_chunk(0);
                return true;
            }
            // A capture pins some of it: entry by entry, passing those.
        }
        let before = self.used();
        // Bounded: each round kills an entry or fails.
        for _ in 0..(MAX_CHUNK_RECORDS * 2) {
            if !self.evict_one() {
                return false;
            }
            if self.used() < before {
                return true;
            }
        }
        // A chunk of dead entries waits for eviction to move on; move it.
        if let Some(k) = self.evicting.take() {
            self.compact_key(k);
        }
        true
    }

    /// Mark entry `i` of chunk `ci` evicted, and free the chunk if that was
    /// its last live entry.
    pub(super) fn kill(&mut self, ci: usize, i: usize) {
        let n = self.sealed.len();
        let store = &mut self.store;
        let meta: &mut ChunkMeta = if ci < n {
            &mut self.sealed[ci]
        } else {
            &mut self.open
        };
        let Some(index) = meta.index.as_mut() else {
            return;
        };
        let e = &mut index[i];
        if !e.live {
            return;
        }
        // Taking the oldest entry held leaves no hole; any other does.
        let oldest = ci == 0 && e.seq == meta.first_live;
        e.live = false;
        let e = *e;
        let next_live = index[i..].iter().find(|e| e.live).map(|e| e.seq);
        store.slot_header_mut(meta.slot as usize).dead[i / 64] |= 1 << (i % 64);
        meta.live -= 1;
        meta.tally_mut(e.source, e.class).live -= 1;
        if e.seq == meta.first_live {
            if let Some(next) = next_live {
                meta.first_live = next;
            }
        }
        let empty = meta.live == 0;
        self.sources.held[e.source as usize][e.class as usize] -= 1;
        self.store.sources_mut()[e.source as usize].evicted += 1;
        self.owned.evicted(e.owned);
        if let Some(input) = Input::from_code(e.input) {
            self.ledger.input_mut(input).evicted += 1;
        }
        self.len -= 1;
        self.removals += 1;
        if !oldest && self.opts.evict == Evict::Fair {
            let held_from = self.sealed.front().unwrap_or(&self.open).first_live;
            self.evictions
                .record(e.source, e.seq, self.push_ns, held_from);
        }
        if !self.captures.pins.is_empty() && self.captures.pinned(e.seq) {
            self.capture_lost(e.seq);
        }
        if empty && ci < n {
            self.remove_sealed(ci);
        }
    }

    /// Evict every live entry of sealed chunk `ci` and free it.
    pub(super) fn evict_chunk(&mut self, ci: usize) {
        self.ensure_index(ci);
        let count = self.sealed[ci].index.as_ref().map_or(0, Vec::len);
        for i in 0..count {
            if ci >= self.sealed.len() {
                break;
            }
            // `kill` frees the chunk with its last entry.
            let last = self.sealed[ci].live == 1;
            self.kill(ci, i);
            if last {
                return;
            }
        }
        if ci < self.sealed.len() && self.sealed[ci].live == 0 {
            self.remove_sealed(ci);
        }
    }

    pub(super) fn remove_sealed(&mut self, ci: usize) {
        if let Some(meta) = self.sealed.remove(ci) {
            self.release_slot(meta.slot, meta.footprint);
            if self.evicting == Some((meta.slot, meta.gen)) {
                self.evicting = None;
            }
            self.recount_heap();
        }
    }
}
