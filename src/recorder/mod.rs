//! The capture directory (`--capture-dir`): each complete capture written
//! once to `capture-<boot>-<id>.jsonl.zst`, its entries as the JSON lines a
//! `--json` reader gets, compressed with zstd; the directory kept under
//! `--capture-dir-max` by removing the oldest capture files.
//!
//! The loop formats a budget of entries per turn ([`Recorder::tick`]), as a
//! reader's stream does, so a capture of many thousands of entries costs a
//! few short turns. Each turn's lines go to a writer thread ([`writer`]),
//! which compresses them as they come (only the compressed capture is ever
//! held), then writes the file (0600, a temporary name, fsync, rename, the
//! directory synced) and prunes the directory: neither zstd nor the disk
//! ever holds up ingest. One capture is in hand at a time, oldest first.
//! Once its file is in place the capture is marked written in the ring,
//! whose table lives in the memfd, so a successor after a re-exec does not
//! write it again.

mod writer;

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::ring::{ReadCache, Ring};
use crate::view::format::write_json_line;
use writer::{Done, Job, Msg, Writer};

/// Bytes of JSON lines formatted per turn, at most.
const FORMAT_BUDGET: usize = 256 << 10;
/// How often the loop looks for the writer's answer while a file is being
/// written.
const WRITE_POLL: Duration = Duration::from_millis(20);

/// What the capture directory saw, for stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WrittenCounters {
    /// Capture files written.
    pub files: u64,
    /// Their compressed bytes.
    pub bytes: u64,
    /// Captures that could not be written (the directory missing or not
    /// writable, the disk full, the capture released before it was).
    pub failed: u64,
    /// Old capture files removed to keep the directory under its bound.
    pub removed: u64,
}

/// A capture being formatted: its entries `next..=last` are still to come.
struct Formatting {
    id: u64,
    next: u64,
    last: u64,
    /// Bytes of lines sent to the writer so far.
    sent: u64,
    cache: ReadCache,
}

/// Writes complete captures to the capture directory.
pub struct Recorder {
    dir: PathBuf,
    /// Bytes the capture files may take together.
    dir_max: u64,
    /// This boot's id, in every file name: capture ids count from 1 again
    /// when the ring starts empty.
    boot: String,
    formatting: Option<Formatting>,
    /// The capture whose file the writer is writing.
    writing: Option<u64>,
    /// The newest capture taken in hand: a capture that could not be
    /// written is not tried again (captures complete in the order of
    /// their ids).
    tried: u64,
    writer: Option<Writer>,
    pub counters: WrittenCounters,
    /// A failure was logged and nothing succeeded since: further ones are
    /// only counted.
    failing: bool,
}

impl Recorder {
    /// A recorder for `dir`, bounded to `dir_max` bytes; `boot` names this
    /// boot in file names.
    pub fn new(dir: PathBuf, dir_max: usize, boot: String) -> Recorder {
        Recorder {
            dir,
            dir_max: dir_max as u64,
            boot,
            formatting: None,
            writing: None,
            tried: 0,
            writer: None,
            counters: WrittenCounters::default(),
            failing: false,
        }
    }

    /// The file capture `id` is written to.
    pub fn path_of(&self, id: u64) -> PathBuf {
        self.dir.join(format!(
            "{}{}-{id}{}",
            writer::PREFIX,
            self.boot,
            writer::SUFFIX
        ))
    }

