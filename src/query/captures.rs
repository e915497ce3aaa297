//! Captures as readers see them: the list (`{"mode":"captures"}`,
//! `GET /captures`) and a read narrowed to one capture's entries
//! (`{"mode":"dump","capture":ID}`, `GET /captures/ID`).
//!
//! A capture is a run of sequence numbers the ring keeps pinned (see
//! [`crate::ring::capture`]); reading one is an ordinary dump between two
//! sequence numbers, so it takes every filter and format a dump takes and
//! is told of gaps the same way. Its trigger entry is pinned with it, so
//! the list can always show what started it.

use serde_json::{json, Value};

use super::request::{Mode, Query};
use crate::control::capture_not_held;
use crate::record::Record;
use crate::ring::capture::Capture;
use crate::ring::Ring;
use crate::view::filter::Filter;
use crate::view::json;
use crate::view::timefmt::rfc3339_nanos;

/// The `--capture` filters' texts, by rule index, to name the filter that
/// started each capture. A capture keeps only its rule's index, so once
/// SIGHUP changes the filters, the captures made before are shown without
/// one rather than with another's.
#[derive(Clone, Debug, Default)]
pub struct RuleTexts {
    texts: Vec<String>,
    /// Captures from this id on were made with `texts`.
    since_id: u64,
}

impl RuleTexts {
    /// The filters the captures held were made with (at start, those of
    /// the configuration).
    pub fn new(texts: Vec<String>) -> RuleTexts {
        RuleTexts { texts, since_id: 0 }
    }

    /// The filters from now on (SIGHUP); `ring` says which captures were
    /// made before.
    pub fn replace(&mut self, texts: Vec<String>, ring: &Ring) {
        if texts != self.texts {
            self.since_id = ring.captures().last().map_or(0, |c| c.id + 1);
            self.texts = texts;
        }
    }

    fn of(&self, c: &Capture) -> Option<&str> {
        (c.id >= self.since_id)
            .then(|| self.texts.get(c.rule as usize))
            .flatten()
            .map(String::as_str)
    }
}

/// Narrow `q`, a read of capture `id`, to that capture's entries: from
/// its first sequence number (or after the reader's cursor, if later) to
/// its last, as held now (an open capture is read as far as it has got).
/// Refused: an HTTP status (400 for a follow, 404 for a capture not
/// held) and why.
pub fn narrow(q: &mut Query, id: u64, ring: &Ring) -> Result<(), (u16, String)> {
    if q.mode != Mode::Dump {
        let why = format!("capture {id} is read as a dump: it cannot be followed");
        return Err((400, why));
    }
    let c = ring
        .capture(id)
        .ok_or_else(|| (404, capture_not_held(id)))?;
    let end = c.last_seq + 1;
    // A cursor the reader gave counts where it is further on.
    let start = q
        .after_seq
        .map_or(c.first_seq, |a| a.saturating_add(1).max(c.first_seq))
        .min(end);
    q.after_seq = None;
    q.within = Some((start, end));
    Ok(())
}

/// The captures held, oldest first, as `{"captures": [...]}`, each with
/// the text of its filter (`null` if not known); `only_uid` is the
/// reader's restriction: such a reader is shown a trigger's text only if
/// it sent the trigger itself.
pub fn list_json(ring: &Ring, filters: &RuleTexts, only_uid: Option<u32>) -> Value {
    let captures: Vec<Value> = ring
        .captures()
        .iter()
        .map(|c| capture_json(c, ring, filters, only_uid))
        .collect();
    json!({ "captures": captures })
}

fn capture_json(c: &Capture, ring: &Ring, filters: &RuleTexts, only_uid: Option<u32>) -> Value {
    json!({
        "id": c.id,
        "rule": c.rule,
        "filter": filters.of(c),
        "trigger": trigger_json(c, ring, only_uid),
        "first_seq": c.first_seq,
        "last_seq": c.last_seq,
        "entries": c.entries,
        "bytes": c.bytes,
        "complete": c.is_complete(),
        "cut": c.is_cut(),
        "start_cut": c.is_start_cut(),
        "extended": c.extended,
        "start": rfc3339_nanos(c.start_ns),
        "end": rfc3339_nanos(c.end_ns),
    })
}

/// The trigger entry as a dump writes it (time, source, msg, seq, ...);
/// to a restricted reader, someone else's trigger is only its seq and
/// time.
fn trigger_json(c: &Capture, ring: &Ring, only_uid: Option<u32>) -> Value {
    let bare = json!({ "seq": c.trigger_seq, "time": rfc3339_nanos(c.trigger_ns) });
    let Some(entry) = ring.get(c.trigger_seq) else {
        return bare;
    };
    let visible = Filter {
        peer_uid: only_uid,
        ..Filter::default()
    };
    if !visible.matches(&entry.as_ref()) {
        return bare;
    }
    entry_json(&entry).unwrap_or(bare)
}

fn entry_json(entry: &Record) -> Option<Value> {
    let mut line = Vec::new();
    json::write_line(&entry.as_ref(), Some(entry.seq), None, &mut line);
    serde_json::from_slice(&line).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_read_is_a_dump_between_its_first_and_last() {
        let ring = Ring::new(Default::default());
        let mut q = Query::new(Mode::Dump);
        assert!(narrow(&mut q, 1, &ring)
            .unwrap_err()
            .1
            .contains("no capture 1"));
        let mut q = Query::new(Mode::Follow);
        assert!(narrow(&mut q, 1, &ring)
            .unwrap_err()
            .1
            .contains("cannot be followed"));
        assert_eq!(
            list_json(&ring, &RuleTexts::default(), None),
            json!({ "captures": [] })
        );
    }
}
