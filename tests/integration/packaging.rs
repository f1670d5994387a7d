//! What a distribution installs: the hooks.d entry and the man page.

use assert_cmd::Command;
use serde_json::{json, Value};

use crate::support::hook_bin;

#[test]
fn hooks_d_entry_is_the_old_tools() {
    let entry: Value = hook_test_support::podman::packaged_entry();
    assert_eq!(entry["version"], "1.0.0");
    assert_eq!(entry["hook"]["args"], json!(["oci-seccomp-bpf-hook", "-s"]));
    assert!(entry["hook"]["path"].as_str().unwrap().ends_with("/oci-seccomp-bpf-hook"));
    // The old tool's entry, spelled out: the annotation the hook reads, escaped.
    let pattern = format!("^{}$", hook_test_support::ANNOTATION.replace('.', "\\."));
    assert_eq!(pattern, "^io\\.containers\\.trace-syscall$");
    assert_eq!(entry["when"], json!({"annotations": {pattern: ".*"}}));
    assert_eq!(entry["stages"], json!(["prestart"]));
}

#[test]
fn man_page_is_generated_from_the_cli() {
    let out = Command::new(hook_bin()).arg("man").output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH oci-seccomp-bpf-hook"), "{page}");
    assert!(page.contains("io.containers.trace\\-syscall"), "the annotation is documented");
    assert!(page.contains("record"), "the record subcommand is documented");
}

#[test]
fn without_root_the_hook_refuses_with_the_reason() {
    if !crate::support::is_root() {
        let out = Command::new(hook_bin()).arg("-s").write_stdin("{}").output().unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("must run as root"));
        return;
    }
    // As root: drop to nobody for this one check.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(hook_bin())
        .arg("-s")
        .env("OCI_SECCOMP_BPF_HOOK_LOG_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must run as root") && err.contains("rootless"), "{err}");
}
