//! The benchmark: ringlogd against the raw socket limit and against the
//! peers a user would pick instead, in one run on one machine, as ratios.
//!
//! `tests/bench.sh` installs busybox and rsyslog when missing, builds in
//! release mode and runs this; `--quick` runs every part once with small
//! counts, to check that it works (CI does that), not to measure.
//!
//! The corpus part (`bench/corpus.rs`) replays real log files to measure
//! bytes per entry with and without compression, ingest of real datagrams
//! and a full dump of a ring of a million real entries, against the goals
//! of issue 11. `--corpus DIR` (or `$RINGLOGD_CORPUS`) says where the files
//! are; the default is `../shared/corpus` beside the source tree.
//! `--corpus-only` runs just that part, at the machine's queue length.
//!
//! Every rate is the median of several repetitions, with the range. Counts
//! are checked: a run that loses a message it cannot account for fails.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "bench/capture.rs"]
mod capture;
mod common;
#[path = "bench/corpus.rs"]
mod corpus;
#[path = "bench/metrics.rs"]
mod metrics;
use common::pass_fd;

struct Opts {
    quick: bool,
    reps: usize,
    n: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    // Only the corpus figures (issue 11's goals), at the queue length the
    // machine has: much shorter than the whole run.
    let corpus_only = args.iter().any(|a| a == "--corpus-only");
    let opts = Opts {
        quick,
        reps: if quick { 1 } else { 5 },
        n: if quick { 20_000 } else { 1_000_000 },
    };
    let bins = Bins::find();
    let corpus = corpus::Corpus::load(&corpus::dir(&args));
    println!(
        "ringlogd benchmark ({}), {} cores",
        if quick {
            "quick smoke run: figures are not measurements"
        } else {
            "full"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let qlen_path = "/proc/sys/net/unix/max_dgram_qlen";
    let original = std::fs::read_to_string(qlen_path)
        .unwrap_or_default()
        .trim()
        .to_owned();
    // Only follow latency (at 100 k msg/s and at half the raw limit), at
    // the machine's queue length.
    if args.iter().any(|a| a == "--follow-only") {
        let raw = repeat(opts.reps, || raw_limit(opts.n, 100, 1));
        follow_latency(&opts, &bins, raw.median);
        return;
    }
    // Only the dump table: with RINGLOGD_BIN_DIR, to hold two builds of
    // logread against each other in turn.
    if args.iter().any(|a| a == "--dump-only") {
        dump_table(&opts, &bins);
        return;
    }
    // Only the /dev/log ingest table, at the machine's queue length: with
    // RINGLOGD_BIN_DIR, to hold two builds against each other in turn.
    if args.iter().any(|a| a == "--devlog-only") {
        println!("\n## net.unix.max_dgram_qlen = {original}");
        ingest_table(&opts, &bins);
        return;
    }
    // Only ingest with and without captures (issue 18).
    if args.iter().any(|a| a == "--capture-only") {
        capture::capture_rows(&opts, &bins);
        return;
    }
    // Only ingest with and without scrapes (issue 19).
    if args.iter().any(|a| a == "--scrape-only") {
        metrics::scrape_rows(&opts, &bins);
        return;
    }
    // Only the corpus ingest rows: for working on the ingest path.
    if args.iter().any(|a| a == "--ingest-only") {
        println!("\n## net.unix.max_dgram_qlen = {original}");
        ingest_header();
        corpus::ingest_rows(&opts, &bins, &corpus, &original);
        return;
    }
    // Bytes per entry of other logs than the corpus (every *.log in DIR),
    // in rings of the given sizes (default: 4M and 64M).
    if let Some(i) = args.iter().position(|a| a == "--other-logs") {
        let dir = PathBuf::from(args.get(i + 1).expect("--other-logs DIR"));
        let sizes: Vec<&str> = match args.iter().position(|a| a == "--max-bytes") {
            Some(j) => vec![args.get(j + 1).expect("--max-bytes SIZE").as_str()],
            None => vec!["4M", "64M"],
        };
        for size in sizes {
            corpus::other_logs(&bins, &dir, size);
            println!();
        }
        return;
    }
    // Only the bytes-per-entry table and its goals: deterministic, for
    // working on the storage.
    if args.iter().any(|a| a == "--bytes-only") {
        let rows = corpus::bytes_table(&opts, &bins, &corpus);
        println!();
        corpus::bytes_goals(&rows);
        return;
    }
    if corpus_only {
        println!("\n## net.unix.max_dgram_qlen = {original}");
        ingest_header();
        let ingest = [corpus::ingest_rows(&opts, &bins, &corpus, &original)];
        println!();
        let dump = corpus::dump_row(&opts, &bins, &corpus);
        println!();
        let rows = corpus::bytes_table(&opts, &bins, &corpus);
        println!();
        corpus::goals(&opts, &corpus, &rows, &ingest, dump);
        return;
    }
    let settings: Vec<String> = if can_write(qlen_path) && !quick {
        vec!["10".into(), "512".into()]
    } else {
        vec![original.clone()]
    };
    let mut ingest = Vec::new();
    for q in &settings {
        if *q != original {
            std::fs::write(qlen_path, q).expect("set max_dgram_qlen");
        }
        println!("\n## net.unix.max_dgram_qlen = {q}");
        let raw = ingest_table(&opts, &bins);
        ingest.push(corpus::ingest_rows(&opts, &bins, &corpus, q));
        follow_latency(&opts, &bins, raw);
        if *q != original {
            std::fs::write(qlen_path, &original).expect("restore max_dgram_qlen");
        }
    }
    println!();
    intake_row(&opts, &bins);
    println!();
    metrics::scrape_rows(&opts, &bins);
    println!();
    capture::capture_rows(&opts, &bins);
    println!();
    dump_table(&opts, &bins);
    let dump = corpus::dump_row(&opts, &bins, &corpus);
    println!();
    memory(&opts, &bins);
    println!();
    let rows = corpus::bytes_table(&opts, &bins, &corpus);
    println!();
    corpus::goals(&opts, &corpus, &rows, &ingest, dump);
}

fn can_write(p: &str) -> bool {
    std::fs::OpenOptions::new().write(true).open(p).is_ok()
}

/// The programs the benchmark runs.
struct Bins {
    ringlogd: PathBuf,
    logread: PathBuf,
    busybox: Option<PathBuf>,
    rsyslogd: Option<PathBuf>,
}

impl Bins {
    fn find() -> Bins {
        let ringlogd = common::bin("ringlogd");
        assert!(
            ringlogd.exists(),
            "build the daemon first: cargo build --release"
        );
        Bins {
            logread: common::bin("logread"),
            ringlogd,
            busybox: which("busybox"),
            rsyslogd: std::env::var_os("RSYSLOGD")
                .map(PathBuf::from)
                .or_else(|| which("rsyslogd")),
        }
    }
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// `size` bytes of RFC 3164, numbered.
fn message(i: usize, size: usize) -> Vec<u8> {
    let mut m = format!("<13>Nov 21 23:40:10 bench[42]: message {i:08} ").into_bytes();
    m.resize(size, b'x');
    m
}

/// Send `n` datagrams of `size` bytes to `path` from `senders` threads,
/// each over its own connected socket; blocks while the receiver is full.
fn send_all(path: &Path, n: usize, size: usize, senders: usize) {
    let msgs: Vec<Vec<u8>> = (0..1000).map(|i| message(i, size)).collect();
    send_msgs(path, n, &msgs, senders);
}

/// Send `n` datagrams to `path`, going round `msgs`, from `senders`
/// threads, each over its own connected socket; blocks while the receiver
/// is full.
fn send_msgs(path: &Path, n: usize, msgs: &[Vec<u8>], senders: usize) {
    std::thread::scope(|s| {
        for t in 0..senders {
            s.spawn(move || {
                let sock = UnixDatagram::unbound().unwrap();
                sock.connect(path).unwrap();
                let count = n / senders + usize::from(t < n % senders);
                for i in 0..count {
                    sock.send(&msgs[i % msgs.len()]).unwrap();
                }
            });
        }
    });
}

#[derive(Clone, Copy)]
struct Figure {
    median: f64,
    min: f64,
    max: f64,
}

impl Figure {
    fn show(&self) -> String {
        format!(
            "{:>9} ({}..{})",
            human(self.median),
            human(self.min),
            human(self.max)
        )
    }
}

fn median(mut v: Vec<f64>) -> Figure {
    v.sort_by(f64::total_cmp);
    Figure {
        median: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
    }
}

fn human(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.0} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn repeat(reps: usize, mut f: impl FnMut() -> f64) -> Figure {
    median((0..reps).map(|_| f()).collect())
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

// ---- the daemon under test ----

struct Ringlogd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Ringlogd {
    fn start(bins: &Bins, args: &[&str]) -> Ringlogd {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(&bins.ringlogd);
        cmd.arg("--runtime-dir").arg(dir.path());
        if supports(&bins.ringlogd, "--no-kmsg") {
            cmd.arg("--no-kmsg");
        }
        let child = cmd.args(args).stdin(Stdio::null()).spawn().unwrap();
        let d = Ringlogd { child, dir };
        while UnixStream::connect(d.query()).is_err() {
            std::thread::sleep(Duration::from_millis(5));
        }
        d
    }

    /// Nanoseconds on a CPU per entry for `n` entries stored: the event
    /// loop (the main thread) and the compressor thread, once the
    /// compressor has caught up (its time stops growing).
    fn cpu_per_entry(&self, n: usize) -> (f64, f64) {
        let pid = self.child.id();
        let read = || {
            let (mut main, mut zstd) = (0u64, 0u64);
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
            for t in tasks.flatten() {
                let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
                let ns = schedstat_ns(&t.path());
                if t.file_name().to_string_lossy() == pid.to_string() {
                    main += ns;
                } else if comm.trim() == "ring-zstd" {
                    zstd += ns;
                }
            }
            (main, zstd)
        };
        let mut last = read();
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let now = read();
            if now.1 == last.1 {
                break;
            }
            last = now;
        }
        (last.0 as f64 / n as f64, last.1 as f64 / n as f64)
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    fn query(&self) -> PathBuf {
        self.dir.path().join("memlogdq.sock")
    }

    fn intake(&self) -> PathBuf {
        self.dir.path().join("linuxkit-external-logging.sock")
    }

    fn stats(&self) -> Value {
        let mut c = UnixStream::connect(self.query()).unwrap();
        c.write_all(b"{\"mode\":\"stats\"}\n").unwrap();
        let mut out = Vec::new();
        c.read_to_end(&mut out).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    /// Wait until `n` syslog messages are stored; fail on any loss.
    fn wait_stored(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let s = self.stats();
            let c = &s["inputs"]["syslog"];
            let (received, stored, dropped) = (
                c["received"].as_u64().unwrap(),
                c["stored"].as_u64().unwrap(),
                c["dropped"].as_u64().unwrap(),
            );
            assert_eq!(received, stored + dropped, "unaccounted loss: {c}");
            assert_eq!(dropped, 0, "messages dropped: {c}");
            if stored >= n as u64 {
                assert_eq!(stored, n as u64, "more stored than sent: {c}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "ringlogd stored only {stored} of {n}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }

    /// Proportional set size: shared library pages divided among the
    /// processes that map them.
    fn pss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", self.child.id()))
            .unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix("Pss:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Ringlogd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn supports(bin: &Path, flag: &str) -> bool {
    Command::new(bin)
        .arg("--help")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(flag))
        .unwrap_or(false)
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

// ---- ingest ----

fn raw_limit(n: usize, size: usize, senders: usize) -> f64 {
    let msgs: Vec<Vec<u8>> = (0..1000).map(|i| message(i, size)).collect();
    raw_limit_msgs(n, &msgs, senders)
}

/// Datagrams per second into a receiver that only calls `recv()`.
fn raw_limit_msgs(n: usize, msgs: &[Vec<u8>], senders: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.sock");
    let rx = UnixDatagram::bind(&path).unwrap();
    let _ = socket2::SockRef::from(&rx).set_recv_buffer_size(4 << 20);
    let start = Instant::now();
    let t = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        for _ in 0..n {
            rx.recv(&mut buf).unwrap();
        }
    });
    send_msgs(&path, n, msgs, senders);
    t.join().unwrap();
    n as f64 / start.elapsed().as_secs_f64()
}

/// The same datagrams into a loop that receives them with ringlogd's own
/// `/dev/log` receive (SO_PASSCRED, `recvmmsg` in batches, credentials
/// read, waiting in `poll` when the socket is empty) and stores nothing:
/// the most a syslog daemon that knows its senders can take from one
/// sender on this machine, before it parses or keeps anything.
fn creds_ceiling_msgs(n: usize, msgs: &[Vec<u8>]) -> f64 {
    use nix::libc;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("creds.sock");
    let rx = UnixDatagram::bind(&path).unwrap();
    let _ = socket2::SockRef::from(&rx).set_recv_buffer_size(4 << 20);
    nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::PassCred, &true).unwrap();
    let start = Instant::now();
    let t = std::thread::spawn(move || {
        let mut batch = ringlogd::source::devlog::receive_batch().unwrap();
        let mut got = 0;
        while got < n {
            match batch.recv(rx.as_raw_fd()) {
                Ok(0) => {
                    let mut ready = libc::pollfd {
                        fd: rx.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one pollfd, live for the call.
                    unsafe { libc::poll(&mut ready, 1, -1) };
                }
                Ok(k) => got += k,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => panic!("recvmmsg: {e}"),
            }
        }
    });
    send_msgs(&path, n, msgs, 1);
    t.join().unwrap();
    n as f64 / start.elapsed().as_secs_f64()
}

/// Where the CPU goes while ringlogd stores datagrams from one sender, in
/// nanoseconds per message.
struct CpuSplit {
    sender: f64,
    /// The daemon's event loop: receiving, parsing, storing.
    daemon_loop: f64,
    /// Its other threads (the compressor).
    daemon_other: f64,
    rate: f64,
}

/// User plus system CPU seconds of each thread of `pid`, the main one first.
fn thread_cpu(pid: u32) -> (f64, f64) {
    let tick = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let (mut main, mut other) = (0.0, 0.0);
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0.0, 0.0);
    };
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let Some(after) = stat.rsplit_once(')').map(|(_, a)| a) else {
            continue;
        };
        let f: Vec<&str> = after.split_whitespace().collect();
        // Fields 14 and 15 of the line; the 12th and 13th after the name.
        let ticks: f64 = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
        if t.file_name().to_str() == Some(&pid.to_string()) {
            main += ticks / tick;
        } else {
            other += ticks / tick;
        }
    }
    (main, other)
}

/// This thread's user plus system CPU seconds.
fn own_thread_cpu() -> f64 {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD).unwrap();
    let s = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    s(u.user_time()) + s(u.system_time())
}

/// One ringlogd ingest run of `n` datagrams with the CPU of every party.
fn ingest_cpu(bins: &Bins, n: usize, msgs: &[Vec<u8>], args: &[&str]) -> CpuSplit {
    let lines = (n + 10).to_string();
    let d = Ringlogd::start(
        bins,
        &[&["--max-lines", &lines, "--max-bytes", "4G"], args].concat(),
    );
    let pid = d.child.id();
    let before = thread_cpu(pid);
    let start = Instant::now();
    let path = d.log();
    let sender = std::thread::scope(|s| {
        s.spawn(|| {
            let sock = UnixDatagram::unbound().unwrap();
            sock.connect(&path).unwrap();
            let cpu = own_thread_cpu();
            for i in 0..n {
                sock.send(&msgs[i % msgs.len()]).unwrap();
            }
            own_thread_cpu() - cpu
        })
        .join()
        .unwrap()
    });
    d.wait_stored(n);
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let after = thread_cpu(pid);
    let per = |secs: f64| secs * 1e9 / n as f64;
    CpuSplit {
        sender: per(sender),
        daemon_loop: per(after.0 - before.0),
        daemon_other: per(after.1 - before.1),
        rate,
    }
}

fn ringlogd_ingest(bins: &Bins, n: usize, size: usize, senders: usize) -> f64 {
    let msgs: Vec<Vec<u8>> = (0..1000).map(|i| message(i, size)).collect();
    ringlogd_ingest_msgs(bins, n, &msgs, senders, &[])
}

/// Messages per second stored by a daemon started with `args` (beside a
/// ring big enough to evict nothing), timed until its stats count all `n`.
fn ringlogd_ingest_msgs(
    bins: &Bins,
    n: usize,
    msgs: &[Vec<u8>],
    senders: usize,
    args: &[&str],
) -> f64 {
    ringlogd_ingest_then(bins, n, msgs, senders, args, |_| ())
}

/// [`ringlogd_ingest_msgs`], then `then` with the daemon, before it stops.
fn ringlogd_ingest_then(
    bins: &Bins,
    n: usize,
    msgs: &[Vec<u8>],
    senders: usize,
    args: &[&str],
    then: impl FnOnce(&Ringlogd),
) -> f64 {
    let lines = (n + 10).to_string();
    let d = Ringlogd::start(
        bins,
        &[&["--max-lines", &lines, "--max-bytes", "4G"], args].concat(),
    );
    let start = Instant::now();
    send_msgs(&d.log(), n, msgs, senders);
    d.wait_stored(n);
    let rate = n as f64 / start.elapsed().as_secs_f64();
    then(&d);
    rate
}

/// A peer daemon that writes to `/dev/log`, run in a private mount
/// namespace whose /dev is a temp dir, so the host's /dev is never touched.
fn in_private_dev(dir: &Path, command: &str) -> Option<Child> {
    Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount --bind {} /dev && exec {command}",
            dir.display()
        ))
        .stdin(Stdio::null())
        .spawn()
        .ok()
}

