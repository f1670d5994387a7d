//! `record -- CMD`: the same engine without podman. CMD runs as PID 1 of new
//! PID and mount namespaces (so it has a mount namespace of its own to be
//! recorded by, as a container would), and the profile is written when it
//! exits. Our exit code is CMD's.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use crate::exit_watch::{pidfd_open, wait_for_exit, Ended};
use crate::policy::Policy;
use crate::privileges;
use crate::profile_file;
use crate::recording;
use crate::tracer::{self, Tracer};

#[derive(Debug, Clone)]
pub struct Record {
    pub input: Option<PathBuf>,
    pub output: PathBuf,
    pub command: Vec<OsString>,
}

/// Runs the command under recording; returns its exit code.
pub fn run(args: &Record) -> Result<i32> {
    privileges::check()?;
    let cwd = std::env::current_dir().context("failed to read the working directory")?;
    // The operator's config confines what containers' authors ask for; a
    // person running `record` as root is not confined, but the same input
    // and output checks apply.
    let policy = Policy::default();
    let base = args.input.as_ref().map(|i| profile_file::load_baseline(&cwd.join(i), &policy)).transpose()?;
    let output = profile_file::check_output(&cwd.join(&args.output), &policy)?;
    let argv: Vec<CString> = args
        .command
        .iter()
        .map(|a| CString::new(a.as_bytes()).with_context(|| format!("argument {a:?} contains a NUL byte")))
        .collect::<Result<_>>()?;
    if argv.is_empty() {
        bail!("no command given: use `record -o OUT -- CMD [ARGS...]`");
    }

    let (child, tracer) = spawn_in_namespaces(&argv, |mntns| Tracer::watch(mntns).map_err(Into::into))?;

    let pidfd = pidfd_open(child.as_raw()).context("failed to watch the command")?;
    if let Ended::Signal(signo) = wait_for_exit(&pidfd)? {
        // PID 1 of a namespace ignores signals it has no handler for: end it.
        tracing::info!("stopping the command after signal {signo}");
        let _ = kill(child, Signal::SIGKILL);
    }
    let code = match waitpid(child, None).context("failed to reap the command")? {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        other => bail!("unexpected wait status {other:?}"),
    };
    let observed = tracer.collect()?;
    recording::warn_if_skipped(&format!("{:?}", args.command[0]), tracer.skipped_runs());
    drop(tracer);
    let summary = recording::write_profile(&observed, base.as_ref(), &output)?;
    tracing::info!("wrote {output:?}: {} syscalls recorded, {} newly allowed", summary.recorded, summary.allowed_new);
    Ok(code)
}

/// Forks CMD into new PID and mount namespaces, calls `ready` with its mount
/// namespace before it may exec, and returns its pid with what `ready` gave.
fn spawn_in_namespaces<T>(argv: &[CString], ready: impl FnOnce(u32) -> Result<T>) -> Result<(Pid, T)> {
    let (to_parent_r, to_parent_w) = nix::unistd::pipe().context("failed to create a pipe")?;
    let (to_child_r, to_child_w) = nix::unistd::pipe().context("failed to create a pipe")?;
    // Our next child becomes PID 1 of a new PID namespace.
    unshare(CloneFlags::CLONE_NEWPID).context("failed to create a PID namespace")?;
    // SAFETY: this process has a single thread (nothing here spawns any), so
    // the child may run ordinary code until it execs.
    match unsafe { fork() }.context("failed to fork")? {
        ForkResult::Child => {
            drop((to_parent_r, to_child_w));
            let mut to_parent = File::from(to_parent_w);
            let mut to_child = File::from(to_child_r);
            let err = match enter_mount_namespace() {
                Ok(()) => {
                    let _ = to_parent.write_all(b"1");
                    let mut go = [0u8; 1];
                    if to_child.read_exact(&mut go).is_err() {
                        std::process::exit(127); // the parent failed; it says why
                    }
                    drop((to_parent, to_child));
                    nix::unistd::execvp(&argv[0], argv).unwrap_err()
                }
                Err(e) => e,
            };
            eprintln!("oci-seccomp-bpf-hook: failed to run {:?}: {err}", argv[0]);
            std::process::exit(127);
        }
        ForkResult::Parent { child } => {
            drop((to_parent_w, to_child_r));
            let mut byte = [0u8; 1];
            File::from(to_parent_r).read_exact(&mut byte).context("the command failed to set up its namespaces")?;
            let mntns = tracer::mount_namespace(child.as_raw())?;
            let value = ready(mntns)?;
            File::from(to_child_w).write_all(b"1").context("failed to start the command")?;
            Ok((child, value))
        }
    }
}

/// In the child: a private mount namespace with a /proc of the new PID
/// namespace, so `ps` inside sees what a container would.
fn enter_mount_namespace() -> nix::Result<()> {
    unshare(CloneFlags::CLONE_NEWNS)?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)?;
    // Best effort: a missing /proc mount point only makes `ps` wrong.
    let _ = mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    );
    Ok(())
}
