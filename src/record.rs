//! The one record type that every input produces, the ring stores and every
//! query returns.
//!
//! A [`Record`] is deliberately flat: what a syslog message, a line from a
//! passed fd, a kernel message or the daemon itself has to say fits in the
//! same fields, so sources, storage and queries never need to know about each
//! other.

use std::borrow::Cow;
use std::net::SocketAddr;

use chrono::{DateTime, FixedOffset};

/// A small set of codes numbered from 0, each with the name output and
/// filters use: the enum, its members in code order, and the ways between
/// code, member and name, written once for every such set.
macro_rules! coded {
    (
        $(#[$meta:meta])*
        pub enum $name:ident, named by $name_fn:ident {
            $($(#[$vmeta:meta])* $variant:ident = $code:literal => $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum $name {
            $($(#[$vmeta])* $variant = $code,)+
        }

        impl $name {
            /// Every member, in the order of their codes.
            pub const ALL: [$name; [$($code),+].len()] = [$($name::$variant),+];
            /// Every member's name, indexed by code.
            pub const NAMES: [&'static str; [$($code),+].len()] = [$($text),+];

            /// The code the wire formats carry.
            pub const fn code(self) -> u8 {
                self as u8
            }

            /// The member with this code, `None` for any other.
            pub fn from_code(code: u8) -> Option<$name> {
                $name::ALL.get(usize::from(code)).copied()
            }

            /// The name used in output and in filters.
            pub fn $name_fn(self) -> &'static str {
                $name::NAMES[usize::from(self.code())]
            }
        }
    };
}

coded! {
    /// Which kind of input produced a record.
    pub enum Input, named by as_str {
        /// A datagram on `/dev/log` or another local syslog socket.
        Syslog = 0 => "syslog",
        /// A line read from a file descriptor passed over the intake socket.
        Fd = 1 => "fd",
        /// A record read from `/dev/kmsg`.
        Kmsg = 2 => "kmsg",
        /// A message received over UDP or TCP.
        Net = 3 => "net",
        /// Something the daemon itself has to say (start, losses, warnings).
        Internal = 4 => "internal",
    }
}

coded! {
    /// A syslog severity, most severe first, named as rsyslog and `logger`
    /// name it. Records keep the code itself (`Record::severity`), as every
    /// wire format carries it; this type is for the code that chooses one,
    /// so no file keeps its own numbers.
    pub enum Severity, named by name {
        Emerg = 0 => "emerg", Alert = 1 => "alert", Crit = 2 => "crit", Err = 3 => "err",
        Warning = 4 => "warning", Notice = 5 => "notice", Info = 6 => "info", Debug = 7 => "debug",
    }
}

/// Syslog facility names, indexed by facility code (RFC 5424 table 1, with
/// the names rsyslog and `logger` use).
pub const FACILITY_NAMES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// Syslog severity names, indexed by severity code (0 = most severe).
pub const SEVERITY_NAMES: [&str; 8] = Severity::NAMES;

/// The name of a facility code, `None` for codes outside 0..=23.
pub fn facility_name(code: u8) -> Option<&'static str> {
    FACILITY_NAMES.get(usize::from(code)).copied()
}

/// The name of a severity code, `None` for codes outside 0..=7.
pub fn severity_name(code: u8) -> Option<&'static str> {
    SEVERITY_NAMES.get(usize::from(code)).copied()
}

/// The sender's identity as the kernel reported it (SCM_CREDENTIALS or
/// SO_PEERCRED), as opposed to whatever the sender wrote into its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
}

/// One RFC 5424 SD-ELEMENT: an SD-ID and its parameters, values unescaped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SdElement {
    pub id: String,
    pub params: Vec<(String, String)>,
}

/// What the kernel's log says about one of its records, beyond the text:
/// kept so a reader can match a ring entry with `dmesg` and tell gaps apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelMeta {
    /// The kernel's own sequence number for the record (`SEQ` in
    /// `/dev/kmsg`): consecutive, so a jump means records were lost.
    pub seq: u64,
    /// Microseconds since boot when the kernel logged it (`USEC`), raw.
    pub usec: u64,
    /// The kernel flagged the record as a fragment of a line continued in
    /// the next record (`c` in `/dev/kmsg`'s flags).
    pub fragment: bool,
}

