//! Which entries a query wants. Every condition is optional; an entry must
//! meet all that are given. Runs in the daemon, so only matching entries
//! cross the socket.

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone};
use regex::{Regex, RegexBuilder};

use crate::record::{Input, RecordRef, Severity, FACILITY_NAMES, SEVERITY_NAMES};

/// The most heap a compiled pattern may take. Matching costs up to its
/// size times the entry's length when the lazy DFA gives up, and a match
/// cannot be interrupted, so this bounds the cost of one entry: at 64 KiB
/// the costliest patterns that compile take well under a millisecond per
/// 8 KiB entry, while `(.*a){20}b`, `\w+` or `[a-z]{300}` still compile.
const PATTERN_SIZE_LIMIT: usize = 64 << 10;
/// The lazy DFA's cache per pattern (the regex crate's default, stated).
const PATTERN_DFA_LIMIT: usize = 2 << 20;

/// Severity assumed for entries that carry none (an fd line without a
/// level prefix), as journald assumes for stdout: info.
pub const DEFAULT_SEVERITY: u8 = Severity::Info.code();

/// The conditions of a query, already parsed.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Severities from `.0` (most severe) to `.1` inclusive.
    pub severity: Option<(u8, u8)>,
    /// Any of these facility codes.
    pub facility: Option<Vec<u8>>,
    /// The source matches this glob.
    pub source: Option<Regex>,
    /// The app / tag is exactly this.
    pub app: Option<String>,
    pub input: Option<Input>,
    /// The message matches this regular expression.
    pub grep: Option<Regex>,
    /// Received at or after, ns since the epoch.
    pub since_ns: Option<i64>,
    /// Received at or before, ns since the epoch.
    pub until_ns: Option<i64>,
    /// Only entries whose sender the kernel identified as this uid: set by
    /// the server for a reader that may see only its own (never by a key
    /// of the request).
    pub peer_uid: Option<u32>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.severity.is_none()
            && self.facility.is_none()
            && self.source.is_none()
            && self.app.is_none()
            && self.input.is_none()
            && self.grep.is_none()
            && self.since_ns.is_none()
            && self.until_ns.is_none()
            && self.peer_uid.is_none()
    }

    pub fn matches(&self, r: &RecordRef) -> bool {
        if let Some(uid) = self.peer_uid {
            if r.peer.is_none_or(|p| p.uid != uid) {
                return false;
            }
        }
        if let Some((lo, hi)) = self.severity {
            let s = r.severity.unwrap_or(DEFAULT_SEVERITY);
            if s < lo || s > hi {
                return false;
            }
        }
        if let Some(f) = &self.facility {
            if !r.facility.is_some_and(|c| f.contains(&c)) {
                return false;
            }
        }
        if let Some(i) = self.input {
            if r.input != i {
                return false;
            }
        }
        if let Some(a) = &self.app {
            if r.app != Some(a.as_str()) {
                return false;
            }
        }
        if self.since_ns.is_some_and(|t| r.received_ns < t)
            || self.until_ns.is_some_and(|t| r.received_ns > t)
        {
            return false;
        }
        if let Some(g) = &self.source {
            if !g.is_match(r.source) {
                return false;
            }
        }
        if let Some(g) = &self.grep {
            if !g.is_match(r.msg) {
                return false;
            }
        }
        true
    }

    /// Set one condition from its text form, as a query key names it.
    /// `now_ns` anchors relative times. Errors say what is wrong.
    pub fn set(&mut self, key: &str, value: &str, now_ns: i64) -> Result<(), String> {
        match key {
            "priority" => self.severity = Some(parse_priority(value)?),
            "facility" => self.facility = Some(parse_facilities(value)?),
            "source" => self.source = Some(glob(value)?),
            "app" => self.app = Some(value.to_owned()),
            "input" => self.input = Some(parse_input(value)?),
            "grep" => self.grep = Some(bounded_regex(value, "grep")?),
            "since" => self.since_ns = Some(parse_time(value, now_ns)?),
            "until" => self.until_ns = Some(parse_time(value, now_ns)?),
            _ => return Err(format!("unknown filter {key:?}")),
        }
        Ok(())
    }
}

