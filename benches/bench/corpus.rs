//! The corpus part of the benchmark: real log lines (the Loghub samples in
//! `../shared/corpus`, or `--corpus DIR`) replayed into the daemon.
//!
//! Each file is replayed in a loop, its lines in their order, every pass
//! with its timestamps moved on by the file's whole span, so that the ring
//! holds a log that goes forward in time rather than the same 2000 stamps
//! again. The syslog files go to `/dev/log` as datagrams with a PRI added
//! (Thunderbird's four prefix fields stripped); the others are written as
//! lines to an fd passed over the intake socket, one fd per file.
//!
//! Measured: bytes per entry all-in (`ring.bytes / ring.entries` of a full
//! ring, with `--compress zstd` and `--compress none`), ingest of corpus
//! datagrams from one sender against the raw `recv()` limit, and a full
//! dump of a ring of corpus entries.

use std::io::Write;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use serde_json::Value;

use super::{dump_rate, human, pass_fd, raw_limit_msgs, repeat, Bins, Figure, Opts, Ringlogd};

/// memlogd's storage cost, as issue 11 quotes it: a constant, not measured
/// by this benchmark.
pub const MEMLOGD_QUOTED_BYTES_PER_100B_ENTRY: f64 = 456.0;
/// The goals.
pub const GOAL_BYTES_PER_ENTRY: f64 = 24.0;
pub const GOAL_ENTRIES_PER_MIB_RATIO: f64 = 5.0;
pub const GOAL_INGEST_RATIO: f64 = 0.85;
pub const GOAL_DUMP_RATE: f64 = 1e6;
/// The goals of the compressed tier's second round: bytes per entry on
/// files the storage was not tuned on, and on the whole corpus.
pub const GOAL_HELD_OUT_BYTES_PER_ENTRY: f64 = 20.0;
pub const GOAL_CORPUS_BYTES_PER_ENTRY: f64 = 16.0;
/// A full dump must not get slower than this while chunks get smaller.
pub const GOAL_DUMP_RATE_KEPT: f64 = 2e6;

/// The files the compressed storage was tuned on; the others are held out:
/// their figures stand for logs the ring has never seen. Chosen before any
/// tuning, with both feeds on each side.
pub const TUNED_ON: [&str; 4] = ["Linux", "Android", "Apache", "HDFS"];

/// How a file reaches the daemon.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// `/dev/log` datagrams, `<13>` added in front.
    Devlog,
    /// Lines written to an fd passed over the intake socket.
    Intake,
}

impl Feed {
    fn input(self) -> &'static str {
        match self {
            Feed::Devlog => "syslog",
            Feed::Intake => "fd",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Feed::Devlog => "/dev/log",
            Feed::Intake => "fd",
        }
    }
}

/// Where a line's timestamp is and how to read and write it. `year` is put
/// in front of stamps that have none, to read them.
struct Stamp {
    year: &'static str,
    parse: &'static str,
    print: &'static str,
}

impl Stamp {
    const fn new(year: &'static str, parse: &'static str, print: &'static str) -> Stamp {
        Stamp { year, parse, print }
    }
}

const SYSLOG: Stamp = Stamp::new("2026 ", "%Y %b %e %H:%M:%S", "%b %e %H:%M:%S");
const ANDROID: Stamp = Stamp::new("2026-", "%Y-%m-%d %H:%M:%S%.3f", "%m-%d %H:%M:%S%.3f");
const APACHE: Stamp = Stamp::new("", "[%a %b %d %H:%M:%S %Y]", "[%a %b %d %H:%M:%S %Y]");
const HDFS: Stamp = Stamp::new("", "%y%m%d %H%M%S", "%y%m%d %H%M%S");
const ZOOKEEPER: Stamp = Stamp::new("", "%Y-%m-%d %H:%M:%S,%3f", "%Y-%m-%d %H:%M:%S,%3f");

