//! The BPF recorder: the only module that touches libbpf-rs.
//!
//! One program (bpf/recorder.bpf.c, compiled at build time, CO-RE) serves
//! every tracer on the host. The first tracer loads it, attaches it to the
//! syscall-entry tracepoint and pins the link and the `containers` map in
//! bpffs; later tracers open the pinned map and add their container; the
//! last one to leave removes the pins, which detaches the program. A lock
//! file serialises these steps between tracers, and every record carries its
//! tracer's pid and start time, so a tracer that died without cleaning up is
//! noticed (and its record removed) by the next one.

use std::fs::{self, File, OpenOptions};
use std::mem::{size_of, MaybeUninit};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle};
use nix::fcntl::{Flock, FlockArg};
use thiserror::Error;

use crate::syscalls::{Abi, SyscallSet};

mod kernel_btf;

mod skel {
    #![allow(clippy::all, non_camel_case_types, unused_imports, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/recorder.skel.rs"));
}
use skel::{types::container_record, RecorderSkelBuilder};

// The BPF table has one row per ABI, in `Abi::ALL` order (bpf/recorder.h).
const _: () = assert!(size_of::<[[[u8; 32]; 32]; 3]>() == size_of::<[[[u8; 32]; 32]; Abi::ALL.len()]>());

/// Where the shared program lives, per build of the BPF object.
const BPFFS: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
const LOCK_FILE: &str = "/run/oci-seccomp-bpf-hook.lock";

#[derive(Debug, Error)]
pub enum TracerError {
    #[error("failed to load the BPF recorder: it needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN) and a kernel with BTF (/sys/kernel/btf/vmlinux, 5.10 or newer)")]
    Load { source: libbpf_rs::Error },
    #[error("failed to attach the BPF recorder to raw_tp/sys_enter")]
    Attach { source: libbpf_rs::Error },
    #[error("failed to share the BPF recorder through {path:?}")]
    Share { path: PathBuf, source: anyhow::Error },
    #[error("failed to find the mount namespace of pid {pid}")]
    Namespace { pid: i32, source: std::io::Error },
    #[error("mount namespace {mntns} is already recorded by tracer pid {owner}: one trace annotation per container")]
    AlreadyWatched { mntns: u32, owner: u32 },
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

/// One container being recorded by the shared program.
pub struct Tracer {
    pins: PathBuf,
    map: MapHandle,
    mntns: u32,
}

impl Tracer {
    /// Starts recording every task whose mount namespace is `mntns`,
    /// loading and attaching the shared program if no tracer runs yet.
    /// Joining and registering happen under one lock: a record is never
    /// added to a map that the last tracer out is about to unpin.
    pub fn watch(mntns: u32) -> Result<Self, TracerError> {
        let pins = pin_dir();
        let _lock = lock(&pins)?;
        let map = match MapHandle::from_pinned_path(pins.join("containers")) {
            Ok(map) if pins.join("link").exists() => map,
            _ => load_and_pin(&pins)?,
        };
        remove_orphans(&map);
        let key = mntns.to_ne_bytes();
        if let Some(record) = map.lookup(&key, MapFlags::ANY).ok().flatten().and_then(|b| from_bytes(&b)) {
            return Err(TracerError::AlreadyWatched { mntns, owner: record.owner_pid });
        }
        let (pid, start) = owner_identity();
        let record = container_record { owner_pid: pid, owner_start_time: start, ..Default::default() };
        map.update(&key, as_bytes(&record), MapFlags::NO_EXIST)
            .map_err(|source| TracerError::Watch { mntns, source })?;
        Ok(Tracer { pins, map, mntns })
    }

    /// What the container's tasks did since `watch`.
    pub fn collect(&self) -> Result<SyscallSet, TracerError> {
        let mut set = SyscallSet::default();
        let Some(record) = self.record(self.mntns)? else { return Ok(set) };
        for (abi, row) in Abi::ALL.iter().zip(record.seen.iter()) {
            for (nr, &seen) in row.iter().flatten().enumerate() {
                if seen != 0 {
                    set.insert(*abi, nr as u32);
                }
            }
        }
        set.out_of_range = record.out_of_range;
        Ok(set)
    }

