//! Socket activation: the sockets a service manager (systemd) bound and
//! handed over as fds 3, 4, ... with `LISTEN_FDS`, `LISTEN_PID` and
//! `LISTEN_FDNAMES` in the environment.
//!
//! Each fd's name says what it is for: `syslog` (any number of them),
//! `intake`, `query`, `udp` and `tcp`. Any other name (systemd's default is
//! the socket unit's file name) leaves the role to the socket's type: a
//! unix datagram socket is a syslog socket, a listening unix stream socket
//! the query socket, a UDP socket a UDP listener and a listening TCP socket
//! a TCP listener. The intake socket, a unix datagram socket like syslog's,
//! must be named. A handed-in socket is used as it is: never unlinked,
//! re-bound or re-listened.
//!
//! Beside sockets come the fds ringlogd left in systemd's fd store before
//! it last stopped (or crashed) ([`crate::handover`]): the ring's memfd
//! named `ring`, the intake fds it was reading named `fd.ID.NAME`, and
//! after a clean stop a memfd named `state` with their unfinished lines.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{
    getsockname, getsockopt, sockopt, AddressFamily, SockType, SockaddrLike, SockaddrStorage,
};

/// The first fd a service manager hands over (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// What a handed-in socket is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Syslog,
    Intake,
    Query,
    Udp,
    Tcp,
}

impl Role {
    fn from_name(name: &str) -> Option<Role> {
        Some(match name {
            "syslog" => Role::Syslog,
            "intake" => Role::Intake,
            "query" => Role::Query,
            "udp" => Role::Udp,
            "tcp" => Role::Tcp,
            _ => return None,
        })
    }

    fn needs(self) -> &'static str {
        match self {
            Role::Syslog | Role::Intake => "a unix datagram socket",
            Role::Query => "a listening unix stream socket",
            Role::Udp => "a UDP socket",
            Role::Tcp => "a listening TCP socket",
        }
    }
}

/// The sockets handed in, by role. Every fd is owned and close-on-exec.
#[derive(Debug, Default)]
pub struct Activated {
    pub syslog: Vec<OwnedFd>,
    pub intake: Option<OwnedFd>,
    pub query: Option<OwnedFd>,
    pub udp: Vec<OwnedFd>,
    pub tcp: Vec<OwnedFd>,
    /// What the fd store kept from before this start.
    pub stored: Stored,
}

/// The fds systemd's fd store gives back.
#[derive(Debug, Default)]
pub struct Stored {
    /// The ring's memfd.
    pub ring: Option<OwnedFd>,
    /// The unfinished lines of the intake fds, after a clean stop.
    pub state: Option<OwnedFd>,
    /// Intake fds, each with its store name.
    pub intake_fds: Vec<(String, OwnedFd)>,
}

impl Activated {
    /// The sockets this process was handed, if it was socket-activated
    /// (`LISTEN_PID` is this process). The variables are removed from the
    /// environment either way, so nothing started later takes them as its
    /// own.
    pub fn from_env() -> Result<Option<Activated>, String> {
        let pid = std::env::var("LISTEN_PID").ok();
        let fds = std::env::var("LISTEN_FDS").ok();
        let names = std::env::var("LISTEN_FDNAMES").ok();
        for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
            std::env::remove_var(var);
        }
        let me = std::process::id().to_string();
        if pid.as_deref().map(str::trim) != Some(me.as_str()) {
            return Ok(None);
        }
        let Some(fds) = fds else { return Ok(None) };
        let n: RawFd = fds
            .trim()
            .parse()
            .ok()
            .filter(|&n| (0..=4096).contains(&n))
            .ok_or_else(|| {
                format!("socket activation: LISTEN_FDS={fds:?} is not a count of fds")
            })?;
        if n == 0 {
            return Ok(None);
        }
        let names: Vec<&str> = names.as_deref().map_or(vec![], |n| n.split(':').collect());
        let mut activated = Activated::default();
        for i in 0..n {
            let fd = LISTEN_FDS_START + i;
            let name = names.get(i as usize).copied().unwrap_or("");
            activated.take(fd, name)?;
        }
        Ok(Some(activated))
    }

    fn take(&mut self, fd: RawFd, name: &str) -> Result<(), String> {
        let at = if name.is_empty() {
            format!("socket activation: fd {fd}")
        } else {
            format!("socket activation: fd {fd} ({name})")
        };
        // SAFETY: only a query; a number that is not open fails with EBADF.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        fcntl(borrowed, FcntlArg::F_GETFD)
            .map_err(|e| format!("{at}: not an open file descriptor ({e})"))?;
        // SAFETY: the service manager handed fds 3 .. 3+LISTEN_FDS to this
        // process (LISTEN_PID says so), it was just checked to be open, and
        // each number is taken once.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        fcntl(owned.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
            .map_err(|e| format!("{at}: cannot set close-on-exec ({e})"))?;
        if name == crate::handover::RING_FDNAME {
            // A second one (a store that kept an old ring too) replaces it.
            self.stored.ring = Some(owned);
            return Ok(());
        }
        if name == crate::handover::STATE_FDNAME {
            self.stored.state = Some(owned);
            return Ok(());
        }
        if crate::handover::intake_source_of(name).is_some() {
            self.stored.intake_fds.push((name.to_owned(), owned));
            return Ok(());
        }
        let role = role_of(owned.as_fd(), name).map_err(|e| format!("{at}: {e}"))?;
        let twice = |what: &str| format!("{at}: a second {what} socket; one is allowed");
        match role {
            Role::Syslog => self.syslog.push(owned),
            Role::Intake if self.intake.is_some() => return Err(twice("intake")),
            Role::Intake => self.intake = Some(owned),
            Role::Query if self.query.is_some() => return Err(twice("query")),
            Role::Query => self.query = Some(owned),
            Role::Udp => self.udp.push(owned),
            Role::Tcp => self.tcp.push(owned),
        }
        Ok(())
    }
}