/// The corpus files: name, feed, timestamp, leading fields to strip.
const FILES: [(&str, Feed, Stamp, usize); 7] = [
    ("Linux", Feed::Devlog, SYSLOG, 0),
    ("OpenSSH", Feed::Devlog, SYSLOG, 0),
    ("Thunderbird", Feed::Devlog, SYSLOG, 4),
    ("Android", Feed::Intake, ANDROID, 0),
    ("Apache", Feed::Intake, APACHE, 0),
    ("HDFS", Feed::Intake, HDFS, 0),
    ("Zookeeper", Feed::Intake, ZOOKEEPER, 0),
];

/// A few made-up lines in each file's shape, used only when the corpus is
/// not there (a CI machine without it), so that the smoke run still goes
/// through every code path. Their figures say nothing about the corpus.
const STAND_IN: [&str; 7] = [
    "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=192.0.2.4\n\
     Jun 14 15:16:02 combo sshd(pam_unix)[19937]: check pass; user unknown\n\
     Jun 15 04:06:18 combo su(pam_unix)[21416]: session opened for user cyrus by (uid=0)",
    "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 198.51.100.186\n\
     Dec 10 06:55:46 LabSZ sshd[24200]: input_userauth_request: invalid user webmaster [preauth]\n\
     Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for invalid user webmaster from 198.51.100.186 port 38926 ssh2",
    "- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: session closed for user root\n\
     - 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond[2916]: (root) CMD (run-parts /etc/cron.hourly)\n\
     - 1131566462 2005.11.09 dn70 Nov 9 12:01:02 dn70/dn70 kernel: ib_sm_sweep.c:1455: No topology change",
    "03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogsopening app wtoken = AppWindowToken{9f4ef63}\n\
     03-17 16:13:38.819  1702  8671 D PowerManagerService: acquire lock=233570404, flags=0x1, tag=\"View Lock\", uid=10037, pid=2227\n\
     03-17 16:13:38.820  1702  8671 D PowerManagerService: ready=true,policy=3,wakefulness=1,wksummary=0x23",
    "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties\n\
     [Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6\n\
     [Sun Dec 04 04:51:08 2005] [notice] jk2_init() Found child 6725 in scoreboard slot 10",
    "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating\n\
     081109 203807 222 INFO dfs.DataNode$PacketResponder: PacketResponder 0 for block blk_-6952295868487656571 terminating\n\
     081109 204005 35 INFO dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: blockMap updated: 10.251.73.220:50010",
    "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time out: 3200\n\
     2015-07-29 19:04:12,394 - INFO  [/10.10.34.11:3888:QuorumCnxManager$Listener@493] - Received connection request\n\
     2015-07-29 19:04:29,071 - WARN  [SendWorker:188978561024:QuorumCnxManager$SendWorker@688] - Send worker leaving thread",
];

/// One line: its timestamp (when it could be read) and what follows it.
struct Line {
    ts: Option<NaiveDateTime>,
    rest: String,
}

pub struct CorpusFile {
    pub name: &'static str,
    pub feed: Feed,
    stamp: &'static Stamp,
    lines: Vec<Line>,
    /// How far each pass moves the stamps on: the file's span plus a second.
    span: chrono::Duration,
    /// Mean length of a line as sent (without PRI or newline), bytes.
    pub mean_len: f64,
}

pub struct Corpus {
    pub files: Vec<CorpusFile>,
    /// Where the lines came from, for the table's heading.
    pub origin: String,
    pub stand_in: bool,
}

impl Corpus {
    /// The files in `dir`, or the built-in stand-in lines when `dir` does
    /// not hold them.
    pub fn load(dir: &Path) -> Corpus {
        let have = FILES
            .iter()
            .all(|(name, ..)| dir.join(format!("{name}_2k.log")).is_file());
        let files: Vec<CorpusFile> = FILES
            .iter()
            .zip(STAND_IN)
            .map(|((name, feed, stamp, strip), stand_in)| {
                let text = if have {
                    std::fs::read_to_string(dir.join(format!("{name}_2k.log")))
                        .unwrap_or_else(|e| panic!("read {name}_2k.log in {}: {e}", dir.display()))
                } else {
                    stand_in.to_owned()
                };
                CorpusFile::new(name, *feed, stamp, *strip, &text)
            })
            .collect();
        // Named by what it is, not where it lies: a table written into
        // PERFORMANCE.md names no machine's paths.
        Corpus {
            origin: if have {
                format!("the {} Loghub 2k samples below", files.len())
            } else {
                "built-in stand-in lines (the corpus was not found): not the corpus's figures"
                    .to_owned()
            },
            files,
            stand_in: !have,
        }
    }

