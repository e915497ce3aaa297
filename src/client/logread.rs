//! `logread`: dump, follow and filter the ring.
//!
//! With only memlogd's flags (none, `-f`, `-F`) it sends memlogd's mode
//! byte, so it also reads LinuxKit's memlogd. Any filter, `-n` or
//! `--after-seq` switches to ringlogd's JSON request, filtered in the
//! daemon. A text format is asked of the daemon, which answers it in
//! frames ([`framed`]) that are copied out as they come; memlogd (which
//! reads only the mode byte) answers JSON lines, as the daemon does for
//! `--json` and for colours on a terminal, and those are printed here in
//! the format asked for. Either way what a sender wrote is escaped as
//! [`crate::view::format`] describes, so it can neither pass for another
//! entry nor drive the terminal. The flags are in [`args`]; a follower's
//! reconnecting in [`follow`].

mod args;
mod captures;
mod connect;
mod follow;
mod framed;

use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use serde_json::Value;

use args::ReadRequest;
pub use args::{ColorWhen, LogreadArgs};
use follow::Progress;

use crate::record::now_ns;
use crate::view::filter::DEFAULT_SEVERITY;
use crate::view::format::{self, Format};
use crate::view::frames;

impl LogreadArgs {
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

    /// The state-changing request asked for, if any, as its JSON request.
    fn control(&self) -> Option<Value> {
        if let Some(name) = &self.drop_fd {
            return Some(serde_json::json!({ "mode": "drop-fd", "name": name }));
        }
        if let Some(id) = self.release {
            return Some(serde_json::json!({ "mode": "release", "capture": id }));
        }
        [
            (self.pause, "pause"),
            (self.resume, "resume"),
            (self.clear, "clear"),
        ]
        .into_iter()
        .find_map(|(on, mode)| on.then(|| serde_json::json!({ "mode": mode })))
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
    if args.stats {
        return one_reply(args, b"{\"mode\":\"stats\"}\n", |reply| {
            print!("{reply}");
            0
        });
    }
    if args.captures {
        return list_captures(args);
    }
    if let Some(request) = args.control() {
        let request = format!("{request}\n");
        return one_reply(
            args,
            request.as_bytes(),
            |reply| match serde_json::from_str::<Value>(reply) {
                Ok(v) if v["ok"] == true => {
                    if let (Some(n), Some(name)) = (v["closed"].as_u64(), &args.drop_fd) {
                        let fds = if n == 1 { "fd" } else { "fds" };
                        println!("closed {n} intake {fds} named {name:?}");
                    }
                    if let Some(id) = v["released"].as_u64() {
                        println!("released capture {id}");
                    }
                    0
                }
                _ => {
                    eprintln!(
                        "logread: no answer from {} (not ringlogd?)",
                        args.socket.display()
                    );
                    1
                }
            },
        );
    }
    let started_ns = now_ns();
    let mut read = match args.read_request(started_ns) {
        Ok(r) => r,
        Err(why) => {
            eprintln!("logread: {why}");
            return 2;
        }
    };
    // Colours need each entry's severity: those are printed from JSON.
    read.framed = read.format != Format::Json && !args.colour();
    read_entries(args, &read, started_ns)
}

/// Print the captures held: a table, or the daemon's JSON with -o json.
fn list_captures(args: &LogreadArgs) -> i32 {
    let json = args.json || args.output == "json";
    one_reply(args, b"{\"mode\":\"captures\"}\n", |reply| {
        if json {
            print!("{reply}");
            return 0;
        }
        match serde_json::from_str(reply)
            .ok()
            .as_ref()
            .and_then(captures::table)
        {
            Some(table) => {
                print!("{table}");
                0
            }
            None => {
                eprintln!(
                    "logread: no list of captures from {} (not ringlogd, or an older one?)",
                    args.socket.display()
                );
                1
            }
        }
    })
}

/// Send a request answered with one line (stats, pause, ...) and hand the
/// reply to `answered`; an error reply is reported here.
fn one_reply(args: &LogreadArgs, request: &[u8], answered: impl Fn(&str) -> i32) -> i32 {
    let conn = match connect::open(&args.socket, request) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("logread: {}", e.message());
            return 1;
        }
    };
    let mut reply = String::new();
    let _ = BufReader::new(conn).read_line(&mut reply);
    if let Some(err) = error_reply(reply.trim_end()) {
        eprintln!("logread: the daemon refused the request: {err}");
        return 1;
    }
    answered(&reply)
}

/// Print the entries `read` asks for; a follower goes on across the
/// daemon's re-exec and restart.
fn read_entries(args: &LogreadArgs, read: &ReadRequest, started_ns: i64) -> i32 {
    let mut read = std::borrow::Cow::Borrowed(read);
    let mut conn = match connect::open(&args.socket, &read.bytes()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("logread: {}", e.message());
            return 1;
        }
    };
    let following = read.following();
    let mut printer = Printer {
        format: read.format,
        colour: read.format != Format::Json && args.colour(),
        following,
        out: io::BufWriter::with_capacity(READ_CHUNK, io::stdout().lock()),
        rendered: Vec::new(),
        progress: Progress::new(read.after_seq, started_ns),
    };
    loop {
        match printer.print_answer(conn) {
            Ended::Exit(code) => return code,
            Ended::Unframed if read.framed => {
                read.to_mut().framed = false;
                conn = match connect::open(&args.socket, &read.bytes()) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("logread: {}", e.message());
                        return 1;
                    }
                };
            }
            Ended::Unframed => {
                eprintln!("logread: the daemon refused the request: unknown key \"frames\"");
                return 1;
            }
            Ended::Closed(_) if printer.progress.unsequenced => return printer.finish(),
            Ended::Closed(why) => {
                if let Some(why) = why {
                    eprintln!("logread: {}: {why}", args.socket.display());
                }
                let lost = Instant::now();
                match follow::reconnect(
                    &args.socket,
                    &read,
                    &printer.progress,
                    lost,
                    args.reconnect_timeout,
                ) {
                    Ok(c) => conn = c,
                    Err(why) => {
                        let _ = printer.out.flush();
                        eprintln!("logread: {why}");
                        return 1;
                    }
                }
            }
        }
    }
}

