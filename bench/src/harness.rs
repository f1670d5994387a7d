//! Drives podman and the hook the way the integration tests do: a private
//! hooks.d entry pointing at this build's hook, its log in a file of our
//! own, and the test suite's containers.conf.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

pub const ANNOTATION: &str = "io.containers.trace-syscall";
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
    pub conf: PathBuf,
    /// Scratch folder (bench/out): hooks.d, log, profiles.
    pub scratch: PathBuf,
    hooks_dir: PathBuf,
    log: PathBuf,
    serial: AtomicUsize,
}

impl Harness {
    pub fn new(hook: PathBuf, image: String, conf: PathBuf, scratch: PathBuf) -> Result<Harness> {
        let hooks_dir = scratch.join("hooks.d");
        let profiles = scratch.join("profiles");
        // Old profiles would let wait_for_file() succeed at once.
        let _ = std::fs::remove_dir_all(&profiles);
        std::fs::create_dir_all(&hooks_dir).with_context(|| format!("failed to create {hooks_dir:?}"))?;
        std::fs::create_dir_all(&profiles)?;
        let log = scratch.join("hook.log");
        let _ = std::fs::remove_file(&log);
        let entry = serde_json::json!({
            "version": "1.0.0",
            "hook": {"path": hook, "args": ["oci-seccomp-bpf-hook", "-s"],
                     "env": [format!("OCI_SECCOMP_BPF_HOOK_LOG_FILE={}", log.display())]},
            "when": {"annotations": {"^io\\.containers\\.trace-syscall$": ".*"}},
            "stages": ["prestart"],
        });
        std::fs::write(hooks_dir.join("oci-seccomp-bpf-hook.json"), entry.to_string())?;
        let noop = serde_json::json!({
            "version": "1.0.0",
            "hook": {"path": "/bin/true", "args": ["true"]},
            "when": {"annotations": {format!("^{}$", NOOP_ANNOTATION.replace('.', "\\.")): ".*"}},
            "stages": ["prestart"],
        });
        std::fs::write(hooks_dir.join("noop.json"), noop.to_string())?;
        let h = Harness { hook, image, conf, scratch, hooks_dir, log, serial: AtomicUsize::new(0) };
        let o = h.podman(&["image", "exists", &h.image])?;
        ensure!(o.status.success(), "image {} is missing: run `just fixtures` first", h.image);
        Ok(h)
    }

    /// A fresh profile path for one traced run.
    pub fn out_path(&self) -> PathBuf {
        let n = self.serial.fetch_add(1, Ordering::Relaxed);
        self.scratch.join("profiles").join(format!("p{n}.json"))
    }

    pub fn podman(&self, args: &[&str]) -> Result<Output> {
        Command::new("podman")
            .env("CONTAINERS_CONF", &self.conf)
            .arg("--hooks-dir")
            .arg(&self.hooks_dir)
            .args(args)
            .output()
            .context("failed to run podman")
    }

    fn podman_ok(&self, args: &[&str]) -> Result<Output> {
        let o = self.podman(args)?;
        if !o.status.success() {
            bail!("podman {} failed: {}{}", args.join(" "), text(&o.stdout), text(&o.stderr));
        }
        Ok(o)
    }

    /// `podman run --rm` arguments for the fixture image; a traced run
    /// records into `out`.
    fn run_args(&self, runtime: &str, mode: Mode, out: &Path, opts: &[&str], cmd: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = ["run", "--rm", "--network", "none", "--runtime", runtime].map(String::from).into();
        match mode {
            Mode::Plain => {}
            Mode::NoopHook => args.extend(["--annotation".into(), format!("{NOOP_ANNOTATION}=1")]),
            Mode::Traced => args.extend(["--annotation".into(), format!("{ANNOTATION}=of:{}", out.display())]),
        }
        args.extend(opts.iter().map(|s| s.to_string()));
        args.push(self.image.clone());
        args.extend(cmd.iter().map(|s| s.to_string()));
        args
    }

    /// Runs a container to its end; returns its output and podman's wall
    /// time. A traced run also waits for the tracer to write its profile
    /// (outside the timed part), so the next run starts from a quiet host.
    pub fn run(&self, runtime: &str, mode: Mode, opts: &[&str], cmd: &[&str]) -> Result<(Output, Duration)> {
        let out = self.out_path();
        let args = self.run_args(runtime, mode, &out, opts, cmd);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let start = Instant::now();
        let o = self.podman_ok(&args)?;
        let took = start.elapsed();
        if mode == Mode::Traced {
            wait_for_file(&out, 20)?;
        }
        Ok((o, took))
    }

    /// Starts an untraced container in the background, its output piped;
    /// pass `--name` in `opts` to be able to `kill` it.
    pub fn spawn(&self, runtime: &str, opts: &[&str], cmd: &[&str]) -> Result<Child> {
        let args = self.run_args(runtime, Mode::Plain, Path::new("/"), opts, cmd);
        Command::new("podman")
            .env("CONTAINERS_CONF", &self.conf)
            .arg("--hooks-dir")
            .arg(&self.hooks_dir)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("failed to run podman")
    }

