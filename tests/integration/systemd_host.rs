//! The hook on a systemd host (issue 11): the packaged hook, run by plain
//! podman (no `--hooks-dir`) with podman's default systemd cgroup manager,
//! and containers ended the ways systemd and podman end them there: their
//! scope stopped, `podman stop`'s SIGKILL after its default timeout,
//! `--cgroups=split`, and a Quadlet-style unit stopped.
//!
//! Each test skips, saying why, unless PID 1 is systemd, we are root,
//! podman is installed and so is the package (`vm-harness systemd` boots
//! such a guest). There podman runs under TCG emulation, so every wait is
//! long, and every one is bounded: a stall fails the test, never hangs it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use hook_test_support::podman::{Cli, Run, SLEEPER};
use hook_test_support::IMAGE;
use hook_test_support::{packaged, pins};
use oci_seccomp_bpf_hook::exit_watch::Ended;
use rstest::rstest;
use serde_json::Value;
use tempfile::TempDir;

use crate::support::{allowed, assert_same, is_root, stderr, stdout};

/// The longest one podman or systemctl command may take under TCG.
const COMMAND_LIMIT: Duration = Duration::from_secs(180);
/// The longest a state change, a log event or a profile may take to show.
pub(crate) const WAIT: Duration = Duration::from_secs(120);
/// The scope's stop timeout, which runc and crun set from this annotation:
/// sleep as PID 1 ignores systemd's SIGTERM, so systemd kills it after
/// 5 s instead of its default 90 s.
const SCOPE_STOP_TIMEOUT: &str = "org.systemd.property.TimeoutStopUSec=uint64 5000000";
/// Where systemd reads transient units from; gone at reboot.
pub(crate) const RUNTIME_UNITS: &str = "/run/systemd/system";

/// A systemd host with the packaged hook, driven by plain podman.
pub(crate) struct Host {
    podman: Cli,
    work: TempDir,
}

/// Set where these tests must run rather than skip.
const REQUIRED_ENV: &str = "OCI_HOOK_TEST_SYSTEMD_HOST";

impl Host {
    /// The host, or why these tests cannot run here. Where they must run
    /// (`OCI_HOOK_TEST_SYSTEMD_HOST=1`, set by `just vm-test-systemd`), a
    /// missing piece (say the package failed to install) fails instead.
    pub(crate) fn new() -> Result<Host, String> {
        let host = Host::find();
        if let Err(why) = &host {
            let required = std::env::var_os(REQUIRED_ENV).is_some_and(|v| v == "1");
            assert!(!required, "{REQUIRED_ENV}=1 but this is no systemd host with the package: {why}");
        }
        host
    }

    fn find() -> Result<Host, String> {
        if !Path::new(RUNTIME_UNITS).is_dir() {
            return Err(format!("PID 1 is not systemd (no {RUNTIME_UNITS}): this needs a systemd host"));
        }
        if !is_root() {
            return Err("needs root: the hook refuses rootless containers".into());
        }
        if which("podman").is_none() {
            return Err("podman is not installed".into());
        }
        if !packaged::installed() {
            let (bin, entry) = (packaged::BINARY, packaged::ENTRY);
            return Err(format!(
                "the packaged hook is not installed ({bin}, {entry}): apt-get install the `just deb` package"
            ));
        }
        // A containers.conf hiding the package's entry is a broken setup, not a reason to skip.
        let podman = packaged::podman().unwrap().bounded(COMMAND_LIMIT);
        assert!(podman.has_image(IMAGE), "fixture image {IMAGE} is missing: run `bash tests/fixtures/images.sh` first");
        Ok(Host { podman, work: tempfile::tempdir().unwrap() })
    }

    /// A container name no other test (or run) uses.
    fn name(&self, runtime: &str, test: &str) -> String {
        format!("seccomp-systemd-{}-{test}-{runtime}", std::process::id())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// `podman ARGS`, which must succeed; its stdout, trimmed.
    fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let o = self.podman.output(args).unwrap();
        let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
        assert!(o.status.success(), "podman {} failed: {}{}", shown.join(" "), stdout(&o), stderr(&o));
        stdout(&o).trim().to_string()
    }

