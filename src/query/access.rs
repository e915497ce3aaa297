//! Who may read what on the query socket, from the credentials the kernel
//! gives for the connection (SO_PEERCRED, SO_PEERGROUPS), never from
//! anything the client says.
//!
//! Root, the user the daemon runs as, and members of `--query-group` read
//! every entry and may pause, resume, clear, release captures or drop intake fds. Anyone else who can connect
//! (the socket's mode decides who can) reads only the entries whose sender
//! the kernel identified as its own uid, as journald does for per-user
//! journals, and may not change the ring: a shared machine can open the
//! socket to all without opening everyone's logs to all.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::libc;
use nix::sys::socket::{getsockopt, sockopt};

use super::request::{Dialect, Parse, Request};

/// The uid no process has ((uid_t)-1): a reader restricted to it sees
/// nothing, which is what a reader whose credentials cannot be read gets.
const NOBODY_AT_ALL: u32 = u32::MAX;

/// The rule for every connection to one query socket.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// The daemon's own effective uid: its user reads everything.
    owner: u32,
    group: Option<u32>,
}

impl Policy {
    pub fn new(group: Option<u32>) -> Policy {
        Policy {
            owner: nix::unistd::geteuid().as_raw(),
            group,
        }
    }

    /// `None` when the peer on `fd` reads everything, else the one sender
    /// uid whose entries it may read.
    pub fn restriction(&self, fd: BorrowedFd<'_>) -> Option<u32> {
        let Ok(cred) = getsockopt(&fd, sockopt::PeerCredentials) else {
            return Some(NOBODY_AT_ALL);
        };
        let uid = cred.uid();
        if uid == 0 || uid == self.owner {
            return None;
        }
        match self.group {
            Some(g) if cred.gid() == g || peer_groups(fd).contains(&g) => None,
            _ => Some(uid),
        }
    }
}

/// Apply a connection's restriction to its request: a read is narrowed to
/// the peer's own entries, a change to the ring is refused. Stats (counts,
/// no text), and the metrics made of them, are for everyone who can
/// connect.
pub fn restrict(req: Request, dialect: Dialect, only_uid: Option<u32>) -> Parse {
    match (req, only_uid) {
        (req, None) => Parse::Done(req, dialect),
        (Request::Read(mut q), Some(uid)) => {
            q.filter.peer_uid = Some(uid);
            Parse::Done(Request::Read(q), dialect)
        }
        (req @ (Request::Stats | Request::Metrics), Some(_)) => Parse::Done(req, dialect),
        // Triggers that are not its own are shown without their text.
        (Request::Captures, Some(_)) => Parse::Done(Request::Captures, dialect),
        (Request::Control(_), Some(_)) => Parse::error(
            dialect,
            403,
            "only root, the daemon's user and the query group may pause, resume, clear, release captures or drop intake fds",
        ),
    }
}

/// The peer's supplementary groups as the kernel recorded them at
/// connect(); empty if the kernel cannot say.
fn peer_groups(fd: BorrowedFd<'_>) -> Vec<u32> {
    let mut groups = vec![0 as libc::gid_t; 64];
    for _ in 0..2 {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: the buffer is `len` bytes of gid_t, which is what
        // SO_PEERGROUPS writes; `len` comes back as the bytes written (or,
        // with ERANGE, the bytes needed).
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let n = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(n);
            return groups;
        }
        if nix::errno::Errno::last() != nix::errno::Errno::ERANGE || n <= groups.len() {
            break;
        }
        groups.resize(n, 0);
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Control;
    use crate::query::request::{Mode, Query};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn this_user_reads_everything_on_its_own_socket() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(Policy::new(None).restriction(a.as_fd()), None);
    }

    #[test]
    fn a_restricted_reader_gets_its_own_entries_and_no_controls() {
        let read = Request::Read(Box::new(Query::new(Mode::Dump)));
        match restrict(read, Dialect::Json, Some(1000)) {
            Parse::Done(Request::Read(q), _) => assert_eq!(q.filter.peer_uid, Some(1000)),
            other => panic!("{other:?}"),
        }
        let clear = Request::Control(Control::Clear);
        assert!(matches!(
            restrict(clear, Dialect::Http, Some(1000)),
            Parse::Error { status: 403, .. }
        ));
        assert!(matches!(
            restrict(Request::Stats, Dialect::Json, Some(1000)),
            Parse::Done(Request::Stats, _)
        ));
        let clear = Request::Control(Control::Clear);
        assert!(matches!(
            restrict(clear, Dialect::Json, None),
            Parse::Done(Request::Control(Control::Clear), _)
        ));
    }
}
