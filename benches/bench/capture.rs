//! Ingest with captures (issue 18: two `--capture` filters active cost
//! within 5 % of ingest without): the ingest table's one-sender run of
//! 100-byte datagrams, once into a daemon with `--capture priority=err`
//! and `--capture source=kernel&grep=(Oops|BUG:|panic)` and once into one
//! without, alternating run by run, and the ratio of their medians. One
//! message in a thousand is an err, so the first filter fires all through
//! the run: one capture is open and extended the whole time, the costliest
//! case (every entry joins it); the second is tested on every entry and
//! never matches.

use super::{median, message, ringlogd_ingest_then, Bins, Opts};

const FILTERS: [&str; 4] = [
    "--capture",
    "priority=err",
    "--capture",
    "source=kernel&grep=(Oops|BUG:|panic)",
];

pub fn capture_rows(o: &Opts, bins: &Bins) {
    let msgs: Vec<Vec<u8>> = (0..1000)
        .map(|i| {
            let mut m = message(i, 100);
            if i == 500 {
                // <11>: user.err
                m[..4].copy_from_slice(b"<11>");
            }
            m
        })
        .collect();
    let (mut with, mut without) = (Vec::new(), Vec::new());
    let mut seen = String::new();
    for rep in 0..o.reps {
        // Alternate which goes first, so neither always gets the warmer
        // machine.
        let mut pair = [(false, 0.0), (true, 0.0)];
        if rep % 2 == 1 {
            pair.reverse();
        }
        for (captures, rate) in pair.iter_mut() {
            let args: &[&str] = if *captures { &FILTERS } else { &[] };
            *rate = ringlogd_ingest_then(bins, o.n, &msgs, 1, args, |d| {
                if *captures {
                    // What the captures did, so the row is known to
                    // exercise them.
                    let c = &d.stats()["captures"];
                    seen = format!(
                        "started {}, extended {}, cut {}, released for budget {}, {} entries pinned",
                        c["started"], c["extended"], c["cut"], c["released_for_budget"],
                        c["entries_pinned"]
                    );
                }
            });
        }
        for (captures, rate) in pair {
            if captures {
                with.push(rate);
            } else {
                without.push(rate);
            }
        }
    }
    let (with, without) = (median(with), median(without));
    println!(
        "{:<46} {:>28}  {:>6}",
        "ingest with --capture, messages per second", "median (min..max)", "ratio"
    );
    println!(
        "{:<46} {:>28}",
        "ringlogd /dev/log, 1 sender, no capture",
        without.show()
    );
    println!(
        "{:<46} {:>28}  {:>6.3}",
        "ringlogd /dev/log, 1 sender, two --capture",
        with.show(),
        with.median / without.median
    );
    println!(
        "  (one err in 1000 messages: one capture open and extended all run; goal: ratio ≥ 0.95)"
    );
    println!("  captures in the last run: {seen}");
}
