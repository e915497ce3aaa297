//! Going on after a restart: what a daemon hands its successor.
//!
//! Two ways, one shape of state:
//! - re-exec (SIGUSR2): the daemon executes its own program again, in the
//!   same process, with the fds that matter inherited (close-on-exec
//!   cleared for those alone) and a [`State`] describing them written to a
//!   memfd whose number is in [`REEXEC_ENV`];
//! - the systemd fd store: the ring's memfd and every intake fd are handed
//!   to the service manager as they come ([`fdname_for_intake`] names them)
//!   and come back through socket activation on the next start, together
//!   with, after a clean stop, a memfd named [`STATE_FDNAME`] holding the
//!   unfinished lines of those fds.
//!
//! The state is JSON: small, and read by the same program version or a
//! newer one (unknown fields are ignored, missing ones take defaults).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use serde::{Deserialize, Serialize};

use crate::parse::frames::SavedFramer;

/// The environment variable naming the memfd that holds the [`State`].
pub const REEXEC_ENV: &str = "RINGLOGD_REEXEC";
/// The fd store name of the ring's memfd.
pub const RING_FDNAME: &str = "ring";
/// The fd store name of the memfd that holds, after a clean stop, the
/// unfinished lines of the intake fds in the store.
pub const STATE_FDNAME: &str = "state";
/// Intake fds in the store are named `fd.<id>.<escaped source name>`.
const INTAKE_PREFIX: &str = "fd.";
/// systemd's limit on an fd name.
const MAX_FDNAME: usize = 255;
/// The format of [`State`]; a successor refuses a newer one.
pub const STATE_VERSION: u32 = 1;

/// A socket handed over, and the path this daemon bound it at (to remove
/// when it stops), if it bound one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketFd {
    pub fd: RawFd,
    pub path: Option<PathBuf>,
}

/// An entry being joined (`--multiline`) when the fd was handed over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingState {
    pub text: String,
    pub severity: Option<u8>,
    pub truncated: bool,
    pub first_ns: i64,
    /// How long ago its first line was read, for the flush timeout.
    pub age_ms: u64,
}

/// An intake fd being read, with what was read of it and not yet stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntakeFdState {
    /// The fd number in the successor (re-exec), or -1 in the fd store's
    /// state, where `fdname` says which fd it is.
    pub fd: RawFd,
    pub name: String,
    /// Its name in the systemd fd store, if it was stored there.
    pub fdname: Option<String>,
    #[serde(with = "hex_bytes")]
    pub partial: Vec<u8>,
    pub skipping: bool,
    pub pending: Option<PendingState>,
}

/// A TCP connection being read, with its unfinished frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnState {
    pub fd: RawFd,
    pub peer: std::net::SocketAddr,
    pub framer: SavedFramer,
}

/// Everything a successor needs to go on where this daemon stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// The ring's memfd.
    pub ring: Option<RawFd>,
    #[serde(default)]
    pub syslog: Vec<SocketFd>,
    pub intake: Option<SocketFd>,
    pub query: Option<SocketFd>,
    #[serde(default)]
    pub udp: Vec<RawFd>,
    #[serde(default)]
    pub tcp: Vec<RawFd>,
    /// The kernel log device, kept open (after `--user` it may not be
    /// opened again).
    pub kmsg: Option<RawFd>,
    #[serde(default)]
    pub intake_fds: Vec<IntakeFdState>,
    #[serde(default)]
    pub conns: Vec<ConnState>,
    /// Each route's first entry not yet delivered, by URL.
    #[serde(default)]
    pub routes: Vec<(String, u64)>,
    /// `NOTIFY_SOCKET`, which the daemon took out of its environment.
    pub notify_socket: Option<String>,
    /// The ring was already handed to the systemd fd store.
    #[serde(default)]
    pub ring_in_fdstore: bool,
    /// The `--metrics` listeners.
    #[serde(default)]
    pub metrics: Vec<RawFd>,
}

impl State {
    /// Every fd the state names, for clearing close-on-exec.
    pub fn fds(&self) -> Vec<RawFd> {
        let mut v: Vec<RawFd> = self.ring.into_iter().collect();
        v.extend(self.syslog.iter().map(|s| s.fd));
        v.extend(self.intake.iter().map(|s| s.fd));
        v.extend(self.query.iter().map(|s| s.fd));
        v.extend(&self.udp);
        v.extend(&self.tcp);
        v.extend(self.kmsg);
        v.extend(self.intake_fds.iter().map(|f| f.fd));
        v.extend(self.conns.iter().map(|c| c.fd));
        v.extend(&self.metrics);
        v.retain(|&fd| fd >= 0);
        v
    }

    /// The state as a memfd (not close-on-exec), read back with
    /// [`State::read_fd`].
    pub fn to_memfd(&self) -> Result<OwnedFd, String> {
        let fd =
            nix::sys::memfd::memfd_create(c"ringlogd-state", nix::sys::memfd::MFdFlags::empty())
                .map_err(|e| format!("cannot create a memfd for the state: {e}"))?;
        let mut f = File::from(fd);
        let text = serde_json::to_vec(self).map_err(|e| format!("cannot encode the state: {e}"))?;
        f.write_all(&text)
            .and_then(|()| f.rewind())
            .map_err(|e| format!("cannot write the state: {e}"))?;
        Ok(OwnedFd::from(f))
    }

    /// Read a state written by [`State::to_memfd`] (from its start).
    pub fn read_fd(fd: OwnedFd) -> Result<State, String> {
        let mut f = File::from(fd);
        let _ = f.rewind();
        let mut text = Vec::new();
        f.read_to_end(&mut text)
            .map_err(|e| format!("cannot read the handed-over state: {e}"))?;
        let state: State = serde_json::from_slice(&text)
            .map_err(|e| format!("the handed-over state is not readable: {e}"))?;
        if state.version > STATE_VERSION {
            return Err(format!(
                "the handed-over state has format version {}, newer than this ringlogd reads ({STATE_VERSION})",
                state.version
            ));
        }
        Ok(state)
    }

