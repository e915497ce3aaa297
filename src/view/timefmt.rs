//! Times as text, written straight into a buffer: a dump writes one or
//! two per entry, and chrono's formatter (with its allocations) was a tenth
//! of the dump's cost. The part down to the second is kept for the next
//! entry, which is most often of the same second: local time, which asks
//! the time zone each time, is then formatted once a second, not once an
//! entry.

use std::cell::Cell;
use std::io::Write as _;
use std::thread::LocalKey;

use chrono::{DateTime, FixedOffset, Local, SecondsFormat, Utc};

/// The text of one second, as some format writes it: `N` bytes, a
/// constant so that copying it is a few moves, not a call.
#[derive(Clone, Copy)]
struct Second<const N: usize> {
    secs: i64,
    /// False: nothing kept yet.
    kept: bool,
    text: [u8; N],
}

impl<const N: usize> Second<N> {
    const NONE: Second<N> = Second {
        secs: 0,
        kept: false,
        text: [0; N],
    };
}

/// `YYYY-MM-DDTHH:MM:SS`, `Nov 21 23:40:10`, `YYYY-MM-DDTHH:MM:SS+HH:MM`.
const DATE_TIME: usize = 19;
const SHORT: usize = 15;
const ISO: usize = 25;

thread_local! {
    static UTC_SECOND: Cell<Second<DATE_TIME>> = const { Cell::new(Second::NONE) };
    /// The message's own time, kept apart from the receive time: a JSON
    /// line or an RFC 5424 relay writes both, often of different seconds,
    /// and one kept second for both was replaced twice an entry.
    static OWN_SECOND: Cell<Second<DATE_TIME>> = const { Cell::new(Second::NONE) };
    static LOCAL_SHORT: Cell<Second<SHORT>> = const { Cell::new(Second::NONE) };
    static LOCAL_ISO: Cell<Second<ISO>> = const { Cell::new(Second::NONE) };
}

/// Append the text of second `secs` that `make` writes, from `kept` when
/// it holds that second; false when `make` wrote nothing. Only a text of
/// the usual length is kept (a year past 9999 is not).
fn kept_second<const N: usize>(
    kept: &'static LocalKey<Cell<Second<N>>>,
    secs: i64,
    out: &mut Vec<u8>,
    make: impl FnOnce(&mut Vec<u8>),
) -> bool {
    let last = kept.get();
    if last.kept && last.secs == secs {
        out.extend_from_slice(&last.text);
        return true;
    }
    let start = out.len();
    make(out);
    let made = &out[start..];
    if let Ok(text) = <[u8; N]>::try_from(made) {
        kept.set(Second {
            secs,
            kept: true,
            text,
        });
    }
    !made.is_empty()
}

/// The local time of the UTC second `secs`.
fn local(secs: i64) -> DateTime<Local> {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .unwrap_or_default()
        .with_timezone(&Local)
}

/// `Nov 21 23:40:10`: the local time of second `secs` as syslog files
/// and RFC 3164 write it (chrono's `%b %e %H:%M:%S`).
pub fn write_local_short(secs: i64, out: &mut Vec<u8>) {
    kept_second(&LOCAL_SHORT, secs, out, |out| {
        let _ = write!(out, "{}", local(secs).format("%b %e %H:%M:%S"));
    });
}

/// `2026-11-21T23:40:10+01:00`: the local time of second `secs` in RFC
/// 3339, with its offset (chrono's `to_rfc3339_opts(Secs, false)`).
pub fn write_local_iso(secs: i64, out: &mut Vec<u8>) {
    kept_second(&LOCAL_ISO, secs, out, |out| {
        let text = local(secs).to_rfc3339_opts(SecondsFormat::Secs, false);
        out.extend_from_slice(text.as_bytes());
    });
}

