//! The daemon's command line and configuration file, turned into one
//! [`Settings`].
//!
//! Flags are GNU long options; every long option is also accepted in the Go
//! style memlogd and LinuxKit configs use (`-socket-query X`,
//! `-max-lines=10`), by rewriting such arguments before clap sees them.
//! Every flag is also a key of the TOML file `--config` names ([`file`]),
//! and the command line wins over the file ([`Loader`]).

pub mod capture;
pub mod file;
pub mod metrics;
pub mod show;

pub use file::{Loaded, Loader, Origin};

use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::parse::multiline::{self, MultilineSpec};
use crate::ring::{Compress, Evict, Limits, RingOptions, DEFAULT_MAX_LINES, MIN_MAX_BYTES};
use crate::route::spec::RouteSpec;

pub const DEFAULT_SYSLOG_SOCKET: &str = "/dev/log";
pub const DEFAULT_QUERY_SOCKET: &str = "/var/run/memlogdq.sock";
pub const DEFAULT_KMSG: &str = "/dev/kmsg";
pub const DEFAULT_INTAKE_SOCKET: &str = "/var/run/linuxkit-external-logging.sock";
/// File names used under `--runtime-dir`.
pub const RUNTIME_SYSLOG_NAME: &str = "log";
pub const RUNTIME_QUERY_NAME: &str = "memlogdq.sock";
pub const RUNTIME_INTAKE_NAME: &str = "linuxkit-external-logging.sock";
/// Default `--max-fds`.
pub const DEFAULT_MAX_FDS: usize = 1024;
/// The most `--max-fds` accepts: far above any fd limit a kernel grants.
pub const MAX_MAX_FDS: usize = 1 << 20;
/// The query socket's mode: root only, or with `--query-group` its group.
pub const DEFAULT_QUERY_MODE: u32 = 0o600;
/// Query connections open at once, unless the fd limit leaves fewer.
pub const DEFAULT_QUERY_MAX_CLIENTS: usize = 4096;
pub const GROUP_QUERY_MODE: u32 = 0o660;

/// Defaults the code works out itself, since they depend on other flags
/// (`--runtime-dir`, `--fd-syslog`, `--no-kmsg`, `--query-group`): by
/// argument id, as `--help` shows them. clap shows the others from their
/// `default_value`; [`command`] adds these, so each default is written
/// once, here or there.
fn computed_defaults() -> [(&'static str, String); 5] {
    [
        ("syslog_socket", DEFAULT_SYSLOG_SOCKET.to_owned()),
        ("socket_query", DEFAULT_QUERY_SOCKET.to_owned()),
        (
            "query_mode",
            format!("{DEFAULT_QUERY_MODE:04o}, or {GROUP_QUERY_MODE:04o} with --query-group"),
        ),
        ("socket_log", DEFAULT_INTAKE_SOCKET.to_owned()),
        ("kmsg", DEFAULT_KMSG.to_owned()),
    ]
}

/// The daemon's command line as clap reads it and `--help` and the man
/// page show it: [`DaemonArgs`], with the defaults of
/// [`computed_defaults`] in the help of their flags.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    computed_defaults()
        .into_iter()
        .fold(DaemonArgs::command(), |cmd, (id, default)| {
            cmd.mut_arg(id, |a| {
                let help = a.get_help().map(ToString::to_string).unwrap_or_default();
                a.help(format!("{help} [default: {default}]"))
            })
        })
}

/// A syslog-compatible in-memory log server.
///
/// Keeps every log message of the machine in one bounded ring in memory,
/// fed by /dev/log, /dev/kmsg, the network and the fds LinuxKit's init and
/// logwrite pass it, and serves it over memlogd's query socket.
#[derive(Parser, Debug)]
#[command(name = "ringlogd", version)]
pub struct DaemonArgs {
    /// Syslog datagram socket to listen on (mode 0666). Repeat the flag for
    /// more sockets, e.g. one inside a chroot.
    #[arg(long = "syslog-socket", value_name = "PATH")]
    pub syslog_socket: Vec<PathBuf>,

    /// Use the syslog datagram socket the parent process bound and passed
    /// as fd N, instead of binding one; never unlinked. Repeatable. Given
    /// without --syslog-socket, /dev/log is not bound.
    #[arg(long = "fd-syslog", value_name = "N", value_parser = parse_fd)]
    pub fd_syslog: Vec<RawFd>,

