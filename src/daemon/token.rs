//! The poll's tokens: which part of the daemon an event is for.
//!
//! Every registration gets a token from one range per kind of socket, so a
//! token says by itself whose it is. The loop decodes it once, into a
//! [`Slot`], and everything after (the busy list, the drain) works with
//! that; a slot of a range keeps its token, which its owner indexes its
//! own sockets with.

use mio::Token;

const SIGNALS: usize = 0;
const QUERY_LISTENER: usize = 1;
const KMSG: usize = 2;
const INTAKE_SOCKET: usize = 3;
/// Syslog sockets are `Token(SYSLOG_BASE + i)`.
pub(super) const SYSLOG_BASE: usize = 1 << 8;
/// UDP sockets and TCP listeners are `Token(NET_LISTENER_BASE + i)`.
pub(super) const NET_LISTENER_BASE: usize = 1 << 12;
/// Fds received on the intake socket are `Token(INTAKE_FD_BASE + i)`, with
/// `i` below `--max-fds` (at most 1 << 20).
pub(super) const INTAKE_FD_BASE: usize = 1 << 20;
/// TCP connections are `Token(NET_CONN_BASE + i)`, i < --tcp-max-conns.
pub(super) const NET_CONN_BASE: usize = 1 << 24;
/// Routes are `Token(ROUTE_BASE + i)`, one per `--route`.
pub(super) const ROUTE_BASE: usize = 1 << 28;
/// The `--metrics` listeners and their connections are `Token(METRICS_BASE
/// + i)` (see `scrape`).
pub(super) const METRICS_BASE: usize = 1 << 29;
/// Query clients are `Token(QUERY_CLIENT_BASE + i)`: everything from here
/// up, so it stays the highest.
pub(super) const QUERY_CLIENT_BASE: usize = 1 << 30;

/// What a token stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Slot {
    Signals,
    QueryListener,
    Kmsg,
    IntakeSocket,
    /// The i-th syslog socket.
    Syslog(usize),
    /// A UDP socket or TCP listener of the network source.
    NetListener(Token),
    /// An fd received on the intake socket.
    IntakeFd(Token),
    /// A TCP connection of the network source.
    NetConn(Token),
    Route(Token),
    /// A `--metrics` listener or one of its connections.
    Metrics(Token),
    QueryClient(Token),
}

impl Slot {
    /// The slot a token was handed out for; `None` for a number no range
    /// holds (never registered).
    pub(super) fn of(token: Token) -> Option<Slot> {
        Some(match token.0 {
            SIGNALS => Slot::Signals,
            QUERY_LISTENER => Slot::QueryListener,
            KMSG => Slot::Kmsg,
            INTAKE_SOCKET => Slot::IntakeSocket,
            t if t < SYSLOG_BASE => return None,
            t if t < NET_LISTENER_BASE => Slot::Syslog(t - SYSLOG_BASE),
            t if t < INTAKE_FD_BASE => Slot::NetListener(token),
            t if t < NET_CONN_BASE => Slot::IntakeFd(token),
            t if t < ROUTE_BASE => Slot::NetConn(token),
            t if t < METRICS_BASE => Slot::Route(token),
            t if t < QUERY_CLIENT_BASE => Slot::Metrics(token),
            _ => Slot::QueryClient(token),
        })
    }

    /// The token this slot is registered under.
    pub(super) const fn token(self) -> Token {
        match self {
            Slot::Signals => Token(SIGNALS),
            Slot::QueryListener => Token(QUERY_LISTENER),
            Slot::Kmsg => Token(KMSG),
            Slot::IntakeSocket => Token(INTAKE_SOCKET),
            Slot::Syslog(i) => Token(SYSLOG_BASE + i),
            Slot::NetListener(t)
            | Slot::IntakeFd(t)
            | Slot::NetConn(t)
            | Slot::Route(t)
            | Slot::Metrics(t)
            | Slot::QueryClient(t) => t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_decodes_to_its_slot() {
        for slot in [
            Slot::Signals,
            Slot::QueryListener,
            Slot::Kmsg,
            Slot::IntakeSocket,
            Slot::Syslog(0),
            Slot::Syslog(7),
            Slot::NetListener(Token(NET_LISTENER_BASE + 3)),
            Slot::IntakeFd(Token(INTAKE_FD_BASE + 5)),
            Slot::NetConn(Token(NET_CONN_BASE)),
            Slot::Route(Token(ROUTE_BASE + 1)),
            Slot::Metrics(Token(METRICS_BASE + 300)),
            Slot::QueryClient(Token(usize::MAX)),
        ] {
            assert_eq!(Slot::of(slot.token()), Some(slot));
        }
        assert_eq!(Slot::of(Token(4)), None);
    }
}
