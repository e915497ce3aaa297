//! Fd intake figures against the real daemon (default ring, so it evicts
//! as it goes), each the median of 3 runs, timed from the first byte sent
//! until the daemon's stats count every line stored:
//!
//! - lines per second from 1 fd, from 100 fds and from 1000 fds open at
//!   once, 100-byte lines written in 64 KiB chunks by one fast writer;
//! - fds per second: short-lived programs, each fd passed in its own
//!   datagram with one line and closed at once (received, watched, read,
//!   closed).
//!
//! Run with `--intake-rate 0`: these are the intake's own limits, not the
//! pace each fd is held to by default.
//!
//! `cargo bench --bench intake -- [LINES]`

use std::io::Write;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::{Duration, Instant};

use nix::sys::socket::UnixAddr;

mod common;
use common::{count_arg, pass_fd, pass_fd_from, Ringlogd};

const LINE: usize = 100;

fn newest_entry(d: &Ringlogd) -> serde_json::Value {
    serde_json::from_slice(&d.query(b"{\"mode\":\"dump\",\"n\":1}\n")).unwrap()
}

fn fd_counter(d: &Ringlogd, name: &str) -> u64 {
    d.stats()["inputs"]["fd"][name].as_u64().unwrap_or(0)
}

fn wait_stored(d: &Ringlogd, n: u64) {
    while fd_counter(d, "stored") < n {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// 64 KiB of whole 100-byte lines.
fn chunk() -> Vec<u8> {
    let mut c = Vec::new();
    let mut i = 0;
    while c.len() + LINE <= 64 << 10 {
        let mut l = format!("line {i:08} from a busy service ").into_bytes();
        l.resize(LINE - 1, b'.');
        l.push(b'\n');
        c.extend_from_slice(&l);
        i += 1;
    }
    c
}

/// Lines per second with `fds` fds open at once, `lines` lines in all.
fn lines_rate(fds: usize, lines: u64) -> f64 {
    // The intake's capacity, not the per-fd pace a flood is held to.
    let d = Ringlogd::start(&["--max-fds", &(fds + 10).to_string(), "--intake-rate", "0"]);
    let intake = d.path("linuxkit-external-logging.sock");
    let chunk = chunk();
    let per_chunk = (chunk.len() / LINE) as u64;
    let chunks = lines.div_ceil(per_chunk);
    let mut writers: Vec<UnixStream> = (0..fds)
        .map(|i| {
            let (ours, theirs) = UnixStream::pair().unwrap();
            pass_fd(&intake, &format!("svc{i}.out"), &theirs);
            ours
        })
        .collect();
    let start = Instant::now();
    for c in 0..chunks {
        writers[c as usize % fds].write_all(&chunk).unwrap();
    }
    drop(writers);
    let total = chunks * per_chunk;
    wait_stored(&d, total);
    let rate = total as f64 / start.elapsed().as_secs_f64();
    assert_eq!(fd_counter(&d, "dropped"), 0);
    assert_eq!(fd_counter(&d, "received"), total);
    let newest = newest_entry(&d);
    assert_eq!(newest["input"], "fd");
    assert_eq!(newest["msg"].as_str().unwrap().len(), LINE - 1, "{newest}");
    rate
}

/// Fds per second: `n` fds, each with one line, passed and closed.
fn fds_rate(n: u64) -> f64 {
    let d = Ringlogd::start(&[]);
    let intake = d.path("linuxkit-external-logging.sock");
    let sender = UnixDatagram::unbound().unwrap();
    let addr = UnixAddr::new(&intake).unwrap();
    let start = Instant::now();
    for i in 0..n {
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        ours.write_all(b"one line from a short-lived program\n")
            .unwrap();
        drop(ours);
        pass_fd_from(&sender, &addr, &format!("job{i}"), &theirs);
    }
    wait_stored(&d, n);
    let rate = n as f64 / start.elapsed().as_secs_f64();
    assert_eq!(fd_counter(&d, "dropped"), 0, "no fd refused");
    rate
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let lines: u64 = count_arg(2_000_000);
    println!("fd intake, {LINE}-byte lines, median of 3 (min..max):");
    for fds in [1, 100, 1000] {
        let (m, lo, hi) = median((0..3).map(|_| lines_rate(fds, lines)).collect());
        println!("  {fds:>5} fds open   {m:>10.0} lines/s  ({lo:.0}..{hi:.0})");
    }
    let n = 20_000;
    let (m, lo, hi) = median((0..3).map(|_| fds_rate(n)).collect());
    println!("  {n} short-lived fds, one line each: {m:>8.0} fds/s  ({lo:.0}..{hi:.0})");
}
