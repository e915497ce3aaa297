//! A thread that compresses sealed chunks, so that the loop that stores
//! entries never waits for zstd.
//!
//! The ring hands over a copy of a chunk's raw frames; the chunk stays
//! readable, raw, in its slot meanwhile. The result comes back tagged with
//! the slot and generation it was made from: if the ring rewrote or evicted
//! that chunk in the meantime, the result no longer matches and is dropped.

use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};

use super::store::PAGE;

/// A chunk to compress: the slot and generation it came from, its frames.
pub struct Job {
    pub key: (u32, u64),
    pub raw: Vec<u8>,
}

/// A compressed chunk, or `None` when compressing saved no page.
pub struct Done {
    pub key: (u32, u64),
    pub raw: Vec<u8>,
    pub packed: Option<Vec<u8>>,
}

pub struct Compressor {
    /// `None` only while dropping: closing it ends the thread.
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Jobs sent whose result has not been taken.
    pub pending: usize,
}

impl Compressor {
    /// Start the thread; `None` if the system refuses one (the ring then
    /// compresses in line).
    pub fn start() -> Option<Compressor> {
        let (jobs, job_rx) = channel::<Job>();
        let (done_tx, done) = channel::<Done>();
        let thread = std::thread::Builder::new()
            .name("ring-zstd".into())
            .spawn(move || {
                let Ok(mut cctx) = zstd::bulk::Compressor::new(1) else {
                    return;
                };
                let mut spare: Vec<u8> = Vec::new();
                while let Ok(job) = job_rx.recv() {
                    let packed = compress(&mut cctx, &job.raw, std::mem::take(&mut spare));
                    if done_tx
                        .send(Done {
                            key: job.key,
                            raw: job.raw,
                            packed,
                        })
                        .is_err()
                    {
                        return;
                    }
                    spare = Vec::new();
                }
            })
            .ok()?;
        Some(Compressor {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            pending: 0,
        })
    }

    /// Queue a chunk. False if the thread is gone (compress in line then).
    pub fn send(&mut self, job: Job) -> Result<(), Job> {
        let Some(jobs) = &self.jobs else {
            return Err(job);
        };
        match jobs.send(job) {
            Ok(()) => {
                self.pending += 1;
                Ok(())
            }
            Err(e) => Err(e.0),
        }
    }

    /// A finished job, if any; waits for one when `wait` and one is due.
    pub fn take(&mut self, wait: bool) -> Option<Done> {
        if self.pending == 0 {
            return None;
        }
        let r = if wait {
            self.done.recv().ok()
        } else {
            match self.done.try_recv() {
                Ok(d) => Some(d),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => {
                    self.pending = 0;
                    None
                }
            }
        };
        if r.is_some() {
            self.pending -= 1;
        } else if wait {
            self.pending = 0;
        }
        r
    }
}

impl Drop for Compressor {
    /// The thread ends with the ring: it finishes the job at hand, sees the
    /// queue closed, and is joined, so no thread outlives its ring.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// zstd level 1 of `raw`, if it saves at least a page.
pub fn compress(
    cctx: &mut zstd::bulk::Compressor<'static>,
    raw: &[u8],
    mut out: Vec<u8>,
) -> Option<Vec<u8>> {
    let room = raw.len().checked_sub(PAGE)?;
    out.clear();
    out.reserve(room);
    match cctx.compress_to_buffer(raw, &mut out) {
        Ok(n) if n <= room => Some(out),
        _ => None,
    }
}
