//! The hook on a systemd host, continued (issue 11): a traced container run
//! by a Quadlet-style unit, stopped with `systemctl stop`; and the unit file
//! checked offline. Skips like systemd_host.rs, whose host it runs on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hook_test_support::packaged;
use hook_test_support::podman::{Run, SLEEPER};
use rstest::rstest;

use crate::support::{skip, stderr, stdout};
use crate::systemd_host::{assert_sleeps, cgroup_of, host_or_skip, systemctl, which, Case, Host, RUNTIME_UNITS, WAIT};

/// A transient unit in /run/systemd/system running a traced container as
/// Quadlet runs one; removed (and systemd reloaded) when dropped.
struct Unit {
    name: String,
    file: PathBuf,
}

impl Unit {
    /// sleep's container as `container`, traced into `out`. No ExecStop:
    /// `systemctl stop` then SIGTERMs conmon (the main pid, by
    /// --sdnotify=conmon), which passes it to sleep, which ignores it; after
    /// TimeoutStopSec systemd SIGKILLs the unit's whole cgroup, where the
    /// tracer would die with it had it stayed.
    fn create(runtime: &str, container: &str, out: &Path) -> Unit {
        let text = unit_text(&which("podman").unwrap(), &hook_test_support::containers_conf(), runtime, container, out);
        let name = format!("{container}.service");
        let file = Path::new(RUNTIME_UNITS).join(&name);
        std::fs::write(&file, text).unwrap();
        let unit = Unit { name, file };
        unit.systemctl_ok(&["daemon-reload"]);
        unit
    }

    fn systemctl_ok(&self, args: &[&str]) {
        let o = systemctl(args);
        assert!(o.status.success(), "systemctl {args:?} ({}): {}{}", self.name, stdout(&o), stderr(&o));
    }
}

impl Drop for Unit {
    fn drop(&mut self) {
        let _ = systemctl(&["stop", &self.name]);
        let _ = std::fs::remove_file(&self.file);
        let _ = systemctl(&["daemon-reload"]);
        let _ = systemctl(&["reset-failed", &self.name]);
    }
}

/// The unit running `container` as Quadlet would (with `--cgroups=split`,
/// `--sdnotify=conmon`, `Type=notify`, `KillMode=mixed`, `Delegate=yes`),
/// configured by `conf` (the unit does not inherit our environment).
fn unit_text(podman: &Path, conf: &Path, runtime: &str, container: &str, out: &Path) -> String {
    let run = Run::new(runtime).rm().name(container).flags(&["--cgroups=split", "--sdnotify=conmon"]);
    let args: Vec<String> = run.traced_into(out).args(&SLEEPER).iter().map(|a| quoted(a, true)).collect();
    let conf = quoted(&format!("CONTAINERS_CONF={}", conf.display()), false);
    let podman = podman.display();
    let rm = format!("{podman} rm -f -i -t 0 {}", quoted(container, true));
    format!(
        "[Unit]\nDescription=oci-seccomp-bpf-hook test {container}\n\n[Service]\n\
         Environment={conf} PODMAN_SYSTEMD_UNIT=%n\nType=notify\nNotifyAccess=all\nKillMode=mixed\n\
         Delegate=yes\nTimeoutStartSec=150\nTimeoutStopSec=15\nExecStart={podman} {}\nExecStopPost=-{rm}\n",
        args.join(" ")
    )
}

/// A word of a unit file's setting, quoted: `%` starts a specifier
/// everywhere, `$` a variable in Exec lines only.
fn quoted(word: &str, exec: bool) -> String {
    let mut escaped = word.replace('\\', "\\\\").replace('"', "\\\"").replace('%', "%%");
    if exec {
        escaped = escaped.replace('$', "$$");
    }
    format!("\"{escaped}\"")
}

/// The container of a Quadlet-style unit (`Type=notify`, `--sdnotify=conmon`,
/// `--cgroups=split`, `KillMode=mixed`) is recorded when the unit stops.
#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn a_container_run_by_a_systemd_unit_is_recorded_when_the_unit_stops(#[case] runtime: &str) {
    let host = host_or_skip!();
    let Case { name, out, replay, _removed } = host.case(runtime, "unit");
    let unit = Unit::create(runtime, &name, &out);
    // Type=notify: this returns once conmon said the container runs.
    unit.systemctl_ok(&["start", &unit.name]);
    let pid = host.wait_until_sleeping(&name);

    let container = cgroup_of(pid);
    assert!(container.contains(&format!("/{}/", unit.name)), "not split below {}: {container}", unit.name);
    let id = host.inspect(&name, "{{.Id}}");
    let tracer = cgroup_of(packaged::wait_for_start(&id, WAIT).unwrap().tracer_pid);
    assert!(!tracer.contains(&unit.name), "the tracer is in the unit's cgroup, which stop kills: {tracer}");

    unit.systemctl_ok(&["stop", &unit.name]);
    host.wait_until_not_running(&name);
    assert_sleeps(&host.profile_of(&out));
    host.replays_asleep(runtime, &out, &replay);
}

/// The unit `Unit::create` writes is one systemd accepts, checked offline
/// (`systemd-analyze verify`) on any machine that has systemd's tools, so
/// a mistake shows before a systemd guest boots.
#[test]
fn the_units_file_passes_systemd_analyze_verify() {
    let Some(analyze) = which("systemd-analyze") else { skip!("no systemd-analyze") };
    let Some(podman) = which("podman") else { skip!("no podman: the unit's ExecStart must name an executable") };
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("seccomp-systemd-check.service");
    let out = dir.path().join("a b").join("100%.json");
    let text = unit_text(&podman, Path::new("/etc/containers/containers.conf"), "crun", "seccomp-check", &out);
    std::fs::write(&unit, &text).unwrap();
    let o = hook_test_support::bounded(analyze, Duration::from_secs(60)).arg("verify").arg(&unit).output().unwrap();
    assert!(o.status.success(), "systemd-analyze verify: {}{}\n{text}", stdout(&o), stderr(&o));
    assert!(text.contains("\"io.containers.trace-syscall=of:") && text.contains("a b/100%%.json\""), "{text}");
}
