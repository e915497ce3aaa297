//! Records as a route sends them: the chosen format, then the framing its
//! transport needs (none for a UDP datagram or a RELP frame's data, octet
//! counting or LF on a stream).
//!
//! The host is the box's own name for entries that came from this machine
//! and carry none (fd lines, the daemon's own entries), so a central
//! server can tell the boxes apart.

use std::io::Write as _;

use super::spec::Framing;
use crate::record::RecordRef;
use crate::view::format::{write_record_as, Format, Text};

/// How one route writes messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wire {
    pub format: Format,
    /// `None`: each message is its own datagram or frame.
    pub framing: Option<Framing>,
}

impl Wire {
    /// Append `r` to `out` as it goes on the wire; `scratch` is reused.
    pub fn encode(
        &self,
        r: &RecordRef,
        local_host: &str,
        scratch: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) {
        scratch.clear();
        if r.host.is_none() && self.format != Format::Cat {
            let mut with_host = r.clone();
            with_host.host = Some(local_host);
            write_record_as(&with_host, self.format, Text::AsSent, scratch);
        } else {
            write_record_as(r, self.format, Text::AsSent, scratch);
        }
        // Every format ends its line with one '\n', which is not part of
        // the message.
        let msg = scratch.strip_suffix(b"\n").unwrap_or(scratch);
        match self.framing {
            None => out.extend_from_slice(msg),
            Some(Framing::Octet) => {
                let _ = write!(out, "{} ", msg.len());
                out.extend_from_slice(msg);
            }
            Some(Framing::Lf) => {
                let mut rest = msg;
                while let Some(i) = memchr::memchr(b'\n', rest) {
                    out.extend_from_slice(&rest[..i]);
                    out.extend_from_slice(b"#012");
                    rest = &rest[i + 1..];
                }
                out.extend_from_slice(rest);
                out.push(b'\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Input, Record};

    fn render(wire: Wire, r: &Record) -> String {
        let mut out = Vec::new();
        wire.encode(&r.as_ref(), "box1", &mut Vec::new(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn framings_and_the_local_host() {
        let mut r = Record::new(
            Input::Fd,
            1_720_000_000_974_497_577,
            "svc.out",
            "line one\n  at two",
        );
        r.severity = Some(3);
        r.facility = Some(1);
        let rfc = "<11>1 2024-07-03T09:46:40.974497Z box1 svc.out - - - line one\n  at two";
        let octet = Wire {
            format: Format::Rfc5424,
            framing: Some(Framing::Octet),
        };
        assert_eq!(render(octet, &r), format!("{} {rfc}", rfc.len()));
        let lf = Wire {
            framing: Some(Framing::Lf),
            ..octet
        };
        assert_eq!(render(lf, &r), rfc.replace('\n', "#012") + "\n");
        let bare = Wire {
            framing: None,
            ..octet
        };
        assert_eq!(render(bare, &r), rfc);
        let raw = Wire {
            format: Format::Cat,
            framing: None,
        };
        assert_eq!(render(raw, &r), "line one\n  at two");
        r.host = Some("web1".into());
        assert!(
            render(bare, &r).contains(" web1 svc.out "),
            "a host given is kept"
        );
    }
}
