//! `/dev/kmsg`: the kernel's log in the same ring as everything else, from
//! the oldest record the kernel still holds; or a file of saved records,
//! replayed once at start (tests, post-mortems).
//!
//! The device is opened read-only: the daemon never writes to the kernel's
//! log, so its own messages can never come back to it in a loop. Each open
//! file of `/dev/kmsg` has its own position, starting at the oldest record
//! held, so reading it takes nothing away from `dmesg` or anyone else.
//!
//! What the device can say, and what is done about it:
//! - a record per `read()`, with a buffer of at least 8 KiB (the kernel's
//!   longest record is 8 KiB with its KEY=value lines);
//! - `EAGAIN`: nothing more for now (the fd is non-blocking);
//! - `EPIPE`: the kernel overwrote records this reader had not read yet and
//!   moved the position to the oldest one left; the gap in the sequence
//!   numbers says how many were lost, which is recorded and counted;
//! - `EINVAL`: a record longer than the buffer; the kernel skips it, the
//!   buffer is grown for the next one and the skipped record is counted lost.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::time::{clock_gettime, ClockId};

use super::Drain;
use crate::ingest;
use crate::parse::kmsg::{KmsgParser, SeqTracker};
use crate::record::{now_ns, Input, Severity};
use crate::ring::{ResumeCookie, Ring};

/// Where a restarted daemon goes on reading the kernel log: the boot it
/// read and the next kernel sequence number it had not stored. The ring
/// keeps it as an opaque cookie: the sequence number (native byte order),
/// then the boot id, NUL-padded.
#[derive(Clone, Debug, PartialEq, Eq)]
struct KmsgResume {
    /// `/proc/sys/kernel/random/boot_id` of the boot the records came from.
    boot_id: String,
    next_seq: u64,
}

impl KmsgResume {
    fn cookie(&self) -> ResumeCookie {
        let mut c = [0; 56];
        c[..8].copy_from_slice(&self.next_seq.to_ne_bytes());
        let id = self.boot_id.as_bytes();
        let n = id.len().min(c.len() - 8);
        c[8..8 + n].copy_from_slice(&id[..n]);
        c
    }

    fn from_cookie(c: &ResumeCookie) -> KmsgResume {
        let mut seq = [0; 8];
        seq.copy_from_slice(&c[..8]);
        let id = &c[8..];
        let n = id.iter().position(|&b| b == 0).unwrap_or(id.len());
        KmsgResume {
            boot_id: String::from_utf8_lossy(&id[..n]).into_owned(),
            next_seq: u64::from_ne_bytes(seq),
        }
    }
}

/// Read buffer for the device: twice the kernel's longest record.
const READ_BUFFER: usize = 16 << 10;
/// The buffer never grows past this on `EINVAL`.
const MAX_READ_BUFFER: usize = 1 << 20;
/// Longest line kept from a replayed file; the rest of it is skipped and the
/// record flagged truncated.
const MAX_FILE_LINE: usize = 64 << 10;

/// Where records come from.
enum Reader {
    /// The kernel's log device: one record per `read()`, readiness from poll.
    Device(File),
    /// A file of records, one per line, continuation lines starting with a
    /// space; read once, from the start.
    Replay(BufReader<File>),
    /// Nothing more to read: the file ended, or the device failed.
    Done,
    /// Canned `read()` results, for tests of the error handling.
    #[cfg(test)]
    Script(std::collections::VecDeque<Result<Vec<u8>, Errno>>),
}

/// Why the next gap in the sequence numbers happened, if the reader knows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cause {
    /// Nothing said why: records missing from a file.
    Unknown,
    /// `EPIPE`: the kernel overwrote them before they were read.
    Overwritten,
    /// `EINVAL`: a record did not fit the read buffer.
    TooLong(usize),
}