fn severity_code(s: &str) -> Result<u8, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u8>() {
        if n <= 7 {
            return Ok(n);
        }
    }
    let lower = s.to_ascii_lowercase();
    let alias = match lower.as_str() {
        "panic" => "emerg",
        "error" => "err",
        "warn" => "warning",
        other => other,
    };
    SEVERITY_NAMES
        .iter()
        .position(|n| *n == alias)
        .map(|p| p as u8)
        .ok_or_else(|| format!("priority: {s:?} is not a level (emerg, alert, crit, err, warning, notice, info, debug or 0-7)"))
}

/// `err` means err and everything more severe; `warning..err` (either order)
/// means that range.
pub fn parse_priority(s: &str) -> Result<(u8, u8), String> {
    match s.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (severity_code(a)?, severity_code(b)?);
            Ok((a.min(b), a.max(b)))
        }
        None => Ok((0, severity_code(s)?)),
    }
}

/// One facility name or code, or several separated by commas.
pub fn parse_facilities(s: &str) -> Result<Vec<u8>, String> {
    s.split(',')
        .map(|f| {
            let f = f.trim();
            if let Ok(n) = f.parse::<u8>() {
                if (n as usize) < FACILITY_NAMES.len() {
                    return Ok(n);
                }
            }
            FACILITY_NAMES
                .iter()
                .position(|n| n.eq_ignore_ascii_case(f))
                .map(|p| p as u8)
                .ok_or_else(|| {
                    format!("facility: {f:?} is not a facility (kern, user, daemon, local0, ...)")
                })
        })
        .collect()
}

pub fn parse_input(s: &str) -> Result<Input, String> {
    Input::ALL
        .into_iter()
        .find(|i| i.as_str() == s)
        .ok_or_else(|| format!("input: {s:?} is not one of syslog, fd, kmsg, net, internal"))
}

/// A shell glob (`*`, `?`, `[...]`) matched against the whole text.
pub fn glob(pattern: &str) -> Result<Regex, String> {
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => {
                let mut class = String::from("[");
                if chars.peek() == Some(&'!') {
                    chars.next();
                    class.push('^');
                }
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == ']' {
                        closed = true;
                        break;
                    }
                    if c == '\\' || c == '[' || c == '^' {
                        class.push('\\');
                    }
                    class.push(c);
                }
                if !closed {
                    return Err(format!("source: unclosed [ in {pattern:?}"));
                }
                class.push(']');
                re.push_str(&class);
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    bounded_regex(&re, "source")
}

/// Compile `pattern` within the size limits, so that no query's matching
/// can cost more per entry than the limits allow; `key` names the query key
/// in the error.
fn bounded_regex(pattern: &str, key: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .dfa_size_limit(PATTERN_DFA_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => format!(
                "{key}: the pattern is too costly to match (it compiles to more than {} KiB): \
                 use fewer or smaller repetitions, or ASCII classes such as (?-u:\\w) or [a-z]",
                PATTERN_SIZE_LIMIT >> 10
            ),
            e => format!("{key}: {e}"),
        })
}

/// A point in time: RFC 3339, `YYYY-MM-DD[ HH:MM[:SS]]` in local time, a
/// relative `10m`, `2h`, `1d`, `30s` (ago), or `now`.
pub fn parse_time(s: &str, now_ns: i64) -> Result<i64, String> {
    let t = s.trim();
    if t == "now" {
        return Ok(now_ns);
    }
    if let Some(ago) = parse_relative(t) {
        return Ok(now_ns.saturating_sub(ago));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return dt
            .timestamp_nanos_opt()
            .ok_or_else(|| format!("{t:?} is out of range"));
    }
    let local = |n: NaiveDateTime| {
        Local
            .from_local_datetime(&n)
            .earliest()
            .and_then(|d| d.timestamp_nanos_opt())
            .ok_or_else(|| format!("{t:?} does not exist in local time"))
    };
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return local(n);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return local(d.and_hms_opt(0, 0, 0).expect("midnight exists"));
    }
    Err(format!(
        "{t:?} is not a time (use RFC 3339, \"YYYY-MM-DD HH:MM:SS\", or 10m, 2h, 1d ago)"
    ))
}

