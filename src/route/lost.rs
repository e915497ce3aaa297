//! What a route lost to eviction and has not yet told its receiver: how
//! many entries, and between which sequence numbers, so the one notice
//! the receiver gets says which entries it will never see.

/// Entries the ring evicted before a route delivered them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lost {
    pub count: u64,
    /// The lowest and highest sequence number lost (meaningful when
    /// `count > 0`); fair eviction may have spared some in between.
    pub first: u64,
    pub last: u64,
}

impl Lost {
    /// `n` entries from `first` on.
    pub fn run(first: u64, n: u64) -> Lost {
        Lost {
            count: n,
            first,
            last: first + n.saturating_sub(1),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Add `other` to what is to be told.
    pub fn merge(&mut self, other: Lost) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            *self = other;
            return;
        }
        self.count += other.count;
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
    }

    /// The sequence numbers as the notice names them.
    pub fn seqs(&self) -> String {
        if self.first == self.last {
            format!("seq {}", self.first)
        } else if self.last - self.first + 1 == self.count {
            format!("seq {} to {}", self.first, self.last)
        } else {
            format!("some of seq {} to {}", self.first, self.last)
        }
    }

    /// The message the receiver gets, its first word the count.
    pub fn notice(&self, route: &str) -> String {
        format!(
            "ringlogd: {} entries were lost ({}): the ring overwrote them before route {route} \
             delivered them",
            self.count,
            self.seqs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_into_one_notice_naming_the_seqs() {
        let mut l = Lost::default();
        l.merge(Lost::run(100, 50));
        assert_eq!(l.seqs(), "seq 100 to 149");
        l.merge(Lost::run(150, 10));
        assert_eq!((l.count, l.first, l.last), (60, 100, 159));
        l.merge(Lost::run(200, 1));
        assert_eq!(l.seqs(), "some of seq 100 to 200");
        assert_eq!(Lost::run(7, 1).seqs(), "seq 7");
        assert!(Lost::run(7, 1)
            .notice("tcp://h:1")
            .starts_with("ringlogd: 1 entries were lost (seq 7): "));
    }
}
