//! The shared program's home: bpffs, the pin directory, the lock file and
//! the BTF cache directory, each trusted only when no one but root (the
//! hook's own user) can change it.
//!
//! /sys/fs/bpf is world-writable (mode 1777) on many hosts. A user who
//! creates the pin directory before root's first tracer could otherwise
//! delete the pinned link later, which detaches the program and silently
//! empties every profile on the host.

use std::fs::{self, DirBuilder, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::pins::BPFFS;

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

#[derive(Debug, Error)]
pub enum HomeError {
    #[error("failed to mount bpffs at {BPFFS}: mount it (mode=0700) before tracing")]
    Mount { source: nix::Error },
    #[error("failed to inspect {path:?}")]
    Inspect { path: PathBuf, source: io::Error },
    #[error("refusing {path:?}: it {why}; only root may own or write it: remove it while no tracer runs")]
    Untrusted { path: PathBuf, why: String },
    #[error("failed to replace {path:?}, which {why}: remove it by hand while no tracer runs")]
    Replace { path: PathBuf, why: String, source: io::Error },
    #[error("failed to create {path:?}")]
    Create { path: PathBuf, source: io::Error },
}

/// Mounts bpffs at /sys/fs/bpf, root-only, unless one is mounted there.
pub fn ensure_bpffs() -> Result<(), HomeError> {
    let is_bpffs = nix::sys::statfs::statfs(BPFFS).map(|s| s.filesystem_type().0 == BPF_FS_MAGIC);
    if !matches!(is_bpffs, Ok(true)) {
        nix::mount::mount(Some("bpf"), BPFFS, Some("bpf"), nix::mount::MsFlags::empty(), Some("mode=0700"))
            .map_err(|source| HomeError::Mount { source })?;
    }
    Ok(())
}

/// Why an entry found where a trusted one belongs cannot be trusted: not
/// of the expected kind, someone else's, or open to writes by others.
fn distrust(meta: &Metadata, want_dir: bool) -> Option<String> {
    let owner = nix::unistd::geteuid().as_raw();
    let kind = meta.file_type();
    if want_dir && !kind.is_dir() || !want_dir && !kind.is_file() {
        let what = if kind.is_symlink() { "a symbolic link" } else { "of another file type" };
        return Some(format!("is {what}"));
    }
    if meta.uid() != owner {
        return Some(format!("is owned by uid {}", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!("is writable by group or others (mode {:o})", meta.mode() & 0o7777));
    }
    None
}

/// Makes `path` a directory that only we can change: created with mode
/// 0700 when missing, kept when it is ours and closed to others. Anything
/// else is replaced when `replace` is set (without following a planted
/// link: the link itself is removed, and std's remove_dir_all does not
/// follow links inside), and refused otherwise.
pub fn trusted_dir(path: &Path, replace: bool) -> Result<(), HomeError> {
    // A second round covers a directory someone made between our look and
    // our mkdir; a third failure is refused rather than fought over.
    for _ in 0..3 {
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => match DirBuilder::new().mode(0o700).create(path) {
                Ok(()) => continue,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(HomeError::Create { path: path.into(), source }),
            },
            Err(source) => return Err(HomeError::Inspect { path: path.into(), source }),
        };
        let Some(why) = distrust(&meta, true) else { return Ok(()) };
        if !replace {
            return Err(HomeError::Untrusted { path: path.into(), why });
        }
        tracing::warn!("replacing {path:?}, which {why}");
        let removed = if meta.file_type().is_dir() { fs::remove_dir_all(path) } else { fs::remove_file(path) };
        removed.map_err(|source| HomeError::Replace { path: path.into(), why, source })?;
    }
    let why = "keeps changing under us".to_string();
    Err(HomeError::Untrusted { path: path.into(), why })
}

/// Opens (creating it, mode 0600) a file that only we can change; never
/// through a symbolic link.
pub fn trusted_file(path: &Path) -> Result<File, HomeError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) => HomeError::Untrusted { path: path.into(), why: "is a symbolic link".into() },
            _ => HomeError::Create { path: path.into(), source },
        })?;
    let meta = file.metadata().map_err(|source| HomeError::Inspect { path: path.into(), source })?;
    match distrust(&meta, false) {
        None => Ok(file),
        Some(why) => Err(HomeError::Untrusted { path: path.into(), why }),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A directory `name` in `base` holding one file, `file`.
    fn dir_holding(base: &Path, name: &str, file: &str) -> PathBuf {
        let dir = base.join(name);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join(file), "").unwrap();
        dir
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_missing_directory_is_created_closed_to_others() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("pins");
        trusted_dir(&dir, false).unwrap();
        assert_eq!(mode(&dir), 0o700);
        trusted_dir(&dir, false).expect("our own directory is kept");
    }

    #[test]
    fn a_world_writable_directory_is_refused_or_replaced() {
        let base = tempfile::tempdir().unwrap();
        let dir = dir_holding(base.path(), "pins", "planted");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let err = trusted_dir(&dir, false).unwrap_err().to_string();
        assert!(err.contains("pins") && err.contains("writable by group or others"), "{err}");
        trusted_dir(&dir, true).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert!(!dir.join("planted").exists(), "replaced, not reused");
    }

    #[test]
    fn a_planted_link_is_removed_not_followed() {
        let base = tempfile::tempdir().unwrap();
        let target = dir_holding(base.path(), "victim", "keep");
        let dir = base.path().join("pins");
        std::os::unix::fs::symlink(&target, &dir).unwrap();
        assert!(trusted_dir(&dir, false).unwrap_err().to_string().contains("symbolic link"));
        trusted_dir(&dir, true).unwrap();
        assert!(fs::symlink_metadata(&dir).unwrap().is_dir());
        assert!(target.join("keep").exists(), "the link's target is untouched");
    }

    #[test]
    fn the_lock_file_is_refused_through_a_link_or_when_open_to_others() {
        let base = tempfile::tempdir().unwrap();
        let file = base.path().join("lock");
        trusted_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(trusted_file(&file).unwrap_err().to_string().contains("writable by group or others"));
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(trusted_file(&link).unwrap_err().to_string().contains("symbolic link"));
    }
}
