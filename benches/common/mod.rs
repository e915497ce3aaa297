//! What the benchmarks share: the daemon they measure, started in a
//! temporary directory and asked over its query socket; fds passed to its
//! intake as LinuxKit's init does; and their one optional count argument.
#![allow(dead_code)] // each benchmark is its own crate and uses a part

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use nix::sys::socket::UnixAddr;

/// A program built beside the benchmark: target/PROFILE/NAME (the
/// benchmark itself is target/PROFILE/deps/bench-HASH), or in
/// `$RINGLOGD_BIN_DIR`, to measure another build (an older commit's, say)
/// with the same benchmark.
pub fn bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("RINGLOGD_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join(name)
}

/// The first argument that is not an option (cargo bench adds --bench), as
/// a count; `default` without one.
pub fn count_arg<T: FromStr>(default: T) -> T {
    match std::env::args().skip(1).find(|a| !a.starts_with("--")) {
        Some(a) => a.parse().unwrap_or_else(|_| panic!("not a count: {a:?}")),
        None => default,
    }
}

/// A ringlogd on sockets in its own temporary directory, killed when
/// dropped.
pub struct Ringlogd {
    child: Child,
    pub dir: tempfile::TempDir,
}

impl Ringlogd {
    /// Start with `--runtime-dir` and `args`, and wait until it serves.
    pub fn start(args: &[&str]) -> Ringlogd {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(bin("ringlogd"))
            .arg("--runtime-dir")
            .arg(dir.path())
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .expect("build ringlogd first: cargo build --release");
        let q = dir.path().join("memlogdq.sock");
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&q).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("ringlogd exited: {status}; build it first: cargo build --release");
            }
            assert!(Instant::now() < deadline, "ringlogd did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        Ringlogd { child, dir }
    }

    /// A path in its directory: `log`, `linuxkit-external-logging.sock`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Send `req` to the query socket and read until it closes.
    pub fn query(&self, req: &[u8]) -> Vec<u8> {
        let mut c = UnixStream::connect(self.path("memlogdq.sock")).unwrap();
        c.write_all(req).unwrap();
        let mut out = Vec::new();
        c.read_to_end(&mut out).unwrap();
        out
    }

    pub fn stats(&self) -> serde_json::Value {
        serde_json::from_slice(&self.query(b"{\"mode\":\"stats\"}\n")).unwrap()
    }
}

impl Drop for Ringlogd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pass `fd` under `name` to the intake socket at `addr`, from `sender`.
pub fn pass_fd_from(sender: &UnixDatagram, addr: &UnixAddr, name: &str, fd: &impl AsRawFd) {
    ringlogd::client::logwrite::pass_fd(sender, addr, name.as_bytes(), fd).unwrap();
}

/// Pass `fd` to the intake socket under `name`, as LinuxKit's init does:
/// one datagram from an unbound socket.
pub fn pass_fd(intake: &Path, name: &str, fd: &impl AsRawFd) {
    let sender = UnixDatagram::unbound().unwrap();
    pass_fd_from(&sender, &UnixAddr::new(intake).unwrap(), name, fd);
}
