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

use std::fs::{self, File, OpenOptions};
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, MapType};
use nix::fcntl::{Flock, FlockArg};
use thiserror::Error;

use crate::handoff::{Observed, Phase};
use crate::syscalls::Abi;

mod kernel_btf;

mod skel {
    #![allow(clippy::all, non_camel_case_types, unused_imports, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/recorder.skel.rs"));
}
use skel::RecorderSkelBuilder;

/// struct container_record of bpf/recorder.h. The skeleton cannot generate
/// it (the program names it only through the record map's size), so it is
/// written out here and a test compares it with the layout the header
/// asserts.
#[repr(C)]
#[derive(Clone, Copy)]
struct ContainerRecord {
    mntns: u32,
    /// One row per ABI, in `Abi::ALL` order.
    seen: [[[u8; SYSCALL_SLOTS]; Abi::ALL.len()]; Phase::ALL.len()],
    /// The C compiler's padding, spelled out so that every byte of a
    /// record is initialised and `as_bytes` reads no padding.
    _pad0: u32,
    out_of_range: u64,
    owner_pid: u32,
    _pad1: u32,
    owner_start_time: u64,
}

impl ContainerRecord {
    fn new(mntns: u32, owner_pid: u32, owner_start_time: u64) -> Self {
        ContainerRecord {
            mntns,
            seen: [[[0; SYSCALL_SLOTS]; Abi::ALL.len()]; Phase::ALL.len()],
            _pad0: 0,
            out_of_range: 0,
            owner_pid,
            _pad1: 0,
            owner_start_time,
        }
    }
}

/// Where the shared program lives, per build of the BPF object.
const BPFFS: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
const LOCK_FILE: &str = "/run/oci-seccomp-bpf-hook.lock";
/// Each traced container's record map is pinned in the program's directory
/// as `record-<mount namespace inode>`.
const RECORD_PIN_PREFIX: &str = "record-";
// bpf/recorder.h; #defines do not reach the skeleton (tests check them).
const SYSCALL_SLOTS: usize = 1024;
const CONTAINER_SLOTS: u32 = 4096;
const CONTAINER_PROBES: u32 = 4;

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
        let pins = pin_dir();
        let _lock = lock(&pins)?;
        let slots = match MapHandle::from_pinned_path(pins.join("containers")) {
            Ok(map) if pins.join("link").exists() => map,
            _ => load_and_pin(&pins)?,
        };
        remove_orphans(&pins, &slots);
        let pin = record_pin(&pins, mntns);
        if let Some(record) = MapHandle::from_pinned_path(&pin).ok().and_then(|m| read_record(&m)) {
            return Err(TracerError::AlreadyWatched { mntns, owner: record.owner_pid });
        }
        let watch = |source| TracerError::Watch { mntns, source };
        let slot = window(mntns)
            .find(|&slot| slots.lookup(&slot.to_ne_bytes(), MapFlags::ANY).ok().flatten().is_none())
            .ok_or(TracerError::NoSlot { mntns })?;
        let (owner_pid, owner_start_time) = owner_identity();
        let record = ContainerRecord::new(mntns, owner_pid, owner_start_time);
        let mut map = new_record_map().map_err(watch)?;
        map.update(&0u32.to_ne_bytes(), as_bytes(&record), MapFlags::ANY).map_err(watch)?;
        map.pin(&pin).map_err(watch)?;
        if let Err(source) = publish(&slots, slot, &map) {
            let _ = fs::remove_file(&pin);
            return Err(watch(source));
        }
        Ok(Tracer { pins, slots, record: map, mntns })
    }

    /// What the container's tasks did since `watch`.
    pub fn collect(&self) -> Result<Observed, TracerError> {
        let mut observed = Observed::default();
        let record =
            lookup_record(&self.record).map_err(|source| TracerError::Collect { mntns: self.mntns, source })?;
        let Some(record) = record else { return Ok(observed) };
        for (phase, rows) in Phase::ALL.iter().zip(record.seen.iter()) {
            let set = observed.phase_mut(*phase);
            for (abi, row) in Abi::ALL.iter().zip(rows.iter()) {
                for (nr, &seen) in row.iter().enumerate() {
                    if seen != 0 {
                        set.insert(*abi, nr as u32);
                    }
                }
            }
        }
        observed.out_of_range = record.out_of_range;
        Ok(observed)
    }
}

