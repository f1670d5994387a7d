//! `vm-harness systemd`: the command in a guest that boots like a distribution. A userland's root
//! (from `rootfs`, cached) is the guest's `/`, systemd is PID 1 with cgroup v2 unified, journald
//! and dbus run, podman keeps its defaults (systemd cgroup manager, journald), and the package is
//! installed at boot with apt. The repository is shared at its own path for the test binary,
//! the hook and the fixtures. One boot, one table row; exit codes as for the matrix.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::exit;
use crate::fetch::Kernel;
use crate::guest::{Job, SystemdGuest};
use crate::report::{self, Row, Verdict};
use crate::rootfs::{self, RootfsError, Userland};
use crate::vm::{self, Outcome, VmOptions};

/// Where one userland's guest keeps its files: `<out>/systemd-<name>/<kernel version>/`, apart
/// from the host-root boots of the same kernel, so the two can run side by side.
pub fn out_root(out: &Path, userland: &Userland) -> PathBuf {
    out.join(format!("systemd-{}", userland.name))
}

/// Where a systemd guest's pieces live on the host: the apt download cache,
/// the userland roots, and the output directory.
pub struct Dirs {
    pub apt: PathBuf,
    pub roots: PathBuf,
    pub out: PathBuf,
}

/// Builds (or reuses) `userland`'s root, boots it on `kernel` with systemd, runs `job` with `deb`
/// installed first, prints the table and what failed; returns the exit code.
pub fn run(
    userland: Userland,
    kernel: &Kernel,
    job: &Job,
    deb: Option<PathBuf>,
    opts: &VmOptions,
    dirs: &Dirs,
    live: &mut dyn Write,
) -> Result<i32, RootfsError> {
    let Dirs { apt, roots, out } = dirs;
    let _ =
        writeln!(live, "vm-harness: systemd guest {}: resolving versions, building the root if needed", userland.name);
    let root = rootfs::ensure(userland, apt, roots)?;
    let _ = writeln!(
        live,
        "vm-harness: systemd guest {} on {}: systemd {}, podman {}, crun {}, runc {}: {}",
        userland.name,
        kernel.version,
        root.version("systemd"),
        root.version("podman"),
        root.version("crun"),
        root.version("runc"),
        root.path.display()
    );
    let job = Job { systemd: Some(SystemdGuest { root: root.path.clone(), deb }), ..job.clone() };
    let report = vm::run(kernel, &job, opts, &out_root(out, &userland), Some(live));
    let row = Row::from_report(&report);
    let _ = write!(live, "{}", report::render_table(std::slice::from_ref(&row)));
    if row.verdict == Verdict::Fail {
        if let Outcome::Exited { output, .. } = &report.outcome {
            let _ = write!(
                live,
                "---- systemd {}: what failed ----\n{}",
                userland.name,
                report::failure_excerpt(output, 80)
            );
        }
    }
    Ok(match row.verdict {
        Verdict::Pass => exit::OK,
        Verdict::Fail => exit::TEST_FAILURE,
        Verdict::Infra(_) => exit::INFRA,
    })
}
