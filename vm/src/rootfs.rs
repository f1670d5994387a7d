//! Newer Debian userlands (podman 5, newer runc and crun) as root filesystems built with
//! mmdebstrap, cached by the exact versions of the packages they were built from, so a second run
//! reuses the root and a new upload to the archive builds a fresh one.
//!
//! ```text
//! <roots>/<name>/<key>/root/       the root filesystem (under target/: never committed)
//! <roots>/<name>/<key>/versions    `package version` per line, what <key> is a hash of
//! ```
//!
//! Versions are resolved with the same private apt state as the kernels (`cache/apt/<suite>/`),
//! so the host's apt configuration is never touched.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::fetch::{Apt, FetchError};
use crate::kernels::archive_url;
use crate::tool::{self, ToolError};

/// A Debian suite to test the hook against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Userland {
    pub name: &'static str,
    pub suite: &'static str,
    /// apt options (`-o` form, `Key=value`) both for resolving versions and for mmdebstrap.
    pub apt_options: &'static [&'static str],
}

/// The userlands of `just test-userlands`: Debian 13 (podman 5.4, crun 1.21, runc 1.1) and sid
/// (podman 5.8, crun 1.28, runc 1.3). Debian 12 is the host itself.
pub const USERLANDS: &[Userland] = &[
    Userland { name: "trixie", suite: "trixie", apt_options: &[] },
    // sid's Release file on deb.debian.org is past its Valid-Until date: apt refuses it otherwise.
    Userland { name: "sid", suite: "sid", apt_options: &["Acquire::Check-Valid-Until=false"] },
];

/// What the root holds besides `--variant=apt`'s base: podman and both runtimes; bpftool and
/// util-linux (unshare, setpriv) for the integration tests; mount (umount, for `chroot`); the
/// hook's shared libraries; systemd (PID 1 of `vm-harness systemd` guests, with journald), its
/// `/sbin/init` and dbus (podman's systemd cgroup manager asks systemd over D-Bus).
pub const PACKAGES: &[&str] = &[
    "podman",
    "crun",
    "runc",
    "conmon",
    "bpftool",
    "util-linux",
    "mount",
    "libelf1t64",
    "zlib1g",
    "libseccomp2",
    "systemd",
    "systemd-sysv",
    "dbus",
];

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("no userland named {name:?}: known are {known}")]
    Unknown { name: String, known: String },
    #[error("failed to resolve the package versions of {suite}")]
    // Boxed: FetchError is large, and every Result of this module would carry its size.
    Resolve { suite: String, source: Box<FetchError> },
    #[error("failed to build the {suite} root with mmdebstrap (apt-get install mmdebstrap)")]
    Build { suite: String, source: ToolError },
    #[error("failed to {what} {path}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
}

/// A root ready to chroot into.
#[derive(Debug, Clone)]
pub struct Root {
    pub userland: Userland,
    pub path: PathBuf,
    /// `(package, version)` in the order of [`PACKAGES`].
    pub versions: Vec<(String, String)>,
    /// How long building it took; `None` when it came from the cache.
    pub built_in: Option<Duration>,
}

impl Root {
    /// The version of one of [`PACKAGES`], `-` if unknown.
    pub fn version(&self, package: &str) -> &str {
        self.versions.iter().find(|(p, _)| p == package).map_or("-", |(_, v)| v.as_str())
    }
}

/// The userlands named (all when none), in the order given.
pub fn select(names: &[String]) -> Result<Vec<Userland>, RootfsError> {
    if names.is_empty() {
        return Ok(USERLANDS.to_vec());
    }
    let known = || USERLANDS.iter().map(|u| u.name).collect::<Vec<_>>().join(", ");
    names
        .iter()
        .map(|n| {
            USERLANDS
                .iter()
                .find(|u| u.name == n)
                .copied()
                .ok_or_else(|| RootfsError::Unknown { name: n.clone(), known: known() })
        })
        .collect()
}

