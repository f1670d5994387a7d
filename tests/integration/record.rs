//! The engine on the host kernel, without podman: `record -- CMD`.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

use crate::support::{allowed, architectures, fixture, hook_bin, is_root, skip, stdout, wait_for_profile, UNUSUAL};

fn record(out: &Path, base: Option<&Path>, cmd: &[&str]) -> Output {
    let mut c = Command::new(hook_bin());
    c.arg("record");
    if let Some(b) = base {
        c.arg("-i").arg(b);
    }
    c.arg("-o").arg(out).arg("--").args(cmd);
    c.output().unwrap()
}

fn record_ok(cmd: &[&str]) -> (Value, Output) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.json");
    let o = record(&out, None, cmd);
    assert!(o.status.success(), "record {cmd:?}: {}", String::from_utf8_lossy(&o.stderr));
    (wait_for_profile(&out), o)
}

#[test]
fn unusual_syscalls_are_recorded() {
    if !is_root() {
        skip!("loading BPF needs root");
    }
    let probe = fixture("sysprobe");
    let (profile, o) = record_ok(&[probe.to_str().unwrap(), "unusual"]);
    assert_eq!(stdout(&o), "unusual: ok\n");
    let names = allowed(&profile);
    for n in UNUSUAL {
        assert!(names.contains(&n.to_string()), "{n} missing from {names:?}");
    }
    assert_eq!(architectures(&profile), ["SCMP_ARCH_X86_64"]);
}

#[test]
fn compat_syscalls_are_recorded_under_x86_with_i386_names() {
    if !is_root() {
        skip!("loading BPF needs root");
    }
    let probe = fixture("sysprobe32");
    let (profile, o) = record_ok(&[probe.to_str().unwrap(), "getpid"]);
    assert_eq!(stdout(&o), "getpid: ok\n");
    assert_eq!(architectures(&profile), ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
    let names = allowed(&profile);
    // i386 getpid is 20, x86_64's writev: the old tool wrote `writev`.
    assert!(names.contains(&"getpid".to_string()), "{names:?}");
    assert!(!names.contains(&"writev".to_string()), "{names:?}");
    // Only i386 has these names: proof the 32-bit table was used.
    assert!(names.contains(&"set_thread_area".to_string()), "{names:?}");
}

#[test]
fn a_storm_of_syscalls_loses_nothing() {
    if !is_root() {
        skip!("loading BPF needs root");
    }
    let count = std::env::var("STORM_SYSCALLS").unwrap_or_else(|_| "3000000".into());
    let probe = fixture("sysprobe");
    let (profile, o) = record_ok(&[probe.to_str().unwrap(), "storm", &count]);
    assert_eq!(stdout(&o), format!("storm: {count}\n"));
    let names = allowed(&profile);
    // The marker comes after millions of getppid calls: an event stream
    // that drops under load would lose it; the in-kernel table cannot.
    assert!(names.contains(&"getppid".to_string()), "{names:?}");
    assert!(names.contains(&"sched_get_priority_min".to_string()), "{names:?}");
}

#[test]
fn exit_code_and_output_pass_through() {
    if !is_root() {
        skip!("loading BPF needs root");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.json");
    let o = record(&out, None, &["/bin/sh", "-c", "echo hi; exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(stdout(&o), "hi\n");
    assert!(allowed(&wait_for_profile(&out)).contains(&"exit_group".to_string()));
}

#[test]
fn the_command_runs_as_pid_1_of_its_own_namespace() {
    if !is_root() {
        skip!("loading BPF needs root");
    }
    let (_, o) = record_ok(&["/bin/sh", "-c", "echo $$"]);
    assert_eq!(stdout(&o), "1\n");
}

#[test]
fn baseline_is_merged_and_blocked_stays_blocked() {
    if !is_root() {
        skip!("loading BPF needs root");
    }
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    std::fs::write(
        &base,
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
            "syscalls":[{"names":["personality"],"action":"SCMP_ACT_ERRNO","comment":"blocked"}]}"#,
    )
    .unwrap();
    let out = dir.path().join("out.json");
    let probe = fixture("sysprobe");
    let o = record(&out, Some(&base), &[probe.to_str().unwrap(), "unusual"]);
    assert!(o.status.success());
    let profile = wait_for_profile(&out);
    assert_eq!(profile["syscalls"][0]["comment"], "blocked", "baseline rule first and verbatim");
    assert_eq!(profile["defaultErrnoRet"], 1);
    let names = allowed(&profile);
    assert!(!names.contains(&"personality".to_string()), "blocked in the baseline: {names:?}");
    assert!(names.contains(&"getcpu".to_string()));
}

#[test]
fn bad_input_fails_before_running_and_keeps_the_old_output() {
    if !is_root() {
        skip!("loading BPF needs root");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    std::fs::write(&out, "previous").unwrap();
    let base = dir.path().join("base.json");
    std::fs::write(&base, "{broken").unwrap();
    let marker = dir.path().join("ran");
    let o = record(&out, Some(&base), &["/bin/touch", marker.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("base.json") && err.contains("not a seccomp profile"), "{err}");
    assert!(!marker.exists(), "the command must not run");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous");
}
