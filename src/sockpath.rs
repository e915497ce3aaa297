//! Claiming a filesystem path for a unix socket, and giving it back.
//!
//! A daemon that starts where another one already listens (journald on
//! `/dev/log`, a second ringlogd) must refuse rather than steal the path; a
//! socket file left by a daemon that died is replaced; anything that is not
//! a socket is never removed.
//!
//! The daemon often runs as root and may be pointed at a directory other
//! users can write to. So that nobody can trick it with a symlink or by
//! swapping a file between its checks and its actions:
//! - the socket goes into a directory only root and this user can change:
//!   the directory and every one above it (symlinks resolved) belong to one
//!   of them, and any that others may write to has the sticky bit (as `/tmp`
//!   does), so others cannot rename or remove what is in it;
//! - every symlink on the way there belongs to root or this user and lies
//!   in such a directory: another user's symlink (say `/tmp/X` in a sticky
//!   `/tmp`) is never followed, as its owner could point it anywhere;
//! - the socket is bound at that resolved path, so a symlink in the path
//!   given cannot be re-pointed in between;
//! - a path is only ever inspected with `lstat` and removed with `unlink`,
//!   which never follow a symlink, and only when it is a socket;
//! - the mode is set by the umask at `bind()` itself, and changed afterwards
//!   only once the path is seen to be a socket this user owns.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{umask, Mode};
use nix::unistd::{geteuid, Gid};

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
        let shown = path;
        let path = &resolve(path)?;
        let meta = fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", shown.display()))?;
        if !meta.file_type().is_socket() {
            return Err(format!("{} is no longer a socket", shown.display()));
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
/// Returns where to bind: `path` with its directory resolved, once that
/// directory is known to be safe (see the module's notes).
pub fn prepare(path: &Path, kind: SocketKind) -> Result<PathBuf, String> {
    let at = resolve(path)?;
    let meta = match fs::symlink_metadata(&at) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(at),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if !meta.file_type().is_socket() {
        let what = if meta.file_type().is_symlink() {
            "a symlink"
        } else {
            "not a socket"
        };
        return Err(format!(
            "{} exists and is {what}; not removing it",
            path.display()
        ));
    }
    if is_live(&at, kind) {
        return Err(format!(
            "{} is in use: another daemon is listening on it",
            path.display()
        ));
    }
    // unlink() removes the name itself, never what a symlink points at.
    fs::remove_file(&at)
        .map_err(|e| format!("cannot remove stale socket {}: {e}", path.display()))?;
    Ok(at)
}

/// The directory `path` is in (`.` for a bare name) and its file name.
pub(crate) fn dir_and_name(path: &Path) -> Result<(&Path, &std::ffi::OsStr), String> {
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Ok((dir, name))
}

/// `path` with its directory created if missing (mode 0755) and resolved
/// to the real one, refused unless only root and this user can change it.
fn resolve(path: &Path) -> Result<PathBuf, String> {
    let (dir, name) = dir_and_name(path)?;
    // Check what already exists before creating anything below it.
    let existing = dir
        .ancestors()
        .find(|d| d.exists())
        .unwrap_or(Path::new("."));
    check_trusted(existing)?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let real = check_trusted(dir)?;
    Ok(real.join(name))
}

/// Resolve `dir` and check it and every directory above it: each must
/// belong to root or to this user, and one that its group or others may
/// write to must be sticky. Returns the resolved directory.
pub(crate) fn check_trusted(dir: &Path) -> Result<PathBuf, String> {
    let real = follow_trusted_links(dir)?;
    check_ancestors(&real)?;
    Ok(real)
}

/// `dir` with every symlink in it resolved, as the kernel would resolve
/// it, refusing a symlink that belongs to anyone but root or this user (its
/// owner could re-point it at any time, even in a sticky directory) or that
/// sits in a directory [`check_ancestors`] refuses (whoever may change
/// that directory could replace the symlink).
fn follow_trusted_links(dir: &Path) -> Result<PathBuf, String> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    /// As the kernel's limit on symlinks in one path (ELOOP).
    const MAX_LINKS: usize = 40;
    let fail = |e: io::Error| format!("{}: {e}", dir.display());
    let parts =
        |p: &Path| -> Vec<OsString> { p.components().map(|c| c.as_os_str().to_owned()).collect() };
    let mut real = if dir.is_absolute() {
        PathBuf::from("/")
    } else {
        std::env::current_dir().map_err(fail)?
    };
    let mut todo: VecDeque<OsString> = parts(dir).into();
    let mut links = 0;
    while let Some(part) = todo.pop_front() {
        // Components as Path gives them: "/" (the root), "..", or a name
        // ("." only ever leads a relative path).
        if part == "/" {
            real = PathBuf::from("/");
            continue;
        }
        if part == "." {
            continue;
        }
        if part == ".." {
            real.pop();
            continue;
        }
        let next = real.join(&part);
        let meta = fs::symlink_metadata(&next).map_err(fail)?;
        if !meta.file_type().is_symlink() {
            real = next;
            continue;
        }
        let owner = meta.uid();
        if owner != 0 && owner != geteuid().as_raw() {
            return Err(format!(
                "refusing to follow {}: a symlink that belongs to uid {owner}, not to root or this user, so it could be re-pointed",
                next.display()
            ));
        }
        check_ancestors(&real)?;
        links += 1;
        if links > MAX_LINKS {
            return Err(fail(io::Error::from_raw_os_error(nix::libc::ELOOP)));
        }
        let target = fs::read_link(&next).map_err(fail)?;
        for p in parts(&target).into_iter().rev() {
            todo.push_front(p);
        }
    }
    Ok(real)
}

