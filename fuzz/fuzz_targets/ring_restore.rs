//! A ring taken over from damaged memory or a damaged file. Bytes written
//! anywhere over a real ring's memfd (one with a compression dictionary
//! in a slot, and chunks that name it): adopting it either refuses with a
//! message or gives a ring whose every entry reads back and that takes new
//! entries; never a panic. The same bytes as a snapshot file (and over a
//! real snapshot, its checksum made right so the parts behind it are
//! reached): refused with a message or loaded, never a panic.
#![no_main]

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringlogd::record::{Input, Record};
use ringlogd::ring::{Limits, Ring, RingOptions};

/// Large enough for the ring to learn a compression dictionary.
const LIMITS: Limits = Limits {
    max_lines: 4000,
    max_bytes: 16 << 20,
};

/// A ring of 12 000 entries whose sealed chunks are compressed with a
/// dictionary it learned: made once, then loaded afresh from its snapshot
/// for each input.
fn filled() -> Ring {
    static SNAPSHOT: OnceLock<Vec<u8>> = OnceLock::new();
    let snapshot = SNAPSHOT.get_or_init(|| {
        let mut ring = Ring::with_options(LIMITS, RingOptions::default()).expect("a ring");
        ring.set_local_host("here");
        for i in 0..12_000 {
            let mut r = Record::new(
                Input::Syslog,
                1_700_000_000_000_000_000 + i * 1000,
                ["a", "b", "c"][i as usize % 3],
                format!(
                    "{} {i} of a ring about to be damaged, from {}",
                    ["line", "entry", "record", "message"][i as usize % 4],
                    ["here", "there", "elsewhere"][i as usize % 3]
                ),
            );
            r.severity = Some((i % 8) as u8);
            ring.push(&r);
        }
        // Every sealed chunk compressed, with the dictionary once there is one.
        ring.take_compressed(true);
        assert_eq!(ring.stats().dicts, 1, "the ring learned a dictionary");
        let dir = tempfile_dir();
        let path = dir.join("filled.snapshot");
        ring.save_snapshot(&path).unwrap();
        std::fs::read(&path).unwrap()
    });
    let ring = Ring::from_snapshot(
        snapshot,
        Path::new("filled.snapshot"),
        LIMITS,
        RingOptions::default(),
    )
    .expect("the ring's own snapshot loads");
    assert_eq!(ring.stats().dicts, 1);
    ring
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ringlogd-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn exercise(mut ring: Ring) {
    let held = ring.iter_from(0).count();
    assert_eq!(held, ring.len(), "every held entry reads back");
    assert!(ring
        .push(&Record::new(Input::Internal, 0, "memlogd", "after"))
        .is_some());
    assert!(ring.bytes_used() <= LIMITS.max_bytes.max(ring.limits().max_bytes));
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let at = u32::from_le_bytes(data[..4].try_into().unwrap()) as i64;
    let body = &data[4..];

    let ring = filled();
    let fd = ring.memfd().unwrap().try_clone_to_owned().unwrap();
    let len = nix::sys::stat::fstat(fd.as_fd()).unwrap().st_size;
    // Mostly the header and the first slots, where the structure is.
    let offset = at % len.min(2 << 20);
    nix::sys::uio::pwrite(&fd, body, offset).unwrap();
    drop(ring);
    match Ring::adopt(fd, LIMITS, RingOptions::default()) {
        Ok(ring) => exercise(ring),
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    let path = tempfile_dir().join("ring.snapshot");
    if let Ok(ring) = Ring::from_snapshot(body, &path, LIMITS, RingOptions::default()) {
        exercise(ring);
    }
    filled().save_snapshot(&path).unwrap();
    let mut snap = std::fs::read(&path).unwrap();
    let end = snap.len() - 20;
    let offset = (at as usize) % end;
    let n = body.len().min(end - offset);
    snap[offset..offset + n].copy_from_slice(&body[..n]);
    let crc = crc32fast::hash(&snap[..end + 8]);
    snap[end + 8..end + 12].copy_from_slice(&crc.to_le_bytes());
    match Ring::from_snapshot(&snap, &path, LIMITS, RingOptions::default()) {
        Ok(ring) => exercise(ring),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
