//! Issue 9: hostile paths and inputs are refused up front, never hang a
//! container start, never write outside what is allowed. One test per
//! failure of the issue (failure 8, the pin directory, is the tracer's).
//!
//! Most run the hook (`-s`) directly with an OCI state naming a stand-in
//! container (a `sleep` in a mount namespace of its own): no runtime
//! between the test and the hook's answer. The runc test goes through
//! podman, since the hang is runc's.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use hook_test_support::ANNOTATION;

use crate::support::{hook_bin, is_root, skip, stderr, wait_for_profile, Podman, StandIn};

/// A process in a mount namespace of its own, standing in for a container
/// (it never runs its command: killed when dropped, it "exits").
fn stand_in() -> StandIn {
    StandIn::start(&["sleep", "120"]).expect("unshare --mount makes a stand-in container")
}

/// The hook's answer: its exit code (None when it hung and was killed) and stderr.
struct Answer {
    code: Option<i32>,
    stderr: String,
}

/// Runs `hook -s` on a state for `pid` with `annotation`, with the config
/// at `config` (a path that need not exist), killing it after 20 s.
fn hook(work: &Path, pid: u32, annotation: &str, config: &Path) -> Answer {
    let state = serde_json::json!({
        "ociVersion": "1.0.2", "id": "hostile", "status": "created", "pid": pid, "bundle": "/nonexistent",
        "annotations": {ANNOTATION: annotation},
    });
    let mut child = Command::new(hook_bin())
        .arg("-s")
        .env_clear()
        .env("OCI_SECCOMP_BPF_HOOK_LOG_FILE", work.join("hook.log"))
        .env("OCI_SECCOMP_BPF_HOOK_CONFIG", config)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A writer thread: a hook that never reads must not block the test.
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        let _ = stdin.write_all(state.to_string().as_bytes());
    });
    let err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(err).unwrap_or_default());
    let code = wait_or_kill(&mut child, Duration::from_secs(20));
    Answer { code, stderr: reader.join().unwrap() }
}

fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn refused(a: &Answer, expected: &str) {
    assert_eq!(a.code, Some(1), "the hook must refuse (None: it hung); stderr: {}", a.stderr);
    assert!(a.stderr.contains(expected), "stderr should contain {expected:?}: {}", a.stderr);
}

/// Root, a scratch folder and no config, or None after saying why.
fn setup() -> Option<(TempDir, PathBuf)> {
    if !is_root() {
        return None;
    }
    let work = tempfile::tempdir().unwrap();
    let no_config = work.path().join("no-config.conf");
    Some((work, no_config))
}

#[test]
fn failure_1_output_fifo_or_device_is_refused() {
    let Some((work, conf)) = setup() else { skip!("the hook needs root") };
    let c = stand_in();
    refused(&hook(work.path(), c.pid(), "of:/dev/null", &conf), "is a character device, not a regular file");
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device(), "/dev/null is intact");
    let fifo = work.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    refused(&hook(work.path(), c.pid(), &format!("of:{}", fifo.display()), &conf), "is a FIFO");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn failure_2_symlinked_output_directory_is_refused() {
    let Some((work, conf)) = setup() else { skip!("the hook needs root") };
    let c = stand_in();
    let target = work.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let link = work.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let a = hook(work.path(), c.pid(), &format!("of:{}/out.json", link.display()), &conf);
    refused(&a, &format!("{link:?} is a symbolic link"));
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0, "nothing written through the link");
}

#[test]
fn failure_3_immutable_output_is_refused_at_prestart() {
    let Some((work, conf)) = setup() else { skip!("the hook needs root") };
    let out = work.path().join("out.json");
    std::fs::write(&out, "previous").unwrap();
    if !Command::new("chattr").arg("+i").arg(&out).status().is_ok_and(|s| s.success()) {
        skip!("chattr +i does not work on {:?} here", work.path());
    }
    let c = stand_in();
    let a = hook(work.path(), c.pid(), &format!("of:{}", out.display()), &conf);
    let _ = Command::new("chattr").arg("-i").arg(&out).status();
    refused(&a, "is immutable");
}