/// One log entry, whatever its input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Position in the ring: strictly increasing, never reused while the
    /// daemon runs. Assigned by the ring when it stores the record; sources
    /// leave it 0.
    pub seq: u64,
    /// When the daemon received the record (for a line: when it completed),
    /// nanoseconds since the Unix epoch, UTC.
    pub received_ns: i64,
    /// The timestamp the message carried itself, with its own UTC offset.
    /// Kept beside `received_ns`, never instead of it.
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// Which kind of input produced the record.
    pub input: Input,
    /// The memlogd "source": for syslog the app name / tag (else `syslog`),
    /// for fd intake the name the client gave, `memlogd` for the daemon.
    pub source: String,
    /// Facility code 0..=23, when the input has one.
    pub facility: Option<u8>,
    /// Severity code 0..=7, when the input has one.
    pub severity: Option<u8>,
    /// The originating host: as written in the message, else this machine's
    /// name for local input.
    pub host: Option<String>,
    /// APP-NAME / TAG as written.
    pub app: Option<String>,
    /// PROCID as written by the sender (may be a name, and may lie: see `peer`).
    pub pid: Option<String>,
    /// RFC 5424 MSGID.
    pub msgid: Option<String>,
    /// RFC 5424 structured data, in the order sent.
    pub sd: Vec<SdElement>,
    /// The message text.
    pub msg: String,
    /// The sender's kernel-verified credentials, when the socket gives them.
    pub peer: Option<Peer>,
    /// The network address the message came from (UDP or TCP): the hop
    /// that delivered it, which for a relay is not the originating `host`.
    pub peer_addr: Option<SocketAddr>,
    /// The text was longer than the configured limit and was cut.
    pub truncated: bool,
    /// The kernel's sequence number and timestamp, for `/dev/kmsg` records.
    pub kernel: Option<KernelMeta>,
}

impl Record {
    /// A record with only the fields every input has; the rest empty.
    pub fn new(
        input: Input,
        received_ns: i64,
        source: impl Into<String>,
        msg: impl Into<String>,
    ) -> Record {
        // The empty fields as the view has them (empty strings and lists
        // cost no allocation to copy).
        let mut r = RecordRef::new(input, received_ns, "", "").to_record();
        r.source = source.into();
        r.msg = msg.into();
        r
    }

    /// A message from the daemon itself, under the source name memlogd uses
    /// so LinuxKit tooling that looks for it keeps working.
    pub fn internal(received_ns: i64, severity: Severity, msg: impl Into<String>) -> Record {
        let mut r = Record::new(Input::Internal, received_ns, "memlogd", msg);
        r.facility = Some(5); // syslog: messages generated by the log daemon
        r.severity = Some(severity.code());
        r
    }
}

/// The most SD-ELEMENTs kept from one message; the rest are left out and
/// the entry flagged truncated.
pub const MAX_SD_ELEMENTS: usize = 32;

/// The most SD-PARAMs kept from one message, over all its elements.
pub const MAX_SD_PARAMS: usize = 128;

/// What an SD-ELEMENT costs against `--max-line-len`: its bytes as RFC 5424
/// writes them, `[ID]`, escapes aside. Structured data and the message are
/// one text, as on the wire, and share the limit.
pub fn sd_element_len(id: &str) -> usize {
    id.len() + 2
}

/// What one SD-PARAM costs against `--max-line-len`: ` NAME="VALUE"`.
pub fn sd_param_len(name: &str, value: &str) -> usize {
    name.len() + value.len() + 4
}

/// The bytes all of `sd` costs against `--max-line-len`.
pub fn sd_len(sd: &[SdRef]) -> usize {
    sd.iter()
        .map(|e| {
            sd_element_len(e.id)
                + e.params
                    .iter()
                    .map(|(k, v)| sd_param_len(k, v))
                    .sum::<usize>()
        })
        .sum()
}

/// One SD-ELEMENT whose text lives elsewhere. Values are `Cow` because
/// unescaping a received value may need a new string, while values read
/// back from the ring never do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdRef<'a> {
    pub id: &'a str,
    pub params: Vec<(&'a str, Cow<'a, str>)>,
}

