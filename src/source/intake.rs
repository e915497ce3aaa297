//! The fd intake, as LinuxKit's memlogd does it: LinuxKit's `init`,
//! `logwrite` and any other client pass the read end of a program's stdout
//! or stderr over a unix datagram socket, with the name to log it under,
//! and every line read from that fd becomes a record (`input` `fd`).
//!
//! A datagram is a name (its payload; one trailing NUL is dropped) and one
//! or more fds (SCM_RIGHTS), all logged under that name. Each fd is read
//! until its end, without blocking, from the event loop: pipes, FIFOs and
//! sockets are watched by epoll, edge-triggered; a regular file, which epoll
//! refuses, is read to its end in bounded steps. No fd gets more than
//! [`FD_BUDGET`] bytes per turn, so one noisy program cannot starve the
//! others. A line's time is when its last byte was read.
//!
//! Each fd is also held to `--intake-rate` ([`super::throttle`]): one that
//! writes faster is paused, not read, until its tokens grow back, so a
//! program that never stops writing (or a passed `/dev/zero`) costs a
//! bounded share of a core; its writer waits, and nothing is lost. The
//! first pause of an episode is reported as an internal entry, and every
//! pause is counted in the stats (`intake`). Root can close every fd of a
//! name at once ([`super::intake_board::request_drop`]).
//!
//! With `--multiline`, continuation lines are joined into one entry per fd
//! ([`crate::parse::multiline`]); an entry waiting for more lines is
//! stored at the latest when its flush timeout passes or the fd ends.
//!
//! Whatever cannot be used is counted once for input `fd` as received and
//! dropped, and reported as an internal entry: a datagram without an fd, a
//! control message the kernel had to cut (fds lost), an fd that cannot be
//! read or fails while being read, an fd past `--max-fds`. None of it stops
//! the daemon or the other fds.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Instant;

use mio::net::UnixDatagram;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::resource::{getrlimit, setrlimit, Resource};

use super::fdpass;
use super::intake_board::{Board, FdFigures};
use super::paced_read::{read_some, Step};
use super::throttle::{Rate, Throttle};
use super::Drain;
use crate::ingest;
use crate::ingest::notice::Notices;
use crate::parse::escape_invalid_utf8;
use crate::parse::lines::{level_prefix, Line, LineSplitter};
use crate::parse::multiline::{Joiner, LineIn, Pending};
use crate::record::{now_ns, truncate_utf8, Input, Record, Severity};
use crate::ring::Ring;
use crate::sockpath::BoundPath;
use crate::sockpath::Listener;

/// Bytes read from one fd per turn of the event loop, at most.
pub const FD_BUDGET: usize = 64 << 10;
/// Datagrams (so fds) taken in per turn, at most. The fds of one turn are
/// read in the next, so a burst of short-lived programs is read and closed
/// as it comes instead of piling up towards `--max-fds`.
pub const SOCKET_BUDGET: usize = 64;
/// Source names longer than this are cut.
pub const MAX_NAME: usize = 4096;
/// The most fds one datagram can carry (the kernel's SCM_MAX_FD).
const MAX_FDS_PER_DATAGRAM: usize = 253;
/// File descriptors kept free for everything else the daemon opens
/// (sockets, query clients) when the fd limit bounds `--max-fds`; half the
/// limit when that is less, so a small limit still leaves room for intake.
const RESERVED_FDS: u64 = 64;
/// What the intake does with its fds, from the flags.
#[derive(Clone, Copy, Debug)]
pub struct IntakeOptions {
    pub max_fds: usize,
    pub max_line_len: usize,
    pub level_prefix: bool,
    /// `--intake-rate` and `--intake-burst`.
    pub rate: Rate,
}

/// How an fd learns that it has something to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Watch {
    /// Registered with epoll: read on readiness.
    Epoll,
    /// A regular file, which epoll refuses: always readable, read in
    /// budget-sized steps every turn until its end.
    Steps,
}

/// One received fd being read.
struct FdReader {
    file: File,
    watch: Watch,
    lines: LineSplitter,
    /// With `--multiline`: the entry being joined.
    pending: Option<Pending>,
    /// Reused for every line of this fd: the name is set once, the text
    /// and time per line, so a line costs no allocation.
    record: Record,
    /// Its name in the systemd fd store, when the store is used.
    fdname: Option<String>,
    /// The fd store holds it (so it must be taken out when it ends).
    stored: bool,
    throttle: Throttle,
}