/// [`send_all`] from one sender, then a final marker, returned: a peer has
/// taken everything once the marker shows.
fn send_all_then_marker(path: &Path, n: usize, size: usize) -> String {
    send_all(path, n, size, 1);
    let marker = format!("bench-end-{}", std::process::id());
    UnixDatagram::unbound()
        .unwrap()
        .send_to(
            format!("<13>Nov 21 23:40:10 bench: {marker}").as_bytes(),
            path,
        )
        .unwrap();
    marker
}

/// busybox syslogd -C (a 1 MiB shared-memory ring) with its /dev/log in
/// `dir`, once that is there: the child and the socket.
fn start_busybox(busybox: &Path, dir: &Path) -> Option<(Child, PathBuf)> {
    let mut child = in_private_dev(dir, &format!("{} syslogd -n -C1024", busybox.display()))?;
    let log = dir.join("log");
    if !wait_until(Duration::from_secs(5), || log.exists()) {
        let _ = child.kill();
        return None;
    }
    Some((child, log))
}

/// busybox syslogd -C (shared-memory ring). Timed until a final marker
/// shows in `busybox logread`.
fn busybox_ingest(busybox: &Path, n: usize, size: usize) -> Option<f64> {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, log) = start_busybox(busybox, dir.path())?;
    let start = Instant::now();
    let marker = send_all_then_marker(&log, n, size);
    let done = wait_until(Duration::from_secs(120), || {
        Command::new(busybox)
            .arg("logread")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&marker))
    });
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    done.then_some(rate)
}

