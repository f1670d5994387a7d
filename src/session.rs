//! The detached tracer the prestart hook forks: it records one container
//! until its init exits, then writes the profile.
//!
//! It reports readiness (or the reason it failed) on a pipe to the hook, so
//! the container starts only once recording is on, and a failure reaches
//! podman at once instead of after a timeout.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;

use anyhow::{Context, Result};

use crate::exit_watch::{pidfd_open, wait_for_exit};
use crate::log_event::{TracerEnded, TracerStarted};
use crate::output_dir::Output;
use crate::profile::Profile;
use crate::recording;
use crate::tracer::{self, Tracer};

/// What the hook hands the tracer: the baseline already read, and the
/// output's directory already open (what was checked is what is written).
#[derive(Debug)]
pub struct Session {
    pub container_id: String,
    pub pid: i32,
    pub base: Option<Profile>,
    pub output: Output,
}

/// The first line the tracer writes on the ready pipe when recording is on.
pub const READY: &str = "ready";

/// Runs the tracer; returns its exit code. An error before "ready" goes to
/// the hook (which prints and logs it), one after it to the log.
pub fn run(session: &Session, ready: OwnedFd) -> i32 {
    let mut ready = File::from(ready);
    let started = match start(session) {
        Ok(started) => started,
        Err(e) => {
            let _ = writeln!(ready, "{e:#}");
            return 1;
        }
    };
    if writeln!(ready, "{READY}").is_err() {
        tracing::error!("the hook went away before the tracer was ready; not recording {}", session.container_id);
        return 1;
    }
    drop(ready);
    match record(session, started) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("container {}: {e:#}", session.container_id);
            1
        }
    }
}

fn record(session: &Session, started: Started) -> Result<()> {
    // Only now: the container cannot start before we said ready, and its
    // cgroup only goes away after it exits, while a cgroup v1 move can
    // block for a whole RCU grace period (15 ms here).
    leave_container_cgroups();
    let container = session.container_id.clone();
    let (pid, mntns, tracer_pid) = (session.pid, started.mntns, std::process::id());
    tracing::info!("{}", TracerStarted { container: container.clone(), pid, mntns, tracer_pid });

    let ended = wait_for_exit(&started.pidfd)?;
    let observed = started.tracer.collect()?;
    let skipped_runs = started.tracer.skipped_runs();
    drop(started.tracer);
    recording::warn_if_skipped(&container, skipped_runs);
    let summary = recording::write_profile(&observed, started.base.as_ref(), &session.output)?;
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).ok();
    let (rss_kib, cpu_ms) = usage.map_or((0, 0), |u| {
        let cpu = u.user_time() + u.system_time();
        (u.max_rss(), cpu.tv_sec() * 1000 + cpu.tv_usec() / 1000)
    });
    let (output, recorded, allowed_new) = (session.output.path().to_path_buf(), summary.recorded, summary.allowed_new);
    tracing::info!(
        "{}",
        TracerEnded { container, ended, output, recorded, allowed_new, rss_kib, cpu_ms, skipped_runs }
    );
    Ok(())
}

struct Started {
    pidfd: OwnedFd,
    mntns: u32,
    base: Option<Profile>,
    tracer: Tracer,
}

/// Everything up to "recording is on"; any error here fails the container start.
fn start(session: &Session) -> Result<Started> {
    // The container's init cannot exit before the hook returns, and the hook
    // waits for us: this pidfd refers to the right process.
    let pidfd = pidfd_open(session.pid).with_context(|| format!("failed to watch container pid {}", session.pid))?;
    let mntns = tracer::mount_namespace(session.pid)?;
    let base = session.base.clone();
    let tracer = Tracer::watch(mntns)?;
    Ok(Started { pidfd, mntns, base, tracer })
}

/// Moves this process to the root of every cgroup hierarchy, so removing
/// the container's (or conmon's) cgroup cannot kill the tracer.
fn leave_container_cgroups() {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let pid = std::process::id().to_string();
    for line in mountinfo.lines() {
        // mountinfo: id parent major:minor root mountpoint ... - fstype source options
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let fstype = fields.get(dash + 1).copied().unwrap_or("");
        if !(fstype == "cgroup" || fstype == "cgroup2") || fields.get(3) != Some(&"/") {
            continue;
        }
        let procs = format!("{}/cgroup.procs", fields[4]);
        if let Err(e) = std::fs::write(&procs, &pid) {
            tracing::debug!("could not move the tracer to {procs}: {e}");
        }
    }
}