    fn record(&self, mntns: u32) -> Result<Option<container_record>, TracerError> {
        let bytes = self
            .map
            .lookup(&mntns.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| TracerError::Collect { mntns, source })?;
        Ok(bytes.and_then(|b| from_bytes(&b)))
    }
}

/// Removes the records of tracers that died without cleaning up.
fn remove_orphans(map: &MapHandle) {
    for key in map.keys() {
        let Some(record) = map.lookup(&key, MapFlags::ANY).ok().flatten().and_then(|b| from_bytes(&b)) else {
            continue;
        };
        if !is_alive(record.owner_pid, record.owner_start_time) {
            tracing::warn!("removing the record of tracer pid {} that is gone", record.owner_pid);
            let _ = map.delete(&key);
        }
    }
}

impl Drop for Tracer {
    /// Removes our record; the last tracer out unpins (and so detaches)
    /// the program.
    fn drop(&mut self) {
        let Ok(_lock) = lock(&self.pins) else { return };
        let _ = self.map.delete(&self.mntns.to_ne_bytes());
        remove_orphans(&self.map);
        if self.map.keys().next().is_none() {
            for pin in ["link", "containers"] {
                let _ = fs::remove_file(self.pins.join(pin));
            }
            let _ = fs::remove_dir(&self.pins);
        }
    }
}

fn pin_dir() -> PathBuf {
    Path::new(BPFFS).join(format!("oci-seccomp-bpf-hook-{}", env!("RECORDER_BPF_ID")))
}

/// Holds the lock between tracers for as long as the value lives.
fn lock(pins: &Path) -> Result<Flock<File>, TracerError> {
    let share = |source: anyhow::Error| TracerError::Share { path: pins.to_path_buf(), source };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_FILE)
        .map_err(|e| share(anyhow::Error::new(e).context(format!("failed to open {LOCK_FILE}"))))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| share(anyhow::Error::new(e).context(format!("failed to lock {LOCK_FILE}"))))
}

/// Loads the program, attaches it and pins the link and the map.
fn load_and_pin(pins: &Path) -> Result<MapHandle, TracerError> {
    route_libbpf_logs();
    let share = |source: anyhow::Error| TracerError::Share { path: pins.to_path_buf(), source };
    ensure_bpffs().map_err(share)?;
    // Leftovers of a tracer that died half-way through this function.
    let _ = fs::remove_file(pins.join("link"));
    let _ = fs::remove_file(pins.join("containers"));
    fs::create_dir_all(pins).map_err(|e| share(e.into()))?;

    let mut storage = MaybeUninit::uninit();
    let mut builder = RecorderSkelBuilder::default();
    // Relocate against the cached minimal BTF rather than parse the whole
    // kernel BTF at every container start (see kernel_btf.rs); without it,
    // libbpf parses /sys/kernel/btf/vmlinux as usual.
    match kernel_btf::cached() {
        Ok(path) => {
            if let Err(e) = builder.obj_builder.btf_custom_path(&path) {
                tracing::warn!("cannot use the minimal BTF {path:?}: {e}");
            }
        }
        Err(e) => tracing::warn!("no minimal BTF, loading against the full kernel BTF: {e:#}"),
    }
    let open = builder.open(&mut storage).map_err(|source| TracerError::Load { source })?;
    let skel = open.load().map_err(|source| TracerError::Load { source })?;
    let mut link: Link = skel.progs.record_syscall.attach().map_err(|source| TracerError::Attach { source })?;
    // Pin the map first: a link pinned without its map would be found by
    // the next tracer and leave it nothing to record into.
    let mut map = MapHandle::try_from(&skel.maps.containers).map_err(|e| share(e.into()))?;
    map.pin(pins.join("containers")).map_err(|e| share(e.into()))?;
    link.pin(pins.join("link")).map_err(|e| share(e.into()))?;
    Ok(map)
}

