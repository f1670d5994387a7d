//! Podman end to end: every profile the hook writes is replayed with
//! `--security-opt seccomp=` and must give the same output and exit code.
//! Each scenario runs under runc and under crun.

use std::time::Duration;

use rstest::rstest;
use serde_json::{json, Value};

use crate::support::{
    allowed, architectures, assert_same, names_with, skip, stderr, stdout, wait_for_profile, Podman,
    PROBE_IN_IMAGE as PROBE, UNUSUAL,
};

use hook_test_support::PROBE32_IN_IMAGE as PROBE32;

use crate::precise_profiles::{record_exec, replay_exec};

fn assert_contains_all(names: &[String], wanted: &[&str]) {
    for w in wanted {
        assert!(names.iter().any(|n| n == w), "{w} missing from {names:?}");
    }
}

fn assert_denied(o: &std::process::Output, what: &str) {
    let text = format!("{}{}", stdout(o), stderr(o));
    assert!(!o.status.success() && text.contains("Operation not permitted"), "{what} should be denied: {text}");
}

#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn true_replays(#[case] runtime: &'static str) {
    let Some(p) = Podman::new(runtime) else { return };
    let profile = p.trace_and_replay(&["/bin/true"]);
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
    assert_contains_all(&allowed(&profile), &["execve", "exit_group"]);
}

#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn echo_replays(#[case] runtime: &'static str) {
    let Some(p) = Podman::new(runtime) else { return };
    let profile = p.trace_and_replay(&["/bin/echo", "hello"]);
    assert_contains_all(&allowed(&profile), &["write"]);
}

#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn unusual_syscalls_replay_and_fail_outside_the_profile(#[case] runtime: &'static str) {
    let Some(p) = Podman::new(runtime) else { return };
    let profile = p.trace_and_replay(&[PROBE, "unusual"]);
    assert_contains_all(&allowed(&profile), &UNUSUAL);

    let small = p.path("true.json");
    let (small_profile, _) = p.trace(None, &small, &["/bin/true"]);
    assert!(!allowed(&small_profile).contains(&"sysinfo".to_string()));
    assert_denied(&p.replay(&small, &[PROBE, "unusual"]), "a syscall outside the profile");
}

#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn a_syscall_made_once_is_recorded(#[case] runtime: &'static str) {
    let Some(p) = Podman::new(runtime) else { return };
    let profile = p.trace_and_replay(&[PROBE, "once"]);
    assert_contains_all(&allowed(&profile), &["sched_get_priority_min"]);
}

#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn compat_32bit_process_replays(#[case] runtime: &'static str) {
    let Some(p) = Podman::new(runtime) else { return };
    let profile = p.trace_and_replay(&[PROBE32, "getpid"]);
    assert!(architectures(&profile).contains(&"SCMP_ARCH_X86".to_string()), "{profile}");
    let names = allowed(&profile);
    assert_contains_all(&names, &["getpid", "set_thread_area"]);
}

/// Per ABI: a profile recorded from 64-bit processes lists only x86_64, so
/// an i386 process gains nothing from it. The 32-bit program's own rules
/// under the 64-bit profile's architectures are refused, where they replay
/// with their own.
#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn a_64bit_profile_refuses_every_32bit_call(#[case] runtime: &'static str) {
    let Some(p) = Podman::new(runtime) else { return };
    let native = p.trace_and_replay(&[PROBE, "getpid"]);
    assert_eq!(architectures(&native), ["SCMP_ARCH_X86_64"], "{native}");
    let mut compat = p.trace_and_replay(&[PROBE32, "getpid"]);
    compat["architectures"] = native["architectures"].clone();
    let narrowed = p.path("narrowed.json");
    std::fs::write(&narrowed, compat.to_string()).unwrap();
    let o = p.replay(&narrowed, &[PROBE32, "getpid"]);
    assert!(
        !o.status.success() && !stdout(&o).contains("getpid: ok"),
        "the i386 program ran: {}{}",
        stdout(&o),
        stderr(&o)
    );
}

