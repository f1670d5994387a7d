//! The BPF recorder: the only module that touches libbpf-rs.
//!
//! One program (bpf/recorder.bpf.c, compiled at build time, CO-RE) serves
//! every tracer on the host. The first tracer loads it, attaches it to the
//! syscall-entry tracepoint and pins the link and the `containers` slot
//! table in bpffs; every tracer adds its container's record map to the
//! table and pins it next to them; the last one to leave removes the pins,
//! which detaches the program. A lock file serialises these steps between
//! tracers, and every record carries its tracer's pid and start time, so a
//! tracer that died without cleaning up is noticed (and its record removed)
//! by the next one.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use libbpf_rs::MapHandle;
use thiserror::Error;

use crate::handoff::Observed;

mod home;
mod kernel_btf;
mod lock;
mod owner;
pub mod pins;
mod program;
mod record;
mod slots;

pub use home::HomeError;
pub use lock::LOCK_FILE;
use record::CONTAINER_PROBES;

mod skel {
    #![allow(clippy::all, non_camel_case_types, unused_imports, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/recorder.skel.rs"));
}

#[derive(Debug, Error)]
pub enum TracerError {
    #[error("failed to load the BPF recorder: it needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN) and a kernel with BTF (/sys/kernel/btf/vmlinux, 5.10 or newer)")]
    Load { source: libbpf_rs::Error },
    #[error("failed to attach the BPF recorder to raw_tp/sys_enter")]
    Attach { source: libbpf_rs::Error },
    #[error("failed to prepare the home of the shared BPF recorder")]
    Home(#[from] HomeError),
    #[error("failed to lock {path:?}, which serialises the tracers")]
    Lock { path: PathBuf, source: nix::Error },
    #[error("failed to pin the shared BPF recorder at {path:?}")]
    Pin { path: PathBuf, source: libbpf_rs::Error },
    #[error("failed to find the mount namespace of pid {pid}")]
    Namespace { pid: i32, source: std::io::Error },
    #[error("mount namespace {mntns} is already recorded by tracer pid {owner}: one trace annotation per container")]
    AlreadyWatched { mntns: u32, owner: u32 },
    #[error("cannot record mount namespace {mntns}: its {CONTAINER_PROBES} slots in the recorder's table are taken by other traced containers; try again when some of them have exited")]
    NoSlot { mntns: u32 },
    #[error("failed to start recording mount namespace {mntns}")]
    Watch { mntns: u32, source: libbpf_rs::Error },
    #[error("failed to read the recording of mount namespace {mntns}")]
    Collect { mntns: u32, source: libbpf_rs::Error },
}

/// The identity the BPF program keys containers by (see recorder.bpf.c).
pub fn mount_namespace(pid: i32) -> Result<u32, TracerError> {
    let meta = fs::metadata(format!("/proc/{pid}/ns/mnt")).map_err(|source| TracerError::Namespace { pid, source })?;
    // Namespace inode numbers are 32-bit in the kernel (ns_common.inum).
    Ok(meta.ino() as u32)
}

/// The containers being recorded, as their pins list them: (mount
/// namespace, pid of the tracer that registered it). For tests, the bench
/// and admins, who would otherwise decode record bytes themselves.
pub fn traced() -> Vec<(u32, u32)> {
    let dir = pins::dir();
    let owner =
        |mntns| Some((mntns, record::read(&MapHandle::from_pinned_path(pins::record(&dir, mntns)).ok()?)?.owner_pid));
    pins::records(&dir).into_iter().filter_map(owner).collect()
}

/// One container being recorded by the shared program.
pub struct Tracer {
    pins: PathBuf,
    slots: MapHandle,
    record: MapHandle,
    mntns: u32,
}

impl Tracer {
    /// Starts recording every task whose mount namespace is `mntns`,
    /// loading and attaching the shared program if no tracer runs yet.
    /// Joining and registering happen under one lock: a record is never
    /// added to a table that the last tracer out is about to unpin.
    ///
    /// Registering: create the container's record map, pin it as
    /// `record-<mntns>` (the pins are the list of traced containers that
    /// tracers and admins read), then publish it in a free slot of its
    /// window, where the program finds it.
    pub fn watch(mntns: u32) -> Result<Self, TracerError> {
        let _lock = lock::lock()?;
        let pins = join()?;
        let slots = match MapHandle::from_pinned_path(pins.join(pins::SLOTS)) {
            Ok(map) if pins.join(pins::LINK).exists() => map,
            _ => program::load_and_pin(&pins)?,
        };
        remove_orphans(&pins, &slots);
        let pin = pins::record(&pins, mntns);
        if let Some(record) = MapHandle::from_pinned_path(&pin).ok().and_then(|m| record::read(&m)) {
            return Err(TracerError::AlreadyWatched { mntns, owner: record.owner_pid });
        }
        let watch = |source| TracerError::Watch { mntns, source };
        let slot = slots::free_slot(&slots, mntns).ok_or(TracerError::NoSlot { mntns })?;
        let (owner_pid, owner_start_time) = owner::identity();
        let mut map = record::new_map(&record::new(mntns, owner_pid, owner_start_time)).map_err(watch)?;
        map.pin(&pin).map_err(watch)?;
        if let Err(source) = slots::publish(&slots, slot, &map) {
            let _ = fs::remove_file(&pin);
            return Err(watch(source));
        }
        Ok(Tracer { pins, slots, record: map, mntns })
    }

