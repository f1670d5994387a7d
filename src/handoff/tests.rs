use super::*;

fn set(abi: Abi, names: &[&str]) -> SyscallSet {
    let mut s = SyscallSet::default();
    for name in names {
        let nr = i32::from(ScmpSyscall::from_name_by_arch(name, abi.scmp_arch()).unwrap());
        s.insert(abi, abi.recorder_number(nr).unwrap());
    }
    s
}

fn names(s: &SyscallSet) -> Vec<String> {
    s.named().names.into_iter().collect()
}

#[test]
fn the_runtime_setup_is_not_allowed_under_a_filter() {
    let observed = Observed {
        filtered: set(Abi::X86_64, &["capset", "execve", "exit_group"]),
        runtime_setup: set(Abi::X86_64, &["mount", "pivot_root", "close", "write"]),
        ..Default::default()
    };
    assert_eq!(names(&observed.allowed()), ["capset", "execve", "exit_group"]);
}

/// A setup whose calls all came after its last root filesystem change.
fn setup_all_tail(names: &[&str]) -> Observed {
    Observed { runtime_setup: set(Abi::X86_64, names), setup_tail: set(Abi::X86_64, names), ..Default::default() }
}

#[test]
fn without_a_filter_the_handoff_calls_of_the_setup_are_added() {
    let observed = Observed {
        unfiltered_workload: set(Abi::X86_64, &["exit_group", "write"]),
        ..setup_all_tail(&["mount", "pivot_root", "capset", "setresuid", "execve"])
    };
    assert_eq!(names(&observed.allowed()), ["capset", "execve", "exit_group", "setresuid", "write"]);
}

/// crun 1.8 calls close_range before pivot_root: no filter goes on there.
#[test]
fn a_handoff_call_made_only_before_the_last_rootfs_change_is_not_added() {
    let observed = Observed {
        unfiltered_workload: set(Abi::X86_64, &["exit_group", "write"]),
        runtime_setup: set(Abi::X86_64, &["close_range", "pivot_root", "mount", "capset", "execve"]),
        setup_tail: set(Abi::X86_64, &["capset", "execve"]),
        ..Default::default()
    };
    assert_eq!(names(&observed.allowed()), ["capset", "execve", "exit_group", "write"]);
}

#[test]
fn a_single_threaded_runtime_hands_off_without_the_threaded_lookups() {
    let setup = ["mount", "capset", "openat", "chdir", "newfstatat", "close_range", "execve"];
    let single = Observed { unfiltered_workload: set(Abi::X86_64, &["exit_group", "write"]), ..setup_all_tail(&setup) };
    assert_eq!(names(&single.allowed()), ["capset", "close_range", "execve", "exit_group", "write"]);
    let with_futex = [&setup[..], &["futex"]].concat();
    let threaded = Observed { unfiltered_workload: single.unfiltered_workload.clone(), ..setup_all_tail(&with_futex) };
    let allowed = names(&threaded.allowed());
    for name in ["openat", "chdir", "newfstatat", "close_range", "futex"] {
        assert!(allowed.contains(&name.to_string()), "{name} missing from {allowed:?}");
    }
    assert!(!allowed.contains(&"mount".to_string()), "{allowed:?}");
}

/// The extras name what `HANDOFF` lacks (a session's extras may repeat the
/// threaded ones: a single-threaded runtime's session needs them too).
#[test]
fn the_handoff_lists_do_not_overlap() {
    for extra in [HANDOFF_THREADED, SESSION_HANDOFF] {
        let common: Vec<&&str> = HANDOFF.iter().filter(|n| extra.contains(n)).collect();
        assert!(common.is_empty(), "{common:?}");
    }
}

