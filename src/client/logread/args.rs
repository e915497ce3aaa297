//! logread's command line: the flags of memlogd's, busybox's, OpenWrt's and
//! journalctl's `logread` / `journalctl` where their letters do not clash,
//! checked here for what clap cannot see (a socket given to `-s`, times),
//! and turned into the request the daemon is sent.

use std::ffi::OsString;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgAction, CommandFactory, Parser, ValueEnum};
use serde_json::{json, Map, Value};

use crate::config::{go_style_args, DEFAULT_QUERY_SOCKET};
use crate::view::filter::parse_time;
use crate::view::format::Format;
use crate::view::frames;
use crate::view::timefmt::rfc3339_nanos;

/// Read the log ring of ringlogd (or LinuxKit's memlogd).
///
/// -f prints new entries only, as memlogd's and busybox's logread do;
/// -n N -f prints the newest N first, as journalctl -n N -f does
/// (journalctl -f alone shows 10); -F prints everything held first. A
/// follower outlives the daemon's re-exec and restart: it reconnects and
/// goes on after the last entry it printed.
#[derive(Parser, Debug)]
#[command(name = "logread", version)]
pub struct LogreadArgs {
    /// The daemon's query socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_QUERY_SOCKET)]
    pub socket: PathBuf,
    /// Follow: print new entries as they arrive (with -n N, the newest N first).
    #[arg(short = 'f', conflicts_with = "dump_follow")]
    pub follow: bool,
    /// Dump the entries held now, then follow new ones.
    #[arg(short = 'F')]
    pub dump_follow: bool,
    /// Only the newest N matching entries (then follow, with -f or -F).
    #[arg(short = 'n', long, visible_short_alias = 'l', value_name = "N")]
    pub lines: Option<u64>,
    /// Severity at or above a level (err), or a range (warning..err).
    #[arg(short = 'p', long = "priority", value_name = "LEVEL")]
    pub priority: Option<String>,
    /// Only this facility: a name (daemon, authpriv, local0) or a code
    /// 0-23; repeat it, or separate with commas, for several.
    #[arg(short = 'z', long, value_name = "FACILITY", action = ArgAction::Append)]
    pub facility: Vec<String>,
    /// Not this facility (entries without one pass); repeatable.
    #[arg(short = 'Z', long = "not-facility", value_name = "FACILITY", action = ArgAction::Append)]
    pub not_facility: Vec<String>,
    /// Only entries whose app / tag is TAG.
    #[arg(short = 't', long = "tag", value_name = "TAG")]
    pub tag: Option<String>,
    /// Only entries whose source matches GLOB (e.g. 'onboot.*'); not a
    /// socket, as OpenWrt's -s is: that is --socket.
    #[arg(short = 's', long = "source", value_name = "GLOB")]
    pub source: Option<String>,
    /// Only entries from one input: syslog, fd, kmsg, net, internal.
    #[arg(short = 'i', long = "input", value_name = "INPUT")]
    pub input: Option<String>,
    /// Kernel messages only (the same as -i kmsg).
    #[arg(short = 'k', long = "kernel", conflicts_with = "input")]
    pub kernel: bool,
    /// Only entries whose message matches the regular expression.
    #[arg(short = 'g', long, visible_short_alias = 'e', value_name = "REGEX")]
    pub grep: Option<String>,
    /// Entries received at or after TIME: "YYYY-MM-DD [HH:MM[:SS]]", HH:MM,
    /// RFC 3339, now, today, yesterday, tomorrow, @SECONDS, -1h, +30min,
    /// "2 hours ago", or 10m (ago); local time unless it says UTC.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Entries received at or before TIME (the forms of --since).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Resume after this sequence number (the `seq` of the last entry seen).
    #[arg(long = "after-seq", value_name = "SEQ")]
    pub after_seq: Option<u64>,
    /// With -f or -F: how long the daemon may stay gone (re-exec, restart)
    /// before logread gives up and exits 1.
    #[arg(
        long = "reconnect-timeout",
        value_name = "SECONDS",
        default_value = "30",
        value_parser = parse_seconds
    )]
    pub reconnect_timeout: Duration,
    /// Output format: memlogd (TIME;SOURCE;MSG), short, short-iso, json,
    /// rfc5424, rfc3164, cat. A message's further lines are indented under
    /// it in memlogd, short, short-iso and cat (by two spaces), so one
    /// entry is never read as two.
    #[arg(short = 'o', long = "output", value_name = "FORMAT", default_value = "memlogd",
          value_parser = ["memlogd", "short", "short-iso", "json", "rfc5424", "rfc3164", "cat"])]
    pub output: String,
    /// The same as -o json.
    #[arg(long)]
    pub json: bool,
    /// Colour entries by severity.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: ColorWhen,
    /// Print the daemon's counters as JSON and exit.
    #[arg(long, conflicts_with_all = ["follow", "dump_follow", "lines", "pause", "resume", "clear"])]
    pub stats: bool,
    /// Close every intake fd passed under NAME (e.g. a program that floods
    /// its output); says how many were closed.
    #[arg(long = "drop-fd", value_name = "NAME",
          conflicts_with_all = ["follow", "dump_follow", "lines", "stats", "pause", "resume", "clear"])]
    pub drop_fd: Option<String>,
    /// List the captures held (the entries kept around a --capture
    /// trigger): id, trigger, sequence numbers, size, open or complete; as
    /// JSON with -o json.
    #[arg(long, conflicts_with_all = ["follow", "dump_follow", "lines", "stats", "capture",
          "drop_fd", "clear", "pause", "resume", "release"])]
    pub captures: bool,
    /// Print capture ID's entries (an open one's so far), in any -o format,
    /// with any filter.
    #[arg(long, value_name = "ID", conflicts_with_all = ["follow", "dump_follow", "stats",
          "drop_fd", "clear", "pause", "resume", "release"])]
    pub capture: Option<u64>,
    /// Release capture ID: its entries are no longer kept from eviction.
    /// Needs the rights --clear needs.
    #[arg(long, value_name = "ID", conflicts_with_all = ["follow", "dump_follow", "lines",
          "stats", "drop_fd", "clear", "pause", "resume"])]
    pub release: Option<u64>,
    /// Empty the ring (counters stay).
    #[arg(long, conflicts_with_all = ["follow", "dump_follow", "pause", "resume"])]
    pub clear: bool,
    /// Stop storing new entries (they are counted as dropped); the ring is kept.
    #[arg(long, conflicts_with_all = ["follow", "dump_follow", "resume"])]
    pub pause: bool,
    /// Store new entries again.
    #[arg(long, conflicts_with_all = ["follow", "dump_follow"])]
    pub resume: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
        .ok_or_else(|| format!("{s:?} is not a number of seconds"))
}

