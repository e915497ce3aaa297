//! The package's systemd units: they pass `systemd-analyze verify`, and the
//! service lets ringlogd write every path the example configuration
//! suggests, though it runs under ProtectSystem=strict as a DynamicUser
//! (which may write nowhere but the directories the unit makes for it).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

const UNITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/systemd");
const SERVICE: &str = "ringlogd.service";
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/ringlogd.toml");
/// The tag in the example configuration of a key to leave unset under the
/// package's unit.
const NOT_UNDER_SYSTEMD: &str = "[not under systemd";

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every value of `key` in `[section]` of a unit file, space-separated
/// lists split.
fn unit_values(text: &str, section: &str, key: &str) -> Vec<String> {
    let mut current = String::new();
    let mut values = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            current = line.to_owned();
        } else if current == format!("[{section}]") {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == key {
                    values.extend(v.split_whitespace().map(str::to_owned));
                }
            }
        }
    }
    values
}

/// The directories the service may write to.
fn writable_dirs(service: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for (key, base) in [
        ("StateDirectory", "/var/lib"),
        ("RuntimeDirectory", "/run"),
        ("CacheDirectory", "/var/cache"),
        ("LogsDirectory", "/var/log"),
    ] {
        for name in unit_values(service, "Service", key) {
            // NAME or NAME:SYMLINK
            let name = name.split(':').next().unwrap();
            dirs.push(Path::new(base).join(name));
        }
    }
    for path in unit_values(service, "Service", "ReadWritePaths") {
        dirs.push(PathBuf::from(path.trim_start_matches(['-', '+'])));
    }
    dirs
}

/// The names (FileDescriptorName=) of the sockets the service's socket
/// units hand it: ringlogd uses those instead of binding a path.
fn handed_in(service: &str) -> Vec<String> {
    unit_values(service, "Service", "Sockets")
        .iter()
        .flat_map(|unit| {
            unit_values(
                &read(Path::new(UNITS).join(unit)),
                "Socket",
                "FileDescriptorName",
            )
        })
        .collect()
}

/// A path the example configuration suggests for a key, and whether the
/// key's comment says to leave it unset under systemd.
#[derive(Debug)]
struct Suggestion {
    key: String,
    path: PathBuf,
    not_under_systemd: bool,
}

/// Every quoted absolute path on a `key = value` line of the example,
/// commented out or not, with the comment block above it.
fn suggestions(example: &str) -> Vec<Suggestion> {
    let mut out = Vec::new();
    let mut comment = String::new();
    for line in example.lines() {
        let body = line.strip_prefix('#').unwrap_or(line);
        let Some((key, value)) = body.split_once(" = ").filter(|(k, _)| {
            !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
        }) else {
            if line.trim().is_empty() {
                comment.clear();
            } else {
                comment.push_str(line);
                comment.push('\n');
            }
            continue;
        };
        for path in value
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|p| p.starts_with('/'))
        {
            out.push(Suggestion {
                key: key.to_owned(),
                path: PathBuf::from(path),
                not_under_systemd: comment.contains(NOT_UNDER_SYSTEMD),
            });
        }
    }
    out
}

/// `/var/run` is `/run`.
fn canonical(path: &Path) -> PathBuf {
    match path.strip_prefix("/var/run") {
        Ok(rest) => Path::new("/run").join(rest),
        Err(_) => path.to_owned(),
    }
}

/// Whether ringlogd, run by the unit with `s` set, writes nowhere the unit
/// does not let it: a file or directory it writes lies in a writable
/// directory; a socket the socket units hand in is not bound at its path.
fn covered(s: &Suggestion, writable: &[PathBuf], handed: &[String]) -> bool {
    let in_writable = |p: &Path| writable.iter().any(|d| canonical(p).starts_with(d));
    match s.key.as_str() {
        // The file and, for the snapshot, FILE.seq beside it.
        "snapshot" | "pidfile" => s.path.parent().is_some_and(in_writable),
        // Sockets are created in it.
        "runtime-dir" => in_writable(&s.path),
        // Bound besides any syslog socket handed in.
        "syslog-socket" => s.path.parent().is_some_and(in_writable),
        "socket-query" => {
            handed.iter().any(|n| n == "query") || s.path.parent().is_some_and(in_writable)
        }
        "socket-log" => {
            handed.iter().any(|n| n == "intake") || s.path.parent().is_some_and(in_writable)
        }
        // Read, not written: kmsg, TLS files in route URLs.
        _ => true,
    }
}

#[test]
fn every_path_the_example_suggests_for_writing_is_writable_under_the_unit() {
    let service = read(Path::new(UNITS).join(SERVICE));
    assert_eq!(
        unit_values(&service, "Service", "ProtectSystem"),
        ["strict"],
        "this test is about ProtectSystem=strict"
    );
    let writable = writable_dirs(&service);
    let handed = handed_in(&service);
    let all = suggestions(&read(EXAMPLE));
    let snapshot: Vec<&Suggestion> = all.iter().filter(|s| s.key == "snapshot").collect();
    assert!(
        !snapshot.is_empty(),
        "the example suggests no snapshot path"
    );
    for s in &snapshot {
        assert!(
            !s.not_under_systemd && covered(s, &writable, &handed),
            "{s:?}: the snapshot must work under the unit; it may write {writable:?}"
        );
    }
    let refused: Vec<&Suggestion> = all
        .iter()
        .filter(|s| !s.not_under_systemd && !covered(s, &writable, &handed))
        .collect();
    assert!(
        refused.is_empty(),
        "the unit may write only {writable:?} and is handed {handed:?}; these would fail under it \
         (make the unit cover them, or tag their comment {NOT_UNDER_SYSTEMD}]): {refused:#?}"
    );
}

#[test]
fn the_units_pass_systemd_analyze_verify() {
    let Some(analyze) = find_tool("systemd-analyze") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is not installed: tests/run.sh installs it (package systemd)"
        );
        eprintln!("skipped: systemd-analyze is not installed (package systemd)");
        return;
    };
    // The units as packaged, but starting the binary just built: verify
    // checks that ExecStart= names an executable.
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(UNITS).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.ends_with(".service") || name.ends_with(".socket") {
            let text = read(&path).replace("/usr/sbin/ringlogd", RINGLOGD);
            std::fs::write(dir.path().join(&name), text).unwrap();
            names.push(name);
        }
    }
    names.sort();
    assert!(names.contains(&SERVICE.to_owned()), "{names:?}");
    let out = Command::new(analyze)
        .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.path().display()))
        .args(["verify", "--man=no"])
        .args(&names)
        .output()
        .unwrap();
    // verify exits 0 on an unknown key, with a warning.
    assert_silent_success(&out, &format!("systemd-analyze verify {names:?}"));
}
