//! Re-executing a running daemon for an upgrade: the check that the new
//! program can run at all before the old one gives itself up to it, and
//! `ringlogd --reexec`, which asks a running daemon to do it and waits for
//! the answer. What the two processes hand each other is
//! [`crate::handover`].

use std::fs::File;
use std::io::{Read, Write};

/// The start of the entry a re-executed daemon logs once it serves.
pub const REEXECUTED: &str = "re-executed";
/// The start of the entry a daemon logs when it could not re-execute.
pub const REEXEC_FAILED: &str = "cannot re-execute";

/// `ringlogd --reexec`: send SIGUSR2 to the running daemon (the pid in
/// `--pidfile`, else `$MAINPID`) and wait, on its query socket, for the
/// entry its successor logs once it serves (`Ok`, that entry's text) or the
/// one it logs when it could not re-execute (`Err`).
pub fn request(settings: &crate::config::Settings) -> Result<String, String> {
    use std::time::{Duration, Instant};
    let pid = match (&settings.pidfile, std::env::var("MAINPID").ok()) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--reexec: cannot read --pidfile {}: {e}", path.display()))?;
            text.trim().parse::<i32>().map_err(|_| {
                format!("--reexec: --pidfile {} holds no pid", path.display())
            })?
        }
        (None, Some(p)) => p
            .trim()
            .parse::<i32>()
            .map_err(|_| format!("--reexec: MAINPID={p:?} is not a pid"))?,
        (None, None) => {
            return Err(
                "--reexec needs --pidfile (or MAINPID in the environment, as systemd sets it for ExecReload=)"
                    .into(),
            )
        }
    };
    let pid = nix::unistd::Pid::from_raw(pid);
    let query = &settings.query_socket;
    let ask = |request: &str| -> Result<Vec<u8>, String> {
        let mut c = std::os::unix::net::UnixStream::connect(query)
            .map_err(|e| format!("--reexec: cannot connect to {}: {e}", query.display()))?;
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        c.write_all(request.as_bytes())
            .map_err(|e| format!("--reexec: {}: {e}", query.display()))?;
        let mut out = Vec::new();
        c.read_to_end(&mut out)
            .map_err(|e| format!("--reexec: {}: {e}", query.display()))?;
        Ok(out)
    };
    let stats: serde_json::Value = serde_json::from_slice(&ask("{\"mode\":\"stats\"}\n")?)
        .map_err(|e| format!("--reexec: {}: unexpected stats reply: {e}", query.display()))?;
    let from = stats["ring"]["next_seq"]
        .as_u64()
        .ok_or_else(|| format!("--reexec: {}: the stats carry no next_seq", query.display()))?;
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR2)
        .map_err(|e| format!("--reexec: cannot signal pid {pid}: {e}"))?;
    let request = match from.checked_sub(1) {
        Some(after) => format!("{{\"input\":\"internal\",\"after_seq\":{after}}}\n"),
        None => "{\"input\":\"internal\"}\n".to_owned(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Between the exec and the successor's first turn, connections
        // wait in the listening socket's queue: a slow answer, not an error.
        if let Ok(out) = ask(&request) {
            for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let Ok(e) = serde_json::from_slice::<serde_json::Value>(line) else {
                    continue;
                };
                let msg = e["msg"].as_str().unwrap_or_default();
                if msg.starts_with(REEXECUTED) {
                    return Ok(format!("ringlogd (pid {pid}) {msg}"));
                }
                if msg.starts_with(REEXEC_FAILED) {
                    return Err(format!("ringlogd (pid {pid}): {msg}"));
                }
            }
        }
        if nix::sys::signal::kill(pid, None).is_err() {
            return Err(format!(
                "ringlogd (pid {pid}) is gone: it did not survive the re-exec; see its stderr"
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "ringlogd (pid {pid}) did not say it re-executed within 30 s; see its log"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How long a re-exec waits for the new program's `--version`: the loop
/// stands still meanwhile (datagrams wait in their sockets), so it is short.
pub const SUCCESSOR_CHECK_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Check, before re-executing, that `exe` will run: a regular file this
/// process may execute, an ELF program (not a script or a damaged file),
/// that runs `--version` and exits 0 within `limit`. An exec that succeeds
/// onto a program that then fails takes the ring with it; this is the
/// check upgrade tools make before they switch.
pub fn check_successor(exe: &std::path::Path, limit: std::time::Duration) -> Result<(), String> {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let at = exe.display();
    let meta = std::fs::metadata(exe).map_err(|e| format!("{at}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{at}: not a regular file"));
    }
    nix::unistd::access(exe, nix::unistd::AccessFlags::X_OK)
        .map_err(|e| format!("{at}: not executable ({e})"))?;
    let mut magic = [0u8; 4];
    File::open(exe)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| format!("{at}: cannot read its header: {e}"))?;
    if magic != *b"\x7fELF" {
        return Err(format!(
            "{at}: not an ELF program (a script, or a damaged file)"
        ));
    }
    let mut child = Command::new(exe)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{at} --version: cannot run it: {e}"))?;
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{at} --version: no answer within {} ms",
                    limit.as_millis()
                ));
            }
            Err(e) => return Err(format!("{at} --version: {e}")),
        }
    };
    if !status.success() {
        return Err(format!("{at} --version failed ({status})"));
    }
    Ok(())
}
