//! Ingest while Prometheus scrapes (issue 19: within 2 % of ingest
//! without): the ingest table's one-sender run of 100-byte datagrams into
//! a daemon with `--metrics`, once with a client asking `GET /metrics`
//! every 100 ms for the whole run and once with none, alternating run by
//! run, and the ratio of their medians. On a busy machine that ratio is
//! mostly noise, so beside it: the CPU time the daemon's loop spends on one
//! scrape of the ring just filled (many scrapes back to back, timed by the
//! loop thread's own CPU clock), and what share of the loop a scrape every
//! 100 ms takes at that cost.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{median, message, send_msgs, thread_cpu, Bins, Opts, Ringlogd};

/// How often the scraper asks, as a Prometheus with a 100 ms interval would.
const INTERVAL: Duration = Duration::from_millis(100);

pub fn scrape_rows(o: &Opts, bins: &Bins) {
    let msgs: Vec<Vec<u8>> = (0..1000).map(|i| message(i, 100)).collect();
    let (mut scraped, mut quiet, mut costs) = (Vec::new(), Vec::new(), Vec::new());
    let mut scrapes = 0;
    let back_to_back = if o.quick { 100 } else { 1000 };
    for _ in 0..o.reps {
        quiet.push(ingest(bins, o.n, &msgs, None).rate);
        let run = ingest(bins, o.n, &msgs, Some(back_to_back));
        scraped.push(run.rate);
        scrapes += run.scrapes;
        costs.push(run.cost.expect("measured"));
    }
    let (scraped, quiet, cost) = (median(scraped), median(quiet), median(costs));
    println!(
        "{:<46} {:>28}  {:>6}",
        "ingest with --metrics, messages per second", "median (min..max)", "ratio"
    );
    println!(
        "{:<46} {:>28}",
        "ringlogd /dev/log, 1 sender, not scraped",
        quiet.show()
    );
    println!(
        "{:<46} {:>28}  {:>6.3}",
        "ringlogd /dev/log, 1 sender, scraped / 100 ms",
        scraped.show(),
        scraped.median / quiet.median
    );
    println!("  ({scrapes} scrapes in all, each a whole exposition read and checked)");
    let micros = |s: f64| format!("{:.0}", s * 1e6);
    println!(
        "{:<46} {:>28}  {:.2} % of the loop at one per 100 ms",
        format!("daemon CPU per scrape, ring of {}, µs", o.n),
        format!(
            "{} ({}..{})",
            micros(cost.median),
            micros(cost.min),
            micros(cost.max)
        ),
        cost.median / INTERVAL.as_secs_f64() * 100.0
    );
}

/// What one run gave.
struct Run {
    /// Messages per second stored.
    rate: f64,
    /// Scrapes answered during the run.
    scrapes: u64,
    /// CPU seconds of the daemon's loop per scrape, timed after the run.
    cost: Option<f64>,
}

/// One run of `n` datagrams; with `scrape`, scraped every 100 ms
/// meanwhile, then that many scrapes timed back to back.
fn ingest(bins: &Bins, n: usize, msgs: &[Vec<u8>], scrape: Option<usize>) -> Run {
    let lines = (n + 10).to_string();
    let d = Ringlogd::start(
        bins,
        &[
            "--max-lines",
            &lines,
            "--max-bytes",
            "4G",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let addr = metrics_addr(&d);
    let stop = AtomicBool::new(false);
    let answered = AtomicU64::new(0);
    let rate = std::thread::scope(|s| {
        if scrape.is_some() {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let body = get_metrics(addr);
                    assert!(
                        body.contains("\nringlogd_received_total{input=\"syslog\"} "),
                        "{body}"
                    );
                    answered.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(INTERVAL);
                }
            });
        }
        let start = Instant::now();
        send_msgs(&d.log(), n, msgs, 1);
        d.wait_stored(n);
        let rate = n as f64 / start.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        rate
    });
    let scrapes = answered.load(Ordering::Relaxed);
    assert!(
        scrape.is_none() || scrapes > 0,
        "no scrape was answered during the run"
    );
    let cost = scrape.map(|k| {
        let before = thread_cpu(d.child.id()).0;
        for _ in 0..k {
            get_metrics(addr);
        }
        (thread_cpu(d.child.id()).0 - before) / k as f64
    });
    Run {
        rate,
        scrapes,
        cost,
    }
}

/// `GET /metrics` over TCP: the body.
fn get_metrics(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    out
}

/// Where the daemon listens for scrapes, from its `listening on metrics`
/// entry (it bound port 0).
fn metrics_addr(d: &Ringlogd) -> SocketAddr {
    let mut c = UnixStream::connect(d.query()).unwrap();
    c.write_all(&[0]).unwrap();
    let mut dump = String::new();
    c.read_to_string(&mut dump).unwrap();
    dump.lines()
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v["msg"]
                .as_str()?
                .strip_prefix("listening on metrics ")?
                .parse()
                .ok()
        })
        .expect("a metrics listener")
}