#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn extend_an_existing_profile(#[case] runtime: &'static str) {
    let Some(p) = Podman::new(runtime) else { return };
    let base = p.path("base.json");
    let (base_profile, _) = p.trace(None, &base, &["/bin/true"]);
    let out = p.path("extended.json");
    let (extended, _) = p.trace(Some(&base), &out, &[PROBE, "unusual"]);

    let base_rules = base_profile["syscalls"].as_array().unwrap();
    assert_eq!(&extended["syscalls"].as_array().unwrap()[..base_rules.len()], &base_rules[..], "base rules first");
    let names = allowed(&extended);
    assert_contains_all(&names, &UNUSUAL);
    for n in allowed(&base_profile) {
        assert!(names.contains(&n), "{n} of the base lost");
    }
    let o = p.replay(&out, &[PROBE, "unusual"]);
    assert_eq!(stdout(&o), "unusual: ok\n", "{}", stderr(&o));
}

#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn blocked_in_the_input_stays_blocked(#[case] runtime: &'static str) {
    let Some(p) = Podman::new(runtime) else { return };
    let cmd = ["/bin/mkdir", "/tmp/newdir"];
    let recorded = p.path("mkdir.json");
    let (mut profile, _) = p.trace(None, &recorded, &cmd);
    let blocked = ["mkdir", "mkdirat"];
    assert!(allowed(&profile).iter().any(|n| blocked.contains(&n.as_str())), "mkdir recorded: {profile}");

    // The baseline: what mkdir needs, but with mkdir itself blocked.
    for rule in profile["syscalls"].as_array_mut().unwrap() {
        rule["names"].as_array_mut().unwrap().retain(|n| !blocked.contains(&n.as_str().unwrap()));
    }
    profile["syscalls"].as_array_mut().unwrap().insert(0, json!({"names": blocked, "action": "SCMP_ACT_ERRNO"}));
    let base = p.path("base.json");
    std::fs::write(&base, serde_json::to_vec(&profile).unwrap()).unwrap();

    let out = p.path("out.json");
    let (merged, _) = p.trace(Some(&base), &out, &cmd);
    let names = allowed(&merged);
    assert!(!names.iter().any(|n| blocked.contains(&n.as_str())), "blocked names re-allowed: {names:?}");
    assert_eq!(
        merged["syscalls"][0],
        json!({"names": blocked, "action": "SCMP_ACT_ERRNO"}),
        "the baseline's rule first"
    );
    let errno = names_with(&merged, "SCMP_ACT_ERRNO");
    assert!(errno.iter().all(|n| blocked.contains(&n.as_str()) || n == "clone3"), "{errno:?}");
    assert_denied(&p.replay(&out, &cmd), "mkdir blocked by the baseline");
}

#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn podman_exec_is_recorded(#[case] runtime: &'static str) {
    let Some(p) = Podman::new(runtime) else { return };
    let out = p.path("exec.json");
    let (profile, _) = record_exec(&p, "exec", &[], &out);
    assert_contains_all(&allowed(&profile), &UNUSUAL);

    // Replay: the same container and exec under the profile.
    let o = replay_exec(&p, "exec-replay", &out);
    assert_eq!(stdout(&o), "unusual: ok\n", "exec under the profile: {}", stderr(&o));
}

#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn a_killed_container_still_gets_its_profile(#[case] runtime: &'static str) {
    let Some(p) = Podman::new(runtime) else { return };
    let out = p.path("killed.json");
    let name = p.start_sleeper("killed", p.run_args().traced_into(&out));
    // Killed once it sleeps: a fixed delay is not enough in a slow VM.
    wait_until_sleeping(&p, &name);
    assert!(p.podman(&["kill", "-s", "KILL", &name]).status.success());
    let profile = wait_for_profile(&out);
    p.podman(&["rm", "-f", &name]);
    let names = allowed(&profile);
    assert!(names.iter().any(|n| n.contains("nanosleep")), "sleep's nanosleep missing: {names:?}");

    // Replay: the same container starts and sleeps under the profile until
    // it is killed (it never reached exit_group the first time either).
    let name2 = p.start_sleeper("killed-replay", p.run_args().confined_by(&out));
    eprintln!("replaying the killed container under {names:?}");
    wait_until_sleeping(&p, &name2);
    let state = p.podman(&["inspect", "-f", "{{.State.Status}}", &name2]);
    p.podman(&["rm", "-f", "-t", "0", &name2]);
    assert_eq!(stdout(&state).trim(), "running", "sleep under its profile");
}