/// Resolves the versions `userland` would install now and builds its root unless the cache
/// already has one for exactly those versions. Older roots of the same userland are removed.
pub fn ensure(userland: Userland, apt_dir: &Path, roots: &Path) -> Result<Root, RootfsError> {
    let resolve = |source| RootfsError::Resolve { suite: userland.suite.to_owned(), source: Box::new(source) };
    let apt = Apt::with_options(apt_dir.join(userland.suite), userland.apt_options);
    apt.update(userland.suite).map_err(resolve)?;
    let versions = PACKAGES
        .iter()
        .map(|p| apt.version_of(p).map(|v| (p.to_string(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(resolve)?;
    let parent = roots.join(userland.name);
    let dir = parent.join(cache_key(&versions));
    let path = dir.join("root");
    let mut root = Root { userland, path: path.clone(), versions, built_in: None };
    // The versions file is written last: its presence means the root is complete.
    if dir.join("versions").is_file() {
        return Ok(root);
    }
    let start = Instant::now();
    let io = |what, path: &Path| {
        let path = path.to_owned();
        move |source| RootfsError::Io { what, path, source }
    };
    // Stale roots are a few hundred MB each, and no run will pick them again.
    let _ = std::fs::remove_dir_all(&parent);
    std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    let mut cmd = Command::new("mmdebstrap");
    cmd.args(mmdebstrap_args(&userland, PACKAGES, &path));
    tool::text(&mut cmd).map_err(|source| RootfsError::Build { suite: userland.suite.to_owned(), source })?;
    let listing = dir.join("versions");
    std::fs::write(&listing, versions_text(&root.versions)).map_err(io("write", &listing))?;
    root.built_in = Some(start.elapsed());
    Ok(root)
}

/// mmdebstrap's arguments: `--variant=apt` (apt and the essential set, nothing more), our packages,
/// the userland's apt options in apt.conf form, and the suite's archive.
pub fn mmdebstrap_args(userland: &Userland, packages: &[&str], dir: &Path) -> Vec<String> {
    let mut args = vec!["--variant=apt".to_owned(), format!("--include={}", packages.join(","))];
    for option in userland.apt_options {
        let (key, value) = option.split_once('=').unwrap_or((option, ""));
        args.push(format!("--aptopt={key} \"{value}\""));
    }
    args.extend([userland.suite.to_owned(), dir.display().to_string(), archive_url(userland.suite).to_owned()]);
    args
}

/// The cache directory name: 16 hex digits of FNV-1a over the versions text. Stable across
/// builds of the harness (unlike std's hasher), short enough for paths.
pub fn cache_key(versions: &[(String, String)]) -> String {
    let hash = versions_text(versions)
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}

fn versions_text(versions: &[(String, String)]) -> String {
    versions.iter().map(|(p, v)| format!("{p} {v}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(p, v)| (p.to_string(), v.to_string())).collect()
    }

    #[test]
    fn mmdebstrap_args_table() {
        let dir = Path::new("/r/root");
        let cases: [(&Userland, Vec<&str>); 2] = [
            (
                &USERLANDS[0],
                vec!["--variant=apt", "--include=podman,crun", "trixie", "/r/root", "http://deb.debian.org/debian"],
            ),
            (
                &USERLANDS[1],
                vec![
                    "--variant=apt",
                    "--include=podman,crun",
                    "--aptopt=Acquire::Check-Valid-Until \"false\"",
                    "sid",
                    "/r/root",
                    "http://deb.debian.org/debian",
                ],
            ),
        ];
        for (userland, expected) in cases {
            assert_eq!(mmdebstrap_args(userland, &["podman", "crun"], dir), expected, "{}", userland.name);
        }
    }

    #[test]
    fn cache_key_changes_with_any_version() {
        let base = cache_key(&v(&[("podman", "5.4.2+ds1-2"), ("crun", "1.21-1")]));
        assert_eq!(base.len(), 16);
        assert_eq!(base, cache_key(&v(&[("podman", "5.4.2+ds1-2"), ("crun", "1.21-1")])));
        assert_ne!(base, cache_key(&v(&[("podman", "5.4.2+ds1-3"), ("crun", "1.21-1")])));
        assert_ne!(base, cache_key(&v(&[("podman", "5.4.2+ds1-2"), ("crun", "1.21-2")])));
        assert_ne!(base, cache_key(&v(&[("podman", "5.4.2+ds1-2")])));
    }

    #[test]
    fn select_keeps_order_and_names_unknown_userlands() {
        let names = |s: &[&str]| s.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let picked: Vec<&str> = select(&names(&["sid", "trixie"])).unwrap().iter().map(|u| u.name).collect();
        assert_eq!(picked, ["sid", "trixie"]);
        assert_eq!(select(&[]).unwrap(), USERLANDS);
        let err = select(&names(&["bookworm"])).unwrap_err().to_string();
        assert!(err.contains("\"bookworm\"") && err.contains("trixie, sid"), "{err}");
    }
}
