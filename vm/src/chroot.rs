//! Running one command inside a userland root on the host kernel.
//!
//! The command runs under `unshare --mount` so every mount below is private to it and disappears
//! when it exits: nothing to clean up, nothing leaks into the host. What podman needs there:
//!
//! - the root must be the mount namespace's `/`, not just a chroot: `podman exec` joins the
//!   container's namespace with setns(2), which puts the process at the namespace's `/`. In a
//!   chroot that is the host's root (runc's pivot_root moves the chroot's mount, not the
//!   namespace's), and `podman exec` then runs host binaries or finds nothing. So the root is
//!   bind-mounted onto itself (pivot_root needs a mount point; podman's image import too:
//!   "remount /, flags: 0x44000: invalid argument"), then `pivot_root` makes it `/` and the
//!   host's root is detached;
//! - the host's /proc, /sys (cgroups, tracefs) and /dev, bound recursively, with a bpffs of its
//!   own on /sys/fs/bpf (the hook's pins must not mix with a host run's);
//! - fresh tmpfs on /run, /tmp, /var/tmp and /var/lib/containers: nothing stale from an earlier
//!   run, and container storage on a real filesystem (overlay cannot stack on overlayfs);
//! - the repository at its own path, so the test binary, the hook and the fixtures resolve.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::guest::quote;

/// Exit status of the script when setting up the chroot failed (not the command): an
/// infrastructure failure. libtest exits 101 on failed tests.
pub const SETUP_FAILED: i32 = 200;

/// Prefix of the line that says which setup step failed.
pub const ERROR_PREFIX: &str = "userland: error: ";

/// PATH inside the root: Debian's default for root.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum ChrootError {
    #[error("failed to start unshare (util-linux) for {root}")]
    Spawn { root: PathBuf, source: std::io::Error },
    #[error("failed to read the output of the command in {root}")]
    Read { root: PathBuf, source: std::io::Error },
}

/// What to run in which root.
#[derive(Debug, Clone)]
pub struct ChrootJob {
    pub root: PathBuf,
    /// Bound into the root at the same path.
    pub repo: PathBuf,
    pub workdir: PathBuf,
    /// `podman load -i` this before the command (a path the root sees, e.g. under `repo`).
    pub image_archive: Option<PathBuf>,
    /// On top of PATH and HOME; the command gets nothing else from the host's environment.
    pub env: Vec<(String, String)>,
    pub command: Vec<String>,
}

