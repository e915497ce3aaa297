//! How fast one intake fd is read (`--intake-rate`, `--intake-burst`): a
//! token bucket of lines, and beside it one of bytes, so that a program
//! that writes without end (`yes`, a passed `/dev/zero`) is read at a
//! bounded pace instead of keeping the event loop busy for ever.
//!
//! An fd that has spent its tokens is paused: it is not read at all until
//! a tenth of a second's worth has grown back, and meanwhile the event loop
//! sleeps as if the fd were quiet. Pausing loses nothing: a pipe or socket
//! fills up and its writer waits (backpressure), a file or device is read
//! on where it stopped. A flood therefore costs a bounded share of a core,
//! and the operator can drop the fd by name.
//!
//! The byte bucket allows [`BYTES_PER_LINE`] bytes per line token, far
//! more than the lines of a real program average: it only ever trips for a
//! stream with few or no newlines, which the line bucket cannot see.
//!
//! Lines are counted once read, so a read is sized from the fd's average
//! line so far to hold about the lines it may still take: a stream of
//! short lines (`yes`) is read in small steps at an even pace rather than
//! in one large read followed by a long pause.

use std::time::{Duration, Instant};

/// Bytes allowed per line token.
pub const BYTES_PER_LINE: u64 = 1024;
/// A paused fd is read again once it has this much of a second's worth of
/// tokens (or a full bucket, if that is less): it wakes the loop at most
/// ten times a second.
const RESUME_SHARE: f64 = 0.1;
/// Fewer bytes than this (or a full bucket, if that is less) are not
/// worth a read: the fd pauses instead, so a stream always ready is read
/// in large steps a few times a second, not in crumbs as tokens trickle in.
const MIN_READ: f64 = 4096.0;
/// An fd that was not paused for this long starts a new throttling
/// episode at its next pause (which is reported again).
pub const EPISODE_QUIET: Duration = Duration::from_secs(60);

/// The pace every intake fd is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Lines per second; 0 reads as fast as the fd gives.
    pub lines_per_sec: u64,
    /// Lines an fd may send at once before the rate applies.
    pub burst: u64,
}

impl Rate {
    pub fn is_limited(&self) -> bool {
        self.lines_per_sec > 0
    }

    fn burst_lines(&self) -> f64 {
        self.burst.max(1) as f64
    }

    fn burst_bytes(&self) -> f64 {
        self.burst_lines() * BYTES_PER_LINE as f64
    }
}

/// The tokens one fd has: lines and bytes it may still read now. Lines may
/// go into debt (they are counted after the bytes are read), bytes never.
#[derive(Clone, Debug)]
pub struct Bucket {
    lines: f64,
    bytes: f64,
    at: Instant,
}

impl Bucket {
    pub fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            lines: rate.burst_lines(),
            bytes: rate.burst_bytes(),
            at: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        let lines = rate.lines_per_sec as f64;
        self.lines = (self.lines + secs * lines).min(rate.burst_lines());
        self.bytes = (self.bytes + secs * lines * BYTES_PER_LINE as f64).min(rate.burst_bytes());
    }

    /// Bytes that may be read now, at most `cap`, for lines of about
    /// `line_bytes` each; 0 when the fd must pause.
    pub fn allowance(&mut self, rate: Rate, now: Instant, cap: usize, line_bytes: f64) -> usize {
        if !rate.is_limited() {
            return cap;
        }
        self.refill(rate, now);
        if self.lines < 1.0 || self.bytes < MIN_READ.min(rate.burst_bytes()) {
            return 0;
        }
        let for_lines = (self.lines * line_bytes.max(1.0)).max(1.0);
        (self.bytes.min(for_lines) as usize).min(cap)
    }

    /// `lines` lines in `bytes` bytes were read.
    pub fn spend(&mut self, lines: u64, bytes: usize) {
        self.lines -= lines as f64;
        self.bytes = (self.bytes - bytes as f64).max(0.0);
    }

    /// When a paused fd has enough tokens to be worth reading again.
    pub fn resume_at(&self, rate: Rate, now: Instant) -> Instant {
        let per_sec = rate.lines_per_sec.max(1) as f64;
        let want_lines = (per_sec * RESUME_SHARE).min(rate.burst_lines());
        let want_bytes = want_lines * BYTES_PER_LINE as f64;
        let wait_lines = (want_lines - self.lines) / per_sec;
        let wait_bytes = (want_bytes - self.bytes) / (per_sec * BYTES_PER_LINE as f64);
        let wait = wait_lines.max(wait_bytes).max(0.0);
        self.at.max(now) + Duration::from_secs_f64(wait)
    }
}

/// One fd's pacing: its bucket, whether it is paused now, and the episode
/// of throttling it is in.
#[derive(Clone, Debug)]
pub struct Throttle {
    bucket: Bucket,
    /// What was read so far, for the average line.
    lines_read: u64,
    bytes_read: u64,
    /// Not read before this.
    paused_until: Option<Instant>,
    /// The last pause, which decides whether the next one starts a new
    /// episode.
    last_pause: Option<Instant>,
}

impl Throttle {
    pub fn new(rate: Rate, now: Instant) -> Throttle {
        Throttle {
            bucket: Bucket::full(rate, now),
            lines_read: 0,
            bytes_read: 0,
            paused_until: None,
            last_pause: None,
        }
    }