/// The intake socket and every fd received on it.
pub struct IntakeSource {
    socket: UnixDatagram,
    _path: Option<BoundPath>,
    readers: Vec<Option<FdReader>>,
    free: Vec<usize>,
    open: usize,
    /// `--max-fds`, lowered to what the process's fd limit allows.
    max_fds: usize,
    fd_base: usize,
    options: IntakeOptions,
    buf: Vec<u8>,
    name_buf: Vec<u8>,
    control: Vec<u64>,
    /// New fds to read before any readiness event, and regular files.
    ready: Vec<Token>,
    notices: Notices,
    /// `--multiline`, compiled.
    joiner: Option<Joiner>,
    /// When the oldest joined entry waiting must be stored; `None` when
    /// none waits.
    flush_at: Option<Instant>,
    /// The systemd fd store, when used: fds get names from this prefix.
    fdstore: Option<FdStoreNames>,
    /// Readers to hand to the fd store, by index, with the name each had
    /// when it was queued (the slot may be reused before then).
    to_store: Vec<(usize, String)>,
    /// Names to take out of the fd store: their fds ended.
    to_remove: Vec<String>,
    board: Board,
    /// Readers paused by their rate, by index, and the earliest end of
    /// their pauses.
    paused: Vec<usize>,
    wake_at: Option<Instant>,
}

/// Unique fd store names for this process's intake fds.
struct FdStoreNames {
    prefix: String,
    next: u64,
}

/// What one `recvmsg` brought.
struct Datagram {
    name: String,
    fds: Vec<OwnedFd>,
    /// The kernel cut the control message: some fds never arrived.
    fds_lost: bool,
    name_cut: bool,
}

impl IntakeSource {
    /// Serve `listener`; received fds get tokens from `fd_base` up, below
    /// `fd_base + options.max_fds`. Raises the process's fd limit as far as
    /// `--max-fds` needs and the hard limit allows, and says so in the ring
    /// when that is not far enough.
    pub fn new(
        listener: Listener<UnixDatagram>,
        options: IntakeOptions,
        joiner: Option<Joiner>,
        fd_base: usize,
        ring: &mut Ring,
    ) -> IntakeSource {
        let max_fds = match fd_limit_for(options.max_fds) {
            Ok(limit) => {
                let reserved = RESERVED_FDS.min(limit / 2);
                let fit = usize::try_from(limit - reserved).unwrap_or(usize::MAX);
                if fit < options.max_fds {
                    let msg = format!(
                        "--max-fds {} is more than the fd limit ({limit}) allows: \
                         at most {fit} intake fds will be read at once",
                        options.max_fds
                    );
                    ingest::note(ring, Severity::Warning, msg);
                }
                fit.min(options.max_fds)
            }
            Err(_) => options.max_fds,
        };
        IntakeSource {
            socket: listener.socket,
            _path: listener.path,
            readers: Vec::new(),
            free: Vec::new(),
            open: 0,
            max_fds,
            fd_base,
            options,
            buf: vec![0; FD_BUDGET],
            name_buf: vec![0; MAX_NAME],
            control: fdpass::control_buffer(MAX_FDS_PER_DATAGRAM),
            ready: Vec::new(),
            notices: Notices::default(),
            joiner,
            flush_at: None,
            fdstore: None,
            to_store: Vec::new(),
            to_remove: Vec::new(),
            board: Board::default(),
            paused: Vec::new(),
            wake_at: None,
        }
    }

    /// The figures and the drop requests, for the query server.
    pub fn board(&self) -> Board {
        Rc::clone(&self.board)
    }

    /// Hand every intake fd to the systemd fd store from now on
    /// ([`IntakeSource::sync_fdstore`] does it).
    pub fn use_fdstore(&mut self) {
        // The start time keeps names apart from those a predecessor left
        // in the store.
        let prefix = format!("{:x}-", now_ns());
        self.fdstore = Some(FdStoreNames { prefix, next: 0 });
    }

