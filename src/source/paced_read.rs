//! One turn of reading an intake fd: as much as it has, up to the turn's
//! budget of bytes and as far as its rate's tokens allow, handing each
//! complete line on as it is read.

use std::fs::File;
use std::io::{self, Read};
use std::time::Instant;

use super::throttle::{Rate, Throttle};
use crate::parse::lines::{Line, LineSplitter};
use crate::record::now_ns;

/// How one turn of reading an fd ended.
pub(super) enum Step {
    /// `budget` bytes were read: more next turn.
    Budget,
    /// Nothing more to read now.
    WouldBlock,
    /// Its rate's tokens are spent: pause it.
    Spent,
    /// Its end, or a read error: close it.
    End(io::Result<()>),
}

/// Read from `file` into `buf` and hand each line to `on_line` (with the
/// time it was read), until the fd would block, ends, reaches `budget` or
/// spends its tokens. Returns how it stopped, and the bytes and lines read.
pub(super) fn read_some(
    file: &mut File,
    lines: &mut LineSplitter,
    throttle: &mut Throttle,
    (buf, budget): (&mut [u8], usize),
    rate: Rate,
    mut on_line: impl FnMut(Line<'_>, i64),
) -> (Step, usize, u64) {
    let (mut read, mut count) = (0, 0u64);
    loop {
        let allowed = throttle.allowance(rate, Instant::now(), budget - read);
        if allowed == 0 {
            return (Step::Spent, read, count);
        }
        match file.read(&mut buf[..allowed]) {
            Ok(0) => return (Step::End(Ok(())), read, count),
            Ok(n) => {
                let now = now_ns();
                let mut emitted = 0;
                lines.feed(&buf[..n], |line| {
                    emitted += 1;
                    on_line(line, now)
                });
                throttle.spend(emitted, n);
                read += n;
                count += emitted;
                if read >= budget {
                    return (Step::Budget, read, count);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return (Step::WouldBlock, read, count)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Step::End(Err(e)), read, count),
        }
    }
}
