//! `/dev/log` and other local syslog sockets: unix datagrams from
//! `syslog(3)`, `logger`, Python's `SysLogHandler`, rsyslog's `omuxsock`.
//!
//! SO_PASSCRED is on, so every datagram comes with the sender's pid, uid and
//! gid as the kernel saw them; those go into the record's `peer`, whatever
//! the message claims.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use mio::net::UnixDatagram;
use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, UnixCredentials,
};

use super::Drain;
use crate::listen::Listener;
use crate::parse::syslog::{Origin, SyslogParser};
use crate::record::{now_ns, Input, Peer};
use crate::ring::Ring;
use crate::sockpath::BoundPath;

/// Datagrams up to this size are received whole. Larger ones (the kernel
/// allows about 200 KiB) are cut here and flagged truncated.
pub const MAX_DATAGRAM: usize = 256 << 10;
/// Receive buffer asked of the kernel, so bursts wait in the socket rather
/// than blocking senders (capped by net.core.rmem_max).
const RECV_BUFFER: usize = 4 << 20;

/// One bound syslog datagram socket.
pub struct DevLogSource {
    socket: UnixDatagram,
    parser: SyslogParser,
    buf: Vec<u8>,
    _path: Option<BoundPath>,
}

impl DevLogSource {
    /// Serve `listener` (bound at mode 0666: every local program may log,
    /// or inherited), with credential passing on.
    pub fn new(
        listener: Listener<UnixDatagram>,
        parser: SyslogParser,
    ) -> Result<DevLogSource, String> {
        let Listener { socket, path } = listener;
        setsockopt(&socket, sockopt::PassCred, &true).map_err(|e| {
            let at = path
                .as_ref()
                .map_or("an inherited syslog socket".into(), |p| {
                    p.path().display().to_string()
                });
            format!("{at}: cannot enable SO_PASSCRED: {e}")
        })?;
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(RECV_BUFFER);
        Ok(DevLogSource {
            socket,
            parser,
            buf: vec![0; MAX_DATAGRAM],
            _path: path,
        })
    }

    pub fn socket_mut(&mut self) -> &mut UnixDatagram {
        &mut self.socket
    }

    /// Receive and store up to `budget` datagrams.
    pub fn drain(&mut self, ring: &mut Ring, budget: usize) -> Drain {
        for _ in 0..budget {
            let (len, cut, peer) = match self.recv() {
                Ok(Some(got)) => got,
                Ok(None) => return Drain::Idle,
                Err(()) => continue,
            };
            let parsed = self.parser.parse(
                &self.buf[..len],
                now_ns(),
                Input::Syslog,
                Origin::Local,
                peer,
            );
            let mut record = parsed.record;
            record.truncated |= cut;
            let counters = ring.ledger.input_mut(Input::Syslog);
            counters.received += 1;
            counters.malformed += u64::from(parsed.malformed);
            counters.truncated += u64::from(record.truncated);
            ring.push(&record);
        }
        Drain::More
    }

    /// One datagram into `self.buf`: its length, whether it was cut, and
    /// the sender's credentials. `Ok(None)` when the socket is empty;
    /// `Err(())` for a datagram that could not be received (already gone).
    fn recv(&mut self) -> Result<Option<(usize, bool, Option<Peer>)>, ()> {
        let mut iov = [IoSliceMut::new(&mut self.buf)];
        // Room for credentials and a few fds: a sender may attach fds, which
        // are closed below rather than leaked.
        let mut cmsg = nix::cmsg_space!(UnixCredentials, [std::os::fd::RawFd; 8]);
        let msg = match recvmsg::<()>(
            self.socket.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => m,
            Err(Errno::EAGAIN) => return Ok(None),
            Err(Errno::EINTR) => return Err(()),
            Err(_) => return Ok(None),
        };
        let mut peer = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::ScmCredentials(cred) => {
                        peer = Some(Peer {
                            pid: cred.pid() as u32,
                            uid: cred.uid(),
                            gid: cred.gid(),
                        });
                    }
                    ControlMessageOwned::ScmRights(fds) => {
                        for fd in fds {
                            // SAFETY: the kernel just installed these fds
                            // in this process; nothing else refers to them.
                            drop(unsafe { OwnedFd::from_raw_fd(fd) });
                        }
                    }
                    _ => {}
                }
            }
        }
        let cut = msg.flags.contains(MsgFlags::MSG_TRUNC);
        Ok(Some((msg.bytes, cut, peer)))
    }
}
