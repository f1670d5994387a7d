//! One BPF program serves every tracer: it is pinned while any tracer
//! runs, a crashed tracer's record is removed by the next tracer, and the
//! last tracer out detaches the program.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hook_test_support::hook::run_hook;

use crate::support::{hook_processes, pins, stdout, wait_for_profile, Podman, StandIn};

/// The crash test leaves an orphan record on purpose until the next tracer
/// runs; the detach test must not look in between.
static CRASH_AND_DETACH: Mutex<()> = Mutex::new(());

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
    let name = p.start_sleeper("crash", p.run_args().traced_into(&p.path("never.json")));
    let id = stdout(&p.podman(&["inspect", "-f", "{{.Id}}", &name])).trim().to_string();
    let crashed = p.tracer_of(&id);
    let mntns = u64::from(crashed.mntns);
    assert!(pins::records().contains(&mntns), "the tracer pinned its record");
    let tracer = nix::unistd::Pid::from_raw(crashed.tracer_pid as i32);
    nix::sys::signal::kill(tracer, nix::sys::signal::Signal::SIGKILL).unwrap();
    p.podman(&["rm", "-f", "-t", "0", &name]);

    // The next tracer cleans up when it registers its own container.
    let out = p.path("next.json");
    let (_, o) = p.trace(None, &out, &["/bin/true"]);
    assert!(o.status.success());
    assert!(!pins::records().contains(&mntns), "the dead tracer's record is gone");
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
        if program_users().is_empty() && (pins::program_pinned() || last_programs.contains("record_syscall")) {
            quiet_looks += 1;
        } else if program_users().is_empty() {
            return; // detached and unpinned, with nobody left to hold it
        } else {
            quiet_looks = 0;
        }
    }
    panic!("program still attached with no tracer running: pins {:?}\n{last_programs}", pins::dirs());
}

/// The program is attached twice exactly on kernels that run it
/// preemptibly (7.x), and each tracer reports how many syscall entries
/// skipped it while its container ran (a number on every kernel: before
/// 5.12 the kernel has no counter and the program's info reads 0).
#[test]
fn the_program_is_doubled_exactly_where_the_kernel_skips_it() {
    let Some(p) = Podman::new("crun") else { return };
    let out = p.path("doubled.json");
    let name = p.start_sleeper("doubled", p.run_args().traced_into(&out));
    let dir = oci_seccomp_bpf_hook::tracer::pins::dir();
    let doubled = dir.join(oci_seccomp_bpf_hook::tracer::pins::LINK_AGAIN).exists();
    p.podman(&["rm", "-f", "-t", "0", &name]);
    assert_eq!(doubled, oci_seccomp_bpf_hook::tracer::preemptible_kernel(), "second link pinned in {dir:?}");
    wait_for_profile(&out);
    let log = p.hook_log();
    let ended = hook_test_support::tracer_ended(&log, &out).unwrap_or_else(|| panic!("no tracer-ended event: {log}"));
    assert!(ended.skipped_runs.is_some(), "the program's info was read: {ended:?}");
}

/// A stand-in that runs `sysprobe ARG` once told to go: what a container
/// is to the BPF program.
fn stand_in(probe_arg: &str) -> StandIn {
    StandIn::start(&[crate::support::fixture("sysprobe").as_os_str(), probe_arg.as_ref()]).unwrap()
}

/// Registers the stand-in with the prestart hook, as podman would.
fn trace(s: &StandIn, out: &std::path::Path, log: &std::path::Path) {
    let id = format!("stand-in-{}", s.pid());
    run_hook(crate::support::hook_bin(), log, &id, s.pid(), out).unwrap();
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

    let a = stand_in("unusual");
    let mut held = Vec::new();
    let mut b = None;
    for _ in 0..5 {
        if !take_inodes_until(a.mntns, &mut held) {
            break;
        }
        let candidate = stand_in("getpid");
        if candidate.mntns % 4096 == a.mntns % 4096 {
            b = Some(candidate);
            break;
        }
        candidate.go().unwrap();
    }
    drop(held);
    let Some(b) = b else {
        a.go().unwrap();
        crate::support::skip!("could not get two mount namespaces 4096 inodes apart (the host kept taking inodes)");
    };
    println!("mount namespaces {} and {} share slot {}", a.mntns, b.mntns, a.mntns % 4096);

    let (out_a, out_b) = (work.path().join("a.json"), work.path().join("b.json"));
    trace(&a, &out_a, &log);
    trace(&b, &out_b, &log);
    // b's tasks look in a's slot first and must pass over a's record.
    b.go().unwrap();
    a.go().unwrap();
    let (pa, pb) = (wait_for_profile(&out_a), wait_for_profile(&out_b));
    let (names_a, names_b) = (crate::support::allowed(&pa), crate::support::allowed(&pb));
    for unusual in crate::support::UNUSUAL {
        assert!(names_a.iter().any(|n| n == unusual), "{unusual} missing from a's profile: {names_a:?}");
        assert!(!names_b.iter().any(|n| n == unusual), "b's profile has a's {unusual}: {names_b:?}");
    }
    assert!(names_b.iter().any(|n| n == "getpid"), "b's own syscalls recorded: {names_b:?}");
}
