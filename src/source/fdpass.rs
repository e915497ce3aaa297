//! Receiving one datagram with whatever fds (SCM_RIGHTS) and credentials
//! (SCM_CREDENTIALS) came along, every fd owned, even when the kernel had
//! to cut the control message.
//!
//! The kernel cuts it (MSG_CTRUNC) when the buffer is too small or when
//! the receiver is out of fds, and still installs the fds that fit. nix
//! refuses to parse a cut control message, which would leak those fds, so
//! the message is parsed here, bounded by what the kernel says it wrote.

use std::mem::size_of;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::libc;

use crate::record::Peer;

/// One received datagram's framing: the payload is in the caller's buffer.
#[derive(Debug)]
pub struct Received {
    /// Payload bytes in the buffer.
    pub len: usize,
    /// The payload was longer than the buffer and was cut (MSG_TRUNC).
    pub payload_cut: bool,
    /// The control message was cut (MSG_CTRUNC): fds sent were lost, or
    /// the credentials.
    pub control_cut: bool,
    /// Every fd that arrived, close-on-exec.
    pub fds: Vec<OwnedFd>,
    pub peer: Option<Peer>,
}

/// A control buffer for up to `fds` fds and one set of credentials,
/// aligned for `cmsghdr`.
pub fn control_buffer(fds: usize) -> Vec<u64> {
    // SAFETY: CMSG_SPACE only computes a size.
    let bytes = unsafe {
        libc::CMSG_SPACE((fds * size_of::<RawFd>()) as u32)
            + libc::CMSG_SPACE(size_of::<libc::ucred>() as u32)
    } as usize;
    vec![0; bytes.div_ceil(size_of::<u64>())]
}

/// Receive one datagram from `socket` without blocking. `Ok(None)` when
/// there is none.
pub fn recv(socket: RawFd, buf: &mut [u8], control: &mut [u64]) -> Result<Option<Received>, Errno> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(control) as _;
    // SAFETY: every pointer in `msg` refers to a live buffer of the length
    // given beside it, for the duration of the call.
    let n = unsafe {
        libc::recvmsg(
            socket,
            &mut msg,
            libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
        )
    };
    if n < 0 {
        return match Errno::last() {
            Errno::EAGAIN => Ok(None),
            e => Err(e),
        };
    }
    let (fds, peer) = parse_control(&msg);
    Ok(Some(Received {
        len: (n as usize).min(buf.len()),
        payload_cut: msg.msg_flags & libc::MSG_TRUNC != 0,
        control_cut: msg.msg_flags & libc::MSG_CTRUNC != 0,
        fds,
        peer,
    }))
}