    /// Datagrams of the syslog files, `passes` passes of each, file after
    /// file within a pass: what the ingest rows send, over and over.
    pub fn datagrams(&self, passes: u64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for k in 0..passes {
            for f in self.files.iter().filter(|f| f.feed == Feed::Devlog) {
                f.datagrams(k, &mut out);
            }
        }
        out
    }
}

impl CorpusFile {
    fn new(
        name: &'static str,
        feed: Feed,
        stamp: &'static Stamp,
        strip: usize,
        text: &str,
    ) -> Self {
        let lines: Vec<Line> = text
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.is_empty())
            .map(|l| {
                let l = strip_fields(l, strip);
                let with_year = format!("{}{l}", stamp.year);
                match NaiveDateTime::parse_and_remainder(&with_year, stamp.parse) {
                    Ok((ts, rest)) => Line {
                        ts: Some(ts),
                        rest: rest.to_owned(),
                    },
                    Err(_) => Line {
                        ts: None,
                        rest: l.to_owned(),
                    },
                }
            })
            .collect();
        let stamps = || lines.iter().filter_map(|l| l.ts);
        let span = match (stamps().min(), stamps().max()) {
            (Some(lo), Some(hi)) => hi - lo + chrono::Duration::seconds(1),
            _ => chrono::Duration::zero(),
        };
        let mut f = CorpusFile {
            name,
            feed,
            stamp,
            lines,
            span,
            mean_len: 0.0,
        };
        let total: usize = (0..f.lines.len()).map(|i| f.line(0, i).len()).sum();
        f.mean_len = total as f64 / f.lines.len().max(1) as f64;
        f
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Lines whose timestamp could not be read: replayed unchanged.
    fn unstamped(&self) -> usize {
        self.lines.iter().filter(|l| l.ts.is_none()).count()
    }

    /// Line `i` of pass `k`, its stamp moved on by `k` spans.
    fn line(&self, k: u64, i: usize) -> String {
        let l = &self.lines[i];
        match l.ts {
            Some(ts) => {
                let ts = ts + self.span * k as i32;
                format!("{}{}", ts.format(self.stamp.print), l.rest)
            }
            None => l.rest.clone(),
        }
    }

    /// Pass `k` as datagrams with a PRI (user.notice, as `logger` sends).
    fn datagrams(&self, k: u64, out: &mut Vec<Vec<u8>>) {
        for i in 0..self.len() {
            out.push(format!("<13>{}", self.line(k, i)).into_bytes());
        }
    }

