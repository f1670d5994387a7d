//! The slot table: where in it a container's record goes, and putting it
//! there or taking it out.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use super::record::{CONTAINER_PROBES, CONTAINER_SLOTS};

/// The slots where the program looks for `mntns` (bpf/recorder.bpf.c,
/// `find_record`).
pub fn window(mntns: u32) -> impl Iterator<Item = u32> {
    (0..CONTAINER_PROBES).map(move |i| mntns.wrapping_add(i) & (CONTAINER_SLOTS - 1))
}

/// The first empty slot of the window of `mntns`.
pub fn free_slot(slots: &MapHandle, mntns: u32) -> Option<u32> {
    window(mntns).find(|&slot| slots.lookup(&slot.to_ne_bytes(), MapFlags::ANY).ok().flatten().is_none())
}

/// Whether `slot` of the table holds the map with this id (a lookup in a
/// map of maps from user space returns the inner map's id).
fn holds(slots: &MapHandle, slot: u32, id: u32) -> bool {
    slots.lookup(&slot.to_ne_bytes(), MapFlags::ANY).ok().flatten().as_deref() == Some(&id.to_ne_bytes()[..])
}

/// bpf_map_update_elem(slots, slot, record): a map of maps takes the inner
/// map's fd as its value.
fn update(slots: &MapHandle, slot: u32, record: &MapHandle) -> Result<(), libbpf_rs::Error> {
    let fd = record.as_fd().as_raw_fd();
    slots.update(&slot.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
}

/// Puts `record` in `slot` of the table and returns as soon as the program
/// sees it there.
///
/// An update of a map of maps stores the new pointer at once, then waits for
/// an RCU grace period (`synchronize_rcu`, so that no program still runs
/// with the old value) before the call returns: 10-20 ms on these machines,
/// in every container start. The update runs on a thread of its own, with
/// handles of its own (the call may outlive ours), and this returns when a
/// lookup shows the slot holding our map (or when the update fails); the
/// thread finishes the wait on its own.
pub fn publish(slots: &MapHandle, slot: u32, record: &MapHandle) -> Result<(), libbpf_rs::Error> {
    let id = record.info()?.info.id;
    let (own_slots, own_record) = (MapHandle::try_from(slots)?, MapHandle::try_from(record)?);
    let (done_tx, done) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name("publish".into())
        .spawn(move || done_tx.send(update(&own_slots, slot, &own_record)));
    if spawned.is_err() {
        // No threads in a process that has unshared its PID namespace
        // (`record`): wait for the update here.
        return update(slots, slot, record);
    }
    loop {
        if let Ok(result) = done.try_recv() {
            return result;
        }
        // A failed lookup is not the update's failure: wait for the thread.
        if holds(slots, slot, id) {
            return Ok(());
        }
        thread::sleep(Duration::from_micros(200));
    }
}

/// Clears the slots of the window of `mntns` that hold `record`.
pub fn clear(slots: &MapHandle, mntns: u32, record: &MapHandle) {
    if let Ok(id) = record.info().map(|i| i.info.id) {
        for slot in window(mntns).filter(|&slot| holds(slots, slot, id)) {
            let _ = slots.delete(&slot.to_ne_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_wrap_around_the_table() {
        assert_eq!(window(4096 + 5).collect::<Vec<_>>(), [5, 6, 7, 8]);
        assert_eq!(window(4026531841).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(window(4095).collect::<Vec<_>>(), [4095, 0, 1, 2]);
        assert_eq!(window(u32::MAX).collect::<Vec<_>>(), [4095, 0, 1, 2]);
    }
}
