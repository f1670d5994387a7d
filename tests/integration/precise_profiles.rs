//! Precise profiles: a corpus of workloads, each recorded many times under
//! runc and crun. Every recording must give the same profile, replay with
//! the same output and exit code, and hold none of the runtime's setup
//! syscalls (which the container's filter never sees).

use std::path::Path;
use std::process::Output;

use rstest::rstest;
use serde_json::Value;

use hook_test_support::PROBE_IN_IMAGE as PROBE;
use oci_seccomp_bpf_hook::handoff::{HANDOFF, HANDOFF_THREADED, SESSION_HANDOFF};

use crate::support::{allowed, assert_same, stderr, stdout, wait_for_profile, Podman};

use hook_test_support::PROBE32_IN_IMAGE as PROBE32;

/// What runtimes do to set a container up, before its filter: none of the
/// corpus's workloads calls them, so none may appear in a profile.
pub const SETUP_ONLY: [&str; 7] = ["mount", "umount2", "pivot_root", "sethostname", "setns", "unshare", "keyctl"];

/// How many recordings each case makes: 20 by default (the bar).
/// 0 skips the corpus: the TCG guests set it (see the Justfile: there a
/// recording once lacked a syscall, issue 8).
pub fn recordings() -> usize {
    std::env::var("OCI_HOOK_TEST_RECORDINGS").ok().and_then(|v| v.parse().ok()).unwrap_or(20)
}

/// A podman for a corpus test, unless `recordings()` is 0.
fn corpus_podman(runtime: &'static str) -> Option<Podman> {
    let off = recordings() == 0;
    Podman::unless(off.then_some("OCI_HOOK_TEST_RECORDINGS=0: the corpus runs on the host and userland tiers"), runtime)
}

/// A workload of the corpus: the command, and the podman options of the
/// recorded run (the replay drops them: its filter is the profile).
pub struct Case {
    pub cmd: &'static [&'static str],
    pub record_options: &'static [&'static str],
}

pub const TRUE: Case = Case { cmd: &["/bin/true"], record_options: &[] };
pub const ECHO: Case = Case { cmd: &["/bin/echo", "hello"], record_options: &[] };
pub const LS: Case = Case { cmd: &["/bin/ls", "/"], record_options: &[] };
pub const PIPELINE: Case = Case { cmd: &["/bin/sh", "-c", "echo a b c | wc -w"], record_options: &[] };
pub const THREADS: Case = Case { cmd: &[PROBE, "threads"], record_options: &[] };
pub const COMPAT_32BIT: Case = Case { cmd: &[PROBE32, "getpid"], record_options: &[] };
pub const UNCONFINED: Case =
    Case { cmd: &["/bin/echo", "hello"], record_options: &["--security-opt", "seccomp=unconfined"] };
pub const PRIVILEGED: Case = Case { cmd: &["/bin/echo", "hello"], record_options: &["--privileged"] };

/// Records `case` once into `out`; returns the profile and podman's output.
pub fn record(p: &Podman, case: &Case, out: &Path) -> (Value, Output) {
    let _ = std::fs::remove_file(out);
    let o = p.trace_with(&format!("of:{}", out.display()), case.record_options, case.cmd);
    assert!(o.status.success(), "traced run of {:?} failed: {}{}", case.cmd, stdout(&o), stderr(&o));
    (wait_for_profile(out), o)
}

/// The allowed names, sorted, with the architectures and the rules (argument
/// values included): what must not vary.
fn essence(profile: &Value) -> (Vec<String>, Value) {
    (allowed(profile), serde_json::json!([profile["architectures"], profile["syscalls"]]))
}

fn assert_no_setup_syscalls(profile: &Value, what: &str) {
    let names = allowed(profile);
    let found: Vec<&str> = SETUP_ONLY.iter().copied().filter(|s| names.iter().any(|n| n == s)).collect();
    assert!(found.is_empty(), "{what}: runtime setup syscalls {found:?} in the profile {names:?}");
}