    /// Bytes that may be read now, at most `cap`; 0 when the fd must pause.
    pub fn allowance(&mut self, rate: Rate, now: Instant, cap: usize) -> usize {
        self.bucket.allowance(rate, now, cap, self.line_bytes())
    }

    /// `lines` lines in `bytes` bytes were read.
    pub fn spend(&mut self, lines: u64, bytes: usize) {
        self.bucket.spend(lines, bytes);
        self.lines_read += lines;
        self.bytes_read += bytes as u64;
    }

    /// The fd's average line so far, in bytes; [`BYTES_PER_LINE`] before
    /// the first (the byte bucket bounds that read).
    fn line_bytes(&self) -> f64 {
        if self.lines_read == 0 {
            return BYTES_PER_LINE as f64;
        }
        (self.bytes_read as f64 / self.lines_read as f64).clamp(1.0, BYTES_PER_LINE as f64)
    }

    /// Whether the fd must not be read now.
    pub fn is_paused(&self, now: Instant) -> bool {
        self.paused_until.is_some_and(|t| now < t)
    }

    pub fn paused_until(&self) -> Option<Instant> {
        self.paused_until
    }

    /// The pause is over: the fd is read again.
    pub fn resume(&mut self) {
        self.paused_until = None;
    }

    /// Stop reading until tokens have grown back; returns when to resume
    /// and whether this pause starts a new episode.
    pub fn pause(&mut self, rate: Rate, now: Instant) -> (Instant, bool) {
        let until = self.bucket.resume_at(rate, now);
        let new_episode = self
            .last_pause
            .is_none_or(|t| now.saturating_duration_since(t) >= EPISODE_QUIET);
        self.paused_until = Some(until);
        self.last_pause = Some(now);
        (until, new_episode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        lines_per_sec: 1000,
        burst: 5000,
    };

    #[test]
    fn a_burst_is_read_whole_then_the_rate_holds() {
        let t0 = Instant::now();
        let mut b = Bucket::full(RATE, t0);
        assert_eq!(b.allowance(RATE, t0, 64 << 10, 1024.0), 64 << 10);
        b.spend(5000, 100_000);
        assert_eq!(b.allowance(RATE, t0, 64 << 10, 1024.0), 0, "lines spent");
        // A tenth of a second's worth is back after 0.1 s.
        let at = b.resume_at(RATE, t0);
        assert_eq!(at - t0, Duration::from_millis(100));
        assert!(b.allowance(RATE, at, 64 << 10, 1024.0) > 0);
    }

    #[test]
    fn a_stream_without_newlines_runs_out_of_bytes() {
        let t0 = Instant::now();
        let mut b = Bucket::full(RATE, t0);
        let all = (RATE.burst * BYTES_PER_LINE) as usize;
        assert_eq!(b.allowance(RATE, t0, usize::MAX, 1024.0), all);
        b.spend(0, all - 4000);
        assert_eq!(
            b.allowance(RATE, t0, 64 << 10, 1024.0),
            0,
            "a crumb is not read"
        );
        let later = t0 + Duration::from_secs(1);
        assert_eq!(
            b.allowance(RATE, later, usize::MAX, 1024.0),
            4000 + (RATE.lines_per_sec * BYTES_PER_LINE) as usize
        );
    }

    #[test]
    fn a_line_debt_is_paid_back_before_reading_again() {
        let t0 = Instant::now();
        let mut b = Bucket::full(RATE, t0);
        b.spend(6000, 6000);
        let at = b.resume_at(RATE, t0);
        // 1000 lines of debt plus a tenth of a second: 1.1 s.
        assert_eq!(at - t0, Duration::from_millis(1100));
    }

    #[test]
    fn unlimited_reads_everything_offered() {
        let off = Rate {
            lines_per_sec: 0,
            burst: 0,
        };
        let t0 = Instant::now();
        let mut b = Bucket::full(off, t0);
        b.spend(1 << 30, 1 << 30);
        assert_eq!(b.allowance(off, t0, 4096, 1024.0), 4096);
    }

    #[test]
    fn reads_of_short_lines_are_sized_to_the_lines_left() {
        let t0 = Instant::now();
        let mut t = Throttle::new(RATE, t0);
        // The first read knows no line yet: the whole budget.
        assert_eq!(t.allowance(RATE, t0, 64 << 10), 64 << 10);
        // 2-byte lines ("y\n"): the 5000 - 4000 lines left fit 2000 bytes.
        t.spend(4000, 8000);
        assert_eq!(t.allowance(RATE, t0, 64 << 10), 2000);
        t.spend(1000, 2000);
        assert_eq!(t.allowance(RATE, t0, 64 << 10), 0);
    }

    #[test]
    fn pauses_close_together_are_one_episode() {
        let t0 = Instant::now();
        let mut t = Throttle::new(RATE, t0);
        t.spend(RATE.burst, 0);
        assert!(t.pause(RATE, t0).1);
        assert!(t.is_paused(t0));
        t.resume();
        assert!(!t.pause(RATE, t0 + Duration::from_secs(30)).1);
        let quiet = t0 + Duration::from_secs(30) + EPISODE_QUIET;
        assert!(t.pause(RATE, quiet).1);
    }
}
