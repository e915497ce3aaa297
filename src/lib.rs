//! ringlogd: a syslog-compatible in-memory log server.
//!
//! Data flows one way:
//!
//! ```text
//! /dev/log  ─► source::devlog ─► parse::syslog ─┐
//! /dev/kmsg ─► source::kmsg   ─► parse::kmsg   ─┴► Record ─► Ring ─► query ─► logread, LinuxKit logread
//! ```
//!
//! Sources read bytes and turn them into [`record::Record`]s with a parser;
//! the [`ring::Ring`] stores them, bounded, each with a sequence number;
//! the [`query`] server reads the ring through cursors (sequence numbers) and
//! never sees a source. [`daemon`] owns the event loop that wires them, and
//! [`ledger`] counts everything that arrives and everything that is lost.

pub mod client;
pub mod config;
pub mod control;
pub mod daemon;
pub mod docs;
pub mod handover;
pub mod ingest;
pub mod ledger;
pub mod lifecycle;
pub mod notify;
pub mod parse;
pub mod private_file;
pub mod privileges;
pub mod query;
pub mod record;
pub mod ring;
pub mod route;
pub mod serving;
pub mod sockpath;
pub mod source;
pub mod spare_fd;
pub mod stats;
pub mod view;
