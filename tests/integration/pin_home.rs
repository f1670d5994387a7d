//! The shared program's home (issue 9): a pin directory that another user
//! made, or that others may write, is never used as it is. Else a local
//! user could delete the pinned link and detach the program that records
//! every traced container on the host.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use oci_seccomp_bpf_hook::tracer::pins;

use crate::support::{hook_bin, is_root, wait_for_profile};

/// Whom the tests play the local user as.
const NOBODY: u32 = 65534;

/// Waits until no tracer holds the pin directory: the tests plant their
/// own in its place. False after 120 s of other tracers.
fn quiet(dir: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while dir.exists() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    true
}

/// The pin directory once no tracer holds it, or None (after saying why)
/// when this test cannot run.
fn vacant_home() -> Option<PathBuf> {
    let dir = pins::dir();
    let why = if !is_root() {
        "loading BPF needs root".to_string()
    } else if !quiet(&dir) {
        format!("other tracers kept {dir:?} for 120 s")
    } else {
        return Some(dir);
    };
    println!("SKIPPED: {}: {why}", crate::support::test_name());
    None
}

/// Runs `script` under `record` (so while the program is pinned) and
/// returns what it printed, after checking that recording worked.
fn record_sh(script: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p.json");
    let o = Command::new(hook_bin()).arg("record").arg("-o").arg(&out).args(["--", "/bin/sh", "-c", script]).output();
    let o = o.unwrap();
    assert!(o.status.success(), "record: {}", String::from_utf8_lossy(&o.stderr));
    let profile = wait_for_profile(&out);
    let names = profile["syscalls"][0]["names"].as_array().map(Vec::len).unwrap_or(0);
    assert!(names > 10, "recording works: {profile}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// While recording: who owns the pin directory, its mode, and whether the
/// link survives `nobody` trying to delete it.
fn home_while_recording(dir: &Path) -> String {
    let dir = dir.display();
    record_sh(&format!(
        "stat -c '%u %a' {dir}; \
         setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups rm -f {dir}/link 2>/dev/null; \
         if test -e {dir}/link; then echo linked; else echo unlinked; fi"
    ))
}

#[test]
fn a_pin_directory_made_by_another_user_is_replaced() {
    let Some(dir) = vacant_home() else { return };
    // The attack of issue 9: the user makes the directory while no tracer
    // runs, with a subdirectory and a link of its own inside.
    let made = Command::new("sh")
        .args(["-c", "mkdir -m 0755 \"$0\" && mkdir \"$0/sub\" && ln -s /etc \"$0/containers\""])
        .arg(&dir)
        .uid(NOBODY)
        .gid(NOBODY)
        .status()
        .unwrap();
    if !made.success() {
        // bpffs not writable by others here (mounted mode=0700): the same
        // directory, handed to the user.
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    assert_eq!(std::fs::metadata(&dir).unwrap().uid(), NOBODY);

    assert_eq!(home_while_recording(&dir), "0 700\nlinked\n");
    assert!(std::fs::metadata("/etc/passwd").is_ok(), "the planted link was not followed");
    assert!(!dir.exists(), "the last tracer out removed the directory");
}

#[test]
fn a_world_writable_pin_directory_is_replaced() {
    let Some(dir) = vacant_home() else { return };
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();

    assert_eq!(home_while_recording(&dir), "0 700\nlinked\n");
}

/// `tracer::traced` (what tests and the bench read instead of decoding
/// record bytes) lists a running tracer under its pid.
#[test]
fn the_library_lists_a_running_tracer() {
    use oci_seccomp_bpf_hook::tracer;
    use std::io::Write;
    if !is_root() {
        println!("SKIPPED: {}: loading BPF needs root", crate::support::test_name());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut record = Command::new(hook_bin())
        .arg("record")
        .arg("-o")
        .arg(tmp.path().join("p.json"))
        .args(["--", "/bin/sh", "-c", "read go"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let listed = tracer::traced().iter().any(|&(_, owner)| owner == record.id());
        if listed || Instant::now() > deadline {
            break listed;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    record.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(record.wait().unwrap().success());
    assert!(listed, "record pid {} not among {:?}", record.id(), tracer::traced());
}