    /// memlogd query socket (mode 0600).
    #[arg(long = "socket-query", value_name = "PATH")]
    pub socket_query: Option<PathBuf>,

    /// Permissions of the query socket, in octal: 0660 lets --query-group
    /// read, 0666 lets every user connect (each then sees only the entries
    /// it sent itself).
    #[arg(long = "query-mode", value_name = "MODE", value_parser = parse_mode)]
    pub query_mode: Option<u32>,

    /// Group (name or number) that owns the query socket. Its members read
    /// every entry, as root does; any other user who can connect gets only
    /// the entries it sent itself.
    #[arg(long = "query-group", value_name = "GROUP", value_parser = parse_group)]
    pub query_group: Option<u32>,

    /// Most query connections open at once. A quarter is kept for root,
    /// ringlogd's user and --query-group; past the limit a connection gets
    /// one error line and is closed, and counted. Lowered to what the fd
    /// limit leaves beside --max-fds and --tcp-max-conns.
    #[arg(long = "query-max-clients", value_name = "N", default_value_t = DEFAULT_QUERY_MAX_CLIENTS,
          value_parser = parse_max_conns)]
    pub query_max_clients: usize,

    /// Most query connections open at once from one user who reads only
    /// its own entries (not root, ringlogd's user or --query-group).
    #[arg(long = "query-max-clients-per-uid", value_name = "N", default_value_t = 64,
          value_parser = parse_max_conns)]
    pub query_max_clients_per_uid: usize,

    /// Use the listening query socket the parent process passed as fd N,
    /// instead of binding --socket-query; never unlinked.
    #[arg(long = "fd-query", value_name = "N", value_parser = parse_fd)]
    pub fd_query: Option<RawFd>,

    /// fd intake socket (mode 0600): clients send a name and the fds of a
    /// program's output, and every line read from them is logged under that
    /// name.
    #[arg(long = "socket-log", value_name = "PATH")]
    pub socket_log: Option<PathBuf>,

    /// Use the fd intake datagram socket the parent process bound and
    /// passed as fd N, instead of binding --socket-log; never unlinked.
    #[arg(long = "fd-log", value_name = "N", value_parser = parse_fd)]
    pub fd_log: Option<RawFd>,

    /// Put every socket not given explicitly into DIR under its default
    /// file name (log, memlogdq.sock, linuxkit-external-logging.sock): for
    /// tests and unprivileged use.
    #[arg(long = "runtime-dir", value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,

    /// Most fds read at once from the intake socket; fds passed beyond it
    /// are closed at once and counted as dropped.
    #[arg(long = "max-fds", value_name = "N", default_value_t = DEFAULT_MAX_FDS,
          value_parser = parse_max_fds)]
    pub max_fds: usize,

    /// Read a leading <N> (N from 0 to 7) on each line from an intake fd as
    /// its severity and remove it, as journald does for stdout streams.
    #[arg(long = "level-prefix")]
    pub level_prefix: bool,

    /// Lines per second each intake fd may write (and 1 KiB per line of
    /// bytes); a faster fd is paused, not read, until it slows down, so its
    /// writer waits and nothing is lost. 0: no limit.
    #[arg(long = "intake-rate", value_name = "LINES", default_value_t = 10_000)]
    pub intake_rate: u64,

    /// Lines an intake fd may write at once before --intake-rate applies.
    #[arg(long = "intake-burst", value_name = "LINES", default_value_t = 50_000,
          value_parser = parse_intake_burst)]
    pub intake_burst: u64,

    /// Bind every socket, start the daemon again in the background with the
    /// sockets handed over, and exit 0 once it serves (1 if it failed).
    #[arg(long = "daemonize")]
    pub daemonize: bool,

    /// Most entries the ring holds; the oldest are evicted beyond it.
    #[arg(long = "max-lines", value_name = "N", default_value_t = DEFAULT_MAX_LINES,
          value_parser = parse_max_lines)]
    pub max_lines: usize,

    /// Most memory the ring's storage occupies (e.g. 64k, 8M, 1G; at least
    /// 16k); the oldest entries are evicted beyond it.
    #[arg(long = "max-bytes", value_name = "SIZE", default_value = "8M", value_parser = parse_max_bytes)]
    pub max_bytes: usize,

    /// How full chunks of the ring are stored: zstd (compressed, the newest
    /// chunk stays raw) or none.
    #[arg(long = "compress", value_name = "HOW", default_value = "zstd",
          value_parser = parse_compress)]
    pub compress: Compress,

    /// Which entries a full ring loses first: fair (a source holding more
    /// than its --source-share loses its oldest first, and debug/info go
    /// before err and worse) or fifo (plain oldest first).
    #[arg(long = "evict", value_name = "POLICY", default_value = "fair",
          value_parser = parse_evict)]
    pub evict: Evict,

    /// Under --evict fair, the share of the ring one source may hold before
    /// it loses its oldest entries first: a fraction (1/8, 0.125) or a
    /// percentage (12.5%).
    #[arg(long = "source-share", value_name = "FRACTION", default_value = "1/8",
          value_parser = parse_share)]
    pub source_share: f64,

    /// Write the ring to FILE on a clean stop and load it at start, so the
    /// logs survive a reboot when FILE is on disk. A torn or foreign file is
    /// refused with a message and ringlogd starts empty. FILE is private
    /// (0600) and replaced atomically; FILE.seq beside it keeps sequence
    /// numbers rising across a crash. A symlink, or a file someone else
    /// could have written, is refused; a save that fails is an error and
    /// exit status 1.
    #[arg(long = "snapshot", value_name = "FILE")]
    pub snapshot: Option<PathBuf>,

    /// Longest message text stored, RFC 5424 structured data included;
    /// longer text is cut at a UTF-8 boundary and flagged truncated.
    #[arg(long = "max-line-len", value_name = "BYTES", default_value_t = 8192,
          value_parser = parse_max_line_len)]
    pub max_line_len: usize,

    /// Kernel log to read, from the oldest record it holds; a regular file
    /// of saved records is replayed once at start. If it cannot be opened
    /// (no /dev/kmsg in a container, not root) ringlogd warns and runs on.
    #[arg(long = "kmsg", value_name = "PATH", conflicts_with = "no_kmsg")]
    pub kmsg: Option<PathBuf>,

    /// Do not read kernel messages.
    #[arg(long = "no-kmsg")]
    pub no_kmsg: bool,
    /// Receive syslog over UDP on ADDR:PORT (127.0.0.1:514, [::]:514; port
    /// 0 picks a free one). Repeat for more. Off unless given.
    #[arg(long = "udp", value_name = "ADDR:PORT", value_parser = parse_listen_addr)]
    pub udp: Vec<SocketAddr>,

    /// Receive syslog over TCP on ADDR:PORT (RFC 6587 octet-counting or
    /// LF framing). Repeat for more. Off unless given.
    #[arg(long = "tcp", value_name = "ADDR:PORT", value_parser = parse_listen_addr)]
    pub tcp: Vec<SocketAddr>,

    /// Most TCP connections open at once; more are closed as they arrive,
    /// and counted.
    #[arg(long = "tcp-max-conns", value_name = "N", default_value_t = 256,
          value_parser = parse_max_conns)]
    pub tcp_max_conns: usize,

    /// Close a TCP connection that sent nothing for this long (0: never).
    #[arg(long = "tcp-idle-timeout", value_name = "SECS", default_value_t = 300)]
    pub tcp_idle_timeout: u64,

    /// Forward the ring to a syslog server (udp://, tcp://, tls:// or
    /// relp://HOST:PORT) or upload it to systemd-journal-remote
    /// (journal+http:// or journal+https://), options as a query string
    /// (format=, framing=, filters priority= facility= source= app= input=
    /// grep=; for tls and journal+https ca= cert= key= name=; for relp
    /// window=). Repeat for more routes.
    #[arg(long = "route", value_name = "URL", value_parser = RouteSpec::parse)]
    pub route: Vec<RouteSpec>,

    #[command(flatten)]
    pub metrics: metrics::MetricsArgs,

    #[command(flatten)]
    pub capture: capture::CaptureArgs,

    /// Join continuation lines read from fds into one entry: a regular
    /// expression matched against each line (`^\s` for indented stack
    /// traces). Off unless given.
    #[arg(long = "multiline", value_name = "PATTERN", value_parser = parse_pattern)]
    pub multiline: Option<String>,

    /// What a match of --multiline means: first (starts an entry), last
    /// (ends one), nonfirst (a line that does not match starts one), or
    /// nonlast (a line that does not match ends one).
    #[arg(long = "multiline-match", value_name = "MODE", default_value = multiline::DEFAULT_MODE.as_str(),
          value_parser = multiline::Mode::parse, requires = "multiline")]
    pub multiline_match: multiline::Mode,

    /// Store a joined entry this long after its first line at most, in
    /// milliseconds, even if it may go on.
    #[arg(long = "multiline-flush", value_name = "MS",
          default_value_t = multiline::DEFAULT_FLUSH.as_millis() as u64,
          value_parser = parse_flush_ms, requires = "multiline")]
    pub multiline_flush: u64,
    /// Once every socket is bound (and /dev/kmsg open), switch to this user
    /// (name or number) for good: its uid, and its primary group unless
    /// --group says otherwise. Needs ringlogd to start as root.
    #[arg(long = "user", value_name = "NAME")]
    pub user: Option<String>,

    /// Once every socket is bound, switch to this group (name or number)
    /// for good, with no supplementary groups.
    #[arg(long = "group", value_name = "NAME")]
    pub group: Option<String>,

    /// Write the daemon's pid to PATH once it serves (under --daemonize,
    /// the background daemon's pid, before the parent exits); removed at
    /// exit when the directory allows it.
    #[arg(long = "pidfile", value_name = "PATH")]
    pub pidfile: Option<PathBuf>,

    /// Print one line on stderr once ringlogd serves: its sockets and the
    /// ring's limits. Printed anyway when stderr is a terminal.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Honour SIGUSR1 (pause/resume), SIGUSR2 (re-exec) and SIGHUP (reload)
    /// only from root; from anyone else they are ignored and logged. Under
    /// --user, every process of that user may signal the daemon otherwise.
    #[arg(long = "no-signal-control")]
    pub no_signal_control: bool,

    /// Read settings from this TOML file (every flag is a key of the same
    /// name); flags on the command line win over it. SIGHUP reads it again.
    #[arg(long = "config", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Check the configuration (file and flags), print the settings the
    /// daemon would run with, and exit: 0 if they are valid, 1 if not.
    #[arg(long = "check-config")]
    pub check_config: bool,

    /// Ask the running daemon to execute itself again (an upgraded binary
    /// takes over) keeping its ring, sockets and intake fds, and exit 0
    /// once the new program serves, 1 if it could not. The daemon is the
    /// pid in --pidfile, or $MAINPID (as systemd sets it); the same
    /// --config and flags tell where its query socket is.
    #[arg(long = "reexec", conflicts_with = "check_config")]
    pub reexec: bool,
}

