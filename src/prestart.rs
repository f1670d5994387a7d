//! The prestart hook (`-s`): check the request, start the detached tracer,
//! and return once it records (or fail with its reason).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::logging;
use crate::privileges;
use crate::profile_file;
use crate::session::READY;
use crate::state::{self, Container};

/// The fd number the tracer finds the ready pipe at.
const READY_FD: i32 = 3;

pub fn run(stdin: impl Read) -> Result<()> {
    privileges::check()?;
    let container = state::read(stdin)?;
    // Cheap checks first, here, so a mistake fails the start at once.
    profile_file::check_output(&container.request.output)?;
    spawn_tracer(&container)
}

fn spawn_tracer(c: &Container) -> Result<()> {
    // Close-on-exec: only the copy at READY_FD may reach the tracer, or the
    // hook would never see end-of-file when the tracer fails.
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("failed to create the tracer's ready pipe")?;
    let exe = std::env::current_exe().context("failed to find our own executable")?;
    let mut cmd = Command::new(&exe);
    cmd.arg("trace")
        .arg("--container-id")
        .arg(&c.id)
        .arg("--pid")
        .arg(c.pid.to_string())
        .arg("--output")
        .arg(&c.request.output)
        .arg("--ready-fd")
        .arg(READY_FD.to_string());
    if let Some(input) = &c.request.input {
        cmd.arg("--input").arg(input);
    }
    // The tracer outlives the hook: it must not hold the runtime's pipes,
    // or the runtime would wait for it. It logs to the journal or log file.
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let write_raw = write_end.as_raw_fd();
    // SAFETY: between fork and exec we only call async-signal-safe
    // functions (setsid, dup2, fcntl) and allocate nothing.
    unsafe {
        cmd.pre_exec(move || {
            // Its own session: the runtime's signals to the hook's group and a
            // closing terminal do not reach the tracer.
            nix::unistd::setsid()?;
            // dup2 clears close-on-exec on the copy, so the tracer gets it;
            // when the pipe already sits at READY_FD, clear the flag directly.
            let ok = if write_raw == READY_FD {
                libc::fcntl(READY_FD, libc::F_SETFD, 0) >= 0
            } else {
                libc::dup2(write_raw, READY_FD) >= 0
            };
            if !ok {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().with_context(|| format!("failed to start the tracer {exe:?}"))?;
    drop(write_end);
    let message = read_all(read_end);
    if message.lines().next() == Some(READY) {
        return Ok(());
    }
    // It failed before recording: reap it and pass its reason on.
    let status = child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
    if message.trim().is_empty() {
        bail!("the tracer stopped before recording ({status}); see the journal or {:?}", logging::log_file());
    }
    bail!("{}", message.trim());
}

fn read_all(fd: OwnedFd) -> String {
    let mut s = String::new();
    let _ = File::from(fd).read_to_string(&mut s);
    s
}
