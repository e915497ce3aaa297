//! Sequence numbers that never go backwards, whatever ended the previous
//! run: the sequence mark, a small file beside the snapshot
//! (`SNAPSHOT.seq`, mode 0600) that says "no entry has been given a
//! sequence number at or above this one".
//!
//! A reader's cursor is a sequence number, so one given twice makes a
//! follower that resumes skip the new entries as ones it has seen. A ring
//! taken over from a memfd (re-exec, the service manager's fd store) goes
//! on from the memfd's own counter; a snapshot holds the counter at the
//! clean stop that wrote it, but a crash, or a stop whose save failed,
//! leaves an older snapshot (or none) behind. So numbers are handed out in
//! blocks: before the first number of a block is given, the mark is
//! written (atomically, [`crate::private_file`]) at the end of the block,
//! and a start that loads a snapshot, or starts empty, starts at or above
//! the mark. A clean stop that saved the snapshot sets the mark to the
//! exact next number, so a clean restart goes on without a gap.
//!
//! Why a mark and not a number derived from the clock: the numbers stay
//! small and dense for people to read, and nothing depends on the clock
//! never being set back or on a bound on the ingest rate. The price is a
//! gap of at most one block after a crash, and one small write per block.
//! A block lasts about a minute at the rate entries came in during the last
//! one (at least [`MIN_BLOCK`] numbers, at most [`MAX_BLOCK`]), so the
//! write is rare under any load, and the gap small when the log is quiet.
//!
//! The mark is written by the user the daemon runs as, once it is that
//! user: until [`Ring::arm_seq_mark`] nothing is written (and no reader is
//! served, so a number given before then and given again after a crash was
//! never seen).
//!
//! Without `--snapshot` there is no mark: after a crash, with no fd store
//! either, the ring starts empty and the numbers start again from 0; a
//! cursor from before is then ahead of the ring, which the query server
//! answers with a notice, reading from the oldest entry.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::Ring;

/// The fewest numbers a block holds (and the first block's size).
pub const MIN_BLOCK: u64 = 1000;
/// The most numbers a block holds: about a minute at a million entries a
/// second.
pub const MAX_BLOCK: u64 = 1 << 26;
/// How long a block should last at the rate of the last one.
const BLOCK_SPAN: Duration = Duration::from_secs(60);

/// Something about the mark the log should say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeqMarkNews {
    /// The mark could not be written: numbers may be given again after a
    /// crash.
    Failed(String),
    /// It could be written again after a failure.
    Recovered(String),
}

/// The mark file and the block handed out under it.
#[derive(Debug)]
pub struct SeqMark {
    path: PathBuf,
    /// Numbers below this are covered by the mark on disk; `u64::MAX` until
    /// armed.
    ceiling: u64,
    block: u64,
    /// When the current block was reserved and at which number it began.
    reserved: Option<(Instant, u64)>,
    failing: bool,
    news: Option<SeqMarkNews>,
}

impl SeqMark {
    /// The mark kept beside the snapshot at `snapshot`: `SNAPSHOT.seq`.
    pub fn beside(snapshot: &Path) -> SeqMark {
        let mut name = snapshot.as_os_str().to_owned();
        name.push(".seq");
        SeqMark {
            path: PathBuf::from(name),
            ceiling: u64::MAX,
            block: MIN_BLOCK,
            reserved: None,
            failing: false,
            news: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number on disk (`None` when there is no mark yet), read with the
    /// checks of [`crate::private_file::read_checked`]; and a warning to
    /// log, if the file had to be made private.
    pub fn read(&self, owners: &[u32]) -> Result<(Option<u64>, Option<String>), String> {
        let Some(file) = crate::private_file::read_checked(&self.path, owners)? else {
            return Ok((None, None));
        };
        let text = String::from_utf8_lossy(&file.bytes);
        let value = text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&v| v < super::persist::SEQ_LIMIT)
            .ok_or_else(|| {
                format!(
                    "{} does not hold a sequence number: {:?}",
                    self.path.display(),
                    text.chars().take(40).collect::<String>()
                )
            })?;
        Ok((Some(value), file.warning))
    }

    fn write(&self, value: u64) -> Result<(), String> {
        crate::private_file::write_atomic(&self.path, format!("{value}\n").as_bytes(), 0o600)
            .map(|_| ())
    }

    /// Cover the numbers from `next` on with a new block.
    fn reserve(&mut self, next: u64) {
        if let Some((at, first)) = self.reserved {
            let used = next.saturating_sub(first);
            let span = at.elapsed().as_secs_f64().max(1e-3);
            let per_span = used as f64 * BLOCK_SPAN.as_secs_f64() / span;
            self.block = (per_span as u64).clamp(MIN_BLOCK, MAX_BLOCK);
        }
        let ceiling = next + self.block;
        let written = self.write(ceiling);
        // On failure the numbers go on all the same (ingest never waits on
        // a disk), and the write is tried again a block later.
        self.ceiling = ceiling;
        self.reserved = Some((Instant::now(), next));
        self.report(written, next);
    }

    /// Note a write's outcome for the log, once per change.
    fn report(&mut self, written: Result<(), String>, next: u64) {
        match written {
            Err(e) if !self.failing => {
                self.failing = true;
                self.news = Some(SeqMarkNews::Failed(format!(
                    "cannot keep the sequence mark: {e}; after a crash, sequence numbers from \
                     {next} on may be given again"
                )));
            }
            Ok(()) if self.failing => {
                self.failing = false;
                self.news = Some(SeqMarkNews::Recovered(format!(
                    "the sequence mark {} is written again",
                    self.path.display()
                )));
            }
            _ => {}
        }
    }
}

impl Ring {
    /// Keep sequence numbers above `mark` from now on. A ring loaded from a
    /// snapshot or started empty (`skip` true) first goes on from the
    /// number on disk, if it is ahead; a ring taken over from a memfd has
    /// its predecessor's own counter and does not skip. Nothing is written
    /// until [`Ring::arm_seq_mark`]. Returns a warning for the log, if any.
    pub fn keep_seq_mark(&mut self, mark: SeqMark, skip: bool, owners: &[u32]) -> Option<String> {
        let warning = match mark.read(owners) {
            Ok((value, warning)) => {
                if let Some(v) = value.filter(|_| skip) {
                    self.skip_seq_to(v);
                }
                warning
            }
            Err(e) => Some(format!(
                "{e}; not used: sequence numbers may repeat ones given before a crash"
            )),
        };
        self.seq_mark = Some(mark);
        warning
    }

