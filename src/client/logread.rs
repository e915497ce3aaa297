//! `logread`: dump, follow and filter the ring.
//!
//! With only memlogd's flags (none, `-f`, `-F`) it sends memlogd's mode
//! byte, so it also reads LinuxKit's memlogd. Any filter, `-n` or
//! `--after-seq` switches to ringlogd's JSON request, filtered in the
//! daemon. Entries always arrive as JSON lines and are printed here in the
//! format asked for, with severity colours on a terminal; what a sender
//! wrote is escaped as [`crate::query::format`] describes, so it can neither
//! pass for another entry nor drive the terminal.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use clap::{CommandFactory, Parser, ValueEnum};
use serde_json::{json, Map, Value};

use crate::config::{go_style_args, DEFAULT_QUERY_SOCKET};
use crate::query::filter::DEFAULT_SEVERITY;
use crate::query::format::{self, Format};

/// Read the log ring of ringlogd (or LinuxKit's memlogd).
#[derive(Parser, Debug)]
#[command(name = "logread", version)]
pub struct LogreadArgs {
    /// The daemon's query socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_QUERY_SOCKET)]
    pub socket: PathBuf,
    /// Follow: print new entries as they arrive, not the ones held now.
    #[arg(short = 'f', conflicts_with = "dump_follow")]
    pub follow: bool,
    /// Dump the entries held now, then follow new ones.
    #[arg(short = 'F')]
    pub dump_follow: bool,
    /// Only the newest N matching entries of the dump.
    #[arg(
        short = 'n',
        long = "lines",
        value_name = "N",
        conflicts_with = "follow"
    )]
    pub lines: Option<u64>,
    /// Severity at or above a level (err), or a range (warning..err).
    #[arg(short = 'p', long = "priority", value_name = "LEVEL")]
    pub priority: Option<String>,
    /// Facility name or code; several separated by commas.
    #[arg(long, value_name = "FACILITY")]
    pub facility: Option<String>,
    /// Only entries whose app / tag is TAG.
    #[arg(short = 't', long = "tag", value_name = "TAG")]
    pub tag: Option<String>,
    /// Only entries whose source matches GLOB (e.g. 'onboot.*').
    #[arg(short = 's', long = "source", value_name = "GLOB")]
    pub source: Option<String>,
    /// Only entries from one input: syslog, fd, kmsg, net, internal.
    #[arg(short = 'i', long = "input", value_name = "INPUT")]
    pub input: Option<String>,
    /// Kernel messages only (the same as -i kmsg).
    #[arg(short = 'k', long = "kernel", conflicts_with = "input")]
    pub kernel: bool,
    /// Only entries whose message matches the regular expression.
    #[arg(short = 'g', long = "grep", value_name = "REGEX")]
    pub grep: Option<String>,
    /// Entries received at or after TIME (RFC 3339, "YYYY-MM-DD HH:MM:SS", or 10m, 1h, 2d ago).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Entries received at or before TIME.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Resume after this sequence number (the `seq` of the last entry seen).
    #[arg(long = "after-seq", value_name = "SEQ")]
    pub after_seq: Option<u64>,
    /// Output format: memlogd (TIME;SOURCE;MSG), short, short-iso, json, rfc5424, rfc3164, cat.
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

/// What logread will send, and how it will read the answer.
enum Plan {
    Read {
        request: Vec<u8>,
        format: Format,
        raw_json: bool,
    },
    Control(&'static str),
    Stats,
}

impl LogreadArgs {
    /// Parse `args` (Go-style `-socket PATH` included); on a usage error
    /// clap prints it and exits 2.
    pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> LogreadArgs {
        LogreadArgs::parse_from(go_style_args(args, &LogreadArgs::command()))
    }

    fn plan(&self) -> Plan {
        if self.stats {
            return Plan::Stats;
        }
        for (on, mode) in [
            (self.pause, "pause"),
            (self.resume, "resume"),
            (self.clear, "clear"),
        ] {
            if on {
                return Plan::Control(mode);
            }
        }
        let format = if self.json {
            Format::Json
        } else {
            Format::parse(&self.output).expect("clap checked the name")
        };
        let mode = if self.dump_follow {
            "dump+follow"
        } else if self.follow {
            "follow"
        } else {
            "dump"
        };
        let mut q = Map::new();
        let mut text = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                q.insert(k.to_owned(), json!(v));
            }
        };
        text("priority", &self.priority);
        text("facility", &self.facility);
        text("app", &self.tag);
        text("source", &self.source);
        text("input", &self.input);
        text("grep", &self.grep);
        text("since", &self.since);
        text("until", &self.until);
        if self.kernel {
            q.insert("input".into(), json!("kmsg"));
        }
        if let Some(n) = self.lines {
            q.insert("n".into(), json!(n));
        }
        if let Some(s) = self.after_seq {
            q.insert("after_seq".into(), json!(s));
        }
        let request = if q.is_empty() {
            // Only memlogd's own flags: speak memlogd, so this works there too.
            vec![match mode {
                "dump" => 0,
                "follow" => 1,
                _ => 2,
            }]
        } else {
            q.insert("mode".into(), json!(mode));
            format!("{}\n", Value::Object(q)).into_bytes()
        };
        Plan::Read {
            request,
            format,
            raw_json: format == Format::Json,
        }
    }

    fn colour(&self) -> bool {
        match self.color {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none()
                    && std::env::var("TERM").map_or(true, |t| t != "dumb")
            }
        }
    }
}