/// Records the case `recordings()` times; every profile must be the same,
/// free of setup syscalls, and replay like the recorded run.
fn assert_precise(runtime: &'static str, case: &Case) {
    let Some(p) = corpus_podman(runtime) else { return };
    let mut first: Option<(Vec<String>, Value)> = None;
    for i in 0..recordings() {
        let out = p.path(&format!("run-{i}.json"));
        let (profile, recorded) = record(&p, case, &out);
        let what = format!("{runtime} {:?}, recording {i}", case.cmd);
        assert_no_setup_syscalls(&profile, &what);
        let essence = essence(&profile);
        match &first {
            None => first = Some(essence),
            Some(f) => assert_eq!(&essence, f, "{what} differs from the first recording"),
        }
        let again = p.replay(&out, case.cmd);
        if (again.status.code(), stdout(&again)) != (recorded.status.code(), stdout(&recorded)) {
            println!("{what}: the profile:\n{profile}\nthe hook's log:\n{}", p.hook_log());
        }
        assert_same(&recorded, &again, case.cmd);
    }
    let (names, _) = first.unwrap_or_default();
    println!(
        "{runtime} {:?}: {} names, the same in {} recordings: {}",
        case.cmd,
        names.len(),
        recordings(),
        names.join(" ")
    );
}

/// The corpus, each case under runc and crun, as rstest cases of the test
/// function it wraps (this file and minimal.rs share it).
macro_rules! corpus_cases {
    ($test:item) => {
        #[rstest::rstest]
        #[case::true_runc("runc", &$crate::precise_profiles::TRUE)]
        #[case::true_crun("crun", &$crate::precise_profiles::TRUE)]
        #[case::echo_runc("runc", &$crate::precise_profiles::ECHO)]
        #[case::echo_crun("crun", &$crate::precise_profiles::ECHO)]
        #[case::ls_runc("runc", &$crate::precise_profiles::LS)]
        #[case::ls_crun("crun", &$crate::precise_profiles::LS)]
        #[case::pipeline_runc("runc", &$crate::precise_profiles::PIPELINE)]
        #[case::pipeline_crun("crun", &$crate::precise_profiles::PIPELINE)]
        #[case::threads_runc("runc", &$crate::precise_profiles::THREADS)]
        #[case::threads_crun("crun", &$crate::precise_profiles::THREADS)]
        #[case::compat_32bit_runc("runc", &$crate::precise_profiles::COMPAT_32BIT)]
        #[case::compat_32bit_crun("crun", &$crate::precise_profiles::COMPAT_32BIT)]
        #[case::unconfined_runc("runc", &$crate::precise_profiles::UNCONFINED)]
        #[case::unconfined_crun("crun", &$crate::precise_profiles::UNCONFINED)]
        #[case::privileged_runc("runc", &$crate::precise_profiles::PRIVILEGED)]
        #[case::privileged_crun("crun", &$crate::precise_profiles::PRIVILEGED)]
        $test
    };
}
pub(crate) use corpus_cases;

corpus_cases! {
    fn recordings_are_identical_replay_and_hold_no_setup(#[case] runtime: &'static str, #[case] case: &Case) {
        assert_precise(runtime, case);
    }
}

/// Every thread of a multi-threaded workload is recorded: each thread makes
/// a syscall of its own.
#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn every_thread_is_recorded(#[case] runtime: &'static str) {
    let Some(p) = Podman::new(runtime) else { return };
    let (profile, _) = record(&p, &THREADS, &p.path("threads.json"));
    let names = allowed(&profile);
    for wanted in ["getpriority", "sched_getscheduler", "clone3"] {
        let found = names.iter().any(|n| n == wanted) || (wanted == "clone3" && names.iter().any(|n| n == "clone"));
        assert!(found, "{wanted} missing from {names:?}");
    }
}

/// A container recorded without a filter gets the names it gets with one:
/// the hand-off (handoff.rs) adds the runtime's calls after the point where
/// a filter goes, and nothing it made only before (crun 1.8's `close_range`
/// before `pivot_root` made the unconfined profile one name longer).
#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn without_a_filter_the_names_are_those_recorded_with_one(#[case] runtime: &'static str) {
    let Some(p) = corpus_podman(runtime) else { return };
    let (filtered, _) = record(&p, &ECHO, &p.path("filtered.json"));
    for case in [&UNCONFINED, &PRIVILEGED] {
        assert_eq!(case.cmd, ECHO.cmd);
        let (unfiltered, _) = record(&p, case, &p.path("unfiltered.json"));
        assert_eq!(
            allowed(&unfiltered),
            allowed(&filtered),
            "{runtime} {:?} against the default filter",
            case.record_options
        );
    }
}

