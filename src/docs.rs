//! Man pages and shell completions, generated from the clap definitions of
//! `ringlogd`, `logread` and `logwrite`, so they list exactly the flags the
//! programs accept. `cargo run --example gen_docs -- DIR` writes them; the
//! Debian package installs them.
//!
//! Each page is clap_mangen's (name, synopsis, description, options) plus
//! a few sections written here: what the flags cannot say, such as files,
//! signals and the environment.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{Command, CommandFactory};
use clap_complete::Shell;

use crate::client::logread::LogreadArgs;
use crate::client::logwrite::LogwriteArgs;
use crate::config;

/// A program with its man section and the sections added to its page.
pub struct Program {
    pub command: Command,
    pub section: &'static str,
    /// (heading, paragraphs): each paragraph is plain text, or
    /// `TERM\tTEXT` for a tagged paragraph.
    pub extra: Vec<(&'static str, Vec<&'static str>)>,
}

/// The three programs.
pub fn programs() -> Vec<Program> {
    vec![
        Program {
            command: config::command(),
            section: "8",
            extra: vec![
                ("CONFIGURATION", vec![
                    "Every long option is also a key of the TOML file --config names, spelled the same: max-lines = 5000, syslog-socket = [\"/dev/log\"], no-kmsg = true. A size may be a string with a unit (\"8M\"); an option that can be repeated takes a list. Options given on the command line win over the file. The whole file is checked first: every unknown key or bad value is reported with the file, line and column, and ringlogd exits 1; --check-config prints the settings ringlogd would run with and where each came from.",
                    "On SIGHUP ringlogd reads the file again: max-lines, max-bytes, level-prefix, tcp-max-conns and tcp-idle-timeout apply at once and the ring is kept (beyond smaller limits the oldest entries are evicted); every other change is reported in the log as waiting for a restart, and a file that no longer loads changes nothing.",
                ]),
                ("SOCKET ACTIVATION", vec![
                    "Started by systemd with sockets (LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES), ringlogd uses each socket it is handed as it is, never unlinking or re-binding it. The fd name says what a socket is for: syslog (any number), intake, query, udp or tcp. Any other name (systemd's default is the socket unit's name) is told apart by type: a unix datagram socket is a syslog socket, a listening unix stream socket the query socket, a UDP socket and a listening TCP socket network listeners. The intake socket must be named intake. Sockets not handed in are bound as usual; a handed-in syslog socket replaces the default /dev/log.",
                    "With NOTIFY_SOCKET set (Type=notify) ringlogd sends READY=1 once every socket serves, RELOADING=1 and READY=1 around a SIGHUP, and STOPPING=1 when it stops.",
                    "With NOTIFY_SOCKET set ringlogd also hands the ring's memfd (FDSTORE=1, FDNAME=ring) and every intake fd it reads (FDNAME=fd.ID.NAME, the source name escaped) to systemd's fd store, and takes each intake fd out again (FDSTOREREMOVE=1) when it ends; the unit needs FileDescriptorStoreMax=. On the next start, after a restart or a crash, those fds come back with the sockets: ringlogd goes on with the same entries, sequence numbers and counters, and reads the intake fds on under their names.",
                ]),
                ("SIGNALS", vec![
                    "SIGTERM, SIGINT\tRemove the socket files ringlogd bound and exit 0.",
                    "SIGHUP\tRead the configuration file again (see CONFIGURATION).",
                    "SIGUSR1\tPause storing new entries, or resume (they are counted as dropped while paused).",
                    "SIGUSR2\tExecute the program again in the same process (an upgraded binary takes over), handing over the ring, every socket, the intake fds with their unfinished lines and the TCP connections; query clients are closed. If that fails, an err entry says why and ringlogd runs on. ringlogd --reexec sends it and waits.",
                ]),
                ("FILES", vec![
                    "/etc/ringlogd/ringlogd.toml\tThe configuration file the packaged service units and init scripts pass to --config.",
                    "/dev/log\tThe syslog socket (--syslog-socket).",
                    "/var/run/memlogdq.sock\tThe query socket: logread(1), curl --unix-socket.",
                    "/var/run/linuxkit-external-logging.sock\tThe fd intake socket: logwrite(1), LinuxKit's init.",
                    "/dev/kmsg\tThe kernel's log.",
                ]),
                ("EXIT STATUS", vec![
                    "0 after SIGTERM or SIGINT, when --check-config found the configuration valid, or when --reexec saw the daemon serve again; 1 when ringlogd cannot start (a bad setting, a socket path in use, a user that does not exist), or when it stops but cannot save the --snapshot, with the reason on standard error; 2 for a command-line usage error.",
                ]),
                ("SEE ALSO", vec![
                    "logread(1), logwrite(1), systemd.socket(5), journald.conf(5)",
                ]),
            ],
        },
        Program {
            command: LogreadArgs::command(),
            section: "1",
            extra: vec![
                ("EXIT STATUS", vec![
                    "0 at the end of a dump or after a control request; 1 when the daemon cannot be reached or refuses the request, with one line on standard error saying why; 2 for a usage error.",
                ]),
                ("SEE ALSO", vec!["ringlogd(8), logwrite(1)"]),
            ],
        },
        Program {
            command: LogwriteArgs::command(),
            section: "1",
            extra: vec![
                ("EXIT STATUS", vec![
                    "The command's status; 255 if a signal killed it; 127 if it was not found and 126 if it could not be run.",
                ]),
                ("SEE ALSO", vec!["ringlogd(8), logread(1)"]),
            ],
        },
    ]
}

