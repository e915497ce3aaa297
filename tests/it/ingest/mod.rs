//! How messages get in: /dev/log, the kernel's log, UDP and TCP, the fd
//! intake, and what the ring makes of them (multi-line joining, fair
//! eviction between services).

mod devlog;
mod fairness;
mod intake;
mod kmsg;
mod multiline;
mod net;
