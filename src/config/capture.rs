//! The `--capture` flags: which entries start a capture, how wide its
//! window is, what captures may pin, and where complete ones are written.

use std::path::PathBuf;
use std::time::Duration;

use crate::ring::capture::{
    CaptureRules, DEFAULT_AFTER_NS, DEFAULT_BEFORE_NS, DEFAULT_MAX, DEFAULT_MAX_SPAN_NS,
    MAX_CAPTURES,
};
use crate::view::filter::Filter;

/// The filter keys a trigger may use: the query's, without times.
const KEYS: &[&str] = &[
    "priority",
    "facility",
    "not_facility",
    "source",
    "app",
    "input",
    "grep",
];

/// One `--capture` filter, kept as its text and its checked parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureFilter {
    pub text: String,
    pairs: Vec<(String, String)>,
}

impl CaptureFilter {
    /// Parse `key=value&key=value` (URL form, as a query's options).
    pub fn parse(text: &str) -> Result<CaptureFilter, String> {
        let fail = |why: String| format!("capture filter {text:?}: {why}");
        let pairs: Vec<(String, String)> = form_urlencoded::parse(text.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if pairs.is_empty() {
            return Err(fail(format!(
                "no condition; give one or more of {} as key=value joined by &, e.g. \
                 priority=err or source=kernel&grep=(Oops|BUG:|panic)",
                KEYS.join(", ")
            )));
        }
        let mut f = Filter::default();
        for (k, v) in &pairs {
            if !KEYS.contains(&k.as_str()) {
                return Err(fail(format!(
                    "unknown key {k:?} (known: {})",
                    KEYS.join(", ")
                )));
            }
            f.set(k, v, 0).map_err(fail)?;
        }
        Ok(CaptureFilter {
            text: text.to_owned(),
            pairs,
        })
    }

    /// The filter. Its parts were checked when it was parsed.
    pub fn filter(&self) -> Filter {
        let mut f = Filter::default();
        for (k, v) in &self.pairs {
            f.set(k, v, 0)
                .expect("capture filters are checked when parsed");
        }
        f
    }
}

/// Flattened into [`super::DaemonArgs`].
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CaptureArgs {
    /// Keep the entries around each entry that matches FILTER (query
    /// options in URL form: priority=err, source=kernel&grep=Oops,
    /// app=sshd&grep=Failed) from eviction, as a capture: from
    /// --capture-before ahead of it to --capture-after behind it. Repeat
    /// for more. Off unless given.
    #[arg(long = "capture", value_name = "FILTER", value_parser = CaptureFilter::parse)]
    pub capture: Vec<CaptureFilter>,

    /// How far back a capture reaches from its trigger (30s, 500ms, 2m).
    #[arg(long = "capture-before", value_name = "TIME", default_value = "30s",
          value_parser = parse_span)]
    pub capture_before: Duration,

    /// How long after its trigger a capture goes on taking entries; a
    /// trigger in that time extends it.
    #[arg(long = "capture-after", value_name = "TIME", default_value = "10s",
          value_parser = parse_span)]
    pub capture_after: Duration,

    /// The longest a capture grows by extension, from the start of its
    /// window to its end.
    #[arg(long = "capture-max-span", value_name = "TIME", default_value = "5m",
          value_parser = parse_span)]
    pub capture_max_span: Duration,

    /// What all captures may pin together, counted inside --max-bytes
    /// (default: a quarter of it; at most half of it).
    #[arg(long = "capture-max-bytes", value_name = "SIZE", value_parser = super::parse_size)]
    pub capture_max_bytes: Option<usize>,

    /// The most captures kept; the oldest complete one is released for a
    /// new one.
    #[arg(long = "capture-max", value_name = "N", default_value_t = DEFAULT_MAX,
          value_parser = parse_capture_max)]
    pub capture_max: usize,

    /// Write each complete capture to DIR/capture-BOOT-ID.jsonl.zst
    /// (zstd-compressed JSON lines, mode 0600, written atomically).
    #[arg(long = "capture-dir", value_name = "DIR")]
    pub capture_dir: Option<PathBuf>,

    /// The most bytes of capture files kept in --capture-dir; the oldest
    /// files are removed first.
    #[arg(long = "capture-dir-max", value_name = "SIZE", default_value = "64M",
          value_parser = super::parse_size)]
    pub capture_dir_max: usize,
}

