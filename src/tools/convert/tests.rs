use std::fs;

use serde_json::json;

use super::*;
use crate::tools::tests::{every_action, p, write};

/// SPO's CRD schema for the v1beta1 objects we write (tests/fixtures/spo).
fn spo_schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spo/seccompprofiles.crd.yaml");
    let crd: Value = serde_saphyr::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    let versions = crd["spec"]["versions"].as_array().unwrap();
    let v1beta1 = versions.iter().find(|v| v["name"] == "v1beta1").expect("the CRD serves v1beta1");
    jsonschema::validator_for(&v1beta1["schema"]["openAPIV3Schema"]).unwrap()
}

fn spo_value(profile: &Profile) -> Value {
    serde_saphyr::from_str(std::str::from_utf8(&render(profile, Format::Spo, "web").unwrap()).unwrap()).unwrap()
}

/// Every action but with no defaultErrnoRet, which SPO has no field for.
fn every_action_for_spo() -> Profile {
    let mut profile = every_action();
    profile.default_errno_ret = None;
    profile
}

/// What the formats cannot carry: a rule's comment.
fn without_comments(mut profile: Profile) -> Profile {
    profile.syscalls.iter_mut().for_each(|r| drop(r.extra.shift_remove("comment")));
    profile
}

#[test]
fn containers_to_oci_and_back_loses_nothing() {
    let profile = every_action();
    let json = render(&profile, Format::Oci, "x").unwrap();
    // oci-spec's own deserialiser reads it.
    let seccomp: LinuxSeccomp = serde_json::from_slice(&json).unwrap();
    assert_eq!(seccomp.syscalls().as_ref().unwrap().len(), profile.syscalls.len());
    assert_eq!(oci::to_profile(&seccomp), profile);
}

#[test]
fn containers_to_spo_and_back_loses_nothing() {
    let profile = every_action_for_spo();
    let object: spo::SeccompProfile = serde_json::from_value(spo_value(&profile)).unwrap();
    assert_eq!((object.api_version.as_str(), object.kind.as_str()), (spo::API_VERSION, spo::KIND));
    assert_eq!(object.metadata.name, "web");
    assert_eq!(spo::to_profile(&object).unwrap(), profile);
}

#[test]
fn spo_output_is_valid_against_the_crd_schema() {
    let schema = spo_schema();
    for profile in [every_action_for_spo(), p(json!({"defaultAction": "SCMP_ACT_LOG"}))] {
        let value = spo_value(&profile);
        let errors: Vec<String> = schema.iter_errors(&value).map(|e| format!("{}: {e}", e.instance_path)).collect();
        assert!(errors.is_empty(), "{errors:?} in {value}");
    }
    // The check has teeth.
    let mut bad = spo_value(&every_action_for_spo());
    bad["spec"]["syscalls"][0]["action"] = json!("SCMP_ACT_MAYBE");
    assert!(!schema.is_valid(&bad));
}

#[test]
fn a_merged_profile_converts_without_its_comments() {
    let merged = crate::tools::merge::merge(&[("a".into(), every_action_for_spo())]).unwrap();
    for to in [Format::Oci, Format::Spo] {
        let dir = tempfile::tempdir().unwrap();
        let input = write(dir.path(), "merged.json", &serde_json::to_value(&merged).unwrap());
        let out = dir.path().join("out");
        run(&input, to, &out, None).unwrap();
        let (from, back) = read_any(&out).unwrap();
        assert_eq!((from, back), (to, without_comments(merged.clone())));
    }
}

