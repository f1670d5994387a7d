use std::collections::BTreeSet;

use rstest::rstest;
use serde_json::json;

use super::*;
use crate::syscalls::{Abi, NamedSyscalls};

/// The allow rule merge() writes for `names`, with the signal syscalls.
fn allow_with_signals(names: &[&str]) -> Rule {
    let mut all: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
    all.extend(SIGNAL_SYSCALLS.iter().map(|s| s.to_string()));
    Rule::allow(all.into_iter().collect())
}

fn recorded(names: &[&str], abis: &[Abi]) -> NamedSyscalls {
    NamedSyscalls {
        names: names.iter().map(|s| s.to_string()).collect(),
        abis: abis.iter().copied().collect(),
        unnamed: Vec::new(),
        conditions: Default::default(),
    }
}

fn parse(v: serde_json::Value) -> Profile {
    serde_json::from_value(v).expect("test profile parses")
}

/// A profile using every field containers/common knows, plus unknown ones.
fn full_profile() -> serde_json::Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
        ],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": [], "comment": "io",
             "includes": {}, "excludes": {}},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
            {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["bpf"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_SYS_ADMIN"], "minKernel": "4.8"}, "excludes": {"arches": ["s390x"]}},
            {"names": ["ptrace"], "action": "SCMP_ACT_KILL_PROCESS", "futureRuleField": {"x": 1}}
        ],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "listenerPath": "/run/seccomp-agent.sock",
        "listenerMetadata": "meta",
        "futureTopLevelField": [1, 2, 3]
    })
}

#[test]
fn full_profile_round_trips_with_unknown_fields() {
    let value = full_profile();
    let profile = parse(value.clone());
    profile.validate().expect("valid");
    assert_eq!(serde_json::to_value(&profile).unwrap(), value);
}

#[test]
fn baseline_rules_stay_first_and_verbatim() {
    let base = parse(full_profile());
    let out = merge(Some(&base), &recorded(&["getpid", "read"], &[Abi::X86_64]));
    let out_json = serde_json::to_value(&out).unwrap();
    let base_rules = full_profile()["syscalls"].as_array().unwrap().clone();
    assert_eq!(out_json["syscalls"].as_array().unwrap()[..base_rules.len()], base_rules[..]);
    for key in ["defaultErrnoRet", "flags", "listenerPath", "listenerMetadata", "futureTopLevelField"] {
        assert_eq!(out_json[key], full_profile()[key], "{key} kept");
    }
    // read is in the baseline already; getpid is new.
    assert_eq!(out.syscalls.last().unwrap(), &allow_with_signals(&["getpid"]));
}

#[rstest]
#[case::errno("SCMP_ACT_ERRNO")]
#[case::kill("SCMP_ACT_KILL")]
#[case::kill_process("SCMP_ACT_KILL_PROCESS")]
#[case::kill_thread("SCMP_ACT_KILL_THREAD")]
#[case::trap("SCMP_ACT_TRAP")]
#[case::trace("SCMP_ACT_TRACE")]
#[case::log("SCMP_ACT_LOG")]
#[case::notify("SCMP_ACT_NOTIFY")]
#[case::allow("SCMP_ACT_ALLOW")]
fn a_name_in_any_baseline_rule_is_not_added_again(#[case] action: &str) {
    let base = parse(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["mkdir"], "action": action}]
    }));
    base.validate().unwrap();
    let out = merge(Some(&base), &recorded(&["mkdir", "exit_group"], &[Abi::X86_64]));
    assert_eq!(out.syscalls.len(), 2);
    assert_eq!(out.syscalls[0], base.syscalls[0]);
    assert_eq!(out.syscalls[1], allow_with_signals(&["exit_group"]));
}

#[test]
fn a_name_in_a_rule_with_args_blocks_the_plain_allow() {
    let base = parse(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]
    }));
    let out = merge(Some(&base), &recorded(&["personality"], &[Abi::X86_64]));
    assert_eq!(out.syscalls[0], base.syscalls[0]);
    assert!(!out.syscalls[1].all_names().any(|n| n == "personality"), "the args-restricted rule is not widened");
}

