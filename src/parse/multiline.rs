//! Multi-line joining for lines read from fds (`--multiline PATTERN`):
//! the continuation lines of a stack trace become one entry with embedded
//! newlines, as logspout's multiline adapter joins them.
//!
//! The pattern is matched against each line; the mode says what a match
//! means:
//! - `first`: a matching line starts a new entry, others continue it;
//! - `nonfirst` (the default; with `^\s`, indented lines continue): a line
//!   that does not match starts a new entry;
//! - `last`: a matching line ends the entry it continues;
//! - `nonlast`: a line that does not match ends it.
//!
//! An entry waits at most the flush timeout after its first line for the
//! lines that would complete it, and is stored when the fd ends. It never
//! grows past `--max-line-len`: what would go beyond is cut and the entry
//! flagged truncated. The joiner knows nothing of fds or clocks beyond the
//! times it is handed.

use std::time::{Duration, Instant};

use regex::Regex;

use crate::record::truncate_utf8;

/// Default flush timeout, as logspout's.
pub const DEFAULT_FLUSH: Duration = Duration::from_millis(500);
/// Default meaning of a match: a line that matches continues the entry.
pub const DEFAULT_MODE: Mode = Mode::NonFirst;

/// What a match of the pattern means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    First,
    Last,
    NonFirst,
    NonLast,
}

impl Mode {
    /// The name `parse` reads.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::First => "first",
            Mode::Last => "last",
            Mode::NonFirst => "nonfirst",
            Mode::NonLast => "nonlast",
        }
    }

    pub fn parse(s: &str) -> Result<Mode, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "first" => Mode::First,
            "last" => Mode::Last,
            "nonfirst" => Mode::NonFirst,
            "nonlast" => Mode::NonLast,
            _ => return Err(format!("{s:?}: use first, last, nonfirst or nonlast")),
        })
    }
}

/// `--multiline` and its companions, as given (comparable, unlike a
/// compiled pattern).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultilineSpec {
    pub pattern: String,
    pub mode: Mode,
    pub flush: Duration,
}

/// An entry being put together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub text: String,
    /// The first line's severity (from a level prefix).
    pub severity: Option<u8>,
    pub truncated: bool,
    /// When the first line was read, ns since the epoch: the entry's time.
    pub first_ns: i64,
    /// When the first line was read, for the flush timeout.
    pub since: Instant,
}

/// One line as the fd intake hands it over.
#[derive(Clone, Copy, Debug)]
pub struct LineIn<'a> {
    pub text: &'a str,
    pub severity: Option<u8>,
    pub truncated: bool,
    pub now_ns: i64,
    pub now: Instant,
}

/// The compiled rule, shared by every fd.
#[derive(Clone, Debug)]
pub struct Joiner {
    re: Regex,
    mode: Mode,
    pub flush: Duration,
    max_len: usize,
}

impl Joiner {
    pub fn new(spec: &MultilineSpec, max_len: usize) -> Result<Joiner, String> {
        Ok(Joiner {
            re: Regex::new(&spec.pattern).map_err(|e| format!("--multiline: {e}"))?,
            mode: spec.mode,
            flush: spec.flush,
            max_len,
        })
    }

    /// Take one line of a stream whose entry in progress is `pending`;
    /// `emit` gets every entry the line completes.
    pub fn line(&self, pending: &mut Option<Pending>, line: LineIn, mut emit: impl FnMut(Pending)) {
        let matched = self.re.is_match(line.text);
        match self.mode {
            Mode::First | Mode::NonFirst => {
                let starts = matched == (self.mode == Mode::First);
                if starts {
                    if let Some(p) = pending.take() {
                        emit(p);
                    }
                }
                self.append(pending, line);
            }
            Mode::Last | Mode::NonLast => {
                let ends = matched == (self.mode == Mode::Last);
                self.append(pending, line);
                if ends {
                    if let Some(p) = pending.take() {
                        emit(p);
                    }
                }
            }
        }
    }