    /// One turn: take the writer's answer, then format the next budget of
    /// entries of the oldest complete capture not yet written. Returns what
    /// went wrong, for the log; each failure is counted.
    pub fn tick(&mut self, ring: &mut Ring) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(done) = self.writer.as_mut().and_then(Writer::answer) {
            self.writing = None;
            self.settle(ring, done, &mut problems);
        }
        if self.writing.is_some() {
            return problems;
        }
        if self.formatting.is_none() {
            self.formatting = next_to_write(ring, self.tried);
            if let Some(f) = &self.formatting {
                self.tried = f.id;
            }
        }
        let Some(f) = &mut self.formatting else {
            return problems;
        };
        let id = f.id;
        if ring.capture(id).is_none() {
            self.formatting = None;
            if let Some(w) = &mut self.writer {
                // Nothing more of it comes: the writer forgets what it has.
                let _ = w.send(Msg::Abort { id });
            }
            self.fail(
                format!("capture {id} was released before it was written to the capture directory"),
                &mut problems,
            );
            return problems;
        }
        let (lines, complete) = format_some(f, ring);
        f.sent += lines.len() as u64;
        if let Err(e) = self.send(Msg::Lines { id, lines }) {
            self.formatting = None;
            self.fail(e, &mut problems);
            return problems;
        }
        if complete {
            self.formatting = None;
            let job = Job {
                id,
                path: self.path_of(id),
                dir: self.dir.clone(),
                dir_max: self.dir_max,
            };
            match self.send(Msg::Finish(job)) {
                Ok(()) => self.writing = Some(id),
                Err(e) => self.fail(e, &mut problems),
            }
        }
        problems
    }

    /// When the loop must call again without an event: at once while a
    /// capture is being formatted, soon while its file is being written.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.formatting.is_some() {
            Some(Instant::now())
        } else if self.writing.is_some() {
            Some(Instant::now() + WRITE_POLL)
        } else {
            None
        }
    }

    /// Wait for the file being written, so the capture is marked before the
    /// daemon hands the ring over or stops.
    pub fn finish(&mut self, ring: &mut Ring) -> Vec<String> {
        let mut problems = Vec::new();
        if let (Some(_), Some(w)) = (self.writing.take(), self.writer.as_mut()) {
            if let Some(done) = w.wait() {
                self.settle(ring, done, &mut problems);
            }
        }
        problems
    }

    /// Send `msg` to the writer thread, started on first use.
    fn send(&mut self, msg: Msg) -> Result<(), String> {
        if self.writer.is_none() {
            let w = Writer::start().map_err(|e| format!("cannot start the capture writer: {e}"))?;
            self.writer = Some(w);
        }
        let sent = self.writer.as_mut().expect("started").send(msg);
        if sent.is_err() {
            // Stopped (it panicked): a new one is started for the next.
            self.writer = None;
        }
        sent
    }

    /// Account for what the writer did.
    fn settle(&mut self, ring: &mut Ring, done: Done, problems: &mut Vec<String>) {
        self.counters.removed += done.removed;
        if let Some(e) = done.prune_error {
            problems.push(e);
        }
        match done.written {
            Ok(bytes) => {
                ring.set_capture_written(done.id);
                self.counters.files += 1;
                self.counters.bytes += bytes;
                self.failing = false;
            }
            Err(e) => self.fail(e, problems),
        }
    }

    /// Count a capture not written; log the first of a run of failures.
    fn fail(&mut self, why: String, problems: &mut Vec<String>) {
        self.counters.failed += 1;
        if !self.failing {
            self.failing = true;
            problems.push(format!(
                "{why} (further failures are counted in the stats, captures_written.failed, \
                 until a capture is written)"
            ));
        }
    }
}

/// The oldest complete capture not yet written nor tried, to format.
fn next_to_write(ring: &Ring, tried: u64) -> Option<Formatting> {
    let c = ring
        .captures()
        .into_iter()
        .find(|c| c.id > tried && c.is_complete() && !c.is_written())?;
    Some(Formatting {
        id: c.id,
        next: c.first_seq,
        last: c.last_seq,
        sent: 0,
        cache: ReadCache::new(),
    })
}

/// Format entries of `f` up to the turn's budget: the lines, and whether
/// they are the last.
fn format_some(f: &mut Formatting, ring: &Ring) -> (Vec<u8>, bool) {
    let Formatting {
        next, last, cache, ..
    } = f;
    let mut lines = Vec::new();
    let mut more = false;
    ring.scan_from(*next, cache, |r| {
        if r.seq > *last {
            return ControlFlow::Break(());
        }
        write_json_line(&r, &mut lines);
        *next = r.seq + 1;
        if lines.len() >= FORMAT_BUDGET && *next <= *last {
            more = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    (lines, !more)
}

#[cfg(test)]
mod tests;
