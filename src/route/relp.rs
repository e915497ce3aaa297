//! RELP, rsyslog's Reliable Event Logging Protocol, client side: frames
//! `TXNR SP COMMAND SP DATALEN [SP DATA] LF`; the client opens a session
//! with its offers, sends each message as a `syslog` command, and the
//! server answers every command with an `rsp` carrying the same TXNR, in
//! order. A message counts as delivered only when its `rsp` says 200.
//!
//! This module only builds and reads frames; the route decides what an
//! answer means for its cursor.

/// The most a TXNR reaches before it starts again at 1.
const MAX_TXNR: u32 = 999_999_999;
/// The largest response we read; librelp's own limit on frames is 128 KiB.
const MAX_DATA: usize = 128 << 10;

/// The offers of our `open`: protocol version 0 (what librelp speaks) and
/// the one command we need.
pub fn open_offers() -> String {
    format!(
        "relp_version=0\nrelp_software=ringlogd,{}\ncommands=syslog",
        env!("CARGO_PKG_VERSION")
    )
}

/// The TXNR after `t`.
pub fn next_txnr(t: u32) -> u32 {
    if t >= MAX_TXNR {
        1
    } else {
        t + 1
    }
}

/// Append one command frame to `out`.
pub fn frame(txnr: u32, command: &str, data: &[u8], out: &mut Vec<u8>) {
    use std::io::Write as _;
    let _ = write!(out, "{txnr} {command} {}", data.len());
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(data);
    }
    out.push(b'\n');
}

/// Start a frame whose data is written next, for [`end_frame`]: the data
/// length is filled in once it is known, so the message is encoded once,
/// straight into the output buffer.
pub fn begin_frame(txnr: u32, command: &str, out: &mut Vec<u8>) -> usize {
    use std::io::Write as _;
    let _ = write!(out, "{txnr} {command} ");
    out.len()
}

/// Finish a frame begun at `start` ([`begin_frame`]) whose data is
/// `out[start..]`.
pub fn end_frame(start: usize, out: &mut Vec<u8>) {
    let data = out.split_off(start);
    let _ = std::io::Write::write_fmt(out, format_args!("{}", data.len()));
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(&data);
    }
    out.push(b'\n');
}

/// One frame the server sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub txnr: u32,
    pub command: String,
    pub data: Vec<u8>,
}

impl Frame {
    /// For an `rsp`: whether it says 200 (OK), and its text.
    pub fn status(&self) -> (bool, String) {
        let text = String::from_utf8_lossy(&self.data);
        let first = text.lines().next().unwrap_or("").to_owned();
        (first.starts_with("200"), first)
    }
}

/// Collects the server's bytes and cuts them into frames.
#[derive(Debug, Default)]
pub struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The next whole frame, `None` when more bytes are needed, or why the
    /// bytes are not RELP (the connection must then be dropped).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        let b = &self.buf;
        let mut fields = [0usize; 2];
        let mut pos = 0;
        // TXNR SP COMMAND SP DATALEN
        for f in &mut fields {
            match b[pos..].iter().position(|&c| c == b' ') {
                Some(i) => {
                    pos += i + 1;
                    *f = pos;
                }
                None if b.len() - pos > 48 => return Err(self.bad("a header too long")),
                None => return Ok(None),
            }
        }
        let txnr = parse_number(&b[..fields[0] - 1]).ok_or_else(|| self.bad("no TXNR"))?;
        let command = &b[fields[0]..fields[1] - 1];
        if command.is_empty() || command.len() > 32 || !command.iter().all(u8::is_ascii_alphabetic)
        {
            return Err(self.bad("no command"));
        }
        let len_end = b[fields[1]..]
            .iter()
            .position(|c| !c.is_ascii_digit())
            .map(|i| fields[1] + i);
        let Some(len_end) = len_end else {
            return if b.len() - fields[1] > 9 {
                Err(self.bad("a DATALEN too long"))
            } else {
                Ok(None)
            };
        };
        let len =
            parse_number(&b[fields[1]..len_end]).ok_or_else(|| self.bad("no DATALEN"))? as usize;
        if len > MAX_DATA {
            return Err(self.bad("a frame larger than 128 KiB"));
        }
        let data_start = if len > 0 { len_end + 1 } else { len_end };
        if b.len() < data_start + len + 1 {
            return Ok(None);
        }
        if len > 0 && b[len_end] != b' ' {
            return Err(self.bad("no space before the data"));
        }
        if b[data_start + len] != b'\n' {
            return Err(self.bad("no LF after the data"));
        }
        let frame = Frame {
            txnr: txnr as u32,
            command: String::from_utf8_lossy(command).into_owned(),
            data: b[data_start..data_start + len].to_vec(),
        };
        self.buf.drain(..data_start + len + 1);
        Ok(Some(frame))
    }

    fn bad(&self, what: &str) -> String {
        let shown = String::from_utf8_lossy(&self.buf[..self.buf.len().min(40)]).into_owned();
        format!("not a RELP frame ({what}): {shown:?}")
    }
}

fn parse_number(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 9 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_written_as_the_spec_says() {
        let mut out = Vec::new();
        frame(1, "open", b"relp_version=0", &mut out);
        frame(7, "close", b"", &mut out);
        let start = begin_frame(2, "syslog", &mut out);
        out.extend_from_slice(b"<13>1 - - - - - hi");
        end_frame(start, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1 open 14 relp_version=0\n7 close 0\n2 syslog 18 <13>1 - - - - - hi\n"
        );
        assert_eq!(next_txnr(1), 2);
        assert_eq!(next_txnr(MAX_TXNR), 1);
    }

    #[test]
    fn responses_are_read_in_any_split() {
        let mut stream = Vec::new();
        let offers = "200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog";
        frame(1, "rsp", offers.as_bytes(), &mut stream);
        frame(2, "rsp", b"200 OK", &mut stream);
        frame(3, "rsp", b"500 out of space", &mut stream);
        frame(0, "serverclose", b"", &mut stream);
        assert!(
            stream.starts_with(b"1 rsp 93 200 OK\n")
                && stream
                    .ends_with(b"\n2 rsp 6 200 OK\n3 rsp 16 500 out of space\n0 serverclose 0\n")
        );
        for at in 0..stream.len() {
            let mut r = Reader::default();
            let mut got = Vec::new();
            for part in [&stream[..at], &stream[at..]] {
                r.feed(part);
                while let Some(f) = r.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got.len(), 4, "split at {at}");
            assert_eq!((got[0].txnr, got[0].command.as_str()), (1, "rsp"));
            assert!(String::from_utf8_lossy(&got[0].data).contains("commands=syslog"));
            assert_eq!(got[1].status(), (true, "200 OK".into()));
            assert_eq!(got[2].status(), (false, "500 out of space".into()));
            assert_eq!((got[3].txnr, got[3].command.as_str()), (0, "serverclose"));
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_hang() {
        for bad in [
            &b"HTTP/1.1 400 Bad Request\r\n"[..],
            b"1 rsp 3 200X",
            b"x rsp 0\n",
            b"1 r-p 0\n",
            b"1 rsp 999999999 ",
            b"111111111111111111111111111111111111111111111111111111111",
        ] {
            let mut r = Reader::default();
            r.feed(bad);
            assert!(
                r.next_frame().is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
