//! The compression dictionary a large ring learns from its own records is
//! carried, with the chunks that need it, across a re-exec and a snapshot.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// Entry `i` of a log of 400 message templates, each a run of words no
/// other template shares: a 256 KiB chunk holds each a few times, so what
/// a chunk compressed alone pays most for is each template's first use,
/// which a dictionary of the chunks before it already holds.
pub(super) fn line(i: usize) -> String {
    let template = (i * 7919) % 400;
    let words: Vec<String> = (0..6)
        .map(|k| {
            // A fixed pseudo-random word per template and place.
            let mut x = (template * 6 + k) as u64 ^ 0x9e37_79b9_7f4a_7c15;
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            format!("{:x}", x ^ (x >> 31))
        })
        .collect();
    format!(
        "<13>Dec  7 18:00:00 gateway sshd[{}]: {} user{}",
        1000 + i % 97,
        words.join(" "),
        i % 43
    )
}

/// The dump's entries as (seq, msg), for comparing rings.
fn entries(d: &Daemon) -> Vec<(u64, String)> {
    d.dump()
        .iter()
        .map(|v| {
            (
                v["seq"].as_u64().unwrap(),
                v["msg"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn dicts(stats: &Value) -> (u64, u64) {
    let r = &stats["ring"];
    (
        r["dicts"].as_u64().unwrap(),
        r["dict_bytes"].as_u64().unwrap(),
    )
}

#[test]
fn the_dictionary_survives_a_reexec_and_a_snapshot() {
    let keep = tempfile::tempdir().unwrap();
    let snap = keep.path().join("ring.snapshot");
    let args = [
        "--max-bytes",
        "16M",
        "--max-lines",
        "1000000",
        "--snapshot",
        snap.to_str().unwrap(),
    ];
    let d = Daemon::start(&args);
    // About 1.2 MB of records: several 256 KiB chunks sealed, the first
    // one enough to learn from.
    let n = 12_000;
    for i in 0..n {
        d.send(line(i).as_bytes());
    }
    // The compressor thread learns it after the entries are stored, and
    // the ring takes what it finished when it next stores one: a line
    // every poll until it shows.
    let mut sent = n;
    let (count, bytes) = dicts(&poll(
        "one dictionary learned",
        Duration::from_secs(10),
        || {
            d.send(line(sent).as_bytes());
            sent += 1;
            d.stats()
        },
        |s| dicts(s).0 == 1,
    ));
    d.wait_for("every line", |e| e.len() > sent);
    assert!(bytes > 0);
    let before = entries(&d);

    // Re-exec: the successor adopts the memfd, dictionary and all.
    signal(d.pid(), "USR2");
    d.wait_for("the successor", |e| {
        e.iter().any(|v| msg_starts(v, "re-executed"))
    });
    assert_eq!(dicts(&d.stats()), (count, bytes));
    assert_eq!(entries(&d)[..before.len()], before[..]);

    // A clean stop writes the snapshot; the next start loads it whole.
    let d = d.restart(&args);
    d.wait_for("the snapshot loaded", |e| {
        e.iter().any(|v| msg_starts(v, "memlogd started; loaded"))
    });
    assert_eq!(dicts(&d.stats()), (count, bytes));
    assert_eq!(entries(&d)[..before.len()], before[..]);
}