/// The role of socket `fd` named `name`: the name's, if the socket fits
/// it; else the one its type implies.
fn role_of(fd: BorrowedFd, name: &str) -> Result<Role, String> {
    let ty = getsockopt(&fd, sockopt::SockType).map_err(|e| format!("not a socket ({e})"))?;
    let family = getsockname::<SockaddrStorage>(fd.as_raw_fd())
        .ok()
        .and_then(|a| a.family());
    let listening = ty == SockType::Stream && getsockopt(&fd, sockopt::AcceptConn).unwrap_or(false);
    let by_type = match (family, ty) {
        (Some(AddressFamily::Unix), SockType::Datagram) => Some(Role::Syslog),
        (Some(AddressFamily::Unix), SockType::Stream) if listening => Some(Role::Query),
        (Some(AddressFamily::Inet | AddressFamily::Inet6), SockType::Datagram) => Some(Role::Udp),
        (Some(AddressFamily::Inet | AddressFamily::Inet6), SockType::Stream) if listening => {
            Some(Role::Tcp)
        }
        _ => None,
    };
    let what = describe(family, ty, listening);
    match (Role::from_name(name), by_type) {
        (Some(Role::Intake), Some(Role::Syslog)) => Ok(Role::Intake),
        (Some(named), Some(typed)) if named == typed => Ok(named),
        (Some(named), _) => Err(format!(
            "is {what}, but {name} needs {}",
            named.needs()
        )),
        (None, Some(typed)) => Ok(typed),
        (None, None) => Err(format!(
            "is {what}, which ringlogd has no use for (name it syslog, intake, query, udp or tcp, with a socket to match)"
        )),
    }
}

fn describe(family: Option<AddressFamily>, ty: SockType, listening: bool) -> String {
    let fam = match family {
        Some(AddressFamily::Unix) => "unix",
        Some(AddressFamily::Inet) => "IPv4",
        Some(AddressFamily::Inet6) => "IPv6",
        Some(_) => "non-IP, non-unix",
        None => "unknown-family",
    };
    let kind = match ty {
        SockType::Datagram => "datagram",
        SockType::Stream if listening => "listening stream",
        SockType::Stream => "stream (not listening)",
        SockType::SeqPacket => "seqpacket",
        _ => "other",
    };
    let article = if fam.starts_with(['I', 'u']) && fam != "unix" {
        "an"
    } else {
        "a"
    };
    format!("{article} {fam} {kind} socket")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};

    fn role(fd: &impl AsFd, name: &str) -> Result<Role, String> {
        role_of(fd.as_fd(), name)
    }

    #[test]
    fn names_decide_when_the_socket_fits() {
        let dir = tempfile::tempdir().unwrap();
        let dgram = UnixDatagram::bind(dir.path().join("d")).unwrap();
        let listener = UnixListener::bind(dir.path().join("s")).unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(role(&dgram, "syslog"), Ok(Role::Syslog));
        assert_eq!(role(&dgram, "intake"), Ok(Role::Intake));
        assert_eq!(role(&dgram, "syslog.socket"), Ok(Role::Syslog));
        assert_eq!(role(&dgram, ""), Ok(Role::Syslog));
        assert_eq!(role(&listener, "query"), Ok(Role::Query));
        assert_eq!(role(&listener, "ringlogd-query.socket"), Ok(Role::Query));
        assert_eq!(role(&udp, "udp"), Ok(Role::Udp));
        assert_eq!(role(&udp, "x"), Ok(Role::Udp));
        assert_eq!(role(&tcp, "tcp"), Ok(Role::Tcp));
        assert_eq!(role(&tcp, "x"), Ok(Role::Tcp));
    }

    #[test]
    fn a_socket_that_does_not_fit_its_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dgram = UnixDatagram::bind(dir.path().join("d")).unwrap();
        let (stream, _) = UnixStream::pair().unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let err = role(&dgram, "query").unwrap_err();
        assert_eq!(
            err,
            "is a unix datagram socket, but query needs a listening unix stream socket"
        );
        assert!(role(&tcp, "udp")
            .unwrap_err()
            .contains("udp needs a UDP socket"));
        let err = role(&stream, "").unwrap_err();
        assert!(err.contains("stream (not listening)"), "{err}");
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(role(&file, "syslog")
            .unwrap_err()
            .starts_with("not a socket"));
    }
}
