//! The `--metrics` flags: where Prometheus scrapes the daemon.

use std::net::SocketAddr;

/// Flattened into [`super::DaemonArgs`].
#[derive(clap::Args, Debug, Clone, Default)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics (GET /metrics) and a health check (GET
    /// /health) over HTTP on ADDR:PORT (127.0.0.1:9465, [::]:9465; port 0
    /// picks a free one), and nothing else: never entries. Repeat for
    /// more. Off unless given.
    #[arg(long = "metrics", value_name = "ADDR:PORT", value_parser = super::parse_listen_addr)]
    pub metrics: Vec<SocketAddr>,
}