    fn detached_args<'a>(&'a self, annotation: &'a str, rm: bool, cmd: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["run", "-d", "--network", "none", "--runtime", "runc", "--annotation", annotation];
        if rm {
            args.push("--rm");
        }
        args.push(&self.image);
        args.extend_from_slice(cmd);
        args
    }

    /// Starts a detached traced container running `cmd`; returns its id
    /// and profile path. The hook has registered it when podman returns.
    pub fn start_traced(&self, rm: bool, cmd: &[&str]) -> Result<(String, PathBuf)> {
        let out = self.out_path();
        let annotation = format!("{ANNOTATION}=of:{}", out.display());
        let o = self.podman_ok(&self.detached_args(&annotation, rm, cmd))?;
        Ok((text(&o.stdout).trim().to_string(), out))
    }

    /// Starts `n` traced `cmd` containers at the same time (one by one,
    /// sixteen would take most of the bench's time); returns their ids.
    pub fn start_traced_many(&self, n: usize, cmd: &[&str]) -> Result<Vec<String>> {
        let mut children = Vec::new();
        for _ in 0..n {
            let annotation = format!("{ANNOTATION}=of:{}", self.out_path().display());
            let child = Command::new("podman")
                .env("CONTAINERS_CONF", &self.conf)
                .arg("--hooks-dir")
                .arg(&self.hooks_dir)
                .args(self.detached_args(&annotation, false, cmd))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .context("failed to run podman")?;
            children.push(child);
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
        let _ = self.podman(&["kill", name]);
    }

    /// Removes containers at once (-t 0: no grace period for sleep).
    pub fn remove(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut args = vec!["rm", "-f", "-t", "0"];
        args.extend(ids.iter().map(String::as_str));
        self.podman_ok(&args).map(drop)
    }

    /// Runs the prestart hook the way a runtime does (empty environment
    /// but for the log file, state JSON on stdin) for `pid`; returns how
    /// long the hook process took to exit.
    pub fn run_hook(&self, pid: u32, out: &Path) -> Result<Duration> {
        let state = serde_json::json!({
            "ociVersion": "1.0.2", "id": format!("bench-{pid}"), "status": "created", "pid": pid, "bundle": "/",
            "annotations": {ANNOTATION: format!("of:{}", out.display())},
        });
        let start = Instant::now();
        let mut child = Command::new(&self.hook)
            .arg("-s")
            .env_clear()
            .env("OCI_SECCOMP_BPF_HOOK_LOG_FILE", &self.log)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("failed to start {:?}", self.hook))?;
        child.stdin.take().expect("piped").write_all(state.to_string().as_bytes())?;
        let o = child.wait_with_output()?;
        let took = start.elapsed();
        ensure!(o.status.success(), "the hook failed for pid {pid}: {}", text(&o.stderr));
        Ok(took)
    }

    /// The tracer's report for the profile `out`: (peak RSS KiB, CPU ms).
    pub fn tracer_usage(&self, out: &Path) -> Option<(u64, u64)> {
        let log = std::fs::read_to_string(&self.log).ok()?;
        let needle = format!("wrote {:?} (", out);
        log.lines().rev().find(|l| l.contains(&needle)).and_then(parse_usage)
    }
}

/// Parses `... tracer peak RSS 5044 KiB, CPU 21 ms)` from a tracer's exit line.
pub fn parse_usage(line: &str) -> Option<(u64, u64)> {
    let rest = &line[line.find("tracer peak RSS ")? + "tracer peak RSS ".len()..];
    let (rss, rest) = rest.split_once(" KiB, CPU ")?;
    let (cpu, _) = rest.split_once(" ms")?;
    Some((rss.trim().parse().ok()?, cpu.trim().parse().ok()?))
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn wait_for_file(path: &Path, secs: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !path.exists() {
        ensure!(Instant::now() < deadline, "no profile at {path:?} after {secs} s");
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// A process in its own mount namespace, standing in for a container's
/// init when the hook is run alone. Killed when dropped.
pub struct Sleeper {
    child: Child,
}

impl Sleeper {
    pub fn start() -> Result<Sleeper> {
        let child = Command::new("unshare").args(["-m", "sleep", "120"]).spawn().context("failed to run unshare")?;
        let sleeper = Sleeper { child };
        // unshare(2) happens after fork: until then the child is still in our
        // namespace, and the hook would record the whole host.
        let ours = mntns("self")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while mntns(&sleeper.pid().to_string())? == ours {
            ensure!(Instant::now() < deadline, "unshare -m did not move pid {} to a new namespace", sleeper.pid());
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(sleeper)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mntns(pid: &str) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(format!("/proc/{pid}/ns/mnt"))?.ino())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_tracer_exit_line() {
        let line = r#"2026-01-01T00:00:00Z  INFO container abc exited: wrote "/x.json" (49 syscalls recorded, 50 newly allowed; tracer peak RSS 5044 KiB, CPU 21 ms)"#;
        assert_eq!(parse_usage(line), Some((5044, 21)));
        assert_eq!(parse_usage("container abc exited: wrote \"/x.json\""), None);
    }
}