/// The kernel's log (or a saved copy of it) as an input.
pub struct KmsgSource {
    path: PathBuf,
    reader: Reader,
    /// Reading the live log of this boot, not a saved file.
    live: bool,
    parser: KmsgParser,
    seq: SeqTracker,
    buf: Vec<u8>,
    /// Set by an error that loses records; read at the next record.
    cause: Cause,
    /// Records taken from a replayed file, for the closing note.
    replayed: u64,
    /// What the kernel sequence numbers read here belong to: this boot's
    /// id for the device, the file for a replayed one. `None` when the
    /// boot id cannot be read: nothing is resumed then.
    origin: Option<String>,
    /// Records numbered below this are in the ring already (a predecessor
    /// stored them): read and dropped.
    skip_below: Option<u64>,
    /// Records dropped for that, for the closing note.
    skipped: u64,
    /// The resume point last given to the ring.
    noted: Option<u64>,
}

impl KmsgSource {
    /// Open `path`: a character device is read as `/dev/kmsg`, a regular
    /// file replayed. The error is one line saying what is wrong and that
    /// kernel messages will not be collected; the daemon runs on without
    /// them (a container has no `/dev/kmsg`).
    pub fn open(path: &Path, parser: KmsgParser) -> Result<KmsgSource, String> {
        let not_collected = |why: String| {
            format!(
                "{}: {why}; kernel messages will not be collected",
                path.display()
            )
        };
        let meta = std::fs::metadata(path).map_err(|e| not_collected(e.to_string()))?;
        let kind = meta.file_type();
        let reader = if kind.is_char_device() {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(path)
                .map_err(|e| not_collected(open_hint(&e)))?;
            Reader::Device(f)
        } else if kind.is_file() {
            let f = File::open(path).map_err(|e| not_collected(open_hint(&e)))?;
            Reader::Replay(BufReader::with_capacity(64 << 10, f))
        } else {
            return Err(not_collected(
                "neither a character device nor a regular file".into(),
            ));
        };
        Ok(KmsgSource::with_reader(path, reader, parser))
    }

    /// Go on reading the kernel log device a predecessor had open (`file`,
    /// inherited on re-exec): its position is where the predecessor
    /// stopped.
    pub fn inherited(path: &Path, file: File, parser: KmsgParser) -> KmsgSource {
        KmsgSource::with_reader(path, Reader::Device(file), parser)
    }

    fn with_reader(path: &Path, reader: Reader, parser: KmsgParser) -> KmsgSource {
        let live = matches!(reader, Reader::Device(_));
        let origin = if live {
            crate::handover::boot_id()
        } else {
            Some(format!("file:{}", path.display()))
        };
        KmsgSource {
            path: path.to_owned(),
            live,
            reader,
            parser,
            seq: SeqTracker::default(),
            buf: vec![0; READ_BUFFER],
            cause: Cause::Unknown,
            replayed: 0,
            origin,
            skip_below: None,
            skipped: 0,
            noted: None,
        }
    }

    /// Go on from where a predecessor left the kernel log (the ring keeps
    /// it): records of the same boot (or file) numbered below its
    /// `next_seq` are in the ring already and are skipped; a gap after it
    /// is a loss, reported as any other. Another boot's point is ignored:
    /// its numbers mean nothing in this one.
    pub fn resume(&mut self, from: Option<&ResumeCookie>) {
        let Some(r) = from.map(KmsgResume::from_cookie) else {
            return;
        };
        if self.origin.as_deref() != Some(r.boot_id.as_str()) {
            return;
        }
        self.skip_below = Some(r.next_seq);
        if let Some(last) = r.next_seq.checked_sub(1) {
            self.seq.observe(last);
        }
        self.noted = Some(r.next_seq);
    }

    /// The boot whose kernel log a predecessor had read, from the point it
    /// left (`from`); none for a replayed file's.
    pub fn boot_read(from: &ResumeCookie) -> Option<String> {
        let r = KmsgResume::from_cookie(from);
        (!r.boot_id.is_empty() && !r.boot_id.starts_with("file:")).then_some(r.boot_id)
    }

    /// The fd to watch for readiness: the device's. A regular file is
    /// always readable and cannot be polled, so it has none.
    pub fn poll_fd(&self) -> Option<RawFd> {
        match &self.reader {
            Reader::Device(f) => Some(f.as_raw_fd()),
            _ => None,
        }
    }

