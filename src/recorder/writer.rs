//! The capture writer thread: compresses a capture's JSON lines with zstd
//! as the loop sends them, writes the result atomically to its file (0600,
//! fsync, rename, directory fsync) and then removes the oldest capture
//! files while the directory holds more than its bound. Only names `capture-*.jsonl.zst` that are
//! regular files are ever counted or removed; anything else in the
//! directory is not ours.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use crate::private_file;

/// Capture files are named `PREFIX BOOT-ID SUFFIX`.
pub const PREFIX: &str = "capture-";
pub const SUFFIX: &str = ".jsonl.zst";
/// zstd's default level: fast, and far smaller than the text.
const LEVEL: i32 = 3;

/// Where a capture goes, once all its lines were sent.
pub struct Job {
    pub id: u64,
    pub path: PathBuf,
    pub dir: PathBuf,
    pub dir_max: u64,
}

/// What the loop sends the writer.
pub enum Msg {
    /// The next lines of capture `id` (the first ones start it).
    Lines { id: u64, lines: Vec<u8> },
    /// All lines were sent: write the file.
    Finish(Job),
    /// Forget capture `id`: it will not be written.
    Abort { id: u64 },
}

/// A capture being compressed: what is compressed so far, or why it could
/// not be.
struct Compressing {
    id: u64,
    zstd: Result<zstd::stream::write::Encoder<'static, Vec<u8>>, String>,
}

impl Compressing {
    fn new(id: u64) -> Compressing {
        Compressing {
            id,
            zstd: zstd::stream::write::Encoder::new(Vec::new(), LEVEL)
                .map_err(|e| format!("cannot compress capture {id}: {e}")),
        }
    }

    fn add(&mut self, lines: &[u8]) {
        if let Ok(z) = &mut self.zstd {
            if let Err(e) = z.write_all(lines) {
                self.zstd = Err(format!("cannot compress capture {}: {e}", self.id));
            }
        }
    }

    fn finish(self) -> Result<Vec<u8>, String> {
        let id = self.id;
        self.zstd?
            .finish()
            .map_err(|e| format!("cannot compress capture {id}: {e}"))
    }
}

/// What the writer did with a job.
pub struct Done {
    pub id: u64,
    /// The file's bytes, or why it was not written.
    pub written: Result<u64, String>,
    /// Old capture files removed for the bound.
    pub removed: u64,
    pub prune_error: Option<String>,
}

/// The thread and its two channels.
pub struct Writer {
    jobs: Option<Sender<Msg>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub fn start() -> std::io::Result<Writer> {
        let (jobs, jobs_rx) = mpsc::channel::<Msg>();
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("capture-writer".into())
            .spawn(move || {
                let mut current: Option<Compressing> = None;
                for msg in jobs_rx {
                    match msg {
                        Msg::Lines { id, lines } => {
                            if current.as_ref().is_none_or(|c| c.id != id) {
                                current = Some(Compressing::new(id));
                            }
                            current.as_mut().expect("started").add(&lines);
                        }
                        Msg::Abort { id } => {
                            current.take_if(|c| c.id == id);
                        }
                        Msg::Finish(job) => {
                            let c = current
                                .take()
                                .filter(|c| c.id == job.id)
                                .unwrap_or_else(|| Compressing::new(job.id));
                            if done_tx.send(write(job, c)).is_err() {
                                return;
                            }
                        }
                    }
                }
            })?;
        Ok(Writer {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        })
    }

    pub fn send(&mut self, msg: Msg) -> Result<(), String> {
        let sent = self.jobs.as_ref().map(|j| j.send(msg));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err("the capture writer thread has stopped".into()),
        }
    }

    /// The answer to the job sent, if it is ready.
    pub fn answer(&mut self) -> Option<Done> {
        self.done.try_recv().ok()
    }

    /// The answer to the job sent, waiting for it.
    pub fn wait(&mut self) -> Option<Done> {
        self.done.recv().ok()
    }
}

impl Drop for Writer {
    /// Let the thread finish the file in hand: a file is whole or absent.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Finish compressing, write, prune.
fn write(job: Job, compressed: Compressing) -> Done {
    let written = compressed.finish().and_then(|z| {
        private_file::write_atomic(&job.path, &z, 0o600)
            .map(|_| z.len() as u64)
            .map_err(|e| format!("capture {}: {e}", job.id))
    });
    let (removed, prune_error) = match &written {
        Ok(_) => prune(&job.dir, job.dir_max, &job.path),
        Err(_) => (0, None),
    };
    Done {
        id: job.id,
        written,
        removed,
        prune_error,
    }
}

/// A capture file in the directory.
struct Held {
    mtime: (i64, i64),
    name: String,
    size: u64,
}

/// Remove the oldest capture files while they take more than `max` bytes;
/// `keep`, the one just written, always stays. Returns how many went, and
/// the first error.
fn prune(dir: &Path, max: u64, keep: &Path) -> (u64, Option<String>) {
    let mut held = match capture_files(dir) {
        Ok(h) => h,
        Err(e) => return (0, Some(e)),
    };
    held.sort_by(|a, b| (a.mtime, &a.name).cmp(&(b.mtime, &b.name)));
    let mut total: u64 = held.iter().map(|h| h.size).sum();
    let keep = keep.file_name().map(|n| n.to_string_lossy().into_owned());
    let (mut removed, mut error) = (0, None);
    for h in held {
        if total <= max {
            break;
        }
        if Some(&h.name) == keep.as_ref() {
            continue;
        }
        match fs::remove_file(dir.join(&h.name)) {
            Ok(()) => {
                total -= h.size;
                removed += 1;
            }
            Err(e) => {
                error.get_or_insert(format!(
                    "cannot remove the old capture file {}: {e}",
                    dir.join(&h.name).display()
                ));
            }
        }
    }
    (removed, error)
}

/// The regular files named `capture-*.jsonl.zst` in `dir`.
fn capture_files(dir: &Path) -> Result<Vec<Held>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut held = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_capture_name(&name) {
            continue;
        }
        // `DirEntry::metadata` does not follow a symlink.
        if let Ok(m) = entry.metadata() {
            if m.is_file() {
                held.push(Held {
                    mtime: (m.mtime(), m.mtime_nsec()),
                    name,
                    size: m.len(),
                });
            }
        }
    }
    Ok(held)
}

/// `capture-SOMETHING.jsonl.zst`.
pub fn is_capture_name(name: &str) -> bool {
    name.len() > PREFIX.len() + SUFFIX.len() && name.starts_with(PREFIX) && name.ends_with(SUFFIX)
}
