//! Drives podman and the hook through hook-test-support, as the
//! integration tests do: a private hooks.d entry pointing at this build's
//! hook, its log in a file of our own, and the test suite's containers.conf.

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use hook_test_support::hook::{self, StandIn};
use hook_test_support::podman::{self, Cli, Run};

pub use hook_test_support::hook::wait_for_file;
pub use hook_test_support::text;

/// Selects a do-nothing prestart hook: what running any hook costs.
const NOOP_ANNOTATION: &str = "io.containers.bench-noop";

/// How a container is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    /// With a prestart hook that is /bin/true.
    NoopHook,
    Traced,
}

pub struct Harness {
    pub hook: PathBuf,
    pub image: String,
    /// Scratch folder (bench/out): hooks.d, log, profiles.
    pub scratch: PathBuf,
    cli: Cli,
    log: PathBuf,
    serial: AtomicUsize,
}

impl Harness {
    pub fn new(hook: PathBuf, image: String, scratch: PathBuf) -> Result<Harness> {
        let hooks_dir = scratch.join("hooks.d");
        let profiles = scratch.join("profiles");
        // Old profiles would let wait_for_file() succeed at once.
        let _ = std::fs::remove_dir_all(&profiles);
        std::fs::create_dir_all(&profiles).with_context(|| format!("failed to create {profiles:?}"))?;
        let log = scratch.join("hook.log");
        let _ = std::fs::remove_file(&log);
        podman::write_entry(&hooks_dir, &hook, &log)?;
        let noop = serde_json::json!({
            "version": "1.0.0",
            "hook": {"path": "/bin/true", "args": ["true"]},
            "when": {"annotations": {format!("^{}$", NOOP_ANNOTATION.replace('.', "\\.")): ".*"}},
            "stages": ["prestart"],
        });
        std::fs::write(hooks_dir.join("noop.json"), noop.to_string())?;
        let cli = Cli::new(hooks_dir);
        ensure!(cli.has_image(&image), "image {image} is missing: run `just fixtures` first");
        Ok(Harness { hook, image, scratch, cli, log, serial: AtomicUsize::new(0) })
    }

    /// A fresh profile path for one traced run.
    pub fn out_path(&self) -> PathBuf {
        let n = self.serial.fetch_add(1, Ordering::Relaxed);
        self.scratch.join("profiles").join(format!("p{n}.json"))
    }

    /// `podman run` of the bench's image under `runtime`.
    fn run_of(&self, runtime: &str) -> Run {
        Run::new(runtime).image(&self.image)
    }

    /// Runs a container to its end; returns its output and podman's wall
    /// time. A traced run also waits for the tracer to write its profile
    /// (outside the timed part), so the next run starts from a quiet host.
    pub fn run(&self, runtime: &str, mode: Mode, opts: &[&str], cmd: &[&str]) -> Result<(Output, Duration)> {
        let out = self.out_path();
        let run = match mode {
            Mode::Plain => self.run_of(runtime),
            Mode::NoopHook => self.run_of(runtime).annotation(&format!("{NOOP_ANNOTATION}=1")),
            Mode::Traced => self.run_of(runtime).traced_into(&out),
        };
        let args = run.rm().flags(opts).args(cmd);
        let start = Instant::now();
        let o = self.cli.ok(&args)?;
        let took = start.elapsed();
        if mode == Mode::Traced {
            wait_for_file(&out, 20)?;
        }
        Ok((o, took))
    }

    /// Starts an untraced container in the background, its output piped;
    /// pass `--name` in `opts` to be able to `kill` it.
    pub fn spawn(&self, runtime: &str, opts: &[&str], cmd: &[&str]) -> Result<Child> {
        let args = self.run_of(runtime).rm().flags(opts).args(cmd);
        let mut c = self.cli.command();
        c.args(&args).stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().context("failed to run podman")
    }

    /// A detached traced runc container running `cmd`, recording into a
    /// fresh profile path.
    fn detached(&self, rm: bool, cmd: &[&str]) -> (Vec<String>, PathBuf) {
        let out = self.out_path();
        let run = self.run_of("runc").detach().traced_into(&out);
        (if rm { run.rm() } else { run }.args(cmd), out)
    }

