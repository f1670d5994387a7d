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

/// A process waiting in its own mount namespace for a line on stdin, then
/// running `sysprobe ARG`: what a container is to the BPF program.
struct StandIn {
    child: std::process::Child,
    mntns: u64,
}

impl Drop for StandIn {
    /// A stand-in that a failed assertion leaves waiting is killed.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl StandIn {
    fn start(probe_arg: &str) -> StandIn {
        let child = std::process::Command::new("unshare")
            .args(["--mount", "--", "sh", "-c", "read go && exec \"$0\" \"$1\""])
            .arg(crate::support::fixture("sysprobe"))
            .arg(probe_arg)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("unshare (util-linux) runs");
        let ours = mntns_of("self");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut mntns = mntns_of(&child.id().to_string());
        while mntns == ours && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            mntns = mntns_of(&child.id().to_string());
        }
        let stand_in = StandIn { child, mntns };
        assert_ne!(mntns, ours, "unshare --mount never left our mount namespace");
        stand_in
    }

    /// Registers the stand-in with the prestart hook, as podman would.
    fn trace(&self, out: &std::path::Path, log: &std::path::Path) {
        use std::io::Write;
        let state = serde_json::json!({
            "ociVersion": "1.0.2", "id": format!("stand-in-{}", self.child.id()), "status": "created",
            "pid": self.child.id(), "bundle": "/",
            "annotations": {crate::support::ANNOTATION: format!("of:{}", out.display())},
        });
        let mut hook = std::process::Command::new(crate::support::hook_bin())
            .arg("-s")
            .env("OCI_SECCOMP_BPF_HOOK_LOG_FILE", log)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        hook.stdin.take().unwrap().write_all(state.to_string().as_bytes()).unwrap();
        let o = hook.wait_with_output().unwrap();
        assert!(o.status.success(), "hook: {}", stderr(&o));
    }

    fn go(mut self) {
        use std::io::Write;
        self.child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        assert!(self.child.wait().unwrap().success(), "sysprobe in the stand-in failed");
    }
}

fn mntns_of(pid: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/mnt")).map(|m| m.ino()).unwrap_or(0)
}

/// Holds new UTS namespaces open (each takes the lowest free namespace
/// inode) until the next free inode is `target` modulo the recorder's 4096
/// slots (bpf/recorder.h). Returns false if 3 rounds of the table did not
/// get there (something else kept taking inodes).
fn take_inodes_until(target: u64, held: &mut Vec<std::fs::File>) -> bool {
    use std::os::unix::fs::MetadataExt;
    // The test binary runs several tests at once; unshare in a thread of
    // our own changes only that thread's UTS namespace.
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..3 * 4096 {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUTS).expect("unshare(CLONE_NEWUTS) as root");
                let ns = std::fs::File::open("/proc/thread-self/ns/uts").unwrap();
                let inum = ns.metadata().unwrap().ino();
                held.push(ns);
                if (inum + 1) % 4096 == target % 4096 {
                    return true;
                }
            }
            false
        })
        .join()
        .unwrap()
    })
}

/// Two containers whose mount namespace inodes fall in the same slot of the
/// recorder's table: each profile holds its own container's syscalls only.
#[test]
fn namespaces_sharing_a_slot_keep_their_own_profiles() {
    if !crate::support::is_root() {
        crate::support::skip!("needs root (BPF, namespaces)");
    }
    // One open file per namespace held; root may raise its hard limit (a
    // VM's init leaves it at 4096).
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let want = 3 * 4096 + 256;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < want {
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, want.max(soft), want.max(hard)) {
            crate::support::skip!("cannot raise RLIMIT_NOFILE to {want} to hold 3 x 4096 namespaces: {e}");
        }
    }
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("hook.log");

    let a = StandIn::start("unusual");
    let mut held = Vec::new();
    let mut b = None;
    for _ in 0..5 {
        if !take_inodes_until(a.mntns, &mut held) {
            break;
        }
        let candidate = StandIn::start("getpid");
        if candidate.mntns % 4096 == a.mntns % 4096 {
            b = Some(candidate);
            break;
        }
        candidate.go();
    }
    drop(held);
    let Some(b) = b else {
        a.go();
        crate::support::skip!("could not get two mount namespaces 4096 inodes apart (the host kept taking inodes)");
    };
    println!("mount namespaces {} and {} share slot {}", a.mntns, b.mntns, a.mntns % 4096);

    let (out_a, out_b) = (work.path().join("a.json"), work.path().join("b.json"));
    a.trace(&out_a, &log);
    b.trace(&out_b, &log);
    // b's tasks look in a's slot first and must pass over a's record.
    b.go();
    a.go();
    let (pa, pb) = (wait_for_profile(&out_a), wait_for_profile(&out_b));
    let (names_a, names_b) = (crate::support::allowed(&pa), crate::support::allowed(&pb));
    for unusual in ["personality", "sched_get_priority_max", "sysinfo"] {
        assert!(names_a.iter().any(|n| n == unusual), "{unusual} missing from a's profile: {names_a:?}");
        assert!(!names_b.iter().any(|n| n == unusual), "b's profile has a's {unusual}: {names_b:?}");
    }
    assert!(names_b.iter().any(|n| n == "getpid"), "b's own syscalls recorded: {names_b:?}");
}