/// The mounts, in order: `(mount arguments, what a failure means)`. Targets are under `$root`.
pub fn mounts(repo: &Path) -> Vec<(String, &'static str)> {
    let mut steps = vec![(r#"--bind "$root" "$root""#.to_owned(), "bind the root onto itself")];
    for dir in ["proc", "sys", "dev"] {
        steps.push((format!(r#"--rbind /{dir} "$root/{dir}""#), "bind the host's /proc, /sys or /dev"));
    }
    // The hook's pins live in bpffs and its lock in /run: with the host's bpffs and our own /run,
    // tracers here and on the host would share records but not the lock. A bpffs of our own, as
    // the hook would mount it (root only).
    steps.push((r#"-t bpf -o mode=700 bpf "$root/sys/fs/bpf""#.to_owned(), "mount a fresh bpffs"));
    for dir in ["run", "tmp", "var/tmp", "var/lib/containers"] {
        steps.push((format!(r#"-t tmpfs tmpfs "$root/{dir}""#), "mount a fresh tmpfs"));
    }
    // Its mount point is made now, not with the others before the tmpfs mounts: a repository
    // under /tmp (CI's fresh clone) would be hidden by the fresh tmpfs.
    let repo = quote(&repo.display().to_string());
    steps.push((format!(r#"-o X-mount.mkdir --bind {repo} "$root"{repo}"#), "bind the repository"));
    steps
}

const TEMPLATE: &str = r#"set -euo pipefail
exec 2>&1
fail() { echo "@ERROR_PREFIX@$*"; exit @SETUP_FAILED@; }
root=@ROOT@
mkdir -p "$root/var/lib/containers" "$root/var/tmp" "$root/mnt" || fail "cannot create mount points in $root"
@MOUNTS@
cd "$root"
pivot_root . mnt || fail "cannot pivot_root into $root"
umount --lazy /mnt || fail "cannot detach the host's root from $root"
inside() { /usr/bin/env -i @ENV@ "$@"; }
image=@IMAGE_ARCHIVE@
if [ -n "$image" ]; then
    inside podman load -q -i "$image" >/dev/null || fail "podman load -i $image failed inside $root"
fi
status=0
inside /bin/sh -c 'cd "$1" && shift && exec "$@"' sh @WORKDIR@ @COMMAND@ || status=$?
# A test that failed half-way can leave a container running, and its conmon would outlive the
# namespace: remove every container of this run.
inside podman rm --all --force --time 0 >/dev/null || echo "userland: warning: podman rm --all failed in $root"
exit "$status"
"#;

/// The bash script `unshare --mount` runs: mounts, pivot_root, image load, the command, cleanup.
pub fn render_script(job: &ChrootJob) -> String {
    let mounts: Vec<String> =
        mounts(&job.repo).iter().map(|(args, why)| format!("mount {args} || fail {}", quote(why))).collect();
    let mut env = vec![format!("PATH={PATH}"), "HOME=/root".to_owned()];
    env.extend(job.env.iter().map(|(k, v)| format!("{k}={v}")));
    let image = job.image_archive.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    TEMPLATE
        .replace("@ERROR_PREFIX@", ERROR_PREFIX)
        .replace("@SETUP_FAILED@", &SETUP_FAILED.to_string())
        .replace("@ROOT@", &quote(&job.root.display().to_string()))
        .replace("@MOUNTS@", &mounts.join("\n"))
        .replace("@ENV@", &env.iter().map(|e| quote(e)).collect::<Vec<_>>().join(" "))
        .replace("@IMAGE_ARCHIVE@", &quote(&image))
        .replace("@WORKDIR@", &quote(&job.workdir.display().to_string()))
        .replace("@COMMAND@", &job.command.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" "))
}

/// Runs `job`, copying its output to `live` as it comes; returns its exit status (`-1` if killed
/// by a signal) and the whole output.
pub fn run(job: &ChrootJob, live: &mut dyn Write) -> Result<(i32, String), ChrootError> {
    let mut child = Command::new("unshare")
        // private: our mounts do not propagate back to the host, nor the host's into ours.
        .args(["--mount", "--propagation", "private", "bash", "-c", &render_script(job)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|source| ChrootError::Spawn { root: job.root.clone(), source })?;
    let read = |source| ChrootError::Read { root: job.root.clone(), source };
    let mut output = String::new();
    // The script sends stderr to stdout, so one pipe keeps the two in order.
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(read)?;
            let _ = writeln!(live, "{line}");
            output.push_str(&line);
            output.push('\n');
        }
    }
    let status = child.wait().map_err(read)?;
    Ok((status.code().unwrap_or(-1), output))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> ChrootJob {
        ChrootJob {
            root: "/repo/target/userlands/sid/k/root".into(),
            repo: "/repo".into(),
            workdir: "/repo".into(),
            image_archive: Some("/repo/target/fixtures/images.tar".into()),
            env: vec![("CONTAINERS_CONF".into(), "/repo/c.conf".into())],
            command: vec!["/repo/target/debug/deps/integration-x".into(), "--test-threads=1".into()],
        }
    }

    #[test]
    fn mounts_table() {
        let expected = [
            r#"--bind "$root" "$root""#,
            r#"--rbind /proc "$root/proc""#,
            r#"--rbind /sys "$root/sys""#,
            r#"--rbind /dev "$root/dev""#,
            r#"-t bpf -o mode=700 bpf "$root/sys/fs/bpf""#,
            r#"-t tmpfs tmpfs "$root/run""#,
            r#"-t tmpfs tmpfs "$root/tmp""#,
            r#"-t tmpfs tmpfs "$root/var/tmp""#,
            r#"-t tmpfs tmpfs "$root/var/lib/containers""#,
            r#"-o X-mount.mkdir --bind '/repo' "$root"'/repo'"#,
        ];
        let got: Vec<String> = mounts(Path::new("/repo")).into_iter().map(|(args, _)| args).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn script_mounts_then_pivots_then_loads_then_runs() {
        let script = render_script(&job());
        let at = |needle: &str| script.find(needle).unwrap_or_else(|| panic!("{needle} not in\n{script}"));
        assert!(at("mount --bind \"$root\" \"$root\"") < at("pivot_root . mnt"));
        assert!(at("mount -o X-mount.mkdir --bind '/repo'") < at("pivot_root . mnt"));
        assert!(at("pivot_root . mnt") < at("podman load"));
        assert!(at("podman load") < at("'--test-threads=1'"));
        assert!(script.contains("root='/repo/target/userlands/sid/k/root'"));
        assert!(script.contains("'CONTAINERS_CONF=/repo/c.conf'"));
        assert!(script.contains("exit 200"));
    }

    #[test]
    fn no_archive_means_no_load() {
        let script = render_script(&ChrootJob { image_archive: None, ..job() });
        assert!(script.contains("image=''"), "{script}");
    }

    #[test]
    fn words_with_quotes_stay_one_word() {
        let script = render_script(&ChrootJob { command: vec!["it's".into()], ..job() });
        assert!(script.contains(r#"sh '/repo' 'it'\''s'"#), "{script}");
    }
}
