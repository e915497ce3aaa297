//! The sockets the daemon listens on, however it got them: bound at a path
//! (and removed again when it stops), inherited from the process that
//! started it (`--fd-syslog`, `--fd-query`, `--fd-log`: never unlinked or
//! rebound, they belong to whoever made them), handed in by a service
//! manager ([`crate::lifecycle::activation`]: the same rules), or handed over by its
//! own parent under `--daemonize`.
//!
//! Syslog sockets pass credentials (SO_PASSCRED) from before the first
//! datagram can reach them: a path is bound only once the option is on, and
//! a socket handed in has it turned on before the daemon reads it. A
//! datagram queued before that carries none; the kernel then gives a
//! placeholder, which is stored as no sender at all (the syslog source
//! checks for it).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use mio::net::{UnixDatagram, UnixListener};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{getsockname, getsockopt, setsockopt, sockopt, SockType, UnixAddr};
use nix::unistd::Gid;
use socket2::{Domain, SockAddr, Socket, Type};

use crate::config::Settings;
use crate::lifecycle::activation::Activated;
use crate::sockpath::{self, BoundPath, Listener, SocketKind};

/// Every socket the daemon serves.
#[derive(Debug)]
pub struct Listeners {
    pub syslog: Vec<Listener<UnixDatagram>>,
    pub intake: Listener<UnixDatagram>,
    pub query: Listener<UnixListener>,
    /// UDP sockets and TCP listeners handed in by socket activation; those
    /// the flags ask for are bound by the network source.
    pub udp: Vec<std::net::UdpSocket>,
    pub tcp: Vec<std::net::TcpListener>,
}

/// The fd numbers of a [`Listeners`], role by role: what a daemonizing
/// parent passes to the background daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandedFds {
    /// The `--fd-syslog` sockets first, then those bound at paths, in the
    /// order of the flags.
    pub syslog: Vec<RawFd>,
    pub intake: RawFd,
    pub query: RawFd,
}

impl Listeners {
    /// Bind or inherit every socket `settings` asks for, using the ones
    /// socket activation handed in (`activated`) in place of binding their
    /// paths; with `handed`, take over the ones a daemonizing parent bound
    /// instead. Errors name the flag or path at fault.
    pub fn open(
        settings: &Settings,
        handed: Option<&HandedFds>,
        activated: Option<Activated>,
    ) -> Result<Listeners, String> {
        match (handed, activated) {
            (Some(_), Some(_)) => Err(
                "socket activation and --daemonize do not mix: a service manager keeps ringlogd in the foreground"
                    .into(),
            ),
            (Some(h), None) => Listeners::take_over(settings, h),
            (None, a) => Listeners::bind(settings, a.unwrap_or_default()),
        }
    }

