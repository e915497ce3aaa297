//! Fair eviction that readers can see: at the holes a flooding source
//! leaves, a reader of the stream is told how many entries of which source
//! were taken out of turn, and the counts add up to the source's evicted
//! count in the stats.

use serde_json::Value;

use crate::support::{is_eviction_note, parse_lines, Daemon};

/// The notes in a JSON dump: (source, count, first_seq, last_seq).
fn notes(lines: &[Value]) -> Vec<(String, u64, u64, u64)> {
    lines
        .iter()
        .filter_map(|l| {
            if !is_eviction_note(l) {
                return None;
            }
            let sd = &l["sd"]["evicted@ringlogd"];
            let num = |k: &str| sd[k].as_str().and_then(|s| s.parse::<u64>().ok()).unwrap();
            Some((
                sd["source"].as_str().unwrap().to_owned(),
                num("count"),
                num("first_seq"),
                num("last_seq"),
            ))
        })
        .collect()
}

#[test]
fn a_flood_against_quiet_services_leaves_notes_that_add_up_to_its_evictions() {
    let d = Daemon::start(&["--max-lines", "1000"]);
    for q in ["q1", "q2", "q3"] {
        d.send_many(10, |i| format!("<30>Dec  7 06:00:00 {q}: quiet line {i}"));
    }
    d.send_many(20_000, |i| format!("<14>Dec  7 06:00:01 flood: line {i}"));
    d.wait_until("the flood stored", |d| {
        d.stats()["sources"]["flood"]["stored"].as_u64() == Some(20_000)
    });
    let stats = d.stats();
    let evicted = stats["sources"]["flood"]["evicted"].as_u64().unwrap();
    assert!(evicted > 18_000, "{stats}");

    let out = d.logread(&["--json"]);
    assert!(out.status.success(), "{out:?}");
    let lines = parse_lines(&out.stdout);
    let told = notes(&lines);
    assert!(!told.is_empty(), "no note in the stream");
    assert!(told.iter().all(|n| n.0 == "flood"), "{told:?}");
    assert_eq!(told.iter().map(|n| n.1).sum::<u64>(), evicted, "{told:?}");
    // Each note sits where its hole is: after the entries before it and
    // before the entries after it, in sequence order.
    let mut last_seq = 0;
    for l in &lines {
        if let Some(seq) = l["seq"].as_u64() {
            last_seq = seq;
        } else if is_eviction_note(l) {
            let sd = &l["sd"]["evicted@ringlogd"];
            let first: u64 = sd["first_seq"].as_str().unwrap().parse().unwrap();
            assert!(first > last_seq, "note {l} after seq {last_seq}");
        }
    }
    // The quiet services kept every line, and readers that want only the
    // flood's entries are told too; readers of another source are not.
    for q in ["q1", "q2", "q3"] {
        assert_eq!(stats["sources"][q]["held"], 10, "{stats}");
    }
    let flood_only = parse_lines(&d.logread(&["--json", "--source", "flood"]).stdout);
    assert_eq!(notes(&flood_only).len(), told.len());
    let q1_only = parse_lines(&d.logread(&["--json", "--source", "q1"]).stdout);
    assert_eq!(notes(&q1_only), []);
    // The text formats carry the same note.
    let text = String::from_utf8(d.logread(&[]).stdout).unwrap();
    assert!(
        text.contains(&format!(
            "fair eviction took {} entries of flood",
            told[0].1
        )),
        "{text}"
    );
}
