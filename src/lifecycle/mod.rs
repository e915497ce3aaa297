//! Where the daemon's sockets and state come from when it starts, and
//! where they go when it hands over: bound at a path or inherited
//! ([`listen`]), handed in by a service manager or its fd store
//! ([`activation`]), passed from a parent under `--daemonize`
//! ([`daemonize`]), or inherited across a re-exec ([`reexec`]). Each way
//! ends in the same values ([`listen::Listeners`] and a
//! [`crate::handover::State`]), so the daemon builds itself one way
//! whatever started it.

pub mod activation;
pub mod daemonize;
pub mod listen;
pub mod reexec;