    fn bind(settings: &Settings, activated: Activated) -> Result<Listeners, String> {
        let mut given = settings.syslog_fds.clone();
        given.extend(settings.intake_fd);
        given.extend(settings.query_fd);
        given.extend(activated.syslog.iter().map(|f| f.as_raw_fd()));
        given.extend(activated.intake.iter().map(|f| f.as_raw_fd()));
        given.extend(activated.query.iter().map(|f| f.as_raw_fd()));
        given.extend(activated.udp.iter().map(|f| f.as_raw_fd()));
        given.extend(activated.tcp.iter().map(|f| f.as_raw_fd()));
        check_distinct(given)?;
        let twice = |what: &str, flag: &str, fd: RawFd| {
            format!("the {what} socket is handed in twice: by {flag} {fd} and by socket activation")
        };
        if let (Some(fd), Some(_)) = (settings.intake_fd, &activated.intake) {
            return Err(twice("intake", "--fd-log", fd));
        }
        if let (Some(fd), Some(_)) = (settings.query_fd, &activated.query) {
            return Err(twice("query", "--fd-query", fd));
        }
        // Inherited sockets first: a bad --fd-* flag must fail before any
        // path is bound.
        let mut syslog = settings
            .syslog_fds
            .iter()
            .map(|&fd| {
                Ok(Listener {
                    socket: with_credentials(inherited_datagram(fd, "--fd-syslog")?)?,
                    path: None,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let intake = settings
            .intake_fd
            .map(|fd| inherited_datagram(fd, "--fd-log"))
            .transpose()?;
        let query = settings
            .query_fd
            .map(|fd| inherited_listener(fd, "--fd-query"))
            .transpose()?;
        let Activated {
            syslog: act_syslog,
            intake: act_intake,
            query: act_query,
            udp,
            tcp,
            stored: _,
        } = activated;
        // Handed-in syslog sockets replace the default path, as --fd-syslog
        // does; paths named explicitly are bound as well.
        let bind_paths = !settings.syslog_default || act_syslog.is_empty();
        for fd in act_syslog {
            syslog.push(Listener {
                socket: with_credentials(adopt_datagram(fd)?)?,
                path: None,
            });
        }
        let intake = match (intake, act_intake) {
            (Some(socket), _) => Some(socket),
            (None, Some(fd)) => Some(adopt_datagram(fd)?),
            (None, None) => None,
        };
        let query = match (query, act_query) {
            (Some(socket), _) => Some(socket),
            (None, Some(fd)) => Some(adopt_listener(fd)?),
            (None, None) => None,
        };
        if bind_paths {
            for path in &settings.syslog_sockets {
                syslog.push(bind_datagram(path, 0o666, true)?);
            }
        }
        let intake = match intake {
            Some(socket) => Listener { socket, path: None },
            None => bind_datagram(&settings.intake_socket, 0o600, false)?,
        };
        let query = match query {
            Some(socket) => Listener { socket, path: None },
            None => {
                let at = sockpath::prepare(&settings.query_socket, SocketKind::Stream)?;
                let (socket, path) = sockpath::bind_with_mode(
                    &at,
                    &settings.query_socket,
                    settings.query_mode,
                    settings.query_group.map(Gid::from_raw),
                    |p| UnixListener::bind(p),
                )?;
                Listener {
                    socket,
                    path: Some(path),
                }
            }
        };
        let udp = udp
            .into_iter()
            .map(|fd| adopt(fd, std::net::UdpSocket::set_nonblocking))
            .collect::<Result<Vec<_>, String>>()?;
        let tcp = tcp
            .into_iter()
            .map(|fd| adopt(fd, std::net::TcpListener::set_nonblocking))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Listeners {
            syslog,
            intake,
            query,
            udp,
            tcp,
        })
    }

    /// The background daemon's side of `--daemonize`: the parent bound or
    /// inherited everything; sockets it bound at paths become ours to
    /// remove, the ones it inherited stay their owner's.
    fn take_over(settings: &Settings, h: &HandedFds) -> Result<Listeners, String> {
        let mut given = h.syslog.clone();
        given.extend([h.intake, h.query]);
        check_distinct(given)?;
        let inherited = settings.syslog_fds.len();
        if h.syslog.len() != inherited + settings.syslog_sockets.len() {
            return Err(format!(
                "the daemonizing parent handed over {} syslog sockets, the flags ask for {}",
                h.syslog.len(),
                inherited + settings.syslog_sockets.len()
            ));
        }
        let adopt_unless_inherited = |fd: Option<RawFd>, path: &Path| match fd {
            Some(_) => Ok(None),
            None => BoundPath::adopt(path).map(Some),
        };
        let mut syslog = Vec::new();
        for (i, &fd) in h.syslog.iter().enumerate() {
            let path = match i.checked_sub(inherited) {
                None => None,
                Some(j) => Some(BoundPath::adopt(&settings.syslog_sockets[j])?),
            };
            syslog.push(Listener {
                socket: with_credentials(inherited_datagram(fd, "handed-over syslog socket")?)?,
                path,
            });
        }
        Ok(Listeners {
            syslog,
            intake: Listener {
                socket: inherited_datagram(h.intake, "handed-over intake socket")?,
                path: adopt_unless_inherited(settings.intake_fd, &settings.intake_socket)?,
            },
            query: Listener {
                socket: inherited_listener(h.query, "handed-over query socket")?,
                path: adopt_unless_inherited(settings.query_fd, &settings.query_socket)?,
            },
            udp: Vec::new(),
            tcp: Vec::new(),
        })
    }

    /// The sockets a predecessor handed over by re-executing: used as they
    /// are; the paths it bound become ours to remove.
    pub fn from_state(state: &crate::handover::State) -> Result<Listeners, String> {
        let take = |fd: RawFd, what: &str| {
            crate::handover::take_fd(fd)
                .ok_or_else(|| format!("re-exec: the {what} socket (fd {fd}) was not handed over"))
        };
        let path = |p: &Option<std::path::PathBuf>| -> Result<Option<BoundPath>, String> {
            p.as_deref().map(BoundPath::adopt).transpose()
        };
        let mut syslog = Vec::new();
        for s in &state.syslog {
            syslog.push(Listener {
                socket: with_credentials(adopt_datagram(take(s.fd, "syslog")?)?)?,
                path: path(&s.path)?,
            });
        }
        let intake = state
            .intake
            .as_ref()
            .ok_or("re-exec: no intake socket was handed over")?;
        let query = state
            .query
            .as_ref()
            .ok_or("re-exec: no query socket was handed over")?;
        let nonblocking = |e: std::io::Error| format!("re-exec: {e}");
        let mut udp = Vec::new();
        for &fd in &state.udp {
            let s = std::net::UdpSocket::from(take(fd, "udp")?);
            s.set_nonblocking(true).map_err(nonblocking)?;
            udp.push(s);
        }
        let mut tcp = Vec::new();
        for &fd in &state.tcp {
            let s = std::net::TcpListener::from(take(fd, "tcp")?);
            s.set_nonblocking(true).map_err(nonblocking)?;
            tcp.push(s);
        }
        Ok(Listeners {
            syslog,
            intake: Listener {
                socket: adopt_datagram(take(intake.fd, "intake")?)?,
                path: path(&intake.path)?,
            },
            query: Listener {
                socket: adopt_listener(take(query.fd, "query")?)?,
                path: path(&query.path)?,
            },
            udp,
            tcp,
        })
    }

    /// The fd number of every socket, for handing them over.
    pub fn fds(&self) -> HandedFds {
        HandedFds {
            syslog: self.syslog.iter().map(|l| l.socket.as_raw_fd()).collect(),
            intake: self.intake.socket.as_raw_fd(),
            query: self.query.socket.as_raw_fd(),
        }
    }

    /// Leave the socket files in place when this process exits: another
    /// process (the background daemon) has taken them over.
    pub fn release_paths(&mut self) {
        let paths = self
            .syslog
            .iter_mut()
            .map(|l| l.path.take())
            .chain([self.intake.path.take(), self.query.path.take()]);
        for p in paths.flatten() {
            std::mem::forget(p);
        }
    }
}

fn check_distinct(mut fds: Vec<RawFd>) -> Result<(), String> {
    fds.sort_unstable();
    match fds.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(format!(
            "fd {} is given for two sockets; each --fd-* flag needs its own",
            w[0]
        )),
        None => Ok(()),
    }
}

/// Bind a unix datagram socket at `path`; with `credentials`, SO_PASSCRED
/// is on before `bind()`, so no datagram can arrive without the sender's
/// credentials.
fn bind_datagram(
    path: &Path,
    mode: u32,
    credentials: bool,
) -> Result<Listener<UnixDatagram>, String> {
    let at = sockpath::prepare(path, SocketKind::Datagram)?;
    let (socket, guard) = sockpath::bind_with_mode(&at, path, mode, None, |p| {
        // socket2 sets close-on-exec on the new socket.
        let s = Socket::new(Domain::UNIX, Type::DGRAM, None)?;
        if credentials {
            setsockopt(&s, sockopt::PassCred, &true)
                .map_err(|e| std::io::Error::other(format!("cannot enable SO_PASSCRED: {e}")))?;
        }
        s.set_nonblocking(true)?;
        s.bind(&SockAddr::unix(p)?)?;
        Ok(UnixDatagram::from_std(OwnedFd::from(s).into()))
    })?;
    Ok(Listener {
        socket,
        path: Some(guard),
    })
}

/// A syslog socket someone else bound, with SO_PASSCRED turned on before
/// the daemon reads it. Datagrams already queued carry no credentials: the
/// receive side stores them without a sender.
fn with_credentials(socket: UnixDatagram) -> Result<UnixDatagram, String> {
    setsockopt(&socket, sockopt::PassCred, &true).map_err(|e| {
        format!(
            "syslog socket (fd {}): cannot enable SO_PASSCRED: {e}",
            socket.as_raw_fd()
        )
    })?;
    Ok(socket)
}

/// A socket from socket activation (its type already checked), made
/// non-blocking as the event loop needs it.
fn adopt<S: From<OwnedFd>>(
    fd: OwnedFd,
    set_nonblocking: fn(&S, bool) -> std::io::Result<()>,
) -> Result<S, String> {
    let socket = S::from(fd);
    set_nonblocking(&socket, true).map_err(|e| format!("socket activation: {e}"))?;
    Ok(socket)
}

/// A unix datagram socket from socket activation.
fn adopt_datagram(fd: OwnedFd) -> Result<UnixDatagram, String> {
    adopt(fd, std::os::unix::net::UnixDatagram::set_nonblocking).map(UnixDatagram::from_std)
}

/// A listening unix stream socket from socket activation.
fn adopt_listener(fd: OwnedFd) -> Result<UnixListener, String> {
    adopt(fd, std::os::unix::net::UnixListener::set_nonblocking).map(UnixListener::from_std)
}

fn inherited_datagram(fd: RawFd, flag: &str) -> Result<UnixDatagram, String> {
    let owned = inherited(fd, SockType::Datagram, flag)?;
    let std = std::os::unix::net::UnixDatagram::from(owned);
    std.set_nonblocking(true)
        .map_err(|e| format!("{flag} {fd}: {e}"))?;
    Ok(UnixDatagram::from_std(std))
}

fn inherited_listener(fd: RawFd, flag: &str) -> Result<UnixListener, String> {
    let owned = inherited(fd, SockType::Stream, flag)?;
    let listening = getsockopt(&owned, sockopt::AcceptConn)
        .map_err(|e| format!("{flag} {fd}: cannot inspect the socket: {e}"))?;
    if !listening {
        return Err(format!(
            "{flag} {fd}: the socket is not listening (the parent must bind and listen)"
        ));
    }
    let std = std::os::unix::net::UnixListener::from(owned);
    std.set_nonblocking(true)
        .map_err(|e| format!("{flag} {fd}: {e}"))?;
    Ok(UnixListener::from_std(std))
}

/// Take ownership of fd `fd`, which the parent passed for `flag`, once it
/// is known to be a unix socket of type `want`. Made close-on-exec: it is
/// ours now.
fn inherited(fd: RawFd, want: SockType, flag: &str) -> Result<OwnedFd, String> {
    if fcntl(unsafe_borrow(fd), FcntlArg::F_GETFD) == Err(Errno::EBADF) {
        return Err(format!("{flag} {fd}: not an open file descriptor"));
    }
    let ty = getsockopt(&unsafe_borrow(fd), sockopt::SockType).map_err(|e| match e {
        Errno::ENOTSOCK => format!("{flag} {fd}: not a socket"),
        e => format!("{flag} {fd}: cannot inspect the socket: {e}"),
    })?;
    if getsockname::<UnixAddr>(fd).is_err() {
        return Err(format!("{flag} {fd}: not a unix socket"));
    }
    if ty != want {
        let name = |t: SockType| match t {
            SockType::Datagram => "datagram",
            SockType::Stream => "stream",
            _ => "other",
        };
        return Err(format!(
            "{flag} {fd}: a {} socket, where a unix {} socket is needed",
            name(ty),
            name(want)
        ));
    }
    // SAFETY: the flag hands this fd to the process, it was just checked
    // to be an open socket, and check_distinct made sure no other flag
    // claims it, so this is its only owner.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    fcntl(owned.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map_err(|e| format!("{flag} {fd}: cannot set close-on-exec: {e}"))?;
    Ok(owned)
}

/// A borrow of an fd number given on the command line, only to inspect it.
fn unsafe_borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: used only for fcntl/getsockopt queries before ownership is
    // taken; a closed number fails those calls with EBADF, nothing worse.
    unsafe { BorrowedFd::borrow_raw(fd) }
}