    /// The state a predecessor handed over by re-executing, if this process
    /// is such a successor. The variable is removed either way.
    pub fn from_env() -> Result<Option<State>, String> {
        let Some(value) = std::env::var_os(REEXEC_ENV) else {
            return Ok(None);
        };
        std::env::remove_var(REEXEC_ENV);
        let fd: RawFd = value
            .to_str()
            .and_then(|v| v.trim().parse().ok())
            .filter(|&n| n >= 0)
            .ok_or_else(|| format!("{REEXEC_ENV}={value:?} is not an fd number"))?;
        // SAFETY: only a query; a number that is not open fails with EBADF.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        fcntl(borrowed, FcntlArg::F_GETFD)
            .map_err(|e| format!("{REEXEC_ENV}: fd {fd} is not open ({e})"))?;
        // SAFETY: the predecessor passed this memfd to this process alone
        // and it was just checked to be open.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let state = State::read_fd(owned)?;
        for fd in state.fds() {
            // Ours now: nothing started later inherits it.
            let _ = fcntl(borrow(fd), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
        }
        Ok(Some(state))
    }
}

/// Take ownership of a handed-over fd number, if it is open.
pub fn take_fd(fd: RawFd) -> Option<OwnedFd> {
    if fd < 0 || fcntl(borrow(fd), FcntlArg::F_GETFD).is_err() {
        return None;
    }
    // SAFETY: the predecessor handed this number to this process (the state
    // names it once) and it was just checked to be open.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Set or clear close-on-exec on `fds`.
pub fn set_cloexec(fds: &[RawFd], on: bool) -> Result<(), String> {
    let flag = if on {
        FdFlag::FD_CLOEXEC
    } else {
        FdFlag::empty()
    };
    for &fd in fds {
        fcntl(borrow(fd), FcntlArg::F_SETFD(flag))
            .map_err(|e| format!("fd {fd}: cannot change close-on-exec: {e}"))?;
    }
    Ok(())
}

fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: only for fcntl on numbers this module is handed; a closed
    // number fails with EBADF, nothing worse.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// The fd store name of an intake fd read under `source`: `fd.ID.NAME`,
/// with every byte of NAME outside printable ASCII, and `:` and `%`,
/// written `%XX`, and NAME cut (at a whole escape) so the whole stays
/// within systemd's 255 characters. `id` tells fds of one name apart.
pub fn fdname_for_intake(id: &str, source: &str) -> String {
    let mut out = format!("{INTAKE_PREFIX}{id}.");
    for &b in source.as_bytes() {
        let piece = if (0x21..0x7f).contains(&b) && b != b':' && b != b'%' {
            (b as char).to_string()
        } else {
            format!("%{b:02X}")
        };
        if out.len() + piece.len() > MAX_FDNAME {
            break;
        }
        out.push_str(&piece);
    }
    out
}

/// The source name an intake fd's store name encodes; `None` if the name
/// is not one of [`fdname_for_intake`]'s.
pub fn intake_source_of(fdname: &str) -> Option<String> {
    let rest = fdname.strip_prefix(INTAKE_PREFIX)?;
    let (_, escaped) = rest.split_once('.')?;
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(crate::parse::escape_invalid_utf8(&out).into_owned())
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), if it can be read.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// A borrowed fd's number, for the state.
pub fn raw(fd: BorrowedFd<'_>) -> RawFd {
    fd.as_fd().as_raw_fd()
}

/// `Vec<u8>` as a hex string: half the size of a JSON array of numbers.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            out.push_str(&format!("{b:02x}"));
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd number of hex digits"));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| serde::de::Error::custom("not hex"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intake_fdnames_are_valid_and_round_trip() {
        for name in ["svc", "onboot.001-dhcpcd", "a:b", "50% of ünïcode\n", ""] {
            let n = fdname_for_intake("1a2b-3", name);
            assert!(n.len() <= MAX_FDNAME, "{n}");
            assert!(
                n.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b':'),
                "{n}"
            );
            assert_eq!(intake_source_of(&n).as_deref(), Some(name), "{n}");
        }
        let long = "x".repeat(1000);
        let n = fdname_for_intake("7", &long);
        assert_eq!(n.len(), MAX_FDNAME);
        assert_eq!(intake_source_of(&n).unwrap(), "x".repeat(MAX_FDNAME - 5));
        let n = fdname_for_intake("7", &"é".repeat(200));
        assert!(
            n.len() <= MAX_FDNAME && intake_source_of(&n).is_some(),
            "{n}"
        );
        assert_eq!(intake_source_of("ring"), None);
        assert_eq!(intake_source_of("fd.1.%zz"), None);
    }

    #[test]
    fn state_round_trips_through_a_memfd() {
        let s = State {
            version: STATE_VERSION,
            ring: Some(9),
            intake_fds: vec![IntakeFdState {
                fd: 12,
                name: "svc".into(),
                fdname: Some("fd.1.svc".into()),
                partial: b"half a li\xffne".to_vec(),
                skipping: false,
                pending: None,
            }],
            routes: vec![("tcp://h:1".into(), 42)],
            ..State::default()
        };
        let fd = s.to_memfd().unwrap();
        assert_eq!(State::read_fd(fd).unwrap(), s);
        let newer = State {
            version: STATE_VERSION + 1,
            ..State::default()
        };
        let e = State::read_fd(newer.to_memfd().unwrap()).unwrap_err();
        assert!(e.contains("newer"), "{e}");
    }
}
