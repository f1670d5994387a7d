use serde_json::json;

use super::*;
use crate::tools::tests::{every_action, p, write};

fn lines(d: &ProfileDiff) -> Vec<String> {
    d.to_string().lines().map(String::from).collect()
}

#[test]
fn the_same_filter_is_no_difference_whatever_the_grouping_and_comments() {
    let a = p(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}));
    let b = p(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"name": "write", "action": "SCMP_ACT_ALLOW", "comment": "in 1 of 2 inputs"},
        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": []}]}));
    assert!(diff(&a, &b).is_empty(), "{}", diff(&a, &b));
    assert!(diff(&every_action(), &every_action()).is_empty());
}

#[test]
fn names_and_argument_values_added_or_removed_are_listed_per_abi() {
    let a = p(json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["read", "getpid"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 1, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}]}));
    let b = p(json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["read", "arch_prctl", "socketcall"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 2, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}]}));
    assert_eq!(
        lines(&diff(&a, &b)),
        [
            "SCMP_ARCH_X86:",
            "- allow getpid",
            // i386's socket goes through socketcall too: libseccomp filters it.
            "- allow socket if arg0 == 1",
            "+ allow arch_prctl",
            "+ allow socket if arg0 == 2",
            "+ allow socketcall",
            "SCMP_ARCH_X86_64:",
            "- allow getpid",
            "- allow socket if arg0 == 1",
            "+ allow arch_prctl",
            "+ allow socket if arg0 == 2",
        ]
    );
}

#[test]
fn actions_errnos_and_top_level_fields_are_differences() {
    let a = every_action();
    let mut b = a.clone();
    b.default_action = "SCMP_ACT_KILL_PROCESS".into();
    b.syscalls.iter_mut().find(|r| r.action == "SCMP_ACT_ERRNO").unwrap().extra.insert("errnoRet".into(), json!(1));
    b.syscalls.iter_mut().find(|r| r.action == "SCMP_ACT_TRAP").unwrap().action = "SCMP_ACT_KILL_THREAD".into();
    b.architectures = Some(vec!["SCMP_ARCH_X86_64".into()]);
    let d = diff(&a, &b);
    let text = d.to_string();
    assert_eq!(
        d.fields,
        vec![Changed {
            field: "defaultAction".into(),
            before: "\"SCMP_ACT_ERRNO\"".into(),
            after: "\"SCMP_ACT_KILL_PROCESS\"".into()
        }]
    );
    for line in [
        "- errno(38) clone3",
        "+ errno(1) clone3",
        "- trap ptrace",
        "+ kill_thread ptrace",
        "- trace(1) bpf",
        "- notify umount2",
    ] {
        assert!(text.contains(line), "{line:?} missing in:\n{text}");
    }
    // Everything the i386 filter had is gone with it.
    assert!(d.arches["SCMP_ARCH_X86"].1.is_empty() && !d.arches["SCMP_ARCH_X86"].0.is_empty());
}

#[test]
fn run_exits_1_on_differences_and_0_when_same() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", &serde_json::to_value(every_action()).unwrap());
    let mut other = every_action();
    other.syscalls.remove(0);
    let b = write(dir.path(), "b.json", &serde_json::to_value(other).unwrap());
    let mut out = Vec::new();
    assert_eq!(run(&a, &a, &mut out).unwrap(), 0);
    assert!(out.is_empty());
    assert_eq!(run(&a, &b, &mut out).unwrap(), 1);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("- allow read") && text.contains("- allow write"), "{text}");
    assert!(run(&a, &dir.path().join("missing.json"), &mut Vec::new()).is_err());
}