    /// What the container's tasks did since `watch`.
    pub fn collect(&self) -> Result<Observed, TracerError> {
        let record =
            record::lookup(&self.record).map_err(|source| TracerError::Collect { mntns: self.mntns, source })?;
        Ok(record.as_ref().map(record::observed).unwrap_or_default())
    }
}

/// The pin directory, in a bpffs, made or checked so that only root can
/// change it (see home.rs).
fn join() -> Result<PathBuf, TracerError> {
    home::ensure_bpffs()?;
    let dir = pins::dir();
    home::trusted_dir(&dir, true)?;
    Ok(dir)
}

/// Takes the record of `mntns` out of the program's sight, then unpins it.
fn unregister(pins: &std::path::Path, slots: &MapHandle, mntns: u32, record: &MapHandle) {
    slots::clear(slots, mntns, record);
    let _ = fs::remove_file(pins::record(pins, mntns));
}

/// Removes the records of tracers that died without cleaning up.
fn remove_orphans(pins: &std::path::Path, slots: &MapHandle) {
    for mntns in pins::records(pins) {
        let Ok(map) = MapHandle::from_pinned_path(pins::record(pins, mntns)) else { continue };
        // An unreadable record is removed as well: no tracer can use it.
        match record::read(&map) {
            Some(r) if owner::is_alive(r.owner_pid, r.owner_start_time) => continue,
            Some(r) => tracing::warn!(
                "removing the record of tracer pid {} (start time {}) that is gone",
                r.owner_pid,
                r.owner_start_time
            ),
            None => {}
        }
        unregister(pins, slots, mntns, &map);
    }
}

impl Drop for Tracer {
    /// Removes our record; the last tracer out unpins (and so detaches)
    /// the program.
    fn drop(&mut self) {
        // Our own record first, outside the lock: clearing a slot waits for
        // an RCU grace period (see `slots::publish`), which other tracers'
        // starts should not wait for, and no other tracer touches a living
        // tracer's record.
        unregister(&self.pins, &self.slots, self.mntns, &self.record);
        let Ok(_lock) = lock::lock() else { return };
        remove_orphans(&self.pins, &self.slots);
        if pins::records(&self.pins).is_empty() {
            for pin in [pins::LINK, pins::SLOTS] {
                let _ = fs::remove_file(self.pins.join(pin));
            }
            let _ = fs::remove_dir(&self.pins);
        }
    }
}
