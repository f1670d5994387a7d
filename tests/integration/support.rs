//! What every integration test needs: the hook binary, the fixtures, a
//! podman wired to this build's hook, and honest skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hook_test_support::podman::{self, Cli, Run};
pub use hook_test_support::{hook::StandIn, pins, tracer_started, IMAGE, PROBE_IN_IMAGE, UNUSUAL};
use serde_json::Value;
use tempfile::TempDir;

/// Skips the calling test, saying why, in the form the VM harness counts.
macro_rules! skip {
    ($($reason:tt)*) => {{
        println!("SKIPPED: {}: {}", crate::support::test_name(), format!($($reason)*));
        return;
    }};
}
pub(crate) use skip;

pub fn test_name() -> String {
    std::thread::current().name().unwrap_or("?").to_string()
}

pub fn hook_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_oci-seccomp-bpf-hook"))
}

/// A static fixture program built by tests/fixtures/images.sh.
pub fn fixture(name: &str) -> PathBuf {
    let path = hook_test_support::repo_root().join("target/fixtures").join(name);
    assert!(path.exists(), "{path:?} is missing: run `bash tests/fixtures/images.sh` (or `just fixtures`) first");
    path
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The tracer writes the profile right after the container's init exits,
/// which can be a moment after podman returns. The write is atomic, so the
/// file either is complete or is not there.
pub fn wait_for_profile(path: &Path) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(Instant::now() < deadline, "no profile at {path:?} 60 s after the container exited");
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?} is not JSON ({e}): {text}"))
}