    pub(crate) fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, name])
    }

    /// Starts `sleep 1000` detached as `name`; returns the container's id.
    fn start_sleeper(&self, name: &str, run: Run) -> String {
        self.ok(&run.detach().name(name).args(&SLEEPER))
    }

    /// Waits until `name`'s init sleeps (x86_64 nanosleep 35 or
    /// clock_nanosleep 230 in /proc/PID/syscall): it has made every syscall
    /// it makes before sleeping. Returns its pid.
    pub(crate) fn wait_until_sleeping(&self, name: &str) -> i32 {
        wait_until(&format!("container {name} sleeps"), || {
            let pid = self.inspect(name, "{{.State.Pid}}");
            let syscall = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
            matches!(syscall.split_whitespace().next(), Some("35" | "230")).then(|| pid.parse().unwrap())
        })
    }

    /// Waits until podman no longer reports `name` running (or knows it).
    pub(crate) fn wait_until_not_running(&self, name: &str) {
        wait_until(&format!("podman reports {name} stopped"), || {
            let o = self.podman.output(&["inspect", "-f", "{{.State.Status}}", name]).unwrap();
            (!o.status.success() || stdout(&o).trim() != "running").then_some(())
        });
    }

    /// The profile at `out`, once its tracer logged writing it; asserts
    /// the tracer outlived its container (it was not stopped with it), and
    /// then left: no tracer process, no pinned record of its namespace.
    pub(crate) fn profile_of(&self, out: &Path) -> Value {
        let ended = packaged::wait_for_end(out, WAIT).unwrap();
        assert_eq!(ended.ended, Ended::Exited, "the tracer was stopped before its container exited: {ended:?}");
        let started = packaged::wait_for_start(&ended.container, WAIT).unwrap();
        let (tracer, mntns) = (started.tracer_pid, u64::from(started.mntns));
        wait_until(&format!("tracer {tracer} gone and the record of {mntns} unpinned"), || {
            let gone = !Path::new(&format!("/proc/{tracer}")).exists();
            (gone && !pins::records().contains(&mntns)).then_some(())
        });
        let text = std::fs::read_to_string(out).unwrap_or_else(|e| panic!("{out:?} after {ended:?}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{out:?} is not JSON ({e}): {text}"))
    }

    /// `sleep 1000` confined by `profile` starts and sleeps, as the
    /// recorded one did until it was stopped; then it is removed.
    pub(crate) fn replays_asleep(&self, runtime: &str, profile: &Path, name: &str) {
        self.start_sleeper(name, Run::new(runtime).confined_by(profile));
        self.wait_until_sleeping(name);
        let state = self.inspect(name, "{{.State.Status}}");
        self.podman.remove(&[name]).unwrap();
        assert_eq!(state, "running", "sleep under its own profile {profile:?}");
    }

    /// The names of a test's container, its replay and its profile; both
    /// containers are removed when the case is dropped, even when the test
    /// failed.
    pub(crate) fn case(&self, runtime: &str, tag: &str) -> Case<'_> {
        let (name, out) = (self.name(runtime, tag), self.path(&format!("{tag}.json")));
        let replay = format!("{name}-replay");
        let names = vec![name.clone(), replay.clone()];
        Case { name, out, replay, _removed: Removed { podman: &self.podman, names } }
    }
}

/// The systemd host, or the test says why it skips and returns (a macro:
/// `skip!` returns from the test).
macro_rules! host_or_skip {
    () => {
        match Host::new() {
            Ok(host) => host,
            Err(why) => $crate::support::skip!("{why}"),
        }
    };
}
pub(crate) use host_or_skip;

pub(crate) struct Case<'a> {
    pub name: String,
    pub out: PathBuf,
    pub replay: String,
    pub _removed: Removed<'a>,
}

pub(crate) struct Removed<'a> {
    podman: &'a Cli,
    names: Vec<String>,
}

impl Drop for Removed<'_> {
    fn drop(&mut self) {
        let mut args = vec!["rm", "-f", "-i", "-t", "0"];
        args.extend(self.names.iter().map(String::as_str));
        let _ = self.podman.output(&args);
    }
}

/// `PROGRAM` in PATH.
pub(crate) fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// Polls `probe` until it gives a value, for at most `WAIT`.
fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "{} s and still not: {what}", WAIT.as_secs());
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(crate) fn systemctl(args: &[&str]) -> Output {
    hook_test_support::bounded("systemctl", COMMAND_LIMIT).args(args).output().expect("systemctl runs")
}

/// `pid`'s cgroup v2 path (the `0::` line of /proc/PID/cgroup).
pub(crate) fn cgroup_of(pid: impl std::fmt::Display) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let line = text.lines().find_map(|l| l.strip_prefix("0::"));
    line.unwrap_or_else(|| panic!("no cgroup v2 line for pid {pid}: {text:?}")).to_string()
}

