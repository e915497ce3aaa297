//! The integration tests, one binary: each starts the real `ringlogd` on
//! sockets in a temporary directory (the harness in `support`) and drives it
//! with real clients. The modules are areas of the daemon; a test's path
//! names its area and file, e.g. `cargo test --test it query::filters::`.

mod support;

mod abuse;
mod clients;
mod ingest;
mod lifecycle;
mod metrics;
mod query;
mod route;