    /// Send the fd store what changed: new fds (`store`), and the names of
    /// fds that ended (`remove`). A fd that cannot be stored is read all
    /// the same.
    pub fn sync_fdstore(
        &mut self,
        mut store: impl FnMut(&str, std::os::fd::BorrowedFd<'_>) -> io::Result<()>,
        mut remove: impl FnMut(&str),
    ) -> Vec<String> {
        let mut failed = Vec::new();
        for (idx, fdname) in std::mem::take(&mut self.to_store) {
            let Some(reader) = self.readers.get_mut(idx).and_then(Option::as_mut) else {
                continue;
            };
            if reader.fdname.as_deref() != Some(fdname.as_str()) || reader.stored {
                continue;
            }
            match store(&fdname, reader.file.as_fd()) {
                Ok(()) => reader.stored = true,
                Err(e) => failed.push(format!(
                    "cannot hand the fd for {:?} to the service manager's fd store: {e}",
                    reader.record.source
                )),
            }
        }
        for fdname in std::mem::take(&mut self.to_remove) {
            remove(&fdname);
        }
        failed
    }

    /// Every fd being read, with what was read of it and not yet stored,
    /// for a successor. The fds stay open here: `fd` is their number.
    pub fn hand_over(&self) -> Vec<crate::handover::IntakeFdState> {
        let now = Instant::now();
        self.readers
            .iter()
            .flatten()
            .map(|r| {
                let (partial, skipping) = r.lines.state();
                crate::handover::IntakeFdState {
                    fd: r.file.as_raw_fd(),
                    name: r.record.source.clone(),
                    fdname: r.fdname.clone().filter(|_| r.stored),
                    partial: partial.to_vec(),
                    skipping,
                    pending: r.pending.as_ref().map(|p| crate::handover::PendingState {
                        text: p.text.clone(),
                        severity: p.severity,
                        truncated: p.truncated,
                        first_ns: p.first_ns,
                        age_ms: now.saturating_duration_since(p.since).as_millis() as u64,
                    }),
                }
            })
            .collect()
    }

    /// Go on reading an fd a predecessor was reading, from where it left
    /// off (`state`). Refused as a newly passed fd would be, and counted.
    pub fn resume(
        &mut self,
        fd: OwnedFd,
        state: crate::handover::IntakeFdState,
        ring: &mut Ring,
        registry: &Registry,
    ) {
        let started = if self.open >= self.max_fds {
            Err("--max-fds is reached".to_owned())
        } else {
            self.start_reading(fd, &state.name, registry)
        };
        let token = match started {
            Ok(t) => t,
            Err(why) => {
                count_dropped(ring);
                let name = state.name;
                ingest::note(
                    ring,
                    Severity::Warning,
                    format!("intake: cannot go on reading the fd for {name:?}: {why}"),
                );
                if let Some(n) = state.fdname {
                    self.to_remove.push(n);
                }
                return;
            }
        };
        let idx = token.0 - self.fd_base;
        let joiner = self.joiner.as_ref();
        let reader = self.readers[idx].as_mut().expect("just started");
        reader.lines =
            LineSplitter::resume(self.options.max_line_len, state.partial, state.skipping);
        if let (Some(j), Some(p)) = (joiner, state.pending) {
            let since = Instant::now()
                .checked_sub(std::time::Duration::from_millis(p.age_ms))
                .unwrap_or_else(Instant::now);
            let due = since + j.flush;
            self.flush_at = Some(self.flush_at.map_or(due, |f| f.min(due)));
            reader.pending = Some(Pending {
                text: p.text,
                severity: p.severity,
                truncated: p.truncated,
                first_ns: p.first_ns,
                since,
            });
        }
        match state.fdname {
            // Already in the store, under that name.
            Some(n) => {
                reader.fdname = Some(n);
                reader.stored = true;
            }
            None => {
                if let Some(n) = self.fdstore_name(&state.name) {
                    self.readers[idx].as_mut().expect("just started").fdname = Some(n.clone());
                    self.to_store.push((idx, n));
                }
            }
        }
        self.ready.push(token);
    }

    fn fdstore_name(&mut self, source: &str) -> Option<String> {
        let names = self.fdstore.as_mut()?;
        let id = format!("{}{}", names.prefix, names.next);
        names.next += 1;
        Some(crate::handover::fdname_for_intake(&id, source))
    }

    /// When a joined entry is due to be stored without more lines, or a
    /// paused fd is to be read again.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.flush_at, self.wake_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Read again the paused fds whose pause is over (they are in
    /// [`IntakeSource::take_ready`] then).
    pub fn resume_due(&mut self, now: Instant) {
        if self.wake_at.is_none_or(|w| now < w) {
            return;
        }
        let mut next: Option<Instant> = None;
        let mut board = self.board.borrow_mut();
        let (readers, ready) = (&mut self.readers, &mut self.ready);
        self.paused.retain(|&idx| {
            let Some(r) = readers.get_mut(idx).and_then(Option::as_mut) else {
                return false;
            };
            match r.throttle.paused_until() {
                Some(t) if now < t => {
                    next = Some(next.map_or(t, |n| n.min(t)));
                    true
                }
                _ => {
                    r.throttle.resume();
                    if let Some(f) = board.fds.get_mut(idx).and_then(Option::as_mut) {
                        f.paused_until = None;
                    }
                    ready.push(Token(self.fd_base + idx));
                    false
                }
            }
        });
        self.wake_at = next;
    }

    /// Close the fds the query server was asked to drop, storing what was
    /// read of them; each request's own entry says who asked.
    pub fn close_dropped(&mut self, ring: &mut Ring, registry: &Registry) {
        let names = std::mem::take(&mut self.board.borrow_mut().drops);
        for name in names {
            let idxs: Vec<usize> = (0..self.readers.len())
                .filter(|&i| {
                    self.readers[i]
                        .as_ref()
                        .is_some_and(|r| r.record.source == name)
                })
                .collect();
            for idx in idxs {
                self.end(idx, ring, registry, Ok(()));
                self.board.borrow_mut().dropped_on_request += 1;
            }
        }
    }

    /// Store every joined entry whose flush timeout has passed.
    pub fn flush_due(&mut self, now: Instant, ring: &mut Ring) {
        let (Some(joiner), Some(at)) = (&self.joiner, self.flush_at) else {
            return;
        };
        if now < at {
            return;
        }
        let mut next: Option<Instant> = None;
        for reader in self.readers.iter_mut().flatten() {
            if let Some(p) = joiner.due(&mut reader.pending, now) {
                store_entry(ring, &mut reader.record, p);
            }
            if let Some(p) = &reader.pending {
                let at = p.since + joiner.flush;
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        self.flush_at = next;
    }

    /// Read `<N>` prefixes from now on, or stop (SIGHUP).
    pub fn set_level_prefix(&mut self, on: bool) {
        self.options.level_prefix = on;
    }

    pub fn socket_mut(&mut self) -> &mut UnixDatagram {
        &mut self.socket
    }

    /// The intake socket's fd and the path bound for it, for a successor.
    pub fn handed(&self) -> crate::handover::SocketFd {
        crate::handover::SocketFd {
            fd: self.socket.as_raw_fd(),
            path: self._path.as_ref().map(|p| p.path().to_owned()),
        }
    }

    /// Whether `token` names one of the received fds.
    /// How many passed fds are being read now.
    pub fn open_fds(&self) -> usize {
        self.open
    }

    pub fn owns_fd(&self, token: Token) -> bool {
        (self.fd_base..self.fd_base + self.readers.len()).contains(&token.0)
    }

    /// Tokens to read without waiting for readiness: fds that just arrived
    /// (data may be waiting already) and regular files.
    pub fn take_ready(&mut self) -> Vec<Token> {
        std::mem::take(&mut self.ready)
    }

    /// Receive up to `budget` datagrams and take in their fds.
    pub fn drain_socket(&mut self, ring: &mut Ring, registry: &Registry, budget: usize) -> Drain {
        for _ in 0..budget {
            match self.recv() {
                Ok(Some(d)) => self.take_in(d, ring, registry),
                Ok(None) => return Drain::Idle,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    count_dropped(ring);
                    self.notices.report(ring, "intake-recv", || {
                        format!("intake: cannot receive from the intake socket: {e}")
                    });
                    return Drain::Idle;
                }
            }
        }
        Drain::More
    }

    /// Read what the fd behind `token` has, up to [`FD_BUDGET`] bytes and
    /// as far as its rate allows; at its end (or a read error) store its
    /// last line and close it.
    pub fn drain_fd(&mut self, token: Token, ring: &mut Ring, registry: &Registry) -> Drain {
        let idx = token.0 - self.fd_base;
        let now = Instant::now();
        let Some(reader) = self.readers.get_mut(idx).and_then(Option::as_mut) else {
            return Drain::Idle;
        };
        if reader.throttle.is_paused(now) {
            // Read again when the pause is over, whatever arrives meanwhile.
            return Drain::Idle;
        }
        let options = self.options;
        let mut out = Out {
            ring,
            record: &mut reader.record,
            pending: &mut reader.pending,
            joiner: self.joiner.as_ref(),
            flush_at: &mut self.flush_at,
        };
        let (step, read, lines) = read_some(
            &mut reader.file,
            &mut reader.lines,
            &mut reader.throttle,
            (&mut self.buf, FD_BUDGET),
            options.rate,
            |line, now| out.line(line, now, options),
        );
        if let Some(f) = self
            .board
            .borrow_mut()
            .fds
            .get_mut(idx)
            .and_then(Option::as_mut)
        {
            f.lines += lines;
            f.bytes += read as u64;
        }
        match step {
            Step::Budget => Drain::More,
            Step::WouldBlock => match reader.watch {
                Watch::Epoll => Drain::Idle,
                // Not expected of a file; try again next turn.
                Watch::Steps => Drain::More,
            },
            Step::Spent => {
                self.pause(idx, ring, Instant::now());
                Drain::Idle
            }
            Step::End(outcome) => {
                self.end(idx, ring, registry, outcome);
                Drain::Idle
            }
        }
    }

    /// The fd at `idx` spent its tokens: stop reading it until they grow
    /// back, count the pause, and report the first of an episode.
    fn pause(&mut self, idx: usize, ring: &mut Ring, now: Instant) {
        let rate = self.options.rate;
        let Some(reader) = self.readers.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        let (until, new_episode) = reader.throttle.pause(rate, now);
        self.paused.push(idx);
        self.wake_at = Some(self.wake_at.map_or(until, |w| w.min(until)));
        let mut board = self.board.borrow_mut();
        board.pauses += 1;
        if let Some(f) = board.fds.get_mut(idx).and_then(Option::as_mut) {
            f.pauses += 1;
            f.paused_until = Some(until);
        }
        drop(board);
        if new_episode {
            let name = reader.record.source.clone();
            self.notices.report(ring, "intake-throttled", || {
                format!(
                    "intake: the fd for {name:?} writes faster than --intake-rate allows \
                     ({} lines/s of up to {} bytes, burst {} lines): reading it is paused \
                     while it does, so its writer waits and nothing is lost; \
                     `logread --drop-fd {name}` closes it",
                    rate.lines_per_sec,
                    super::throttle::BYTES_PER_LINE,
                    rate.burst
                )
            });
        }
    }

    /// The fd at `idx` ended, failed (`outcome`) or is dropped: store its
    /// last line and what was being joined, then close it.
    fn end(&mut self, idx: usize, ring: &mut Ring, registry: &Registry, outcome: io::Result<()>) {
        let Some(reader) = self.readers.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        let now = now_ns();
        let options = self.options;
        let FdReader {
            lines,
            record,
            pending,
            ..
        } = reader;
        let mut out = Out {
            ring,
            record,
            pending,
            joiner: self.joiner.as_ref(),
            flush_at: &mut self.flush_at,
        };
        lines.finish(|line| out.line(line, now, options));
        // The fd ended: what was being joined is complete.
        if let Some(p) = pending.take() {
            store_entry(ring, record, p);
        }
        if let Err(e) = outcome {
            // What the fd still held is lost: count the fd once.
            count_dropped(ring);
            let name = record.source.clone();
            self.notices.report(ring, "intake-read", || {
                format!("intake: reading the fd for {name:?} failed: {e}; closed it")
            });
        }
        self.close(idx, registry);
    }

    /// One datagram, or `None` when the socket is empty.
    fn recv(&mut self) -> Result<Option<Datagram>, Errno> {
        let Some(r) = fdpass::recv(
            self.socket.as_raw_fd(),
            &mut self.name_buf,
            &mut self.control,
        )?
        else {
            return Ok(None);
        };
        let raw = &self.name_buf[..r.len];
        let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
        Ok(Some(Datagram {
            name: escape_invalid_utf8(raw).into_owned(),
            fds: r.fds,
            fds_lost: r.control_cut,
            name_cut: r.payload_cut,
        }))
    }

    /// Start reading every fd of `d`, or count and report why not.
    fn take_in(&mut self, d: Datagram, ring: &mut Ring, registry: &Registry) {
        let name = d.name;
        if d.name_cut {
            self.notices.report(ring, "intake-long-name", || {
                format!("intake: a source name longer than {MAX_NAME} bytes was cut to {name:?}")
            });
        }
        if d.fds_lost {
            count_dropped(ring);
            self.notices.report(ring, "intake-ctrunc", || {
                format!(
                    "intake: fds sent for {name:?} were lost: the kernel cut the control message \
                     (more than {MAX_FDS_PER_DATAGRAM} fds in one datagram, or the daemon is out of fds)"
                )
            });
        }
        if d.fds.is_empty() && !d.fds_lost {
            count_dropped(ring);
            self.notices.report(ring, "intake-no-fd", || {
                format!("intake: a datagram for {name:?} carried no fd; ignored")
            });
        }
        for fd in d.fds {
            if self.open >= self.max_fds {
                count_dropped(ring);
                let max = self.max_fds;
                self.notices.report(ring, "intake-max-fds", || {
                    format!(
                        "intake: refused the fd for {name:?}: {max} intake fds are open (--max-fds)"
                    )
                });
                continue;
            }
            match self.start_reading(fd, &name, registry) {
                Ok(token) => {
                    let idx = token.0 - self.fd_base;
                    if let Some(n) = self.fdstore_name(&name) {
                        if let Some(r) = self.readers[idx].as_mut() {
                            r.fdname = Some(n.clone());
                        }
                        self.to_store.push((idx, n));
                    }
                    self.ready.push(token)
                }
                Err(why) => {
                    count_dropped(ring);
                    self.notices.report(ring, "intake-unreadable", || {
                        format!("intake: refused the fd for {name:?}: {why}")
                    });
                }
            }
        }
    }

    /// Check that `fd` can be read, make it non-blocking and watch it.
    fn start_reading(
        &mut self,
        fd: OwnedFd,
        name: &str,
        registry: &Registry,
    ) -> Result<Token, String> {
        let flags = fcntl(fd.as_fd(), FcntlArg::F_GETFL)
            .map_err(|e| format!("cannot read its flags: {e}"))?;
        let flags = OFlag::from_bits_retain(flags);
        if flags.contains(OFlag::O_PATH) {
            return Err("it is an O_PATH fd, which cannot be read".into());
        }
        if flags & OFlag::O_ACCMODE == OFlag::O_WRONLY {
            return Err("it is open for writing only".into());
        }
        let file = File::from(fd);
        let kind = file
            .metadata()
            .map_err(|e| format!("cannot inspect it: {e}"))?
            .file_type();
        if kind.is_dir() {
            return Err("it is a directory".into());
        }
        if !kind.is_file() && !flags.contains(OFlag::O_NONBLOCK) {
            // The flag is on the open file description, shared with the
            // sender's copy; senders write to the other end, so it is ours.
            fcntl(file.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))
                .map_err(|e| format!("cannot make it non-blocking: {e}"))?;
        }
        let idx = self.free.pop().unwrap_or_else(|| {
            self.readers.push(None);
            self.readers.len() - 1
        });
        let token = Token(self.fd_base + idx);
        let watch = if kind.is_file() {
            Watch::Steps
        } else {
            match registry.register(&mut SourceFd(&file.as_raw_fd()), token, Interest::READABLE) {
                Ok(()) => Watch::Epoll,
                // epoll refuses what is always readable (regular files and
                // the like): read it in steps like a file.
                Err(e) if e.raw_os_error() == Some(Errno::EPERM as i32) => Watch::Steps,
                Err(e) => {
                    self.free.push(idx);
                    return Err(format!("cannot watch it: {e}"));
                }
            }
        };
        self.readers[idx] = Some(FdReader {
            file,
            watch,
            lines: LineSplitter::new(self.options.max_line_len),
            pending: None,
            record: Record::new(Input::Fd, 0, name, String::new()),
            fdname: None,
            stored: false,
            throttle: Throttle::new(self.options.rate, Instant::now()),
        });
        let mut board = self.board.borrow_mut();
        if board.fds.len() <= idx {
            board.fds.resize(idx + 1, None);
        }
        board.fds[idx] = Some(FdFigures {
            name: name.to_owned(),
            lines: 0,
            bytes: 0,
            pauses: 0,
            paused_until: None,
        });
        self.open += 1;
        Ok(token)
    }

    fn close(&mut self, idx: usize, registry: &Registry) {
        if let Some(reader) = self.readers[idx].take() {
            if reader.watch == Watch::Epoll {
                let _ = registry.deregister(&mut SourceFd(&reader.file.as_raw_fd()));
            }
            if let (Some(n), true) = (reader.fdname, reader.stored) {
                self.to_remove.push(n);
            }
            if let Some(f) = self.board.borrow_mut().fds.get_mut(idx) {
                *f = None;
            }
            self.free.push(idx);
            self.open -= 1;
        }
    }
}

/// Where the lines of one fd go: into the ring, or through the joiner.
struct Out<'a> {
    ring: &'a mut Ring,
    record: &'a mut Record,
    pending: &'a mut Option<Pending>,
    joiner: Option<&'a Joiner>,
    flush_at: &'a mut Option<Instant>,
}

