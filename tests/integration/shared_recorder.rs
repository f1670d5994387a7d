//! One BPF program serves every tracer: it is pinned while any tracer
//! runs, a crashed tracer's record is removed by the next tracer, and the
//! last tracer out detaches the program.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{hook_processes, stderr, stdout, wait_for_profile, Podman, IMAGE};

/// The crash test leaves an orphan record on purpose until the next tracer
/// runs; the detach test must not look in between.
static CRASH_AND_DETACH: Mutex<()> = Mutex::new(());

/// The pinned map's directory, if a tracer runs.
fn pin_dirs() -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/bpf")
        .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("oci-seccomp-bpf-hook-"))
        .collect()
}

/// Owner pids of the records pinned next to the program: one map per
/// traced container, `record-<mount namespace>`, holding one struct
/// container_record (bpf/recorder.h asserts owner_pid's offset: 3088).
fn record_owners() -> Vec<u32> {
    let mut owners = Vec::new();
    for dir in pin_dirs() {
        let records = std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>());
        for pin in records.unwrap_or_default() {
            if !pin.file_name().unwrap().to_string_lossy().starts_with("record-") {
                continue;
            }
            let out =
                std::process::Command::new("bpftool").args(["-j", "map", "dump", "pinned"]).arg(&pin).output().unwrap();
            let Ok(entries) = serde_json::from_slice::<Vec<Value>>(&out.stdout) else { continue };
            for e in entries {
                let bytes: Vec<u8> = e["value"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| u8::from_str_radix(b.as_str().unwrap().trim_start_matches("0x"), 16).unwrap())
                    .collect();
                owners.push(u32::from_ne_bytes(bytes[3088..3092].try_into().unwrap()));
            }
        }
    }
    owners
}

/// Every process of ours that may hold the program: tracers and `record`.
fn program_users() -> Vec<i32> {
    let mut pids = hook_processes("-s");
    pids.extend(hook_processes("record"));
    pids
}

#[test]
fn a_crashed_tracers_record_is_removed_by_the_next_tracer() {
    let Some(p) = Podman::new("runc") else { return };
    let _serial = CRASH_AND_DETACH.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!("seccomp-crash-{}", std::process::id());
    let annotation = format!("io.containers.trace-syscall=of:{}", p.path("never.json").display());
    let o = p.podman(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--annotation",
        &annotation,
        IMAGE,
        "/bin/sleep",
        "1000",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    let crashed = p.tracer_of(&id) as u32;
    assert!(record_owners().contains(&crashed), "the tracer's record is in the pinned map");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(crashed as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    p.podman(&["rm", "-f", "-t", "0", &name]);

    // The next tracer cleans up when it registers its own container.
    let out = p.path("next.json");
    let (_, o) = p.trace(None, &out, &["/bin/true"]);
    assert!(o.status.success());
    assert!(!record_owners().contains(&crashed), "the dead tracer's record is gone");
    assert!(!p.path("never.json").exists());
    wait_for_profile(&out);
}

#[test]
fn the_program_is_detached_when_the_last_tracer_leaves() {
    let Some(p) = Podman::new("runc") else { return };
    let _serial = CRASH_AND_DETACH.lock().unwrap_or_else(|e| e.into_inner());
    // Other tests run tracers at the same time; wait for a quiet moment
    // rather than assert one that may not come in a parallel run.
    let out = p.path("last.json");
    p.trace(None, &out, &["/bin/true"]);
    // A quiet moment: no tracer or `record` run, three looks in a row over
    // a second (one may start and end between a look and the check).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut quiet_looks = 0;
    let mut last_programs = String::new();
    while quiet_looks < 3 {
        if Instant::now() > deadline {
            println!("SKIPPED: {}: other tracers or record runs kept running for 120 s", crate::support::test_name());
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
        if !program_users().is_empty() {
            quiet_looks = 0;
            continue;
        }
        let progs = std::process::Command::new("bpftool").args(["prog", "show"]).output().unwrap();
        last_programs = stdout(&progs);
        let pinned = pin_dirs().iter().any(|d| d.join("link").exists());
        if program_users().is_empty() && (pinned || last_programs.contains("record_syscall")) {
            quiet_looks += 1;
        } else if program_users().is_empty() {
            return; // detached and unpinned, with nobody left to hold it
        } else {
            quiet_looks = 0;
        }
    }
    panic!("program still attached with no tracer running: pins {:?}\n{last_programs}", pin_dirs());
}