/// Puts `record` in `slot` of the table and returns as soon as the program
/// sees it there.
///
/// An update of a map of maps stores the new pointer at once, then waits for
/// an RCU grace period (`synchronize_rcu`, so that no program still runs
/// with the old value) before the call returns: 10-20 ms on these machines,
/// in every container start. The update runs on a thread of its own, and
/// this returns when a lookup shows the slot holding our map (or when the
/// update fails); the thread finishes the wait on its own.
fn publish(slots: &MapHandle, slot: u32, record: &MapHandle) -> Result<(), libbpf_rs::Error> {
    let id = record.info()?.info.id;
    // Both maps outlive the update: this returns early only once the update
    // has published the map (the kernel holds its own references by then),
    // and otherwise when the thread has finished.
    let (slots_fd, record_fd) = (slots.as_fd().as_raw_fd(), record.as_fd().as_raw_fd());
    let result = |rc: i32| if rc == 0 { Ok(()) } else { Err(std::io::Error::from_raw_os_error(-rc).into()) };
    let (done_tx, done) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("publish".into())
        .spawn(move || done_tx.send(update_slot(slots_fd, slot, record_fd)));
    if spawned.is_err() {
        // No threads in a process that has unshared its PID namespace
        // (`record`): wait for the update here.
        return result(update_slot(slots_fd, slot, record_fd));
    }
    loop {
        if let Ok(rc) = done.try_recv() {
            return result(rc);
        }
        // A failed lookup is not the update's failure: wait for the thread.
        if slot_holds(slots, slot, id) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// bpf_map_update_elem(slots, slot, record): 0 or -errno.
fn update_slot(slots_fd: RawFd, slot: u32, record_fd: RawFd) -> i32 {
    // SAFETY: key and value point to 4-byte values, the sizes of the slot
    // table's key and value; the fds are checked by the kernel.
    unsafe {
        libbpf_sys::bpf_map_update_elem(
            slots_fd,
            (&slot as *const u32).cast(),
            (&record_fd as *const RawFd).cast(),
            libbpf_sys::BPF_ANY.into(),
        )
    }
}

/// The slots where the program looks for `mntns` (bpf/recorder.h).
fn window(mntns: u32) -> impl Iterator<Item = u32> {
    (0..CONTAINER_PROBES).map(move |i| mntns.wrapping_add(i) & (CONTAINER_SLOTS - 1))
}

fn record_pin(pins: &Path, mntns: u32) -> PathBuf {
    pins.join(format!("{RECORD_PIN_PREFIX}{mntns}"))
}

/// The mount namespaces with a pinned record.
fn pinned_records(pins: &Path) -> Vec<u32> {
    let Ok(dir) = fs::read_dir(pins) else { return Vec::new() };
    dir.flatten().filter_map(|e| e.file_name().to_str()?.strip_prefix(RECORD_PIN_PREFIX)?.parse().ok()).collect()
}

/// A record map like the program's template (type, sizes and flags must
/// match for the slot table to take it).
fn new_record_map() -> Result<MapHandle, libbpf_rs::Error> {
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: size_of::<libbpf_sys::bpf_map_create_opts>() as libbpf_sys::size_t,
        ..Default::default()
    };
    let create = || MapHandle::create(MapType::Array, Some("record"), 4, size_of::<ContainerRecord>() as u32, 1, &opts);
    create().or_else(|e| {
        // Before 5.11 map memory counts against RLIMIT_MEMLOCK, which libbpf
        // raises when it loads an object, but a tracer joining a loaded
        // program creates its map directly.
        if e.kind() != libbpf_rs::ErrorKind::PermissionDenied {
            return Err(e);
        }
        let infinity = nix::sys::resource::RLIM_INFINITY;
        nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK, infinity, infinity)
            .map_err(|_| e)?;
        create()
    })
}

/// The one record a record map holds (key 0).
fn lookup_record(map: &MapHandle) -> Result<Option<ContainerRecord>, libbpf_rs::Error> {
    Ok(map.lookup(&0u32.to_ne_bytes(), MapFlags::ANY)?.and_then(|b| from_bytes(&b)))
}

fn read_record(map: &MapHandle) -> Option<ContainerRecord> {
    lookup_record(map).ok().flatten()
}

/// Whether `slot` of the table holds the map with this id (a lookup in a
/// map of maps from user space returns the inner map's id).
fn slot_holds(slots: &MapHandle, slot: u32, id: u32) -> bool {
    slots.lookup(&slot.to_ne_bytes(), MapFlags::ANY).ok().flatten().as_deref() == Some(&id.to_ne_bytes()[..])
}

/// Takes the record of `mntns` out of the program's sight, then unpins it:
/// clears the slot of its window that holds `record`.
fn unregister(pins: &Path, slots: &MapHandle, mntns: u32, record: &MapHandle) {
    if let Ok(id) = record.info().map(|i| i.info.id) {
        for slot in window(mntns).filter(|&slot| slot_holds(slots, slot, id)) {
            let _ = slots.delete(&slot.to_ne_bytes());
        }
    }
    let _ = fs::remove_file(record_pin(pins, mntns));
}

