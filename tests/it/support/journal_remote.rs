//! The real `systemd-journal-remote` (Debian: systemd-journal-remote),
//! listening for uploads on a free loopback port and writing one journal
//! file in a temporary directory (`--split-mode=none`), read back with
//! `journalctl -D DIR -o json`: the directory also holds the file a
//! killed receiver leaves behind, which it renames on its next start.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::receiver::{free_port, Input, Pki};
use super::{parse_lines, require, run_ok, signal, wait_peer_listening, wait_timeout, Received};

/// Where Debian installs it (before and after the /usr merge).
const PROGRAM: [&str; 2] = [
    "/lib/systemd/systemd-journal-remote",
    "/usr/lib/systemd/systemd-journal-remote",
];

/// The program; when it is missing, `None` outside CI (saying so), and a
/// failure under CI, whose tests/run.sh installs it.
pub fn program_or_skip() -> Option<PathBuf> {
    if let Some(p) = PROGRAM.iter().map(PathBuf::from).find(|p| p.is_file()) {
        return Some(p);
    }
    let why = "systemd-journal-remote is not installed (apt-get install systemd-journal-remote; \
               tests/run.sh does)";
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("skipped: {why}");
    None
}

/// A running (or killed) systemd-journal-remote.
pub struct JournalRemote {
    exe: PathBuf,
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// HTTPS with the server certificate and key of this directory's
    /// [`Pki`]. Debian 12 builds journal-remote without GnuTLS, so it
    /// refuses `--trust` and checks no client certificate.
    pki: Option<PathBuf>,
    starts: u32,
}

impl JournalRemote {
    /// Listening over HTTP, or HTTPS with `pki`'s certificates; `None`
    /// when the program is missing outside CI.
    pub fn start(pki: Option<&Pki>) -> Option<JournalRemote> {
        let exe = program_or_skip()?;
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("journal")).unwrap();
        let mut r = JournalRemote {
            exe,
            child: None,
            dir,
            port: free_port(Input::Tcp),
            pki: pki.map(|p| p.dir.clone()),
            starts: 0,
        };
        r.restart();
        Some(r)
    }

    /// The journal files' directory (`journalctl -D`).
    pub fn journal_dir(&self) -> PathBuf {
        self.dir.path().join("journal")
    }

    /// Start it (again), and wait until it listens.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.starts += 1;
        let log = std::fs::File::create(self.log_path(self.starts)).unwrap();
        let mut c = Command::new(&self.exe);
        c.arg("--split-mode=none").arg(format!(
            "--output={}",
            self.journal_dir().join("remote.journal").display()
        ));
        let listen = format!("127.0.0.1:{}", self.port);
        match &self.pki {
            None => c.arg(format!("--listen-http={listen}")),
            Some(dir) => c
                .arg(format!("--listen-https={listen}"))
                .arg(format!("--key={}", dir.join("server-key.pem").display()))
                .arg(format!("--cert={}", dir.join("server.pem").display())),
        };
        let child = c
            .env("SYSTEMD_LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start systemd-journal-remote");
        let mut child = child;
        let port = self.port;
        let taken = || TcpListener::bind(("127.0.0.1", port)).is_err();
        wait_peer_listening("systemd-journal-remote", &mut child, port, taken, || {
            self.log()
        });
        self.child = Some(child);
    }

    fn log_path(&self, start: u32) -> PathBuf {
        self.dir.path().join(format!("journal-remote-{start}.log"))
    }

    /// Everything it logged about itself.
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|i| std::fs::read_to_string(self.log_path(i)).unwrap_or_default())
            .collect()
    }

    /// `kill -SIG` it and wait for it to be gone.
    pub fn kill(&mut self, sig: &str) {
        let mut child = self.child.take().expect("running");
        signal(child.id(), sig);
        wait_timeout(&mut child, Duration::from_secs(10));
    }

    /// The route URL for it, with `options`.
    pub fn url(&self, options: &str) -> String {
        let scheme = if self.pki.is_some() {
            "journal+https"
        } else {
            "journal+http"
        };
        let q = if options.is_empty() {
            String::new()
        } else {
            format!("?{options}")
        };
        format!("{scheme}://127.0.0.1:{}{q}", self.port)
    }

    /// Every entry of its journal files, as `journalctl -o json` shows
    /// them (all of each field: `--all`).
    pub fn entries(&self) -> Vec<Value> {
        let out = run_ok(
            Command::new(require("journalctl"))
                .arg("-D")
                .arg(self.journal_dir())
                .args(["-o", "json", "--all", "--no-pager"]),
        );
        parse_lines(&out.stdout)
    }
}

impl Received for JournalRemote {
    // journalctl reads the whole file each time: not too often.
    const EVERY: Duration = Duration::from_millis(200);

    fn received(&self) -> Vec<Value> {
        self.entries()
    }

    fn describe(&self, got: &[Value]) -> String {
        format!("{} entries; journal-remote: {}", got.len(), self.log())
    }
}

impl Drop for JournalRemote {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
