//! What the fd intake shows the query server: each open fd's figures
//! (lines, bytes, pauses) by name for the stats, and the names root asked
//! to drop, which the intake closes before it reads again.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

/// What the intake shows the query server, shared as the routes' board
/// is: the figures of every fd being read, and the names the query server
/// was asked to drop, which the intake closes in the same turn.
pub type Board = Rc<RefCell<IntakeBoard>>;

#[derive(Debug, Default)]
pub struct IntakeBoard {
    /// By reader index, like the readers.
    pub(super) fds: Vec<Option<FdFigures>>,
    /// Names whose fds are to be closed.
    pub(super) drops: Vec<String>,
    /// Pauses of every fd since the start.
    pub(super) pauses: u64,
    /// Fds closed on request since the start.
    pub(super) dropped_on_request: u64,
}

/// One fd's figures for the stats.
#[derive(Clone, Debug)]
pub(super) struct FdFigures {
    pub(super) name: String,
    pub(super) lines: u64,
    pub(super) bytes: u64,
    pub(super) pauses: u64,
    pub(super) paused_until: Option<Instant>,
}

/// Ask for every fd named `name` to be closed; how many there are now
/// (they are closed before the intake reads again).
pub fn request_drop(board: &Board, name: &str) -> usize {
    let mut b = board.borrow_mut();
    let n = b.fds.iter().flatten().filter(|f| f.name == name).count();
    if n > 0 {
        b.drops.push(name.to_owned());
    }
    n
}

/// The intake's figures as JSON: totals, and per name the fds open now,
/// the lines and bytes read from them, their pauses and how many are
/// paused now.
pub fn stats_json(board: &Board) -> serde_json::Value {
    let b = board.borrow();
    let now = Instant::now();
    let mut names = serde_json::Map::new();
    let mut paused_now = 0u64;
    for f in b.fds.iter().flatten() {
        let paused = f.paused_until.is_some_and(|t| now < t);
        paused_now += u64::from(paused);
        let e = names.entry(f.name.clone()).or_insert_with(
            || serde_json::json!({"open": 0, "lines": 0, "bytes": 0, "pauses": 0, "paused": 0}),
        );
        for (key, add) in [
            ("open", 1),
            ("lines", f.lines),
            ("bytes", f.bytes),
            ("pauses", f.pauses),
            ("paused", u64::from(paused)),
        ] {
            e[key] = (e[key].as_u64().unwrap_or(0) + add).into();
        }
    }
    serde_json::json!({
        "pauses": b.pauses,
        "paused_now": paused_now,
        "dropped_on_request": b.dropped_on_request,
        "fds": names,
    })
}
