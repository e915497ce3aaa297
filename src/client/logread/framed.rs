//! Printing a framed answer ([`crate::view::frames`]): each frame's bytes
//! are the entries already in the format asked for, written out whole, and
//! its head says how far a follower got. A frame cut off by the connection
//! ending is not printed: a follower reads it again on resuming.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;

use super::{quiet_on_broken_pipe, Ended, Printer};
use crate::view::format::Format;
use crate::view::frames;

impl<W: Write> Printer<W> {
    /// Print the frames of an answer whose opening line said they are in
    /// `sent`.
    pub(super) fn print_frames(
        &mut self,
        reader: &mut BufReader<UnixStream>,
        sent: Format,
    ) -> Ended {
        if sent != self.format && sent != Format::Json {
            let _ = self.out.flush();
            eprintln!(
                "logread: the daemon answered in {} for -o {}",
                sent.name(),
                self.format.name()
            );
            return Ended::Exit(1);
        }
        let mut body = Vec::new();
        loop {
            let last_seq = match read_frame(reader, &mut body) {
                Ok(Frame::Whole(seq)) => seq,
                Ok(Frame::End) | Ok(Frame::Cut) if self.following => return Ended::Closed(None),
                Ok(Frame::End) => return Ended::Exit(self.finish()),
                Ok(Frame::Cut) => {
                    // A dump cut off: what came of it, as of a cut line.
                    let printed = if sent == self.format {
                        self.out.write_all(&body)
                    } else {
                        self.render_lines(&body)
                    };
                    return Ended::Exit(
                        printed.map_or_else(quiet_on_broken_pipe, |()| self.finish()),
                    );
                }
                Err(e) if self.following => return Ended::Closed(Some(e.to_string())),
                Err(e) => {
                    let _ = self.out.flush();
                    eprintln!("logread: reading the answer: {e}");
                    return Ended::Exit(1);
                }
            };
            let printed = if sent == self.format {
                self.out.write_all(&body)
            } else {
                self.render_lines(&body)
            };
            if let Some(seq) = last_seq {
                self.progress.last_seq = Some(seq);
            }
            if let Err(ended) = self.passed(printed, reader.buffer().is_empty()) {
                return ended;
            }
        }
    }

    /// Print a frame of JSON lines in the format asked for.
    fn render_lines(&mut self, body: &[u8]) -> io::Result<()> {
        for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            self.render_line(&String::from_utf8_lossy(line))?;
        }
        Ok(())
    }
}

/// What came of reading a frame.
enum Frame {
    /// A whole frame, covering entries up to this sequence number, if any.
    Whole(Option<u64>),
    /// A frame the answer's end cut off.
    Cut,
    /// The answer's end, between frames.
    End,
}

/// Read the next frame into `body`.
fn read_frame(reader: &mut BufReader<UnixStream>, body: &mut Vec<u8>) -> io::Result<Frame> {
    let mut head = String::new();
    let n = reader
        .by_ref()
        .take(frames::MAX_HEAD as u64)
        .read_line(&mut head)?;
    body.clear();
    if n == 0 {
        return Ok(Frame::End);
    }
    if !head.ends_with('\n') && n < frames::MAX_HEAD {
        return Ok(Frame::Cut);
    }
    let (len, last_seq) = frames::head(&head).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a frame head: {:?}", head.trim_end()),
        )
    })?;
    let got = reader.by_ref().take(len as u64).read_to_end(body)?;
    Ok(if got == len {
        Frame::Whole(last_seq)
    } else {
        Frame::Cut
    })
}