/// Flags that are not settings, so have no key in the configuration file.
pub const NOT_IN_FILE: &[&str] = &["config", "check-config", "reexec", "help", "version"];

/// The network listeners and their limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetSettings {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub tcp_max_conns: usize,
    /// `None`: connections may stay idle forever.
    pub tcp_idle_timeout: Option<Duration>,
}

/// Everything the daemon needs to start, resolved from the flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub syslog_sockets: Vec<PathBuf>,
    pub query_socket: PathBuf,
    pub limits: Limits,
    /// How the ring stores chunks and what it evicts first.
    pub ring: RingOptions,
    /// Where the ring is saved on a clean stop and loaded from at start.
    pub snapshot: Option<PathBuf>,
    pub max_line_len: usize,
    /// The kernel log device or file to read; `None` with `--no-kmsg`.
    pub kmsg: Option<PathBuf>,
    pub net: NetSettings,
    /// Syslog sockets inherited from the parent, as fd numbers.
    pub syslog_fds: Vec<RawFd>,
    /// The query socket inherited from the parent; `query_socket` is then
    /// not bound.
    pub query_fd: Option<RawFd>,
    /// The query socket's mode when ringlogd binds it.
    pub query_mode: u32,
    /// The group that owns the query socket and whose members read every
    /// entry.
    pub query_group: Option<u32>,
    /// Most query connections at once, in all and from one restricted uid.
    pub query_max_clients: usize,
    pub query_max_clients_per_uid: usize,
    pub intake_socket: PathBuf,
    /// The intake socket inherited from the parent; `intake_socket` is then
    /// not bound.
    pub intake_fd: Option<RawFd>,
    pub max_fds: usize,
    pub level_prefix: bool,
    /// Lines per second, and at once, each intake fd may write.
    pub intake_rate: u64,
    pub intake_burst: u64,
    pub daemonize: bool,
    /// Where the ring is forwarded.
    pub routes: Vec<RouteSpec>,
    /// Where Prometheus scrapes the daemon (`--metrics`).
    pub metrics: Vec<SocketAddr>,
    /// What starts captures and what bounds them (`--capture`).
    pub capture: capture::CaptureSettings,
    /// Multi-line joining of fd lines; `None` when off.
    pub multiline: Option<MultilineSpec>,
    /// `syslog_sockets` is only the default path (no --syslog-socket or
    /// --fd-syslog): a syslog socket handed in by socket activation then
    /// takes its place.
    pub syslog_default: bool,
    /// Switch to this user and group once every socket is bound.
    pub user: Option<String>,
    pub group: Option<String>,
    pub pidfile: Option<PathBuf>,
    /// Say on stderr where ringlogd serves, even when it is no terminal.
    pub verbose: bool,
    /// Control signals are honoured only from root.
    pub no_signal_control: bool,
}

