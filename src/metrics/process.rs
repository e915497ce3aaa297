//! The process' own figures, read from `/proc/self` at each scrape under
//! the names every Prometheus client library gives them (`process_*`), so
//! the usual dashboards and alerts work unchanged.

use nix::sys::resource::{getrlimit, Resource};
use nix::unistd::{sysconf, SysconfVar};

/// What `/proc/self` says now; a figure the kernel would not give is
/// `None`, and its family is left out.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Process {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<f64>,
    pub virtual_bytes: Option<f64>,
    pub start_time_seconds: Option<f64>,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
}

impl Process {
    /// Read them now. Costs a few small reads of `/proc`, and one
    /// directory listing as long as the fds open.
    pub fn now() -> Process {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let fields = stat.as_deref().map(stat_fields).unwrap_or_default();
        let field = |n: usize| fields.get(n).and_then(|f| f.parse::<f64>().ok());
        let tick = sysconf(SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .map(|t| t as f64);
        let page = sysconf(SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .map(|p| p as f64);
        // Fields 14, 15, 22, 23 and 24 of the line (utime, stime,
        // starttime, vsize, rss), counted from after the command's name.
        let cpu = field(STAT_UTIME)
            .zip(field(STAT_STIME))
            .zip(tick)
            .map(|((u, s), t)| (u + s) / t);
        let start = field(STAT_STARTTIME)
            .zip(tick)
            .zip(boot_time())
            .map(|((ticks, t), boot)| boot + ticks / t);
        Process {
            cpu_seconds: cpu,
            resident_bytes: field(STAT_RSS).zip(page).map(|(r, p)| r * p),
            virtual_bytes: field(STAT_VSIZE),
            start_time_seconds: start,
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as f64),
            max_fds: getrlimit(Resource::RLIMIT_NOFILE)
                .ok()
                .map(|(soft, _)| soft as f64),
        }
    }
}

/// Indexes into the fields after `(comm)` of `/proc/self/stat`: field N of
/// proc(5) is index N - 3.
const STAT_UTIME: usize = 11;
const STAT_STIME: usize = 12;
const STAT_STARTTIME: usize = 19;
const STAT_VSIZE: usize = 20;
const STAT_RSS: usize = 21;

/// The fields after the command's name, which may itself hold spaces and
/// parentheses: everything after the last `)`.
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default()
}

/// When the machine booted, in seconds since the epoch (`btime` of
/// `/proc/stat`).
fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let p = Process::now();
        assert!(p.cpu_seconds.is_some_and(|c| c >= 0.0), "{p:?}");
        assert!(p.resident_bytes.is_some_and(|r| r > 4096.0), "{p:?}");
        assert!(p.virtual_bytes >= p.resident_bytes, "{p:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        // Started before now, and not before the kernel: a day is far more
        // than any test run.
        let start = p.start_time_seconds.expect("start time");
        assert!(
            start <= now + 1.0 && start > now - 86_400.0,
            "{start} vs {now}"
        );
        let (open, max) = (p.open_fds.unwrap(), p.max_fds.unwrap());
        assert!(open >= 3.0 && open <= max, "{open} of {max}");
    }

    #[test]
    fn a_command_name_with_a_parenthesis_is_skipped_whole() {
        let f = stat_fields("42 (a) b) S 1 2 3");
        assert_eq!(f, ["S", "1", "2", "3"]);
    }
}