/// crun's exec session sets the groups and the streams' owner after its
/// filter; its start does so before, and after its last mount.
#[test]
fn a_sessions_setup_hands_off_its_own_steps_too() {
    let start = ["mount", "pivot_root", "setgroups", "fchown", "capset", "execve"];
    let workload = set(Abi::X86_64, &["exit_group", "write"]);
    let started = Observed { unfiltered_workload: workload.clone(), ..setup_all_tail(&start) };
    assert_eq!(names(&started.allowed()), ["capset", "execve", "exit_group", "write"]);
    let session = set(Abi::X86_64, &["setns", "setgroups", "fchown", "umask", "prctl", "execve"]);
    let with_exec = Observed { session_setup: session, ..started };
    let allowed = names(&with_exec.allowed());
    assert_eq!(allowed, ["capset", "execve", "exit_group", "fchown", "prctl", "setgroups", "umask", "write"]);
}

#[test]
fn a_sessions_setup_is_not_allowed_under_a_filter() {
    let observed = Observed {
        filtered: set(Abi::X86_64, &["execve", "exit_group"]),
        session_setup: set(Abi::X86_64, &["setgroups", "fchown", "setns"]),
        ..Default::default()
    };
    assert_eq!(names(&observed.allowed()), ["execve", "exit_group"]);
}

#[test]
fn a_threaded_sessions_setup_shows_a_threaded_runtime() {
    let observed = Observed {
        unfiltered_workload: set(Abi::X86_64, &["exit_group"]),
        session_setup: set(Abi::X86_64, &["futex", "getcwd", "fsopen", "setns"]),
        ..Default::default()
    };
    assert!(observed.threaded_runtime());
    let allowed = names(&observed.allowed());
    for name in ["futex", "getcwd", "fsopen", "tgkill"] {
        assert!(allowed.contains(&name.to_string()), "{name} missing from {allowed:?}");
    }
    assert!(!allowed.contains(&"setns".to_string()), "{allowed:?}");
}

#[test]
fn a_threaded_runtime_gets_its_whole_background_set() {
    let observed = Observed {
        filtered: set(Abi::X86_64, &["execve", "futex"]),
        runtime_setup: set(Abi::X86_64, &["futex", "clone", "mount"]),
        ..Default::default()
    };
    assert!(observed.threaded_runtime());
    let allowed = names(&observed.allowed());
    for name in THREADED_RUNTIME {
        assert!(allowed.contains(&name.to_string()), "{name} missing from {allowed:?}");
    }
    assert!(!allowed.contains(&"mount".to_string()), "{allowed:?}");
}

#[test]
fn a_single_threaded_runtime_gets_no_background_set() {
    let observed = Observed {
        filtered: set(Abi::X86_64, &["execve"]),
        runtime_setup: set(Abi::X86_64, &["mount", "read"]),
        ..Default::default()
    };
    assert!(!observed.threaded_runtime());
    assert_eq!(names(&observed.allowed()), ["execve"]);
}

#[test]
fn nothing_recorded_allows_nothing() {
    let observed = Observed { runtime_setup: set(Abi::X86_64, &["futex", "capset"]), ..Default::default() };
    assert!(observed.allowed().is_empty());
}

#[test]
fn every_listed_name_is_known_to_libseccomp_on_x86_64() {
    for name in HANDOFF.iter().chain(HANDOFF_THREADED).chain(SESSION_HANDOFF).chain(THREADED_RUNTIME) {
        assert!(ScmpSyscall::from_name_by_arch(name, Abi::X86_64.scmp_arch()).is_ok(), "{name}");
    }
    for name in ROOTFS_CHANGES {
        let known = |abi: Abi| ScmpSyscall::from_name_by_arch(name, abi.scmp_arch()).is_ok();
        assert!(known(Abi::X86) && (known(Abi::X86_64) || *name == "umount"), "{name}");
    }
}

#[test]
fn a_program_that_starts_threads_may_always_wait_for_them() {
    let observed = Observed { filtered: set(Abi::X86_64, &["clone3", "execve"]), ..Default::default() };
    assert_eq!(names(&observed.allowed()), ["clone3", "execve", "futex"]);
    let single = Observed { filtered: set(Abi::X86_64, &["execve", "exit_group"]), ..Default::default() };
    assert_eq!(names(&single.allowed()), ["execve", "exit_group"]);
}