impl DaemonArgs {
    pub fn settings(&self) -> Settings {
        let in_dir = |name: &str, default: &str| match &self.runtime_dir {
            Some(dir) => dir.join(name),
            None => PathBuf::from(default),
        };
        let syslog_default = self.syslog_socket.is_empty() && self.fd_syslog.is_empty();
        let syslog_sockets = if syslog_default {
            vec![in_dir(RUNTIME_SYSLOG_NAME, DEFAULT_SYSLOG_SOCKET)]
        } else {
            self.syslog_socket.clone()
        };
        Settings {
            syslog_sockets,
            query_socket: self
                .socket_query
                .clone()
                .unwrap_or_else(|| in_dir(RUNTIME_QUERY_NAME, DEFAULT_QUERY_SOCKET)),
            limits: Limits {
                max_lines: self.max_lines,
                max_bytes: self.max_bytes,
            },
            ring: RingOptions {
                compress: self.compress,
                evict: self.evict,
                source_share: self.source_share,
                max_text: self.max_line_len,
            },
            snapshot: self.snapshot.clone(),
            max_line_len: self.max_line_len,
            // Not moved by --runtime-dir: that flag places the sockets
            // ringlogd creates, and /dev/kmsg is only read.
            kmsg: (!self.no_kmsg).then(|| {
                self.kmsg
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_KMSG))
            }),
            net: NetSettings {
                udp: self.udp.clone(),
                tcp: self.tcp.clone(),
                tcp_max_conns: self.tcp_max_conns,
                tcp_idle_timeout: (self.tcp_idle_timeout > 0)
                    .then(|| Duration::from_secs(self.tcp_idle_timeout)),
            },
            syslog_fds: self.fd_syslog.clone(),
            query_fd: self.fd_query,
            query_mode: self.query_mode.unwrap_or(match self.query_group {
                Some(_) => GROUP_QUERY_MODE,
                None => DEFAULT_QUERY_MODE,
            }),
            query_group: self.query_group,
            query_max_clients: self.query_max_clients,
            query_max_clients_per_uid: self.query_max_clients_per_uid,
            intake_socket: self
                .socket_log
                .clone()
                .unwrap_or_else(|| in_dir(RUNTIME_INTAKE_NAME, DEFAULT_INTAKE_SOCKET)),
            intake_fd: self.fd_log,
            max_fds: self.max_fds,
            level_prefix: self.level_prefix,
            intake_rate: self.intake_rate,
            intake_burst: self.intake_burst,
            daemonize: self.daemonize,
            routes: self.route.clone(),
            metrics: self.metrics.metrics.clone(),
            capture: self.capture.settings(self.max_bytes),
            multiline: self.multiline.as_ref().map(|pattern| MultilineSpec {
                pattern: pattern.clone(),
                mode: self.multiline_match,
                flush: Duration::from_millis(self.multiline_flush),
            }),
            syslog_default,
            user: self.user.clone(),
            group: self.group.clone(),
            pidfile: self.pidfile.clone(),
            verbose: self.verbose,
            no_signal_control: self.no_signal_control,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        DaemonArgs::parse_from(["ringlogd"]).settings()
    }
}

