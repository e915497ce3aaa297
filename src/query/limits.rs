//! How many query connections may be open at once, and whose: a limit in
//! all and one per uid for readers restricted to their own entries, with a
//! quarter of the total kept for root, ringlogd's user and `--query-group`,
//! so that no user who can merely connect can use up the daemon's fds and
//! lock out root's `logread` or the fd intake. Refusals are counted per uid.

use std::collections::{BTreeMap, HashMap};

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use serde_json::{json, Value};

/// Fds kept for everything beside the intake, TCP and query connections
/// (listeners, the ring's memfd, routes, the spare fd, files).
const OTHER_FDS: u64 = 64;
/// The fewest query connections the fd limit is allowed to leave.
const MIN_CLIENTS: usize = 8;
/// At most this many uids are named in the refusal counts; the rest are
/// counted together under `other`, so the stats stay small.
const MAX_UID_LABELS: usize = 32;

/// The limits `--query-max-clients` and `--query-max-clients-per-uid` set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientLimits {
    pub total: usize,
    pub per_uid: usize,
    /// `total` was lowered to what the fd limit leaves.
    pub fd_bound: bool,
}

impl ClientLimits {
    /// The most connections readers restricted to their own entries may
    /// hold together: the rest is kept for the readers who see everything.
    fn restricted_total(&self) -> usize {
        (self.total - self.total / 4).max(1)
    }
}

/// Make room for `wanted` query connections under RLIMIT_NOFILE beside
/// `beside` other fds (intake and TCP), raising the soft limit up to the
/// hard one if needed. Returns the limits that fit, and a warning when they
/// had to be lowered.
pub fn fit_fd_limit(wanted: ClientLimits, beside: usize) -> (ClientLimits, Option<String>) {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return (wanted, None);
    };
    let others = (beside as u64).saturating_add(OTHER_FDS);
    let want = others.saturating_add(wanted.total as u64);
    let mut limit = soft;
    if soft < want && setrlimit(Resource::RLIMIT_NOFILE, want.min(hard), hard).is_ok() {
        limit = want.min(hard);
    }
    let fit = usize::try_from(limit.saturating_sub(others))
        .unwrap_or(usize::MAX)
        .max(MIN_CLIENTS);
    if fit >= wanted.total {
        return (wanted, None);
    }
    let fitted = ClientLimits {
        total: fit,
        per_uid: wanted.per_uid.min(fit),
        fd_bound: true,
    };
    let why = format!(
        "--query-max-clients {} is more than the fd limit ({limit}) leaves beside \
         --max-fds and --tcp-max-conns: at most {fit} query connections will be open at once",
        wanted.total
    );
    (fitted, Some(why))
}

/// The query connections open now, and those refused.
#[derive(Debug)]
pub struct Tally {
    limits: ClientLimits,
    open: usize,
    restricted: usize,
    per_uid: HashMap<u32, usize>,
    refused: u64,
    refused_by_uid: BTreeMap<u32, u64>,
    refused_other: u64,
}

impl Tally {
    pub fn new(limits: ClientLimits) -> Tally {
        Tally {
            limits,
            open: 0,
            restricted: 0,
            per_uid: HashMap::new(),
            refused: 0,
            refused_by_uid: BTreeMap::new(),
            refused_other: 0,
        }
    }

