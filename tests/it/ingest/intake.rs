//! The fd intake with the clients that really use it: a Python stand-in for
//! LinuxKit's init (socket.send_fds), and raw fds of every kind: socketpair
//! ends, pipes, FIFOs, regular files, fds that cannot be read.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use crate::support::*;
use serde_json::Value;

#[test]
fn python_init_passes_200_services_and_every_line_arrives_once_in_order() {
    let (services, lines) = (200, 100);
    let d = Daemon::start(&["--max-lines", "100000", "--max-bytes", "64M"]);
    run_ok(
        Command::new(require("python3"))
            .arg(FAKE_INIT)
            .arg("services")
            .arg(&d.intake)
            .arg(services.to_string())
            .arg(lines.to_string()),
    );
    let total = services * 2 * lines;
    let entries = d.wait_for(&format!("{total} lines"), |e| {
        e.iter().filter(|v| v["input"] == "fd").count() >= total
    });
    let mut seen = std::collections::HashMap::<String, Vec<String>>::new();
    for e in entries.iter().filter(|v| v["input"] == "fd") {
        seen.entry(e["source"].as_str().unwrap().to_owned())
            .or_default()
            .push(e["msg"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen.len(), services * 2, "one source per fd");
    for i in 0..services {
        let name = format!("svc{i:03}");
        for (source, stream) in [
            (format!("onboot.{name}.out"), "out"),
            (format!("onboot.{name}"), "err"),
        ] {
            let want: Vec<String> = (0..lines).map(|j| format!("{name} {stream} {j}")).collect();
            assert_eq!(seen[&source], want, "{source}: every line once, in order");
        }
    }
    d.assert_ledger("fd", &[("received", total as u64), ("dropped", 0)]);
}

#[test]
fn crlf_empty_lines_and_a_partial_last_line() {
    let d = Daemon::start(&[]);
    let name = unique("rules");
    let mut w = d.pass_socketpair(&name);
    w.write_all(b"dos\r\n\nunix\n\r\ntwo\r\r\nlast words")
        .unwrap();
    drop(w);
    let got = d.wait_lines(&name, 6);
    assert_eq!(got, ["dos", "", "unix", "", "two\r", "last words"]);
    d.assert_ledger_balances("fd");
}

#[test]
fn a_100_kib_line_is_cut_flagged_and_counted_and_the_next_line_is_whole() {
    let d = Daemon::start(&[]);
    let name = unique("long");
    let mut w = d.pass_socketpair(&name);
    let long = "x".repeat(100 << 10);
    w.write_all(format!("before\n{long}\nafter\n").as_bytes())
        .unwrap();
    drop(w);
    d.wait_lines(&name, 3);
    let e = d.entries_of(&name);
    assert_eq!(e[0]["msg"], "before");
    assert_eq!(e[1]["msg"].as_str().unwrap().len(), 8192, "--max-line-len");
    assert_eq!(e[1]["truncated"], true);
    assert_eq!(e[2]["msg"], "after");
    assert!(e[2].get("truncated").is_none());
    // The cut-off rest is not a line of its own.
    d.assert_ledger("fd", &[("truncated", 1), ("received", 3)]);
}

/// The daemon's fds that are socket `inode`.
fn daemon_fds_on_socket(d: &Daemon, inode: u64) -> usize {
    let target = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .filter(|l| l.to_str() == Some(target.as_str()))
        .count()
}

#[test]
fn an_fd_closed_without_writing_adds_nothing_and_is_let_go() {
    use std::os::unix::fs::MetadataExt;
    let d = Daemon::start(&[]);
    let silent = unique("silent");
    let (ours, theirs) = UnixStream::pair().unwrap();
    let inode = std::fs::File::from(OwnedFd::from(theirs.try_clone().unwrap()))
        .metadata()
        .unwrap()
        .ino();
    d.pass_fds(silent.as_bytes(), &[theirs.as_raw_fd()]);
    drop(theirs);
    d.wait_until("the daemon to hold the fd", |d| {
        daemon_fds_on_socket(d, inode) == 1
    });
    drop(ours);
    d.wait_until("the daemon to close the fd", |d| {
        daemon_fds_on_socket(d, inode) == 0
    });
    assert!(d.entries_of(&silent).is_empty());
    assert!(
        !d.dump()
            .iter()
            .any(|v| v["input"] == "internal" && v["msg"].as_str().unwrap().contains(&silent)),
        "nothing to report"
    );
    assert_eq!(d.fd_counter("received"), 0);
}

#[test]
fn a_lines_time_is_when_its_last_byte_arrived() {
    let d = Daemon::start(&[]);
    let name = unique("slow");
    let mut w = d.pass_socketpair(&name);
    w.write_all(b"begun ").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let before_end = chrono::Utc::now();
    w.write_all(b"and ended\n").unwrap();
    let e = &d.wait_lines(&name, 1);
    assert_eq!(e, &["begun and ended"]);
    let entry = &d.entries_of(&name)[0];
    let time: chrono::DateTime<chrono::Utc> = entry["time"].as_str().unwrap().parse().unwrap();
    assert!(
        time >= before_end,
        "{time} is before the line ended ({before_end})"
    );
}

#[test]
fn level_prefix_sets_the_severity_only_when_asked() {
    let d = Daemon::start(&["--level-prefix"]);
    let name = unique("levels");
    let mut w = d.pass_socketpair(&name);
    w.write_all(b"<3>broken\n<7>chatty\nplain\n<8>not a level\n")
        .unwrap();
    drop(w);
    d.wait_lines(&name, 4);
    let e = d.entries_of(&name);
    assert_eq!(
        (e[0]["msg"].as_str(), e[0]["severity"].as_str()),
        (Some("broken"), Some("err"))
    );
    assert_eq!(
        (e[1]["msg"].as_str(), e[1]["severity"].as_str()),
        (Some("chatty"), Some("debug"))
    );
    assert_eq!(e[2]["msg"], "plain");
    assert!(e[2].get("severity").is_none());
    assert_eq!(e[3]["msg"], "<8>not a level");

    let d = Daemon::start(&[]);
    let mut w = d.pass_socketpair(&name);
    w.write_all(b"<3>kept as written\n").unwrap();
    drop(w);
    assert_eq!(d.wait_lines(&name, 1), ["<3>kept as written"]);
    assert!(d.entries_of(&name)[0].get("severity").is_none());
}

#[test]
fn several_fds_in_one_datagram_share_its_name_and_a_trailing_nul_is_dropped() {
    let d = Daemon::start(&[]);
    let name = unique("shared");
    let (a, a_peer) = UnixStream::pair().unwrap();
    let (b, b_peer) = UnixStream::pair().unwrap();
    d.pass_fds(
        format!("{name}\0").as_bytes(),
        &[a_peer.as_raw_fd(), b_peer.as_raw_fd()],
    );
    drop((a_peer, b_peer));
    (&a).write_all(b"from a\n").unwrap();
    (&b).write_all(b"from b\n").unwrap();
    drop((a, b));
    let mut got = d.wait_lines(&name, 2);
    got.sort();
    assert_eq!(got, ["from a", "from b"]);
}

#[test]
fn pipes_fifos_and_regular_files_are_all_read_to_their_end() {
    let d = Daemon::start(&["--max-lines", "30000", "--max-bytes", "16M"]);
    let dir = tempfile::tempdir().unwrap();

    let (r, w) = nix::unistd::pipe().unwrap();
    let pipe = unique("pipe");
    d.pass_fds(pipe.as_bytes(), &[r.as_raw_fd()]);
    drop(r);
    nix::unistd::write(&w, b"through a pipe\n").unwrap();
    drop(w);

    let fifo_path = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let r = std::fs::File::options()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&fifo_path)
        .unwrap();
    let mut w = std::fs::File::options()
        .write(true)
        .open(&fifo_path)
        .unwrap();
    let fifo = unique("fifo");
    d.pass_fds(fifo.as_bytes(), &[r.as_raw_fd()]);
    drop(r);
    w.write_all(b"through a fifo\n").unwrap();
    drop(w);

    // A file larger than what one fd gets per turn: read in steps.
    let file_path = dir.path().join("file");
    let text: String = (0..20_000).map(|i| format!("file line {i}\n")).collect();
    std::fs::write(&file_path, &text).unwrap();
    let f = std::fs::File::open(&file_path).unwrap();
    let file = unique("file");
    d.pass_fds(file.as_bytes(), &[f.as_raw_fd()]);
    drop(f);

    assert_eq!(d.wait_lines(&pipe, 1), ["through a pipe"]);
    assert_eq!(d.wait_lines(&fifo, 1), ["through a fifo"]);
    let lines = d.wait_lines(&file, 20_000);
    assert_eq!(lines.len(), 20_000);
    assert!(lines
        .iter()
        .enumerate()
        .all(|(i, l)| *l == format!("file line {i}")));
    d.assert_ledger_balances("fd");
}

#[test]
fn a_datagram_without_an_fd_is_counted_and_reported() {
    let d = Daemon::start(&[]);
    let name = unique("nofd");
    d.pass_fds(name.as_bytes(), &[]);
    let e = d.internal_with(&name);
    assert_eq!(e["source"], "memlogd");
    assert_eq!(e["severity"], "warning");
    assert!(e["msg"].as_str().unwrap().contains("no fd"), "{e}");
    d.assert_ledger("fd", &[("received", 1), ("dropped", 1)]);
    // The intake goes on.
    let ok = unique("after");
    let mut w = d.pass_socketpair(&ok);
    w.write_all(b"still here\n").unwrap();
    drop(w);
    assert_eq!(d.wait_lines(&ok, 1), ["still here"]);
}

#[test]
fn fds_that_cannot_be_read_are_refused_with_a_reason() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let wronly = std::fs::File::create(dir.path().join("out")).unwrap();
    let name = unique("wronly");
    d.pass_fds(name.as_bytes(), &[wronly.as_raw_fd()]);
    let e = d.internal_with(&name);
    assert!(e["msg"].as_str().unwrap().contains("writing only"), "{e}");

    let dirfd = std::fs::File::open(dir.path()).unwrap();
    let name = unique("dir");
    d.pass_fds(name.as_bytes(), &[dirfd.as_raw_fd()]);
    let e = d.internal_with(&name);
    assert!(e["msg"].as_str().unwrap().contains("directory"), "{e}");

    d.assert_ledger("fd", &[("dropped", 2)]);
}