/// A read of the ring, as logread will ask for it.
#[derive(Clone, Debug)]
pub(super) struct ReadRequest {
    /// `dump`, `follow` or `dump+follow`.
    pub mode: &'static str,
    /// Only the newest N matching entries of the dump.
    pub tail: Option<u64>,
    pub after_seq: Option<u64>,
    /// Received at or after, ns since the epoch.
    pub since_ns: Option<i64>,
    /// Every other condition, as the JSON dialect names it.
    pub filters: Map<String, Value>,
    pub format: Format,
    /// Ask the daemon for the entries in `format`, framed (see
    /// [`crate::view::frames`]), to copy them out as they come.
    pub framed: bool,
}

impl ReadRequest {
    pub fn following(&self) -> bool {
        self.mode != "dump"
    }

    /// The bytes to send: memlogd's mode byte when nothing but the mode is
    /// asked (so memlogd answers too), followed by the options of a framed
    /// answer if asked; else one JSON line.
    pub fn bytes(&self) -> Vec<u8> {
        let mut q = self.filters.clone();
        if let Some(ns) = self.since_ns {
            q.insert("since".into(), json!(rfc3339_nanos(ns)));
        }
        if let Some(n) = self.tail {
            q.insert("n".into(), json!(n));
        }
        if let Some(s) = self.after_seq {
            q.insert("after_seq".into(), json!(s));
        }
        let mut options = Map::new();
        if self.framed {
            options.insert("format".into(), json!(self.format.name()));
            options.insert("frames".into(), json!(1));
            options.insert("tz".into(), json!(frames::zone()));
        }
        if q.is_empty() {
            // memlogd reads the mode byte alone; ringlogd reads the
            // options sent with it.
            let mut bytes = vec![match self.mode {
                "dump" => 0,
                "follow" => 1,
                _ => 2,
            }];
            if !options.is_empty() {
                bytes.extend_from_slice(format!("{}\n", Value::Object(options)).as_bytes());
            }
            return bytes;
        }
        q.extend(options);
        q.insert("mode".into(), json!(self.mode));
        format!("{}\n", Value::Object(q)).into_bytes()
    }
}

