//! Forwarding figures: how fast ringlogd's routes carry entries into
//! rsyslogd on this machine, per transport, and what a receiver restart
//! costs.
//!
//! For each of udp, tcp, tls and relp: ringlogd with one route to a port
//! where nothing listens yet, N 100-byte messages sent into its syslog
//! socket (the route waits, the ring holds them), then an rsyslogd
//! receiver started on that port (imudp, imtcp, imtcp with gtls, imrelp;
//! omfile with the default template). Reported, from the moment the route
//! connected: the rate until it had delivered everything (lag 0 in the
//! stats), and until rsyslogd had written every line. So the figure is the
//! route's own, not that of whoever feeds the ring (except for UDP, whose
//! receiver is started first and fed while it runs). Median of 3 runs.
//!
//! Then the same for a `journal+http` route into systemd-journal-remote
//! (`--split-mode=none`, one journal file): it answers an upload once it
//! has written it, so delivered (acknowledged) is written; the count in
//! its journal file is checked with journalctl at the end.
//!
//! Then the restart: a RELP and a TCP route under a steady 20k msg/s,
//! rsyslogd killed (SIGKILL) and started again after 1 s; reported: how
//! long after the restart the route was connected again, lines lost and
//! duplicated.
//!
//! Needs rsyslog, rsyslog-relp, rsyslog-gnutls, systemd-journal-remote and
//! openssl (tests/run.sh installs them).
//!
//! `cargo bench --bench route -- [N]`

use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{count_arg, Ringlogd};

/// The ring every run starts with: large enough to hold a run.
const RING: [&str; 5] = ["--no-kmsg", "--max-lines", "1000000", "--max-bytes", "256M"];

/// ringlogd with one route, `route`.
fn ringlogd_routing(route: &str) -> Ringlogd {
    Ringlogd::start(&[&RING[..], &["--route", route]].concat())
}

fn route_stats(d: &Ringlogd) -> serde_json::Value {
    d.stats()["routes"][0].clone()
}

struct Rsyslog {
    child: Option<Child>,
    dir: tempfile::TempDir,
    conf: PathBuf,
    port: u16,
}

impl Rsyslog {
    fn start(kind: &str, certs: &Path) -> Rsyslog {
        let mut r = Rsyslog::configure(kind, certs, free_port());
        r.restart(kind == "udp");
        r
    }

