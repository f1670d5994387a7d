//! How tight a profile is: remove its allowed names one at a time and keep
//! each removal under which the workload still replays the same (output and
//! exit code, `TRIES` times). What remains is a profile that replays; the
//! recorded profile may hold at most `BOUND` times as many names.
//!
//! A recording cannot tell a call the program needs from one whose failure
//! it shrugs off (glibc's rseq, set_robust_list, prlimit64 under busybox):
//! those are what separates the two counts.

use std::path::Path;
use std::process::Output;

use rstest::rstest;
use serde_json::{json, Value};

use crate::precise_profiles::{record, Case, ECHO, LS, PIPELINE, THREADS, TRUE};
use crate::support::{allowed, skip, stdout, Podman};

/// Replays per candidate removal: a name whose absence fails only now and
/// then (a Go runtime's preemption signal) is kept more often with more.
const TRIES: usize = 2;

/// Seconds a candidate replay may run: far more than any corpus case needs.
const REPLAY_TIMEOUT: &str = "20";

/// The bound this recorder meets on the corpus (see the README's table).
const BOUND: f64 = 1.8;

/// The names of `profile`'s allow rules that `cmd` needs to replay like
/// `expected`, found by removing them one at a time.
pub fn minimize(p: &Podman, profile: &Value, cmd: &[&str], expected: &Output, scratch: &Path) -> Vec<String> {
    let mut keep = allowed(profile);
    keep.sort();
    for name in keep.clone() {
        let trial: Vec<String> = keep.iter().filter(|n| **n != name).cloned().collect();
        let mut candidate = profile.clone();
        candidate["syscalls"] = json!([{"names": trial, "action": "SCMP_ACT_ALLOW"}]);
        std::fs::write(scratch, candidate.to_string()).unwrap();
        let same = (0..TRIES).all(|_| {
            // A shell denied wait4 may wait forever: podman kills it.
            let again =
                p.podman(&p.run_args().rm().confined_by(scratch).flags(&["--timeout", REPLAY_TIMEOUT]).args(cmd));
            (again.status.code(), stdout(&again)) == (expected.status.code(), stdout(expected))
        });
        if same {
            keep = trial;
        }
    }
    keep
}

fn without_baseline_rules(profile: &Value) -> bool {
    profile["syscalls"].as_array().is_some_and(|rules| rules.len() == 1)
}

#[rstest]
#[case::true_runc("runc", &TRUE)]
#[case::true_crun("crun", &TRUE)]
#[case::echo_runc("runc", &ECHO)]
#[case::echo_crun("crun", &ECHO)]
#[case::ls_runc("runc", &LS)]
#[case::ls_crun("crun", &LS)]
#[case::pipeline_runc("runc", &PIPELINE)]
#[case::pipeline_crun("crun", &PIPELINE)]
#[case::threads_runc("runc", &THREADS)]
#[case::threads_crun("crun", &THREADS)]
fn profiles_are_within_the_bound_of_what_replays(#[case] runtime: &'static str, #[case] case: &Case) {
    if std::env::var("OCI_HOOK_TEST_MINIMIZE").as_deref() == Ok("0") {
        skip!(
            "OCI_HOOK_TEST_MINIMIZE=0: minimising replays the workload twice per allowed name (the host tier runs it)"
        );
    }
    let Some(p) = Podman::new(runtime) else { return };
    let out = p.path("recorded.json");
    let (profile, recorded) = record(&p, case, &out);
    assert!(without_baseline_rules(&profile), "one allow rule expected: {profile}");
    let needed = minimize(&p, &profile, case.cmd, &recorded, &p.path("candidate.json"));
    let names = allowed(&profile).len();
    let ratio = names as f64 / needed.len() as f64;
    println!(
        "{runtime} {:?}: {names} names recorded, {} replay ({ratio:.2}x): {}",
        case.cmd,
        needed.len(),
        needed.join(" ")
    );
    assert!(
        ratio <= BOUND,
        "{runtime} {:?}: {names} names where {} replay ({ratio:.2}x > {BOUND}x)",
        case.cmd,
        needed.len()
    );
}
