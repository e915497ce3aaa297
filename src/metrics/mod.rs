//! The stats document as Prometheus metrics: `GET /metrics`.
//!
//! Nothing here keeps a count. The exposition is rendered from the very
//! stats document a stats query answers (see `stats`), family by family
//! from the table [`FAMILIES`], which says where in the document each
//! family's numbers are; so the two never disagree, and a reader
//! restricted to its own entries gets exactly what its stats show. Only
//! the build and the process' own figures (`process_*`, from `/proc`) are
//! added, and only for readers who see everything.
//!
//! A scrape costs one stats document and one pass over it: its size
//! follows the sources, routes and intake fds, never the entries held.

pub mod process;
pub mod text;

use serde_json::Value;

use process::Process;
use text::{Kind, Writer};

pub use text::CONTENT_TYPE;

/// Where a family's samples are in the stats document.
#[derive(Clone, Copy, Debug)]
enum At {
    /// One value at this path.
    One(&'static [&'static str]),
    /// One value per member of the object at `map`: the member's field
    /// `field`, or the member itself when `field` is empty; labelled
    /// `label` = the member's key.
    PerKey {
        map: &'static [&'static str],
        label: &'static str,
        field: &'static str,
    },
    /// One value per element of the array at `list`: its field `field`,
    /// labelled `label` = its field `key`.
    PerItem {
        list: &'static [&'static str],
        label: &'static str,
        key: &'static str,
        field: &'static str,
    },
}

/// How a value of the document becomes a sample's value.
#[derive(Clone, Copy, Debug)]
enum Read {
    /// A number as it is, a boolean as 1 or 0; null has no sample.
    Number,
    /// An RFC 3339 time, as seconds since the epoch; null has no sample.
    Time,
    /// A word, as the value of the label named here, on a sample of 1.
    Word(&'static str),
    /// 1 if the word is this one, else 0.
    Is(&'static str),
}

/// One metric family and where its numbers are.
#[derive(Clone, Copy, Debug)]
struct Family {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    at: At,
    read: Read,
}

use text::Kind::{Counter, Gauge};

const fn one(
    name: &'static str,
    kind: Kind,
    help: &'static str,
    path: &'static [&'static str],
) -> Family {
    Family {
        name,
        kind,
        help,
        at: At::One(path),
        read: Read::Number,
    }
}

const fn per_key(
    name: &'static str,
    kind: Kind,
    help: &'static str,
    (map, label, field): (&'static [&'static str], &'static str, &'static str),
) -> Family {
    Family {
        name,
        kind,
        help,
        at: At::PerKey { map, label, field },
        read: Read::Number,
    }
}

const fn per_route(
    name: &'static str,
    kind: Kind,
    help: &'static str,
    field: &'static str,
    read: Read,
) -> Family {
    Family {
        name,
        kind,
        help,
        at: At::PerItem {
            list: &["routes"],
            label: "route",
            key: "url",
            field,
        },
        read,
    }
}

const fn read_as(f: Family, read: Read) -> Family {
    Family { read, ..f }
}