    /// Start writing the mark: reserve the first block now.
    pub fn arm_seq_mark(&mut self) {
        let next = self.next_seq();
        if let Some(m) = &mut self.seq_mark {
            m.reserve(next);
        }
    }

    /// At a clean stop, once the snapshot is saved: the mark becomes the
    /// exact next number, so the next start goes on without a gap.
    pub fn settle_seq_mark(&mut self) -> Result<(), String> {
        let next = self.next_seq();
        let Some(m) = &mut self.seq_mark else {
            return Ok(());
        };
        m.write(next)?;
        m.ceiling = next;
        m.reserved = None;
        Ok(())
    }

    /// What the log should say about the mark since the last call.
    pub fn seq_mark_news(&mut self) -> Option<SeqMarkNews> {
        self.seq_mark.as_mut().and_then(|m| m.news.take())
    }

    /// Called with each number before it is given: reserve a new block
    /// when it is not covered.
    pub(super) fn cover_seq(&mut self, seq: u64) {
        if let Some(m) = &mut self.seq_mark {
            if seq >= m.ceiling {
                m.reserve(seq);
            }
        }
    }

    /// Give the next entry `seq`, if that is ahead of the ring's counter.
    fn skip_seq_to(&mut self, seq: u64) {
        if seq <= self.next_seq() {
            return;
        }
        if self.open.count > 0 {
            self.seal();
        }
        self.store.header_mut().next_seq = seq;
        let slot = self.open.slot;
        self.reset_open(slot, seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;
    use crate::ring::Limits;

    fn push(ring: &mut Ring, n: usize) -> u64 {
        let mut last = 0;
        for i in 0..n {
            last = ring
                .push(&Record::internal(
                    1,
                    crate::record::Severity::Info,
                    format!("entry {i}"),
                ))
                .unwrap();
        }
        last
    }

    fn mark_in(dir: &tempfile::TempDir) -> SeqMark {
        SeqMark::beside(&dir.path().join("ring.snapshot"))
    }

    #[test]
    fn numbers_given_stay_below_the_mark_on_disk_and_a_new_ring_starts_above() {
        let dir = tempfile::tempdir().unwrap();
        let owners = crate::private_file::owners(None);
        let mut ring = Ring::new(Limits::default());
        assert_eq!(ring.keep_seq_mark(mark_in(&dir), true, &owners), None);
        ring.arm_seq_mark();
        let last = push(&mut ring, 2500);
        let (on_disk, _) = mark_in(&dir).read(&owners).unwrap();
        assert!(on_disk.unwrap() > last, "{on_disk:?} <= {last}");
        // A crash: the next ring starts empty, above every number given.
        let mut next = Ring::new(Limits::default());
        next.keep_seq_mark(mark_in(&dir), true, &owners);
        assert_eq!(next.next_seq(), on_disk.unwrap());
        let first = push(&mut next, 1);
        assert!(first > last);
        assert_eq!(next.iter_from(0).next().unwrap().seq, first);
    }

    #[test]
    fn a_settled_mark_is_the_exact_next_number() {
        let dir = tempfile::tempdir().unwrap();
        let owners = crate::private_file::owners(None);
        let mut ring = Ring::new(Limits::default());
        ring.keep_seq_mark(mark_in(&dir), true, &owners);
        ring.arm_seq_mark();
        let last = push(&mut ring, 10);
        ring.settle_seq_mark().unwrap();
        let (on_disk, _) = mark_in(&dir).read(&owners).unwrap();
        assert_eq!(on_disk, Some(last + 1));
        // Not skipped for a ring taken over from a memfd.
        let mut adopted = Ring::new(Limits::default());
        adopted.keep_seq_mark(mark_in(&dir), false, &owners);
        assert_eq!(adopted.next_seq(), 0);
    }

    #[test]
    fn a_mark_that_cannot_be_written_is_news_and_ingest_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let owners = crate::private_file::owners(None);
        let gone = SeqMark::beside(&dir.path().join("missing-dir").join("ring.snapshot"));
        let mut ring = Ring::new(Limits::default());
        ring.keep_seq_mark(gone, true, &owners);
        ring.arm_seq_mark();
        let news = ring.seq_mark_news();
        assert!(
            matches!(&news, Some(SeqMarkNews::Failed(m)) if m.contains("may be given again")),
            "{news:?}"
        );
        push(&mut ring, 3000);
        assert_eq!(ring.seq_mark_news(), None, "said once");
        assert_eq!(ring.len(), 3000);
    }

    #[test]
    fn a_damaged_mark_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let owners = crate::private_file::owners(None);
        let mark = mark_in(&dir);
        std::fs::write(mark.path(), "garbage").unwrap();
        std::fs::set_permissions(
            mark.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let mut ring = Ring::new(Limits::default());
        let w = ring.keep_seq_mark(mark, true, &owners).unwrap();
        assert!(w.contains("does not hold a sequence number"), "{w}");
        assert_eq!(ring.next_seq(), 0);
    }
}