/// Waits until the container's init is blocked in nanosleep or
/// clock_nanosleep (x86_64 numbers 35 and 230, first field of
/// /proc/PID/syscall): it has made every syscall it makes before sleeping.
fn wait_until_sleeping(p: &Podman, name: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    while std::time::Instant::now() < deadline {
        let pid = stdout(&p.podman(&["inspect", "-f", "{{.State.Pid}}", name])).trim().to_string();
        last = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        if matches!(last.split_whitespace().next(), Some("35" | "230")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let state = p.podman(&["inspect", "-f", "{{.State.Status}} exit={{.State.ExitCode}} error={{.State.Error}}", name]);
    let logs = p.podman(&["logs", name]);
    panic!(
        "container {name} never went to sleep in 60 s; its init's /proc/PID/syscall: {last:?}; \
         state: {} {}; logs: {}{}",
        stdout(&state).trim(),
        stderr(&state).trim(),
        stdout(&logs),
        stderr(&logs)
    );
}

#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn pid_host_container_replays(#[case] runtime: &'static str) {
    let Some(p) = Podman::new(runtime) else { return };
    let out = p.path("pidhost.json");
    let cmd = [PROBE, "unusual"];
    let first = p.trace_with(&format!("of:{}", out.display()), &["--pid=host"], &cmd);
    assert!(first.status.success(), "{}", stderr(&first));
    let profile = wait_for_profile(&out);
    assert_contains_all(&allowed(&profile), &UNUSUAL);
    let again = p.podman(&p.run_args().rm().flag("--pid=host").confined_by(&out).args(&cmd));
    assert_same(&first, &again, &cmd);
}

#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn without_rm_the_profile_is_written_too(#[case] runtime: &'static str) {
    let Some(p) = Podman::new(runtime) else { return };
    let out = p.path("norm.json");
    let name = format!("seccomp-norm-{runtime}-{}", std::process::id());
    let o = p.podman(&p.run_args().name(&name).traced_into(&out).args(&["/bin/echo", "kept"]));
    p.podman(&["rm", "-f", &name]);
    assert_eq!(stdout(&o), "kept\n");
    let profile: Value = wait_for_profile(&out);
    assert_contains_all(&allowed(&profile), &["write"]);
}

#[test]
fn log_lines_reach_the_journal() {
    if !std::path::Path::new("/run/systemd/journal/socket").exists() {
        skip!("no systemd journal runs on this machine (/run/systemd/journal/socket)");
    }
    let Some(p) = Podman::new("runc") else { return };
    let out = p.path("journal.json");
    p.trace(None, &out, &["/bin/true"]);
    // With a journal running, the hook's log is the journal.
    let journal = p.hook_log();
    assert!(journal.contains(&out.display().to_string()), "journal: {journal}");
}

#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn the_tracer_is_detached_and_exits_after_writing(#[case] runtime: &'static str) {
    let Some(p) = Podman::new(runtime) else { return };
    let out = p.path("detached.json");
    let name = p.start_sleeper("detached", p.run_args().traced_into(&out));
    let id = stdout(&p.podman(&["inspect", "-f", "{{.Id}}", &name])).trim().to_string();
    let pid = p.tracer_of(&id).tracer_pid as i32;
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in cgroups.lines() {
        assert!(line.ends_with(":/"), "tracer not in a root cgroup: {line}");
    }
    let sid = nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(pid))).unwrap();
    assert_eq!(sid.as_raw(), pid, "the tracer leads its own session");
    assert!(p.podman(&["rm", "-f", "-t", "0", &name]).status.success());
    wait_for_profile(&out);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(std::time::Instant::now() < deadline, "tracer {pid} still running after writing the profile");
        std::thread::sleep(Duration::from_millis(20));
    }
}
