//! `logread`: dump or follow the ring, memlogd-compatible.
//!
//! With no flag it dumps (mode byte 0), `-f` follows new entries only (1),
//! `-F` dumps then follows (2), and prints `TIME;SOURCE;MSG` as LinuxKit's
//! `logread` does; so it works against memlogd too. `--json` prints the
//! daemon's JSON lines as they come; `-n` and `--stats` use ringlogd's JSON
//! request and need ringlogd.

use std::borrow::Cow;
use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use serde::Deserialize;

use crate::config::{go_style_args, DEFAULT_QUERY_SOCKET};
use crate::query::format::text_line;

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
    /// Only the last N entries of the dump.
    #[arg(
        short = 'n',
        long = "lines",
        value_name = "N",
        conflicts_with = "follow"
    )]
    pub lines: Option<u64>,
    /// Print each entry as the daemon's JSON line, with every field.
    #[arg(long, conflicts_with = "stats")]
    pub json: bool,
    /// Print the daemon's counters (what arrived, what was stored, what was
    /// lost) as JSON, and exit.
    #[arg(long, conflicts_with_all = ["follow", "dump_follow", "lines"])]
    pub stats: bool,
}

impl LogreadArgs {
    /// Parse `args` (Go-style `-socket PATH` included); on a usage error
    /// clap prints it and exits 2.
    pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> LogreadArgs {
        LogreadArgs::parse_from(go_style_args(args, &LogreadArgs::command()))
    }

    /// The request bytes to send.
    fn request(&self) -> Vec<u8> {
        if self.stats {
            return b"{\"mode\":\"stats\"}\n".to_vec();
        }
        let mode = if self.dump_follow {
            "dump+follow"
        } else if self.follow {
            "follow"
        } else {
            "dump"
        };
        match self.lines {
            Some(n) => format!("{{\"mode\":\"{mode}\",\"n\":{n}}}\n").into_bytes(),
            None => vec![match mode {
                "dump" => 0,
                "follow" => 1,
                _ => 2,
            }],
        }
    }
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    msg: Option<Cow<'a, str>>,
    error: Option<String>,
}

/// Run logread; returns the process exit code.
pub fn run(args: &LogreadArgs) -> i32 {
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
    if let Err(e) = conn.write_all(&args.request()) {
        eprintln!("logread: {}: {e}", args.socket.display());
        return 1;
    }
    let following = args.follow || args.dump_follow;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    loop {
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
        let printed = if args.json || args.stats {
            writeln!(out, "{text}")
        } else {
            match serde_json::from_str::<Entry>(text) {
                Ok(Entry { error: Some(e), .. }) => {
                    let _ = out.flush();
                    eprintln!("logread: the daemon refused the request: {e}");
                    return 1;
                }
                Ok(e) => writeln!(
                    out,
                    "{}",
                    text_line(
                        e.time.as_deref().unwrap_or(""),
                        e.source.as_deref().unwrap_or(""),
                        e.msg.as_deref().unwrap_or("")
                    )
                ),
                Err(_) => writeln!(out, "{text}"),
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

/// `logread | head` must end quietly when head has read enough.
fn quiet_on_broken_pipe(e: io::Error) -> i32 {
    if e.kind() == io::ErrorKind::BrokenPipe {
        0
    } else {
        eprintln!("logread: writing output: {e}");
        1
    }
}