fn ensure_bpffs() -> anyhow::Result<()> {
    let is_bpffs = nix::sys::statfs::statfs(BPFFS).map(|s| s.filesystem_type().0 == BPF_FS_MAGIC);
    if !matches!(is_bpffs, Ok(true)) {
        nix::mount::mount(Some("bpf"), BPFFS, Some("bpf"), nix::mount::MsFlags::empty(), None::<&str>)
            .map_err(|e| anyhow::anyhow!("failed to mount bpffs at {BPFFS}: {e}"))?;
    }
    Ok(())
}

/// This process's pid and start time: together they name it uniquely.
fn owner_identity() -> (u32, u64) {
    let pid = std::process::id();
    (pid, start_time(pid).unwrap_or(0))
}

/// State letter and start time of a process (/proc/PID/stat fields 3, 22).
fn stat(pid: u32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after ')'.
    let mut rest = stat[stat.rfind(')')? + 2..].split(' ');
    let state = rest.next()?.chars().next()?;
    Some((state, rest.nth(18)?.parse().ok()?))
}

fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// Whether the tracer that wrote a record still runs: same pid, same start
/// time (not a reused pid), and not a zombie waiting to be reaped.
fn is_alive(pid: u32, start: u64) -> bool {
    pid != 0 && matches!(stat(pid), Some((state, s)) if s == start && state != 'Z' && state != 'X')
}

fn as_bytes(record: &container_record) -> &[u8] {
    // SAFETY: container_record is plain old data generated from the BPF
    // object's BTF (integers only, repr(C)); viewing it as bytes is sound.
    unsafe {
        std::slice::from_raw_parts((record as *const container_record).cast::<u8>(), size_of::<container_record>())
    }
}

fn from_bytes(bytes: &[u8]) -> Option<container_record> {
    if bytes.len() != size_of::<container_record>() {
        return None;
    }
    // SAFETY: `bytes` is exactly one map value of the type the skeleton
    // generated from the same BTF as the program's; it is plain old data,
    // valid for any bit pattern.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) })
}

/// libbpf prints to stderr by default; send its lines to our log instead,
/// so that the tracer (stderr closed) and the journal keep them.
fn route_libbpf_logs() {
    use libbpf_rs::PrintLevel;
    fn print(level: PrintLevel, msg: String) {
        let msg = msg.trim_end();
        match level {
            PrintLevel::Warn => tracing::warn!(target: "libbpf", "{msg}"),
            PrintLevel::Info => tracing::debug!(target: "libbpf", "{msg}"),
            PrintLevel::Debug => tracing::trace!(target: "libbpf", "{msg}"),
        }
    }
    libbpf_rs::set_print(Some((PrintLevel::Debug, print)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_start_time_is_read_and_makes_us_alive() {
        let (pid, start) = owner_identity();
        assert!(start > 0);
        assert!(is_alive(pid, start));
        assert!(!is_alive(pid, start + 1), "a reused pid has another start time");
        assert!(!is_alive(0, 0));
    }

    #[test]
    fn a_zombie_is_not_alive() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = start_time(pid).unwrap();
        // Not reaped yet: a zombie once it exits.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while stat(pid).map(|(s, _)| s) != Some('Z') {
            assert!(std::time::Instant::now() < deadline, "child never became a zombie");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!is_alive(pid, start));
        drop(child);
    }

    #[test]
    fn record_bytes_round_trip() {
        let mut r = container_record { owner_pid: 7, owner_start_time: 9, ..Default::default() };
        r.seen[1][0][20] = 1;
        let back = from_bytes(as_bytes(&r)).unwrap();
        assert_eq!((back.owner_pid, back.owner_start_time, back.seen[1][0][20]), (7, 9, 1));
        assert!(from_bytes(&[0u8; 3]).is_none());
    }
}
