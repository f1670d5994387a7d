use serde_json::json;

use super::*;
use crate::profile::{ACT_ALLOW, ACT_ERRNO};
use crate::tools::covers::uncovered;
use crate::tools::diff::diff;
use crate::tools::tests::{every_action, p};

fn inputs(profiles: Vec<Profile>) -> Vec<(PathBuf, Profile)> {
    profiles.into_iter().enumerate().map(|(i, p)| (PathBuf::from(format!("in{i}.json")), p)).collect()
}

fn recording(names: &[&str], extra_rules: serde_json::Value) -> Profile {
    let mut rules = vec![json!({"names": names, "action": "SCMP_ACT_ALLOW"})];
    rules.extend(extra_rules.as_array().cloned().unwrap_or_default());
    p(json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": rules}))
}

fn socket(family: u64) -> serde_json::Value {
    json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
           "args": [{"index": 0, "value": family, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]})
}

fn rule_with(out: &Profile, name: &str) -> Vec<Rule> {
    out.syscalls.iter().filter(|r| r.all_names().any(|n| n == name)).cloned().collect()
}

#[test]
fn the_union_notes_in_how_many_inputs_each_name_appeared() {
    let a = recording(&["read", "write", "getpid"], json!([]));
    let b = recording(&["read", "write", "exit_group"], json!([]));
    let c = recording(&["read", "openat"], json!([]));
    let out = merge(&inputs(vec![a, b, c])).unwrap();
    let notes: Vec<(Vec<String>, String)> = out
        .syscalls
        .iter()
        .map(|r| (r.names.clone().unwrap(), r.extra["comment"].as_str().unwrap().to_string()))
        .collect();
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        notes,
        vec![
            (names(&["read"]), "in 3 of 3 inputs".to_string()),
            (names(&["write"]), "in 2 of 3 inputs".to_string()),
            (names(&["exit_group", "getpid", "openat"]), "in 1 of 3 inputs".to_string()),
        ]
    );
}

#[test]
fn a_name_any_input_blocks_stays_blocked_with_its_rule() {
    let a = recording(&["read", "clone3"], json!([]));
    let b = recording(&["read", "clone"], json!([{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]));
    let out = merge(&inputs(vec![a, b])).unwrap();
    let clone3 = rule_with(&out, "clone3");
    assert_eq!(clone3.len(), 1, "{clone3:?}");
    assert_eq!((clone3[0].action.as_str(), &clone3[0].extra["errnoRet"]), (ACT_ERRNO, &json!(1)));
}

#[test]
fn every_action_kind_is_kept_and_blocks_its_names() {
    let all = every_action();
    let allows_everything = p(json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["reboot", "kexec_load", "init_module", "ptrace", "bpf", "mount", "umount2", "clone3", "read"],
                      "action": "SCMP_ACT_ALLOW"}]
    }));
    let out = merge(&inputs(vec![all.clone(), allows_everything])).unwrap();
    // (clone3's ENOSYS fallback gives way to the allow: see below.)
    for rule in all.syscalls.iter().filter(|r| r.action != ACT_ALLOW && !r.is_enosys()) {
        assert!(out.syscalls.contains(rule), "{rule:?} was not kept");
        let name = rule.all_names().next().unwrap();
        assert!(
            rule_with(&out, name).iter().all(|r| r.action != ACT_ALLOW),
            "{name} is blocked in one input but allowed by the merge"
        );
    }
    assert_eq!(out.architectures, Some(vec!["SCMP_ARCH_X86_64".into(), "SCMP_ARCH_X86".into()]));
    // Merging a profile with itself changes no filter.
    let twice = merge(&inputs(vec![all.clone(), all.clone()])).unwrap();
    assert!(diff(&all, &twice).is_empty(), "{}", diff(&all, &twice));
}

#[test]
fn argument_rules_are_merged_and_an_unconditional_allow_subsumes_them() {
    let a = recording(&["read"], json!([socket(1), socket(2)]));
    let b = recording(&["read"], json!([socket(2), socket(10)]));
    let out = merge(&inputs(vec![a.clone(), b.clone()])).unwrap();
    let sockets = rule_with(&out, "socket");
    let families: Vec<(u64, &str)> =
        sockets.iter().map(|r| (r.args.as_ref().unwrap()[0].value, r.extra["comment"].as_str().unwrap())).collect();
    assert_eq!(families, vec![(1, "in 1 of 2 inputs"), (2, "in 2 of 2 inputs"), (10, "in 1 of 2 inputs")]);
    for input in [&a, &b] {
        assert!(uncovered(&out, input).is_empty(), "the merge covers each input");
    }
    let c = recording(&["read", "socket"], json!([]));
    let out = merge(&inputs(vec![a, b, c])).unwrap();
    let sockets = rule_with(&out, "socket");
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    assert_eq!((sockets[0].args.clone(), &sockets[0].extra["comment"]), (None, &json!("in 3 of 3 inputs")));
}

