//! A real Prometheus scraping `--metrics` every second: what its query API
//! answers is what the stats say.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::*;
use crate::support::receiver::{free_port, Input};
use crate::support::*;

/// `ringlogd_received_total` by input, as Prometheus' HTTP API answers an
/// instant query for it; empty while Prometheus is not up or has not
/// scraped yet.
fn received_in_prometheus(api: SocketAddr) -> BTreeMap<String, f64> {
    let Ok(answer) = try_get(api, "/api/v1/query?query=ringlogd_received_total") else {
        return BTreeMap::new();
    };
    let Ok(v) = serde_json::from_str::<Value>(&answer.body) else {
        return BTreeMap::new();
    };
    v["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let input = r["metric"]["input"].as_str()?.to_owned();
            let value = r["value"][1].as_str()?.parse().ok()?;
            Some((input, value))
        })
        .collect()
}

#[test]
fn prometheus_scrapes_the_numbers_the_stats_show() {
    let Some(prometheus) = prometheus_tool("prometheus") else {
        return;
    };
    let d = Daemon::start(&["--metrics", "127.0.0.1:0"]);
    d.send_many(250, |i| format!("<13>Nov 21 23:40:10 prom: {i}"));
    d.wait_for_counters("syslog", |c| c["stored"] == 250);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: ringlogd\n    static_configs:\n      \
             - targets: ['{}']\n",
            d.listening("metrics")
        ),
    )
    .unwrap();
    let port = free_port(Input::Tcp);
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _server = Reaped(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    );
    let api: SocketAddr = ([127, 0, 0, 1], port).into();
    // Nothing arrives meanwhile: the stats hold still, and Prometheus must
    // come to show exactly them.
    let stats = d.stats();
    let want: BTreeMap<String, f64> = stats["inputs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(input, c)| (input.clone(), c["received"].as_f64().unwrap()))
        .collect();
    assert_eq!(want.get("syslog"), Some(&250.0), "{stats}");
    poll(
        "Prometheus to scrape ringlogd_received_total as the stats show it",
        Duration::from_secs(60),
        || received_in_prometheus(api),
        |got| *got == want,
    );
}
