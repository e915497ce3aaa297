//! `--user`, `--group` and `--pidfile`: binding every socket as root, then
//! running as an ordinary user for good.
//!
//! Names are looked up in `/etc/passwd` and `/etc/group` directly rather
//! than through the C library's NSS: the static binary cannot load NSS
//! modules, and a system daemon's account is a local one. A number is taken
//! as a uid or gid as it is.

use std::fs;
use std::path::{Path, PathBuf};

use nix::unistd::{getegid, geteuid, setgroups, setresgid, setresuid, Gid, Uid};

use crate::private_file::FileId;

/// Who the daemon becomes once its sockets are bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// `None`: keep the uid (only --group was given).
    pub uid: Option<Uid>,
    pub gid: Gid,
    /// For messages: `nobody (65534:65534)`.
    pub label: String,
}

impl Identity {
    /// Resolve `--user` and `--group` (`None` when neither is given).
    /// Errors name the flag and what was not found.
    pub fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Option<Identity>, String> {
        Identity::resolve_in(
            user,
            group,
            Path::new("/etc/passwd"),
            Path::new("/etc/group"),
        )
    }

    fn resolve_in(
        user: Option<&str>,
        group: Option<&str>,
        passwd: &Path,
        groups: &Path,
    ) -> Result<Option<Identity>, String> {
        let account = user.map(|u| lookup_user(u, passwd)).transpose()?;
        let gid = match group {
            Some(g) => Some(lookup_group(g, groups)?),
            None => account.map(|(_, gid)| gid),
        };
        let Some(gid) = gid else { return Ok(None) };
        let uid = account.map(|(uid, _)| uid);
        let label = format!(
            "{} ({}:{gid})",
            user.or(group).unwrap_or_default(),
            uid.map_or("-".to_owned(), |u| u.to_string())
        );
        Ok(Some(Identity { uid, gid, label }))
    }

    /// Whether this process may become `self`: it is root, or already is
    /// that user and group.
    pub fn check_can_switch(&self) -> Result<(), String> {
        let already = self.uid.is_none_or(|u| u == geteuid()) && self.gid == getegid();
        if geteuid().is_root() || already {
            return Ok(());
        }
        Err(format!(
            "cannot switch to {}: ringlogd must start as root to change user or group",
            self.label
        ))
    }

    /// Become this user and group for good: real, effective and saved ids
    /// all change and supplementary groups are dropped, so root cannot be
    /// regained (and a uid change clears every capability).
    pub fn switch(&self) -> Result<(), String> {
        let fail =
            |what: &str, e: nix::Error| format!("cannot switch to {}: {what}: {e}", self.label);
        if geteuid().is_root() {
            setgroups(&[self.gid]).map_err(|e| fail("setgroups", e))?;
        }
        setresgid(self.gid, self.gid, self.gid).map_err(|e| fail("setresgid", e))?;
        if let Some(uid) = self.uid {
            setresuid(uid, uid, uid).map_err(|e| fail("setresuid", e))?;
            if !uid.is_root()
                && setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).is_ok()
            {
                return Err(format!(
                    "cannot switch to {}: root could be regained",
                    self.label
                ));
            }
        }
        Ok(())
    }
}

/// (uid, primary gid) of `user`, a name in `passwd` or a number.
fn lookup_user(user: &str, passwd: &Path) -> Result<(Uid, Gid), String> {
    let text = fs::read_to_string(passwd)
        .map_err(|e| format!("--user {user}: cannot read {}: {e}", passwd.display()))?;
    let by_name = text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f[0] == user).then(|| {
            let num = |i: usize| f.get(i).and_then(|s| s.parse::<u32>().ok());
            (num(2), num(3))
        })
    });
    match by_name {
        Some((Some(uid), Some(gid))) => Ok((Uid::from_raw(uid), Gid::from_raw(gid))),
        Some(_) => Err(format!(
            "--user {user}: its line in {} is malformed",
            passwd.display()
        )),
        None => match user.parse::<u32>() {
            // A bare uid: its group is the one of the same number.
            Ok(n) => Ok((Uid::from_raw(n), Gid::from_raw(n))),
            Err(_) => Err(format!(
                "--user {user}: no such user in {}",
                passwd.display()
            )),
        },
    }
}

