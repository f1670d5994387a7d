//! The recorder on this kernel (root only; elsewhere the tests say SKIPPED).

use std::io::Write;
use std::process::{Child, Command, Stdio};

use libbpf_rs::MapCore;

use super::*;

/// A shell in a mount namespace of its own, waiting for a line on stdin:
/// returned once it blocks in `read(0, ...)`, so that its start-up (unshare's
/// exec of sh, the loader) is over before a test watches the namespace.
fn waiting_shell() -> Option<(Child, u32)> {
    let own = mount_namespace(std::process::id() as i32).ok()?;
    let mut child =
        Command::new("unshare").args(["-m", "--", "sh", "-c", "read x; exit 0"]).stdin(Stdio::piped()).spawn().ok()?;
    let reading_stdin =
        |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/syscall")).is_ok_and(|s| s.starts_with("0 0x0 "));
    for _ in 0..500 {
        match mount_namespace(child.id() as i32) {
            Ok(ns) if ns != own && reading_stdin(child.id()) => return Some((child, ns)),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let _ = child.kill();
    None
}

/// The waiting shell, or None after saying SKIPPED when not root (loading
/// BPF needs root).
fn root_and_waiting_shell(test: &str) -> Option<(Child, u32)> {
    if !nix::unistd::Uid::effective().is_root() {
        println!("SKIPPED: {test}: loading BPF needs root");
        return None;
    }
    Some(waiting_shell().expect("unshare -m runs a shell"))
}

fn release(mut child: Child) {
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(child.wait().unwrap().success());
}

/// The program takes the namespace's never-reused id at the first syscall,
/// and a namespace with the same inode but another id (one that reused the
/// inode of a namespace gone before it) is not recorded.
#[test]
fn a_namespace_reusing_the_inode_is_not_recorded() {
    let Some((child, mntns)) = root_and_waiting_shell("a_namespace_reusing_the_inode_is_not_recorded") else { return };
    let tracer = Tracer::watch(mntns).unwrap();
    release(child);
    let first = tracer.collect().unwrap();
    assert!(!first.own().is_empty(), "the shell is the namespace's own program: {first:?}");
    let taken = record::read(&tracer.record).unwrap().ns_id;
    assert_ne!(taken, 0, "the program took the namespace's id");
    drop(tracer);

    let (child, mntns) = waiting_shell().expect("unshare -m runs a shell");
    let tracer = Tracer::watch(mntns).unwrap();
    let mut record = record::read(&tracer.record).unwrap();
    record.ns_id = u64::MAX; // as if an earlier namespace with this inode had been seen first
    record::write(&tracer.record, &record).unwrap();
    release(child);
    let observed = tracer.collect().unwrap();
    assert!(observed.own().is_empty() && observed.runtime_setup.is_empty(), "{observed:?}");
}

/// A tracer whose namespace inode is still held by a live previous owner
/// waits; when that owner dies during the wait, its record is an orphan and
/// is removed at once, and the new tracer starts (it used to fail after the
/// whole wait, naming a dead pid).
#[test]
fn an_owner_dying_during_the_wait_lets_the_next_tracer_start() {
    let Some((child, mntns)) = root_and_waiting_shell("an_owner_dying_during_the_wait_lets_the_next_tracer_start")
    else {
        return;
    };
    let previous = Tracer::watch(mntns).unwrap();
    let mut owner = Command::new("sleep").arg("100").spawn().unwrap();
    let mut record = record::read(&previous.record).unwrap();
    (record.owner_pid, record.owner_start_time) = (owner.id(), owner::start_time(owner.id()).unwrap());
    record::write(&previous.record, &record).unwrap();
    // Its record now belongs to `sleep`: dropping it here would unpin the next one's.
    std::mem::forget(previous);

    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        owner.kill().unwrap();
        owner
    });
    let next = Tracer::watch(mntns);
    let _ = killer.join().unwrap().wait();
    let next = next.expect("the dead owner's record is removed and the next tracer starts");
    assert_eq!(record::read(&next.record).unwrap().owner_pid, std::process::id());
    drop(next);
    release(child);
}

/// The values of a leaving tracer are gone before its pin: the next tracer
/// of a reused inode starts as soon as the pin goes, and a removal after
/// that would take its container's values away (and its rules would deny
/// what it did).
#[test]
fn a_leaving_tracer_removes_its_values_before_its_pin() {
    let Some((child, mntns)) = root_and_waiting_shell("a_leaving_tracer_removes_its_values_before_its_pin") else {
        return;
    };
    let tracer = Tracer::watch(mntns).unwrap();
    // Enough values that removing them takes milliseconds.
    for value in 0..2000u64 {
        let key = skel::types::arg_key { mntns, value, ..Default::default() };
        // SAFETY: the key is plain data without padding (arg_values.rs).
        let bytes = unsafe { plain::as_bytes(&key) };
        tracer.values.update(bytes, &[1], libbpf_rs::MapFlags::NO_EXIST).unwrap();
    }
    let pin = pins::record(&tracer.pins, mntns);
    let values = MapHandle::try_from(&tracer.values).unwrap();
    let count = |values: &MapHandle| {
        let mut read = crate::arg_rules::ArgValues::new();
        arg_values::read(values, mntns, &mut read);
        read.values().map(|v| v.values.len()).sum::<usize>()
    };
    assert_eq!(count(&values), 2000);
    let leaving = std::thread::spawn(move || drop(tracer));
    while pin.exists() {
        std::hint::spin_loop();
    }
    let left_when_unpinned = count(&values);
    leaving.join().unwrap();
    release(child);
    assert_eq!(left_when_unpinned, 0, "values of mntns {mntns} outlived its pin");
}
