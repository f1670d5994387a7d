use serde_json::json;

use super::*;
use crate::tools::tests::{every_action, p, write};

fn eq(index: u32, value: u64) -> serde_json::Value {
    json!({"index": index, "value": value, "valueTwo": 0, "op": "SCMP_CMP_EQ"})
}

fn profile(rules: serde_json::Value) -> Profile {
    p(json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": rules}))
}

fn missing(profile: &Profile, recording: &Profile) -> Vec<String> {
    uncovered(profile, recording).into_iter().map(|(arch, a)| format!("{arch}: {a}")).collect()
}

#[test]
fn a_conditional_allow_is_covered_by_the_same_condition_or_none() {
    let rec = profile(json!([{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [eq(0, 1)]}]));
    let same = profile(json!([{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [eq(0, 1)]}]));
    let any = profile(json!([{"names": ["socket"], "action": "SCMP_ACT_ALLOW"}]));
    let other = profile(json!([{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [eq(0, 2)]}]));
    assert!(missing(&same, &rec).is_empty());
    assert!(missing(&any, &rec).is_empty());
    assert_eq!(missing(&other, &rec), ["SCMP_ARCH_X86_64: allow socket if arg0 == 1"]);
    // An unconditional allow is covered only by an unconditional allow.
    assert_eq!(missing(&same, &any), ["SCMP_ARCH_X86_64: allow socket"]);
}

#[test]
fn a_block_undoes_the_cover() {
    let rec = profile(json!([{"names": ["socket", "read"], "action": "SCMP_ACT_ALLOW"}]));
    let blocked = profile(json!([{"names": ["socket", "read"], "action": "SCMP_ACT_ALLOW"},
                                 {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [eq(0, 17)]}]));
    assert_eq!(missing(&blocked, &rec), ["SCMP_ARCH_X86_64: allow socket"]);
    let mut allow_all = profile(json!([{"names": ["read"], "action": "SCMP_ACT_KILL"}]));
    allow_all.default_action = "SCMP_ACT_ALLOW".into();
    assert_eq!(missing(&allow_all, &rec), ["SCMP_ARCH_X86_64: allow read"]);
}

#[test]
fn every_action_kind_of_a_recording_but_allow_needs_no_cover() {
    let rec = every_action();
    let allows =
        profile(json!([{"names": ["read", "write", "socket", "clone", "personality"], "action": "SCMP_ACT_ALLOW"}]));
    // every_action lists i386 too: this profile does not.
    let m = missing(&allows, &rec);
    assert!(m.iter().all(|l| l.starts_with("SCMP_ARCH_X86:")), "{m:?}");
    let mut both = allows.clone();
    both.architectures = rec.architectures.clone();
    assert!(missing(&both, &rec).is_empty());
    assert!(missing(&rec, &rec).is_empty());
}

#[test]
fn names_an_abi_lacks_are_not_checked_for_it() {
    let both = |rules| {
        p(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], "syscalls": rules}),
        )
    };
    let rec = both(json!([{"names": ["socketcall", "arch_prctl"], "action": "SCMP_ACT_ALLOW"}]));
    let prof = both(json!([{"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW"}]));
    assert_eq!(missing(&prof, &rec), ["SCMP_ARCH_X86: allow socketcall"]);
}

#[test]
fn run_reports_each_missing_call_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let rec = write(dir.path(), "rec.json", &serde_json::to_value(every_action()).unwrap());
    let small = write(
        dir.path(),
        "small.json",
        &serde_json::to_value(profile(json!([{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]))).unwrap(),
    );
    let mut out = Vec::new();
    assert_eq!(run(&rec, std::slice::from_ref(&rec), &mut out).unwrap(), 0);
    assert_eq!(run(&small, std::slice::from_ref(&rec), &mut out).unwrap(), 1);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("rec.json: SCMP_ARCH_X86_64: allow write"), "{text}");
    assert!(!text.contains("SCMP_ARCH_X86_64: allow read"), "{text}");
    assert!(run(&small, &[dir.path().join("missing.json")], &mut Vec::new()).is_err());
}
