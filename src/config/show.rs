//! Settings as configuration-file lines: what `--check-config` prints, and
//! what SIGHUP compares to tell what changed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{Loaded, Origin, Settings};

/// Keys whose new value SIGHUP applies to the running daemon; every other
/// change waits for a restart.
pub const LIVE_KEYS: &[&str] = &[
    "max-lines",
    "max-bytes",
    "level-prefix",
    "tcp-max-conns",
    "tcp-idle-timeout",
];

/// One setting whose value differs between two [`Settings`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub key: &'static str,
    /// As TOML, or `(not set)`.
    pub old: String,
    pub new: String,
}

impl Change {
    pub fn is_live(&self) -> bool {
        LIVE_KEYS.contains(&self.key)
    }
}

/// Every setting of `s` as (key, TOML value), `None` when not set.
pub fn values(s: &Settings) -> Vec<(&'static str, Option<String>)> {
    let path = |p: &Path| string(&p.to_string_lossy());
    let paths = |v: &[PathBuf]| list(v.iter().map(|p| path(p)));
    let addrs = |v: &[SocketAddr]| list(v.iter().map(|a| string(&a.to_string())));
    vec![
        ("syslog-socket", Some(paths(&s.syslog_sockets))),
        (
            "fd-syslog",
            Some(list(s.syslog_fds.iter().map(|n| n.to_string()))),
        ),
        ("socket-query", Some(path(&s.query_socket))),
        ("query-mode", Some(string(&format!("{:04o}", s.query_mode)))),
        ("query-group", s.query_group.map(|g| g.to_string())),
        ("query-max-clients", Some(s.query_max_clients.to_string())),
        (
            "query-max-clients-per-uid",
            Some(s.query_max_clients_per_uid.to_string()),
        ),
        ("fd-query", s.query_fd.map(|n| n.to_string())),
        ("socket-log", Some(path(&s.intake_socket))),
        ("fd-log", s.intake_fd.map(|n| n.to_string())),
        ("max-fds", Some(s.max_fds.to_string())),
        ("level-prefix", Some(s.level_prefix.to_string())),
        ("daemonize", Some(s.daemonize.to_string())),
        ("max-lines", Some(s.limits.max_lines.to_string())),
        ("max-bytes", Some(s.limits.max_bytes.to_string())),
        ("compress", Some(string(s.ring.compress.as_str()))),
        ("evict", Some(string(s.ring.evict.as_str()))),
        ("source-share", Some(s.ring.source_share.to_string())),
        ("snapshot", s.snapshot.as_deref().map(path)),
        ("max-line-len", Some(s.max_line_len.to_string())),
        ("kmsg", s.kmsg.as_deref().map(path)),
        ("no-kmsg", Some(s.kmsg.is_none().to_string())),
        ("udp", Some(addrs(&s.net.udp))),
        ("tcp", Some(addrs(&s.net.tcp))),
        ("tcp-max-conns", Some(s.net.tcp_max_conns.to_string())),
        (
            "tcp-idle-timeout",
            Some(
                s.net
                    .tcp_idle_timeout
                    .map_or(0, |d| d.as_secs())
                    .to_string(),
            ),
        ),
        ("route", Some(list(s.routes.iter().map(|r| string(&r.url))))),
        (
            "multiline",
            s.multiline.as_ref().map(|m| string(&m.pattern)),
        ),
        // Only with --multiline, which they need.
        (
            "multiline-match",
            s.multiline.as_ref().map(|m| string(m.mode.as_str())),
        ),
        (
            "multiline-flush",
            s.multiline
                .as_ref()
                .map(|m| (m.flush.as_millis() as u64).to_string()),
        ),
        ("user", s.user.as_deref().map(string)),
        ("group", s.group.as_deref().map(string)),
        ("pidfile", s.pidfile.as_deref().map(path)),
    ]
}

/// The settings that differ from `old` to `new`, in [`values`] order.
pub fn changes(old: &Settings, new: &Settings) -> Vec<Change> {
    let unset = || "(not set)".to_owned();
    values(old)
        .into_iter()
        .zip(values(new))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((key, a), (_, b))| Change {
            key,
            old: a.unwrap_or_else(unset),
            new: b.unwrap_or_else(unset),
        })
        .collect()
}

/// What `--check-config` prints: every setting as a line of the
/// configuration file, each with where its value came from.
pub fn effective(loaded: &Loaded) -> String {
    let mut out = String::from("# ringlogd's effective settings");
    match &loaded.config {
        Some(p) => out += &format!(" (from {} and the command line)\n", p.display()),
        None => out += " (no configuration file)\n",
    }
    if let Some(dir) = &loaded.args.runtime_dir {
        out += &format!(
            "runtime-dir = {}  # {}; applied to the socket paths below\n",
            string(&dir.to_string_lossy()),
            origin_text(loaded.origin("runtime-dir"))
        );
    }
    for (key, value) in values(&loaded.settings) {
        let origin = origin_text(loaded.origin(key));
        match value {
            Some(v) => out += &format!("{key} = {v}  # {origin}\n"),
            None => out += &format!("# {key} is not set\n"),
        }
    }
    out
}

fn origin_text(o: Origin) -> String {
    match o {
        Origin::CommandLine => "command line".to_owned(),
        Origin::File(line) => format!("configuration file, line {line}"),
        Origin::Default => "default".to_owned(),
    }
}

/// A TOML basic string. JSON's escapes are all valid TOML ones.
fn string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

fn list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Loader;
    use std::ffi::OsString;

    fn loaded(args: &[&str]) -> Loaded {
        let mut argv = vec!["ringlogd"];
        argv.extend_from_slice(args);
        Loader::try_from_args(argv.iter().map(OsString::from))
            .unwrap()
            .load()
            .unwrap()
    }

    #[test]
    fn every_key_is_shown() {
        let text = effective(&loaded(&["--max-lines", "7"]));
        for key in crate::config::file::keys() {
            if key == "runtime-dir" {
                continue;
            }
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("{key} = "))
                        || l == format!("# {key} is not set")),
                "{key} missing from:\n{text}"
            );
        }
        assert!(text.contains("max-lines = 7  # command line\n"), "{text}");
        assert!(text.contains("max-bytes = 8388608  # default\n"), "{text}");
    }

    #[test]
    fn changes_list_what_differs() {
        let a = loaded(&[]).settings;
        let b = loaded(&["--max-lines", "9", "--socket-query", "/q"]).settings;
        let c = changes(&a, &b);
        let keys: Vec<_> = c.iter().map(|c| (c.key, c.is_live())).collect();
        assert_eq!(keys, [("socket-query", false), ("max-lines", true)]);
        assert_eq!(c[1].old, "5000");
        assert_eq!(c[1].new, "9");
        assert!(changes(&a, &a).is_empty());
    }
}