#[test]
fn singular_name_counts_as_named() {
    let base = parse(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"name": "chmod", "action": "SCMP_ACT_ERRNO"}]}));
    let out = merge(Some(&base), &recorded(&["chmod"], &[Abi::X86_64]));
    assert!(!out.syscalls[1].all_names().any(|n| n == "chmod"));
    assert_eq!(out.default_action, "SCMP_ACT_ERRNO");
}

#[test]
fn nothing_new_means_no_empty_allow_rule() {
    let out = merge(None, &recorded(&[], &[]));
    assert!(out.syscalls.is_empty());
    out.validate().unwrap();
    let base = parse(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read", "rt_sigreturn", "restart_syscall"], "action": "SCMP_ACT_ALLOW"}]}));
    let out = merge(Some(&base), &recorded(&["read"], &[Abi::X86_64]));
    assert_eq!(out.syscalls.len(), 1);
}

#[test]
fn without_baseline_names_are_sorted_in_one_allow_rule() {
    let out = merge(None, &recorded(&["write", "exit_group", "read"], &[Abi::X86_64]));
    assert_eq!(out.default_action, ACT_ERRNO);
    assert_eq!(out.architectures, Some(vec!["SCMP_ARCH_X86_64".into()]));
    assert_eq!(out.syscalls, vec![allow_with_signals(&["write", "exit_group", "read"])]);
    let names: Vec<&str> = out.syscalls[0].all_names().collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[rstest]
#[case::native_only(None, &[Abi::X86_64], &["SCMP_ARCH_X86_64"])]
#[case::compat_recorded(None, &[Abi::X86_64, Abi::X86], &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])]
#[case::only_compat(None, &[Abi::X86], &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])]
#[case::input_kept_first(Some(vec!["SCMP_ARCH_AARCH64"]), &[Abi::X32], &["SCMP_ARCH_AARCH64", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"])]
#[case::no_duplicates(Some(vec!["SCMP_ARCH_X86", "SCMP_ARCH_X86_64"]), &[Abi::X86], &["SCMP_ARCH_X86", "SCMP_ARCH_X86_64"])]
fn architectures_cover_native_and_recorded(
    #[case] input: Option<Vec<&str>>,
    #[case] abis: &[Abi],
    #[case] expected: &[&str],
) {
    let mut base = Profile::deny_all();
    base.architectures = input.map(|v| v.into_iter().map(String::from).collect());
    let out = merge(Some(&base), &recorded(&["read"], abis));
    assert_eq!(out.architectures.unwrap(), expected);
}

#[test]
fn arch_map_baseline_gets_recorded_abis_in_its_native_entry() {
    let base = parse(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "archMap": [{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}]
    }));
    let out = merge(Some(&base), &recorded(&["read"], &[Abi::X86_64, Abi::X86]));
    assert_eq!(out.architectures, None, "podman refuses architectures next to archMap");
    let map = out.arch_map.unwrap();
    assert_eq!(map[0], base.arch_map.unwrap()[0]);
    assert_eq!(map[1].architecture, "SCMP_ARCH_X86_64");
    assert_eq!(map[1].sub_architectures, vec!["SCMP_ARCH_X86".to_string()]);
    // Covered already: nothing added.
    let base = parse(full_profile());
    let out = merge(Some(&base), &recorded(&["read"], &[Abi::X86]));
    assert_eq!(out.arch_map, base.arch_map);
}

#[rstest]
#[case::default_action(json!({"defaultAction": "SCMP_ACT_NOPE"}), "unknown defaultAction")]
#[case::both_arch(json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86"],
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": []}]}), "both 'architectures' and 'archMap'")]
#[case::bad_arch(json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["x86_64"]}), "unknown architecture \"x86_64\"")]
#[case::bad_action(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "ALLOW"}]}), "syscalls[0] has unknown action")]
#[case::name_and_names(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "a", "names": ["a"], "action": "SCMP_ACT_ALLOW"}]}), "both 'name' and 'names'")]
#[case::no_names(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": [], "action": "SCMP_ACT_ALLOW"}]}), "syscalls[1] names no syscall")]
#[case::empty_name(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [""], "action": "SCMP_ACT_ALLOW"}]}), "empty syscall name")]
fn invalid_profiles_are_refused(#[case] value: serde_json::Value, #[case] message: &str) {
    let err = parse(value).validate().unwrap_err();
    assert!(err.to_string().contains(message), "{err} should contain {message}");
}