    /// Nothing more will ever be read: the daemon may drop this source.
    pub fn is_done(&self) -> bool {
        matches!(self.reader, Reader::Done)
    }

    /// Read and store up to `budget` records.
    pub fn drain(&mut self, ring: &mut Ring, budget: usize) -> Drain {
        // Once per turn, not per record: cheap, and it still follows a clock
        // stepped between turns (NTP at boot). A saved file's records may
        // come from another boot, where this boot's time would make every
        // timestamp wrong.
        let boot_ns = if self.live { boot_time_ns() } else { None };
        for _ in 0..budget {
            match self.next_record(ring) {
                Next::Record { len, cut } => self.store(ring, len, cut, boot_ns),
                Next::Idle => {
                    self.note_resume(ring);
                    return Drain::Idle;
                }
            }
        }
        self.note_resume(ring);
        Drain::More
    }

    /// Tell the ring how far the log has been read, so a successor skips it.
    fn note_resume(&mut self, ring: &mut Ring) {
        let (Some(origin), Some(next)) = (&self.origin, self.seq.expected()) else {
            return;
        };
        if self.noted != Some(next) {
            ring.set_resume_cookie(
                KmsgResume {
                    boot_id: origin.clone(),
                    next_seq: next,
                }
                .cookie(),
            );
            self.noted = Some(next);
        }
    }

    fn store(&mut self, ring: &mut Ring, len: usize, cut: bool, boot_ns: Option<i64>) {
        let parsed = self.parser.parse(&self.buf[..len], now_ns(), boot_ns);
        let mut record = parsed.record;
        record.truncated |= cut;
        if let (Some(k), Some(below)) = (record.kernel, self.skip_below) {
            if k.seq < below {
                // A predecessor stored it: not counted again either.
                self.skipped += 1;
                return;
            }
            self.skip_below = None;
        }
        if let Some(k) = record.kernel {
            let first = self.seq.expected().is_none();
            if let Some(lost) = self.seq.observe(k.seq) {
                self.report_gap(ring, lost);
            } else if first && k.seq > 0 && self.live {
                ingest::note(
                    ring,
                    Severity::Info,
                    format!(
                        "kernel log starts at sequence number {}: the kernel had already overwritten the {} records before it",
                        k.seq, k.seq
                    ),
                );
            }
            // The cause is told with the gap it explains, if any: the next
            // numbered record is where that gap shows.
            self.cause = Cause::Unknown;
        }
        ingest::store(ring, &record.as_ref(), parsed.malformed);
    }

    /// One `internal` entry for records the kernel numbered but this reader
    /// never got, counted as received and dropped for `kmsg` so that the
    /// ledger's received = stored + dropped holds for what the kernel sent.
    fn report_gap(&mut self, ring: &mut Ring, lost: Range<u64>) {
        let n = lost.end - lost.start;
        let why = match self.cause {
            Cause::Overwritten => {
                "the kernel overwrote them before ringlogd could read them".to_owned()
            }
            Cause::TooLong(size) => {
                format!("a record longer than the {size}-byte read buffer was skipped")
            }
            Cause::Unknown => format!("missing from {}", self.path.display()),
        };
        ingest::lost(ring, Input::Kmsg, n);
        let numbers = if n == 1 {
            format!("sequence number {}", lost.start)
        } else {
            format!("sequence numbers {} to {}", lost.start, lost.end - 1)
        };
        ingest::note(
            ring,
            Severity::Warning,
            format!(
                "{n} kernel message{} lost ({numbers}): {why}",
                if n == 1 { " was" } else { "s were" }
            ),
        );
    }

