//! The output file, resolved once at prestart and written hours later.
//!
//! Whoever writes the annotation chooses the path, and the hook runs as
//! root. So the directory is opened once, without following any symlink
//! (`openat2` with RESOLVE_NO_SYMLINKS, and RESOLVE_BENEATH an allowed
//! directory when the operator's policy names some), and the tracer keeps
//! that fd: the file is created and renamed relative to it, so what was
//! checked is what is written. Only a regular file or a free name is
//! accepted, never a device, FIFO, socket or link.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, renameat, AtFlags, OFlag, OpenHow, ResolveFlag, AT_FDCWD};
use nix::sys::stat::{fchmod, fstatat, FileStat, Mode, SFlag};
use nix::unistd::{fchown, fsync, unlinkat, Gid, Uid, UnlinkatFlags};
use thiserror::Error;

/// From linux/fs.h (not in the libc crate): `chattr +i` and `chattr +a`.
pub const FS_IMMUTABLE_FL: libc::c_int = 0x10;
pub const FS_APPEND_FL: libc::c_int = 0x20;

#[derive(Debug, Error)]
pub enum OutputError {
    #[error("output {path:?} names no file: give a file path with 'of:'")]
    NoFileName { path: PathBuf },
    #[error("output {path:?}: directory {dir:?} does not exist: create it before starting the container")]
    NoDirectory { path: PathBuf, dir: PathBuf },
    #[error("output {path:?}: {component:?} is a symbolic link, which the hook does not follow: give the real path")]
    Symlink { path: PathBuf, component: PathBuf },
    #[error(
        "output {path:?} is outside the allowed directory {allowed:?} (it climbs out with '..'): give a path inside it"
    )]
    Escapes { path: PathBuf, allowed: PathBuf },
    #[error("output {path:?}: failed to open directory {dir:?}: {reason}")]
    OpenDirectory { path: PathBuf, dir: PathBuf, reason: String },
    #[error("output {path:?} is a directory: give a file path with 'of:'")]
    IsDirectory { path: PathBuf },
    #[error("output {path:?} is a {kind}, not a regular file: give a regular file or a new name with 'of:'")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "output {path:?} is {flag} (chattr): the profile could not replace it; remove the flag or choose another file"
    )]
    Protected { path: PathBuf, flag: &'static str },
    #[error("output {path:?}: cannot write in {dir:?}: {reason}")]
    NotWritable { path: PathBuf, dir: PathBuf, reason: String },
    #[error("failed to write profile {path:?}: {reason} (the previous file, if any, is unchanged)")]
    Write { path: PathBuf, reason: String },
}

/// An errno in words. Never "No such file or directory": podman reads that
/// text in a hook's error as "runtime not found" and exits 127, not 126.
pub fn describe(e: Errno) -> String {
    match e {
        Errno::ENOENT => "it does not exist".to_string(),
        Errno::EACCES | Errno::EPERM => "permission denied".to_string(),
        other => other.desc().to_string(),
    }
}

/// The output's directory, open, and the file's name in it.
pub struct Output {
    dir: OwnedFd,
    name: OsString,
    path: PathBuf,
    new_file_mode: u32,
}

impl std::fmt::Debug for Output {
    /// As the path: log lines name the file, not the fd.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.path.fmt(f)
    }
}

