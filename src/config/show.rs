//! Settings as configuration-file lines: what `--check-config` prints, and
//! what SIGHUP compares to tell what changed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{Loaded, Origin, Settings};
use crate::parse::multiline;

/// Keys that apply only together with another key (clap `requires` it):
/// (key, the key it needs). At their default without it, `--check-config`
/// shows them commented out, so its output still reads back as a file.
const NEEDS: &[(&str, &str)] = &[
    ("multiline-match", "multiline"),
    ("multiline-flush", "multiline"),
];

/// One setting whose value differs between two [`Settings`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub key: &'static str,
    /// As TOML, or `(not set)`.
    pub old: String,
    pub new: String,
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
        ("intake-rate", Some(s.intake_rate.to_string())),
        ("intake-burst", Some(s.intake_burst.to_string())),
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
        ("metrics", Some(addrs(&s.metrics))),
        (
            "capture",
            Some(list(s.capture.filters.iter().map(|f| string(&f.text)))),
        ),
        ("capture-before", Some(string(&span(s.capture.before)))),
        ("capture-after", Some(string(&span(s.capture.after)))),
        ("capture-max-span", Some(string(&span(s.capture.max_span)))),
        ("capture-max-bytes", Some(s.capture.max_bytes.to_string())),
        ("capture-max", Some(s.capture.max.to_string())),
        ("capture-dir", s.capture.dir.as_deref().map(path)),
        ("capture-dir-max", Some(s.capture.dir_max.to_string())),
        (
            "multiline",
            s.multiline.as_ref().map(|m| string(&m.pattern)),
        ),
        // Without --multiline, the defaults it would run with.
        (
            "multiline-match",
            Some(string(
                s.multiline
                    .as_ref()
                    .map_or(multiline::DEFAULT_MODE, |m| m.mode)
                    .as_str(),
            )),
        ),
        (
            "multiline-flush",
            Some(
                (s.multiline
                    .as_ref()
                    .map_or(multiline::DEFAULT_FLUSH, |m| m.flush)
                    .as_millis() as u64)
                    .to_string(),
            ),
        ),
        ("user", s.user.as_deref().map(string)),
        ("group", s.group.as_deref().map(string)),
        ("pidfile", s.pidfile.as_deref().map(path)),
        ("verbose", Some(s.verbose.to_string())),
        ("no-signal-control", Some(s.no_signal_control.to_string())),
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
    let shown: Vec<_> = values(&loaded.settings);
    let is_set = |key: &str| shown.iter().any(|(k, v)| *k == key && v.is_some());
    for (key, value) in &shown {
        let origin = origin_text(loaded.origin(key));
        let needs = NEEDS.iter().find(|(k, needed)| {
            k == key && loaded.origin(key) == Origin::Default && !is_set(needed)
        });
        match (value, needs) {
            (Some(v), None) => out += &format!("{key} = {v}  # {origin}\n"),
            (Some(v), Some((_, needed))) => {
                out += &format!("#{key} = {v}  # {origin}; applies with {needed}\n")
            }
            (None, _) => out += &format!("# {key} is not set\n"),
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
/// A time span as `--capture-before` reads it back.
fn span(d: std::time::Duration) -> String {
    if d.subsec_millis() != 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

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
                text.lines().any(|l| l.starts_with(&format!("{key} = "))
                    || l.starts_with(&format!("#{key} = "))
                    || l == format!("# {key} is not set")),
                "{key} missing from:\n{text}"
            );
        }
        assert!(text.contains("max-lines = 7  # command line\n"), "{text}");
        assert!(text.contains("max-bytes = 8388608  # default\n"), "{text}");
    }

    #[test]
    fn a_key_that_needs_another_is_shown_at_its_default_commented_out() {
        let text = effective(&loaded(&[]));
        assert!(
            text.contains("#multiline-match = \"nonfirst\"  # default; applies with multiline\n"),
            "{text}"
        );
        assert!(
            text.contains("#multiline-flush = 500  # default; applies with multiline\n"),
            "{text}"
        );
        let text = effective(&loaded(&["--multiline", "x"]));
        assert!(
            text.contains("\nmultiline-match = \"nonfirst\"  # default\n"),
            "{text}"
        );
        // Each key NEEDS names is refused without the one it needs.
        for (key, needed) in NEEDS {
            let alone =
                Loader::try_from_args(["ringlogd", &format!("--{key}=1")].map(OsString::from));
            let with = Loader::try_from_args(
                ["ringlogd", &format!("--{needed}=x"), &format!("--{key}=1")].map(OsString::from),
            );
            assert!(alone.is_err(), "{key} alone was accepted");
            assert!(
                !matches!(with, Err(e) if e.kind() == clap::error::ErrorKind::MissingRequiredArgument),
                "{key} needs more than {needed}"
            );
        }
    }

    #[test]
    fn changes_list_what_differs() {
        let a = loaded(&[]).settings;
        let b = loaded(&["--max-lines", "9", "--socket-query", "/q"]).settings;
        let c = changes(&a, &b);
        let keys: Vec<_> = c.iter().map(|c| c.key).collect();
        assert_eq!(keys, ["socket-query", "max-lines"]);
        assert_eq!(c[1].old, "5000");
        assert_eq!(c[1].new, "9");
        assert!(changes(&a, &a).is_empty());
    }
}