    /// Put the next record into `self.buf`.
    fn next_record(&mut self, ring: &mut Ring) -> Next {
        loop {
            let got = match &mut self.reader {
                Reader::Done => return Next::Idle,
                Reader::Device(f) => nix::unistd::read(&*f, &mut self.buf),
                Reader::Replay(_) => return self.next_file_record(ring),
                #[cfg(test)]
                Reader::Script(s) => match s.pop_front() {
                    None => Err(Errno::EAGAIN),
                    Some(Ok(b)) => {
                        self.buf[..b.len()].copy_from_slice(&b);
                        Ok(b.len())
                    }
                    Some(Err(e)) => Err(e),
                },
            };
            match got {
                Ok(0) => {
                    self.fail(ring, "end of file: not a kernel log device".into());
                    return Next::Idle;
                }
                Ok(len) => return Next::Record { len, cut: false },
                Err(Errno::EAGAIN) => return Next::Idle,
                Err(Errno::EINTR) => continue,
                Err(Errno::EPIPE) => {
                    // The position moved to the oldest record left; the next
                    // one's number tells how many went.
                    self.cause = Cause::Overwritten;
                    continue;
                }
                Err(Errno::EINVAL) if self.buf.len() < MAX_READ_BUFFER => {
                    // The kernel has already stepped past the record.
                    self.cause = Cause::TooLong(self.buf.len());
                    let bigger = (self.buf.len() * 2).min(MAX_READ_BUFFER);
                    self.buf.resize(bigger, 0);
                    continue;
                }
                Err(e) => {
                    self.fail(ring, format!("read failed: {e}"));
                    return Next::Idle;
                }
            }
        }
    }

    /// The next record of a replayed file: a line, and the lines after it
    /// that start with a space. Blank lines between records are skipped.
    fn next_file_record(&mut self, ring: &mut Ring) -> Next {
        let Reader::Replay(r) = &mut self.reader else {
            return Next::Idle;
        };
        self.buf.clear();
        match read_file_record(r, &mut self.buf) {
            Ok(Some(cut)) => {
                self.replayed += 1;
                Next::Record {
                    len: self.buf.len(),
                    cut,
                }
            }
            Ok(None) => {
                let already = if self.skipped > 0 {
                    format!(" ({} of them were in the ring already)", self.skipped)
                } else {
                    String::new()
                };
                ingest::note(
                    ring,
                    Severity::Info,
                    format!(
                        "replayed {} kernel records from {}{already}",
                        self.replayed,
                        self.path.display()
                    ),
                );
                self.reader = Reader::Done;
                Next::Idle
            }
            Err(e) => {
                self.fail(ring, format!("read failed: {e}"));
                Next::Idle
            }
        }
    }

    /// Stop reading for good, saying why in the ring and on stderr.
    fn fail(&mut self, ring: &mut Ring, why: String) {
        let msg = format!(
            "{}: {why}; kernel messages are no longer collected",
            self.path.display()
        );
        eprintln!("ringlogd: {msg}");
        ingest::note(ring, Severity::Err, msg);
        self.reader = Reader::Done;
    }
}

enum Next {
    /// A record is in the buffer: `len` bytes, `cut` if a line was too long.
    Record { len: usize, cut: bool },
    /// Nothing more now (or ever, once the reader is done).
    Idle,
}

/// Read one record (a line and its continuation lines) from `r` into `out`.
/// `Ok(None)` at the end of the file; `Ok(Some(cut))` otherwise, `cut` when
/// a line was longer than [`MAX_FILE_LINE`] and its end skipped.
fn read_file_record(r: &mut impl BufRead, out: &mut Vec<u8>) -> io::Result<Option<bool>> {
    let mut cut = false;
    loop {
        let start = out.len();
        match read_line_capped(r, out, MAX_FILE_LINE)? {
            None => return Ok(None),
            Some(c) => cut |= c,
        }
        if out[start..].iter().any(|&b| b != b'\n' && b != b'\r') {
            break;
        }
        out.truncate(start);
    }
    while r.fill_buf()?.first() == Some(&b' ') {
        if let Some(c) = read_line_capped(r, out, MAX_FILE_LINE)? {
            cut |= c;
        }
    }
    Ok(Some(cut))
}

