//! The configuration file: `--config`, `--check-config`, errors that name
//! the file, line and key, the command line winning, and SIGHUP applying
//! new limits to a running daemon without losing its ring.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::*;
use serde_json::Value;

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/ringlogd.toml");

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn check_config(args: &[&str]) -> Output {
    Command::new(RINGLOGD)
        .arg("--check-config")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The daemon started in the foreground in `run` with the file `conf`, to
/// its exit (a file it refuses stops it before anything is bound).
fn start_with_file(run: &Path, conf: &Path) -> Output {
    ringlogd_command()
        .arg("--runtime-dir")
        .arg(run)
        .arg("--config")
        .arg(conf)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The `key = value` lines, comments removed: what a file would set.
fn settings_lines(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split("  #").next().unwrap().to_owned())
        .collect()
}

fn internal_msgs(d: &Daemon) -> Vec<String> {
    d.dump()
        .iter()
        .filter(|e| e["input"] == "internal")
        .map(|e| e["msg"].as_str().unwrap().to_owned())
        .collect()
}

fn wait_internal(d: &Daemon, needle: &str) -> String {
    d.internal_with(needle)["msg"].as_str().unwrap().to_owned()
}

/// SIGHUP, and the daemon's answer: its internal entry holding `answer`.
fn reload(d: &Daemon, answer: &str) -> String {
    signal(d.pid(), "HUP");
    wait_internal(d, answer)
}

#[test]
fn check_config_prints_every_setting_and_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write(
        dir.path(),
        "r.toml",
        "# a comment\nmax-lines = 100\nudp = [\"127.0.0.1:5514\"]\nmax-bytes = \"1M\"\n",
    );
    let run = dir.path().join("run");
    let out = check_config(&[
        "--config",
        conf.to_str().unwrap(),
        "--max-bytes",
        "64k",
        "--runtime-dir",
        run.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "max-lines = 100  # configuration file, line 2\n",
        "udp = [\"127.0.0.1:5514\"]  # configuration file, line 3\n",
        "max-bytes = 65536  # command line\n",
        "tcp-max-conns = 256  # default\n",
        "# user is not set\n",
        &format!("socket-query = \"{}/memlogdq.sock\"", run.display()),
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    assert!(
        !run.exists(),
        "--check-config must not create or bind anything"
    );
}

#[test]
fn check_config_output_reads_back_as_the_same_settings() {
    let dir = tempfile::tempdir().unwrap();
    let first = check_config(&["--max-lines", "42", "--tcp", "[::1]:6514", "--level-prefix"]);
    assert!(first.status.success(), "{first:?}");
    let conf = write(
        dir.path(),
        "r.toml",
        &String::from_utf8_lossy(&first.stdout),
    );
    let again = check_config(&["--config", conf.to_str().unwrap()]);
    assert!(again.status.success(), "{again:?}");
    assert_eq!(settings_lines(&first.stdout), settings_lines(&again.stdout));
}

#[test]
fn the_shipped_file_is_valid_documents_every_key_and_changes_no_default() {
    let out = check_config(&["--config", SHIPPED]);
    assert_success(&out, "--check-config of the shipped file");
    let defaults = check_config(&[]);
    assert_eq!(
        settings_lines(&out.stdout),
        settings_lines(&defaults.stdout)
    );
    let text = std::fs::read_to_string(SHIPPED).unwrap();
    for key in ringlogd::config::file::keys() {
        assert!(
            text.lines().any(
                |l| l.starts_with(&format!("#{key} = ")) || l.starts_with(&format!("{key} = "))
            ),
            "conf/ringlogd.toml does not document `{key}`"
        );
    }
}

#[test]
fn a_bad_file_stops_the_daemon_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    for (text, want) in [
        (
            "max-lines = 10\n\nmaxlines = 3\n",
            ":3:1: unknown key `maxlines`",
        ),
        (
            "max-lines = 0\n",
            ":1:13: max-lines = 0: must be a whole number of at least 1",
        ),
        (
            "tcp = \"nowhere\"\n",
            ":1:7: tcp = \"nowhere\": \"nowhere\" is not ADDR:PORT",
        ),
        ("max-lines = 10\nmax-lines = 11\n", ":2:1: duplicate key"),
    ] {
        let conf = write(dir.path(), "bad.toml", text);
        let out = start_with_file(&run, &conf);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text:?}: {err}");
        let prefix = format!("ringlogd: {}{want}", conf.display());
        assert!(err.starts_with(&prefix), "{text:?}: {err}");
        assert_eq!(
            std::fs::read_dir(&run).unwrap().count(),
            0,
            "no socket is bound"
        );
        assert_eq!(
            check_config(&["--config", conf.to_str().unwrap()])
                .status
                .code(),
            Some(1)
        );
    }
}

