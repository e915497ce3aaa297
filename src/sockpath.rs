//! Claiming a filesystem path for a unix socket, and giving it back.
//!
//! A daemon that starts where another one already listens (journald on
//! `/dev/log`, a second ringlogd) must refuse rather than steal the path; a
//! socket file left by a daemon that died is replaced; anything that is not
//! a socket is never removed.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{umask, Mode};

/// Which kind of socket a path is for: decides how liveness is probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketKind {
    Datagram,
    Stream,
}

/// A socket path this process bound. Dropping it removes the file, unless
/// something else has replaced it since.
#[derive(Debug)]
pub struct BoundPath {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl BoundPath {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Take over the removal of a socket path that another process bound
    /// for us: the daemonizing parent hands its sockets to the background
    /// daemon, which removes the files when it stops.
    pub fn adopt(path: &Path) -> Result<BoundPath, String> {
        let meta = fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if !meta.file_type().is_socket() {
            return Err(format!("{} is no longer a socket", path.display()));
        }
        Ok(BoundPath {
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

impl Drop for BoundPath {
    fn drop(&mut self) {
        if let Ok(m) = fs::symlink_metadata(&self.path) {
            if m.dev() == self.dev && m.ino() == self.ino {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

/// Make `path` free for a new socket of `kind`: fine if absent, a stale
/// socket is removed, a live one or a non-socket is an error that says so.
pub fn prepare(path: &Path, kind: SocketKind) -> Result<(), String> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            return Ok(());
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if !meta.file_type().is_socket() {
        return Err(format!(
            "{} exists and is not a socket; not removing it",
            path.display()
        ));
    }
    if is_live(path, kind) {
        return Err(format!(
            "{} is in use: another daemon is listening on it",
            path.display()
        ));
    }
    fs::remove_file(path).map_err(|e| format!("cannot remove stale socket {}: {e}", path.display()))
}

fn is_live(path: &Path, kind: SocketKind) -> bool {
    match kind {
        SocketKind::Datagram => std::os::unix::net::UnixDatagram::unbound()
            .and_then(|s| s.connect(path))
            .is_ok(),
        SocketKind::Stream => std::os::unix::net::UnixStream::connect(path).is_ok(),
    }
}

/// Run `bind` with a umask that keeps the new socket file from ever being
/// more open than `mode`, then set `mode` exactly.
pub fn bind_with_mode<T>(
    path: &Path,
    mode: u32,
    bind: impl FnOnce(&Path) -> io::Result<T>,
) -> Result<(T, BoundPath), String> {
    let old = umask(Mode::from_bits_truncate(!mode & 0o777));
    let bound = bind(path);
    umask(old);
    let sock = bound.map_err(|e| format!("cannot bind {}: {e}", path.display()))?;
    let meta = fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let guard = BoundPath {
        path: path.to_owned(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot chmod {}: {e}", path.display()))?;
    Ok((sock, guard))
}
