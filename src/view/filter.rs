//! Which entries a query wants. Every condition is optional; an entry must
//! meet all that are given. Runs in the daemon, so only matching entries
//! cross the socket.

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
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
    /// None of these facility codes, one bit each; 0 excludes none. An
    /// entry without a facility passes. (A mask, not a list, keeps a query
    /// as small as it was.)
    pub not_facility: u32,
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
            && self.not_facility == 0
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
        let excluded = |c: u8| 1u32.checked_shl(c.into()).unwrap_or(0) & self.not_facility != 0;
        if r.facility.is_some_and(excluded) {
            return false;
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
            "not_facility" => {
                let codes = parse_facilities(value)?;
                self.not_facility = codes.iter().fold(0, |mask, c| mask | 1 << c);
            }
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

/// A point in time as journalctl's `--since` takes it (systemd.time(7)),
/// and as the filter has always taken it: RFC 3339; `YYYY-MM-DD [HH:MM[:SS]]`
/// or `HH:MM[:SS]` (today) in local time, or with ` UTC` after it; `now`,
/// `today`, `yesterday`, `tomorrow` (local midnight); `@SECONDS` since the
/// epoch; a span back from now (`-1h`, `2 hours ago`, `1h 30min ago`, and
/// the bare `10m`, `2h`, `1d` this filter took first) or ahead (`+5min`,
/// `5min left`). `now_ns` anchors the relative ones.
pub fn parse_time(s: &str, now_ns: i64) -> Result<i64, String> {
    let t = s.trim();
    let bad = || {
        format!(
            "{t:?} is not a time: use YYYY-MM-DD [HH:MM[:SS]], HH:MM, RFC 3339, now, today, \
             yesterday, tomorrow, @SECONDS, -1h, +30min, \"2 hours ago\" or 10m \
             (units: s, min, h, d, w, months, y)"
        )
    };
    let day = |offset: i64| {
        let date = Local.timestamp_nanos(now_ns).date_naive();
        let date = date
            .checked_add_signed(chrono::Duration::days(offset))
            .ok_or_else(bad)?;
        local_ns(t, date.and_hms_opt(0, 0, 0).expect("midnight exists"))
    };
    match t.to_ascii_lowercase().as_str() {
        "now" => return Ok(now_ns),
        "today" => return day(0),
        "yesterday" => return day(-1),
        "tomorrow" => return day(1),
        "epoch" => return Ok(0),
        _ => {}
    }
    if let Some(secs) = t.strip_prefix('@') {
        let secs: f64 = secs.trim().parse().map_err(|_| bad())?;
        return checked_ns(secs * 1e9).ok_or_else(bad);
    }
    let relative = if let Some(span) = t.strip_prefix('-') {
        parse_span(span).map(i64::wrapping_neg)
    } else if let Some(span) = t.strip_prefix('+') {
        parse_span(span)
    } else if let Some(span) = t.strip_suffix("ago") {
        parse_span(span).map(i64::wrapping_neg)
    } else if let Some(span) = t.strip_suffix("left") {
        parse_span(span)
    } else {
        // The bare span this filter took first ("10m") means ago.
        parse_span(t).map(i64::wrapping_neg)
    };
    if let Some(delta) = relative {
        return now_ns.checked_add(delta).ok_or_else(bad);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return dt
            .timestamp_nanos_opt()
            .ok_or_else(|| format!("{t:?} is out of range"));
    }
    let (text, utc) = match t.strip_suffix(" UTC").or_else(|| t.strip_suffix(" utc")) {
        Some(rest) => (rest.trim_end(), true),
        None => (t, false),
    };
    let naive = calendar_time(text, now_ns).ok_or_else(bad)?;
    if utc {
        return naive.and_utc().timestamp_nanos_opt().ok_or_else(bad);
    }
    local_ns(t, naive)
}

/// `YYYY-MM-DD[ |T]HH:MM[:SS[.frac]]`, `YYYY-MM-DD` (midnight) or
/// `HH:MM[:SS[.frac]]` (today, in local time).
fn calendar_time(text: &str, now_ns: i64) -> Option<NaiveDateTime> {
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S%.f",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(text, f) {
            return Some(n);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0);
    }
    let today = Local.timestamp_nanos(now_ns).date_naive();
    ["%H:%M:%S%.f", "%H:%M"]
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(text, f).ok())
        .map(|time| today.and_time(time))
}

