//! The profile tools on real recordings: two workloads recorded with the
//! hook, merged, replayed under the merge with podman, checked with
//! `check --covers` and `diff`, and converted for runc (an OCI bundle run
//! directly) and for Kubernetes (SPO's CRD schema). Only files and exit
//! codes are asserted on.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use rstest::rstest;
use serde_json::Value;

use crate::support::{assert_same, hook_bin, is_root, skip, stdout, Podman, IMAGE, PROBE_IN_IMAGE as PROBE};

/// Runs the hook binary with `args`.
fn tool(args: &[&Path]) -> Output {
    Command::new(hook_bin()).args(args).output().unwrap()
}

fn p(s: &str) -> &Path {
    Path::new(s)
}

/// Traces `sysprobe MODE` into `<mode>.json`; returns its path and podman's output.
fn record(podman: &Podman, mode: &str) -> (PathBuf, Output) {
    let out = podman.path(&format!("{mode}.json"));
    let (_, o) = podman.trace(None, &out, &[PROBE, mode]);
    (out, o)
}

#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn merged_recordings_replay_and_cover_each(#[case] runtime: &'static str) {
    let Some(podman) = Podman::new(runtime) else { return };
    let (once, once_run) = record(&podman, "once");
    let (getpid, getpid_run) = record(&podman, "getpid");
    let merged = podman.path("merged.json");

    let o = tool(&[p("merge"), &once, &getpid, p("-o"), &merged]);
    assert!(o.status.success(), "merge failed: {o:?}");
    let profile: Value = serde_json::from_slice(&std::fs::read(&merged).unwrap()).unwrap();
    let notes: Vec<&str> =
        profile["syscalls"].as_array().unwrap().iter().filter_map(|r| r["comment"].as_str()).collect();
    assert!(notes.contains(&"in 2 of 2 inputs") && notes.contains(&"in 1 of 2 inputs"), "{profile}");

    assert_same(&once_run, &podman.replay(&merged, &[PROBE, "once"]), &[PROBE, "once"]);
    assert_same(&getpid_run, &podman.replay(&merged, &[PROBE, "getpid"]), &[PROBE, "getpid"]);

    let covers = |profile: &Path, recordings: &[&Path]| {
        let mut args = vec![p("check"), p("--covers"), profile];
        args.extend(recordings);
        tool(&args)
    };
    assert_eq!(covers(&merged, &[&once, &getpid]).status.code(), Some(0));
    let missing = covers(&getpid, &[&once]);
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    assert!(stdout(&missing).contains("sched_get_priority_min"), "{}", stdout(&missing));

    let d = tool(&[p("diff"), &once, &getpid]);
    assert_eq!(d.status.code(), Some(1), "{d:?}");
    assert!(stdout(&d).contains("- allow sched_get_priority_min"), "{}", stdout(&d));
    assert_eq!(tool(&[p("diff"), &once, &once]).status.code(), Some(0));
    assert_eq!(tool(&[p("diff"), &once, p("/nonexistent.json")]).status.code(), Some(2));
}

