//! Following across the daemon's re-exec and restart: when the connection
//! ends, a follower connects again and asks for what comes after the last
//! entry it printed, so it loses and repeats nothing; the ring's own
//! `missed` notice says what eviction took meanwhile. It gives up only
//! when the daemon stays gone for `--reconnect-timeout`.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use super::args::ReadRequest;
use super::connect::{self, Unreachable};

/// How often a follower tries the socket while the daemon is gone.
const RETRY_EVERY: Duration = Duration::from_millis(100);

/// How far a follower got: the cursor it resumes from.
#[derive(Debug)]
pub(super) struct Progress {
    /// The sequence number of the last entry printed (or `--after-seq`).
    pub last_seq: Option<u64>,
    /// Some entry came without a `seq`: the peer is memlogd, which cannot
    /// resume a read, so the follow ends with the connection, as memlogd's
    /// own logread does.
    pub unsequenced: bool,
    /// When this follow began, ns since the epoch: where a follow that
    /// printed nothing yet resumes from.
    started_ns: i64,
}

/// The two keys of an entry's JSON line that move the cursor.
#[derive(Deserialize)]
struct Cursor {
    seq: Option<u64>,
    missed: Option<u64>,
}

impl Progress {
    pub fn new(after_seq: Option<u64>, started_ns: i64) -> Progress {
        Progress {
            last_seq: after_seq,
            unsequenced: false,
            started_ns,
        }
    }

    /// Note an entry's JSON line as printed.
    pub fn printed(&mut self, line: &str) {
        match serde_json::from_str::<Cursor>(line) {
            Ok(Cursor { seq: Some(s), .. }) => self.last_seq = Some(s),
            // The notice of entries missed carries no number of its own.
            Ok(Cursor {
                missed: Some(_), ..
            }) => {}
            _ => self.unsequenced = true,
        }
    }

    /// The request that goes on from here: after the last entry printed;
    /// with none printed yet, a dump-and-follow reads again what it would
    /// have (none of it matched so far), and a follow reads what arrived
    /// since it began.
    fn resume(&self, first: &ReadRequest, ring_restarted: bool) -> ReadRequest {
        let mut r = first.clone();
        r.mode = "dump+follow";
        r.tail = None;
        match self.last_seq {
            Some(_) if ring_restarted => r.after_seq = None,
            Some(s) => r.after_seq = Some(s),
            None if first.mode == "follow" => {
                r.since_ns = Some(
                    r.since_ns
                        .map_or(self.started_ns, |t| t.max(self.started_ns)),
                );
            }
            None => {}
        }
        r
    }
}

/// Connect again once the daemon serves, retrying until `timeout` has
/// passed since `lost`, and send the request that resumes `progress`.
/// Returns the connection, or the message to exit 1 with.
pub(super) fn reconnect(
    socket: &Path,
    first: &ReadRequest,
    progress: &Progress,
    lost: Instant,
    timeout: Duration,
) -> Result<UnixStream, String> {
    loop {
        let restarted = progress
            .last_seq
            .and_then(|s| ring_restarted_behind(socket, s));
        let request = progress.resume(first, restarted.is_some());
        match connect::open(socket, &request.bytes()) {
            Ok(conn) => {
                eprintln!("logread: {}", said(progress, lost.elapsed(), restarted));
                return Ok(conn);
            }
            Err(Unreachable::Refused(why)) => return Err(why),
            Err(Unreachable::Gone(_)) if lost.elapsed() < timeout => {
                std::thread::sleep(RETRY_EVERY);
            }
            Err(Unreachable::Gone(why)) => {
                let at = progress
                    .last_seq
                    .map_or(String::new(), |s| format!(" after seq {s}"));
                return Err(format!(
                    "the daemon has been gone for {:.1} s (--reconnect-timeout {}): \
                     giving up{at}; last error: {why}",
                    lost.elapsed().as_secs_f64(),
                    timeout.as_secs_f64()
                ));
            }
        }
    }
}

/// The one line a follower writes to stderr when it is back.
fn said(progress: &Progress, after: Duration, restarted: Option<u64>) -> String {
    let back = format!("reconnected after {:.1} s", after.as_secs_f64());
    match (progress.last_seq, restarted) {
        (Some(s), Some(next)) => format!(
            "{back}; the daemon's ring was numbered anew (next seq {next}: it restarted \
             with neither its snapshot nor the fd store), so what it held after seq {s} is \
             gone: reading the new ring from its oldest entry"
        ),
        (Some(s), None) => format!("{back}, resuming after seq {s}"),
        (None, _) => format!("{back}, resuming from where this follow began"),
    }
}

/// Whether the daemon now serves a ring whose numbering is behind `seq`,
/// the last entry printed (a restart that kept neither the ring nor its
/// sequence mark): `Some(next_seq)` then. Resuming after `seq` would skip
/// every new entry until the numbers caught up. `None` when it is not
/// behind or cannot tell.
fn ring_restarted_behind(socket: &Path, seq: u64) -> Option<u64> {
    use std::io::Read;
    let mut conn = connect::open(socket, b"{\"mode\":\"stats\"}\n").ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).ok()?;
    let stats: Value = serde_json::from_slice(&reply).ok()?;
    let next = stats["ring"]["next_seq"].as_u64()?;
    (next <= seq).then_some(next)
}
