//! Running clients as other users: `setpriv` to a uid, which needs root.
//! Under CI (which runs as root) a missing requirement is a failure;
//! elsewhere the test is skipped, saying why.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use super::{require, Daemon};

/// A uid no account uses (`nobody`'s), for a reader that is not root.
pub const NOBODY: u32 = 65534;

/// Whether this test may run as root; fails under CI when it cannot.
pub fn root_or_skip(what: &str) -> bool {
    if nix::unistd::getuid().is_root() {
        return true;
    }
    let why = format!("{what} needs root (setpriv to other users)");
    if std::env::var_os("CI").is_some() {
        panic!("{why}; CI must run the tests as root");
    }
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
    false
}

/// `setpriv` running as `uid` (and group `uid`) with no supplementary
/// groups.
pub fn as_uid(uid: u32) -> Command {
    let mut c = Command::new(require("setpriv"));
    c.args(["--reuid", &uid.to_string(), "--regid", &uid.to_string()])
        .arg("--clear-groups");
    c
}

/// Let every user reach the sockets in the daemon's directory (the socket
/// modes still decide who may connect).
pub fn open_dir(d: &Daemon) {
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `tool` from the system's directories, which every user may run (the
/// PATH of the test may lead to a copy under root's home).
pub fn system_tool(tool: &str) -> std::path::PathBuf {
    ["/usr/local/bin", "/usr/bin", "/bin"]
        .iter()
        .map(|dir| std::path::Path::new(dir).join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{tool} is not installed in /usr/local/bin, /usr/bin or /bin"))
}
