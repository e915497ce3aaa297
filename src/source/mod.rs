//! Inputs: each source owns its sockets or fds, reads bytes from them and
//! pushes records into the ring. Sources never see queries.

pub mod devlog;
pub mod fdpass;
pub mod intake;
pub mod kmsg;
pub mod net;

/// What a source's drain call left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drain {
    /// Read until `WouldBlock`: wait for the next readiness event.
    Idle,
    /// Stopped at its budget with more to read: call again next turn.
    More,
}
