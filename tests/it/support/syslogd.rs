//! The real rsyslogd and syslog-ng, run in the foreground with a private
//! configuration in a temporary directory (never the system's paths or
//! configuration), fed through their own unix socket, stopped by pid.
//!
//! The forwarding part of each configuration is a snippet taken verbatim
//! from docs/forwarding.md ([`doc_snippet`]), so what the docs tell users
//! to paste is exactly what is tested.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{find_tool, require, run_ok, signal, wait_timeout};

/// A daemon binary: installed, or unpacked by tests/run.sh into
/// `target/unpacked/PACKAGE` (rsyslog and syslog-ng-core conflict in
/// Debian, so one of them always is).
pub struct Program {
    pub exe: PathBuf,
    /// The unpacked package's root, when it is not installed.
    pub root: Option<PathBuf>,
}

/// Find `bin` of Debian package `pkg`; a missing one fails the test.
pub fn program(bin: &str, pkg: &str) -> Program {
    if let Some(exe) = find_tool(bin) {
        return Program { exe, root: None };
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/unpacked")
        .join(pkg);
    let exe = root.join("usr/sbin").join(bin);
    if exe.is_file() {
        return Program {
            exe,
            root: Some(root),
        };
    }
    panic!(
        "{bin} ({pkg}) is neither installed nor unpacked in {}: run tests/run.sh, \
         which installs one of rsyslog and syslog-ng-core and unpacks the other",
        root.display()
    );
}

/// The docs page that holds the snippets.
const SNIPPETS: &str = "docs/forwarding.md";

/// The body of the fenced block that follows `<!-- snippet: NAME -->` in
/// docs/forwarding.md; a `console` block's `$ ` prompt is left out.
pub fn doc_snippet(name: &str) -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SNIPPETS))
        .unwrap_or_else(|e| panic!("read {SNIPPETS}: {e}"));
    let marker = format!("<!-- snippet: {name} -->");
    let at = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("{SNIPPETS} has no {marker}"));
    let rest = &doc[at + marker.len()..];
    let open = rest.find("```").expect("a fenced block after the marker");
    let body = &rest[open..];
    let body = &body[body.find('\n').expect("fence line") + 1..];
    let body = &body[..body.find("```").expect("closing fence")];
    body.lines()
        .map(|l| l.strip_prefix("$ ").unwrap_or(l))
        .fold(String::new(), |acc, l| acc + l + "\n")
}

/// A running rsyslogd or syslog-ng.
pub struct Syslogd {
    child: Child,
    pub dir: tempfile::TempDir,
    /// The unix datagram socket it reads (RFC 3164 and 5424).
    pub input: PathBuf,
    name: &'static str,
}

