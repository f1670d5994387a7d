//! A container's record, as the skeleton emits it from bpf/recorder.h: the
//! type, its sizes, and its bytes in a record map.
//!
//! Nothing here repeats the header: the struct, the ABI rows and the limits
//! are the generated ones, so a field added to `struct container_record`
//! reaches this file without another edit.

use std::mem::size_of;

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};

use super::skel::types::{arg_watch, container_record, recorded_abi, recorded_phase, recorder_limits, syscall_mark};
use crate::arg_rules::{ArgValues, WATCHED};
use crate::handoff::{numbers, Observed, Phase, ROOTFS_CHANGES};
use crate::syscalls::Abi;

pub type Record = container_record;

// SAFETY: the generated type is repr(C) and made of integers and integer
// arrays, with its padding spelled out as `__pad_*` byte arrays: every bit
// pattern is a valid value, which is what `Plain` asks for.
unsafe impl plain::Plain for Record {}

pub const SYSCALL_SLOTS: usize = recorder_limits::SYSCALL_SLOTS.0 as usize;
pub const CONTAINER_SLOTS: u32 = recorder_limits::CONTAINER_SLOTS.0;
pub const CONTAINER_PROBES: u32 = recorder_limits::CONTAINER_PROBES.0;
pub const ARG_WATCHES: usize = recorder_limits::ARG_WATCHES.0 as usize;
pub const ARG_VALUES: usize = recorder_limits::ARG_VALUES.0 as usize;
const SETUP_STAMPS: u32 = recorder_limits::SETUP_STAMPS.0;
// The program and `slots::window` mask with CONTAINER_SLOTS - 1.
const _: () = assert!(CONTAINER_SLOTS.is_power_of_two() && CONTAINER_PROBES.is_power_of_two());
const _: () = assert!(CONTAINER_PROBES <= CONTAINER_SLOTS);

/// The row of the record's per-ABI arrays (`enum recorded_abi`).
fn abi_row(abi: Abi) -> usize {
    let row = match abi {
        Abi::X86_64 => recorded_abi::ABI_X86_64,
        Abi::X86 => recorded_abi::ABI_X86,
        Abi::X32 => recorded_abi::ABI_X32,
    };
    row.0 as usize
}

/// The ABI of a per-ABI row, as the value map's keys name it.
pub fn abi_of_row(row: usize) -> Option<Abi> {
    Abi::ALL.into_iter().find(|&abi| abi_row(abi) == row)
}

/// The row of `seen` that the program fills for syscalls entering through
/// `abi` in `phase` (enum recorded_phase, enum recorded_abi).
fn row(phase: Phase, abi: Abi) -> usize {
    let phase = match phase {
        Phase::Filtered => recorded_phase::PHASE_FILTERED,
        Phase::UnfilteredWorkload => recorded_phase::PHASE_UNFILTERED_WORKLOAD,
        Phase::RuntimeSetup => recorded_phase::PHASE_RUNTIME_SETUP,
        Phase::SessionSetup => recorded_phase::PHASE_SESSION_SETUP,
    };
    phase.0 as usize * recorded_abi::ABI_COUNT.0 as usize + abi_row(abi)
}

/// A fresh record of `mntns`, owned by the tracer with this identity, that
/// keeps the arguments of `arg_rules::WATCHED` and counts the setup's
/// `handoff::ROOTFS_CHANGES`.
pub fn new(mntns: u32, owner_pid: u32, owner_start_time: u64) -> Record {
    let mut record = Record { mntns, owner_pid, owner_start_time, ..Default::default() };
    record.watches = [arg_watch { nr: -1, arg: 0, mask: 0 }; ABI_WATCHES];
    for abi in Abi::ALL {
        for (i, watched) in WATCHED.iter().enumerate() {
            let Some(nr) = watched.number(abi) else { continue };
            record.watches[abi_row(abi) * ARG_WATCHES + i] =
                arg_watch { nr: nr as i32, arg: watched.arg, mask: watched.mask() };
            mark(&mut record, abi, nr, syscall_mark::MARK_ARGS);
        }
        for nr in numbers(abi, ROOTFS_CHANGES) {
            mark(&mut record, abi, nr, syscall_mark::MARK_ROOTFS);
        }
    }
    record
}