/// rsyslogd (imuxsock into omfile) with a private config in a temp dir.
/// Timed until a final marker is in its file; the file's lines are counted.
fn rsyslog_ingest(rsyslogd: &Path, n: usize, size: usize) -> Option<f64> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("work")).unwrap();
    let conf = d.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{work}\")\n\
             module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imuxsock\" Socket=\"{sock}\" CreatePath=\"on\")\n\
             *.* action(type=\"omfile\" file=\"{out}\")\n",
            work = d.join("work").display(),
            sock = d.join("in.sock").display(),
            out = d.join("out.log").display(),
        ),
    )
    .unwrap();
    let mut child = Command::new(rsyslogd)
        .arg("-n")
        .arg("-f")
        .arg(&conf)
        .arg("-i")
        .arg(d.join("rs.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let sock = d.join("in.sock");
    if !wait_until(Duration::from_secs(10), || sock.exists()) {
        let _ = child.kill();
        return None;
    }
    let start = Instant::now();
    let marker = send_all_then_marker(&sock, n, size);
    let out = d.join("out.log");
    let done = wait_until(Duration::from_secs(300), || tail_contains(&out, &marker));
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    if done {
        let lines = BufReader::new(std::fs::File::open(&out).unwrap())
            .lines()
            .filter(|l| l.as_ref().is_ok_and(|l| l.contains("bench[42]")))
            .count();
        assert_eq!(lines, n, "rsyslog wrote {lines} of {n}");
    }
    done.then_some(rate)
}

fn tail_contains(path: &Path, needle: &str) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    s.contains(needle)
}

