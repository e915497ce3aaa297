//! Files ringlogd writes and reads back (the snapshot, its sequence mark,
//! the pid file): written whole or not at all, never through a symlink,
//! never more open than asked, and only in a directory nobody else can
//! change.
//!
//! The daemon often runs as root and may be pointed at a directory other
//! users can write to (`/tmp`). So:
//! - the directory, and every one above it, is checked as the socket
//!   directories are ([`crate::sockpath::check_trusted`]): owned by root or
//!   this user, and sticky where others may write;
//! - a new version goes to a temporary name of its own in that directory
//!   (`.NAME.tmp.PID.RANDOM`, never the target's name), created with
//!   `O_CREAT|O_EXCL|O_NOFOLLOW`: a symlink or file planted there makes the
//!   create fail instead of writing through it; its mode is set on the open
//!   file, whatever the umask;
//! - it is written, synced, renamed over the target (rename replaces the
//!   name, never what a symlink there points at), and the directory synced:
//!   a crash leaves the old version or the new one, whole;
//! - a temporary file a crash left behind is removed at the next start
//!   ([`remove_stale`]);
//! - reading back ([`read_checked`]) opens with `O_NOFOLLOW` and checks the
//!   open file: a regular file, owned by root or the daemon's user, that no
//!   one else may write to.

use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::unistd::geteuid;