impl Out<'_> {
    fn line(&mut self, line: Line<'_>, now: i64, options: IntakeOptions) {
        let Some(joiner) = self.joiner else {
            return store_line(self.ring, self.record, line, now, options);
        };
        let (severity, text) = if options.level_prefix {
            level_prefix(line.bytes)
        } else {
            (None, line.bytes)
        };
        let text = escape_invalid_utf8(text);
        let at = Instant::now();
        let line = LineIn {
            text: &text,
            severity,
            truncated: line.truncated,
            now_ns: now,
            now: at,
        };
        let (ring, record) = (&mut *self.ring, &mut *self.record);
        joiner.line(self.pending, line, |p| store_entry(ring, record, p));
        if let Some(p) = self.pending.as_ref() {
            let due = p.since + joiner.flush;
            if self.flush_at.is_none_or(|f| due < f) {
                *self.flush_at = Some(due);
            }
        }
    }
}

/// A joined entry into the ring under the fd's name. With joining, an
/// entry (not a line) is what `received` counts.
fn store_entry(ring: &mut Ring, record: &mut Record, p: Pending) {
    record.msg = p.text;
    record.truncated = p.truncated;
    record.severity = p.severity;
    record.received_ns = p.first_ns;
    ingest::store(ring, &record.as_ref(), false);
    record.msg = String::new();
}