fn parse_relative(t: &str) -> Option<i64> {
    let t = t.strip_suffix(" ago").unwrap_or(t).trim_start_matches('-');
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let n: i64 = t[..digits].parse().ok()?;
    let unit: i64 = match &t[digits..] {
        "s" | "sec" | "secs" => 1,
        "m" | "min" | "mins" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86400,
        _ => return None,
    };
    n.checked_mul(unit)?.checked_mul(1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;

    fn rec(sev: Option<u8>, source: &str, msg: &str) -> Record {
        let mut r = Record::new(Input::Syslog, 1_000_000_000_000, source, msg);
        r.severity = sev;
        r.facility = Some(3);
        r.app = Some(source.to_owned());
        r
    }

    #[test]
    fn priority_is_at_or_above_or_a_range() {
        assert_eq!(parse_priority("err"), Ok((0, 3)));
        assert_eq!(parse_priority("3"), Ok((0, 3)));
        assert_eq!(parse_priority("warning..err"), Ok((3, 4)));
        assert_eq!(parse_priority("err..warning"), Ok((3, 4)));
        assert!(parse_priority("loud").is_err());
        assert!(parse_priority("9").is_err());
        let mut f = Filter::default();
        f.set("priority", "err", 0).unwrap();
        assert!(f.matches(&rec(Some(2), "a", "").as_ref()));
        assert!(f.matches(&rec(Some(3), "a", "").as_ref()));
        assert!(!f.matches(&rec(Some(4), "a", "").as_ref()));
        assert!(
            !f.matches(&rec(None, "a", "").as_ref()),
            "no severity reads as info"
        );
    }

    #[test]
    fn source_glob_app_grep_input_facility() {
        let mut f = Filter::default();
        f.set("source", "onboot.*", 0).unwrap();
        assert!(f.matches(&rec(None, "onboot.dhcpcd.out", "").as_ref()));
        assert!(!f.matches(&rec(None, "service.sshd", "").as_ref()));
        let g = glob("a?[bc][!x]*").unwrap();
        assert!(g.is_match("azbyzzz"));
        assert!(!g.is_match("azbx"));
        assert!(glob("a[b").is_err());
        assert!(glob("a.b").unwrap().is_match("a.b"));
        assert!(!glob("a.b").unwrap().is_match("axb"));

        let mut f = Filter::default();
        f.set("grep", "fail(ed|ure)", 0).unwrap();
        f.set("app", "sshd", 0).unwrap();
        assert!(f.matches(&rec(None, "sshd", "auth failure").as_ref()));
        assert!(!f.matches(&rec(None, "sshd", "ok").as_ref()));
        assert!(!f.matches(&rec(None, "cron", "failed").as_ref()));

        let mut f = Filter::default();
        f.set("facility", "daemon,local0", 0).unwrap();
        f.set("input", "syslog", 0).unwrap();
        assert!(f.matches(&rec(None, "x", "").as_ref()));
        f.set("input", "fd", 0).unwrap();
        assert!(!f.matches(&rec(None, "x", "").as_ref()));
        assert!(f.set("input", "disk", 0).is_err());
        assert!(f.set("facility", "nope", 0).is_err());
        assert!(f.set("grep", "(", 0).is_err());
        let costly = f.set("grep", "a{1,1000}b", 0).unwrap_err();
        assert!(
            costly.starts_with("grep: the pattern is too costly"),
            "{costly}"
        );
        assert!(f.set("grep", "(.*a){20}b", 0).is_ok());
        assert!(f.set("colour", "red", 0).is_err());
    }

    #[test]
    fn times() {
        let now = 10_000_000_000_000;
        assert_eq!(parse_time("10m", now), Ok(now - 600_000_000_000));
        assert_eq!(parse_time("1h", now), Ok(now - 3_600_000_000_000));
        assert_eq!(parse_time("now", now), Ok(now));
        let expect = chrono::Utc
            .with_ymd_and_hms(2026, 11, 21, 23, 40, 10)
            .unwrap();
        assert_eq!(
            parse_time("2026-11-21T23:40:10Z", now),
            Ok(expect.timestamp_nanos_opt().unwrap())
        );
        assert_eq!(
            parse_time("2026-11-22T00:40:10+01:00", now),
            Ok(expect.timestamp_nanos_opt().unwrap())
        );
        assert!(parse_time("2026-11-21", now).is_ok());
        assert!(parse_time("2026-11-21 23:40", now).is_ok());
        assert!(parse_time("yesterday-ish", now).is_err());
        let mut f = Filter::default();
        f.set("since", "1970-01-01T00:16:40Z", now).unwrap();
        f.set("until", "1970-01-01T00:16:41Z", now).unwrap();
        assert!(f.matches(&rec(None, "a", "").as_ref()));
        f.set("since", "1970-01-01T00:16:40.000000001Z", now)
            .unwrap();
        assert!(!f.matches(&rec(None, "a", "").as_ref()));
    }
}
