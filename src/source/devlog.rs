//! `/dev/log` and other local syslog sockets: unix datagrams from
//! `syslog(3)`, `logger`, Python's `SysLogHandler`, rsyslog's `omuxsock`.
//!
//! SO_PASSCRED is on (whoever bound or adopted the socket turned it on
//! before the socket could receive), so every datagram comes with the sender's
//! pid, uid and gid as the kernel saw them; those go into the record's
//! `peer`, whatever the message claims. One that came without them is
//! stored with no `peer`.

use std::os::fd::AsRawFd;

use mio::net::UnixDatagram;
use nix::errno::Errno;

use super::{fdpass, Drain};
use crate::ingest;
use crate::parse::syslog::{Origin, Scratch, SyslogParser};
use crate::record::{now_ns, Input};
use crate::ring::Ring;
use crate::sockpath::BoundPath;
use crate::sockpath::Listener;

/// Datagrams up to this size are received whole. Larger ones (the kernel
/// allows about 200 KiB) are cut here and flagged truncated.
pub const MAX_DATAGRAM: usize = 256 << 10;
/// Datagrams taken per `recvmmsg()` call.
const BATCH: usize = 32;
/// Fds a `/dev/log` datagram has room for: a sender may attach some, and
/// each one installed is closed.
const FDS: usize = 8;

/// The buffers a `/dev/log` socket is read with: [`BATCH`] datagrams of up
/// to [`MAX_DATAGRAM`] bytes, each with its credentials and up to [`FDS`]
/// fds. Public so the benchmark measures the same receive, storing nothing.
pub fn receive_batch() -> Result<fdpass::Batch, Errno> {
    fdpass::Batch::new(BATCH, MAX_DATAGRAM, FDS)
}
/// Receive buffer asked of the kernel, so bursts wait in the socket rather
/// than blocking senders (capped by net.core.rmem_max).
const RECV_BUFFER: usize = 4 << 20;

/// One bound syslog datagram socket.
pub struct DevLogSource {
    socket: UnixDatagram,
    parser: SyslogParser,
    scratch: Scratch,
    batch: fdpass::Batch,
    _path: Option<BoundPath>,
}

impl DevLogSource {
    /// Serve `listener` (bound at mode 0666: every local program may log,
    /// or inherited), whose credential passing is already on.
    pub fn new(
        listener: Listener<UnixDatagram>,
        parser: SyslogParser,
    ) -> Result<DevLogSource, String> {
        let Listener { socket, path } = listener;
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(RECV_BUFFER);
        let batch = receive_batch().map_err(|e| format!("cannot map receive buffers: {e}"))?;
        Ok(DevLogSource {
            socket,
            parser,
            scratch: Scratch::default(),
            batch,
            _path: path,
        })
    }

    pub fn socket_mut(&mut self) -> &mut UnixDatagram {
        &mut self.socket
    }

    /// The socket's fd and the path bound for it, for a successor.
    pub fn handed(&self) -> crate::handover::SocketFd {
        crate::handover::SocketFd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&self.socket),
            path: self._path.as_ref().map(|p| p.path().to_owned()),
        }
    }

    /// Receive and store up to `budget` datagrams (rounded up to whole
    /// batches).
    pub fn drain(&mut self, ring: &mut Ring, budget: usize) -> Drain {
        let mut taken = 0;
        while taken < budget {
            // A sender may attach fds: the batch owns every one the kernel
            // installed, even past the room the buffer has, until `done`.
            let n = match self.batch.recv(self.socket.as_raw_fd()) {
                Ok(0) => return Drain::Idle,
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(_) => return Drain::Idle,
            };
            taken += n;
            for i in 0..n {
                let (payload, framing) = self.batch.datagram(i);
                // Each its own time, though taken in one call: entries
                // keep distinct receive times for --since/--until.
                let parsed = self.parser.parse_ref(
                    payload,
                    now_ns(),
                    Input::Syslog,
                    Origin::Local,
                    framing.peer,
                    &mut self.scratch,
                );
                let mut record = parsed.record;
                record.truncated |= framing.payload_cut;
                ingest::store(ring, &record, parsed.malformed);
            }
            // Fds a sender attached are closed now, not when the next
            // datagram comes.
            self.batch.done();
        }
        Drain::More
    }
}