fn mark(record: &mut Record, abi: Abi, nr: u32, mark: syscall_mark) {
    if let Some(marks) = record.marks.get_mut(abi_row(abi) * SYSCALL_SLOTS + nr as usize) {
        *marks |= mark.0 as u8;
    }
}

/// Every watch of every ABI.
const ABI_WATCHES: usize = recorded_abi::ABI_COUNT.0 as usize * ARG_WATCHES;

/// Which watches lost a value (the rest of the values are in the shared
/// map, see arg_values.rs).
fn lost_values(record: &Record) -> ArgValues {
    let mut out = ArgValues::new();
    for abi in Abi::ALL {
        for (i, watched) in WATCHED.iter().enumerate() {
            let errno = record.arg_lost[abi_row(abi) * ARG_WATCHES + i];
            if errno != 0 {
                tracing::warn!("the recorder could not keep a value of {} under {abi}: error {errno}", watched.name);
                out.entry((abi, i)).or_default().lost = true;
            }
        }
    }
    out
}

/// Marks as lost every watch with fewer values in the shared map than the
/// program put there (`arg_distinct`): a value removed by someone else is
/// a lost value too, and a rule without it would deny what the container
/// did. The record is read before the map, so values added in between only
/// make the map hold more.
pub fn check_kept(record: &Record, args: &mut ArgValues) {
    for abi in Abi::ALL {
        for (i, watched) in WATCHED.iter().enumerate() {
            let put = record.arg_distinct[abi_row(abi) * ARG_WATCHES + i] as usize;
            let kept = args.get(&(abi, i)).map_or(0, |k| k.values.len());
            if kept < put {
                tracing::warn!(
                    "{} of {put} values of {} under {abi} left the value map early",
                    put - kept,
                    watched.name
                );
                args.entry((abi, i)).or_default().lost = true;
            }
        }
    }
}

/// What the record says the container did, by phase.
pub fn observed(record: &Record) -> Observed {
    let mut observed = Observed { out_of_range: record.out_of_range, args: lost_values(record), ..Default::default() };
    for phase in Phase::ALL {
        let set = observed.phase_mut(phase);
        for abi in Abi::ALL {
            for (nr, &seen) in seen_row(record, phase, abi).iter().enumerate() {
                if seen != 0 {
                    set.insert(abi, nr as u32);
                }
            }
        }
    }
    // The program's stamp for the setup's calls after its last root
    // filesystem change (`record_setup` in bpf/recorder.bpf.c).
    let last = (1 + record.rootfs_changes % SETUP_STAMPS) as u8;
    for abi in Abi::ALL {
        for (nr, &seen) in seen_row(record, Phase::RuntimeSetup, abi).iter().enumerate() {
            if seen == last {
                observed.setup_tail.insert(abi, nr as u32);
            }
        }
    }
    observed
}

fn seen_row(record: &Record, phase: Phase, abi: Abi) -> &[u8] {
    &record.seen[row(phase, abi) * SYSCALL_SLOTS..][..SYSCALL_SLOTS]
}

fn as_bytes(record: &Record) -> &[u8] {
    // SAFETY: Record is plain data whose padding is spelled out as fields,
    // so all of its bytes are initialised.
    unsafe { plain::as_bytes(record) }
}

fn from_bytes(bytes: &[u8]) -> Option<Record> {
    let mut record = Record::default();
    // Copied rather than cast: map values come in a byte buffer with no
    // alignment guarantee. A short or long buffer is no record of ours.
    (bytes.len() == size_of::<Record>()).then_some(())?;
    plain::copy_from_bytes(&mut record, bytes).ok()?;
    Some(record)
}

