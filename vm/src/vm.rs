//! One boot: prepare `vm/out/<version>/`, start QEMU, watch it until the guest powers off or
//! the timeout hits, and tell a command's result apart from an infrastructure failure.
//!
//! ```text
//! out/<version>/console.log      the guest's serial console (kept: first place to look)
//! out/<version>/qemu.log         QEMU's own stdout and stderr
//! out/<version>/initramfs.cpio   rebuilt for every boot
//! out/<version>/share/           the harness share: run.sh in, output.log and status out
//! ```

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fetch::Kernel;
use crate::guest::{self, Job};
use crate::initramfs::{self, InitramfsError};
use crate::qemu::{self, Accel, Share, VmConfig};

/// What can stop a boot before QEMU runs. Reported as [`Outcome::Infra`], never returned.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("failed to {what} {path}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("failed to build the initramfs")]
    Initramfs(#[from] InitramfsError),
    #[error("failed to start {program} (install qemu-system-x86)")]
    Spawn { program: &'static str, source: std::io::Error },
}

impl VmError {
    fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_owned();
        move |source| VmError::Io { what, path, source }
    }
}

/// Resources and limits of a VM.
#[derive(Debug, Clone, Copy)]
pub struct VmOptions {
    pub accel: Accel,
    pub memory_mib: u32,
    pub cpus: u32,
    pub timeout: Duration,
}

/// How a boot ended.
#[derive(Debug)]
pub enum Outcome {
    /// The command ran to completion: its exit status and everything it printed.
    Exited { status: i32, output: String },
    /// The command did not finish for reasons that are not the test's: download, boot, panic,
    /// setup or timeout. The text says which, the console log says more.
    Infra(String),
}

#[derive(Debug)]
pub struct VmReport {
    pub kernel: Kernel,
    pub out_dir: PathBuf,
    /// From QEMU's start to the guest having everything mounted.
    pub boot: Option<Duration>,
    /// From QEMU's start to its exit.
    pub wall: Duration,
    pub outcome: Outcome,
}

/// Boots `kernel`, runs `job` and reports. Never fails: whatever goes wrong is an [`Outcome`].
/// With `live`, the command's output is copied there while it runs.
pub fn run(kernel: &Kernel, job: &Job, opts: &VmOptions, out_root: &Path, live: Option<&mut dyn Write>) -> VmReport {
    let out_dir = out_root.join(&kernel.version);
    let start = Instant::now();
    let report = |outcome, boot| VmReport {
        kernel: kernel.clone(),
        out_dir: out_dir.clone(),
        boot,
        wall: start.elapsed(),
        outcome,
    };
    let share = out_dir.join("share");
    let child = match prepare(kernel, job, &out_dir, &share).and_then(|initrd| {
        let cfg = VmConfig {
            accel: opts.accel,
            memory_mib: opts.memory_mib,
            cpus: opts.cpus,
            kernel: kernel.boot_image.clone(),
            initrd,
            extra_append: extra_append(job),
            shares: shares(job, &share),
            console_log: out_dir.join("console.log"),
        };
        spawn(&cfg, &out_dir)
    }) {
        Ok(child) => child,
        // `{:#}` keeps the causes (the io error, the tool's stderr) on the one line of the table.
        Err(e) => return report(Outcome::Infra(format!("{:#}", anyhow::Error::from(e))), None),
    };
    let watched = watch(child, &out_dir.join("console.log"), &share.join(guest::OUTPUT_FILE), opts.timeout, live);
    let outcome = classify(&watched, opts.timeout, &out_dir, &share);
    report(outcome, watched.booted)
}

/// The root (the host's, or a systemd guest's userland with the repository), and the harness share.
fn shares(job: &Job, share: &Path) -> Vec<Share> {
    let root = job.systemd.as_ref().map_or_else(|| PathBuf::from("/"), |g| g.root.clone());
    let mut shares = vec![
        Share { tag: "rootfs".into(), path: root, readonly: true },
        Share { tag: "harness".into(), path: share.to_owned(), readonly: false },
    ];
    if job.systemd.is_some() {
        shares.push(Share { tag: "repo".into(), path: job.workdir.clone(), readonly: true });
    }
    shares
}

/// A systemd guest: stage 1 boots systemd, with the unified cgroup hierarchy (the default of
/// systemd 256 and later; older ones need asking) and only its errors on the console.
fn extra_append(job: &Job) -> Vec<String> {
    match job.systemd {
        Some(_) => [guest::SYSTEMD_PARAM, "systemd.unified_cgroup_hierarchy=1", "systemd.show_status=error"]
            .map(String::from)
            .to_vec(),
        None => vec![],
    }
}