    /// Pass `k` as newline-terminated lines, one block.
    fn block(&self, k: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..self.len() {
            out.extend_from_slice(self.line(k, i).as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// The intake name a file's fd is passed under (its source in the ring).
    fn source(&self) -> String {
        format!("{}.out", self.name.to_lowercase())
    }
}

/// `line` without its first `n` space-separated fields.
fn strip_fields(line: &str, n: usize) -> &str {
    let mut rest = line;
    for _ in 0..n {
        rest = rest.trim_start_matches(' ');
        rest = rest.find(' ').map_or("", |i| &rest[i..]);
    }
    rest.trim_start_matches(' ')
}

/// Where one file's lines go: a connected datagram socket, or our end of
/// the socket pair whose other end was passed to the intake.
enum Sink {
    Devlog(UnixDatagram),
    Intake(UnixStream),
}

impl Sink {
    fn open(d: &Ringlogd, f: &CorpusFile) -> Sink {
        match f.feed {
            Feed::Devlog => {
                let s = UnixDatagram::unbound().unwrap();
                s.connect(d.log()).unwrap();
                Sink::Devlog(s)
            }
            Feed::Intake => {
                let (ours, theirs) = UnixStream::pair().unwrap();
                pass_fd(&d.intake(), &f.source(), &theirs);
                Sink::Intake(ours)
            }
        }
    }

    /// Send pass `k` of `f`; returns how many entries it makes.
    fn pass(&mut self, f: &CorpusFile, k: u64, scratch: &mut Vec<Vec<u8>>) -> u64 {
        match self {
            Sink::Devlog(s) => {
                scratch.clear();
                f.datagrams(k, scratch);
                for m in scratch.iter() {
                    s.send(m).unwrap();
                }
            }
            Sink::Intake(s) => s.write_all(&f.block(k)).unwrap(),
        }
        f.len() as u64
    }
}

/// The counters of `input`, checked: nothing lost, nothing dropped.
fn counters(stats: &Value, input: &str) -> (u64, u64) {
    let c = &stats["inputs"][input];
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    assert_eq!(
        n("received"),
        n("stored") + n("dropped"),
        "unaccounted loss on {input}: {c}"
    );
    assert_eq!(n("dropped"), 0, "{input} entries dropped: {c}");
    (n("stored"), n("evicted"))
}

/// Wait until `input` has stored `n` entries in all (fail on any loss).
fn wait_input(d: &Ringlogd, input: &str, n: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let s = d.stats();
        let (stored, _) = counters(&s, input);
        if stored >= n {
            assert_eq!(stored, n, "more {input} entries stored than sent");
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{input}: only {stored} of {n} stored"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a full ring of one file held.
pub struct Fill {
    entries: u64,
    bytes: u64,
    /// `ring.raw_bytes`, when the ring reports it.
    raw_bytes: Option<u64>,
    /// `ring.compress` as the ring reports it ("-" when it does not).
    compress: String,
    /// The ring evicted: it was full when read.
    full: bool,
    /// `ring.dicts` and `ring.dict_bytes`, when the ring reports them.
    dicts: Option<(u64, u64)>,
}

impl Fill {
    fn per_entry(&self) -> f64 {
        self.bytes as f64 / self.entries.max(1) as f64
    }
}

/// Replay `f` into a ring of `max_bytes` (lines unbounded) with
/// `--compress how` until the ring has evicted and then stored a quarter
/// more than it held at that point, or `cap` entries were stored.
fn fill(bins: &Bins, f: &CorpusFile, how: &str, max_bytes: &str, cap: u64) -> Fill {
    let d = Ringlogd::start(
        bins,
        &[
            "--max-lines",
            "100000000",
            "--max-bytes",
            max_bytes,
            "--compress",
            how,
            // What the ring takes per entry, not the pace an intake fd is
            // held to: fed as fast as it goes, an fd would be paused for
            // most of the run.
            "--intake-rate",
            "0",
        ],
    );
    let input = f.feed.input();
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let mut full = false;
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut sink = Sink::open(&d, f);
            let mut scratch = Vec::new();
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                let n = sink.pass(f, k, &mut scratch);
                sent.fetch_add(n, Ordering::Relaxed);
                k += 1;
            }
        });
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut target = None;
        loop {
            let (stored, evicted) = counters(&d.stats(), input);
            if target.is_none() && evicted > 0 {
                target = Some(stored + stored / 4);
                full = true;
            }
            if target.is_some_and(|t| stored >= t) || stored >= cap || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let s = wait_input(&d, input, sent.load(Ordering::Relaxed));
    let r = &s["ring"];
    if let Some(c) = r["compress"].as_str() {
        assert_eq!(c, how, "the ring stores with {c}, not --compress {how}");
    }
    Fill {
        entries: r["entries"].as_u64().unwrap(),
        bytes: r["bytes"].as_u64().unwrap(),
        raw_bytes: r["raw_bytes"].as_u64(),
        compress: r["compress"].as_str().unwrap_or("-").to_owned(),
        full,
        dicts: r["dicts"].as_u64().zip(r["dict_bytes"].as_u64()),
    }
}

/// Per file: bytes per entry with and without compression.
pub struct Row {
    name: &'static str,
    feed: Feed,
    mean_len: f64,
    zstd: Fill,
    none: Fill,
}

impl Row {
    /// Not one of [`TUNED_ON`]: its figure stands for unseen logs.
    fn held_out(&self) -> bool {
        !TUNED_ON.contains(&self.name)
    }

    fn ratio(&self) -> f64 {
        self.none.per_entry() / self.zstd.per_entry()
    }
}

/// The corpus table: fill a ring per file and compression setting.
pub fn bytes_table(o: &Opts, bins: &Bins, corpus: &Corpus) -> Vec<Row> {
    let (max_bytes, cap) = if o.quick {
        ("1M", 200_000)
    } else {
        ("64M", 50_000_000)
    };
    println!("corpus: {}", corpus.origin);
    let unstamped: Vec<String> = corpus
        .files
        .iter()
        .filter(|f| f.unstamped() > 0)
        .map(|f| format!("{} {} of {}", f.name, f.unstamped(), f.len()))
        .collect();
    if !unstamped.is_empty() {
        println!(
            "  lines replayed with their stamps unchanged (not read): {}",
            unstamped.join(", ")
        );
    }
    println!(
        "bytes per entry all-in (ring.bytes / ring.entries) of a full ring, --max-bytes {max_bytes}, \
         each file replayed until the ring evicts and then a quarter more"
    );
    println!(
        "{:<12} {:<8} {:>7} {:>8} {:>10} {:>10} {:>11} {:>11} {:>9} {:>9}",
        "file",
        "feed",
        "line B",
        "raw B/e",
        "zstd B/e",
        "none B/e",
        "zstd e/MiB",
        "none e/MiB",
        "zstd/none",
        "dicts KiB"
    );
    let mut rows = Vec::new();
    for f in &corpus.files {
        let zstd = fill(bins, f, "zstd", max_bytes, cap);
        let none = fill(bins, f, "none", max_bytes, cap);
        let row = Row {
            name: f.name,
            feed: f.feed,
            mean_len: f.mean_len,
            zstd,
            none,
        };
        print_row(&row);
        rows.push(row);
    }
    let avg = |g: &dyn Fn(&Row) -> f64| rows.iter().map(g).sum::<f64>() / rows.len() as f64;
    let (z, n) = (avg(&|r| r.zstd.per_entry()), avg(&|r| r.none.per_entry()));
    println!(
        "{:<12} {:<8} {:>7.1} {:>8} {:>10.1} {:>10.1} {:>11.0} {:>11.0} {:>8.2}×",
        "average",
        "",
        avg(&|r| r.mean_len),
        "",
        z,
        n,
        avg(&|r| MIB / r.zstd.per_entry()),
        avg(&|r| MIB / r.none.per_entry()),
        avg(&|r| r.ratio())
    );
    for (label, held_out) in [("tuned on", false), ("held out", true)] {
        let part: Vec<&Row> = rows.iter().filter(|r| r.held_out() == held_out).collect();
        let names: Vec<&str> = part.iter().map(|r| r.name).collect();
        println!(
            "{:<21} {:>7.1} {:>8} {:>10.1}   ({})",
            format!("mean, {label}"),
            mean(part.iter().map(|r| r.mean_len)),
            "",
            mean(part.iter().map(|r| r.zstd.per_entry())),
            names.join(", ")
        );
    }
    let modes: Vec<String> = rows
        .iter()
        .flat_map(|r| [r.zstd.compress.clone(), r.none.compress.clone()])
        .collect();
    if modes.iter().any(|m| m == "-") {
        println!(
            "  note: the ring's stats say nothing of its compression (no ring.compress): \
             both columns measure the same storage"
        );
    }
    if rows.iter().any(|r| !r.zstd.full || !r.none.full) {
        println!("  note: * = the ring did not fill (no eviction) before the cap of {cap} entries");
    }
    println!(
        "  line B: mean line as sent, without PRI or newline; raw B/e: ring.raw_bytes / ring.entries; \
         e/MiB: entries per MiB of ring; dicts KiB: compression dictionaries the zstd ring holds and \
         their KiB (counted in zstd B/e)"
    );
    println!(
        "  memlogd, quoted in issue 11 (a constant, not measured here): about {:.0} B per 100-byte entry",
        MEMLOGD_QUOTED_BYTES_PER_100B_ENTRY
    );
    rows
}

const MIB: f64 = 1048576.0;

/// The mean of `v` (0 when empty).
fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    sum / n.max(1) as f64
}

/// The bytes-per-entry goals of the second round: held-out files and the
/// whole corpus.
pub fn bytes_goals(rows: &[Row]) {
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let held: Vec<&Row> = rows.iter().filter(|r| r.held_out()).collect();
    let names: Vec<&str> = held.iter().map(|r| r.name).collect();
    let held_bpe = mean(held.iter().map(|r| r.zstd.per_entry()));
    let all_bpe = mean(rows.iter().map(|r| r.zstd.per_entry()));
    println!(
        "{:<58} {:>12.1} {:>10}  {}",
        format!("bytes per entry, zstd, held out ({})", names.join(", ")),
        held_bpe,
        format!("≤ {GOAL_HELD_OUT_BYTES_PER_ENTRY:.0}"),
        verdict(held_bpe <= GOAL_HELD_OUT_BYTES_PER_ENTRY)
    );
    println!(
        "{:<58} {:>12.1} {:>10}  {}",
        format!("bytes per entry, zstd, mean of all {} files", rows.len()),
        all_bpe,
        format!("≤ {GOAL_CORPUS_BYTES_PER_ENTRY:.0}"),
        verdict(all_bpe <= GOAL_CORPUS_BYTES_PER_ENTRY)
    );
}

fn print_row(r: &Row) {
    let raw = match r.zstd.raw_bytes {
        Some(b) => format!("{:.1}", b as f64 / r.zstd.entries.max(1) as f64),
        None => "-".into(),
    };
    let mark = |f: &Fill| if f.full { "" } else { "*" };
    let dicts = match r.zstd.dicts {
        Some((n, b)) => format!("{n} {:.0}", b as f64 / 1024.0),
        None => "-".into(),
    };
    println!(
        "{:<12} {:<8} {:>7.1} {:>8} {:>9.1}{:1} {:>9.1}{:1} {:>11.0} {:>11.0} {:>8.2}× {:>9}",
        r.name,
        r.feed.label(),
        r.mean_len,
        raw,
        r.zstd.per_entry(),
        mark(&r.zstd),
        r.none.per_entry(),
        mark(&r.none),
        MIB / r.zstd.per_entry(),
        MIB / r.none.per_entry(),
        r.ratio(),
        dicts
    );
}

/// One ingest figure: the corpus datagrams' raw limit and ringlogd's rate
/// with zstd, at one `max_dgram_qlen`.
pub struct Ingest {
    pub qlen: String,
    pub raw: f64,
    pub zstd: f64,
}

/// Ingest rows: one sender of corpus datagrams into a bare `recv()` loop
/// and into ringlogd with `--compress zstd` and `none`.
pub fn ingest_rows(o: &Opts, bins: &Bins, corpus: &Corpus, qlen: &str) -> Ingest {
    let msgs = corpus.datagrams(if o.quick { 1 } else { 10 });
    let n = o.n;
    let mean = msgs.iter().map(Vec::len).sum::<usize>() as f64 / msgs.len() as f64;
    let raw = repeat(o.reps, || raw_limit_msgs(n, &msgs, 1));
    super::row(
        &format!("raw recv() limit, 1 sender, corpus ({mean:.0} B)"),
        raw,
        raw.median,
    );
    let ceiling = repeat(o.reps, || super::creds_ceiling_msgs(n, &msgs));
    super::row(
        "SO_PASSCRED + recvmmsg, storing nothing",
        ceiling,
        raw.median,
    );
    let mut zstd = raw;
    for how in ["zstd", "none"] {
        let f = repeat(o.reps, || {
            super::ringlogd_ingest_msgs(bins, n, &msgs, 1, &["--compress", how])
        });
        super::row(
            &format!("ringlogd --compress {how}, 1 sender, corpus"),
            f,
            raw.median,
        );
        if how == "zstd" {
            zstd = f;
        }
    }
    let cpu = super::ingest_cpu(bins, n, &msgs, &["--compress", "zstd"]);
    println!(
        "  CPU per message in one zstd run ({}/s): sender {:.0} ns, daemon loop {:.0} ns, \
         compressor {:.0} ns; {:.2} of {} cores busy",
        super::human(cpu.rate),
        cpu.sender,
        cpu.daemon_loop,
        cpu.daemon_other,
        (cpu.sender + cpu.daemon_loop + cpu.daemon_other) * cpu.rate / 1e9,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    Ingest {
        qlen: qlen.to_owned(),
        raw: raw.median,
        zstd: zstd.median,
    }
}

/// A full dump of a ring of corpus entries (every file, pass after pass,
/// until the ring of `--max-lines N` has wrapped), into `logread --json >
/// /dev/null`.
pub fn dump_row(o: &Opts, bins: &Bins, corpus: &Corpus) -> Figure {
    let n: u64 = if o.quick { 20_000 } else { 1_000_000 };
    let d = Ringlogd::start(
        bins,
        &[
            "--max-lines",
            &n.to_string(),
            "--max-bytes",
            "1G",
            "--compress",
            "zstd",
            // Filling the ring is not what is timed here.
            "--intake-rate",
            "0",
        ],
    );
    let mut sinks: Vec<Sink> = corpus.files.iter().map(|f| Sink::open(&d, f)).collect();
    let (mut devlog, mut intake) = (0, 0);
    let mut scratch = Vec::new();
    let mut k = 0;
    while devlog + intake < n + n / 10 {
        for (f, sink) in corpus.files.iter().zip(&mut sinks) {
            let sent = sink.pass(f, k, &mut scratch);
            match f.feed {
                Feed::Devlog => devlog += sent,
                Feed::Intake => intake += sent,
            }
        }
        k += 1;
    }
    wait_input(&d, "syslog", devlog);
    let s = wait_input(&d, "fd", intake);
    let held = s["ring"]["entries"].as_u64().unwrap();
    assert_eq!(held, n, "the ring holds {held} entries, not {n}: {s}");
    let out = std::process::Command::new(&bins.logread)
        .arg("--socket")
        .arg(d.query())
        .arg("--json")
        .output()
        .unwrap();
    // Entries have a seq; the dump may add a notice without one for each
    // gap fair eviction left (entries of other sources evicted between).
    let seq = memchr::memmem::Finder::new(b"\"seq\":");
    let entries = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| seq.find(l).is_some())
        .count() as u64;
    assert_eq!(entries, n, "the dump gave {entries} entries");
    let f = dump_rate(o.reps, n as usize, || {
        let mut c = std::process::Command::new(&bins.logread);
        c.arg("--socket").arg(d.query()).arg("--json");
        c
    });
    println!(
        "{:<46} {:>28}",
        format!("corpus ring of {n}, zstd → logread --json"),
        f.show()
    );
    f
}

/// The four goals against this run's figures.
pub fn goals(o: &Opts, corpus: &Corpus, rows: &[Row], ingest: &[Ingest], dump: Figure) {
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let avg = |g: &dyn Fn(&Row) -> f64| rows.iter().map(g).sum::<f64>() / rows.len() as f64;
    let bpe = avg(&|r| r.zstd.per_entry());
    let ratio = avg(&|r| r.ratio());
    println!(
        "issue 11 goals{}{}",
        if corpus.stand_in {
            " (stand-in lines, not the corpus)"
        } else {
            ", on the corpus"
        },
        if o.quick {
            " (quick smoke run: met or not means nothing)"
        } else {
            ""
        }
    );
    println!("{:<58} {:>12} {:>10}", "figure", "this run", "goal");
    println!(
        "{:<58} {:>12.1} {:>10}  {}",
        format!("bytes per entry all-in, zstd, mean of {} files", rows.len()),
        bpe,
        format!("≤ {GOAL_BYTES_PER_ENTRY:.0}"),
        verdict(bpe <= GOAL_BYTES_PER_ENTRY)
    );
    println!(
        "{:<58} {:>11.2}× {:>10}  {}",
        "entries per MiB, zstd / none, mean of the files",
        ratio,
        format!("≥ {GOAL_ENTRIES_PER_MIB_RATIO:.0}×"),
        verdict(ratio >= GOAL_ENTRIES_PER_MIB_RATIO)
    );
    for i in ingest {
        let r = i.zstd / i.raw;
        println!(
            "{:<58} {:>11.2}× {:>10}  {}",
            format!(
                "ingest, corpus, zstd / raw limit ({} / {}, qlen {})",
                human(i.zstd),
                human(i.raw),
                i.qlen
            ),
            r,
            format!("≥ {GOAL_INGEST_RATIO}×"),
            verdict(r >= GOAL_INGEST_RATIO)
        );
    }
    println!(
        "{:<58} {:>12} {:>10}  {}",
        "full dump of the corpus ring, logread --json, entries/s",
        human(dump.median),
        "≥ 1 M",
        verdict(dump.median >= GOAL_DUMP_RATE)
    );
    bytes_goals(rows);
    println!(
        "{:<58} {:>12} {:>10}  {}",
        "full dump as above, kept while entries get smaller",
        human(dump.median),
        "≥ 2 M",
        verdict(dump.median >= GOAL_DUMP_RATE_KEPT)
    );
    println!(
        "{:<58} {:>12.1} {:>10}",
        "memlogd, B per 100-byte entry (quoted in issue 11, not measured)",
        MEMLOGD_QUOTED_BYTES_PER_100B_ENTRY,
        ""
    );
    println!(
        "{:<58} {:>11.1}×",
        "  memlogd's quoted figure / ours (zstd, corpus mean)",
        MEMLOGD_QUOTED_BYTES_PER_100B_ENTRY / bpe
    );
}

/// The corpus directory: `--corpus DIR`, `$RINGLOGD_CORPUS`, or
/// `../shared/corpus` beside the source tree.
pub fn dir(args: &[String]) -> PathBuf {
    if let Some(i) = args.iter().position(|a| a == "--corpus") {
        return PathBuf::from(args.get(i + 1).expect("--corpus DIR"));
    }
    if let Some(d) = std::env::var_os("RINGLOGD_CORPUS") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

/// Stamps that never parse: a file of unknown shape is replayed unchanged.
const UNCHANGED: Stamp = Stamp::new("", "\u{1}", "");

/// Bytes per entry of a full ring of `max_bytes` for every `*.log` file in
/// `dir`: logs that are not the corpus and were never tuned on, each sent
/// over the fd intake (no syslog parsing) with its lines unchanged, pass
/// after pass, as a LinuxKit service's output would be.
pub fn other_logs(bins: &Bins, dir: &Path, max_bytes: &str) {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("--other-logs {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    names.sort();
    println!(
        "other logs, never tuned on: bytes per entry all-in of a full ring, --max-bytes {max_bytes}, \
         fed over the fd intake, replayed unchanged"
    );
    println!(
        "{:<12} {:>7} {:>10} {:>10} {:>9}",
        "file", "line B", "zstd B/e", "none B/e", "dicts KiB"
    );
    let mut got = Vec::new();
    for path in &names {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let stem = path.file_stem().unwrap().to_string_lossy();
        let name: &'static str =
            Box::leak(stem.trim_end_matches("_2k").to_owned().into_boxed_str());
        let f = CorpusFile::new(name, Feed::Intake, &UNCHANGED, 0, &text);
        let zstd = fill(bins, &f, "zstd", max_bytes, 50_000_000);
        let none = fill(bins, &f, "none", max_bytes, 50_000_000);
        let dicts = zstd.dicts.map_or("-".to_owned(), |(n, b)| {
            format!("{n}: {:.0}", b as f64 / 1024.0)
        });
        println!(
            "{:<12} {:>7.1} {:>10.1} {:>10.1} {:>9}{}",
            name,
            f.mean_len,
            zstd.per_entry(),
            none.per_entry(),
            dicts,
            if zstd.full { "" } else { "  (not full)" }
        );
        got.push(zstd.per_entry());
    }
    if !got.is_empty() {
        println!(
            "{:<12} {:>7} {:>10.1}",
            "mean",
            "",
            got.iter().sum::<f64>() / got.len() as f64
        );
    }
}
