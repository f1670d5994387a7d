//! Downloading kernels from Debian's archive into `vm/cache/`.
//!
//! apt does the work (signatures, mirrors, versions) but with a private configuration per suite,
//! so the host's sources, lists and package cache are never touched:
//!
//! ```text
//! cache/apt/<suite>/sources.list        one `deb` line for the suite
//! cache/apt/<suite>/{lists,cache}/      apt's state for that suite only
//! cache/kernels/<series>/<version>/     debs/ as downloaded, root/ as extracted
//! cache/kernels/<series>/current        the version the last fetch resolved
//! ```
//!
//! `<version>` is the Debian version of the first package (e.g. `6.12.117-1`): the package name
//! alone is not exact (5.10.0-46 covers several point releases).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::kernels::{archive_url, KernelSpec};
use crate::tool::{self, ToolError};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("failed to update the package lists of {suite}")]
    Update { suite: String, source: ToolError },
    #[error("failed to query apt for {what}")]
    Query { what: String, source: ToolError },
    #[error("no package of {suite} matches {pattern} (check vm/KERNELS)")]
    NoMatch { suite: String, pattern: String },
    #[error("apt shows no Version for {package}")]
    NoVersion { package: String },
    #[error("failed to download {package}={version}")]
    Download { package: String, version: String, source: ToolError },
    #[error("failed to unpack {deb}")]
    Unpack { deb: PathBuf, source: ToolError },
    #[error("failed to write {path}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("kernel {series} is not fetched yet: run `vm-harness fetch {series}`")]
    NotFetched { series: String },
    #[error("{dir} holds no vmlinuz or no lib/modules/<release>/kernel (wrong packages in vm/KERNELS?)")]
    Incomplete { dir: PathBuf },
}

/// A fetched kernel, ready to boot.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub series: String,
    /// Exact Debian version, the cache key.
    pub version: String,
    /// `uname -r` of the kernel, the name of its modules directory.
    pub release: String,
    pub vmlinuz: PathBuf,
    /// What QEMU boots: the PVH vmlinux when one could be made, else `vmlinuz` (see bzimage.rs).
    pub boot_image: PathBuf,
    /// `lib/modules/<release>` inside the extracted packages.
    pub modules_dir: PathBuf,
}

/// The `vm/cache` directory.
pub struct Cache {
    root: PathBuf,
    /// Suites whose lists were refreshed by this process: one `apt-get update` per suite is enough.
    updated: HashSet<String>,
}

impl Cache {
    pub fn new(root: PathBuf) -> Self {
        Cache { root, updated: HashSet::new() }
    }

    /// Resolves the newest version of `spec` in its suite and makes sure it is in the cache.
    pub fn fetch(&mut self, spec: &KernelSpec) -> Result<Kernel, FetchError> {
        let apt = Apt::new(self.root.join("apt").join(&spec.suite));
        if self.updated.insert(spec.suite.clone()) {
            apt.update(&spec.suite)?;
        }
        let (version, packages) = apt.resolve(spec)?;
        let dir = self.kernel_dir(&spec.series).join(&version);
        if !dir.join("root").is_dir() {
            let debs = dir.join("debs");
            // Start clean: an interrupted earlier fetch may have left a truncated .deb.
            let _ = std::fs::remove_dir_all(&debs);
            create_dir(&debs)?;
            for (package, package_version) in &packages {
                apt.download(package, package_version, &debs)?;
            }
            unpack_all(&debs, &dir.join("root"))?;
        }
        let current = self.kernel_dir(&spec.series).join("current");
        std::fs::write(&current, format!("{version}\n")).map_err(|source| FetchError::Io { path: current, source })?;
        locate(&spec.series, &version, &dir)
    }

    /// The kernel the last fetch of `series` resolved, without touching the network.
    pub fn cached(&self, series: &str) -> Result<Kernel, FetchError> {
        let not_fetched = || FetchError::NotFetched { series: series.to_owned() };
        let current = std::fs::read_to_string(self.kernel_dir(series).join("current")).map_err(|_| not_fetched())?;
        let version = current.trim();
        let dir = self.kernel_dir(series).join(version);
        if !dir.join("root").is_dir() {
            return Err(not_fetched());
        }
        locate(series, version, &dir)
    }

    /// Uses the cached kernel when there is one, fetches it otherwise.
    pub fn cached_or_fetch(&mut self, spec: &KernelSpec) -> Result<Kernel, FetchError> {
        match self.cached(&spec.series) {
            Err(FetchError::NotFetched { .. }) => self.fetch(spec),
            other => other,
        }
    }

    fn kernel_dir(&self, series: &str) -> PathBuf {
        self.root.join("kernels").join(series)
    }
}

