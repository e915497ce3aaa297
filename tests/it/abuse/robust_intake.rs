//! Abuse of the fd intake: datagrams without fds, fds by the hundred, fds
//! that are no stream (a file, a directory, a write-only end), fds that
//! never end, more than `--max-fds`, and a writer killed in the middle of a
//! line. Every case ends with [`Daemon::assert_still_serves`], and with
//! every fd the daemon took in let go once its writer is gone.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// Wait until the daemon holds no more fds than `baseline`.
fn wait_fds_back_to(d: &Daemon, baseline: usize) {
    d.wait_until(&format!("the daemon's fds back to {baseline}"), |d| {
        open_fds(d.pid()) <= baseline
    });
}

#[test]
fn datagrams_without_an_fd_are_counted_whatever_their_name() {
    let d = Daemon::start(&[]);
    let name = unique("nofd");
    d.pass_fds(name.as_bytes(), &[]);
    d.pass_fds(b"", &[]);
    d.pass_fds(&vec![b'n'; 60 << 10], &[]);
    d.pass_fds(b"\xff\x00\x1b[2J", &[]);
    d.internal_with(&name);
    d.wait_until("four counted", |d| d.fd_counter("dropped") == 4);
    // A name that long, with an fd, is cut and still logged under.
    let (mut w, theirs) = UnixStream::pair().unwrap();
    d.pass_fds(&vec![b'L'; 60 << 10], &[theirs.as_raw_fd()]);
    drop(theirs);
    w.write_all(b"under a long name\n").unwrap();
    drop(w);
    let e = d.entry_with_msg("under a long name");
    assert_eq!(e["source"].as_str().unwrap().len(), 4096);
    d.assert_still_serves();
}

#[test]
fn two_hundred_fds_in_one_datagram_are_all_read_and_let_go() {
    raise_fd_limit();
    let d = Daemon::start(&[]);
    let baseline = d.settled_fds();
    let name = unique("many");
    let (mut writers, theirs): (Vec<UnixStream>, Vec<UnixStream>) =
        (0..200).map(|_| UnixStream::pair().unwrap()).unzip();
    let raw: Vec<_> = theirs.iter().map(|s| s.as_raw_fd()).collect();
    d.pass_fds(name.as_bytes(), &raw);
    drop(theirs);
    d.wait_until("200 fds held", |d| open_fds(d.pid()) >= baseline + 200);
    for (k, w) in writers.iter_mut().enumerate() {
        w.write_all(format!("from fd {k}\n").as_bytes()).unwrap();
    }
    drop(writers);
    let mut got = d.wait_lines(&name, 200);
    got.sort();
    let mut want: Vec<String> = (0..200).map(|k| format!("from fd {k}")).collect();
    want.sort();
    assert_eq!(got, want);
    wait_fds_back_to(&d, baseline);
    assert_eq!(d.fd_counter("dropped"), 0);
    d.assert_still_serves();
}

#[test]
fn a_large_regular_file_is_read_to_its_end_without_starving_a_pipe() {
    let d = Daemon::start(&["--max-lines", "200000", "--max-bytes", "64M"]);
    let baseline = d.settled_fds();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let lines = 100_000;
    for i in 0..lines {
        writeln!(f, "file line {i:06} ....................................").unwrap();
    }
    drop(f);
    let name = unique("file");
    let file = std::fs::File::open(&path).unwrap();
    d.pass_fds(name.as_bytes(), &[file.as_raw_fd()]);
    drop(file);
    let quiet = unique("quiet");
    let mut q = d.pass_socketpair(&quiet);
    q.write_all(b"a quiet line\n").unwrap();
    drop(q);
    d.wait_until("every file line", |d| {
        d.fd_counter("stored") == lines as u64 + 1
    });
    let out = d.query_raw(format!("{{\"source\":\"{name}\",\"format\":\"cat\"}}\n").as_bytes());
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), lines);
    assert!(text
        .lines()
        .enumerate()
        .all(|(i, l)| l.starts_with(&format!("file line {i:06} "))));
    assert_eq!(d.wait_lines(&quiet, 1), ["a quiet line"]);
    wait_fds_back_to(&d, baseline);
    d.assert_still_serves();
}

