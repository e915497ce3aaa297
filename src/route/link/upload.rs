//! A journal route's side of [`Route`]: a batch that `fill` formatted
//! becomes one upload, and the receiver's answer settles it (the HTTP
//! exchange itself is [`crate::route::http_upload`]).

use std::time::Instant;

use super::Route;
use crate::route::http_upload::Answer;

impl Route {
    /// Journal routes: what `fill` put in `out` becomes one upload.
    pub(super) fn seal_upload(&mut self, now: Instant) {
        if let Some(u) = self.upload.as_mut().filter(|_| !self.out.is_empty()) {
            let batch = u.seal(&mut self.out, &mut self.marks, now);
            self.unacked.push_back(batch);
        }
    }

    /// Journal routes: the receiver answered the upload in flight.
    pub(super) fn uploaded(&mut self, a: &Answer) -> Result<(), String> {
        let Some(batch) = self.unacked.front().copied() else {
            return Err(format!("an answer ({}) to nothing sent", a.code));
        };
        if !a.accepted() {
            return Err(format!("the receiver answered {}: {}", a.code, a.text));
        }
        if !self.marks.is_empty() {
            return Err(format!(
                "an answer ({}) before the upload was whole",
                a.code
            ));
        }
        self.unacked.pop_front();
        self.counters.acknowledged += batch.entries;
        self.settle(batch.cursor);
        Ok(())
    }
}