fn row(name: &str, f: Figure, raw: f64) {
    println!("{name:<46} {:>28}  {:>6.2}", f.show(), f.median / raw);
}

/// The daemon's CPU per entry stored, by thread: the event loop against
/// the compressor, which must stay under a quarter of the loop's.
fn cpu_row(runs: &[(f64, f64)]) {
    if runs.is_empty() {
        return;
    }
    let mid = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let lp = mid(runs.iter().map(|r| r.0).collect());
    let zstd = mid(runs.iter().map(|r| r.1).collect());
    println!(
        "{:<46} {:>28}  compressor = {:.2} × loop",
        "  CPU per entry (median)",
        format!("loop {lp:.0} ns, compressor {zstd:.0} ns"),
        zstd / lp
    );
}

fn ingest_header() {
    println!(
        "{:<46} {:>28}  {:>6}",
        "ingest, messages per second", "median (min..max)", "× raw"
    );
}

/// The ingest rows for the current max_dgram_qlen; returns the raw limit
/// of one sender of 100-byte datagrams.
fn ingest_table(o: &Opts, bins: &Bins) -> f64 {
    ingest_header();
    let mut raw100 = 0.0;
    for size in [100, 1000] {
        let n = if size == 1000 { o.n / 2 } else { o.n };
        let raw = repeat(o.reps, || raw_limit(n, size, 1));
        if size == 100 {
            raw100 = raw.median;
        }
        row(
            &format!("raw recv() limit, 1 sender, {size} B"),
            raw,
            raw.median,
        );
        let mut cpu = Vec::new();
        let ours = repeat(o.reps, || {
            let msgs: Vec<Vec<u8>> = (0..1000).map(|i| message(i, size)).collect();
            ringlogd_ingest_then(bins, n, &msgs, 1, &[], |d| cpu.push(d.cpu_per_entry(n)))
        });
        row(
            &format!("ringlogd /dev/log, 1 sender, {size} B"),
            ours,
            raw.median,
        );
        cpu_row(&cpu);
        if size != 100 {
            continue;
        }
        let raw4 = repeat(o.reps, || raw_limit(n, size, 4));
        row("raw recv() limit, 4 senders, 100 B", raw4, raw.median);
        let ours4 = repeat(o.reps, || ringlogd_ingest(bins, n, size, 4));
        row("ringlogd /dev/log, 4 senders, 100 B", ours4, raw.median);
        let peer = |name: &str, runs: Vec<f64>| {
            if runs.is_empty() {
                println!("{name}: did not run (unshare and rsyslogd need root)");
            } else {
                let f = median(runs);
                row(name, f, raw.median);
                println!(
                    "{:<46} {:>28}  ringlogd = {:.2} × this",
                    "",
                    "",
                    ours.median / f.median
                );
            }
        };
        match &bins.busybox {
            Some(bb) => peer(
                "busybox syslogd -C, 1 sender, 100 B",
                (0..o.reps)
                    .filter_map(|_| busybox_ingest(bb, n, size))
                    .collect(),
            ),
            None => println!("busybox: not installed (tests/bench.sh installs it)"),
        }
        match &bins.rsyslogd {
            Some(rs) => peer(
                "rsyslogd imuxsock → omfile, 1 sender, 100 B",
                (0..o.reps.min(3))
                    .filter_map(|_| rsyslog_ingest(rs, n, size))
                    .collect(),
            ),
            None => println!("rsyslogd: not installed (tests/bench.sh installs it)"),
        }
    }
    raw100
}