/// The man page of `p`, as roff.
pub fn man_page(p: &Program) -> io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(p.command.clone()).section(p.section);
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    for (heading, paragraphs) in &p.extra {
        writeln!(out, ".SH \"{heading}\"")?;
        for para in paragraphs {
            match para.split_once('\t') {
                Some((tag, text)) => {
                    writeln!(out, ".TP\n\\fB{}\\fR\n{}", escape(tag), escape(text))?
                }
                None => writeln!(out, ".PP\n{}", escape(para))?,
            }
        }
    }
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// Text as roff: backslashes and hyphens escaped, no line starting with a
/// control character.
fn escape(text: &str) -> String {
    let s = text.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with(['.', '\'']) {
        format!("\\&{s}")
    } else {
        s
    }
}

/// The shells completions are written for, with the file name each one's
/// loader looks for.
pub const SHELLS: [(Shell, &str); 3] = [
    (Shell::Bash, "bash"),
    (Shell::Zsh, "zsh"),
    (Shell::Fish, "fish"),
];

/// The completion file name for `bin` in `shell`.
pub fn completion_file(shell: Shell, bin: &str) -> String {
    match shell {
        Shell::Zsh => format!("_{bin}"),
        Shell::Fish => format!("{bin}.fish"),
        _ => bin.to_owned(),
    }
}

/// Completions of `cmd` for `shell`.
pub fn completion(shell: Shell, cmd: &Command) -> Vec<u8> {
    let mut cmd = cmd.clone();
    let name = cmd.get_name().to_owned();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    out
}

/// Write every man page to `DIR/man/NAME.SECTION` and every completion to
/// `DIR/completions/SHELL/FILE`; returns the files written.
pub fn write_all(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut put = |path: PathBuf, bytes: &[u8]| -> io::Result<()> {
        std::fs::create_dir_all(path.parent().expect("a file in a directory"))?;
        std::fs::write(&path, bytes)?;
        written.push(path);
        Ok(())
    };
    for p in programs() {
        let name = p.command.get_name().to_owned();
        put(
            dir.join("man").join(format!("{name}.{}", p.section)),
            &man_page(&p)?,
        )?;
        for (shell, sub) in SHELLS {
            put(
                dir.join("completions")
                    .join(sub)
                    .join(completion_file(shell, &name)),
                &completion(shell, &p.command),
            )?;
        }
    }
    Ok(written)
}
