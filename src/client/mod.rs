//! The clients that ship with the daemon. Each is a library function that
//! a thin binary calls, so the binaries stay one line and tests can reach
//! the logic.

pub mod logread;
pub mod logwrite;