/// A local wall-clock time as ns since the epoch (the earlier one when the
/// clock was set back over it).
fn local_ns(t: &str, n: NaiveDateTime) -> Result<i64, String> {
    Local
        .from_local_datetime(&n)
        .earliest()
        .and_then(|d| d.timestamp_nanos_opt())
        .ok_or_else(|| format!("{t:?} does not exist in local time"))
}

fn checked_ns(ns: f64) -> Option<i64> {
    (ns.is_finite() && ns.abs() < i64::MAX as f64).then_some(ns as i64)
}

/// A time span as systemd writes one: numbers each followed by a unit,
/// spaces allowed between (`1h 30min`, `2 hours`, `1.5d`); `None` for
/// anything else. Units are systemd's: `m` is a minute, `M` a month.
fn parse_span(text: &str) -> Option<i64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = rest[number_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let seconds = unit_seconds(&rest[..unit_len])?;
        rest = rest[unit_len..].trim_start();
        total += number * seconds;
    }
    checked_ns(total * 1e9)
}

/// Seconds in one of systemd.time(7)'s units.
fn unit_seconds(unit: &str) -> Option<f64> {
    const DAY: f64 = 86_400.0;
    Some(match unit {
        "us" | "usec" => 1e-6,
        "ms" | "msec" => 1e-3,
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => DAY,
        "w" | "week" | "weeks" => 7.0 * DAY,
        "M" | "month" | "months" => 30.44 * DAY,
        "y" | "year" | "years" => 365.25 * DAY,
        _ => return None,
    })
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
        f.set("not_facility", "daemon,local0", 0).unwrap();
        assert!(
            !f.matches(&rec(None, "x", "").as_ref()),
            "facility 3 is daemon"
        );
        let mut no_facility = rec(None, "x", "");
        no_facility.facility = None;
        assert!(f.matches(&no_facility.as_ref()));
        f.set("not_facility", "kern", 0).unwrap();
        assert!(f.matches(&rec(None, "x", "").as_ref()));
        let mut f = Filter::default();
        f.set("since", "1970-01-01T00:16:40Z", now).unwrap();
        f.set("until", "1970-01-01T00:16:41Z", now).unwrap();
        assert!(f.matches(&rec(None, "a", "").as_ref()));
        f.set("since", "1970-01-01T00:16:40.000000001Z", now)
            .unwrap();
        assert!(!f.matches(&rec(None, "a", "").as_ref()));
    }

    #[test]
    fn journalctl_times() {
        let now = Local
            .with_ymd_and_hms(2026, 11, 21, 15, 30, 0)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap();
        let local = |y, mo, d, h, mi, s| {
            Local
                .with_ymd_and_hms(y, mo, d, h, mi, s)
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap()
        };
        const MIN: i64 = 60_000_000_000;
        for (text, want) in [
            ("today", local(2026, 11, 21, 0, 0, 0)),
            ("Yesterday", local(2026, 11, 20, 0, 0, 0)),
            ("tomorrow", local(2026, 11, 22, 0, 0, 0)),
            ("09:15", local(2026, 11, 21, 9, 15, 0)),
            ("2026-11-20 08:00:01", local(2026, 11, 20, 8, 0, 1)),
        ] {
            assert_eq!(parse_time(text, now), Ok(want), "{text}");
        }
        assert_eq!(
            parse_time("2026-11-20 08:00:01 UTC", now),
            Ok(chrono::Utc
                .with_ymd_and_hms(2026, 11, 20, 8, 0, 1)
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap())
        );
        for (text, minutes) in [
            ("-1h", -60),
            ("+5min", 5),
            ("-30m", -30),
            ("10 min ago", -10),
            ("1 hour ago", -60),
            ("2 hours ago", -120),
            ("3 days ago", -3 * 1440),
            ("1h 30min ago", -90),
            ("1 week ago", -7 * 1440),
            ("15min left", 15),
            ("10m", -10),
            ("2h", -120),
        ] {
            assert_eq!(parse_time(text, now), Ok(now + minutes * MIN), "{text}");
        }
        assert_eq!(parse_time("@1", now), Ok(1_000_000_000));
        for bad in [
            "last tuesday",
            "1 fortnight ago",
            "h ago",
            "-",
            "+",
            "12",
            "25:00",
        ] {
            let err = parse_time(bad, now).unwrap_err();
            assert!(
                err.contains("is not a time") && err.contains("ago"),
                "{bad}: {err}"
            );
        }
    }
}