/// Append one line (with its `\n`) to `out`, keeping at most `cap` bytes of
/// it and skipping the rest. `None` at the end of the input; else whether
/// the line was cut.
fn read_line_capped(
    r: &mut impl BufRead,
    out: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Option<bool>> {
    let (mut taken, mut cut, mut any) = (0usize, false, false);
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(any.then_some(cut));
        }
        any = true;
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let room = cap.saturating_sub(taken);
        let keep = chunk.len().min(room);
        out.extend_from_slice(&chunk[..keep]);
        if keep < chunk.len() {
            cut = true;
        }
        taken += keep;
        let n = chunk.len();
        r.consume(n);
        if done {
            return Ok(Some(cut));
        }
    }
}

/// A failed open, with what to do about it when that is clear.
fn open_hint(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(nix::libc::EPERM) | Some(nix::libc::EACCES) => format!(
            "{e} (reading the kernel log needs root or CAP_SYSLOG while kernel.dmesg_restrict is 1)"
        ),
        _ => e.to_string(),
    }
}

/// When this boot began, in nanoseconds since the Unix epoch, as the wall
/// clock sees it now: CLOCK_REALTIME minus CLOCK_MONOTONIC.
///
/// The kernel stamps each record with its scheduler clock (`local_clock()`
/// in kernel/printk), which counts from boot and, like CLOCK_MONOTONIC,
/// stands still while the machine is suspended. CLOCK_BOOTTIME goes on
/// during suspend, so a boot time taken from it would put every record
/// logged after a resume too early by the time spent asleep. On this kind of
/// machine a line written to /dev/kmsg carried a USEC within 2 ms of
/// CLOCK_MONOTONIC at the write.
fn boot_time_ns() -> Option<i64> {
    let real = clock_gettime(ClockId::CLOCK_REALTIME).ok()?;
    let mono = clock_gettime(ClockId::CLOCK_MONOTONIC).ok()?;
    // time_t and c_long are 32 bits on some embedded targets.
    #[allow(clippy::useless_conversion)]
    let ns = |t: nix::sys::time::TimeSpec| {
        i64::from(t.tv_sec())
            .checked_mul(1_000_000_000)?
            .checked_add(i64::from(t.tv_nsec()))
    };
    ns(real)?.checked_sub(ns(mono)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::Limits;

    fn scripted(reads: Vec<Result<&[u8], Errno>>) -> KmsgSource {
        KmsgSource {
            path: PathBuf::from("/dev/kmsg"),
            reader: Reader::Script(reads.into_iter().map(|r| r.map(<[u8]>::to_vec)).collect()),
            live: true,
            parser: KmsgParser::new("h", 8192),
            seq: SeqTracker::default(),
            buf: vec![0; READ_BUFFER],
            cause: Cause::Unknown,
            replayed: 0,
            origin: Some("boot-a".into()),
            skip_below: None,
            skipped: 0,
            noted: None,
        }
    }

    /// A source that reads `reads`, and an empty ring for it.
    fn with_ring(reads: Vec<Result<&[u8], Errno>>) -> (KmsgSource, Ring) {
        (scripted(reads), Ring::new(Limits::default()))
    }

    /// The same, with what `reads` gives drained into the ring in one turn.
    fn drained(reads: Vec<Result<&[u8], Errno>>) -> (KmsgSource, Ring, Drain) {
        let (mut s, mut ring) = with_ring(reads);
        let turn = s.drain(&mut ring, 100);
        (s, ring, turn)
    }

    fn msgs(ring: &Ring) -> Vec<String> {
        ring.iter_from(0).map(|r| r.msg.to_owned()).collect()
    }

    #[test]
    fn epipe_reports_the_gap_once_and_goes_on() {
        let (_, ring, turn) = drained(vec![
            Ok(b"6,0,1,-;first\n"),
            Ok(b"6,1,2,-;second\n"),
            Err(Errno::EPIPE),
            Ok(b"6,1018,3,-;after the wrap\n"),
            Ok(b"6,1019,4,-;next\n"),
        ]);
        assert_eq!(turn, Drain::Idle);
        assert_eq!(
            msgs(&ring),
            [
                "first",
                "second",
                "1016 kernel messages were lost (sequence numbers 2 to 1017): the kernel overwrote them before ringlogd could read them",
                "after the wrap",
                "next"
            ]
        );
        let gap = ring.get(2).unwrap();
        assert_eq!(gap.input, Input::Internal);
        assert_eq!(gap.severity, Some(Severity::Warning.code()));
        let c = ring.ledger.input(Input::Kmsg);
        assert_eq!((c.received, c.stored, c.dropped), (4 + 1016, 4, 1016));
    }

    #[test]
    fn einval_grows_the_buffer_and_counts_the_skipped_record() {
        let (s, ring, _) = drained(vec![
            Ok(b"6,0,1,-;a\n"),
            Err(Errno::EINVAL),
            Ok(b"6,2,2,-;b\n"),
        ]);
        assert_eq!(s.buf.len(), 2 * READ_BUFFER);
        assert_eq!(
            msgs(&ring)[1],
            "1 kernel message was lost (sequence number 1): a record longer than the 16384-byte read buffer was skipped"
        );
        assert_eq!(ring.ledger.input(Input::Kmsg).dropped, 1);
        assert!(!s.is_done());
    }

    #[test]
    fn eintr_is_retried_and_eagain_waits() {
        let (s, ring, turn) = drained(vec![Err(Errno::EINTR), Ok(b"6,0,1,-;a\n")]);
        assert_eq!(turn, Drain::Idle);
        assert_eq!(msgs(&ring), ["a"]);
        assert!(!s.is_done());
    }

    #[test]
    fn other_errors_stop_the_source_with_an_entry() {
        let (s, ring, turn) = drained(vec![Err(Errno::EIO), Ok(b"6,0,1,-;never read\n")]);
        assert_eq!(turn, Drain::Idle);
        assert!(s.is_done());
        let m = msgs(&ring);
        assert_eq!(m.len(), 1);
        assert!(
            m[0].contains("read failed") && m[0].contains("no longer collected"),
            "{m:?}"
        );
    }

    #[test]
    fn end_of_file_on_a_device_stops_the_source() {
        // A container may bind /dev/null over /dev/kmsg.
        let (s, ring, turn) = drained(vec![Ok(b"")]);
        assert_eq!(turn, Drain::Idle);
        assert!(s.is_done());
        assert_eq!(
            msgs(&ring),
            ["/dev/kmsg: end of file: not a kernel log device; kernel messages are no longer collected"]
        );
    }

    #[test]
    fn the_cause_of_a_gap_survives_a_malformed_record() {
        let (_, ring, _) = drained(vec![
            Ok(b"6,0,1,-;a\n"),
            Err(Errno::EPIPE),
            Ok(b"garbage\n"),
            Ok(b"6,9,2,-;b\n"),
        ]);
        let m = msgs(&ring);
        assert_eq!(m[1], "garbage");
        assert!(
            m[2].starts_with("8 kernel messages were lost")
                && m[2].ends_with("the kernel overwrote them before ringlogd could read them"),
            "{m:?}"
        );
        assert_eq!(ring.ledger.input(Input::Kmsg).malformed, 1);
    }

    #[test]
    fn the_budget_bounds_one_turn() {
        let (mut s, mut ring) = with_ring(vec![
            Ok(b"6,0,1,-;a\n"),
            Ok(b"6,1,1,-;b\n"),
            Ok(b"6,2,1,-;c\n"),
        ]);
        assert_eq!(s.drain(&mut ring, 2), Drain::More);
        assert_eq!(ring.len(), 2);
        assert_eq!(s.drain(&mut ring, 2), Drain::Idle);
        assert_eq!(ring.len(), 3);
    }

    #[test]
    fn a_late_first_record_says_what_the_kernel_dropped_before() {
        let (mut s, mut ring) = with_ring(vec![Ok(b"6,500,1,-;a\n"), Ok(b"6,501,1,-;b\n")]);
        s.drain(&mut ring, 10);
        let m = msgs(&ring);
        assert!(
            m[0].starts_with("kernel log starts at sequence number 500"),
            "{m:?}"
        );
        assert_eq!(&m[1..], ["a", "b"]);
        assert_eq!(ring.ledger.input(Input::Kmsg).dropped, 0, "not lost by us");
    }

    #[test]
    fn file_records_join_continuation_lines_and_skip_blank_lines() {
        let data = b"6,1,2,-;one\n SUBSYSTEM=pci\n DEVICE=+pci:0\n\n\n6,2,3,-;two\n6,3,4,-;three";
        let mut r = io::Cursor::new(&data[..]);
        let mut out = Vec::new();
        let mut got = Vec::new();
        while let Some(cut) = read_file_record(&mut r, &mut out).unwrap() {
            assert!(!cut);
            got.push(String::from_utf8(std::mem::take(&mut out)).unwrap());
        }
        assert_eq!(
            got,
            [
                "6,1,2,-;one\n SUBSYSTEM=pci\n DEVICE=+pci:0\n",
                "6,2,3,-;two\n",
                "6,3,4,-;three"
            ]
        );
    }

    #[test]
    fn an_overlong_file_line_is_cut_and_the_rest_skipped() {
        let mut data = b"6,1,2,-;".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_FILE_LINE * 3));
        data.extend_from_slice(b"\n6,2,3,-;next\n");
        // A small BufReader, so the long line spans many fills.
        let mut r = BufReader::with_capacity(1000, io::Cursor::new(data));
        let mut out = Vec::new();
        assert_eq!(read_file_record(&mut r, &mut out).unwrap(), Some(true));
        assert_eq!(out.len(), MAX_FILE_LINE);
        out.clear();
        assert_eq!(read_file_record(&mut r, &mut out).unwrap(), Some(false));
        assert_eq!(out, b"6,2,3,-;next\n");
    }

    #[test]
    fn a_resumed_reader_skips_what_the_ring_has_and_reports_later_gaps() {
        let (mut s, mut ring) = with_ring(vec![
            Ok(b"6,10,1,-;stored before\n"),
            Ok(b"6,11,1,-;stored before too\n"),
            Ok(b"6,12,1,-;new\n"),
            Ok(b"6,15,1,-;after a gap\n"),
        ]);
        s.resume(Some(
            &KmsgResume {
                boot_id: "boot-a".into(),
                next_seq: 12,
            }
            .cookie(),
        ));
        s.drain(&mut ring, 100);
        let m = msgs(&ring);
        assert_eq!(m[0], "new");
        assert!(
            m[1].starts_with("2 kernel messages were lost (sequence numbers 13 to 14)"),
            "{m:?}"
        );
        assert_eq!(m[2], "after a gap");
        let c = ring.ledger.input(Input::Kmsg);
        assert_eq!((c.received, c.stored, c.dropped), (4, 2, 2));
    }

    #[test]
    fn another_boots_resume_point_is_ignored() {
        let (mut s, mut ring) = with_ring(vec![Ok(b"6,0,1,-;a\n"), Ok(b"6,1,1,-;b\n")]);
        s.resume(Some(
            &KmsgResume {
                boot_id: "boot-b".into(),
                next_seq: 100,
            }
            .cookie(),
        ));
        s.drain(&mut ring, 100);
        assert_eq!(msgs(&ring), ["a", "b"]);
    }

    #[test]
    fn the_boot_read_is_a_device_points_boot_id_never_a_files() {
        let point = |boot_id: &str| {
            KmsgResume {
                boot_id: boot_id.into(),
                next_seq: 3,
            }
            .cookie()
        };
        assert_eq!(
            KmsgSource::boot_read(&point("boot-a")).as_deref(),
            Some("boot-a")
        );
        assert_eq!(KmsgSource::boot_read(&point("file:/tmp/kmsg.txt")), None);
        assert_eq!(KmsgSource::boot_read(&point("")), None);
    }

    #[test]
    fn boot_time_is_in_the_past_and_stable() {
        let a = boot_time_ns().unwrap();
        let b = boot_time_ns().unwrap();
        assert!(a < now_ns());
        assert!((a - b).abs() < 1_000_000, "{a} vs {b}");
    }
}