/// One line into the ring under the fd's name.
fn store_line(
    ring: &mut Ring,
    record: &mut Record,
    line: Line<'_>,
    now: i64,
    options: IntakeOptions,
) {
    let (severity, text) = if options.level_prefix {
        level_prefix(line.bytes)
    } else {
        (None, line.bytes)
    };
    record.msg.clear();
    record.msg.push_str(&escape_invalid_utf8(text));
    // Escaped bytes take four characters each: the limit holds for the text
    // as stored, too.
    let cut = truncate_utf8(&mut record.msg, options.max_line_len);
    record.truncated = line.truncated || cut;
    record.severity = severity;
    record.received_ns = now;
    ingest::store(ring, &record.as_ref(), false);
}

/// Something arrived on the intake and nothing of it could be stored.
fn count_dropped(ring: &mut Ring) {
    ingest::lost(ring, Input::Fd, 1);
}

/// Make room for `max_fds` intake fds under RLIMIT_NOFILE, raising the
/// soft limit up to the hard one if needed; the soft limit after that.
fn fd_limit_for(max_fds: usize) -> Result<u64, Errno> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let want = (max_fds as u64).saturating_add(RESERVED_FDS);
    if soft >= want {
        return Ok(soft);
    }
    let raised = want.min(hard);
    setrlimit(Resource::RLIMIT_NOFILE, raised, hard)?;
    Ok(raised)
}