/// How much is read from the daemon, and written out, at a time: a dump
/// of a large ring moves megabytes, and small reads mean a wake-up each.
const READ_CHUNK: usize = 256 << 10;

/// How an answer ended.
enum Ended {
    /// Done: exit with this code.
    Exit(i32),
    /// A follow's connection ended (with the read error, if one ended it):
    /// the daemon went away.
    Closed(Option<String>),
    /// The daemon does not know framed answers (a ringlogd from before
    /// them): ask again for JSON lines, formatted here.
    Unframed,
}

/// Writes the daemon's JSON lines out in the format asked for.
struct Printer<W: Write> {
    format: Format,
    colour: bool,
    following: bool,
    out: W,
    rendered: Vec<u8>,
    progress: Progress,
}

impl<W: Write> Printer<W> {
    /// Print one connection's answer.
    fn print_answer(&mut self, conn: UnixStream) -> Ended {
        let mut reader = BufReader::with_capacity(READ_CHUNK, conn);
        let mut line = String::new();
        let mut first = true;
        loop {
            if self.format == Format::Json && !self.following && !first {
                // Past the first line (the only place an error reply can
                // be), a dump's JSON lines go through a buffer at a time.
                return match pass_through(&mut reader, &mut self.out) {
                    Ok(()) => Ended::Exit(0),
                    Err(Passed::Read(e)) => {
                        eprintln!("logread: reading the answer: {e}");
                        Ended::Exit(1)
                    }
                    Err(Passed::Write(e)) => Ended::Exit(quiet_on_broken_pipe(e)),
                };
            }
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) if self.following => return Ended::Closed(None),
                Ok(0) => return Ended::Exit(self.finish()),
                Ok(_) => {}
                Err(e) if self.following => return Ended::Closed(Some(e.to_string())),
                // memlogd closes a dump with the options sent after the
                // mode byte unread, which the kernel reports as a reset
                // after everything it wrote: that is the dump's end.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Ended::Exit(self.finish())
                }
                Err(e) => {
                    eprintln!("logread: reading the answer: {e}");
                    return Ended::Exit(1);
                }
            }
            let Some(text) = line.strip_suffix('\n') else {
                if self.following {
                    // Cut off mid-entry: the entry comes whole on resuming.
                    return Ended::Closed(None);
                }
                return Ended::Exit(
                    self.print_line(&line)
                        .map_or_else(quiet_on_broken_pipe, |()| self.finish()),
                );
            };
            if first {
                first = false;
                if let Some(err) = error_reply(text) {
                    if err.contains("unknown key \"frames\"") {
                        return Ended::Unframed;
                    }
                    if self.following && err.ends_with("try again") {
                        // Out of fds for now: a follower waits it out.
                        return Ended::Closed(Some(err));
                    }
                    let _ = self.out.flush();
                    eprintln!("logread: the daemon refused the request: {err}");
                    return Ended::Exit(1);
                }
                if let Some(sent) = frames::opened(text) {
                    return self.print_frames(&mut reader, sent);
                }
            }
            let printed = self.print_line(text);
            if let Err(ended) = self.passed(printed, reader.buffer().is_empty()) {
                return ended;
            }
        }
    }

    /// After printing what came: a follower flushes once nothing more is
    /// buffered (`drained`), so each entry shows as it arrives. A write
    /// error ends the read.
    fn passed(&mut self, printed: io::Result<()>, drained: bool) -> Result<(), Ended> {
        let flushed = if self.following && drained {
            self.out.flush()
        } else {
            Ok(())
        };
        printed
            .and(flushed)
            .map_err(|e| Ended::Exit(quiet_on_broken_pipe(e)))
    }

    fn print_line(&mut self, text: &str) -> io::Result<()> {
        if self.following {
            self.progress.printed(text);
        }
        self.render_line(text)
    }

    /// Print one JSON line in the format asked for.
    fn render_line(&mut self, text: &str) -> io::Result<()> {
        if self.format == Format::Json {
            return writeln!(self.out, "{text}");
        }
        self.rendered.clear();
        let Some(r) = format::parse_json_line(text) else {
            format::write_other_line(text, &mut self.rendered);
            return self.out.write_all(&self.rendered);
        };
        format::write_record(&r.as_ref(), self.format, &mut self.rendered);
        let paint = self
            .colour
            .then(|| severity_colour(r.severity.unwrap_or(DEFAULT_SEVERITY)))
            .flatten();
        match paint {
            Some(c) => {
                let body = self.rendered.strip_suffix(b"\n").unwrap_or(&self.rendered);
                self.out.write_all(c.as_bytes())?;
                self.out.write_all(body)?;
                self.out.write_all(b"\x1b[0m\n")
            }
            None => self.out.write_all(&self.rendered),
        }
    }

    fn finish(&mut self) -> i32 {
        match self.out.flush() {
            Ok(()) => 0,
            Err(e) => quiet_on_broken_pipe(e),
        }
    }
}

enum Passed {
    Read(io::Error),
    Write(io::Error),
}

/// Copy the rest of a dump's answer to `out` unchanged.
fn pass_through(reader: &mut BufReader<UnixStream>, out: &mut impl Write) -> Result<(), Passed> {
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