/// Boots `kernel` with KVM and an init that powers off at once. True only if that worked
/// within `timeout`: on some hosts /dev/kvm exists but hangs ordinary kernels.
pub fn probe_kvm(kernel: &Kernel, out_root: &Path, timeout: Duration) -> bool {
    let dev_ok = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok();
    if !dev_ok {
        return false;
    }
    let dir = out_root.join("kvm-probe");
    let initrd = dir.join("initramfs.cpio");
    if std::fs::create_dir_all(&dir).is_err() || initramfs::build(&kernel.modules_dir, &initrd).is_err() {
        return false;
    }
    let cfg = VmConfig {
        accel: Accel::Kvm,
        memory_mib: 256,
        cpus: 1,
        kernel: kernel.boot_image.clone(),
        initrd,
        extra_append: vec!["vmharness.probe".into()],
        shares: vec![],
        console_log: dir.join("console.log"),
    };
    let Ok(child) = spawn(&cfg, &dir) else { return false };
    let watched = watch(child, &cfg.console_log, &dir.join("none"), timeout, None);
    !watched.timed_out && read_lossy(&cfg.console_log).contains(guest::PROBE_MARKER)
}

/// Fresh output directory, share contents and initramfs; returns the initramfs path.
fn prepare(kernel: &Kernel, job: &Job, out_dir: &Path, share: &Path) -> Result<PathBuf, VmError> {
    for stale in ["console.log", "qemu.log"] {
        let _ = std::fs::remove_file(out_dir.join(stale));
    }
    let _ = std::fs::remove_dir_all(share);
    std::fs::create_dir_all(share).map_err(VmError::io("create", share))?;
    // An archive under /var/tmp (say) would be hidden by the guest's fresh tmpfs: bring a copy in
    // through the share instead.
    let mut job = job.clone();
    // A systemd guest sees the repository, not the host's root: what is outside it comes by copy.
    let (workdir, systemd) = (job.workdir.clone(), job.systemd.is_some());
    let outside_repo = |p: &Path| !p.starts_with(&workdir);
    let hidden = |p: &Path| if systemd { outside_repo(p) } else { guest::masked_by(p).is_some() };
    if let Some(archive) = job.image_archive.as_mut().filter(|a| hidden(a)) {
        *archive = copy_in(archive, share, "images.tar")?;
    }
    // Only systemd guests install a package.
    if let Some(deb) = job.systemd.as_mut().and_then(|g| g.deb.as_mut()).filter(|d| outside_repo(d)) {
        *deb = copy_in(deb, share, "package.deb")?;
    }
    for (name, contents) in guest::share_files(&job) {
        let path = share.join(name);
        std::fs::write(&path, contents).map_err(VmError::io("write", &path))?;
    }
    let initrd = out_dir.join("initramfs.cpio");
    initramfs::build(&kernel.modules_dir, &initrd)?;
    Ok(initrd)
}

/// Copies `file` into the harness share as `name`; returns its path in the guest.
fn copy_in(file: &Path, share: &Path, name: &str) -> Result<PathBuf, VmError> {
    let copy = share.join(name);
    std::fs::copy(file, &copy).map_err(VmError::io("copy into the harness share", file))?;
    Ok(Path::new("/vm-harness").join(name))
}

fn spawn(cfg: &VmConfig, out_dir: &Path) -> Result<Child, VmError> {
    let log_path = out_dir.join("qemu.log");
    let log = File::create(&log_path).map_err(VmError::io("create", &log_path))?;
    let log2 = log.try_clone().map_err(VmError::io("share", &log_path))?;
    let args = qemu::command_line(cfg);
    // Kept so a failing boot can be rerun by hand, exactly.
    let cmdline: Vec<String> =
        std::iter::once(qemu::QEMU.to_owned()).chain(args.iter().map(|a| guest::quote(a))).collect();
    let cmdline_path = out_dir.join("qemu.cmdline");
    std::fs::write(&cmdline_path, cmdline.join(" ") + "\n").map_err(VmError::io("write", &cmdline_path))?;
    Command::new(qemu::QEMU)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|source| VmError::Spawn { program: qemu::QEMU, source })
}

/// What watching QEMU saw.
struct Watched {
    exit: Option<std::process::ExitStatus>,
    timed_out: bool,
    booted: Option<Duration>,
}