    /// Configured for `port`, not started.
    fn configure(kind: &str, certs: &Path, port: u16) -> Rsyslog {
        let dir = tempfile::tempdir().unwrap();
        let c = |f: &str| certs.join(f).display().to_string();
        let input = match kind {
            "udp" => format!("module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\" rcvbufSize=\"4m\")"),
            "tcp" => format!("module(load=\"imtcp\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")"),
            "relp" => format!("module(load=\"imrelp\")\ninput(type=\"imrelp\" address=\"127.0.0.1\" port=\"{port}\")"),
            _ => format!(
                "global(DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCAFile=\"{}\" \
                 DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\")\n\
                 module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\")\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")",
                c("ca.pem"),
                c("server.pem"),
                c("server-key.pem")
            ),
        };
        std::fs::create_dir(dir.path().join("work")).unwrap();
        let conf = dir.path().join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{}\")\n{input}\n*.* action(type=\"omfile\" file=\"{}\")\n",
                dir.path().join("work").display(),
                dir.path().join("out.log").display()
            ),
        )
        .unwrap();
        Rsyslog {
            child: None,
            dir,
            conf,
            port,
        }
    }

    fn restart(&mut self, udp: bool) {
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&self.conf)
            .arg("-i")
            .arg(self.dir.path().join("pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsyslogd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let taken = if udp {
                std::net::UdpSocket::bind(("127.0.0.1", self.port)).is_err()
            } else {
                TcpListener::bind(("127.0.0.1", self.port)).is_err()
            };
            if taken {
                return;
            }
            assert!(Instant::now() < deadline, "rsyslogd did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn lines(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.path().join("out.log")).unwrap_or_default();
        let done = text.rfind('\n').map_or("", |i| &text[..i]);
        done.lines().map(str::to_owned).collect()
    }

    fn count(&self, tag: &str) -> usize {
        let text = std::fs::read(self.dir.path().join("out.log")).unwrap_or_default();
        let needle = tag.as_bytes();
        text.windows(needle.len()).filter(|w| *w == needle).count()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `n` 100-byte messages tagged `tag-i`, from one socket, as fast as the
/// socket takes them (or at `rate` per second).
fn send(sock: &Path, tag: &str, n: usize, rate: Option<u32>) {
    let s = UnixDatagram::unbound().unwrap();
    let start = Instant::now();
    for i in 0..n {
        let head = format!("<14>1 - - bench - - - {tag}-{i} ");
        let m = format!("{head}{}", "x".repeat(100usize.saturating_sub(head.len())));
        while s.send_to(m.as_bytes(), sock).is_err() {
            std::thread::sleep(Duration::from_micros(50));
        }
        if let Some(r) = rate {
            let due = start + Duration::from_secs_f64(i as f64 / f64::from(r));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn make_certs(dir: &Path) {
    let sh = "openssl ecparam -name prime256v1 -genkey -noout -out ca-key.pem &&
openssl req -x509 -new -key ca-key.pem -days 2 -subj /CN=bench-ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign -out ca.pem &&
openssl ecparam -name prime256v1 -genkey -noout -out server-key.pem &&
openssl req -new -key server-key.pem -subj /CN=localhost -out server.csr &&
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext &&
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile server.ext -out server.pem";
    let ok = Command::new("sh")
        .arg("-c")
        .arg(sh)
        .current_dir(dir)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl failed");
}

fn route_url(kind: &str, port: u16, certs: &Path) -> String {
    match kind {
        "tls" => format!(
            "tls://127.0.0.1:{port}?ca={}&app=bench",
            certs.join("ca.pem").display()
        ),
        _ => format!("{kind}://127.0.0.1:{port}?app=bench"),
    }
}

/// Where Debian installs systemd-journal-remote.
fn journal_remote() -> Option<PathBuf> {
    [
        "/lib/systemd/systemd-journal-remote",
        "/usr/lib/systemd/systemd-journal-remote",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// One run of a journal+http route: `n` entries sent into the ring while
/// nothing listens, then systemd-journal-remote started; the rate from
/// the connect until every entry was acknowledged, and how many entries
/// its journal file holds.
fn journal_run(exe: &Path, n: usize, run: usize) -> (f64, usize) {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let d = ringlogd_routing(&format!("journal+http://127.0.0.1:{port}?app=bench"));
    let tag = format!("journal{run}");
    send(&d.path("log"), &tag, n, None);
    let mut rx = Command::new(exe)
        .arg("--split-mode=none")
        .arg(format!(
            "--output={}",
            dir.path().join("remote.journal").display()
        ))
        .arg(format!("--listen-http=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("systemd-journal-remote");
    while route_stats(&d)["state"] != "connected" {
        std::thread::sleep(Duration::from_millis(1));
    }
    let t = Instant::now();
    while route_stats(&d)["acknowledged"].as_u64() < Some(n as u64) {
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "the uploads stalled"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    let out = Command::new("journalctl")
        .arg("-D")
        .arg(dir.path())
        .args(["-o", "cat", "--no-pager"])
        .output()
        .expect("journalctl");
    let needle = format!("{tag}-");
    let written = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&needle))
        .count();
    let _ = rx.kill();
    let _ = rx.wait();
    (rate, written)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n: usize = count_arg(200_000);
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    println!("{n} messages of 100 bytes per run, median of 3");
    println!("transport     delivered by the route/s  written by the receiver/s  written");
    for kind in ["udp", "tcp", "tls", "relp"] {
        let mut sent_rates = Vec::new();
        let mut written_rates = Vec::new();
        let mut written = Vec::new();
        for run in 0..3 {
            let mut rx = Rsyslog::configure(kind, certs.path(), free_port());
            let d = ringlogd_routing(&route_url(kind, rx.port, certs.path()));
            let tag = format!("{kind}{run}");
            // UDP cannot tell that nothing listens until a datagram is
            // refused: its receiver starts first, and the figure includes
            // the sender into the ring.
            let udp = kind == "udp";
            if udp {
                rx.restart(true);
            } else {
                send(&d.path("log"), &tag, n, None);
                rx.restart(false);
            }
            while route_stats(&d)["state"] != "connected" {
                std::thread::sleep(Duration::from_millis(1));
            }
            let t = Instant::now();
            if udp {
                send(&d.path("log"), &tag, n, None);
            }
            let mut sent_at = None;
            let mut last = (0, Instant::now());
            loop {
                let r = route_stats(&d);
                if sent_at.is_none() && r["lag"] == 0 && r["sent"].as_u64() >= Some(n as u64) {
                    sent_at = Some(t.elapsed());
                }
                let c = rx.count(&format!("{tag}-"));
                if c != last.0 {
                    last = (c, Instant::now());
                }
                if c >= n || last.1.elapsed() > Duration::from_secs(3) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let done = last.1.duration_since(t);
            sent_rates.push(n as f64 / sent_at.unwrap_or(done).as_secs_f64());
            written_rates.push(last.0 as f64 / done.as_secs_f64());
            written.push(last.0 as f64);
        }
        println!(
            "{kind:<12}  {:>24.0}  {:>25.0}  {:>7.0}",
            median(sent_rates),
            median(written_rates),
            median(written)
        );
    }
    match journal_remote() {
        Some(exe) => {
            let runs: Vec<(f64, usize)> = (0..3).map(|run| journal_run(&exe, n, run)).collect();
            let rate = median(runs.iter().map(|r| r.0).collect());
            let written = median(runs.iter().map(|r| r.1 as f64).collect());
            // journal-remote answers once it has written: delivered is written.
            println!(
                "{:<12}  {rate:>24.0}  {rate:>25.0}  {written:>7.0}",
                "journal+http"
            );
        }
        None => println!(
            "journal+http: systemd-journal-remote is not installed (tests/run.sh installs it)"
        ),
    }

    println!("\nreceiver restart under 20k msg/s, 200k messages, rsyslogd down 1 s (SIGKILL)");
    println!("transport  reconnected after restart  lost  duplicated");
    for kind in ["relp", "tcp"] {
        let mut rx = Rsyslog::start(kind, certs.path());
        let d = ringlogd_routing(&route_url(kind, rx.port, certs.path()));
        let total = 200_000;
        let tag = format!("restart-{kind}");
        let sock = d.path("log");
        let t2 = tag.clone();
        let sender = std::thread::spawn(move || send(&sock, &t2, total, Some(20_000)));
        std::thread::sleep(Duration::from_secs(3));
        rx.kill();
        std::thread::sleep(Duration::from_secs(1));
        let reconnects = route_stats(&d)["reconnects"].as_u64().unwrap_or(0);
        rx.restart(false);
        let restarted = Instant::now();
        while route_stats(&d)["reconnects"].as_u64().unwrap_or(0) == reconnects {
            std::thread::sleep(Duration::from_millis(5));
        }
        let back = restarted.elapsed();
        sender.join().unwrap();
        while route_stats(&d)["lag"] != 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(1500));
        let mut seen = vec![0u32; total];
        let prefix = format!("{tag}-");
        for l in rx.lines() {
            if let Some(i) = l.find(&prefix) {
                let rest = &l[i + prefix.len()..];
                let num: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if let Ok(k) = num.parse::<usize>() {
                    seen[k] += 1;
                }
            }
        }
        let lost = seen.iter().filter(|&&c| c == 0).count();
        let dup = seen.iter().filter(|&&c| c > 1).count();
        println!("{kind:<9}  {:>25?}  {lost:>4}  {dup:>10}", back);
    }
}