/// Removes the records of tracers that died without cleaning up.
fn remove_orphans(pins: &Path, slots: &MapHandle) {
    for mntns in pinned_records(pins) {
        let Ok(map) = MapHandle::from_pinned_path(record_pin(pins, mntns)) else { continue };
        // An unreadable record is removed as well: no tracer can use it.
        match read_record(&map) {
            Some(r) if is_alive(r.owner_pid, r.owner_start_time) => continue,
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
        // an RCU grace period (see `publish`), which other tracers' starts
        // should not wait for, and no other tracer touches a living
        // tracer's record.
        unregister(&self.pins, &self.slots, self.mntns, &self.record);
        let Ok(_lock) = lock(&self.pins) else { return };
        remove_orphans(&self.pins, &self.slots);
        if pinned_records(&self.pins).is_empty() {
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
    // Record pins of a previous program are of no use to this one.
    for mntns in pinned_records(pins) {
        let _ = fs::remove_file(record_pin(pins, mntns));
    }
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

fn as_bytes(record: &ContainerRecord) -> &[u8] {
    // SAFETY: ContainerRecord is plain old data (integers only, repr(C),
    // padding spelled out as fields, so every byte is initialised).
    unsafe { std::slice::from_raw_parts((record as *const ContainerRecord).cast::<u8>(), size_of::<ContainerRecord>()) }
}

fn from_bytes(bytes: &[u8]) -> Option<ContainerRecord> {
    if bytes.len() != size_of::<ContainerRecord>() {
        return None;
    }
    // SAFETY: `bytes` is exactly one map value, the size of ContainerRecord
    // (whose layout a test checks against bpf/recorder.h); it is plain old
    // data, valid for any bit pattern.
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
        let mut r = ContainerRecord::new(5, 7, 9);
        r.seen[0][1][20] = 1;
        let back = from_bytes(as_bytes(&r)).unwrap();
        assert_eq!((back.mntns, back.owner_pid, back.owner_start_time, back.seen[0][1][20]), (5, 7, 9, 1));
        assert!(from_bytes(&[0u8; 3]).is_none());
    }

    /// The Rust copy of struct container_record has the layout that
    /// bpf/recorder.h asserts (and clang checks when it compiles the program).
    #[test]
    fn record_layout_matches_recorder_h() {
        use std::mem::offset_of;
        let header = include_str!("../bpf/recorder.h");
        let rust = [
            ("sizeof(struct container_record)".to_string(), size_of::<ContainerRecord>()),
            ("RECORD_OFFSET(mntns)".into(), offset_of!(ContainerRecord, mntns)),
            ("RECORD_OFFSET(seen)".into(), offset_of!(ContainerRecord, seen)),
            ("RECORD_OFFSET(out_of_range)".into(), offset_of!(ContainerRecord, out_of_range)),
            ("RECORD_OFFSET(owner_pid)".into(), offset_of!(ContainerRecord, owner_pid)),
            ("RECORD_OFFSET(owner_start_time)".into(), offset_of!(ContainerRecord, owner_start_time)),
        ];
        for (expr, value) in rust {
            let line = format!("{expr} == {value},");
            assert!(header.contains(&line), "bpf/recorder.h does not assert `{line}`");
        }
        assert_eq!(header.matches("_Static_assert(").count(), 6, "every asserted member is checked here");
    }

    /// The constants copied from bpf/recorder.h.
    #[test]
    fn constants_match_recorder_h() {
        let header = include_str!("../bpf/recorder.h");
        for (name, value) in [
            ("SYSCALL_SLOTS", SYSCALL_SLOTS as u32),
            ("CONTAINER_SLOTS", CONTAINER_SLOTS),
            ("CONTAINER_PROBES", CONTAINER_PROBES),
        ] {
            assert!(header.contains(&format!("#define {name} {value}\n")), "{name} {value}");
        }
        assert!(CONTAINER_SLOTS.is_power_of_two() && CONTAINER_PROBES.is_power_of_two());
    }

    #[test]
    fn windows_wrap_around_the_table() {
        assert_eq!(window(4096 + 5).collect::<Vec<_>>(), [5, 6, 7, 8]);
        assert_eq!(window(4026531841).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(window(4095).collect::<Vec<_>>(), [4095, 0, 1, 2]);
        assert_eq!(window(u32::MAX).collect::<Vec<_>>(), [4095, 0, 1, 2]);
    }
}