/// RFC 3339 in UTC with exactly six fraction digits, as RFC 5424 suggests
/// (chrono's `to_rfc3339_opts(Micros, true)`).
pub fn write_utc_micros(ns: i64, out: &mut Vec<u8>) {
    let secs = ns.div_euclid(1_000_000_000);
    let micros = ns.rem_euclid(1_000_000_000) as u32 / 1000;
    if !write_date_time_kept(&UTC_SECOND, secs, out) {
        let s =
            DateTime::<Utc>::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::Micros, true);
        out.extend_from_slice(s.as_bytes());
        return;
    }
    out.push(b'.');
    write_digits(micros, 6, out);
    out.push(b'Z');
}

/// Go's `time.RFC3339Nano` in UTC (memlogd's `time`): nanoseconds with
/// trailing zeros dropped, `Z`.
pub fn write_utc_nanos(ns: i64, out: &mut Vec<u8>) {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000) as u32;
    if !write_date_time_kept(&UTC_SECOND, secs, out) {
        let s =
            DateTime::<Utc>::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::AutoSi, true);
        out.extend_from_slice(s.as_bytes());
        return;
    }
    if frac != 0 {
        out.push(b'.');
        out.extend_from_slice(&digits::<9>(frac));
        // Go drops the fraction's trailing zeros.
        let mut f = frac;
        while f % 10 == 0 {
            f /= 10;
            out.pop();
        }
    }
    out.push(b'Z');
}