#[test]
fn fds_past_max_fds_are_refused_and_counted_and_the_others_go_on() {
    let d = Daemon::start(&["--max-fds", "2"]);
    let names: Vec<String> = (0..3).map(|i| unique(&format!("fd{i}"))).collect();
    let mut writers: Vec<UnixStream> = names.iter().map(|n| d.pass_socketpair(n)).collect();
    let e = d.internal_with(&names[2]);
    assert!(e["msg"].as_str().unwrap().contains("--max-fds"), "{e}");
    assert_eq!(d.fd_counter("dropped"), 1);
    // The refused fd was closed: its writer finds nobody reading.
    let mut refused = writers.pop().unwrap();
    refused
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(
        refused.write_all(&[b'x'; 1 << 20]).is_err(),
        "the refused fd was not closed"
    );
    for (w, n) in writers.iter_mut().zip(&names) {
        w.write_all(format!("{n} works\n").as_bytes()).unwrap();
    }
    for n in &names[..2] {
        assert_eq!(d.wait_lines(n, 1), [format!("{n} works")]);
    }
    assert_eq!(
        d.stats()["open"]["intake_fds_open"],
        2,
        "stats say what is open"
    );
    // Once one is done there is room again, as soon as the daemon has seen
    // its end: until then a new fd is refused (and counted), so retry.
    drop(writers.remove(0));
    let later = unique("later");
    for attempt in 1.. {
        let dropped_before = d.fd_counter("dropped");
        let mut w = d.pass_socketpair(&later);
        let _ = w.write_all(b"room again\n");
        drop(w);
        d.wait_until("the new fd read or refused", |d| {
            d.fd_counter("dropped") > dropped_before || !d.entries_of(&later).is_empty()
        });
        if !d.entries_of(&later).is_empty() {
            break;
        }
        assert!(attempt < 100, "no room after an fd closed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(d.wait_lines(&later, 1), ["room again"]);
    d.assert_ledger_balances("fd");
}

#[test]
fn one_noisy_fd_does_not_starve_a_quiet_one() {
    let noise_lines = 300_000;
    // The per-turn budget is what keeps the quiet fd served: no rate limit
    // (which would pause the noise and hide the budget).
    let d = Daemon::start(&[
        "--max-lines",
        "400000",
        "--max-bytes",
        "256M",
        "--intake-rate",
        "0",
    ]);
    let noisy = unique("noisy");
    let w = d.pass_socketpair(&noisy);
    let writer = std::thread::spawn(move || {
        let mut w = std::io::BufWriter::with_capacity(64 << 10, w);
        for i in 0..noise_lines {
            writeln!(w, "noise {i:08} ................................").unwrap();
        }
    });
    // Once the noise flows, a quiet program says one line.
    d.wait_until("the noise to start", |d| d.fd_counter("stored") > 1000);
    let quiet = unique("quiet");
    let mut q = d.pass_socketpair(&quiet);
    q.write_all(b"a quiet line\n").unwrap();
    drop(q);
    writer.join().unwrap();
    d.wait_until("every line", |d| d.fd_counter("stored") == noise_lines + 1);
    let entries = d.dump();
    let last = |source: &str| entries.iter().rposition(|v| v["source"] == source).unwrap();
    assert!(
        last(&quiet) < last(&noisy),
        "the quiet line waited until the noise was over"
    );
    d.assert_ledger_balances("fd");
}

#[test]
fn fds_lost_in_a_cut_control_message_are_counted_and_reported() {
    let d = Daemon::start(&[]);
    // Leave the daemon room for two more fds only: the kernel installs what
    // fits, cuts the control message and closes the rest.
    let open = std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .unwrap()
        .count();
    let limit = open + 2;
    run_ok(Command::new(require("prlimit")).args([
        "--pid",
        &d.pid().to_string(),
        &format!("--nofile={limit}:"),
    ]));
    let name = unique("many");
    let mut writers = Vec::new();
    let mut theirs: Vec<OwnedFd> = Vec::new();
    for i in 0..20 {
        let (ours, peer) = UnixStream::pair().unwrap();
        (&ours).write_all(format!("line {i}\n").as_bytes()).unwrap();
        writers.push(ours);
        theirs.push(peer.into());
    }
    drop(writers);
    let raw: Vec<_> = theirs.iter().map(|f| f.as_raw_fd()).collect();
    d.pass_fds(name.as_bytes(), &raw);
    drop(theirs);
    // While it holds as many fds as it may, the daemon refuses a query
    // (it is out of fds): it may close the connection before the request
    // is even written, so a failed write or read just means ask again.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = UnixStream::connect(&d.query).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut out = Vec::new();
        let asked = c.write_all(b"{\"mode\":\"stats\"}\n").is_ok()
            && std::io::Read::read_to_end(&mut c, &mut out).is_ok();
        if asked && out.first() == Some(&b'{') {
            let stats: Value = serde_json::from_slice(&out).unwrap();
            if stats["inputs"]["fd"]["dropped"] == 1 {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the loss was never counted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let e = d.internal_with(&name);
    assert!(e["msg"].as_str().unwrap().contains("lost"), "{e}");
    let got = d.wait_lines(&name, 1);
    assert!(
        (1..20).contains(&got.len()),
        "the fds that fit are read, the others lost: {got:?}"
    );
    d.assert_ledger("fd", &[("dropped", 1)]);
}

#[test]
fn a_burst_of_short_lived_programs_beyond_max_fds_is_read_without_refusals() {
    // Each fd carries one line and its end: however fast they come, the
    // daemon closes them as it takes them in, so --max-fds is never hit.
    let d = Daemon::start(&["--max-fds", "200", "--max-lines", "10000"]);
    let n = 3000;
    for i in 0..n {
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        ours.write_all(format!("job {i} done\n").as_bytes())
            .unwrap();
        drop(ours);
        d.pass_fds(format!("job{i}").as_bytes(), &[theirs.as_raw_fd()]);
    }
    d.wait_until("every line", |d| d.fd_counter("received") >= n);
    d.assert_ledger("fd", &[("stored", n), ("dropped", 0)]);
}
