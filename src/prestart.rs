//! The prestart hook (`-s`): check the request, fork the detached tracer,
//! and return once it records (or fail with its reason).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::sys::wait::waitpid;
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, fork, setsid, ForkResult};

use crate::logging;
use crate::privileges;
use crate::profile_file;
use crate::session::{self, Session, READY};
use crate::state::{self, Container};

pub fn run(stdin: impl Read) -> Result<()> {
    privileges::check()?;
    let container = state::read(stdin)?;
    // Cheap checks first, here, so a mistake fails the start at once.
    profile_file::check_output(&container.request.output)?;
    spawn_tracer(&container)
}

/// Forks the tracer (no exec: this process has everything loaded already,
/// and a second program start would add to every container start) and
/// waits until it records or fails.
fn spawn_tracer(c: &Container) -> Result<()> {
    // Close-on-exec: the container's runtime must never inherit them.
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("failed to create the tracer's ready pipe")?;
    let session = Session {
        container_id: c.id.clone(),
        pid: c.pid,
        input: c.request.input.clone(),
        output: c.request.output.clone(),
    };
    // SAFETY: this process has a single thread (nothing before this point
    // starts one), so the child may run ordinary Rust code.
    match unsafe { fork() }.context("failed to fork the tracer")? {
        ForkResult::Child => {
            drop(read_end);
            let code = match detach_from_runtime() {
                Ok(()) => session::run(&session, write_end),
                Err(e) => {
                    let _ = writeln!(File::from(write_end), "failed to detach the tracer: {e}");
                    1
                }
            };
            std::process::exit(code);
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let message = read_all(read_end);
            if message.lines().next() == Some(READY) {
                return Ok(());
            }
            // It failed before recording: reap it and pass its reason on.
            let status = waitpid(child, None).map(|s| format!("{s:?}")).unwrap_or_else(|e| e.to_string());
            if message.trim().is_empty() {
                bail!("the tracer stopped before recording ({status}); see the journal or {:?}", logging::log_file());
            }
            bail!("{}", message.trim());
        }
    }
}

/// The tracer outlives the hook: its own session (the runtime's signals to
/// the hook's process group do not reach it), and none of the runtime's
/// pipes (the runtime waits for a hook's stdout and stderr to close).
fn detach_from_runtime() -> nix::Result<()> {
    setsid()?;
    let null = OpenOptions::new().read(true).write(true).open("/dev/null").map_err(|_| Errno::ENOENT)?;
    dup2_stdin(&null)?;
    dup2_stdout(&null)?;
    dup2_stderr(&null)
}

fn read_all(fd: OwnedFd) -> String {
    let mut s = String::new();
    let _ = File::from(fd).read_to_string(&mut s);
    s
}