/// Polls QEMU until it exits or `timeout` passes (then kills it), noting when the guest booted
/// and copying new command output to `live`.
fn watch(
    mut child: Child,
    console: &Path,
    output: &Path,
    timeout: Duration,
    mut live: Option<&mut dyn Write>,
) -> Watched {
    let start = Instant::now();
    let mut booted = None;
    let mut output_seen = 0u64;
    loop {
        let exit = child.try_wait().ok().flatten();
        // The console log stays small (tens of KiB at loglevel=4): reading it whole is simpler
        // than catching a marker split across two reads.
        if booted.is_none() && read_lossy(console).contains(guest::BOOTED_MARKER) {
            booted = Some(start.elapsed());
        }
        if let Some(out) = live.as_deref_mut() {
            let new = tail(output, &mut output_seen);
            let _ = out.write_all(&new).and_then(|_| out.flush());
        }
        if exit.is_some() {
            return Watched { exit, timed_out: false, booted };
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let exit = child.wait().ok();
            return Watched { exit, timed_out: true, booted };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Bytes of `path` after `seen`, advancing `seen`: the new part of a file being written.
fn tail(path: &Path, seen: &mut u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    let Ok(mut file) = File::open(path) else { return bytes };
    if file.seek(SeekFrom::Start(*seen)).is_ok() && file.read_to_end(&mut bytes).is_ok() {
        *seen += bytes.len() as u64;
    }
    bytes
}

/// A status file means the command finished; everything else is an infrastructure failure,
/// described from what the console shows.
fn classify(watched: &Watched, timeout: Duration, out_dir: &Path, share: &Path) -> Outcome {
    let status = std::fs::read_to_string(share.join(guest::STATUS_FILE)).ok();
    if let Some(status) = status.and_then(|s| s.trim().parse::<i32>().ok()) {
        let output = read_lossy(&share.join(guest::OUTPUT_FILE));
        return Outcome::Exited { status, output };
    }
    let console = read_lossy(&out_dir.join("console.log"));
    let log = out_dir.join("console.log");
    let reason = if watched.timed_out {
        format!("timed out after {}s (raise --timeout if the tests are just slow)", timeout.as_secs())
    } else if let Some(line) = console.lines().find(|l| l.contains("Kernel panic")) {
        format!("kernel panic ({})", line.trim())
    } else if let Some(line) = console.lines().rev().find(|l| l.starts_with(guest::ERROR_PREFIX)) {
        line.trim_start_matches(guest::ERROR_PREFIX).to_owned()
    } else if watched.exit.is_some_and(|e| !e.success()) {
        let qemu_log = read_lossy(&out_dir.join("qemu.log"));
        format!("QEMU failed: {}", qemu_log.lines().next().unwrap_or("no message"))
    } else {
        "the guest stopped before the command finished".to_owned()
    };
    Outcome::Infra(format!("{reason}; console log: {}", log.display()))
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// `--accel`: what the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelMode {
    /// KVM if a probe boot works on this host, TCG otherwise.
    Auto,
    Kvm,
    Tcg,
}

/// Resolves `auto` with a probe boot of `kernel`. The answer is remembered until the host
/// reboots (keyed by its boot id): where KVM hangs, each probe costs its full timeout.
pub fn choose_accel(mode: AccelMode, kernel: &Kernel, out_root: &Path) -> (Accel, String) {
    match mode {
        AccelMode::Kvm => return (Accel::Kvm, "kvm (asked for)".into()),
        AccelMode::Tcg => return (Accel::Tcg, "tcg (asked for)".into()),
        AccelMode::Auto => {}
    }
    let boot_id = read_lossy(Path::new("/proc/sys/kernel/random/boot_id")).trim().to_owned();
    let remembered = out_root.join("kvm-probe").join("result");
    if let Some((id, answer)) = read_lossy(&remembered).trim().split_once(' ') {
        if id == boot_id && !boot_id.is_empty() {
            let accel = if answer == "kvm" { Accel::Kvm } else { Accel::Tcg };
            return (accel, format!("{answer} (KVM probe result of this host boot)"));
        }
    }
    let works = probe_kvm(kernel, out_root, Duration::from_secs(15));
    let answer = if works { "kvm" } else { "tcg" };
    let _ = std::fs::write(&remembered, format!("{boot_id} {answer}\n"));
    let accel = if works { Accel::Kvm } else { Accel::Tcg };
    let why = if works { "kvm (probe boot worked)" } else { "tcg (no working KVM: probe boot failed)" };
    (accel, why.into())
}