// ---- fd intake ----

fn intake_row(o: &Opts, bins: &Bins) {
    const FDS: usize = 64;
    let per_fd = if o.quick { 2_000 } else { 40_000 };
    let n = FDS * per_fd;
    // One 100-byte line, repeated: what a chatty service writes.
    let mut line =
        b"2026-11-21T23:40:10Z level=info msg=\"request served\" path=/api/v1/items status=200"
            .to_vec();
    line.resize(99, b' ');
    line.push(b'\n');
    let block: Vec<u8> = line.repeat(640);
    let f = repeat(o.reps, || {
        let d = Ringlogd::start(
            bins,
            &["--max-lines", &(n + 10).to_string(), "--max-bytes", "4G"],
        );
        let intake = d.intake();
        let mut writers = Vec::new();
        for i in 0..FDS {
            let (ours, theirs) = UnixStream::pair().unwrap();
            pass_fd(&intake, &format!("svc{i}.out"), &theirs);
            writers.push(ours);
        }
        let start = Instant::now();
        std::thread::scope(|s| {
            for group in writers.chunks_mut(FDS / 4) {
                let block = &block;
                s.spawn(move || {
                    for _ in 0..per_fd / 640 {
                        for w in group.iter_mut() {
                            w.write_all(block).unwrap();
                        }
                    }
                });
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let c = &d.stats()["inputs"]["fd"];
            // No "fd" counters yet: nothing read so far.
            assert_eq!(c["dropped"].as_u64().unwrap_or(0), 0, "lines dropped: {c}");
            if c["stored"].as_u64().unwrap_or(0) >= (per_fd / 640 * 640 * FDS) as u64 {
                break;
            }
            assert!(Instant::now() < deadline, "intake stored too little: {c}");
            std::thread::sleep(Duration::from_millis(1));
        }
        (per_fd / 640 * 640 * FDS) as f64 / start.elapsed().as_secs_f64()
    });
    println!(
        "{:<46} {:>28}",
        format!("ringlogd fd intake, {FDS} fds, lines per second"),
        f.show()
    );
}

// ---- dump ----

/// Entries per second of one run of the reader `command` makes, printing
/// `entries` to /dev/null, timed as a user would run it (`logread >
/// /dev/null`).
fn dump_once(entries: usize, mut command: Command) -> f64 {
    let null = std::fs::File::create("/dev/null").unwrap();
    let start = Instant::now();
    let status = command.stdout(null).status().unwrap();
    assert!(status.success());
    entries as f64 / start.elapsed().as_secs_f64()
}

/// The rates of `reps` runs of [`dump_once`].
fn dump_rate(reps: usize, entries: usize, command: impl Fn() -> Command) -> Figure {
    repeat(reps, || dump_once(entries, command()))
}

/// Timed in rounds: each round runs busybox `logread` and then every
/// format once, so a change in the machine's speed during the table (a
/// virtual machine's CPU can slow by half for minutes) falls on all rows
/// alike, and each ratio compares runs seconds apart.
fn dump_table(o: &Opts, bins: &Bins) {
    let n = if o.quick { 20_000 } else { 100_000 };
    println!(
        "dump of a full ring of 100-byte entries to /dev/null, entries per second, and the \
         ratio to busybox logread in this run (each round times every row once)"
    );
    let dir = tempfile::tempdir().unwrap();
    let busybox = bins.busybox.as_deref().and_then(|bb| {
        let (child, log) = start_busybox(bb, dir.path())?;
        send_all(&log, 20_000, 100, 1);
        std::thread::sleep(Duration::from_millis(300));
        let out = Command::new(bb).arg("logread").output().unwrap();
        let held = out.stdout.iter().filter(|&&b| b == b'\n').count();
        Some((bb, child, held))
    });
    let d = Ringlogd::start(bins, &["--max-lines", &n.to_string(), "--max-bytes", "1G"]);
    // With the daemon's own start entry, the ring then holds exactly n.
    send_all(&d.log(), n - 1, 100, 1);
    d.wait_stored(n - 1);
    let formats: Vec<&str> = ringlogd::view::format::Format::NAMES.split(", ").collect();
    let logread = |format: &str| {
        let mut c = Command::new(&bins.logread);
        c.arg("--socket").arg(d.query()).args(["-o", format]);
        c
    };
    for format in &formats {
        let out = logread(format).output().unwrap();
        let lines = out.stdout.iter().filter(|&&b| b == b'\n').count();
        assert_eq!(lines, n, "the dump gave {lines} lines");
    }
    let mut busybox_rates = Vec::new();
    let mut rates = vec![Vec::new(); formats.len()];
    let mut cpu = vec![Vec::new(); formats.len()];
    let pid = d.child.id();
    for _ in 0..o.reps {
        if let Some((bb, _, held)) = &busybox {
            let mut c = Command::new(bb);
            c.arg("logread");
            busybox_rates.push(dump_once(*held, c));
        }
        for ((format, rates), cpu) in formats.iter().zip(&mut rates).zip(&mut cpu) {
            let before = main_thread_ns(pid);
            rates.push(dump_once(n, logread(format)));
            cpu.push((main_thread_ns(pid) - before) as f64 / n as f64);
        }
    }
    let busybox_figure = match busybox {
        Some((_, mut child, held)) => {
            let _ = child.kill();
            let _ = child.wait();
            let f = median(busybox_rates);
            println!(
                "{:<46} {:>28}",
                format!("busybox logread (its -C1024 ring, {held})"),
                f.show()
            );
            Some(f)
        }
        None => {
            println!("busybox: not installed (tests/bench.sh installs it)");
            None
        }
    };
    for ((format, rates), cpu) in formats.iter().zip(rates).zip(cpu) {
        let f = median(rates);
        let ratio = busybox_figure.map_or(String::new(), |bb| {
            format!("  {:.2}x", f.median / bb.median)
        });
        let name = format!("ringlogd → logread -o {format} ({n})");
        println!(
            "{name:<46} {:>28}{ratio}  loop {:.0} ns/entry",
            f.show(),
            median(cpu).median
        );
    }
    println!(
        "  loop: the daemon's event loop's CPU time per entry dumped (its schedstat), median of \
         the runs: steadier than the rate, for comparing builds"
    );
}

/// Nanoseconds the main thread of `pid` (the daemon's event loop) has run.
fn main_thread_ns(pid: u32) -> u64 {
    schedstat_ns(Path::new(&format!("/proc/{pid}/task/{pid}")))
}

/// Nanoseconds the thread whose `/proc/PID/task/TID` is `task` has run,
/// from its schedstat; 0 once it is gone.
fn schedstat_ns(task: &Path) -> u64 {
    std::fs::read_to_string(task.join("schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

// ---- follow latency ----

/// Nanoseconds on a clock both the sender and the follower thread read.
fn mono_ns() -> u64 {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// The follow latency rows: at a rate a busy machine logs at, and at half
/// the rate one sender reaches on the raw socket (`raw`).
fn follow_latency(o: &Opts, bins: &Bins, raw: f64) {
    follow_latency_at(o, bins, FOLLOW_RATE, "");
    follow_latency_at(o, bins, raw / 2.0, " (half the raw limit)");
}

/// The steady rate of the first follow latency row, messages per second.
const FOLLOW_RATE: f64 = 100_000.0;

/// Send `rate` messages per second and time each from its send to its line
/// from a follower on the query socket.
fn follow_latency_at(o: &Opts, bins: &Bins, rate: f64, label: &str) {
    let samples = if o.quick { 2_000 } else { 50_000 };
    let d = Ringlogd::start(bins, &["--max-lines", "100000"]);
    let follower = UnixStream::connect(d.query()).unwrap();
    (&follower).write_all(&[1]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let log = d.log();
    let sender = std::thread::spawn(move || {
        let sock = UnixDatagram::unbound().unwrap();
        sock.connect(&log).unwrap();
        let gap = 1e9 / rate;
        let start = mono_ns();
        let due = |i: usize| start + (i as f64 * gap) as u64;
        let mut i = 0;
        while i < samples {
            // Everything due is sent now, each stamped as it goes; then
            // the sender sleeps until the next is due, as a logging
            // program does, rather than spinning a core away from the
            // daemon and the follower.
            let now = mono_ns();
            while i < samples && due(i) <= now {
                let m = format!("<13>Nov 21 23:40:10 lat: t={} ", mono_ns());
                sock.send(m.as_bytes()).unwrap();
                i += 1;
            }
            if i < samples {
                std::thread::sleep(Duration::from_nanos(due(i).saturating_sub(mono_ns())));
            }
        }
    });
    let mut r = BufReader::new(follower);
    let mut lat = Vec::with_capacity(samples);
    let mut line = String::new();
    while lat.len() < samples {
        line.clear();
        r.read_line(&mut line).unwrap();
        let now = mono_ns();
        let sent = line.split("t=").nth(1).and_then(|s| {
            let digits = s.bytes().take_while(u8::is_ascii_digit).count();
            s[..digits].parse::<u64>().ok()
        });
        if let Some(t) = sent {
            lat.push(now.saturating_sub(t));
        }
    }
    sender.join().unwrap();
    lat.sort_unstable();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    println!(
        "follow latency at {} msg/s{label}, {samples} samples: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        human(rate),
        p(0.5),
        p(0.99),
        p(1.0)
    );
}

// ---- memory ----

fn memory(o: &Opts, bins: &Bins) {
    let n = if o.quick { 20_000 } else { 100_000 };
    let d = Ringlogd::start(bins, &["--max-lines", &n.to_string(), "--max-bytes", "1G"]);
    std::thread::sleep(Duration::from_millis(100));
    let empty = d.rss_kib();
    let empty_pss = d.pss_kib();
    let anon = std::fs::read_to_string(format!("/proc/{}/status", d.child.id()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    send_all(&d.log(), n - 1, 100, 1);
    d.wait_stored(n - 1);
    let full = d.rss_kib();
    let s = d.stats();
    let ring_bytes = s["ring"]["bytes"].as_u64().unwrap() as f64;
    // What a reader gets out of each 100-byte datagram: the tag and the text.
    let payload = (100 - "<13>Nov 21 23:40:10 bench[42]: ".len() + "bench".len()) as f64;
    let n = n as f64;
    println!(
        "memory, {n} entries from 100-byte datagrams (payload: {payload} bytes of tag and text)"
    );
    println!("  RSS, empty ring             {empty:>8} KiB (PSS {empty_pss} KiB; anonymous {anon}, the rest code pages)");
    println!("  RSS, full ring              {full:>8} KiB");
    println!(
        "  ring storage                {:>8.0} KiB = {:.1} bytes per entry, {:.1} beyond the payload",
        ring_bytes / 1024.0,
        ring_bytes / n,
        ring_bytes / n - payload
    );
    println!(
        "  RSS growth                  {:>8} KiB = {:.1} bytes per entry, {:.1} beyond the payload",
        full - empty,
        (full - empty) as f64 * 1024.0 / n,
        (full - empty) as f64 * 1024.0 / n - payload
    );
}