impl Output {
    /// Opens the directory of `path` (beneath `allowed` when given) and
    /// checks the file can be written there later. A new file gets
    /// `new_file_mode`; an existing one keeps its owner and mode.
    pub fn open(path: &Path, allowed: Option<&Path>, new_file_mode: u32) -> Result<Output, OutputError> {
        let name = match path.components().next_back() {
            Some(Component::Normal(n)) => n.to_os_string(),
            _ => return Err(OutputError::NoFileName { path: path.into() }),
        };
        let dir_path = path.parent().unwrap_or(Path::new("/"));
        let dir = open_dir(path, dir_path, allowed)?;
        let output = Output { dir, name, path: path.into(), new_file_mode };
        output.check_target()?;
        output.probe()?;
        Ok(output)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What is at the name now, if anything, without following a link.
    fn target(&self) -> nix::Result<Option<FileStat>> {
        match fstatat(&self.dir, self.name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Only a regular file (that a rename can replace) or a free name.
    fn check_target(&self) -> Result<(), OutputError> {
        let Some(st) = self.target().map_err(|e| self.not_writable(e))? else { return Ok(()) };
        let kind = match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFREG => return self.check_flags(),
            SFlag::S_IFDIR => return Err(OutputError::IsDirectory { path: self.path.clone() }),
            SFlag::S_IFLNK => "symbolic link",
            SFlag::S_IFIFO => "FIFO",
            SFlag::S_IFCHR => "character device",
            SFlag::S_IFBLK => "block device",
            SFlag::S_IFSOCK => "socket",
            _ => "special file",
        };
        Err(OutputError::NotRegular { path: self.path.clone(), kind })
    }

    /// An immutable or append-only file cannot be replaced: say so now,
    /// not in the log when the container exits.
    fn check_flags(&self) -> Result<(), OutputError> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        let file = openat(&self.dir, self.name.as_os_str(), flags, Mode::empty()).map_err(|e| self.not_writable(e))?;
        let mut attr: libc::c_long = 0;
        // SAFETY: FS_IOC_GETFLAGS writes one long into `attr`, which lives
        // for the call; `file` is an open fd we own.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut attr) };
        if rc < 0 {
            // Filesystems without attributes (ENOTTY) have no such flags.
            return Ok(());
        }
        let attr = attr as libc::c_int;
        if attr & FS_IMMUTABLE_FL != 0 {
            return Err(OutputError::Protected { path: self.path.clone(), flag: "immutable" });
        }
        if attr & FS_APPEND_FL != 0 {
            return Err(OutputError::Protected { path: self.path.clone(), flag: "append-only" });
        }
        Ok(())
    }

    /// Root passes access(2) checks even on a read-only mount: try for real.
    fn probe(&self) -> Result<(), OutputError> {
        let (name, _file) = self.create_temp("probe").map_err(|e| self.not_writable(e))?;
        unlinkat(&self.dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir).map_err(|e| self.not_writable(e))
    }

    /// A new file next to the target, with a name nobody can plant first.
    fn create_temp(&self, what: &str) -> nix::Result<(OsString, OwnedFd)> {
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut last = Errno::EEXIST;
        for _ in 0..8 {
            let name = temp_name(&self.name, what, random_u64()?);
            match openat(&self.dir, name.as_os_str(), flags, Mode::from_bits_truncate(0o600)) {
                Ok(fd) => return Ok((name, fd)),
                Err(e) => last = e,
            }
            if last != Errno::EEXIST {
                break;
            }
        }
        Err(last)
    }

    /// Writes `bytes` atomically: a temporary file in the same directory,
    /// fsync, rename over the target, fsync the directory. A reader sees
    /// the old file or the new one, never half of one.
    pub fn write(&self, bytes: &[u8]) -> Result<(), OutputError> {
        let err = |e: Errno| OutputError::Write { path: self.path.clone(), reason: describe(e) };
        // It was checked at prestart; it may have changed since.
        self.check_target().map_err(|e| OutputError::Write { path: self.path.clone(), reason: e.to_string() })?;
        let (tmp, fd) = self.create_temp("tmp").map_err(err)?;
        let result = self.fill_and_rename(&tmp, fd, bytes);
        if result.is_err() {
            let _ = unlinkat(&self.dir, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
        }
        result.map_err(err)
    }

    fn fill_and_rename(&self, tmp: &OsStr, fd: OwnedFd, bytes: &[u8]) -> nix::Result<()> {
        let mut file = std::fs::File::from(fd);
        file.write_all(bytes).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        match self.target()? {
            // Replacing a file: keep whose it is and who may read it.
            Some(old) => {
                fchown(file.as_fd(), Some(Uid::from_raw(old.st_uid)), Some(Gid::from_raw(old.st_gid)))?;
                fchmod(file.as_fd(), Mode::from_bits_truncate(old.st_mode & 0o777))?;
            }
            // Explicitly, so the umask of whoever started podman does not decide.
            None => fchmod(file.as_fd(), Mode::from_bits_truncate(self.new_file_mode))?,
        }
        fsync(&file)?;
        renameat(&self.dir, tmp, &self.dir, self.name.as_os_str())?;
        fsync(&self.dir)
    }

    fn not_writable(&self, e: Errno) -> OutputError {
        let dir = self.path.parent().unwrap_or(Path::new("/")).to_path_buf();
        OutputError::NotWritable { path: self.path.clone(), dir, reason: describe(e) }
    }
}

/// Opens `dir` without following symlinks, beneath `allowed` when given.
fn open_dir(path: &Path, dir: &Path, allowed: Option<&Path>) -> Result<OwnedFd, OutputError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let how = || OpenHow::new().flags(flags).resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
    let opened = match allowed {
        None => openat2(AT_FDCWD, dir, how()),
        Some(root) => openat2(AT_FDCWD, root, how()).and_then(|root_fd| {
            let rest = dir.strip_prefix(root).unwrap_or(Path::new(""));
            let rest = if rest.as_os_str().is_empty() { Path::new(".") } else { rest };
            openat2(&root_fd, rest, how().resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_BENEATH))
        }),
    };
    opened.map_err(|e| match e {
        Errno::ELOOP => match first_symlink(dir) {
            Some(component) => OutputError::Symlink { path: path.into(), component },
            None => open_failed(path, dir, e),
        },
        Errno::ENOENT => OutputError::NoDirectory { path: path.into(), dir: dir.into() },
        Errno::EXDEV => OutputError::Escapes { path: path.into(), allowed: allowed.unwrap_or(dir).into() },
        other => open_failed(path, dir, other),
    })
}

fn open_failed(path: &Path, dir: &Path, e: Errno) -> OutputError {
    OutputError::OpenDirectory { path: path.into(), dir: dir.into(), reason: describe(e) }
}

/// The first component of `dir`, from the root down, that is a symlink.
pub fn first_symlink(dir: &Path) -> Option<PathBuf> {
    let mut prefix = PathBuf::new();
    for component in dir.components() {
        prefix.push(component);
        if std::fs::symlink_metadata(&prefix).is_ok_and(|m| m.file_type().is_symlink()) {
            return Some(prefix);
        }
    }
    None
}

/// `.NAME.WHAT-RANDOM`: hidden, and recognisably ours.
fn temp_name(name: &OsStr, what: &str, random: u64) -> OsString {
    let mut s = OsString::from(".");
    s.push(name);
    s.push(format!(".{what}-{random:016x}"));
    // Keep within NAME_MAX (255) when the target's name is already long.
    if s.len() > 255 {
        return OsString::from(format!(".oci-seccomp-bpf-hook.{what}-{random:016x}"));
    }
    s
}

fn random_u64() -> nix::Result<u64> {
    let mut buf = [0u8; 8];
    // SAFETY: getrandom writes at most buf.len() bytes into `buf`, which
    // lives for the call.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        return Err(Errno::last());
    }
    Ok(u64::from_ne_bytes(buf))
}

#[cfg(test)]
mod tests;