/// apt-get / apt-cache bound to one suite's private state (also used by `rootfs` to resolve the
/// versions a userland root is keyed by).
pub struct Apt {
    dir: PathBuf,
    /// More `-o` options, e.g. sid's `Acquire::Check-Valid-Until=false`.
    extra: Vec<String>,
}

impl Apt {
    pub fn new(dir: PathBuf) -> Self {
        Apt { dir, extra: vec![] }
    }

    pub fn with_options(dir: PathBuf, extra: &[&str]) -> Self {
        Apt { dir, extra: extra.iter().map(|o| o.to_string()).collect() }
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        for option in apt_options(&self.dir).iter().chain(&self.extra) {
            cmd.arg("-o").arg(option);
        }
        cmd
    }

    pub fn update(&self, suite: &str) -> Result<(), FetchError> {
        let lists = self.dir.join("lists").join("partial");
        let cache = self.dir.join("cache").join("archives").join("partial");
        create_dir(&lists)?;
        create_dir(&cache)?;
        let sources = self.dir.join("sources.list");
        std::fs::write(&sources, sources_line(suite)).map_err(|source| FetchError::Io { path: sources, source })?;
        let mut cmd = self.command("apt-get");
        cmd.args(["-q", "update"]);
        tool::text(&mut cmd).map(drop).map_err(|source| FetchError::Update { suite: suite.to_owned(), source })
    }

    /// Newest match of the first pattern, then the other patterns with the same `*`.
    fn resolve(&self, spec: &KernelSpec) -> Result<(String, Vec<(String, String)>), FetchError> {
        let first = &spec.packages[0];
        let prefix = first.split('*').next().unwrap_or_default();
        let names = self.query(&format!("packages named {prefix}*"), &["pkgnames", prefix])?;
        let mut newest: Option<(String, String, String)> = None;
        for name in names.lines().map(str::trim) {
            let Some(star) = star_value(first, name) else {
                continue;
            };
            let version = self.version_of(name)?;
            let newer = match &newest {
                None => true,
                Some((_, _, best)) => version_greater(&version, best)?,
            };
            if newer {
                newest = Some((star.to_owned(), name.to_owned(), version));
            }
        }
        let Some((star, name, version)) = newest else {
            return Err(FetchError::NoMatch { suite: spec.suite.clone(), pattern: first.clone() });
        };
        let mut packages = vec![(name, version.clone())];
        for pattern in &spec.packages[1..] {
            let name = pattern.replace('*', &star);
            let package_version = self.version_of(&name)?;
            packages.push((name, package_version));
        }
        Ok((version, packages))
    }

    pub fn version_of(&self, package: &str) -> Result<String, FetchError> {
        let shown = self.query(package, &["show", "--no-all-versions", package])?;
        shown
            .lines()
            .find_map(|l| l.strip_prefix("Version:"))
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| FetchError::NoVersion { package: package.to_owned() })
    }

    fn query(&self, what: &str, args: &[&str]) -> Result<String, FetchError> {
        let mut cmd = self.command("apt-cache");
        cmd.args(args);
        tool::text(&mut cmd).map_err(|source| FetchError::Query { what: what.to_owned(), source })
    }

    fn download(&self, package: &str, version: &str, into: &Path) -> Result<(), FetchError> {
        let mut cmd = self.command("apt-get");
        cmd.args(["-q", "download", &format!("{package}={version}")]).current_dir(into);
        tool::text(&mut cmd).map(drop).map_err(|source| FetchError::Download {
            package: package.to_owned(),
            version: version.to_owned(),
            source,
        })
    }
}

/// The `-o` options that point apt at a private state directory instead of the system's.
pub fn apt_options(dir: &Path) -> Vec<String> {
    let d = dir.display();
    vec![
        // Our one-line sources.list, and no /etc/apt/sources.list.d/* of the host.
        format!("Dir::Etc::sourcelist={d}/sources.list"),
        "Dir::Etc::sourceparts=-".to_owned(),
        // Lists and pkgcache.bin of this suite only, so the host's apt state stays as it was.
        format!("Dir::State::Lists={d}/lists"),
        format!("Dir::Cache={d}/cache"),
        // Translations are useless here and double the download.
        "Acquire::Languages=none".to_owned(),
        // We run as root into root-owned directories: the _apt sandbox user could not write there.
        "APT::Sandbox::User=root".to_owned(),
    ]
}

/// The single `deb` line of a suite's private sources.list.
pub fn sources_line(suite: &str) -> String {
    format!("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {} {suite} main\n", archive_url(suite))
}

/// What `*` stands for when `name` matches `pattern`: one non-empty token without `-`, so
/// `linux-image-6.12.*-amd64` takes `117+deb13` but not the `-cloud` or `-rt` flavours.
pub fn star_value<'a>(pattern: &str, name: &'a str) -> Option<&'a str> {
    let (before, after) = pattern.split_once('*')?;
    let middle = name.strip_prefix(before)?.strip_suffix(after)?;
    (!middle.is_empty() && !middle.contains('-')).then_some(middle)
}