/// A record map like the program's template, holding `record` (type,
/// sizes and flags must match for the slot table to take it).
pub fn new_map(record: &Record) -> Result<MapHandle, libbpf_rs::Error> {
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: size_of::<libbpf_sys::bpf_map_create_opts>() as libbpf_sys::size_t,
        ..Default::default()
    };
    let create = || MapHandle::create(MapType::Array, Some("record"), 4, size_of::<Record>() as u32, 1, &opts);
    let map = create().or_else(|e| {
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
    })?;
    write(&map, record)?;
    Ok(map)
}

/// Replaces the one record a record map holds.
pub fn write(map: &MapHandle, record: &Record) -> Result<(), libbpf_rs::Error> {
    map.update(&0u32.to_ne_bytes(), as_bytes(record), MapFlags::ANY)
}

/// The one record a record map holds (key 0).
pub fn lookup(map: &MapHandle) -> Result<Option<Record>, libbpf_rs::Error> {
    Ok(map.lookup(&0u32.to_ne_bytes(), MapFlags::ANY)?.and_then(|b| from_bytes(&b)))
}

/// The record, when there is one and it can be read.
pub fn read(map: &MapHandle) -> Option<Record> {
    lookup(map).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_bytes_round_trip() {
        let mut r = new(5, 7, 9);
        r.seen[row(Phase::Filtered, Abi::X86) * SYSCALL_SLOTS + 20] = 1;
        let back = from_bytes(as_bytes(&r)).unwrap();
        assert_eq!((back.mntns, back.owner_pid, back.owner_start_time), (5, 7, 9));
        assert!(observed(&back).filtered.contains(Abi::X86, 20));
        assert!(from_bytes(&[0u8; 3]).is_none());
        assert!(from_bytes(&vec![0u8; size_of::<Record>() + 1]).is_none());
    }

    /// The program looks through the watches only where `marks` says so:
    /// exactly the numbers of the watches, each under its own ABI.
    #[test]
    fn marks_flag_exactly_the_watches() {
        let r = new(1, 2, 3);
        let mut expected = Vec::new();
        for abi in Abi::ALL {
            for w in &r.watches[abi_row(abi) * ARG_WATCHES..][..ARG_WATCHES] {
                if w.nr >= 0 {
                    expected.push(abi_row(abi) * SYSCALL_SLOTS + w.nr as usize);
                }
            }
        }
        expected.sort();
        let args = syscall_mark::MARK_ARGS.0 as u8;
        let flagged: Vec<usize> = (0..r.marks.len()).filter(|&i| r.marks[i] & args != 0).collect();
        assert!(!flagged.is_empty() && flagged == expected, "{flagged:?} != {expected:?}");
        assert_eq!(r.marks.len(), Abi::ALL.len() * SYSCALL_SLOTS);
    }

    /// The root filesystem changes are marked under every ABI that has
    /// them (umount only in i386's table), and nothing else is.
    #[test]
    fn marks_flag_the_root_filesystem_changes() {
        let r = new(1, 2, 3);
        let rootfs = syscall_mark::MARK_ROOTFS.0 as u8;
        let marked = |abi: Abi, name: &str| {
            let nr = numbers(abi, &[name]).next().unwrap();
            r.marks[abi_row(abi) * SYSCALL_SLOTS + nr as usize] & rootfs != 0
        };
        assert!(marked(Abi::X86_64, "pivot_root") && marked(Abi::X86, "umount") && marked(Abi::X32, "mount"));
        assert!(!marked(Abi::X86_64, "close_range") && !marked(Abi::X86, "socketcall"));
        let count = r.marks.iter().filter(|&&m| m & rootfs != 0).count();
        assert_eq!(count, Abi::ALL.iter().map(|&abi| numbers(abi, ROOTFS_CHANGES).count()).sum::<usize>());
    }

    /// The setup's tail is what carries the stamp of its last root
    /// filesystem change, the wrapped stamp included.
    #[test]
    fn the_setup_tail_is_what_came_after_the_last_rootfs_change() {
        for changes in [0, 3, SETUP_STAMPS, 2 * SETUP_STAMPS + 1] {
            let mut r = new(1, 2, 3);
            r.rootfs_changes = changes;
            let stamp = |n: u32| (1 + n % SETUP_STAMPS) as u8;
            let at = row(Phase::RuntimeSetup, Abi::X86_64) * SYSCALL_SLOTS;
            r.seen[at + 436] = stamp(changes); // close_range, after
            r.seen[at + 3] = stamp(changes + SETUP_STAMPS - 1); // close, before
            let observed = observed(&r);
            assert!(observed.setup_tail.contains(Abi::X86_64, 436), "{changes}: {observed:?}");
            assert!(!observed.setup_tail.contains(Abi::X86_64, 3), "{changes}: {observed:?}");
            assert!(observed.runtime_setup.contains(Abi::X86_64, 3));
        }
    }

    /// A watch whose values in the map are fewer than the program counted
    /// is marked lost; one with all of them (or more) is not.
    #[test]
    fn values_missing_from_the_map_are_marked_lost() {
        let mut r = new(1, 2, 3);
        let index = |name| WATCHED.iter().position(|w| w.name == name).unwrap();
        let (socket, prctl) = (index("socket"), index("prctl"));
        r.arg_distinct[abi_row(Abi::X86_64) * ARG_WATCHES + socket] = 2;
        r.arg_distinct[abi_row(Abi::X86_64) * ARG_WATCHES + prctl] = 1;
        let mut args = ArgValues::new();
        args.entry((Abi::X86_64, socket)).or_default().values.insert(1);
        args.entry((Abi::X86_64, prctl)).or_default().values.extend([15, 16]);
        check_kept(&r, &mut args);
        assert!(args[&(Abi::X86_64, socket)].lost, "one of two socket values left");
        assert!(!args[&(Abi::X86_64, prctl)].lost, "prctl kept both: {args:?}");
        assert_eq!(args.len(), 2, "watches without values stay absent: {args:?}");
    }

    /// `Phase::ALL` and `Abi::ALL` list the phases and ABIs in the order of
    /// the rows (their documented promise), each pair has a row of its own,
    /// and the table holds them.
    #[test]
    fn phases_and_abis_follow_the_generated_rows() {
        let rows: Vec<usize> =
            Phase::ALL.iter().flat_map(|&phase| Abi::ALL.iter().map(move |&abi| row(phase, abi))).collect();
        assert_eq!(rows, (0..Phase::ALL.len() * Abi::ALL.len()).collect::<Vec<_>>());
        assert_eq!(Abi::ALL.len(), recorded_abi::ABI_COUNT.0 as usize);
        assert_eq!(Phase::ALL.len(), recorded_phase::PHASE_COUNT.0 as usize);
        assert_eq!(Record::default().seen.len(), Phase::ALL.len() * Abi::ALL.len() * SYSCALL_SLOTS);
    }

    #[test]
    fn every_row_reads_back_under_its_phase_and_abi() {
        let mut r = new(1, 2, 3);
        for (i, phase) in Phase::ALL.into_iter().enumerate() {
            for abi in Abi::ALL {
                r.seen[row(phase, abi) * SYSCALL_SLOTS + SYSCALL_SLOTS - 1 - i] = 1;
            }
        }
        r.out_of_range = 4;
        let mut observed = observed(&r);
        for (i, phase) in Phase::ALL.into_iter().enumerate() {
            let set = observed.phase_mut(phase);
            for abi in Abi::ALL {
                assert!(set.contains(abi, (SYSCALL_SLOTS - 1 - i) as u32), "{phase:?} {abi}");
                assert_eq!(set.numbers(abi).count(), 1, "{phase:?} {abi}");
            }
        }
        assert_eq!(observed.out_of_range, 4);
    }
}