/// A size with an optional binary suffix: `4096`, `64k`, `8M`, `1G`
/// (`KiB`, `MB` and the like are read the same way).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("{s:?} is not a size (try 4096, 64k, 8M)"));
    }
    let n: usize = t[..digits]
        .parse()
        .map_err(|_| format!("{s:?} is too large"))?;
    let unit = t[digits..].trim().to_ascii_lowercase();
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        _ => return Err(format!("{s:?}: unknown size unit (use k, M or G)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

fn parse_max_bytes(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    if n < MIN_MAX_BYTES {
        return Err(format!("must be at least {}k", MIN_MAX_BYTES >> 10));
    }
    Ok(n)
}

fn parse_max_lines(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be a whole number of at least 1".into()),
    }
}

fn parse_intake_burst(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be a whole number of at least 1".into()),
    }
}

fn parse_max_fds(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_MAX_FDS).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from 1 to {MAX_MAX_FDS}")),
    }
}

/// An octal mode for a socket file: permission bits only.
fn parse_mode(s: &str) -> Result<u32, String> {
    match u32::from_str_radix(s.trim(), 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!(
            "{s:?} is not an octal mode from 0 to 0777 (e.g. 0660)"
        )),
    }
}

/// A group name from the group database, or a number.
fn parse_group(s: &str) -> Result<u32, String> {
    let s = s.trim();
    if let Ok(gid) = s.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(s) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!("no group named {s:?}")),
        Err(e) => Err(format!("cannot look up group {s:?}: {e}")),
    }
}

