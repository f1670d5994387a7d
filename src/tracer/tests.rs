//! The recorder on this kernel (root only; elsewhere the tests say SKIPPED).

use std::io::Write;
use std::process::{Child, Command, Stdio};

use super::*;

/// A shell in a mount namespace of its own, waiting for a line on stdin.
fn waiting_shell() -> Option<(Child, u32)> {
    let own = mount_namespace(std::process::id() as i32).ok()?;
    let mut child =
        Command::new("unshare").args(["-m", "--", "sh", "-c", "read x; exit 0"]).stdin(Stdio::piped()).spawn().ok()?;
    for _ in 0..500 {
        match mount_namespace(child.id() as i32) {
            Ok(ns) if ns != own => return Some((child, ns)),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let _ = child.kill();
    None
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
    if !nix::unistd::Uid::effective().is_root() {
        println!("SKIPPED: a_namespace_reusing_the_inode_is_not_recorded: loading BPF needs root");
        return;
    }
    let (child, mntns) = waiting_shell().expect("unshare -m runs a shell");
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
    if !nix::unistd::Uid::effective().is_root() {
        println!("SKIPPED: an_owner_dying_during_the_wait_lets_the_next_tracer_start: loading BPF needs root");
        return;
    }
    let (child, mntns) = waiting_shell().expect("unshare -m runs a shell");
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
