//! Reading and writing profile files; helpers for the tools' tests.

use std::fs;

use serde_json::json;

use super::*;
use crate::profile_file::profile_json;

/// A validated profile from JSON.
pub fn p(value: serde_json::Value) -> Profile {
    let profile: Profile = serde_json::from_value(value).unwrap();
    profile.validate().unwrap();
    profile
}

/// Every action containers/common knows, one rule each, with errnoRet
/// where the action takes one, and an argument rule.
pub fn every_action() -> Profile {
    p(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 1, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["reboot"], "action": "SCMP_ACT_KILL"},
            {"names": ["kexec_load"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["init_module"], "action": "SCMP_ACT_KILL_THREAD"},
            {"names": ["ptrace"], "action": "SCMP_ACT_TRAP"},
            {"names": ["bpf"], "action": "SCMP_ACT_TRACE", "errnoRet": 1},
            {"names": ["mount"], "action": "SCMP_ACT_LOG"},
            {"names": ["umount2"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_NE"},
                      {"index": 1, "value": 4_294_967_295_u64, "valueTwo": 0, "op": "SCMP_CMP_LE"}]}
        ]
    }))
}

pub fn write(dir: &Path, name: &str, value: &serde_json::Value) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path
}

fn load_err(value: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.json");
    fs::write(&path, value).unwrap();
    load_profile(&path).unwrap_err().to_string()
}

#[test]
fn a_wrong_field_is_named_with_what_was_expected() {
    let e = load_err(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},
            {"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":"one","op":"SCMP_CMP_EQ"}]}]}"#,
    );
    assert!(e.contains("in.json") && e.contains("syscalls[1].args[0].value") && e.contains("an integer"), "{e}");
    let e = load_err(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"]}]}"#);
    assert!(e.contains("syscalls[0].action") && e.contains("required"), "{e}");
    let e = load_err(r#"{"syscalls":[]}"#);
    assert!(e.contains("defaultAction") && e.contains("required"), "{e}");
    let e = load_err(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_MAYBE"}]}"#);
    assert!(e.contains("syscalls[0]") && e.contains("SCMP_ACT_MAYBE") && e.contains("expected one of"), "{e}");
    let e = load_err(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":-1}]}"#,
    );
    assert!(e.contains("syscalls[0].errnoRet") && e.contains("from 0 to 4294967295"), "{e}");
    let e = load_err("{not json");
    assert!(e.contains("in.json") && e.contains("line 1"), "{e}");
}

#[test]
fn what_is_not_a_regular_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    assert!(matches!(load_profile(&fifo), Err(FileError::NotRegular { .. })));
    let e = load_profile(&dir.path().join("missing.json")).unwrap_err().to_string();
    assert!(e.contains("missing.json"), "{e}");
}

#[test]
fn go_style_nulls_are_absent_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "go.json",
        &json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": null,
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": null}]}),
    );
    let profile = load_profile(&path).unwrap();
    assert_eq!(profile.syscalls[0].args, None);
}

#[test]
fn writes_are_atomic_and_leave_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    fs::write(&out, "old").unwrap();
    let profile = every_action();
    write_atomic(&out, &profile_json(&profile)).unwrap();
    assert_eq!(load_profile(&out).unwrap(), profile);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    let e = write_atomic(&dir.path().join("no/such/dir.json"), b"x").unwrap_err().to_string();
    assert!(e.contains("failed to write") && e.contains("dir.json"), "{e}");
}