/// Every family taken from the stats document, in the order they are
/// written. A new figure in the stats needs a line here: the tests fail
/// while any number of the document has no family.
#[rustfmt::skip]
const FAMILIES: &[Family] = &[
    one("ringlogd_uptime_seconds", Gauge, "How long the daemon has served.", &["uptime_secs"]),
    one("ringlogd_paused", Gauge, "1 while the ring is paused: new entries are dropped and counted.", &["paused"]),
    // The ledger, per input.
    per_key("ringlogd_received_total", Counter, "Messages, lines or records that reached the daemon.", (&["inputs"], "input", "received")),
    per_key("ringlogd_stored_total", Counter, "Of those received, entries stored in the ring.", (&["inputs"], "input", "stored")),
    per_key("ringlogd_dropped_total", Counter, "Of those received, entries refused before the ring (paused, out of fds, limits).", (&["inputs"], "input", "dropped")),
    per_key("ringlogd_malformed_total", Counter, "Stored entries whose header could not be parsed, kept as raw text.", (&["inputs"], "input", "malformed")),
    per_key("ringlogd_truncated_total", Counter, "Stored entries cut at the length limit.", (&["inputs"], "input", "truncated")),
    per_key("ringlogd_evicted_total", Counter, "Stored entries later overwritten by newer ones (the ring was full).", (&["inputs"], "input", "evicted")),
    per_key("ringlogd_cleared_total", Counter, "Stored entries removed by a clear request.", (&["inputs"], "input", "cleared")),
    // The ring.
    one("ringlogd_ring_entries", Gauge, "Entries the ring holds.", &["ring", "entries"]),
    one("ringlogd_ring_bytes", Gauge, "Memory the ring occupies: resident pages of its memfd and its indexes.", &["ring", "bytes"]),
    one("ringlogd_ring_raw_bytes", Gauge, "What the held entries take encoded but uncompressed.", &["ring", "raw_bytes"]),
    one("ringlogd_ring_chunks", Gauge, "Chunks the ring's entries are in.", &["ring", "chunks"]),
    one("ringlogd_ring_dicts", Gauge, "Compression dictionaries the ring holds, learned from its own records.", &["ring", "dicts"]),
    one("ringlogd_ring_dict_bytes", Gauge, "Bytes of the compression dictionaries the ring holds.", &["ring", "dict_bytes"]),
    one("ringlogd_ring_max_lines", Gauge, "Most entries the ring holds (--max-lines).", &["ring", "max_lines"]),
    one("ringlogd_ring_max_bytes", Gauge, "Most memory the ring occupies (--max-bytes).", &["ring", "max_bytes"]),
    one("ringlogd_ring_first_seq", Gauge, "Sequence number of the oldest entry held.", &["ring", "first_seq"]),
    one("ringlogd_ring_next_seq", Gauge, "Sequence number the next entry gets.", &["ring", "next_seq"]),
    one("ringlogd_ring_source_share", Gauge, "Share of the ring one source may hold before it loses its oldest first (--source-share).", &["ring", "source_share"]),
    read_as(one("ringlogd_ring_oldest_timestamp_seconds", Gauge, "Receive time of the oldest entry held.", &["ring", "oldest_time"]), Read::Time),
    read_as(one("ringlogd_ring_newest_timestamp_seconds", Gauge, "Receive time of the newest entry held.", &["ring", "newest_time"]), Read::Time),
    read_as(one("ringlogd_ring_compress_info", Gauge, "How full chunks are stored (--compress).", &["ring", "compress"]), Read::Word("compress")),
    read_as(one("ringlogd_ring_evict_info", Gauge, "Which entries a full ring loses first (--evict).", &["ring", "evict"]), Read::Word("evict")),
    // Per source, as many as the ring's source table holds.
    per_key("ringlogd_source_stored_total", Counter, "Entries stored, per source.", (&["sources"], "source", "stored")),
    per_key("ringlogd_source_held_entries", Gauge, "Entries held now, per source.", (&["sources"], "source", "held")),
    per_key("ringlogd_source_evicted_total", Counter, "Entries evicted, per source.", (&["sources"], "source", "evicted")),
    // Captures: the entries around a trigger, pinned against eviction.
    one("ringlogd_captures_open", Gauge, "Captures whose window is still open.", &["captures", "open"]),
    one("ringlogd_captures_complete", Gauge, "Complete captures held.", &["captures", "complete"]),
    one("ringlogd_captures_pinned_entries", Gauge, "Entries the captures held pin against eviction.", &["captures", "entries_pinned"]),
    one("ringlogd_captures_pinned_bytes", Gauge, "Bytes the captures held pin against eviction (an upper bound).", &["captures", "bytes_pinned"]),
    one("ringlogd_captures_max_bytes", Gauge, "Most bytes captures may pin together (--capture-max-bytes).", &["captures", "max_bytes"]),
    one("ringlogd_captures_started_total", Counter, "Captures started by a trigger.", &["captures", "started"]),
    one("ringlogd_captures_completed_total", Counter, "Captures whose window closed.", &["captures", "completed"]),
    one("ringlogd_captures_extended_total", Counter, "Triggers that extended an open capture instead of starting one.", &["captures", "extended"]),
    one("ringlogd_captures_released_for_budget_total", Counter, "Complete captures released to make room for a newer one.", &["captures", "released_for_budget"]),
    one("ringlogd_captures_released_total", Counter, "Captures released by a reader.", &["captures", "released"]),
    one("ringlogd_captures_refused_total", Counter, "Triggers that found no room for a capture.", &["captures", "refused"]),
    one("ringlogd_captures_cut_total", Counter, "Captures closed early because their budget was reached.", &["captures", "cut"]),
    one("ringlogd_capture_files_written_total", Counter, "Capture files written to --capture-dir.", &["captures_written", "files"]),
    one("ringlogd_capture_files_written_bytes_total", Counter, "Compressed bytes of the capture files written.", &["captures_written", "bytes"]),
    one("ringlogd_capture_files_failed_total", Counter, "Captures that could not be written to --capture-dir.", &["captures_written", "failed"]),
    one("ringlogd_capture_files_removed_total", Counter, "Old capture files removed to keep --capture-dir under --capture-dir-max.", &["captures_written", "removed"]),
    // What is open now.
    one("ringlogd_intake_fds_open", Gauge, "Fds passed over the intake socket and being read.", &["open", "intake_fds_open"]),
    one("ringlogd_tcp_connections", Gauge, "TCP connections being read.", &["open", "tcp_connections"]),
    // The query socket.
    one("ringlogd_query_connections_total", Counter, "Query connections accepted.", &["queries", "connections"]),
    one("ringlogd_query_timeouts_total", Counter, "Query connections closed because no request came in time.", &["queries", "timeouts"]),
    one("ringlogd_query_bad_requests_total", Counter, "Query requests refused as malformed.", &["queries", "bad_requests"]),
    one("ringlogd_query_refused_total", Counter, "Query connections refused for want of file descriptors.", &["queries", "refused"]),
    one("ringlogd_query_lapped_total", Counter, "Times a reader was lapped by the ring and told so.", &["queries", "lapped"]),
    one("ringlogd_query_missed_total", Counter, "Entries readers missed because the ring overwrote them first.", &["queries", "missed"]),
    one("ringlogd_query_cursor_ahead_total", Counter, "Reads whose cursor was ahead of the ring.", &["queries", "cursor_ahead"]),
    one("ringlogd_query_clients", Gauge, "Query clients connected now.", &["queries", "clients"]),
    one("ringlogd_query_followers", Gauge, "Query clients following the ring now.", &["queries", "followers"]),
    one("ringlogd_query_limited_total", Counter, "Query connections refused past --query-max-clients or its share per user.", &["queries", "limited"]),
    per_key("ringlogd_query_limited_by_uid_total", Counter, "Query connections refused past the limits, per user.", (&["queries", "limited_by_uid"], "uid", "")),
    // Per route.
    per_route("ringlogd_route_sent_total", Counter, "Entries sent on the route.", "sent", Read::Number),
    per_route("ringlogd_route_acknowledged_total", Counter, "Entries the receiver acknowledged (RELP, journal uploads).", "acknowledged", Read::Number),
    per_route("ringlogd_route_resent_total", Counter, "Entries sent again after a connection broke before their acknowledgement.", "resent", Read::Number),
    per_route("ringlogd_route_lost_total", Counter, "Entries the ring evicted before the route could send them.", "lost", Read::Number),
    per_route("ringlogd_route_reconnects_total", Counter, "Times the route connected again.", "reconnects", Read::Number),
    per_route("ringlogd_route_lag_entries", Gauge, "Entries not yet delivered on the route.", "lag", Read::Number),
    per_route("ringlogd_route_lag_seconds", Gauge, "Age of the oldest entry not yet delivered on the route (0 when none).", "lag_secs", Read::Number),
    per_route("ringlogd_route_connected", Gauge, "1 while the route is connected.", "state", Read::Is("connected")),
    per_route("ringlogd_route_state", Gauge, "The route's state (connected, connecting or down), as a label.", "state", Read::Word("state")),
    // The fd intake.
    one("ringlogd_intake_pauses_total", Counter, "Times an intake fd was paused for writing faster than --intake-rate.", &["intake", "pauses"]),
    one("ringlogd_intake_paused_fds", Gauge, "Intake fds paused now.", &["intake", "paused_now"]),
    one("ringlogd_intake_dropped_on_request_total", Counter, "Intake fds closed on request.", &["intake", "dropped_on_request"]),
    per_key("ringlogd_intake_fds", Gauge, "Intake fds being read, per name.", (&["intake", "fds"], "source", "open")),
    per_key("ringlogd_intake_fd_lines_total", Counter, "Lines read from the open intake fds, per name.", (&["intake", "fds"], "source", "lines")),
    per_key("ringlogd_intake_fd_bytes_total", Counter, "Bytes read from the open intake fds, per name.", (&["intake", "fds"], "source", "bytes")),
    per_key("ringlogd_intake_fd_pauses_total", Counter, "Times the open intake fds were paused, per name.", (&["intake", "fds"], "source", "pauses")),
    per_key("ringlogd_intake_fd_paused", Gauge, "Intake fds paused now, per name.", (&["intake", "fds"], "source", "paused")),
];