/// The names of the profile's rules with `action`.
pub fn names_with(profile: &Value, action: &str) -> Vec<String> {
    profile["syscalls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["action"] == action)
        .flat_map(|r| r["names"].as_array().into_iter().flatten())
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

/// The allowed names, sorted, each once (a name with argument rules has a
/// rule per value).
pub fn allowed(profile: &Value) -> Vec<String> {
    let mut names = names_with(profile, "SCMP_ACT_ALLOW");
    names.sort();
    names.dedup();
    names
}

pub fn architectures(profile: &Value) -> Vec<String> {
    profile["architectures"].as_array().into_iter().flatten().map(|a| a.as_str().unwrap().to_string()).collect()
}

/// Podman, configured by the suite's containers.conf (CONTAINERS_CONF, else
/// tests/fixtures/containers.conf), running this build's hook from a private
/// hooks.d folder.
pub struct Podman {
    pub runtime: &'static str,
    cli: Cli,
    _hooks: TempDir,
    pub work: TempDir,
}

/// The longest any one podman command of a test may take: a traced run in a
/// TCG guest takes up to a minute.
const PODMAN_LIMIT: std::time::Duration = std::time::Duration::from_secs(900);

impl Podman {
    /// A podman for `runtime`, or `None` (the test skipped, with the
    /// reason printed) when `off` gives a reason not to run.
    pub fn unless(off: Option<&str>, runtime: &'static str) -> Option<Podman> {
        if let Some(why) = off {
            println!("SKIPPED: {}: {why}", test_name());
            return None;
        }
        Podman::new(runtime)
    }

    /// None (after printing why) when podman tests cannot run here.
    pub fn new(runtime: &'static str) -> Option<Podman> {
        if !is_root() {
            println!("SKIPPED: {}: podman tests need root (the hook refuses rootless containers)", test_name());
            return None;
        }
        let hooks = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        podman::write_entry(hooks.path(), hook_bin(), &work.path().join("hook.log")).unwrap();
        // A podman that stalls (a runtime hung by a profile under test) fails
        // its test instead of holding CI until its own time limit.
        let cli = Cli::new(hooks.path().to_path_buf()).bounded(PODMAN_LIMIT);
        assert!(cli.has_image(IMAGE), "fixture image {IMAGE} is missing: run `bash tests/fixtures/images.sh` first");
        Some(Podman { runtime, cli, _hooks: hooks, work })
    }

    /// What the hook and its tracer logged (their log file; the journal
    /// takes it instead where one runs).
    pub fn hook_log(&self) -> String {
        if Path::new("/run/systemd/journal/socket").exists() {
            let o = Command::new("journalctl").args(["-t", "oci-seccomp-bpf-hook", "--since", "-120s"]).output();
            return o.map(|o| stdout(&o)).unwrap_or_default();
        }
        std::fs::read_to_string(self.path("hook.log")).unwrap_or_default()
    }

    /// The start event of the tracer recording container `id`.
    pub fn tracer_of(&self, id: &str) -> hook_test_support::TracerStarted {
        let log = self.hook_log();
        tracer_started(&log, id).unwrap_or_else(|| panic!("no tracer-started event for {id} in: {log}"))
    }

    /// A path in this test's scratch folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// podman wired like `podman()`, to spawn rather than wait for: the
    /// podman process itself (no time bound wrapped around it), which the
    /// caller bounds and kills.
    pub fn podman_command(&self) -> Command {
        Cli { limit: None, ..self.cli.clone() }.command()
    }

    pub fn podman<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        self.cli.output(args).unwrap()
    }

    /// `podman exec CONTAINER CMD...`.
    pub fn exec(&self, container: &str, cmd: &[&str]) -> Output {
        self.podman(&exec_args(container, cmd))
    }

    /// `podman run` of the fixture image under this test's runtime.
    pub fn run_args(&self) -> Run {
        Run::new(self.runtime)
    }

    /// Runs `cmd` traced with `annotation` and returns podman's output.
    pub fn trace_with(&self, annotation: &str, options: &[&str], cmd: &[&str]) -> Output {
        let a = format!("{}={annotation}", hook_test_support::ANNOTATION);
        self.podman(&self.run_args().rm().annotation(&a).flags(options).args(cmd))
    }

    /// Starts `sleep 1000` detached, configured by `run`; returns its name.
    pub fn start_sleeper(&self, suffix: &str, run: Run) -> String {
        let name = format!("seccomp-test-{}-{}-{suffix}", self.runtime, std::process::id());
        let o = self.podman(&run.detach().name(&name).args(&podman::SLEEPER));
        assert!(o.status.success(), "podman run -d {name}: {}", stderr(&o));
        name
    }

    /// Traces `cmd` into `out` (optionally extending `base`); asserts the run
    /// succeeded and returns the profile with podman's output.
    pub fn trace(&self, base: Option<&Path>, out: &Path, cmd: &[&str]) -> (Value, Output) {
        let annotation = match base {
            Some(b) => format!("if:{};of:{}", b.display(), out.display()),
            None => format!("of:{}", out.display()),
        };
        let o = self.trace_with(&annotation, &[], cmd);
        assert!(o.status.success(), "traced run of {cmd:?} failed: {}{}", stdout(&o), stderr(&o));
        (wait_for_profile(out), o)
    }

    /// Runs `cmd` under the seccomp profile `profile`.
    pub fn replay(&self, profile: &Path, cmd: &[&str]) -> Output {
        self.podman(&self.run_args().rm().confined_by(profile).args(cmd))
    }

    /// Traces `cmd`, then replays it under the profile and asserts it
    /// behaves the same (output and exit code). Returns the profile.
    pub fn trace_and_replay(&self, cmd: &[&str]) -> Value {
        let out = self.path("profile.json");
        let (profile, first) = self.trace(None, &out, cmd);
        assert!(!allowed(&profile).is_empty(), "empty profile for {cmd:?}: {profile}");
        let again = self.replay(&out, cmd);
        if (again.status.code(), stdout(&again)) != (first.status.code(), stdout(&first)) {
            println!("the profile of {cmd:?}:\n{profile}\nthe hook's log:\n{}", self.hook_log());
        }
        assert_same(&first, &again, cmd);
        profile
    }
}

/// The arguments of `podman exec CONTAINER CMD...`.
pub fn exec_args<'a>(container: &'a str, cmd: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["exec", container];
    args.extend(cmd);
    args
}

pub fn assert_same(first: &Output, again: &Output, cmd: &[&str]) {
    assert_eq!(
        (again.status.code(), stdout(again)),
        (first.status.code(), stdout(first)),
        "{cmd:?} behaves differently under its own profile; stderr: {}",
        stderr(again)
    );
}

/// A process of the process table: pid, parent, command line arguments.
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub args: Vec<String>,
}

/// Every process now (those that exit while being read are left out).
pub fn processes() -> Vec<Proc> {
    let read = |entry: std::fs::DirEntry| -> Option<Proc> {
        let pid = entry.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        // The command name (field 2) may hold spaces: count fields after ')'.
        let ppid = stat[stat.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()?;
        let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
        let args = cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(hook_test_support::text).collect();
        Some(Proc { pid, ppid, args })
    };
    std::fs::read_dir("/proc").into_iter().flatten().flatten().filter_map(read).collect()
}

/// Pids of our processes whose first argument is `first_arg`: `-s` for the
/// hook and the tracer it forks, `record` for the standalone command.
pub fn hook_processes(first_arg: &str) -> Vec<i32> {
    let ours = |p: &Proc| p.args.first().is_some_and(|a| a.ends_with("oci-seccomp-bpf-hook"));
    processes()
        .into_iter()
        .filter(|p| ours(p) && p.args.get(1).is_some_and(|a| a == first_arg))
        .map(|p| p.pid)
        .collect()
}
