use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::record::{Input, RecordRef};
use crate::ring::{Limits, Ring};
use crate::route::RouteStats;
use crate::stats::{self, Gauges, Views};

/// A ring with entries of two inputs and two sources, one of them with a
/// name that needs escaping.
fn ring() -> Ring {
    let mut ring = Ring::new(Limits::default());
    for (input, source, msg) in [
        (Input::Syslog, "sshd", "accepted"),
        (Input::Syslog, "sshd", "closed"),
        (Input::Net, "we\"ird\\name", "hi"),
    ] {
        crate::ingest::store(
            &mut ring,
            &RecordRef::new(input, 1_000_000_000, source, msg),
            false,
        );
    }
    ring
}

/// The queries' part of a stats document, as the query server writes it.
fn queries() -> Value {
    json!({
        "connections": 7, "timeouts": 0, "bad_requests": 1, "refused": 0, "lapped": 2,
        "missed": 30, "cursor_ahead": 0, "clients": 1, "followers": 0, "limited": 3,
        "limited_by_uid": { "1000": 3 }
    })
}

fn document(ring: &Ring, only_uid: Option<u32>) -> Value {
    let routes = Rc::new(RefCell::new(vec![RouteStats {
        url: "relp://10.0.0.1:2514".into(),
        state: "connected",
        sent: 3,
        acknowledged: Some(2),
        lost: 0,
        reconnects: 1,
        resent: Some(1),
        done: 1,
    }]));
    let intake = Default::default();
    stats::assemble(Views {
        ring,
        open: Gauges {
            intake_fds_open: 0,
            tcp_connections: 2,
            captures_written: crate::recorder::WrittenCounters {
                files: 4,
                bytes: 5000,
                failed: 1,
                removed: 2,
            },
        },
        queries: queries(),
        routes: Some(&routes),
        intake: Some(&intake),
        uptime: Duration::from_secs(42),
        only_uid,
    })
}

/// The value of the sample line that starts with `series ` in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn every_number_of_the_stats_has_a_family() {
    let ring = ring();
    let doc = document(&ring, None);
    assert_eq!(uncovered(&doc), Vec::<String>::new(), "{doc:#}");
    let mut grown = doc.clone();
    grown["ring"]["new_figure"] = json!(1);
    grown["routes"][0]["new_figure"] = json!(1);
    assert_eq!(
        uncovered(&grown),
        ["ring.new_figure", "routes.*.new_figure"]
    );
}

#[test]
fn samples_are_the_stats_numbers() {
    let ring = ring();
    let doc = document(&ring, None);
    let text = exposition(&doc, Reader::Whole);
    let received = |input: &str| doc["inputs"][input]["received"].as_f64();
    let route = "{route=\"relp://10.0.0.1:2514\"}";
    let series_and_values = [
        (
            "ringlogd_received_total{input=\"syslog\"}".to_owned(),
            received("syslog"),
        ),
        (
            "ringlogd_received_total{input=\"net\"}".to_owned(),
            received("net"),
        ),
        (
            "ringlogd_received_total{input=\"syslog\"}".to_owned(),
            Some(2.0),
        ),
        (
            "ringlogd_source_stored_total{source=\"sshd\"}".to_owned(),
            Some(2.0),
        ),
        (
            r#"ringlogd_source_held_entries{source="we\"ird\\name"}"#.to_owned(),
            Some(1.0),
        ),
        (
            "ringlogd_ring_entries".to_owned(),
            doc["ring"]["entries"].as_f64(),
        ),
        (
            "ringlogd_ring_oldest_timestamp_seconds".to_owned(),
            Some(1.0),
        ),
        (
            "ringlogd_ring_compress_info{compress=\"zstd\"}".to_owned(),
            Some(1.0),
        ),
        ("ringlogd_paused".to_owned(), Some(0.0)),
        ("ringlogd_uptime_seconds".to_owned(), Some(42.0)),
        (
            "ringlogd_query_limited_by_uid_total{uid=\"1000\"}".to_owned(),
            Some(3.0),
        ),
        (
            format!("ringlogd_route_acknowledged_total{route}"),
            Some(2.0),
        ),
        (format!("ringlogd_route_resent_total{route}"), Some(1.0)),
        (format!("ringlogd_route_connected{route}"), Some(1.0)),
        (
            "ringlogd_route_state{route=\"relp://10.0.0.1:2514\",state=\"connected\"}".to_owned(),
            Some(1.0),
        ),
        (
            format!("ringlogd_route_lag_entries{route}"),
            doc["routes"][0]["lag"].as_f64(),
        ),
        ("ringlogd_capture_files_written_total".to_owned(), Some(4.0)),
        (
            "ringlogd_capture_files_written_bytes_total".to_owned(),
            Some(5000.0),
        ),
        ("ringlogd_capture_files_failed_total".to_owned(), Some(1.0)),
        ("ringlogd_capture_files_removed_total".to_owned(), Some(2.0)),
        (
            "ringlogd_captures_max_bytes".to_owned(),
            doc["captures"]["max_bytes"].as_f64(),
        ),
        ("ringlogd_captures_started_total".to_owned(), Some(0.0)),
    ];
    for (series, value) in series_and_values {
        assert_eq!(sample(&text, &series), value, "{series}");
    }
    assert!(
        text.contains("\n# TYPE ringlogd_received_total counter\n"),
        "{text}"
    );
    assert!(
        sample(&text, "process_resident_memory_bytes").is_some_and(|b| b > 0.0),
        "{text}"
    );
    let version = format!(
        "ringlogd_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&text, &version), Some(1.0));
}

#[test]
fn a_restricted_reader_gets_its_stats_and_nothing_more() {
    let ring = ring();
    let doc = document(&ring, Some(1000));
    let text = exposition(&doc, Reader::Restricted);
    // Its stats name no route and no source it did not send to, and
    // nothing about the process.
    for absent in [
        "ringlogd_route_",
        "ringlogd_source_",
        "process_",
        "ringlogd_build_info",
    ] {
        assert!(!text.contains(absent), "{absent} in {text}");
    }
    assert_eq!(
        sample(&text, "ringlogd_received_total{input=\"syslog\"}"),
        Some(2.0)
    );
}

#[test]
fn no_family_is_written_twice_and_every_name_is_legal() {
    let ring = ring();
    let text = exposition(&document(&ring, None), Reader::Whole);
    let mut seen = std::collections::HashSet::new();
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split(' ').nth(2).unwrap();
        assert!(seen.insert(name.to_owned()), "{name} twice");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{name}"
        );
        let counter = line.ends_with(" counter");
        assert_eq!(counter, name.ends_with("_total"), "{line}");
    }
    assert!(text.ends_with('\n'));
}

#[test]
fn the_docs_list_every_family() {
    let doc = include_str!("../../docs/metrics.md");
    let ring = ring();
    let text = exposition(&document(&ring, None), Reader::Whole);
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    assert!(names.len() > 40, "{names:?}");
    for name in names.iter().chain(FAMILIES.iter().map(|f| &f.name)) {
        assert!(
            doc.contains(&format!("| `{name}")),
            "docs/metrics.md does not list {name}"
        );
    }
}