/// Debian version order is subtle (`~`, epochs); dpkg is the reference, so ask it.
fn version_greater(a: &str, b: &str) -> Result<bool, FetchError> {
    let status =
        Command::new("dpkg").args(["--compare-versions", a, "gt", b]).status().map_err(|source| FetchError::Query {
            what: format!("version order of {a} and {b}"),
            source: ToolError::Spawn { program: "dpkg".into(), source },
        })?;
    Ok(status.success())
}

/// Unpacks every .deb of `debs` into `root`, through a temporary directory so an interrupted
/// unpack never looks like a complete cache entry.
fn unpack_all(debs: &Path, root: &Path) -> Result<(), FetchError> {
    let partial = root.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    create_dir(&partial)?;
    let entries = std::fs::read_dir(debs).map_err(|source| FetchError::Io { path: debs.into(), source })?;
    for entry in entries {
        let deb = entry.map_err(|source| FetchError::Io { path: debs.into(), source })?.path();
        if deb.extension().is_some_and(|e| e == "deb") {
            let mut cmd = Command::new("dpkg-deb");
            cmd.arg("-x").arg(&deb).arg(&partial);
            tool::output(&mut cmd).map_err(|source| FetchError::Unpack { deb, source })?;
        }
    }
    std::fs::rename(&partial, root).map_err(|source| FetchError::Io { path: root.into(), source })
}

/// Finds the kernel image and modules directory, wherever the packaging put them: `boot/` and
/// `lib/modules` before trixie, `usr/lib/modules/<release>/vmlinuz` for the split 7.x packages.
fn locate(series: &str, version: &str, dir: &Path) -> Result<Kernel, FetchError> {
    let root = dir.join("root");
    let incomplete = || FetchError::Incomplete { dir: root.clone() };
    let modules_dir = ["lib/modules", "usr/lib/modules"]
        .iter()
        .filter_map(|base| std::fs::read_dir(root.join(base)).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("kernel").is_dir())
        .ok_or_else(incomplete)?;
    let release = modules_dir.file_name().ok_or_else(incomplete)?.to_string_lossy().into_owned();
    let vmlinuz = [root.join("boot").join(format!("vmlinuz-{release}")), modules_dir.join("vmlinuz")]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(incomplete)?;
    let boot_image = crate::bzimage::boot_image(&vmlinuz, dir);
    Ok(Kernel { series: series.to_owned(), version: version.to_owned(), release, vmlinuz, boot_image, modules_dir })
}

fn create_dir(path: &Path) -> Result<(), FetchError> {
    std::fs::create_dir_all(path).map_err(|source| FetchError::Io { path: path.into(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_matches_one_dashless_token() {
        let cases = [
            ("linux-image-6.12.*-amd64-unsigned", "linux-image-6.12.117+deb13-amd64-unsigned", Some("117+deb13")),
            ("linux-image-6.12.*-amd64-unsigned", "linux-image-6.12.117+deb13-cloud-amd64-unsigned", None),
            ("linux-image-6.18.*-amd64", "linux-image-6.18.15+deb13-amd64-dbg", None),
            ("linux-image-5.10.0-*-amd64-unsigned", "linux-image-5.10.0-46-amd64-unsigned", Some("46")),
            ("linux-image-5.10.0-*-amd64-unsigned", "linux-image-5.10.0--amd64-unsigned", None),
            ("linux-binary-7.3.*-amd64", "linux-binary-unsigned-7.3.4+deb13-amd64", None),
            ("linux-binary-7.3.*-amd64", "linux-binary-7.3.4+deb13-amd64", Some("4+deb13")),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(star_value(pattern, name), expected, "{pattern} vs {name}");
        }
    }

    #[test]
    fn apt_never_reads_or_writes_the_system_state() {
        let options = apt_options(Path::new("/c/apt/trixie"));
        for expected in [
            "Dir::Etc::sourcelist=/c/apt/trixie/sources.list",
            "Dir::Etc::sourceparts=-",
            "Dir::State::Lists=/c/apt/trixie/lists",
            "Dir::Cache=/c/apt/trixie/cache",
        ] {
            assert!(options.iter().any(|o| o == expected), "missing {expected}");
        }
    }

    #[test]
    fn sources_line_picks_the_archive_by_suite() {
        let cases = [
            ("bullseye-security", "http://deb.debian.org/debian-security bullseye-security main"),
            ("trixie-backports", "http://deb.debian.org/debian trixie-backports main"),
            ("bookworm", "http://deb.debian.org/debian bookworm main"),
        ];
        for (suite, expected) in cases {
            assert!(sources_line(suite).contains(expected), "{suite}: {}", sources_line(suite));
        }
    }
}
