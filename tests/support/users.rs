//! Running clients as other users: `setpriv` to a uid, which needs root
//! (see [`super::root_or_skip`]).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use super::{as_user, Daemon};

/// A uid no account uses (`nobody`'s), for a reader that is not root.
pub const NOBODY: u32 = 65534;

/// `setpriv` running as `uid` (and group `uid`) with no supplementary
/// groups.
pub fn as_uid(uid: u32) -> Command {
    as_user(uid, uid)
}

/// Let every user reach the sockets in the daemon's directory (the socket
/// modes still decide who may connect).
pub fn open_dir(d: &Daemon) {
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
}
