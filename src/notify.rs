//! Readiness for a service manager (systemd's `Type=notify`): a datagram
//! such as `READY=1` sent to the unix socket `NOTIFY_SOCKET` names (a path,
//! or an abstract name written with a leading `@`).
//!
//! The socket is connected when the daemon starts, before it gives up root,
//! so notices still reach a socket only root may write to afterwards.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    /// `NOTIFY_SOCKET` as it was, for a successor started by re-exec.
    addr: String,
}

impl Notifier {
    /// Connect to the socket `NOTIFY_SOCKET` names, if it is set; the
    /// variable is removed, so nothing started later notifies in our name.
    pub fn from_env() -> Result<Option<Notifier>, String> {
        let Some(value) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(None);
        };
        std::env::remove_var("NOTIFY_SOCKET");
        let bytes = value.as_encoded_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name),
            None => SocketAddr::from_pathname(&value),
        }
        .map_err(|e| format!("NOTIFY_SOCKET={value:?}: {e}"))?;
        let socket = UnixDatagram::unbound()
            .and_then(|s| s.connect_addr(&addr).map(|()| s))
            .map_err(|e| format!("NOTIFY_SOCKET={value:?}: cannot connect: {e}"))?;
        Ok(Some(Notifier {
            socket,
            addr: value.to_string_lossy().into_owned(),
        }))
    }

    /// The value `NOTIFY_SOCKET` had.
    pub fn address(&self) -> &str {
        &self.addr
    }

    /// Hand `fd` to the service manager's fd store under `name` (a valid
    /// fd name: printable ASCII without `:`, at most 255 characters); the
    /// next start gets it back through `LISTEN_FDS`. Needs
    /// `FileDescriptorStoreMax=` in the unit.
    pub fn store_fd(&self, name: &str, fd: BorrowedFd<'_>) -> io::Result<()> {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        let text = format!("FDSTORE=1\nFDNAME={name}");
        let fds = [fd.as_raw_fd()];
        sendmsg::<()>(
            self.socket.as_raw_fd(),
            &[io::IoSlice::new(text.as_bytes())],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map(|_| ())
        .map_err(io::Error::from)
    }

    /// Take the fds stored under `name` out of the fd store (closing them).
    pub fn remove_fd(&self, name: &str) -> io::Result<()> {
        self.send(&format!("FDSTOREREMOVE=1\nFDNAME={name}"))
    }

    /// Send `state`, newline-separated `KEY=VALUE` assignments.
    pub fn send(&self, state: &str) -> io::Result<()> {
        self.socket.send(state.as_bytes()).map(|_| ())
    }

    /// The daemon serves: every socket is bound.
    pub fn ready(&self, status: &str) -> io::Result<()> {
        self.send(&format!(
            "READY=1\nMAINPID={}\nSTATUS={status}",
            std::process::id()
        ))
    }

    /// A reload starts; [`Notifier::ready`] ends it.
    pub fn reloading(&self) -> io::Result<()> {
        // systemd 253 and later want the time the reload started.
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
            .unwrap_or(0);
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={now}"))
    }

    pub fn stopping(&self) -> io::Result<()> {
        self.send("STOPPING=1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let socket = UnixDatagram::unbound().unwrap();
        socket.connect(&path).unwrap();
        let n = Notifier {
            socket,
            addr: String::new(),
        };
        n.ready("serving").unwrap();
        let mut buf = [0u8; 256];
        let len = server.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..len]).unwrap();
        assert!(msg.starts_with("READY=1\nMAINPID="), "{msg}");
        assert!(msg.ends_with("\nSTATUS=serving"), "{msg}");
    }
}
