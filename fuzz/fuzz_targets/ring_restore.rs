//! A ring taken over from damaged memory or a damaged file. Bytes written
//! anywhere over a real ring's memfd: adopting it either refuses with a
//! message or gives a ring whose every entry reads back and that takes new
//! entries; never a panic. The same bytes as a snapshot file (and over a
//! real snapshot, its checksum made right so the parts behind it are
//! reached): refused with a message or loaded, never a panic.
#![no_main]

use std::os::fd::AsFd;

use libfuzzer_sys::fuzz_target;
use ringlogd::record::{Input, Record};
use ringlogd::ring::{Limits, Ring, RingOptions};

const LIMITS: Limits = Limits {
    max_lines: 1000,
    max_bytes: 64 << 10,
};

fn filled() -> Ring {
    let mut ring = Ring::with_options(LIMITS, RingOptions::default()).expect("a ring");
    ring.set_local_host("here");
    for i in 0..400 {
        let mut r = Record::new(
            Input::Syslog,
            1_700_000_000_000_000_000 + i * 1000,
            ["a", "b", "c"][i as usize % 3],
            format!("line {i} of a ring about to be damaged"),
        );
        r.severity = Some((i % 8) as u8);
        ring.push(&r);
    }
    ring
}

fn exercise(mut ring: Ring) {
    let held = ring.iter_from(0).count();
    assert_eq!(held, ring.len(), "every held entry reads back");
    assert!(ring.push(&Record::new(Input::Internal, 0, "memlogd", "after")).is_some());
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
    let offset = at % len.min(256 << 10);
    nix::sys::uio::pwrite(&fd, body, offset).unwrap();
    drop(ring);
    match Ring::adopt(fd, LIMITS, RingOptions::default()) {
        Ok(ring) => exercise(ring),
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    let dir = std::env::temp_dir().join(format!("ringlogd-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ring.snapshot");
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