/// Whether cgroup `path` is `parent` or below it.
fn under(path: &str, parent: &str) -> bool {
    path == parent || path.starts_with(&format!("{}/", parent.trim_end_matches('/')))
}

pub(crate) fn assert_sleeps(profile: &Value) {
    let names = allowed(profile);
    assert!(names.iter().any(|n| n.ends_with("nanosleep")), "sleep's nanosleep missing: {names:?}");
}

/// Stopping the container's scope (`systemctl stop libpod-<id>.scope`, as
/// an operator or a shutdown does) kills every process in it: the tracer
/// must be elsewhere, and writes the profile once the container is gone.
#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn the_tracer_survives_its_containers_scope_being_stopped(#[case] runtime: &str) {
    let host = host_or_skip!();
    let Case { name, out, replay, _removed } = host.case(runtime, "scope");
    let id = host.start_sleeper(&name, Run::new(runtime).traced_into(&out).annotation(SCOPE_STOP_TIMEOUT));
    let pid = host.wait_until_sleeping(&name);

    // podman's systemd cgroup manager names the scope after the full id
    // (crun puts the container in a `container` cgroup below it).
    let scope = format!("libpod-{id}.scope");
    let container = cgroup_of(pid);
    assert!(container.split('/').any(|c| c == scope), "the container is not in {scope}: {container}");
    let conmon = cgroup_of(host.inspect(&name, "{{.State.ConmonPid}}"));
    let tracer = cgroup_of(packaged::wait_for_start(&id, WAIT).unwrap().tracer_pid);
    let cgroups = format!("tracer {tracer}, container {container}, conmon {conmon}");
    assert!(!tracer.contains(&id), "the tracer is in a cgroup of its container's: {cgroups}");
    assert!(!under(&tracer, &conmon), "the tracer is in conmon's cgroup: {cgroups}");

    // sleep ignores the SIGTERM: the stop times out into SIGKILL, and the
    // scope ends "failed", which is reset so that it does not linger.
    let o = systemctl(&["stop", &scope]);
    assert!(o.status.success(), "systemctl stop {scope}: {}{}", stdout(&o), stderr(&o));
    assert_ne!(stdout(&systemctl(&["is-active", &scope])).trim(), "active", "{scope} still active");
    let _ = systemctl(&["reset-failed", &scope]);
    wait_until(&format!("the container's init {pid} is gone"), || {
        (!Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    host.wait_until_not_running(&name);

    assert_sleeps(&host.profile_of(&out));
    host.replays_asleep(runtime, &out, &replay);
}

/// `podman stop` with its default 10 s timeout: sleep as PID 1 ignores the
/// SIGTERM, so podman SIGKILLs it, and the profile is still written.
#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn podman_stop_with_the_default_timeout_keeps_the_profile(#[case] runtime: &str) {
    let host = host_or_skip!();
    let Case { name, out, replay, _removed } = host.case(runtime, "stop");
    host.start_sleeper(&name, Run::new(runtime).traced_into(&out));
    host.wait_until_sleeping(&name);

    let asked = Instant::now();
    host.ok(&["stop", &name]);
    // Under 10 s would mean sleep ended on SIGTERM: not the case meant here.
    assert!(asked.elapsed() >= Duration::from_secs(9), "podman stop took only {:?}", asked.elapsed());
    assert_eq!(host.inspect(&name, "{{.State.Status}}"), "exited");

    assert_sleeps(&host.profile_of(&out));
    host.replays_asleep(runtime, &out, &replay);
}

/// `--cgroups=split` (what Quadlet units use): conmon stays in the
/// caller's cgroup and the container gets one below it.
#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn podman_run_rm_with_split_cgroups_records(#[case] runtime: &str) {
    let host = host_or_skip!();
    let Case { name, out, replay, _removed } = host.case(runtime, "split");
    let cmd = ["/bin/echo", "hello"];
    let split = Run::new(runtime).rm().flag("--cgroups=split");

    let first = host.podman.output(&split.clone().name(&name).traced_into(&out).args(&cmd)).unwrap();
    assert_eq!(stdout(&first), "hello\n", "traced run: {}", stderr(&first));
    let profile = host.profile_of(&out);
    assert!(allowed(&profile).iter().any(|n| n == "write"), "echo's write missing: {profile}");
    let again = host.podman.output(&split.name(&replay).confined_by(&out).args(&cmd)).unwrap();
    assert_same(&first, &again, &cmd);
}
