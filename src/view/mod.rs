//! How entries are chosen and shown, for whoever reads the ring: the
//! query server, the routes and the clients. A [`filter::Filter`] decides
//! which entries a reader gets; [`format`] writes them in the formats
//! readers ask for (memlogd's lines, short, RFC 3164/5424, cat), [`json`]
//! as JSON lines; [`timefmt`] writes times; [`frames`] is how a reader is
//! handed entries already formatted. None of it knows who asked:
//! the same code serves a `logread` client and a route to a remote
//! collector, so both see an entry the same way.

pub mod filter;
pub mod format;
pub mod frames;
pub mod json;
pub mod timefmt;
