//! ringlogd: a syslog-compatible in-memory log server.
//!
//! Records flow one way, and the modules depend one way:
//!
//! ```text
//! record <- parse <- source -> ingest -> ring <- view <- query, route
//! ```
//!
//! Sources read bytes and turn them into [`record::Record`]s with a parser
//! ([`parse`]); `ingest` counts them and stores them in the [`ring::Ring`],
//! bounded, each with a sequence number; the [`query`] server and the
//! routes read the ring through cursors and write entries as [`view`]
//! says, and never see a source. [`daemon`] owns the event loop that wires
//! them, [`lifecycle`] where its sockets come from. ARCHITECTURE.md draws
//! the rooms and one datagram's way through them.
//!
//! Public are the modules the binaries, the integration tests, the
//! benchmarks and the fuzz targets use; the rest are the daemon's own.

pub mod client;
pub mod config;
mod control;
pub mod daemon;
pub mod docs;
mod handover;
mod ingest;
mod ledger;
pub mod lifecycle;
pub mod metrics;
mod notify;
pub mod parse;
mod private_file;
pub mod privileges;
pub mod query;
pub mod record;
mod recorder;
pub mod ring;
mod route;
mod scrape;
mod serving;
mod sockpath;
pub mod source;
mod spare_fd;
mod stats;
pub mod view;
