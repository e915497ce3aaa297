//! The compression dictionary a large ring learns from its own records is
//! carried, with the chunks that need it, across a re-exec and a snapshot.

use serde_json::Value;

use crate::support::*;

/// Entry `i` of a log of a few message formats with varying fields.
pub(super) fn line(i: usize) -> String {
    let verbs = ["accepted", "refused", "reset", "closed", "opened"];
    format!(
        "<13>Dec  7 18:00:00 gateway sshd[{}]: connection {} from 198.51.100.{} port {} user{}",
        1000 + i % 97,
        verbs[i % verbs.len()],
        i % 251,
        30000 + (i * 7919) % 30000,
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
    d.wait_for("every line", |e| e.len() > n);
    let (count, bytes) = dicts(&d.stats());
    assert_eq!(count, 1, "one dictionary learned: {}", d.stats());
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