/// The merge, through SPO and back, is the same filter; the SPO object
/// is valid by SPO's CRD schema.
#[test]
fn spo_output_is_valid_and_comes_back_the_same() {
    let Some(podman) = Podman::new("crun") else { return };
    let (once, _) = record(&podman, "once");
    let (spo, back) = (podman.path("once.yaml"), podman.path("back.json"));
    assert!(tool(&[p("convert"), p("--to"), p("spo"), &once, p("-o"), &spo]).status.success());
    assert!(tool(&[p("convert"), p("--to"), p("containers"), &spo, p("-o"), &back]).status.success());
    assert_eq!(tool(&[p("diff"), &once, &back]).status.code(), Some(0));

    let object: Value = serde_saphyr::from_str(&std::fs::read_to_string(&spo).unwrap()).unwrap();
    let errors: Vec<String> = spo_schema().iter_errors(&object).map(|e| format!("{}: {e}", e.instance_path)).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

fn spo_schema() -> jsonschema::Validator {
    let path = hook_test_support::repo_root().join("tests/fixtures/spo/seccompprofiles.crd.yaml");
    let crd: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let version = crd["spec"]["versions"].as_array().unwrap().iter().find(|v| v["name"] == "v1beta1").cloned();
    jsonschema::validator_for(&version.expect("the CRD serves v1beta1")["schema"]["openAPIV3Schema"]).unwrap()
}

/// `convert --to oci` in a bundle's config.json, run by runc itself: the
/// recorded program runs, another is denied.
#[test]
fn oci_output_runs_under_runc() {
    if !is_root() {
        skip!("runc needs root here");
    }
    let Some(podman) = Podman::new("runc") else { return };
    let (once, once_run) = record(&podman, "once");
    let seccomp = podman.path("seccomp.oci.json");
    assert!(tool(&[p("convert"), p("--to"), p("oci"), &once, p("-o"), &seccomp]).status.success());
    let bundle = bundle(&podman, &seccomp);

    let ran = runc(&bundle, &[PROBE, "once"]);
    assert_eq!((ran.status.code(), stdout(&ran)), (once_run.status.code(), stdout(&once_run)), "{ran:?}");
    let denied = runc(&bundle, &[PROBE, "unusual"]);
    assert!(!denied.status.success() && stdout(&denied).contains("Operation not permitted"), "{denied:?}");
}

/// A bundle of the fixture image's root file system, with runc's default
/// config.json and the converted `linux.seccomp`.
fn bundle(podman: &Podman, seccomp: &Path) -> PathBuf {
    let dir = podman.path("bundle");
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let name = format!("seccomp-export-{}", std::process::id());
    let created = podman.podman(&["create", "--name", &name, IMAGE]);
    assert!(created.status.success(), "{created:?}");
    let tar = podman.path("rootfs.tar");
    let exported = podman.podman(&["export", "-o", tar.to_str().unwrap(), &name]);
    podman.podman(&["rm", "-f", &name]);
    assert!(exported.status.success(), "{exported:?}");
    let untar = std::process::Command::new("tar").arg("-xf").arg(&tar).arg("-C").arg(&rootfs).output().unwrap();
    assert!(untar.status.success(), "{untar:?}");
    let spec = std::process::Command::new("runc").arg("spec").current_dir(&dir).output().unwrap();
    assert!(spec.status.success(), "{spec:?}");
    let config = dir.join("config.json");
    let mut value: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    value["process"]["terminal"] = false.into();
    value["linux"]["seccomp"] = serde_json::from_slice(&std::fs::read(seccomp).unwrap()).unwrap();
    std::fs::write(&config, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    // oci-spec's own deserialiser accepts the whole config.
    let spec = oci_spec::runtime::Spec::load(&config).unwrap();
    assert!(spec.linux().as_ref().unwrap().seccomp().is_some());
    dir
}

/// `runc run` of `args` in the bundle, with a state directory of its own.
fn runc(bundle: &Path, args: &[&str]) -> Output {
    let config = bundle.join("config.json");
    let mut value: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    value["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
    std::fs::write(&config, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    let id = format!("seccomp-oci-{}-{}", std::process::id(), args[1]);
    std::process::Command::new("runc")
        .arg("--root")
        .arg(bundle.join("state"))
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// Recordings with argument rules, as the recorder writes them (one
/// `SCMP_CMP_EQ` rule per socket family): podman loads their merge, which
/// lets both families through and denies a third.
#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn merged_argument_rules_allow_each_value_and_deny_others(#[case] runtime: &'static str) {
    let Some(podman) = Podman::new(runtime) else { return };
    let unix = socket_recording(&podman, 1);
    let inet = socket_recording(&podman, 2);
    let merged = podman.path("merged.json");
    assert!(tool(&[p("merge"), &unix, &inet, p("-o"), &merged]).status.success());

    let ok = podman.replay(&merged, &[PROBE, "socket", "1", "2"]);
    assert_eq!(stdout(&ok), "socket 1: ok\nsocket 2: ok\n", "{ok:?}");
    let denied = podman.replay(&merged, &[PROBE, "socket", "1", "17"]);
    assert_eq!(stdout(&denied), "socket 1: ok\nsocket 17: Operation not permitted\n", "{denied:?}");

    let covers = tool(&[p("check"), p("--covers"), &merged, &unix, &inet]);
    assert_eq!(covers.status.code(), Some(0), "{covers:?}");
    let missing = tool(&[p("check"), p("--covers"), &unix, &inet]);
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    assert!(stdout(&missing).contains("socket if arg0 == 2"), "{}", stdout(&missing));
}

/// `sysprobe socket FAMILY` recorded, its `socket` allowed for that family only.
fn socket_recording(podman: &Podman, family: u64) -> PathBuf {
    let out = podman.path(&format!("socket{family}.json"));
    let (mut profile, _) = podman.trace(None, &out, &[PROBE, "socket", &family.to_string()]);
    let rules = profile["syscalls"].as_array_mut().unwrap();
    for rule in rules.iter_mut().filter(|r| r["action"] == "SCMP_ACT_ALLOW") {
        let names = rule["names"].as_array_mut().unwrap();
        names.retain(|n| n != "socket");
    }
    rules.retain(|r| !r["names"].as_array().unwrap().is_empty());
    rules.push(serde_json::json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": family, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}));
    std::fs::write(&out, serde_json::to_vec_pretty(&profile).unwrap()).unwrap();
    out
}
