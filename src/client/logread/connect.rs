//! Reaching the query socket, and saying in one line why not: a daemon
//! that is not there and a socket this user may not use need different
//! remedies.

use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::unistd::{Gid, Group, Uid, User};

/// Why the daemon could not be reached.
pub(super) enum Unreachable {
    /// Nothing serves the socket now (no file, or nobody listening): a
    /// follower waits for the daemon to come back.
    Gone(String),
    /// It serves, but not to this user, or the path is wrong in a way
    /// waiting will not fix.
    Refused(String),
}

impl Unreachable {
    pub fn message(&self) -> &str {
        match self {
            Unreachable::Gone(m) | Unreachable::Refused(m) => m,
        }
    }
}

/// Connect and send `request`.
pub(super) fn open(path: &Path, request: &[u8]) -> Result<UnixStream, Unreachable> {
    let mut conn = UnixStream::connect(path).map_err(|e| explain(path, &e))?;
    conn.write_all(request)
        .map_err(|e| Unreachable::Gone(format!("{}: {e}", path.display())))?;
    Ok(conn)
}

fn explain(path: &Path, e: &io::Error) -> Unreachable {
    let shown = path.display();
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => Unreachable::Gone(format!(
            "cannot connect to {shown}: {e} (is ringlogd running?)"
        )),
        io::ErrorKind::PermissionDenied => Unreachable::Refused(format!(
            "cannot connect to {shown}: permission denied: {}",
            not_permitted(path)
        )),
        _ => Unreachable::Refused(format!("cannot connect to {shown}: {e}")),
    }
}

/// What keeps this user out, from the socket's real owner and mode, and
/// what to do about it.
fn not_permitted(path: &Path) -> String {
    let Ok(meta) = std::fs::metadata(path) else {
        return "a directory on the way to it is closed to you; \
                run as root or as a user who may enter it"
            .to_owned();
    };
    let mode = meta.mode() & 0o777;
    let owner = User::from_uid(Uid::from_raw(meta.uid()))
        .ok()
        .flatten()
        .map_or_else(|| format!("uid {}", meta.uid()), |u| u.name);
    if mode & 0o077 == 0 {
        let only = if meta.uid() == 0 {
            "root-only".to_owned()
        } else {
            format!("only for {owner}")
        };
        return format!(
            "the query socket is {only} (mode {mode:04o}); \
             run as {} or start ringlogd with --query-group GROUP",
            if meta.uid() == 0 { "root" } else { &owner }
        );
    }
    let group = Group::from_gid(Gid::from_raw(meta.gid()))
        .ok()
        .flatten()
        .map_or_else(|| format!("gid {}", meta.gid()), |g| g.name);
    if mode & 0o020 != 0 {
        format!(
            "the query socket is for {owner} and group {group} (mode {mode:04o}); \
             run as root or as a member of {group}"
        )
    } else {
        format!(
            "the query socket (owner {owner}, group {group}, mode {mode:04o}) lets no one \
             else connect; run as root, or start ringlogd with --query-group GROUP \
             (connecting needs write permission)"
        )
    }
}