/// [`write_utc_nanos`] as a string.
pub fn rfc3339_nanos(ns: i64) -> String {
    let mut out = Vec::with_capacity(32);
    write_utc_nanos(ns, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// A message's own time as chrono's `to_rfc3339_opts(AutoSi, true)` writes
/// it: in its own offset (`Z` for UTC), with 0, 3, 6 or 9 fraction digits.
pub fn write_with_offset(ts: &DateTime<FixedOffset>, out: &mut Vec<u8>) {
    let offset = ts.offset().local_minus_utc();
    let nanos = ts.timestamp_subsec_nanos();
    let start = out.len();
    if offset % 60 != 0
        || nanos >= 1_000_000_000
        || !write_date_time_kept(&OWN_SECOND, ts.timestamp() + i64::from(offset), out)
    {
        out.truncate(start);
        out.extend_from_slice(ts.to_rfc3339_opts(SecondsFormat::AutoSi, true).as_bytes());
        return;
    }
    if nanos != 0 {
        out.push(b'.');
        if nanos % 1_000_000 == 0 {
            write_digits(nanos / 1_000_000, 3, out);
        } else if nanos % 1000 == 0 {
            write_digits(nanos / 1000, 6, out);
        } else {
            write_digits(nanos, 9, out);
        }
    }
    if offset == 0 {
        out.push(b'Z');
    } else {
        out.push(if offset < 0 { b'-' } else { b'+' });
        let minutes = offset.unsigned_abs() / 60;
        write_digits(minutes / 60, 2, out);
        out.push(b':');
        write_digits(minutes % 60, 2, out);
    }
}

/// [`write_date_time`], kept in `kept` for the next entry of the same
/// second.
fn write_date_time_kept(
    kept: &'static LocalKey<Cell<Second<DATE_TIME>>>,
    secs: i64,
    out: &mut Vec<u8>,
) -> bool {
    kept_second(kept, secs, out, |out| {
        write_date_time(secs, out);
    })
}

/// `YYYY-MM-DDTHH:MM:SS` for `secs` since the epoch; false (writing nothing)
/// for a year four digits cannot hold.
fn write_date_time(secs: i64, out: &mut Vec<u8>) -> bool {
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return false;
    }
    write_digits(y as u32, 4, out);
    out.push(b'-');
    write_digits(m, 2, out);
    out.push(b'-');
    write_digits(d, 2, out);
    out.push(b'T');
    write_digits(sod / 3600, 2, out);
    out.push(b':');
    write_digits(sod / 60 % 60, 2, out);
    out.push(b':');
    write_digits(sod % 60, 2, out);
    true
}

/// `v` as exactly `width` decimal digits (zero-padded).
fn write_digits(v: u32, width: usize, out: &mut Vec<u8>) {
    match width {
        2 => out.extend_from_slice(&digits::<2>(v)),
        3 => out.extend_from_slice(&digits::<3>(v)),
        4 => out.extend_from_slice(&digits::<4>(v)),
        6 => out.extend_from_slice(&digits::<6>(v)),
        _ => out.extend_from_slice(&digits::<9>(v)[9 - width.min(9)..]),
    }
}

/// The last `W` decimal digits of `v`.
fn digits<const W: usize>(mut v: u32) -> [u8; W] {
    let mut buf = [b'0'; W];
    for d in buf.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    buf
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_nanos_matches_go() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nanos(1_720_000_000_974_497_577),
            "2024-07-03T09:46:40.974497577Z"
        );
        assert_eq!(
            rfc3339_nanos(1_720_000_000_500_000_000),
            "2024-07-03T09:46:40.5Z"
        );
        assert_eq!(rfc3339_nanos(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(
            rfc3339_nanos(951_782_400_000_000_000),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn offsets_match_chrono_everywhere() {
        // Every day of four years, odd offsets and every fraction width.
        let mut t = DateTime::parse_from_rfc3339("2023-01-01T00:00:00Z")
            .unwrap()
            .timestamp();
        let offsets = [0, 3600, -18_000, 20_700, -34_200, 86_340, -86_340];
        let nanos = [0, 1_000_000, 123_000, 7, 999_999_999, 500_000_000];
        let mut i = 0;
        while t < 1_830_000_000 {
            let off = FixedOffset::east_opt(offsets[i % offsets.len()]).unwrap();
            let ts = DateTime::from_timestamp(t, nanos[i % nanos.len()])
                .unwrap()
                .with_timezone(&off);
            let mut out = Vec::new();
            write_with_offset(&ts, &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                ts.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            );
            t += 86_400 + 3_661;
            i += 1;
        }
        for far in ["0001-01-01T00:00:00+05:45", "9999-12-31T23:59:59.9-00:30"] {
            let ts = DateTime::parse_from_rfc3339(far).unwrap();
            let mut out = Vec::new();
            write_with_offset(&ts, &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                ts.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            );
        }
    }

    #[test]
    fn seconds_kept_for_the_next_entry_read_as_chrono_writes_them() {
        // Runs of entries in one second, seconds apart and years apart,
        // each format in turn, so the kept second is hit and missed.
        let mut ns = 1_700_000_000_123_456_789i64;
        let steps = [
            0,
            1,
            999_999_999,
            1_000_000_000,
            86_400_000_000_000,
            -3_600_000_000_000,
        ];
        for i in 0..4000 {
            ns += steps[i % steps.len()] + i as i64 * 7_919_000_000;
            let secs = ns.div_euclid(1_000_000_000);
            let utc = DateTime::<Utc>::from_timestamp_nanos(ns);
            let local = utc.with_timezone(&Local);
            let mut out = Vec::new();
            write_local_short(secs, &mut out);
            out.push(b'|');
            write_local_iso(secs, &mut out);
            out.push(b'|');
            write_utc_micros(ns, &mut out);
            let chrono = format!(
                "{}|{}|{}",
                local.format("%b %e %H:%M:%S"),
                local.to_rfc3339_opts(SecondsFormat::Secs, false),
                utc.to_rfc3339_opts(SecondsFormat::Micros, true),
            );
            // Go's RFC3339Nano: the same second, the fraction trimmed.
            let go = format!("{}", utc.format("%Y-%m-%dT%H:%M:%S%.9f"));
            let go = go.trim_end_matches('0').trim_end_matches('.');
            let mut nanos = Vec::new();
            write_utc_nanos(ns, &mut nanos);
            assert_eq!(String::from_utf8(nanos).unwrap(), format!("{go}Z"), "{ns}");
            assert_eq!(String::from_utf8(out).unwrap(), chrono, "{ns}");
        }
    }
}