fn parse_fd(s: &str) -> Result<RawFd, String> {
    match s.trim().parse::<RawFd>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err("must be a file descriptor number (0 or more)".into()),
    }
}

fn parse_compress(s: &str) -> Result<Compress, String> {
    match s.trim() {
        "zstd" => Ok(Compress::Zstd),
        "none" | "off" => Ok(Compress::None),
        _ => Err(format!("{s:?}: use zstd or none")),
    }
}

fn parse_evict(s: &str) -> Result<Evict, String> {
    match s.trim() {
        "fair" => Ok(Evict::Fair),
        "fifo" => Ok(Evict::Fifo),
        _ => Err(format!("{s:?}: use fair or fifo")),
    }
}

/// A share of the ring: `1/8`, `0.125` or `12.5%`, above 0 and at most 1.
fn parse_share(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = if let Some((a, b)) = t.split_once('/') {
        match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
            (Ok(a), Ok(b)) if b != 0.0 => Some(a / b),
            _ => None,
        }
    } else if let Some(p) = t.strip_suffix('%') {
        p.trim().parse::<f64>().ok().map(|p| p / 100.0)
    } else {
        t.parse::<f64>().ok()
    };
    match v {
        Some(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a share from 0 to 1 (e.g. 1/8, 0.125, 12.5%)"
        )),
    }
}

fn parse_max_line_len(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=1 << 20).contains(&n) => Ok(n),
        _ => Err("must be a whole number from 1 to 1048576".into()),
    }
}

/// An IP address and port, `[v6]:port` for IPv6. Names are not resolved:
/// a listener's address should not depend on DNS at boot.
fn parse_listen_addr(s: &str) -> Result<SocketAddr, String> {
    s.trim().parse().map_err(|_| {
        format!("{s:?} is not ADDR:PORT with a numeric address (e.g. 127.0.0.1:514, [::1]:514, 0.0.0.0:514)")
    })
}

fn parse_pattern(s: &str) -> Result<String, String> {
    regex::Regex::new(s).map_err(|e| e.to_string())?;
    Ok(s.to_owned())
}

fn parse_flush_ms(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if (1..=3_600_000).contains(&n) => Ok(n),
        _ => Err("must be a whole number of milliseconds from 1 to 3600000".into()),
    }
}

fn parse_max_conns(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=1 << 20).contains(&n) => Ok(n),
        _ => Err("must be a whole number from 1 to 1048576".into()),
    }
}

/// Rewrite Go-style single-dash long options (`-max-lines=10`,
/// `-socket X`) as GNU ones for `cmd`. Short options and everything after
/// `--` are left alone.
pub fn go_style_args(
    args: impl IntoIterator<Item = OsString>,
    cmd: &clap::Command,
) -> Vec<OsString> {
    let longs: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
    let mut out = Vec::new();
    let mut rest = false;
    for arg in args {
        if !rest {
            if let Some(s) = arg.to_str() {
                if s == "--" {
                    rest = true;
                } else if let Some(body) = s.strip_prefix('-').filter(|b| !b.starts_with('-')) {
                    let name = body.split('=').next().unwrap_or(body);
                    if name.len() > 1 && longs.contains(&name) {
                        out.push(OsString::from(format!("-{s}")));
                        continue;
                    }
                }
            }
        }
        out.push(arg);
    }
    out
}

#[cfg(test)]
mod tests;
