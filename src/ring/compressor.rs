//! A thread that compresses sealed chunks, so that the loop that stores
//! entries never waits for zstd.
//!
//! The ring hands over a copy of a chunk's raw frames; the chunk stays
//! readable, raw, in its slot meanwhile. The result comes back tagged with
//! the slot and generation it was made from: if the ring rewrote or evicted
//! that chunk in the meantime, the result no longer matches and is dropped.
//!
//! The thread also learns the dictionaries chunks are compressed with
//! ([`super::dict`]): a dictionary it trains rides back with a result, and
//! it uses one only once the ring, having kept it, sends it back.

use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};

use super::dict::{self, Active, Trainer};
use super::store::PAGE;

/// A chunk to compress: the slot and generation it came from, its frames.
pub struct Job {
    pub key: (u32, u64),
    pub raw: Vec<u8>,
}

/// What the ring sends the thread: a chunk, or the dictionary to use from
/// now on (its id and bytes).
enum Msg {
    Chunk(Job),
    Dict(u32, Vec<u8>),
}

/// A compressed chunk, or `None` when compressing saved no page.
pub struct Done {
    pub key: (u32, u64),
    pub raw: Vec<u8>,
    pub packed: Option<Vec<u8>>,
    /// The dictionary `packed` was compressed with (0: none).
    pub dict: u32,
    /// A dictionary trained after this chunk, offered to the ring.
    pub trained: Option<Vec<u8>>,
}

pub struct Compressor {
    /// `None` only while dropping: closing it ends the thread.
    jobs: Option<Sender<Msg>>,
    done: Receiver<Done>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Jobs sent whose result has not been taken.
    pub pending: usize,
}

impl Compressor {
    /// Start the thread, training dictionaries of `dict_size` bytes (0:
    /// none); `None` if the system refuses one (the ring then compresses
    /// in line).
    pub fn start(dict_size: usize) -> Option<Compressor> {
        let (jobs, job_rx) = channel::<Msg>();
        let (done_tx, done) = channel::<Done>();
        let thread = std::thread::Builder::new()
            .name("ring-zstd".into())
            .spawn(move || {
                let Ok(mut cctx) = zstd::bulk::Compressor::new(dict::LEVEL) else {
                    return;
                };
                let mut active: Option<Active> = None;
                let mut trainer = Trainer::new(dict_size);
                while let Ok(msg) = job_rx.recv() {
                    let job = match msg {
                        Msg::Dict(id, bytes) => {
                            active = Active::new(id, &bytes);
                            trainer.installed();
                            continue;
                        }
                        Msg::Chunk(job) => job,
                    };
                    let packed = compress(&mut cctx, active.as_ref(), &job.raw, Vec::new());
                    let size = packed.as_ref().map_or(job.raw.len(), Vec::len);
                    trainer.observe(&job.raw, size);

                    let trained = if trainer.due(active.is_some()) {
                        trainer.train().filter(|bytes| {
                            let candidate = Active::new(0, bytes);
                            let with =
                                compress(&mut cctx, candidate.as_ref(), &job.raw, Vec::new());
                            candidate.is_some()
                                && with.is_some_and(|w| Trainer::worth(size, w.len()))
                        })
                    } else {
                        None
                    };
                    let dict = match (&packed, &active) {
                        (Some(_), Some(a)) => a.id,
                        _ => 0,
                    };
                    let done = Done {
                        key: job.key,
                        raw: job.raw,
                        packed,
                        dict,
                        trained,
                    };
                    if done_tx.send(done).is_err() {
                        return;
                    }
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

    /// Compress the chunks sent from now on with dictionary `id`.
    pub fn use_dict(&mut self, id: u32, bytes: Vec<u8>) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Msg::Dict(id, bytes));
        }
    }

    /// Queue a chunk. False if the thread is gone (compress in line then).
    pub fn send(&mut self, job: Job) -> Result<(), Job> {
        let Some(jobs) = &self.jobs else {
            return Err(job);
        };
        match jobs.send(Msg::Chunk(job)) {
            Ok(()) => {
                self.pending += 1;
                Ok(())
            }
            Err(e) => match e.0 {
                Msg::Chunk(job) => Err(job),
                Msg::Dict(..) => unreachable!("a chunk was sent"),
            },
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

/// `raw` compressed at [`dict::LEVEL`], with `dict` if given, if that
/// saves at least a page.
pub fn compress(
    cctx: &mut zstd::bulk::Compressor<'static>,
    dict: Option<&Active>,
    raw: &[u8],
    mut out: Vec<u8>,
) -> Option<Vec<u8>> {
    let room = raw.len().checked_sub(PAGE)?;
    out.clear();
    out.reserve(room);
    let n = match dict {
        Some(d) => cctx
            .context_mut()
            .compress_using_cdict(&mut out, raw, &d.cdict)
            .ok(),
        None => cctx.compress_to_buffer(raw, &mut out).ok(),
    };
    match n {
        Some(n) if n <= room => Some(out),
        _ => None,
    }
}
