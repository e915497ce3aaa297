//! One file descriptor held in reserve for when the process runs out.
//!
//! A listening socket whose `accept()` fails with EMFILE keeps the
//! connection in the kernel's queue, where the client waits for an answer
//! that never comes, and an edge-triggered poll does not report the queue
//! again until another connection arrives. With one fd kept back, the
//! daemon can let it go, accept the waiting connection, tell the client
//! (or just close it), count it, and take the fd back.

use std::fs::File;
use std::io;

/// A spare fd (`/dev/null`, read-only).
#[derive(Debug)]
pub struct SpareFd(Option<File>);

impl SpareFd {
    /// Open the spare now, while fds are plentiful.
    pub fn new() -> SpareFd {
        SpareFd(File::open("/dev/null").ok())
    }

    /// Whether `e` says the process or the system has no fd to give.
    pub fn is_exhaustion(e: &io::Error) -> bool {
        matches!(
            e.raw_os_error(),
            Some(nix::libc::EMFILE) | Some(nix::libc::ENFILE)
        )
    }

    /// Run `f` with the spare fd freed for it, then take one back: `f`
    /// must close whatever it opened, or the spare cannot be taken back.
    /// `None` when there is no spare to free (it could not be taken back
    /// last time: everything is still in use).
    pub fn lend<T>(&mut self, f: impl FnOnce() -> T) -> Option<T> {
        if !self.release() {
            return None;
        }
        let out = f();
        self.restore();
        Some(out)
    }

    /// Free the spare fd for something that keeps it a while (a
    /// connection answered before it is closed); false when there is none.
    /// [`SpareFd::restore`] takes it back once that is closed.
    pub fn release(&mut self) -> bool {
        self.0.take().is_some()
    }

    /// Take the spare fd back, if there is none now.
    pub fn restore(&mut self) {
        if self.0.is_none() {
            self.0 = File::open("/dev/null").ok();
        }
    }
}

impl Default for SpareFd {
    fn default() -> Self {
        SpareFd::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lends_once_and_takes_the_fd_back() {
        let mut s = SpareFd::new();
        assert_eq!(s.lend(|| 7), Some(7));
        assert_eq!(s.lend(|| 8), Some(8), "the spare was taken back");
        s.0 = None;
        assert_eq!(s.lend(|| 9), None);
        let emfile = io::Error::from_raw_os_error(nix::libc::EMFILE);
        assert!(SpareFd::is_exhaustion(&emfile));
        assert!(!SpareFd::is_exhaustion(&io::Error::from(
            io::ErrorKind::WouldBlock
        )));
    }
}