#[test]
fn a_directory_is_refused_with_a_reason() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let dirfd = std::fs::File::open(dir.path()).unwrap();
    let name = unique("dir");
    d.pass_fds(name.as_bytes(), &[dirfd.as_raw_fd()]);
    let e = d.internal_with(&name);
    assert!(e["msg"].as_str().unwrap().contains("directory"), "{e}");
    assert_eq!(d.fd_counter("dropped"), 1);
    d.assert_still_serves();
}

#[test]
fn a_write_only_fd_is_refused_with_a_reason() {
    let d = Daemon::start(&[]);
    let baseline = d.settled_fds();
    let (r, w) = nix::unistd::pipe().unwrap();
    let name = unique("wronly");
    d.pass_fds(name.as_bytes(), &[w.as_raw_fd()]);
    let e = d.internal_with(&name);
    assert!(e["msg"].as_str().unwrap().contains("writing only"), "{e}");
    assert_eq!(d.fd_counter("dropped"), 1);
    // The daemon closed its copy: with ours closed too, the read end ends.
    drop(w);
    let mut buf = [0u8; 1];
    assert_eq!(nix::unistd::read(&r, &mut buf), Ok(0));
    wait_fds_back_to(&d, baseline);
    d.assert_still_serves();
}

#[test]
fn an_fd_that_never_closes_is_read_as_it_goes_and_does_not_hold_up_a_stop() {
    let d = Daemon::start(&[]);
    let name = unique("forever");
    let mut w = d.pass_socketpair(&name);
    for i in 0..3 {
        w.write_all(format!("tick {i}\n").as_bytes()).unwrap();
        assert_eq!(
            d.wait_lines(&name, i + 1).last().unwrap(),
            &format!("tick {i}")
        );
    }
    // Half a line stays pending while the writer lives.
    w.write_all(b"half a").unwrap();
    d.assert_still_serves();
    assert_eq!(d.wait_lines(&name, 3).len(), 3);
    let mut d = d;
    signal(d.pid(), "TERM");
    let status = wait_timeout(&mut d.child, Duration::from_secs(10));
    assert!(status.success(), "{status}");
    drop(w);
}

#[test]
fn more_fds_than_max_fds_are_refused_and_counted() {
    let d = Daemon::start(&["--max-fds", "4"]);
    let baseline = d.settled_fds();
    let name = unique("over");
    // Ten in ten datagrams, ten more in one: four are read.
    let mut writers = Vec::new();
    for _ in 0..10 {
        writers.push(d.pass_socketpair(&name));
    }
    let (more, theirs): (Vec<UnixStream>, Vec<UnixStream>) =
        (0..10).map(|_| UnixStream::pair().unwrap()).unzip();
    let raw: Vec<_> = theirs.iter().map(|s| s.as_raw_fd()).collect();
    d.pass_fds(name.as_bytes(), &raw);
    drop(theirs);
    writers.extend(more);
    d.wait_until("16 refused", |d| d.fd_counter("dropped") == 16);
    d.internal_with("--max-fds");
    let mut accepted = 0;
    for (k, w) in writers.iter_mut().enumerate() {
        if w.write_all(format!("writer {k}\n").as_bytes()).is_ok() {
            accepted += 1;
        }
    }
    assert!(accepted >= 4);
    drop(writers);
    let got = d.wait_lines(&name, 4);
    assert_eq!(got.len(), 4, "{got:?}");
    wait_fds_back_to(&d, baseline);
    // Room again.
    let later = unique("later");
    let mut w = d.pass_socketpair(&later);
    w.write_all(b"room again\n").unwrap();
    drop(w);
    assert_eq!(d.wait_lines(&later, 1), ["room again"]);
    d.assert_still_serves();
}

#[test]
fn a_writer_killed_in_the_middle_of_a_line_leaves_what_it_wrote() {
    let d = Daemon::start(&[]);
    let baseline = d.settled_fds();
    let name = unique("killed");
    let (ours, theirs) = UnixStream::pair().unwrap();
    d.pass_fds(name.as_bytes(), &[theirs.as_raw_fd()]);
    drop(theirs);
    // The program writes one line and half of the next, then is killed.
    let status = Command::new("sh")
        .args([
            "-c",
            "printf 'a whole line\\nhalf of a li'; kill -KILL $$; echo never",
        ])
        .stdout(Stdio::from(OwnedFd::from(ours)))
        .status()
        .unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert_eq!(d.wait_lines(&name, 2), ["a whole line", "half of a li"]);
    d.assert_ledger("fd", &[("stored", 2)]);
    wait_fds_back_to(&d, baseline);
    d.assert_still_serves();
}