#[test]
fn the_input_format_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let profile = every_action_for_spo();
    let containers = write(dir.path(), "c.json", &serde_json::to_value(&profile).unwrap());
    for (to, want) in [(Format::Oci, Format::Oci), (Format::Spo, Format::Spo)] {
        let out = dir.path().join(format!("{to:?}"));
        assert_eq!(run(&containers, to, &out, Some("n")).unwrap(), Format::Oci, "every_action has only OCI's fields");
        let back = dir.path().join(format!("{to:?}.json"));
        assert_eq!(run(&out, Format::Containers, &back, None).unwrap(), want);
        assert_eq!(crate::tools::load_profile(&back).unwrap(), profile);
    }
    // A whole config.json: its linux.seccomp.
    let seccomp: Value = serde_json::from_slice(&render(&profile, Format::Oci, "").unwrap()).unwrap();
    let config = write(dir.path(), "config.json", &json!({"ociVersion": "1.2.0", "linux": {"seccomp": seccomp}}));
    assert_eq!(read_any(&config).unwrap(), (Format::Oci, profile.clone()));
    // A containers-only field: read as containers.
    let mut with_comment = profile.clone();
    with_comment.syscalls[0].extra.insert("comment".into(), json!("kept"));
    let c = write(dir.path(), "comment.json", &serde_json::to_value(&with_comment).unwrap());
    assert_eq!(read_any(&c).unwrap(), (Format::Containers, with_comment));
}

#[test]
fn what_a_format_cannot_express_is_refused_naming_the_field() {
    let mut includes = every_action();
    includes.syscalls[3].extra.insert("includes".into(), json!({"caps": ["CAP_SYS_ADMIN"]}));
    let e = render(&includes, Format::Oci, "x").unwrap_err().to_string();
    assert!(e.contains("OCI") && e.contains("syscalls[3].includes"), "{e}");
    includes.default_errno_ret = None;
    let e = render(&includes, Format::Spo, "x").unwrap_err().to_string();
    assert!(e.contains("SPO") && e.contains("syscalls[3].includes"), "{e}");
    let e = render(&every_action(), Format::Spo, "x").unwrap_err().to_string();
    assert!(e.contains("defaultErrnoRet"), "{e}");
    let mut arm = every_action();
    arm.architectures = Some(vec!["SCMP_ARCH_LOONGARCH64".into(), "SCMP_ARCH_PPC".into()]);
    assert!(render(&arm, Format::Oci, "x").is_ok());
}

#[test]
fn an_arch_map_becomes_the_hosts_architectures_in_oci() {
    let profile = p(json!({"defaultAction": "SCMP_ACT_ERRNO", "archMap": [
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}]}));
    let seccomp = oci::from_profile(&profile).unwrap();
    let back = oci::to_profile(&seccomp);
    assert_eq!(
        back.architectures,
        Some(vec!["SCMP_ARCH_X86_64".into(), "SCMP_ARCH_X86".into(), "SCMP_ARCH_X32".into()])
    );
}

#[test]
fn bad_spo_input_names_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let write_yaml = |name: &str, text: &str| {
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap();
        read_any(&path).unwrap_err().to_string()
    };
    let e = write_yaml("v.yaml", "apiVersion: v9\nkind: SeccompProfile\nspec: {defaultAction: SCMP_ACT_ERRNO}\n");
    assert!(e.contains("v.yaml") && e.contains("apiVersion") && e.contains(spo::API_VERSION), "{e}");
    let e = write_yaml(
        "a.yaml",
        "apiVersion: security-profiles-operator.x-k8s.io/v1beta1\nkind: SeccompProfile\nmetadata: {name: x}\n\
         spec:\n  defaultAction: SCMP_ACT_ERRNO\n  syscalls:\n  - names: [socket]\n    action: SCMP_ACT_ALLOW\n    \
         args: [{index: 0, value: -1, op: SCMP_CMP_EQ}]\n",
    );
    assert!(e.contains("a.yaml") && e.contains("spec.syscalls[0].args[0].value") && e.contains("an integer"), "{e}");
    let e = write_yaml(
        "base.yaml",
        "apiVersion: security-profiles-operator.x-k8s.io/v1beta1\nkind: SeccompProfile\nmetadata: {name: x}\n\
         spec: {defaultAction: SCMP_ACT_ERRNO, baseProfileName: runc-v1.2.0, disabled: false}\n",
    );
    assert!(e.contains("base.yaml") && e.contains("spec.baseProfileName"), "{e}");
    let e = write_yaml("junk.yaml", "- [unclosed\n");
    assert!(e.contains("junk.yaml"), "{e}");
}

#[test]
fn object_names_follow_kubernetes_rules() {
    for (file, name) in
        [("web-server.yaml", "web-server"), ("My_App.v2.yaml", "my-app.v2"), ("__.yaml", "recorded-profile")]
    {
        assert_eq!(spo::object_name(Path::new(file)), name);
    }
}