#[test]
fn inputs_must_agree_on_the_default_action() {
    let a = recording(&["read"], json!([]));
    let mut b = a.clone();
    b.default_action = "SCMP_ACT_KILL_PROCESS".into();
    let e = merge(&inputs(vec![a.clone(), b])).unwrap_err().to_string();
    assert!(e.contains("in1.json") && e.contains("defaultAction") && e.contains("SCMP_ACT_KILL_PROCESS"), "{e}");
    let mut c = a.clone();
    c.extra.insert("listenerPath".into(), json!("/run/agent.sock"));
    let e = merge(&inputs(vec![a, c])).unwrap_err().to_string();
    assert!(e.contains("listenerPath"), "{e}");
    assert!(matches!(merge(&[]), Err(MergeError::NoInputs)));
}

#[test]
fn architectures_and_arch_maps_are_unions_but_do_not_mix() {
    let map = |arch: &str, subs: &[&str]| json!({"architecture": arch, "subArchitectures": subs});
    let a = p(json!({"defaultAction": "SCMP_ACT_ERRNO", "archMap": [map("SCMP_ARCH_X86_64", &["SCMP_ARCH_X86"])]}));
    let b = p(json!({"defaultAction": "SCMP_ACT_ERRNO",
                     "archMap": [map("SCMP_ARCH_X86_64", &["SCMP_ARCH_X32"]), map("SCMP_ARCH_AARCH64", &["SCMP_ARCH_ARM"])]}));
    let out = merge(&inputs(vec![a.clone(), b])).unwrap();
    let want = vec![
        serde_json::from_value(map("SCMP_ARCH_X86_64", &["SCMP_ARCH_X86", "SCMP_ARCH_X32"])).unwrap(),
        serde_json::from_value(map("SCMP_ARCH_AARCH64", &["SCMP_ARCH_ARM"])).unwrap(),
    ];
    assert_eq!(out.arch_map, Some(want));
    let plain = recording(&["read"], json!([]));
    assert!(matches!(merge(&inputs(vec![a, plain])), Err(MergeError::ArchStyles)));
}

#[test]
fn allow_rules_that_mean_more_than_allow_are_kept_verbatim() {
    let baseline = p(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["mount", "clone3"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
    ]}));
    let out = merge(&inputs(vec![baseline])).unwrap();
    assert_eq!(out.syscalls[0].names, Some(vec!["mount".to_string()]), "clone3 is blocked: taken out");
    assert_eq!(out.syscalls[0].extra["includes"], json!({"caps": ["CAP_SYS_ADMIN"]}));
}

#[test]
fn run_writes_the_merge_and_names_a_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let a = crate::tools::tests::write(
        dir.path(),
        "a.json",
        &serde_json::to_value(recording(&["read"], json!([]))).unwrap(),
    );
    let bad = crate::tools::tests::write(dir.path(), "bad.json", &json!({"defaultAction": 3}));
    let out = dir.path().join("out.json");
    run(&[a.clone(), a.clone()], &out).unwrap();
    assert_eq!(crate::tools::load_profile(&out).unwrap().syscalls[0].extra["comment"], "in 2 of 2 inputs");
    let e = run(&[a, bad], &out).unwrap_err().to_string();
    assert!(e.contains("bad.json") && e.contains("defaultAction") && e.contains("a string"), "{e}");
}

/// The recorder's clone3 ENOSYS (a run that only used clone) is a fallback:
/// merged with a run that used clone3, clone3 is allowed and the rule goes;
/// merged with runs that all lacked it, it stays.
#[test]
fn an_enosys_fallback_gives_way_to_an_allow() {
    let enosys = json!([{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]);
    let forks = recording(&["clone", "read"], enosys.clone());
    let threads = recording(&["clone3", "read"], json!([]));
    let out = merge(&inputs(vec![forks.clone(), threads])).unwrap();
    let clone3 = rule_with(&out, "clone3");
    assert!(clone3.len() == 1 && clone3[0].action == ACT_ALLOW, "{clone3:?}");
    let out = merge(&inputs(vec![forks.clone(), forks])).unwrap();
    let clone3 = rule_with(&out, "clone3");
    assert!(clone3.len() == 1 && clone3[0].is_enosys(), "{clone3:?}");
    let blocked = recording(&["read"], json!([{"names": ["clone3"], "action": "SCMP_ACT_ERRNO"}]));
    let out = merge(&inputs(vec![blocked, recording(&["clone3"], json!([]))])).unwrap();
    assert!(rule_with(&out, "clone3").iter().all(|r| r.action == ACT_ERRNO), "EPERM is a block");
}