/// Who the exposition is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    /// Sees everything: the build and the process' figures too.
    Whole,
    /// Restricted to its own entries: only what its stats document says.
    Restricted,
}

/// The exposition of `stats` (a stats document as `stats::assemble`
/// makes it, for `reader`).
pub fn exposition(stats: &Value, reader: Reader) -> String {
    let mut out = String::with_capacity(16 << 10);
    let mut w = Writer::new(&mut out);
    for f in FAMILIES {
        w.family(f.name, f.kind, f.help);
        samples(f, stats, &mut w);
    }
    if reader == Reader::Whole {
        w.family(
            "ringlogd_build_info",
            Gauge,
            "The running ringlogd's version, as a label.",
        );
        w.sample(&[("version", env!("CARGO_PKG_VERSION"))], 1.0);
        process_families(&Process::now(), &mut w);
    }
    out
}

fn process_families(p: &Process, w: &mut Writer<'_>) {
    let families = [
        (
            "process_cpu_seconds_total",
            Counter,
            "User and system CPU time spent.",
            p.cpu_seconds,
        ),
        (
            "process_resident_memory_bytes",
            Gauge,
            "Resident memory size.",
            p.resident_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            Gauge,
            "Virtual memory size.",
            p.virtual_bytes,
        ),
        (
            "process_start_time_seconds",
            Gauge,
            "Start time of the process since the epoch.",
            p.start_time_seconds,
        ),
        (
            "process_open_fds",
            Gauge,
            "Open file descriptors.",
            p.open_fds,
        ),
        (
            "process_max_fds",
            Gauge,
            "Most file descriptors the process may open.",
            p.max_fds,
        ),
    ];
    for (name, kind, help, value) in families {
        w.family(name, kind, help);
        if let Some(v) = value {
            w.sample(&[], v);
        }
    }
}

