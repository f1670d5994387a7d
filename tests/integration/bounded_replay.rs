//! Replays under a candidate profile that may leave the runtime or the
//! workload waiting for good: a runtime or a shell without a call it waits
//! with (futex, wait4) can hang even before the container starts, where
//! podman's own `--timeout` does not reach. Every podman call here is bounded;
//! on timeout the container's processes are killed and the container removed.

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hook_test_support::podman::SLEEPER;

use crate::support::{exec_args, processes, Podman};

/// How long one podman call may take: far more than any corpus case needs.
const TIMEOUT: Duration = Duration::from_secs(10);

/// `cmd` run under `profile`, as `podman run --rm`; None, the container
/// removed, when it did not end in time.
pub fn run(p: &Podman, profile: &Path, cmd: &[&str]) -> Option<Output> {
    let name = unique_name(p, "run");
    let out = podman(p, &name, &p.run_args().rm().name(&name).confined_by(profile).args(cmd));
    if out.is_none() {
        remove(p, &name);
    }
    out
}

/// `cmd` run as a `podman exec` session in a container started under
/// `profile` (`sleep`, detached), then removed; the exec's output, or the
/// failed start's. None when either did not end in time.
pub fn exec(p: &Podman, profile: &Path, cmd: &[&str]) -> Option<Output> {
    let name = unique_name(p, "exec");
    let started = podman(p, &name, &p.run_args().detach().name(&name).confined_by(profile).args(&SLEEPER));
    let out = match started {
        Some(s) if s.status.success() => podman(p, &name, &exec_args(&name, cmd)),
        other => other,
    };
    remove(p, &name);
    out
}

/// A container name no other replay of this test process uses.
fn unique_name(p: &Podman, what: &str) -> String {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    format!("minimal-{what}-{}-{}-{n}", p.runtime, std::process::id())
}

/// `podman ARGS` for the container `name`; None, after killing the
/// container's processes, when it did not end in time (the caller removes
/// the container).
/// The output is small (a line or two), so the pipe is read once podman is
/// done.
fn podman<S: AsRef<std::ffi::OsStr>>(p: &Podman, name: &str, args: &[S]) -> Option<Output> {
    let mut child =
        p.podman_command().args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("podman runs");
    if let Some(done) = wait_until(&mut child, Instant::now() + TIMEOUT) {
        return Some(done);
    }
    // Not podman: `podman run` holds the container's lock while the runtime
    // hangs in create, so `podman inspect` would wait for good. conmon's
    // command line names the container (`-n NAME`), and the name is ours.
    kill_trees(name, child.id() as i32);
    if wait_until(&mut child, Instant::now() + TIMEOUT).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    None
}

/// `podman rm -f`, bounded: the container may already be gone.
fn remove(p: &Podman, name: &str) {
    let mut rm = p.podman_command();
    rm.args(["rm", "-f", "-t", "0", name]).stdout(Stdio::null()).stderr(Stdio::null());
    let mut rm = rm.spawn().expect("podman rm runs");
    if wait_until(&mut rm, Instant::now() + TIMEOUT).is_none() {
        let _ = rm.kill();
        let _ = rm.wait();
    }
}

/// The child's output once it has exited, or None at `deadline`.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<Output> {
    while Instant::now() < deadline {
        if child.try_wait().expect("a child can be waited for").is_some() {
            let mut stdout = Vec::new();
            if let Some(mut pipe) = child.stdout.take() {
                let _ = std::io::Read::read_to_end(&mut pipe, &mut stdout);
            }
            return Some(Output { status: child.wait().ok()?, stdout, stderr: Vec::new() });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// SIGKILLs every process but `spare` whose command line names `id`
/// (conmon) and everything below them (the runtime, the container).
fn kill_trees(id: &str, spare: i32) {
    let procs = processes();
    let mut doomed: Vec<i32> =
        procs.iter().filter(|p| p.pid != spare && p.args.iter().any(|a| a.contains(id))).map(|p| p.pid).collect();
    let mut i = 0;
    while i < doomed.len() {
        let parent = doomed[i];
        let children: Vec<i32> =
            procs.iter().filter(|p| p.ppid == parent && !doomed.contains(&p.pid)).map(|p| p.pid).collect();
        doomed.extend(children);
        i += 1;
    }
    for pid in doomed {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
}