#[test]
fn missing_default_action_does_not_parse() {
    assert!(serde_json::from_value::<Profile>(json!({"syscalls": []})).is_err());
}

#[test]
fn merge_output_is_valid_for_every_baseline_shape() {
    let outs = [
        merge(None, &recorded(&["read"], &[Abi::X86_64])),
        merge(Some(&parse(full_profile())), &recorded(&["read", "getpid"], &[Abi::X86])),
    ];
    for out in outs {
        out.validate().unwrap();
        let names: BTreeSet<&str> = out.named_syscalls();
        assert!(names.contains("read"));
    }
}

#[test]
fn signal_syscalls_are_always_allowed_unless_the_baseline_names_them() {
    let out = merge(None, &recorded(&["read"], &[Abi::X86_64]));
    let names: Vec<&str> = out.syscalls[0].all_names().collect();
    assert!(names.contains(&"rt_sigreturn") && names.contains(&"restart_syscall"), "{names:?}");
    assert!(!names.contains(&"sigreturn"), "i386's only with 32-bit code: {names:?}");

    let out = merge(None, &recorded(&["read"], &[Abi::X86_64, Abi::X86]));
    assert!(out.syscalls[0].all_names().any(|n| n == "sigreturn"));

    let base = parse(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["rt_sigreturn"], "action": "SCMP_ACT_KILL"}]}));
    let out = merge(Some(&base), &recorded(&["read"], &[Abi::X86_64]));
    assert!(!out.syscalls[1].all_names().any(|n| n == "rt_sigreturn"), "blocked stays blocked");
}

fn socket_family(value: u64) -> Arg {
    Arg { index: 0, value, value_two: 0, op: CMP_EQ.into() }
}

#[test]
fn conditions_give_one_rule_per_value_after_the_plain_names() {
    let mut rec = recorded(&["read", "socket"], &[Abi::X86_64]);
    rec.conditions.insert("socket".into(), vec![socket_family(1), socket_family(2)]);
    let out = merge(None, &rec);
    assert_eq!(out.syscalls[0], allow_with_signals(&["read"]));
    for (rule, family) in out.syscalls[1..].iter().zip([1, 2]) {
        assert_eq!(rule.names.as_deref(), Some(&["socket".to_string()][..]));
        assert_eq!((rule.action.as_str(), rule.args.as_deref()), (ACT_ALLOW, Some(&[socket_family(family)][..])));
    }
    assert_eq!(out.syscalls.len(), 3);
    out.validate().unwrap();
}

#[test]
fn a_baseline_naming_the_syscall_keeps_its_rule_alone() {
    let base = parse(full_profile());
    let mut rec = recorded(&["personality"], &[Abi::X86_64]);
    rec.conditions.insert("personality".into(), vec![socket_family(8)]);
    let out = merge(Some(&base), &rec);
    let personality: Vec<&Rule> = out.syscalls.iter().filter(|r| r.all_names().any(|n| n == "personality")).collect();
    assert_eq!(personality, [&base.syscalls[1]], "the baseline's args rule, and no other");
}

#[test]
fn clone_without_clone3_makes_clone3_fail_with_enosys() {
    let out = merge(None, &recorded(&["clone", "read"], &[Abi::X86_64]));
    let last = out.syscalls.last().unwrap();
    assert_eq!((last.names.as_deref(), last.action.as_str()), (Some(&["clone3".to_string()][..]), ACT_ERRNO));
    assert_eq!(last.extra["errnoRet"], json!(38));
    for with_clone3 in [recorded(&["clone", "clone3"], &[Abi::X86_64]), recorded(&["read"], &[Abi::X86_64])] {
        let out = merge(None, &with_clone3);
        assert!(out.syscalls.iter().all(|r| r.action == ACT_ALLOW), "{:?}", out.syscalls);
    }
    let blocked = parse(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["clone3"], "action": "SCMP_ACT_KILL"}]}));
    let out = merge(Some(&blocked), &recorded(&["clone"], &[Abi::X86_64]));
    assert_eq!(out.syscalls.iter().filter(|r| r.all_names().any(|n| n == "clone3")).count(), 1, "the baseline's");
}