    /// Count a new connection in, or say why it is refused (and count
    /// that). `only_uid` is the connection's restriction: `None` for a
    /// reader of everything.
    pub fn admit(&mut self, only_uid: Option<u32>) -> Result<(), String> {
        let why = match only_uid {
            _ if self.open >= self.limits.total && self.limits.fd_bound => Some(format!(
                "ringlogd has no file descriptors to spare for more query connections \
                 ({} are open, all that the fd limit leaves): try again",
                self.open
            )),
            _ if self.open >= self.limits.total => Some(format!(
                "{} query connections are open, the most --query-max-clients allows",
                self.open
            )),
            Some(uid) if self.per_uid.get(&uid).copied().unwrap_or(0) >= self.limits.per_uid => {
                Some(format!(
                    "uid {uid} holds {} query connections, the most --query-max-clients-per-uid allows",
                    self.limits.per_uid
                ))
            }
            Some(_) if self.restricted >= self.limits.restricted_total() => Some(format!(
                "readers of their own entries hold {} query connections, the most they may \
                 (the rest of --query-max-clients is kept for root and --query-group)",
                self.restricted
            )),
            _ => None,
        };
        if let Some(why) = why {
            self.count_refusal(only_uid);
            return Err(why);
        }
        self.open += 1;
        if let Some(uid) = only_uid {
            self.restricted += 1;
            *self.per_uid.entry(uid).or_default() += 1;
        }
        Ok(())
    }

    /// A connection counted in by [`Tally::admit`] is closed.
    pub fn release(&mut self, only_uid: Option<u32>) {
        self.open -= 1;
        if let Some(uid) = only_uid {
            self.restricted -= 1;
            if let Some(n) = self.per_uid.get_mut(&uid) {
                *n -= 1;
                if *n == 0 {
                    self.per_uid.remove(&uid);
                }
            }
        }
    }

    fn count_refusal(&mut self, only_uid: Option<u32>) {
        self.refused += 1;
        // Readers of everything are root, this user or the group: counted
        // in the total only.
        let Some(uid) = only_uid else {
            return;
        };
        if let Some(n) = self.refused_by_uid.get_mut(&uid) {
            *n += 1;
        } else if self.refused_by_uid.len() < MAX_UID_LABELS {
            self.refused_by_uid.insert(uid, 1);
        } else {
            self.refused_other += 1;
        }
    }

    /// Connections refused for the limits, in all.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Refusals per uid, as the stats show them: a reader restricted to
    /// `only_uid` sees only its own.
    pub fn refused_by_uid_json(&self, only_uid: Option<u32>) -> Value {
        let mut m = serde_json::Map::new();
        for (uid, n) in &self.refused_by_uid {
            if only_uid.is_none_or(|me| me == *uid) {
                m.insert(uid.to_string(), json!(n));
            }
        }
        if only_uid.is_none() && self.refused_other > 0 {
            m.insert("other".into(), json!(self.refused_other));
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restricted_uid_is_held_to_its_share_and_root_keeps_room() {
        let mut t = Tally::new(ClientLimits {
            total: 8,
            per_uid: 4,
            fd_bound: false,
        });
        for _ in 0..4 {
            t.admit(Some(1000)).unwrap();
        }
        let why = t.admit(Some(1000)).unwrap_err();
        assert!(why.contains("uid 1000"), "{why}");
        // Restricted readers together stop at 6 of 8.
        t.admit(Some(1001)).unwrap();
        t.admit(Some(1001)).unwrap();
        assert!(t.admit(Some(1002)).unwrap_err().contains("kept for root"));
        // Root has the rest, then no more.
        t.admit(None).unwrap();
        t.admit(None).unwrap();
        assert!(t.admit(None).unwrap_err().contains("--query-max-clients"));
        assert_eq!(t.refused(), 3);
        assert_eq!(t.refused_by_uid_json(None), json!({"1000": 1, "1002": 1}));
        assert_eq!(t.refused_by_uid_json(Some(1002)), json!({"1002": 1}));
        // A closed connection makes room again.
        t.release(Some(1000));
        t.release(None);
        t.admit(Some(1000)).unwrap();
    }

    #[test]
    fn refusals_name_a_bounded_number_of_uids() {
        let mut t = Tally::new(ClientLimits {
            total: 1,
            per_uid: 1,
            fd_bound: false,
        });
        t.admit(None).unwrap();
        for uid in 0..100 {
            let _ = t.admit(Some(uid));
        }
        let by_uid = t.refused_by_uid_json(None);
        assert_eq!(by_uid.as_object().unwrap().len(), MAX_UID_LABELS + 1);
        assert_eq!(by_uid["other"], 100 - MAX_UID_LABELS as u64);
    }
}