/// The exec session of the corpus: `podman exec` of this into a sleeper.
pub const EXEC_SESSION: [&str; 2] = [PROBE, "unusual"];

/// Starts a sleeper traced into `out` (with the podman `options`), runs
/// `EXEC_SESSION` in it, removes it; returns the profile and the exec's output.
pub fn record_exec(p: &Podman, suffix: &str, options: &[&str], out: &Path) -> (Value, Output) {
    let _ = std::fs::remove_file(out);
    let name = p.start_sleeper(suffix, p.run_args().flags(options).traced_into(out));
    let o = p.exec(&name, &EXEC_SESSION);
    assert_eq!(stdout(&o), "unusual: ok\n", "{}", stderr(&o));
    assert!(p.podman(&["rm", "-f", "-t", "0", &name]).status.success());
    (wait_for_profile(out), o)
}

/// Starts a sleeper under `profile`, runs `EXEC_SESSION` in it, removes it;
/// returns the exec's output.
pub fn replay_exec(p: &Podman, suffix: &str, profile: &Path) -> Output {
    let name = p.start_sleeper(suffix, p.run_args().confined_by(profile));
    let o = p.exec(&name, &EXEC_SESSION);
    p.podman(&["rm", "-f", "-t", "0", &name]);
    o
}

/// A `podman exec` session is recorded from its own filter on, not from the
/// exec runtime's setup: the same profile every time, and the session and
/// container replay under it.
#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn exec_sessions_are_precise(#[case] runtime: &'static str) {
    let Some(p) = corpus_podman(runtime) else { return };
    let mut first: Option<(Vec<String>, Value)> = None;
    for i in 0..recordings() {
        let out = p.path(&format!("exec-{i}.json"));
        let (profile, _) = record_exec(&p, &format!("exec-{i}"), &[], &out);
        assert_no_setup_syscalls(&profile, &format!("{runtime} exec session, recording {i}"));
        let essence = essence(&profile);
        if i == 0 {
            println!("{runtime} exec session: {} names: {}", essence.0.len(), essence.0.join(" "));
        }
        match &first {
            None => first = Some(essence),
            Some(f) => assert_eq!(&essence, f, "{runtime} exec recording {i} differs from the first"),
        }
        let o = replay_exec(&p, &format!("exec-replay-{i}"), &out);
        assert_eq!(stdout(&o), "unusual: ok\n", "exec under the profile: {}", stderr(&o));
    }
}

/// An exec session into a container that runs without a filter gets every
/// name it gets in a filtered one, and replays: the session's runtime is
/// handed off like the container's (handoff.rs). What it gets beyond are
/// hand-off calls the session's runtime made before the point where its
/// filter goes (crun 1.8 marks its descriptors close-on-exec there).
#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn exec_sessions_without_a_filter_get_the_names_recorded_with_one(#[case] runtime: &'static str) {
    let Some(p) = corpus_podman(runtime) else { return };
    let (filtered, _) = record_exec(&p, "exec-filtered", &[], &p.path("filtered.json"));
    let filtered = allowed(&filtered);
    let handed_off = [HANDOFF, HANDOFF_THREADED, SESSION_HANDOFF].concat();
    for options in [UNCONFINED.record_options, PRIVILEGED.record_options] {
        let what = format!("{runtime} exec session into a sleeper run with {options:?}");
        let out = p.path("unfiltered.json");
        let (unfiltered, _) = record_exec(&p, "exec-unfiltered", options, &out);
        let names = allowed(&unfiltered);
        let missing: Vec<&String> = filtered.iter().filter(|n| !names.contains(n)).collect();
        assert!(missing.is_empty(), "{what}: {missing:?} missing from {names:?}");
        let beyond: Vec<&String> = names.iter().filter(|n| !filtered.contains(n)).collect();
        assert!(beyond.iter().all(|n| handed_off.contains(&n.as_str())), "{what}: {beyond:?} beyond the filtered one");
        println!("{what}: {} names, beyond the filtered profile's {}: {beyond:?}", names.len(), filtered.len());
        let o = replay_exec(&p, "exec-unfiltered-replay", &out);
        assert_eq!(stdout(&o), "unusual: ok\n", "{what}: the session under its profile: {}", stderr(&o));
    }
}
