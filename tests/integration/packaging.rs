//! What a distribution installs: the hooks.d entry, the man page, and the
//! Debian package built by `just deb` installed, used and purged.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use hook_test_support::packaged::{self, PACKAGE};
use hook_test_support::podman::Run;
use serde_json::{json, Value};

use crate::support::{allowed, assert_same, hook_bin, pins, skip, stderr, stdout, wait_for_profile, PROBE_IN_IMAGE};

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

// ---- The Debian package (`just deb`), installed, used and purged. ----

/// Where the package puts its files (packaging/deb.sh).
const PACKAGED_FILES: [&str; 4] = [
    packaged::BINARY,
    packaged::ENTRY,
    "/usr/share/man/man1/oci-seccomp-bpf-hook.1.gz",
    "/usr/share/doc/oci-seccomp-bpf-hook/copyright",
];
/// The minimal kernel BTF cache (src/tracer/kernel_btf.rs).
const BTF_CACHE: &str = "/run/oci-seccomp-bpf-hook";
/// What packaging/postrm says when it leaves the pins to running tracers.
const LEFT_TO_TRACERS: &str = "tracers still record containers";

/// `apt-get ARGS` as a maintainer would type it, never asking.
fn apt_get(args: &[&str]) -> std::process::Output {
    std::process::Command::new("apt-get")
        // Another apt run may hold the lock for a while: wait rather than fail.
        .args(["-y", "-q", "-o", "Dpkg::Use-Pty=0", "-o", "DPkg::Lock::Timeout=120"])
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .expect("apt-get runs")
}

fn installed() -> bool {
    let o = std::process::Command::new("dpkg-query").args(["-W", "-f=${Status}", PACKAGE]).output();
    o.is_ok_and(|o| stdout(&o).contains("install ok installed"))
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "60 s and still not: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `apt-get install ./oci-seccomp-bpf-hook_*.deb` makes a plain `podman run`
/// with the annotation record a profile that replays; `apt-get purge`
/// leaves no file, no pin and nothing in /run.
#[test]
fn the_deb_installs_records_without_hooks_dir_and_purges_clean() {
    let Some(deb) = std::env::var_os("OCI_HOOK_TEST_DEB").map(PathBuf::from) else {
        skip!("OCI_HOOK_TEST_DEB is unset: `just test-host` and `just test-userlands` build the package (`just deb`) and set it")
    };
    if !crate::support::is_root() {
        skip!("installing a package needs root");
    }
    if !Path::new("/usr/bin/apt-get").exists() {
        skip!("no apt-get: not a Debian-like system");
    }
    assert!(deb.is_file(), "OCI_HOOK_TEST_DEB={deb:?} is not a file: run `just deb`");
    if installed() {
        println!("the package is installed (an interrupted earlier run?): purging it first");
        let o = apt_get(&["purge", PACKAGE]);
        assert!(o.status.success(), "apt-get purge of the leftover failed: {}{}", stdout(&o), stderr(&o));
    }
    let ours = |path: &&str| {
        std::process::Command::new("dpkg-query").args(["-S", path]).output().is_ok_and(|o| o.status.success())
    };
    if let Some(path) = PACKAGED_FILES.iter().find(|p| Path::new(p).exists() && !ours(p)) {
        skip!("{path} belongs to no package (a `just install`?): installing and purging the package would remove it");
    }

    // apt-get resolves Depends from what is installed, with no download.
    let o = apt_get(&["install", &deb.to_string_lossy()]);
    assert!(o.status.success(), "apt-get install {deb:?} failed: {}{}", stdout(&o), stderr(&o));
    for path in PACKAGED_FILES {
        assert!(Path::new(path).exists(), "{path} is not installed");
    }

    // The installed package must be found with no `--hooks-dir`.
    let plain = packaged::podman().unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("p.json");
    let cmd = [PROBE_IN_IMAGE, "once"];
    let traced = Run::new("runc").rm().traced_into(&out);
    let first = plain.output(&traced.args(&cmd)).unwrap();
    assert!(first.status.success(), "traced run failed: {}{}", stdout(&first), stderr(&first));
    let profile = wait_for_profile(&out);
    assert!(!allowed(&profile).is_empty(), "empty profile: {profile}");
    let again = plain.output(&Run::new("runc").rm().confined_by(&out).args(&cmd)).unwrap();
    assert_same(&first, &again, &cmd);

    // The tracer ends right after logging the profile it wrote; purge once
    // it has. (Found by the profile: podman 5 deletes a --cidfile on --rm.)
    let id = packaged::wait_for_end(&out, Duration::from_secs(60)).unwrap().container;
    let started = packaged::wait_for_start(&id, Duration::from_secs(10)).unwrap();
    let tracer = format!("/proc/{}", started.tracer_pid);
    wait_until("the packaged tracer exited", || !Path::new(&tracer).exists());

    let o = apt_get(&["purge", PACKAGE]);
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success(), "apt-get purge failed: {said}");
    assert!(!installed(), "still installed after purge: {said}");
    for path in PACKAGED_FILES.iter().chain(&[packaged::LOG_FILE]) {
        assert!(!Path::new(path).exists(), "{path} is left after purge");
    }
    // By owner, not by mount namespace: a namespace's inode number is
    // reused by the next container at once (another test's, on a host).
    let left = oci_seccomp_bpf_hook::tracer::traced();
    assert!(!left.iter().any(|(_, owner)| *owner == started.tracer_pid), "our tracer's record is left: {left:?}");
    if said.contains(LEFT_TO_TRACERS) {
        // Other tracers share this bpffs (a host running other tests): the
        // pins and /run are theirs to remove, as postrm says.
        let postrm: Vec<&str> = said.lines().filter(|l| l.contains(LEFT_TO_TRACERS)).collect();
        println!("NOTE: {}: checked our record only; {}", crate::support::test_name(), postrm.join("; "));
        return;
    }
    let tracers = crate::support::hook_processes("-s");
    assert_eq!(pins::dirs(), Vec::<PathBuf>::new(), "pin directories left after purge (tracers now: {tracers:?})");
    for path in [BTF_CACHE, oci_seccomp_bpf_hook::tracer::LOCK_FILE] {
        assert!(!Path::new(path).exists(), "{path} is left after purge");
    }
}