    /// The entry in progress, if its flush timeout has passed by `now`.
    pub fn due(&self, pending: &mut Option<Pending>, now: Instant) -> Option<Pending> {
        if pending
            .as_ref()
            .is_some_and(|p| now >= p.since + self.flush)
        {
            pending.take()
        } else {
            None
        }
    }

    fn append(&self, pending: &mut Option<Pending>, line: LineIn) {
        match pending {
            None => {
                *pending = Some(Pending {
                    text: line.text.to_owned(),
                    severity: line.severity,
                    truncated: line.truncated,
                    first_ns: line.now_ns,
                    since: line.now,
                })
            }
            Some(p) => {
                if p.text.len() >= self.max_len {
                    // Already full: the rest of the entry is cut.
                    p.truncated = true;
                    return;
                }
                p.text.push('\n');
                p.text.push_str(line.text);
                p.truncated |= line.truncated;
                if truncate_utf8(&mut p.text, self.max_len) {
                    p.truncated = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(mode: &str, pattern: &str, lines: &[&str]) -> Vec<String> {
        let j = Joiner::new(
            &MultilineSpec {
                pattern: pattern.into(),
                mode: Mode::parse(mode).unwrap(),
                flush: DEFAULT_FLUSH,
            },
            1000,
        )
        .unwrap();
        let mut pending = None;
        let mut out = Vec::new();
        let now = Instant::now();
        for l in lines {
            let line = LineIn {
                text: l,
                severity: None,
                truncated: false,
                now_ns: 0,
                now,
            };
            j.line(&mut pending, line, |p| out.push(p.text));
        }
        if let Some(p) = pending {
            out.push(p.text);
        }
        out
    }

    #[test]
    fn every_mode_joins_as_logspout_does() {
        let trace = ["Exception in main", "  at a()", "  at b()", "next message"];
        let want = vec!["Exception in main\n  at a()\n  at b()", "next message"];
        assert_eq!(join("nonfirst", r"^\s", &trace), want);
        assert_eq!(join("first", r"^\S", &trace), want);
        let cont = ["part one \\", "part two \\", "end", "single"];
        let want = vec!["part one \\\npart two \\\nend", "single"];
        assert_eq!(join("nonlast", r"\\$", &cont), want);
        assert_eq!(join("last", r"[^\\]$", &cont), want);
        // A continuation with nothing before it starts an entry.
        assert_eq!(
            join("nonfirst", r"^\s", &["  orphan", "x"]),
            vec!["  orphan", "x"]
        );
    }

    #[test]
    fn the_flush_timeout_and_the_size_limit() {
        let spec = MultilineSpec {
            pattern: r"^\s".into(),
            mode: Mode::NonFirst,
            flush: Duration::from_millis(500),
        };
        let j = Joiner::new(&spec, 10).unwrap();
        let t0 = Instant::now();
        let mut pending = None;
        let line = |text, now| LineIn {
            text,
            severity: Some(3),
            truncated: false,
            now_ns: 7,
            now,
        };
        j.line(&mut pending, line("head", t0), |_| {
            panic!("nothing complete yet")
        });
        j.line(&mut pending, line(" 12345678", t0), |_| unreachable!());
        assert!(j
            .due(&mut pending, t0 + Duration::from_millis(499))
            .is_none());
        let p = j
            .due(&mut pending, t0 + Duration::from_millis(500))
            .unwrap();
        assert_eq!(p.text, "head\n 1234", "cut at ten bytes");
        assert!(p.truncated);
        assert_eq!((p.severity, p.first_ns), (Some(3), 7));
        assert!(pending.is_none());
        assert!(Joiner::new(
            &MultilineSpec {
                pattern: "(".into(),
                ..spec
            },
            10
        )
        .is_err());
        assert!(Mode::parse("middle").is_err());
    }
}