/// The fds and credentials in a control message the kernel just wrote
/// into `msg`, every fd owned.
fn parse_control(msg: &libc::msghdr) -> (Vec<OwnedFd>, Option<Peer>) {
    let mut fds = Vec::new();
    let mut peer = None;
    // msg_controllen is a size_t with glibc and a socklen_t with musl.
    #[allow(clippy::unnecessary_cast)]
    let control_end = msg.msg_control as usize + msg.msg_controllen as usize;
    // SAFETY: the kernel wrote msg_controllen bytes of well-formed cmsghdrs
    // into the control buffer; CMSG_FIRSTHDR/CMSG_NXTHDR stay within that
    // length, and each message's data is read only up to its cmsg_len,
    // clamped to the same bound.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let data = libc::CMSG_DATA(cmsg);
            let end = (cmsg as usize + (*cmsg).cmsg_len as usize).min(control_end);
            let payload = end.saturating_sub(data as usize);
            match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
                (libc::SOL_SOCKET, libc::SCM_RIGHTS) => {
                    for i in 0..payload / size_of::<RawFd>() {
                        let fd = data.cast::<RawFd>().add(i).read_unaligned();
                        // The kernel just installed this fd in this
                        // process; nothing else refers to it.
                        fds.push(OwnedFd::from_raw_fd(fd));
                    }
                }
                (libc::SOL_SOCKET, libc::SCM_CREDENTIALS)
                    if payload >= size_of::<libc::ucred>() =>
                {
                    peer = sender(data.cast::<libc::ucred>().read_unaligned());
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    (fds, peer)
}

/// The sender the kernel vouches for in `cred`, if any. A datagram queued
/// before SO_PASSCRED was on carries no credentials, yet the kernel still
/// reports some: pid 0 and the overflow uid and gid (65534, `nobody`'s).
/// Pid 0 is never a sender (it is also what a sender in a pid namespace
/// this process cannot see gets), so such credentials name nobody: stored
/// as a sender, they would hand the entry to whoever is uid 65534.
fn sender(cred: libc::ucred) -> Option<Peer> {
    (cred.pid > 0).then_some(Peer {
        pid: cred.pid as u32,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// Buffers for receiving many datagrams in one `recvmmsg()` call: the
/// per-call cost of a syscall is paid once per batch instead of once per
/// message, which is most of what separates a syslog socket with
/// credentials from the bare `recv()` limit.
///
/// The payload buffers are one anonymous mapping, so only the pages a
/// datagram really fills become resident; pages a rare large datagram
/// filled are given back before the next call.
pub struct Batch {
    region: std::ptr::NonNull<std::ffi::c_void>,
    /// Bytes of payload room per datagram.
    size: usize,
    /// One header per datagram, pointing at its payload buffer (through
    /// `iovs`) and its stretch of `control`: set up once, as neither moves.
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    control: Vec<u64>,
    received: Vec<Received>,
}

/// Pages of a payload buffer kept resident after a large datagram.
const KEEP_RESIDENT: usize = 16 << 10;

impl Batch {
    /// Room for `count` datagrams of up to `size` bytes, each with up to
    /// `fds` fds and credentials.
    pub fn new(count: usize, size: usize, fds: usize) -> Result<Batch, Errno> {
        use nix::sys::mman::{mmap_anonymous, MapFlags, ProtFlags};
        let count = count.clamp(1, MAX_BATCH);
        let size = size.next_multiple_of(4096);
        let total = std::num::NonZeroUsize::new(size * count).ok_or(Errno::EINVAL)?;
        // SAFETY: a fresh private anonymous mapping aliases nothing.
        let region = unsafe {
            mmap_anonymous(
                None,
                total,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE,
            )?
        };
        let control_words = control_buffer(fds).len();
        let mut batch = Batch {
            region,
            size,
            // SAFETY: mmsghdr and iovec are plain data; all-zero is empty.
            hdrs: vec![unsafe { std::mem::zeroed() }; count],
            iovs: vec![unsafe { std::mem::zeroed() }; count],
            control: vec![0; control_words * count],
            received: Vec::with_capacity(count),
        };
        for i in 0..count {
            batch.iovs[i] = libc::iovec {
                iov_base: batch.buffer(i).cast(),
                iov_len: size,
            };
            let h = &mut batch.hdrs[i].msg_hdr;
            h.msg_iov = &mut batch.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = batch.control[i * control_words..].as_mut_ptr().cast();
        }
        Ok(batch)
    }

    fn buffer(&self, i: usize) -> *mut u8 {
        // SAFETY: i < hdrs.len(), so the offset stays inside the mapping.
        unsafe { self.region.as_ptr().cast::<u8>().add(i * self.size) }
    }

    /// Receive as many datagrams as are waiting, up to the batch's count,
    /// without blocking. `Ok(0)` when there are none.
    pub fn recv(&mut self, socket: RawFd) -> Result<usize, Errno> {
        self.done();
        let control_len = size_of::<u64>() * self.control.len() / self.hdrs.len();
        for h in &mut self.hdrs {
            // The kernel wrote back what it used of the room: give it all.
            h.msg_hdr.msg_controllen = control_len as _;
        }
        // SAFETY: each header points at its own live iovec, payload buffer
        // and control buffer (set up in `new`; none has moved since), of
        // the lengths given beside them, for the duration of the call.
        let n = unsafe {
            libc::recvmmsg(
                socket,
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as u32,
                // An int with glibc, an unsigned int with musl.
                (libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC) as _,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return match Errno::last() {
                Errno::EAGAIN => Ok(0),
                e => Err(e),
            };
        }
        for h in &self.hdrs[..n as usize] {
            let (fds, peer) = parse_control(&h.msg_hdr);
            self.received.push(Received {
                len: (h.msg_len as usize).min(self.size),
                payload_cut: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
                control_cut: h.msg_hdr.msg_flags & libc::MSG_CTRUNC != 0,
                fds,
                peer,
            });
        }
        Ok(n as usize)
    }

    /// The `i`th datagram of the last [`Batch::recv`]: its payload and
    /// framing.
    pub fn datagram(&self, i: usize) -> (&[u8], &Received) {
        let r = &self.received[i];
        // SAFETY: the kernel wrote r.len <= size bytes into buffer i, which
        // nothing else writes until the next recv (which takes &mut self).
        let payload = unsafe { std::slice::from_raw_parts(self.buffer(i), r.len) };
        (payload, r)
    }

    /// Close the fds the last call received and give back the pages large
    /// datagrams filled: the caller is done with them.
    pub fn done(&mut self) {
        self.release_large();
        self.received.clear();
    }

    /// Give back the pages beyond [`KEEP_RESIDENT`] that large datagrams
    /// of the last call filled, so one burst of them does not stay in RSS.
    fn release_large(&mut self) {
        for (i, r) in self.received.iter().enumerate() {
            if r.len > KEEP_RESIDENT {
                let len = r.len.next_multiple_of(4096) - KEEP_RESIDENT;
                // SAFETY: the range lies inside buffer i of our own private
                // mapping, whose contents are not needed any more.
                unsafe {
                    libc::madvise(
                        self.buffer(i).add(KEEP_RESIDENT).cast(),
                        len,
                        libc::MADV_DONTNEED,
                    );
                }
            }
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `new` with this length and is
        // referred to by nothing once the batch is gone.
        unsafe {
            let _ = nix::sys::mman::munmap(self.region, self.size * self.hdrs.len());
        }
    }
}

/// The most datagrams one [`Batch::recv`] takes.
pub const MAX_BATCH: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixDatagram;

    fn send(tx: &UnixDatagram, payload: &[u8], fds: &[RawFd]) {
        let cmsgs = [ControlMessage::ScmRights(fds)];
        let cmsgs = if fds.is_empty() {
            &cmsgs[..0]
        } else {
            &cmsgs[..]
        };
        sendmsg::<()>(
            tx.as_raw_fd(),
            &[IoSlice::new(payload)],
            cmsgs,
            MsgFlags::empty(),
            None,
        )
        .unwrap();
    }

    #[test]
    fn fds_and_payload_arrive() {
        let (tx, rx) = UnixDatagram::pair().unwrap();
        let (a, b) = UnixDatagram::pair().unwrap();
        send(&tx, b"name", &[a.as_raw_fd(), b.as_raw_fd()]);
        let mut buf = [0u8; 16];
        let mut control = control_buffer(4);
        let r = recv(rx.as_raw_fd(), &mut buf, &mut control)
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..r.len], b"name");
        assert_eq!(r.fds.len(), 2);
        assert!(!r.control_cut && !r.payload_cut);
        assert!(recv(rx.as_raw_fd(), &mut buf, &mut control)
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_cut_control_message_still_yields_the_fds_that_fit() {
        let (tx, rx) = UnixDatagram::pair().unwrap();
        let pairs: Vec<_> = (0..6).map(|_| UnixDatagram::pair().unwrap()).collect();
        let raw: Vec<RawFd> = pairs.iter().map(|(a, _)| a.as_raw_fd()).collect();
        send(&tx, b"longer than the buffer", &raw);
        let mut buf = [0u8; 4];
        // Room for two fds only (plus credentials space, which SCM_RIGHTS
        // may use too).
        let mut control = vec![0u64; 3];
        let r = recv(rx.as_raw_fd(), &mut buf, &mut control)
            .unwrap()
            .unwrap();
        assert!(r.control_cut && r.payload_cut);
        assert_eq!(r.len, 4);
        assert!(!r.fds.is_empty() && r.fds.len() < 6, "{} fds", r.fds.len());
    }

    #[test]
    fn a_datagram_queued_before_credentials_were_asked_for_has_no_sender() {
        let (tx, rx) = UnixDatagram::pair().unwrap();
        send(&tx, b"early", &[]);
        nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::PassCred, &true).unwrap();
        send(&tx, b"late", &[]);
        let mut buf = [0u8; 16];
        let mut control = control_buffer(0);
        let mut next = || {
            let r = recv(rx.as_raw_fd(), &mut buf, &mut control)
                .unwrap()
                .unwrap();
            (buf[..r.len].to_vec(), r.peer)
        };
        // The kernel reports pid 0 and the overflow uid for the first.
        assert_eq!(next(), (b"early".to_vec(), None));
        let (payload, peer) = next();
        assert_eq!(payload, b"late");
        assert_eq!(peer.unwrap().pid, std::process::id());
    }

    #[test]
    fn a_batch_takes_every_waiting_datagram_with_its_sender_and_fds() {
        let (tx, rx) = UnixDatagram::pair().unwrap();
        nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::PassCred, &true).unwrap();
        let (a, _b) = UnixDatagram::pair().unwrap();
        for i in 0..5 {
            send(&tx, format!("message {i}").as_bytes(), &[]);
        }
        send(&tx, b"with an fd", &[a.as_raw_fd()]);
        let big = vec![b'x'; 100 << 10];
        send(&tx, &big, &[]);
        let mut batch = Batch::new(4, 64 << 10, 2).unwrap();
        assert_eq!(batch.recv(rx.as_raw_fd()), Ok(4));
        for i in 0..4 {
            let (payload, r) = batch.datagram(i);
            assert_eq!(payload, format!("message {i}").as_bytes());
            assert_eq!(r.peer.unwrap().pid, std::process::id());
            assert!(!r.payload_cut && r.fds.is_empty());
        }
        assert_eq!(batch.recv(rx.as_raw_fd()), Ok(3));
        assert_eq!(batch.datagram(0).0, b"message 4");
        assert_eq!(batch.datagram(1).1.fds.len(), 1);
        let (payload, r) = batch.datagram(2);
        assert_eq!(payload.len(), 64 << 10, "cut at the buffer's size");
        assert!(r.payload_cut);
        assert_eq!(batch.recv(rx.as_raw_fd()), Ok(0));
    }
}