    /// Starts a detached traced container running `cmd`; returns its id
    /// and profile path. The hook has registered it when podman returns.
    pub fn start_traced(&self, rm: bool, cmd: &[&str]) -> Result<(String, PathBuf)> {
        let (args, out) = self.detached(rm, cmd);
        let o = self.cli.ok(&args)?;
        Ok((text(&o.stdout).trim().to_string(), out))
    }

    /// Starts `n` traced `cmd` containers at the same time (one by one,
    /// sixteen would take most of the bench's time); returns their ids.
    pub fn start_traced_many(&self, n: usize, cmd: &[&str]) -> Result<Vec<String>> {
        let mut children = Vec::new();
        for _ in 0..n {
            let mut c = self.cli.command();
            c.args(self.detached(false, cmd).0).stdout(Stdio::piped()).stderr(Stdio::piped());
            children.push(c.spawn().context("failed to run podman")?);
        }
        let mut ids = Vec::new();
        let mut failed = None;
        for child in children {
            let o = child.wait_with_output()?;
            if o.status.success() {
                ids.push(text(&o.stdout).trim().to_string());
            } else {
                failed = Some(text(&o.stderr));
            }
        }
        if let Some(e) = failed {
            let _ = self.remove(&ids);
            bail!("podman run -d of a traced container failed: {e}");
        }
        Ok(ids)
    }

    /// Kills a running container (its `podman run` then returns).
    pub fn kill(&self, name: &str) {
        let _ = self.cli.output(&["kill", name]);
    }

    /// Removes containers at once.
    pub fn remove(&self, ids: &[String]) -> Result<()> {
        Ok(self.cli.remove(ids)?)
    }

    /// Starts a stand-in (never told to go: it waits in its own mount
    /// namespace) and registers it with the hook, run as a runtime runs
    /// it; returns the stand-in, its profile path and how long the hook
    /// process took to exit.
    pub fn register_stand_in(&self) -> Result<(StandIn, PathBuf, Duration)> {
        let stand_in = StandIn::start(&["/bin/true"])?;
        let out = self.out_path();
        let pid = stand_in.pid();
        let took = hook::run_hook(&self.hook, &self.log, &format!("bench-{pid}"), pid, &out)?;
        Ok((stand_in, out, took))
    }

    /// Registers the mount namespace of `pid` (one of its own) with the
    /// hook, as a runtime would a container's; returns the tracer's pid and
    /// where it writes the profile once stopped (SIGTERM).
    pub fn trace_namespace_of(&self, pid: u32) -> Result<(u32, PathBuf)> {
        let out = self.out_path();
        let id = format!("bench-ns-{pid}-{}", self.serial.fetch_add(1, Ordering::Relaxed));
        hook::run_hook(&self.hook, &self.log, &id, pid, &out)?;
        // The tracer logs its start itself, after the hook has returned.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = std::fs::read_to_string(&self.log).with_context(|| format!("failed to read {:?}", self.log))?;
            if let Some(started) = hook_test_support::tracer_started(&log, &id) {
                return Ok((started.tracer_pid, out));
            }
            ensure!(Instant::now() < deadline, "no tracer-started event for {id} in {:?} after 10 s", self.log);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The tracer's report for the profile `out`: (peak RSS KiB, CPU ms).
    pub fn tracer_usage(&self, out: &Path) -> Option<(i64, i64)> {
        let log = std::fs::read_to_string(&self.log).ok()?;
        hook_test_support::tracer_ended(&log, out).map(|e| (e.rss_kib, e.cpu_ms))
    }
}

/// Thread count of a running process of the hook's binary: the tracer,
/// when one container is traced and its hook has returned. (The tracer is
/// a fork of the hook, so its command line names no container.)
pub fn tracer_threads(hook: &Path) -> Option<u64> {
    let hook = std::fs::canonicalize(hook).ok()?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        if std::fs::read_link(entry.path().join("exe")).ok().as_deref() != Some(hook.as_path()) {
            continue;
        }
        let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("Threads:"))?;
        return line["Threads:".len()..].trim().parse().ok();
    }
    None
}