impl LogreadArgs {
    /// Parse `args` (Go-style `-socket PATH` included); on a usage error
    /// clap prints it and exits 2.
    pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> LogreadArgs {
        LogreadArgs::parse_from(go_style_args(args, &LogreadArgs::command()))
    }

    /// The read these flags ask for; `Err` says what is wrong, for a
    /// usage error clap cannot see.
    pub(super) fn read_request(&self, now_ns: i64) -> Result<ReadRequest, String> {
        if let Some(source) = &self.source {
            source_is_not_a_socket(source)?;
        }
        let format = if self.json {
            Format::Json
        } else {
            Format::parse(&self.output)?
        };
        // Times are resolved here, in this user's time zone and against
        // this clock; one that does not parse goes as written, for the
        // daemon (same parser) to refuse with its reason, as other filters.
        let since = resolve(self.since.as_deref(), now_ns);
        let until = resolve(self.until.as_deref(), now_ns);
        let mut filters = Map::new();
        let as_sent = |t: Result<i64, &str>| t.map_or_else(str::to_owned, rfc3339_nanos);
        if let Some(Err(unparsed)) = since {
            filters.insert("since".into(), json!(unparsed));
        }
        let mut text = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                filters.insert(k.to_owned(), json!(v));
            }
        };
        text("priority", self.priority.clone());
        text("facility", comma_list(&self.facility));
        text("not_facility", comma_list(&self.not_facility));
        text("app", self.tag.clone());
        text("source", self.source.clone());
        text("input", self.input.clone());
        text("grep", self.grep.clone());
        text("until", until.map(as_sent));
        if self.kernel {
            text("input", Some("kmsg".into()));
        }
        if let Some(id) = self.capture {
            filters.insert("capture".into(), json!(id));
        }
        let mode = match (self.follow, self.dump_follow, self.lines) {
            (_, true, _) | (true, _, Some(_)) => "dump+follow",
            (true, false, None) => "follow",
            _ => "dump",
        };
        Ok(ReadRequest {
            mode,
            tail: self.lines,
            after_seq: self.after_seq,
            since_ns: since.and_then(Result::ok),
            filters,
            format,
            framed: false,
        })
    }
}

/// A time as ns since the epoch, or the text that does not parse.
fn resolve(time: Option<&str>, now_ns: i64) -> Option<Result<i64, &str>> {
    time.map(|t| parse_time(t, now_ns).map_err(|_| t))
}

/// `-z`/`-Z` values (each a name, a code, or a comma list) as one list.
fn comma_list(values: &[String]) -> Option<String> {
    (!values.is_empty()).then(|| values.join(","))
}

/// OpenWrt's `logread -s PATH` names its ubus socket; here `-s` is a source
/// glob, and a path would silently match nothing. A value that names a
/// file that exists, written as a path, is taken for that mistake.
fn source_is_not_a_socket(value: &str) -> Result<(), String> {
    if !value.contains('/') {
        return Ok(());
    }
    let Ok(meta) = std::fs::metadata(Path::new(value)) else {
        return Ok(());
    };
    let what = if meta.file_type().is_socket() {
        "a socket"
    } else if meta.is_dir() {
        "a directory"
    } else {
        "a file"
    };
    Err(format!(
        "-s {value}: that is {what}, not a source: did you mean --socket {value}? \
         (-s is --source GLOB here; for a source named like a path, write its first / as [/])"
    ))
}