/// The captures, as the daemon runs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureSettings {
    pub filters: Vec<CaptureFilter>,
    pub before: Duration,
    pub after: Duration,
    pub max_span: Duration,
    pub max_bytes: usize,
    pub max: usize,
    pub dir: Option<PathBuf>,
    pub dir_max: usize,
}

impl CaptureArgs {
    /// The settings, with `max_bytes` (the ring's) for the default budget.
    pub fn settings(&self, ring_max_bytes: usize) -> CaptureSettings {
        CaptureSettings {
            filters: self.capture.clone(),
            before: self.capture_before,
            after: self.capture_after,
            max_span: self.capture_max_span,
            max_bytes: self
                .capture_max_bytes
                .unwrap_or(ring_max_bytes / 4)
                .min(ring_max_bytes / 2),
            max: self.capture_max,
            dir: self.capture_dir.clone(),
            dir_max: self.capture_dir_max,
        }
    }
}

impl CaptureSettings {
    /// The filters as written, by rule index (what a capture's `rule` is).
    pub fn filter_texts(&self) -> Vec<String> {
        self.filters.iter().map(|f| f.text.clone()).collect()
    }

    /// The ring's rules: one trigger per filter.
    pub fn rules(&self) -> CaptureRules {
        let ns = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        CaptureRules {
            triggers: self
                .filters
                .iter()
                .map(|f| {
                    let filter = f.filter();
                    Box::new(move |r: &crate::record::RecordRef| filter.matches(r))
                        as crate::ring::capture::Trigger
                })
                .collect(),
            before_ns: ns(self.before),
            after_ns: ns(self.after),
            max_span_ns: ns(self.max_span).max(ns(self.before) + ns(self.after)),
            max_bytes: self.max_bytes,
            max: self.max,
        }
    }
}

/// A time span: a number of seconds, or with a unit (ms, s, m, h).
pub fn parse_span(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = t[..digits]
        .parse()
        .map_err(|_| format!("{s:?} is not a time (try 30s, 500ms, 5m)"))?;
    let d = match &t[digits..] {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => return Err(format!("{s:?}: unknown unit {other:?} (use ms, s, m or h)")),
    };
    if d > Duration::from_secs(7 * 24 * 3600) {
        return Err(format!("{s:?} is longer than a week"));
    }
    Ok(d)
}

fn parse_capture_max(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_CAPTURES).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from 1 to {MAX_CAPTURES}")),
    }
}

// The defaults the flags state are the ring's.
const _: () = assert!(DEFAULT_BEFORE_NS == 30_000_000_000);
const _: () = assert!(DEFAULT_AFTER_NS == 10_000_000_000);
const _: () = assert!(DEFAULT_MAX_SPAN_NS == 300_000_000_000);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Input, RecordRef};

    #[test]
    fn filters_parse_check_and_match() {
        let f = CaptureFilter::parse("source=kernel&grep=(Oops|BUG:|panic)").unwrap();
        let mut r = RecordRef::new(Input::Kmsg, 0, "kernel", "BUG: unable to handle page fault");
        assert!(f.filter().matches(&r));
        r.msg = "usb 1-1: new device";
        assert!(!f.filter().matches(&r));
        let bad = |t: &str| CaptureFilter::parse(t).unwrap_err();
        assert!(bad("").contains("no condition"), "{}", bad(""));
        assert!(bad("prio=err").contains("unknown key \"prio\""));
        assert!(bad("priority=loud").contains("priority"));
        assert!(bad("grep=(").contains("grep"));
        assert!(bad("since=-1h").contains("unknown key"));
    }

    #[test]
    fn spans_read_with_units() {
        assert_eq!(parse_span("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_span("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_span("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_span("ten").is_err());
        assert!(parse_span("3d").is_err());
    }
}