#[test]
fn every_mistake_of_a_file_is_reported_with_its_place_and_nothing_starts() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    // An unknown key, a value of the wrong type, a value its flag refuses,
    // and a section.
    let conf = write(
        dir.path(),
        "bad.toml",
        "max-lines = 100\nmax_bytes = \"1M\"\nlevel-prefix = \"yes\"\n\ntcp-max-conns = 0\n[ring]\nevict = \"fifo\"\n",
    );
    let out = start_with_file(&run, &conf);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let file = conf.display();
    let want = [
        format!("ringlogd: {file}:2:1: unknown key `max_bytes` (did you mean `max-bytes`?"),
        format!("ringlogd: {file}:3:16: level-prefix = \"yes\": expects true or false"),
        format!("ringlogd: {file}:5:17: tcp-max-conns = 0: must be a whole number from 1"),
        format!("ringlogd: {file}:6:2: unknown key `ring` (the file has no sections"),
    ];
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), want.len(), "{err}");
    for (line, want) in lines.iter().zip(&want) {
        assert!(line.starts_with(want.as_str()), "{want:?} is not\n{line:?}");
    }
    assert_eq!(
        std::fs::read_dir(&run).unwrap().count(),
        0,
        "no socket is bound: nothing started"
    );
    // --check-config says the same, and exits 1.
    let check = check_config(&["--config", conf.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&check.stderr), err);
}

/// `--flag`'s `[default: X]` in `ringlogd --help`, for every flag that
/// shows one.
fn help_defaults() -> Vec<(String, String)> {
    let out = Command::new(RINGLOGD).arg("--help").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut defaults = Vec::new();
    let mut flag: Option<String> = None;
    for line in text.lines() {
        let t = line.trim_start();
        // A flag's heading: `-v, --verbose`, `--max-lines <N>`.
        if line.starts_with("  ") && t.starts_with('-') && line.len() - t.len() <= 6 {
            flag = t
                .split_whitespace()
                .find_map(|w| w.strip_prefix("--"))
                .map(|f| f.trim_end_matches(',').to_owned());
        }
        if let (Some(f), Some(at)) = (&flag, line.find("[default: ")) {
            let rest = &line[at + "[default: ".len()..];
            let value = rest.split(']').next().unwrap();
            defaults.push((f.clone(), value.to_owned()));
        }
    }
    defaults
}

/// The value `--check-config` shows for `key`, and the comment after it
/// (`default`, `command line`, ...); a key shown commented out counts.
fn shown(out: &[u8], key: &str) -> Option<(String, String)> {
    String::from_utf8_lossy(out).lines().find_map(|l| {
        let rest = l.strip_prefix('#').unwrap_or(l);
        let value = rest.strip_prefix(&format!("{key} = "))?;
        let (value, origin) = value.split_once("  # ")?;
        Some((value.to_owned(), origin.to_owned()))
    })
}

#[test]
fn check_config_shows_the_default_help_shows_for_every_setting() {
    let defaults = help_defaults();
    // Every default clap shows, and those ringlogd works out itself.
    for key in [
        "max-lines",
        "multiline-match",
        "multiline-flush",
        "socket-query",
        "query-mode",
        "kmsg",
    ] {
        assert!(
            defaults.iter().any(|(k, _)| k == key),
            "{key}: {defaults:?}"
        );
    }
    let plain = check_config(&[]);
    assert!(plain.status.success(), "{plain:?}");
    for (key, default) in &defaults {
        let (value, origin) = shown(&plain.stdout, key).unwrap_or_else(|| {
            panic!(
                "--check-config shows no value for {key}, whose default --help says is {default}"
            )
        });
        assert!(origin.starts_with("default"), "{key}: {origin}");
        // The default as --help writes it, given on the command line: the
        // same value. (query-mode: "0600, or 0660 with --query-group".)
        let given = default.split(", ").next().unwrap();
        let mut args = vec![format!("--{key}={given}")];
        if key.starts_with("multiline-") {
            args.push("--multiline=x".to_owned());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let explicit = check_config(&args);
        assert!(explicit.status.success(), "{args:?}: {explicit:?}");
        let (same, origin) = shown(&explicit.stdout, key).unwrap();
        assert_eq!(origin, "command line", "{key}");
        assert_eq!(
            value, same,
            "--help says {key} defaults to {default}, --check-config shows {value}"
        );
    }
    let text = String::from_utf8_lossy(&plain.stdout);
    for line in text.lines() {
        if let Some(key) = line
            .strip_prefix("# ")
            .and_then(|l| l.strip_suffix(" is not set"))
        {
            assert!(
                !defaults.iter().any(|(k, _)| k == key),
                "{line}, but --help gives it a default"
            );
        }
    }
}

#[test]
fn an_unknown_user_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write(dir.path(), "r.toml", "user = \"no-such-user-here\"\n");
    let out = check_config(&["--config", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("ringlogd: --user no-such-user-here: no such user in /etc/passwd"),
        "{out:?}"
    );
}

#[test]
fn the_daemon_runs_on_the_files_settings_and_the_command_line_wins() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write(dir.path(), "r.toml", "max-lines = 3\nmax-bytes = \"64k\"\n");
    let d = Daemon::start(&["--config", conf.to_str().unwrap(), "--max-bytes", "128k"]);
    let ring = d.stats()["ring"].clone();
    assert_eq!(ring["max_lines"], 3);
    assert_eq!(ring["max_bytes"], 128 << 10);
    for i in 0..5 {
        d.send(format!("<14>t: line {i}").as_bytes());
    }
    d.entry_with_msg("line 4");
    assert_eq!(d.dump().len(), 3);
}