/// A [`Record`] whose text lives elsewhere: in a receive buffer while it is
/// parsed, in the ring's storage while it is read. The hot paths (ingest
/// and dump) use it so that no field costs an allocation; every field means
/// what the same field of [`Record`] means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub seq: u64,
    pub received_ns: i64,
    pub timestamp: Option<DateTime<FixedOffset>>,
    pub input: Input,
    pub source: &'a str,
    pub facility: Option<u8>,
    pub severity: Option<u8>,
    pub host: Option<&'a str>,
    pub app: Option<&'a str>,
    /// A `Cow` because a parser may have to spell out a number.
    pub pid: Option<Cow<'a, str>>,
    pub msgid: Option<&'a str>,
    pub sd: Vec<SdRef<'a>>,
    pub msg: &'a str,
    pub peer: Option<Peer>,
    pub truncated: bool,
    pub kernel: Option<KernelMeta>,
    pub peer_addr: Option<SocketAddr>,
}

impl<'a> RecordRef<'a> {
    /// A view with only the fields every input has.
    pub fn new(input: Input, received_ns: i64, source: &'a str, msg: &'a str) -> RecordRef<'a> {
        RecordRef {
            seq: 0,
            received_ns,
            timestamp: None,
            input,
            source,
            facility: None,
            severity: None,
            host: None,
            app: None,
            pid: None,
            msgid: None,
            sd: Vec::new(),
            msg,
            peer: None,
            truncated: false,
            kernel: None,
            peer_addr: None,
        }
    }

    /// An owned copy.
    pub fn to_record(&self) -> Record {
        Record {
            seq: self.seq,
            received_ns: self.received_ns,
            timestamp: self.timestamp,
            input: self.input,
            source: self.source.to_owned(),
            facility: self.facility,
            severity: self.severity,
            host: self.host.map(str::to_owned),
            app: self.app.map(str::to_owned),
            pid: self.pid.as_deref().map(str::to_owned),
            msgid: self.msgid.map(str::to_owned),
            sd: self
                .sd
                .iter()
                .map(|e| SdElement {
                    id: e.id.to_owned(),
                    params: e
                        .params
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), v.clone().into_owned()))
                        .collect(),
                })
                .collect(),
            msg: self.msg.to_owned(),
            peer: self.peer,
            truncated: self.truncated,
            kernel: self.kernel,
            peer_addr: self.peer_addr,
        }
    }
}

impl Record {
    /// A view of this record, for code that takes [`RecordRef`].
    pub fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            seq: self.seq,
            received_ns: self.received_ns,
            timestamp: self.timestamp,
            input: self.input,
            source: &self.source,
            facility: self.facility,
            severity: self.severity,
            host: self.host.as_deref(),
            app: self.app.as_deref(),
            pid: self.pid.as_deref().map(Cow::Borrowed),
            msgid: self.msgid.as_deref(),
            sd: self
                .sd
                .iter()
                .map(|e| SdRef {
                    id: &e.id,
                    params: e
                        .params
                        .iter()
                        .map(|(k, v)| (k.as_str(), Cow::Borrowed(v.as_str())))
                        .collect(),
                })
                .collect(),
            msg: &self.msg,
            peer: self.peer,
            truncated: self.truncated,
            kernel: self.kernel,
            peer_addr: self.peer_addr,
        }
    }
}

/// The current wall-clock time in nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// `s` cut to at most `max` bytes without splitting a UTF-8 character, and
/// whether anything was cut.
pub fn truncated_str(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

/// Cut `s` to at most `max` bytes without splitting a UTF-8 character.
/// Returns whether anything was cut.
pub fn truncate_utf8(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        let mut s = String::from("aé"); // 'é' is two bytes
        assert!(truncate_utf8(&mut s, 2));
        assert_eq!(s, "a");
        let mut t = String::from("abc");
        assert!(!truncate_utf8(&mut t, 3));
        assert_eq!(t, "abc");
    }

    #[test]
    fn names_cover_every_code() {
        assert_eq!(facility_name(1), Some("user"));
        assert_eq!(facility_name(23), Some("local7"));
        assert_eq!(facility_name(24), None);
        assert_eq!(severity_name(3), Some("err"));
        assert_eq!(severity_name(8), None);
        for i in Input::ALL {
            assert_eq!(Input::from_code(i as u8), Some(i));
        }
    }
}