/// Which file a path names, to tell later whether it is still the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The file at `path` itself (a symlink is not followed), if any.
    pub fn of(path: &Path) -> Option<FileId> {
        fs::symlink_metadata(path).ok().map(|m| FileId {
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}

/// The directory `path` is in, resolved and checked, and its file name.
fn trusted_place(path: &Path) -> Result<(PathBuf, &std::ffi::OsStr), String> {
    let (dir, name) = crate::sockpath::dir_and_name(path)?;
    Ok((crate::sockpath::check_trusted(dir)?, name))
}

/// The prefix of every temporary name for `name`: `.NAME.tmp.`.
fn temp_prefix(name: &std::ffi::OsStr) -> String {
    format!(".{}.tmp.", name.to_string_lossy())
}

/// A fresh random number: std's hasher keys come from the OS and differ
/// for each `RandomState`.
fn random() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Create a new temporary file next to `name` in `dir`, mode `mode`.
fn create_temp(dir: &Path, name: &std::ffi::OsStr, mode: u32) -> io::Result<(PathBuf, File)> {
    let prefix = temp_prefix(name);
    let mut last = None;
    for _ in 0..16 {
        let tmp = dir.join(format!("{prefix}{}.{:016x}", std::process::id(), random()));
        if tmp.file_name() == Some(name) {
            continue;
        }
        let opened = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
            .open(&tmp);
        match opened {
            Ok(f) => return Ok((tmp, f)),
            // Taken (planted, or a collision): another name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// Replace `path` with a file holding `bytes`, mode `mode` exactly, as
/// the module's notes say. Returns which file it now is. Errors name the
/// path and the step that failed.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<FileId, String> {
    let shown = path.display();
    let (dir, name) = trusted_place(path)?;
    let (tmp, mut f) = create_temp(&dir, name, mode)
        .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
    let written = (|| -> io::Result<FileId> {
        // The umask narrowed the mode at create: set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        let meta = f.metadata()?;
        fs::rename(&tmp, dir.join(name))?;
        sync_dir(&dir)?;
        Ok(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    })();
    written.map_err(|e| {
        // unlink() removes the name, never what a symlink points at.
        let _ = fs::remove_file(&tmp);
        format!("cannot write {shown}: {e}")
    })
}

/// Make a rename in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    let d = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_DIRECTORY | OFlag::O_CLOEXEC).bits())
        .open(dir)?;
    match d.sync_all() {
        // Some filesystems cannot sync a directory: nothing more to do.
        Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => Ok(()),
        r => r,
    }
}

/// Remove the temporary files a write to `path` left when the process
/// died in it: names `.NAME.tmp.*` next to `path` that are regular files
/// of this user. Anything else (another user's file, a symlink) is not
/// ours and stays; it is never opened either. Returns what was removed.
pub fn remove_stale(path: &Path) -> Result<Vec<PathBuf>, String> {
    let (dir, name) = trusted_place(path)?;
    let prefix = temp_prefix(name);
    let me = geteuid().as_raw();
    let entries = fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let p = entry.path();
        let ours = fs::symlink_metadata(&p).is_ok_and(|m| m.is_file() && m.uid() == me);
        if ours && fs::remove_file(&p).is_ok() {
            removed.push(p);
        }
    }
    Ok(removed)
}

/// What [`read_checked`] read.
#[derive(Debug)]
pub struct Checked {
    pub bytes: Vec<u8>,
    /// Something the log should say about the file: it was readable by
    /// others and has been made private.
    pub warning: Option<String>,
}

/// Read the file at `path` that ringlogd wrote: `Ok(None)` when there is
/// none. Refused: a symlink, anything but a regular file, a file owned by
/// anyone but `owners`, or one others may write to (anyone could have put
/// what it says there). A file others may read is read, and made private
/// (0600) at once, with a warning: refusing it would lose its entries,
/// and what it showed is out already.
pub fn read_checked(path: &Path, owners: &[u32]) -> Result<Option<Checked>, String> {
    let shown = path.display();
    let opened = OpenOptions::new()
        .read(true)
        // O_NONBLOCK: a FIFO planted there must not hang the start.
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(path);
    let mut f = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(format!("{shown} is a symlink; not following it"))
        }
        Err(e) => return Err(format!("cannot open {shown}: {e}")),
    };
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot stat {shown}: {e}"))?;
    let mode = meta.mode() & 0o7777;
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    if !owners.contains(&meta.uid()) {
        return Err(format!(
            "{shown} belongs to uid {}, not to root or ringlogd's user, so anyone could have written it",
            meta.uid()
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "others may write to {shown} (mode {mode:04o}), so anyone could have written it"
        ));
    }
    let mut warning = None;
    if mode & 0o044 != 0 {
        f.set_permissions(fs::Permissions::from_mode(mode & 0o700))
            .map_err(|e| {
                format!("{shown} is readable by others and cannot be made private: {e}")
            })?;
        warning = Some(format!(
            "{shown} was readable by others (mode {mode:04o}); made it private ({:04o})",
            mode & 0o700
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    Ok(Some(Checked { bytes, warning }))
}

/// The uids whose files the daemon trusts: root, itself, and the user it
/// will run as (`--user`), whose files it wrote in an earlier run.
pub fn owners(run_as: Option<u32>) -> Vec<u32> {
    let mut v = vec![0, geteuid().as_raw()];
    v.extend(run_as);
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn writes_private_whole_files_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        let written = write_atomic(&path, b"one\n", 0o600);
        nix::sys::stat::umask(old);
        let id = written.unwrap();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_eq!(FileId::of(&path), Some(id));
        assert_eq!(fs::read(&path).unwrap(), b"one\n");
        write_atomic(&path, b"two\n", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temp left");
    }

    #[test]
    fn a_planted_symlink_is_replaced_not_followed_and_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"keep").unwrap();
        let path = dir.path().join("x.tmp");
        symlink(&target, &path).unwrap();
        let e = read_checked(&path, &owners(None)).unwrap_err();
        assert!(e.contains("is a symlink"), "{e}");
        write_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        assert!(fs::symlink_metadata(&path).unwrap().is_file());
    }

    #[test]
    fn reading_refuses_files_others_may_write_and_privatizes_readable_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        fs::write(&path, b"data").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        let e = read_checked(&path, &owners(None)).unwrap_err();
        assert!(e.contains("others may write"), "{e}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let c = read_checked(&path, &owners(None)).unwrap().unwrap();
        assert_eq!(c.bytes, b"data");
        assert!(c.warning.unwrap().contains("made it private"));
        let mode = fs::metadata(&path).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        assert!(read_checked(&dir.path().join("none"), &owners(None))
            .unwrap()
            .is_none());
    }

    #[test]
    fn stale_temporary_files_of_this_user_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring.snapshot");
        let stale = dir.path().join(".ring.snapshot.tmp.1.00ff");
        fs::write(&stale, b"half").unwrap();
        let other = dir.path().join(".ring.snapshot.tmp.2.link");
        symlink("/etc/passwd", &other).unwrap();
        let unrelated = dir.path().join("ring.snapshot.tmp");
        fs::write(&unrelated, b"someone's").unwrap();
        assert_eq!(remove_stale(&path).unwrap(), vec![stale.clone()]);
        assert!(!stale.exists());
        assert!(fs::symlink_metadata(&other).is_ok());
        assert!(unrelated.exists());
    }
}