/// Check the resolved directory `real` and every one above it: each must
/// belong to root or to this user, and one that its group or others may
/// write to must be sticky.
fn check_ancestors(real: &Path) -> Result<(), String> {
    let me = geteuid().as_raw();
    for d in real.ancestors() {
        let meta = fs::symlink_metadata(d).map_err(|e| format!("{}: {e}", d.display()))?;
        if !meta.is_dir() {
            return Err(format!("{} is not a directory", d.display()));
        }
        let mode = meta.mode();
        let owner_ok = meta.uid() == 0 || meta.uid() == me;
        let writable_by_others = mode & 0o022 != 0 && mode & 0o1000 == 0;
        if !owner_ok || writable_by_others {
            let why = if owner_ok {
                format!(
                    "others may write to it (mode {:04o}) and it is not sticky",
                    mode & 0o7777
                )
            } else {
                format!("it belongs to uid {}, not to root or this user", meta.uid())
            };
            return Err(format!(
                "refusing to create a file under {}: {why}, so what is created there could be swapped for a symlink",
                d.display()
            ));
        }
    }
    Ok(())
}

fn is_live(path: &Path, kind: SocketKind) -> bool {
    match kind {
        SocketKind::Datagram => std::os::unix::net::UnixDatagram::unbound()
            .and_then(|s| s.connect(path))
            .is_ok(),
        SocketKind::Stream => std::os::unix::net::UnixStream::connect(path).is_ok(),
    }
}

/// Run `bind` at `at` (from [`prepare`]) with a umask that keeps the new
/// socket file from ever being more open than `mode`, then give it to
/// `group` if asked and set `mode` exactly. `shown` is the path as the user
/// gave it, for messages.
pub fn bind_with_mode<T>(
    at: &Path,
    shown: &Path,
    mode: u32,
    group: Option<Gid>,
    bind: impl FnOnce(&Path) -> io::Result<T>,
) -> Result<(T, BoundPath), String> {
    let old = umask(Mode::from_bits_truncate(!mode & 0o777));
    let bound = bind(at);
    umask(old);
    let sock = bound.map_err(|e| format!("cannot bind {}: {e}", shown.display()))?;
    let meta = fs::symlink_metadata(at).map_err(|e| format!("{}: {e}", shown.display()))?;
    if !meta.file_type().is_socket() || meta.uid() != geteuid().as_raw() {
        // Swapped between bind() and here: leave it, touch nothing.
        return Err(format!(
            "{} changed right after it was bound; not touching it",
            shown.display()
        ));
    }
    let guard = BoundPath {
        path: at.to_owned(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    if let Some(gid) = group {
        // lchown: never follows a symlink.
        std::os::unix::fs::lchown(at, None, Some(gid.as_raw()))
            .map_err(|e| format!("cannot give {} to group {gid}: {e}", shown.display()))?;
    }
    // The directory is one nobody else can change (prepare checked it) and
    // the name is our socket: chmod by path reaches that socket.
    fs::set_permissions(at, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot chmod {}: {e}", shown.display()))?;
    Ok((sock, guard))
}

/// One listening socket, and the path to remove when the daemon stops.
#[derive(Debug)]
pub struct Listener<S> {
    pub socket: S,
    /// The path this daemon bound (or adopted from its daemonizing parent);
    /// `None` for an inherited socket.
    pub path: Option<BoundPath>,
}