#[test]
fn failure_4_input_fifo_does_not_hang_the_start_or_record() {
    let Some((work, conf)) = setup() else { skip!("the hook needs root") };
    let c = stand_in();
    let fifo = work.path().join("base.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let out = work.path().join("out.json");
    let a = hook(work.path(), c.pid(), &format!("if:{};of:{}", fifo.display(), out.display()), &conf);
    release(&fifo);
    refused(&a, "is a FIFO, not a regular file");

    let mut record = Command::new(hook_bin())
        .args(["record", "-i"])
        .arg(&fifo)
        .arg("-o")
        .arg(&out)
        .args(["--", "/bin/true"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_or_kill(&mut record, Duration::from_secs(20));
    release(&fifo);
    assert_eq!(code, Some(1), "record -i FIFO must fail, not hang");
}

/// Opens `fifo` for writing and closes it: a reader blocked on it (a
/// tracer of today's main) sees its end. Non-blocking, so with no reader
/// it fails at once, which is fine.
fn release(fifo: &Path) {
    let _ = std::fs::OpenOptions::new().write(true).custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits()).open(fifo);
}

#[test]
fn failure_5_endless_or_huge_input_is_refused_naming_the_limit() {
    let Some((work, conf)) = setup() else { skip!("the hook needs root") };
    let c = stand_in();
    let out = work.path().join("out.json");
    let a = hook(work.path(), c.pid(), &format!("if:/dev/zero;of:{}", out.display()), &conf);
    refused(&a, "under /dev");
    let big = work.path().join("big.json");
    std::fs::File::create(&big).unwrap().set_len(9 << 20).unwrap();
    let a = hook(work.path(), c.pid(), &format!("if:{};of:{}", big.display(), out.display()), &conf);
    refused(&a, "over the limit of 8388608 bytes");
}

#[test]
fn failure_6_huge_annotation_gets_a_short_refusal() {
    let Some((work, conf)) = setup() else { skip!("the hook needs root") };
    let c = stand_in();
    let value = format!("of:/tmp/{}", "a".repeat(100_000));
    let a = hook(work.path(), c.pid(), &value, &conf);
    refused(&a, "bytes in all");
    assert!(a.stderr.len() < 4096, "stderr is {} bytes: runc blocks past 64 KiB", a.stderr.len());
    let a = hook(work.path(), c.pid(), "of:/tmp/a\u{1b}[2J.json", &conf);
    refused(&a, "control character");
}

/// Failure 6 as users met it: runc waited forever on the hook's stderr.
#[test]
fn failure_6_runc_does_not_hang_on_a_huge_annotation() {
    let Some(p) = Podman::new("runc") else { return };
    let value = format!("of:{}/{}", p.work.path().display(), "a".repeat(100_000));
    // Podman in a thread of its own: when runc hangs, the test fails
    // instead of hanging too (the stuck podman is left behind).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let o = p.trace_with(&value, &[], &["/bin/true"]);
        let _ = tx.send(o);
    });
    let o = rx.recv_timeout(Duration::from_secs(60)).expect("podman returns: runc must not hang on the hook's stderr");
    assert_eq!(o.status.code(), Some(126), "podman refuses: {}", stderr(&o));
    assert!(stderr(&o).contains("bytes in all"), "{}", stderr(&o));
}

#[test]
fn failure_7_host_pids_are_refused() {
    let Some((work, conf)) = setup() else { skip!("the hook needs root") };
    let out = work.path().join("out.json");
    for pid in [std::process::id(), 2, 1] {
        let a = hook(work.path(), pid, &format!("of:{}", out.display()), &conf);
        refused(&a, "the hook expects the pid of a container's init");
    }
    assert!(!out.exists(), "no profile of the host");
}

/// Failure 9: names like `.out.json.probe-PID` could be planted.
#[test]
fn failure_9_planted_temporary_names_do_not_block_tracing() {
    let Some((work, conf)) = setup() else { skip!("the hook needs root") };
    let c = stand_in();
    let dir = work.path().join("out");
    std::fs::create_dir(&dir).unwrap();
    // Plant for the next pids the hook and its tracer may get.
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid").unwrap().trim().parse().unwrap();
    for pid in last..last + 300 {
        for what in ["probe", "tmp"] {
            std::fs::create_dir(dir.join(format!(".out.json.{what}-{pid}"))).unwrap();
        }
    }
    let out = dir.join("out.json");
    let a = hook(work.path(), c.pid(), &format!("of:{}", out.display()), &conf);
    assert_eq!(a.code, Some(0), "the hook traces: {}", a.stderr);
    drop(c);
    let profile = wait_for_profile(&out);
    assert!(profile["syscalls"].is_array(), "{profile}");
}

#[test]
fn policy_confines_paths_sets_the_mode_and_malformed_is_an_error() {
    let Some((work, _)) = setup() else { skip!("the hook needs root") };
    let allowed = work.path().join("profiles");
    std::fs::create_dir(&allowed).unwrap();
    let conf = work.path().join("hook.conf");
    std::fs::write(&conf, format!("output_dirs = [{allowed:?}]\nprofile_mode = 0o600\n")).unwrap();
    let c = stand_in();
    let outside = work.path().join("out.json");
    let a = hook(work.path(), c.pid(), &format!("of:{}", outside.display()), &conf);
    refused(&a, &format!("allows ([{allowed:?}])"));
    let escape = format!("of:{}/../out.json", allowed.display());
    refused(&hook(work.path(), c.pid(), &escape, &conf), "outside the allowed directory");

    let inside = allowed.join("out.json");
    let a = hook(work.path(), c.pid(), &format!("of:{}", inside.display()), &conf);
    assert_eq!(a.code, Some(0), "inside the allowed directory: {}", a.stderr);
    drop(c);
    wait_for_profile(&inside);
    assert_eq!(std::fs::metadata(&inside).unwrap().mode() & 0o777, 0o600, "profile_mode applies");

    std::fs::write(&conf, "output_dirs = \"not a list\"\n").unwrap();
    let c = stand_in();
    refused(
        &hook(work.path(), c.pid(), &format!("of:{}", inside.display()), &conf),
        "failed to parse the hook's config",
    );
}