#[test]
fn sighup_applies_new_limits_without_losing_the_ring() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write(dir.path(), "r.toml", "max-lines = 100\n");
    let d = Daemon::start(&["--config", conf.to_str().unwrap()]);
    for i in 0..20 {
        d.send(format!("<14>t: before {i}").as_bytes());
    }
    d.entry_with_msg("before 19");
    let next_seq = d.stats()["ring"]["next_seq"].as_u64().unwrap();

    std::fs::write(
        &conf,
        "max-lines = 5\nlevel-prefix = true\nsocket-query = \"/elsewhere.sock\"\n",
    )
    .unwrap();
    let applied = reload(&d, "applied");
    assert_eq!(
        applied,
        format!(
            "re-read {}: applied level-prefix false -> true, max-lines 100 -> 5",
            conf.display()
        )
    );
    let later = wait_internal(&d, "not applied until ringlogd restarts");
    assert!(
        later.ends_with(&format!(
            "socket-query \"{}\" -> \"/elsewhere.sock\"",
            d.query.display()
        )),
        "{later}"
    );
    let stats = d.stats();
    assert_eq!(stats["ring"]["max_lines"], 5);
    assert!(
        stats["ring"]["next_seq"].as_u64().unwrap() > next_seq,
        "the sequence goes on"
    );
    // The newest entries stayed (the last is the reload's own report).
    let msgs: Vec<String> = d
        .dump()
        .iter()
        .map(|e| e["msg"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(msgs.len(), 5, "{msgs:?}");
    assert!(msgs.contains(&"before 19".to_owned()), "{msgs:?}");

    // The intake now reads <N> prefixes.
    let mut w = d.pass_socketpair("svc");
    std::io::Write::write_all(&mut w, b"<3>it broke\n").unwrap();
    drop(w);
    let e = d.wait_for("the intake line", |e| {
        e.iter()
            .any(|v| v["source"] == "svc" && v["msg"] == "it broke")
    });
    let line = e.iter().find(|v| v["source"] == "svc").unwrap();
    assert_eq!(line["severity"], "err");
    assert!(d.stop().success());
}

#[test]
fn sighup_with_a_broken_file_changes_nothing_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write(dir.path(), "r.toml", "max-lines = 50\n");
    let d = Daemon::start(&["--config", conf.to_str().unwrap()]);
    std::fs::write(&conf, "max-lines = 7\nmax-lines-typo = 1\n").unwrap();
    let msg = reload(&d, "SIGHUP");
    assert_eq!(
        msg,
        format!(
            "SIGHUP: {}:2:1: unknown key `max-lines-typo` (the keys are ringlogd's long flags, as `ringlogd --help` lists them); nothing changed, the running settings stay",
            conf.display()
        )
    );
    assert_eq!(d.stats()["ring"]["max_lines"], 50);
    assert!(d.stop().success());
}

#[test]
fn after_sighup_the_command_line_still_wins() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write(dir.path(), "r.toml", "max-lines = 100\n");
    let d = Daemon::start(&["--config", conf.to_str().unwrap(), "--max-lines", "7"]);
    std::fs::write(&conf, "max-lines = 50\n").unwrap();
    reload(&d, "nothing to apply");
    assert_eq!(d.stats()["ring"]["max_lines"], 7);
    let msgs = internal_msgs(&d);
    assert!(!msgs.iter().any(|m| m.contains("not applied")), "{msgs:?}");
}

#[test]
fn sighup_without_a_file_says_there_is_none() {
    let d = Daemon::start(&[]);
    let msg = reload(&d, "SIGHUP");
    assert_eq!(
        msg,
        "received SIGHUP: there is no configuration file (--config) to re-read"
    );
    let _: Value = d.stats();
}