/// ANSI colour for a severity: the ones worth a glance stand out.
fn severity_colour(severity: u8) -> Option<&'static str> {
    match severity {
        0..=2 => Some("\x1b[1;31m"),
        3 => Some("\x1b[31m"),
        4 => Some("\x1b[33m"),
        5 => Some("\x1b[1m"),
        7 => Some("\x1b[2m"),
        _ => None,
    }
}

/// Run logread; returns the process exit code.
pub fn run(args: &LogreadArgs) -> i32 {
    let plan = args.plan();
    let request = match &plan {
        Plan::Read { request, .. } => request.clone(),
        Plan::Stats => b"{\"mode\":\"stats\"}\n".to_vec(),
        Plan::Control(mode) => format!("{{\"mode\":\"{mode}\"}}\n").into_bytes(),
    };
    let mut conn = match UnixStream::connect(&args.socket) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "logread: cannot connect to {}: {e} (is ringlogd running?)",
                args.socket.display()
            );
            return 1;
        }
    };
    if let Err(e) = conn.write_all(&request) {
        eprintln!("logread: {}: {e}", args.socket.display());
        return 1;
    }
    let (format, raw_json) = match plan {
        Plan::Read {
            format, raw_json, ..
        } => (format, raw_json),
        Plan::Stats => (Format::Json, true),
        Plan::Control(_) => {
            let mut reply = String::new();
            let _ = BufReader::new(conn).read_line(&mut reply);
            return match serde_json::from_str::<Value>(&reply) {
                Ok(v) if v["ok"] == true => 0,
                Ok(v) if v["error"].is_string() => {
                    eprintln!(
                        "logread: the daemon refused the request: {}",
                        v["error"].as_str().unwrap_or("")
                    );
                    1
                }
                _ => {
                    eprintln!(
                        "logread: no answer from {} (not ringlogd?)",
                        args.socket.display()
                    );
                    1
                }
            };
        }
    };
    let following = args.follow || args.dump_follow;
    let colour = !raw_json && args.colour();
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(READ_CHUNK, stdout.lock());
    let mut reader = BufReader::with_capacity(READ_CHUNK, conn);
    let mut line = String::new();
    let mut rendered = Vec::new();
    let mut first = true;
    loop {
        if raw_json && !first {
            // Past the first line (the only place an error reply can be),
            // JSON lines go through as they come, a buffer at a time.
            return match pass_through(&mut reader, &mut out, following) {
                Ok(()) => 0,
                Err(Passed::Read(e)) => {
                    eprintln!("logread: reading from {}: {e}", args.socket.display());
                    1
                }
                Err(Passed::Write(e)) => quiet_on_broken_pipe(e),
            };
        }
        first = false;
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("logread: reading from {}: {e}", args.socket.display());
                return 1;
            }
        }
        let text = line.trim_end_matches('\n');
        if let Some(err) = error_reply(text) {
            let _ = out.flush();
            eprintln!("logread: the daemon refused the request: {err}");
            return 1;
        }
        let printed = if raw_json {
            writeln!(out, "{text}")
        } else {
            match format::parse_json_line(text) {
                Some(r) => {
                    rendered.clear();
                    format::write_record(&r.as_ref(), format, &mut rendered);
                    let paint = colour
                        .then(|| severity_colour(r.severity.unwrap_or(DEFAULT_SEVERITY)))
                        .flatten();
                    match paint {
                        Some(c) => {
                            let body = rendered.strip_suffix(b"\n").unwrap_or(&rendered);
                            out.write_all(c.as_bytes())
                                .and_then(|_| out.write_all(body))
                                .and_then(|_| out.write_all(b"\x1b[0m\n"))
                        }
                        None => out.write_all(&rendered),
                    }
                }
                None => {
                    rendered.clear();
                    format::write_other_line(text, &mut rendered);
                    out.write_all(&rendered)
                }
            }
        };
        let flushed = if following && reader.buffer().is_empty() {
            out.flush()
        } else {
            Ok(())
        };
        if let Err(e) = printed.and(flushed) {
            return quiet_on_broken_pipe(e);
        }
    }
    match out.flush() {
        Ok(()) => 0,
        Err(e) => quiet_on_broken_pipe(e),
    }
}

/// How much is read from the daemon, and written out, at a time: a dump
/// of a large ring moves megabytes, and small reads mean a wake-up each.
const READ_CHUNK: usize = 256 << 10;

enum Passed {
    Read(io::Error),
    Write(io::Error),
}

/// Copy the rest of the answer to `out` unchanged, flushing whenever the
/// socket has nothing more for now when following.
fn pass_through(
    reader: &mut BufReader<UnixStream>,
    out: &mut impl Write,
    following: bool,
) -> Result<(), Passed> {
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Passed::Read(e)),
        };
        if buf.is_empty() {
            return out.flush().map_err(Passed::Write);
        }
        let n = buf.len();
        out.write_all(buf).map_err(Passed::Write)?;
        reader.consume(n);
        if following {
            out.flush().map_err(Passed::Write)?;
        }
    }
}

/// The daemon's `{"error": ...}` answer to a refused request.
fn error_reply(line: &str) -> Option<String> {
    if !line.starts_with("{\"error\"") {
        return None;
    }
    let v: Value = serde_json::from_str(line).ok()?;
    v["error"].as_str().map(str::to_owned)
}

/// `logread | head` must end quietly when head has read enough.
fn quiet_on_broken_pipe(e: io::Error) -> i32 {
    if e.kind() == io::ErrorKind::BrokenPipe {
        0
    } else {
        eprintln!("logread: writing output: {e}");
        1
    }
}