impl Syslogd {
    /// rsyslogd with a private imuxsock input, then `forward` (rsyslog
    /// configuration). The input reads the host and timestamp each message
    /// carries, so what a sender wrote is what is forwarded.
    pub fn rsyslog(forward: &str) -> Syslogd {
        let prog = program("rsyslogd", "rsyslog");
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("in.sock");
        std::fs::create_dir(dir.path().join("work")).unwrap();
        let conf = dir.path().join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{work}\")\n\
                 module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
                 input(type=\"imuxsock\" Socket=\"{input}\" CreatePath=\"on\"\n      \
                 UseSpecialParser=\"off\" ParseHostname=\"on\" IgnoreTimestamp=\"off\")\n\
                 {forward}\n",
                work = dir.path().join("work").display(),
                input = input.display(),
            ),
        )
        .unwrap();
        let cmd = |extra: &[&str]| {
            let mut c = Command::new(&prog.exe);
            c.arg("-f").arg(&conf).args(extra);
            if let Some(root) = &prog.root {
                c.arg("-M").arg(module_dir(root, "rsyslog"));
            }
            c
        };
        run_ok(&mut cmd(&["-N1"]));
        let pid = dir.path().join("rsyslogd.pid");
        let child = start(
            cmd(&["-n", "-i", pid.to_str().unwrap()]),
            dir.path(),
            "rsyslogd",
        );
        Syslogd::ready(child, dir, input, "rsyslogd")
    }

    /// syslog-ng with a private unix-dgram source named `s_src` (the name
    /// Debian's configuration gives its system source) that reads RFC 5424
    /// and 3164 and keeps the host each message names, then `forward`.
    pub fn syslog_ng(forward: &str) -> Syslogd {
        let prog = program("syslog-ng", "syslog-ng-core");
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("in.sock");
        let conf = dir.path().join("syslog-ng.conf");
        let version = syslog_ng_version(&prog);
        std::fs::write(
            &conf,
            format!(
                "@version: {version}\n\
                 source s_src {{ unix-dgram(\"{input}\" flags(syslog-protocol) keep-hostname(yes)); }};\n\
                 {forward}\n",
                input = input.display(),
            ),
        )
        .unwrap();
        let d = dir.path();
        let cmd = |extra: &[&str]| {
            let mut c = Command::new(&prog.exe);
            c.arg("--cfgfile")
                .arg(&conf)
                .arg("--persist-file")
                .arg(d.join("syslog-ng.persist"))
                .arg("--control")
                .arg(d.join("syslog-ng.ctl"))
                .arg("--pidfile")
                .arg(d.join("syslog-ng.pid"))
                .arg("--no-caps")
                .args(extra);
            if let Some(root) = &prog.root {
                c.arg(format!(
                    "--module-path={}",
                    module_dir(root, "syslog-ng").display()
                ));
                c.env("LD_LIBRARY_PATH", root.join("usr/lib/syslog-ng"));
            }
            c
        };
        run_ok(&mut cmd(&["--syntax-only"]));
        let child = start(cmd(&["--foreground", "--stderr"]), d, "syslog-ng");
        Syslogd::ready(child, dir, input, "syslog-ng")
    }

    fn ready(
        mut child: Child,
        dir: tempfile::TempDir,
        input: PathBuf,
        name: &'static str,
    ) -> Syslogd {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !input.exists() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("{name} exited ({status}): {}", log_of(dir.path(), name));
            }
            if Instant::now() > deadline {
                panic!(
                    "{name} did not create {}: {}",
                    input.display(),
                    log_of(dir.path(), name)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Syslogd {
            child,
            dir,
            input,
            name,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Run `logger -u INPUT args`.
    pub fn logger(&self, args: &[&str]) -> Output {
        run_ok(
            Command::new(require("logger"))
                .arg("-u")
                .arg(&self.input)
                .args(args),
        )
    }

    /// Send one datagram as it is, for fields `logger` cannot set (another
    /// host name, a fixed timestamp).
    pub fn send(&self, bytes: &[u8]) {
        UnixDatagram::unbound()
            .unwrap()
            .send_to(bytes, &self.input)
            .expect("send to the daemon's input");
    }

    /// What it wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        log_of(self.dir.path(), self.name)
    }

    /// SIGTERM, and expect a clean exit.
    pub fn stop(mut self) {
        signal(self.child.id(), "TERM");
        let status = wait_timeout(&mut self.child, Duration::from_secs(10));
        assert!(
            status.success(),
            "{} exited {status}: {}",
            self.name,
            self.log()
        );
    }
}

impl Drop for Syslogd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start(mut cmd: Command, dir: &Path, name: &str) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"))
}

fn log_of(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

/// Where an unpacked package keeps its loadable modules:
/// `usr/lib/<triplet>/rsyslog`, `usr/lib/syslog-ng/<major.minor>`.
fn module_dir(root: &Path, name: &str) -> PathBuf {
    let lib = root.join("usr/lib");
    let (parent, marker) = match name {
        "rsyslog" => (None, "omuxsock.so"),
        _ => (Some(lib.join(name)), "libafsocket.so"),
    };
    // rsyslog: usr/lib/*/rsyslog; syslog-ng: usr/lib/syslog-ng/*.
    let found = std::fs::read_dir(parent.as_ref().unwrap_or(&lib))
        .unwrap()
        .flatten()
        .map(|e| match parent {
            None => e.path().join(name),
            Some(_) => e.path(),
        })
        .find(|p| p.join(marker).is_file());
    found.unwrap_or_else(|| panic!("no {name} modules under {}", lib.display()))
}

/// `3.38` for syslog-ng 3.38.1: the configuration version to declare.
fn syslog_ng_version(prog: &Program) -> String {
    let mut c = Command::new(&prog.exe);
    c.arg("--version");
    if let Some(root) = &prog.root {
        c.env("LD_LIBRARY_PATH", root.join("usr/lib/syslog-ng"));
    }
    let out = String::from_utf8(run_ok(&mut c).stdout).unwrap();
    let v = out
        .lines()
        .find_map(|l| l.strip_prefix("Installer-Version:"))
        .unwrap_or_else(|| panic!("no version in syslog-ng --version: {out}"))
        .trim();
    v.split('.').take(2).collect::<Vec<_>>().join(".")
}