/// The gid of `group`, a name in `groups` or a number.
fn lookup_group(group: &str, groups: &Path) -> Result<Gid, String> {
    let text = fs::read_to_string(groups)
        .map_err(|e| format!("--group {group}: cannot read {}: {e}", groups.display()))?;
    let by_name = text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f[0] == group).then(|| f.get(2).and_then(|s| s.parse::<u32>().ok()))
    });
    match by_name {
        Some(Some(gid)) => Ok(Gid::from_raw(gid)),
        Some(None) => Err(format!(
            "--group {group}: its line in {} is malformed",
            groups.display()
        )),
        None => group
            .parse::<u32>()
            .map(Gid::from_raw)
            .map_err(|_| format!("--group {group}: no such group in {}", groups.display())),
    }
}

/// The pid file; removed when dropped, if the daemon still may and it is
/// still the file this process wrote.
///
/// It holds no log data, so it is 0644 for init scripts and monitors that
/// run as other users; otherwise it is written as every file ringlogd
/// writes ([`crate::private_file`]): in a directory nobody else can change,
/// atomically, never through a symlink planted at its name.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    file: Option<FileId>,
}

impl PidFile {
    /// The pid file this process already wrote before it re-executed
    /// itself: the pid is the same, so it is kept as it is (and removed at
    /// exit as usual).
    pub fn adopt(path: &Path) -> PidFile {
        PidFile {
            path: path.to_owned(),
            file: FileId::of(path),
        }
    }

    /// Write this process's pid to `path` (replacing what is there).
    pub fn write(path: &Path) -> Result<PidFile, String> {
        let fail = |e: String| format!("--pidfile {}: {e}", path.display());
        crate::private_file::remove_stale(path).map_err(fail)?;
        let pid = format!("{}\n", std::process::id());
        let file = crate::private_file::write_atomic(path, pid.as_bytes(), 0o644).map_err(fail)?;
        Ok(PidFile {
            path: path.to_owned(),
            file: Some(file),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // After --user the directory may no longer be ours to change; a
        // stale pid file is what init scripts expect then. A file put there
        // since (another daemon's) is not ours to remove.
        if self.file.is_some() && FileId::of(&self.path) == self.file {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("passwd"),
            "root:x:0:0:root:/root:/bin/sh\nringlogd:x:101:102::/nonexistent:/usr/sbin/nologin\nbroken:x:y\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("group"),
            "root:x:0:\nringlogd:x:102:\nadm:x:4:syslog\n",
        )
        .unwrap();
        dir
    }

    fn resolve(u: Option<&str>, g: Option<&str>) -> Result<Option<Identity>, String> {
        let d = files();
        Identity::resolve_in(u, g, &d.path().join("passwd"), &d.path().join("group"))
    }

    #[test]
    fn names_and_numbers() {
        let id = resolve(Some("ringlogd"), None).unwrap().unwrap();
        assert_eq!(
            (id.uid, id.gid),
            (Some(Uid::from_raw(101)), Gid::from_raw(102))
        );
        assert_eq!(id.label, "ringlogd (101:102)");
        let id = resolve(Some("ringlogd"), Some("adm")).unwrap().unwrap();
        assert_eq!(id.gid, Gid::from_raw(4));
        let id = resolve(None, Some("adm")).unwrap().unwrap();
        assert_eq!((id.uid, id.gid), (None, Gid::from_raw(4)));
        let id = resolve(Some("5000"), Some("5001")).unwrap().unwrap();
        assert_eq!(
            (id.uid, id.gid),
            (Some(Uid::from_raw(5000)), Gid::from_raw(5001))
        );
        assert_eq!(resolve(None, None), Ok(None));
    }

    #[test]
    fn unknown_names_are_errors_naming_the_flag() {
        let e = resolve(Some("nosuch"), None).unwrap_err();
        assert!(e.starts_with("--user nosuch: no such user in "), "{e}");
        let e = resolve(Some("ringlogd"), Some("nosuch")).unwrap_err();
        assert!(e.starts_with("--group nosuch: no such group in "), "{e}");
        let e = resolve(Some("broken"), None).unwrap_err();
        assert!(e.contains("malformed"), "{e}");
    }
}
