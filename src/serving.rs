//! The one line the daemon prints on stderr once it serves: where it
//! listens and how big its ring is, e.g. `ringlogd: serving
//! /run/ringlogd/log, query /run/ringlogd/memlogdq.sock, intake
//! /run/ringlogd/linuxkit-external-logging.sock; ring 8 MiB, 5000 lines`.
//! It is for a person at a terminal, or whoever asks with `-v`; a service
//! manager's journal or a script that starts ringlogd gets nothing.
//!
//! Names come from the sockets themselves, so a socket handed in by a
//! service manager or a parent process is named as truly as one bound here.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::Path;

use nix::sys::socket::{getsockname, UnixAddr};

use crate::ring::Limits;

/// Where the daemon serves, and its ring's limits.
pub struct Serving<'a> {
    pub syslog: Vec<RawFd>,
    pub query: RawFd,
    pub intake: RawFd,
    /// (`"udp"` or `"tcp"`, the bound address).
    pub net: Vec<(&'static str, SocketAddr)>,
    /// The kernel log read, if any.
    pub kmsg: Option<&'a Path>,
    pub limits: Limits,
}

/// Whether the line is printed: with `-v`, or when stderr is a terminal.
pub fn wanted(verbose: bool) -> bool {
    verbose || std::io::stderr().is_terminal()
}

impl Serving<'_> {
    /// The line, without a newline.
    pub fn line(&self) -> String {
        let mut parts: Vec<String> = self.syslog.iter().map(|&fd| socket_name(fd)).collect();
        parts.push(format!("query {}", socket_name(self.query)));
        parts.push(format!("intake {}", socket_name(self.intake)));
        parts.extend(
            self.net
                .iter()
                .map(|(proto, addr)| format!("{proto} {addr}")),
        );
        if let Some(k) = self.kmsg {
            parts.push(format!("kernel {}", k.display()));
        }
        format!(
            "ringlogd: serving {}; ring {}, {} lines",
            parts.join(", "),
            size(self.limits.max_bytes),
            self.limits.max_lines
        )
    }
}

/// The path a unix socket is bound at, else `fd N`.
fn socket_name(fd: RawFd) -> String {
    match getsockname::<UnixAddr>(fd) {
        Ok(addr) => match (addr.path(), addr.as_abstract()) {
            (Some(p), _) => p.display().to_string(),
            (None, Some(name)) => format!("@{}", String::from_utf8_lossy(name)),
            (None, None) => format!("fd {fd}"),
        },
        Err(_) => format!("fd {fd}"),
    }
}

/// `8 MiB`, `64 KiB`, or a number of bytes, as `--max-bytes` was given.
fn size(bytes: usize) -> String {
    const UNITS: [(u32, &str); 3] = [(30, "GiB"), (20, "MiB"), (10, "KiB")];
    UNITS
        .iter()
        .find(|(shift, _)| bytes >= 1 << shift && bytes % (1 << shift) == 0)
        .map_or(format!("{bytes} bytes"), |(shift, unit)| {
            format!("{} {unit}", bytes >> shift)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_shown_as_given() {
        assert_eq!(size(8 << 20), "8 MiB");
        assert_eq!(size(64 << 10), "64 KiB");
        assert_eq!(size(1 << 30), "1 GiB");
        assert_eq!(size(1536 << 10), "1536 KiB");
        assert_eq!(size(20000), "20000 bytes");
    }
}
