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
    let mut fds = Vec::new();
    let mut peer = None;
    let control_end = msg.msg_control as usize + msg.msg_controllen as usize;
    // SAFETY: the kernel wrote msg_controllen bytes of well-formed cmsghdrs
    // into `control`; CMSG_FIRSTHDR/CMSG_NXTHDR stay within that length,
    // and each message's data is read only up to its cmsg_len, clamped to
    // the same bound.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
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
                    let cred = data.cast::<libc::ucred>().read_unaligned();
                    peer = Some(Peer {
                        pid: cred.pid as u32,
                        uid: cred.uid,
                        gid: cred.gid,
                    });
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(Some(Received {
        len: (n as usize).min(buf.len()),
        payload_cut: msg.msg_flags & libc::MSG_TRUNC != 0,
        control_cut: msg.msg_flags & libc::MSG_CTRUNC != 0,
        fds,
        peer,
    }))
}

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
}