/// Write each sample of family `f` in `stats`.
fn samples(f: &Family, stats: &Value, w: &mut Writer<'_>) {
    match f.at {
        At::One(path) => one_sample(f.read, &[], at(stats, path), w),
        At::PerKey { map, label, field } => {
            if let Some(members) = at(stats, map).as_object() {
                for (key, member) in members {
                    let v = if field.is_empty() {
                        member
                    } else {
                        &member[field]
                    };
                    one_sample(f.read, &[(label, key)], v, w);
                }
            }
        }
        At::PerItem {
            list,
            label,
            key,
            field,
        } => {
            if let Some(items) = at(stats, list).as_array() {
                for item in items {
                    let name = item[key].as_str().unwrap_or_default();
                    one_sample(f.read, &[(label, name)], &item[field], w);
                }
            }
        }
    }
}

/// The sample a value makes, if it makes one.
fn one_sample(read: Read, labels: &[(&str, &str)], v: &Value, w: &mut Writer<'_>) {
    match (read, v) {
        (Read::Number, Value::Number(n)) => w.sample(labels, n.as_f64().unwrap_or(f64::NAN)),
        (Read::Number, Value::Bool(b)) => w.sample(labels, f64::from(u8::from(*b))),
        (Read::Time, Value::String(t)) => {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(t) {
                let secs = t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9;
                w.sample(labels, secs);
            }
        }
        (Read::Word(label), Value::String(word)) => {
            let mut all = labels.to_vec();
            all.push((label, word.as_str()));
            w.sample(&all, 1.0);
        }
        (Read::Is(want), Value::String(word)) => {
            w.sample(labels, f64::from(u8::from(word == want)))
        }
        _ => {}
    }
}

/// The value at `path`, or null.
fn at<'v>(v: &'v Value, path: &[&str]) -> &'v Value {
    path.iter().fold(v, |v, key| &v[*key])
}

/// The paths of the values in `stats` that no family takes: what the
/// exposition would leave out. Keys of a per-key family's object, and the
/// label field of a per-item family's elements, are taken as labels.
pub fn uncovered(stats: &Value) -> Vec<String> {
    let mut leaves = Vec::new();
    walk(stats, &mut Vec::new(), &mut leaves);
    leaves
        .into_iter()
        .filter(|path| !FAMILIES.iter().any(|f| covers(f, path)))
        .map(|path| path.join("."))
        .collect()
}

/// Every leaf under `v` (a scalar, or an empty object or array), by path;
/// array elements are `*`.
fn walk(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                path.push(k.clone());
                walk(child, path, out);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for child in items {
                path.push("*".into());
                walk(child, path, out);
                path.pop();
            }
        }
        Value::Object(_) | Value::Array(_) => {}
        _ => out.push(path.clone()),
    }
}

fn covers(f: &Family, path: &[String]) -> bool {
    let starts = |prefix: &[&str]| {
        path.len() >= prefix.len() && prefix.iter().zip(path).all(|(a, b)| a == b)
    };
    match f.at {
        At::One(p) => path.len() == p.len() && starts(p),
        At::PerKey { map, field, .. } => {
            let want = map.len() + 1 + usize::from(!field.is_empty());
            starts(map) && path.len() == want && (field.is_empty() || path[want - 1] == field)
        }
        At::PerItem {
            list, key, field, ..
        } => {
            starts(list)
                && path.len() == list.len() + 2
                && path[list.len()] == "*"
                && (path[list.len() + 1] == field || path[list.len() + 1] == key)
        }
    }
}

#[cfg(test)]
mod tests;
