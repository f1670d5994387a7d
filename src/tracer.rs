//! The BPF recorder: the only module that touches libbpf-rs.
//!
//! `Tracer::start` loads bpf/recorder.bpf.c (compiled at build time, CO-RE)
//! and attaches it to the syscall-entry tracepoint; `watch` starts recording
//! the tasks of one mount namespace, `collect` reads what they did. Dropping
//! the tracer detaches and unloads everything.

use std::mem::{size_of, MaybeUninit};
use std::os::unix::fs::MetadataExt;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject};
use thiserror::Error;

use crate::syscalls::{Abi, SyscallSet};

mod skel {
    #![allow(clippy::all, non_camel_case_types, unused_imports, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/recorder.skel.rs"));
}
use skel::{types::syscall_set, RecorderSkel, RecorderSkelBuilder};

// The BPF table has one row per ABI, in `Abi::ALL` order (bpf/recorder.h).
const _: () = assert!(size_of::<[[[u8; 32]; 32]; 3]>() == size_of::<[[[u8; 32]; 32]; Abi::ALL.len()]>());

#[derive(Debug, Error)]
pub enum TracerError {
    #[error("failed to load the BPF recorder: {source}: it needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN) and a kernel with BTF (/sys/kernel/btf/vmlinux, 5.10 or newer)")]
    Load { source: libbpf_rs::Error },
    #[error("failed to attach the BPF recorder to tp_btf/sys_enter: {source}")]
    Attach { source: libbpf_rs::Error },
    #[error("failed to find the mount namespace of pid {pid}: {source}")]
    Namespace { pid: i32, source: std::io::Error },
    #[error("failed to start recording mount namespace {mntns}: {source}")]
    Watch { mntns: u32, source: libbpf_rs::Error },
    #[error("failed to read the recording of mount namespace {mntns}: {source}")]
    Collect { mntns: u32, source: libbpf_rs::Error },
}

/// The identity the BPF program keys containers by (see recorder.bpf.c).
pub fn mount_namespace(pid: i32) -> Result<u32, TracerError> {
    let meta =
        std::fs::metadata(format!("/proc/{pid}/ns/mnt")).map_err(|source| TracerError::Namespace { pid, source })?;
    // Namespace inode numbers are 32-bit in the kernel (ns_common.inum).
    Ok(meta.ino() as u32)
}

pub struct Tracer<'obj> {
    skel: RecorderSkel<'obj>,
    _link: Link,
}

impl<'obj> Tracer<'obj> {
    /// Loads and attaches the recorder. `storage` holds libbpf's object for
    /// as long as the tracer lives.
    pub fn start(storage: &'obj mut MaybeUninit<OpenObject>) -> Result<Self, TracerError> {
        route_libbpf_logs();
        let open = RecorderSkelBuilder::default().open(storage).map_err(|source| TracerError::Load { source })?;
        let skel = open.load().map_err(|source| TracerError::Load { source })?;
        let link = skel.progs.record_syscall.attach().map_err(|source| TracerError::Attach { source })?;
        Ok(Tracer { skel, _link: link })
    }

    /// Starts recording every task whose mount namespace is `mntns`.
    pub fn watch(&self, mntns: u32) -> Result<(), TracerError> {
        let empty = vec![0u8; size_of::<syscall_set>()];
        self.skel
            .maps
            .containers
            .update(&mntns.to_ne_bytes(), &empty, MapFlags::NO_EXIST)
            .map_err(|source| TracerError::Watch { mntns, source })
    }

    /// What the tasks of `mntns` did since `watch`.
    pub fn collect(&self, mntns: u32) -> Result<SyscallSet, TracerError> {
        let bytes = self
            .skel
            .maps
            .containers
            .lookup(&mntns.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| TracerError::Collect { mntns, source })?
            .unwrap_or_default();
        let mut set = SyscallSet::default();
        if bytes.len() != size_of::<syscall_set>() {
            return Ok(set);
        }
        // SAFETY: `bytes` is exactly one map value, whose type the skeleton
        // generated from the same BTF as the BPF program's; syscall_set is
        // plain old data (integers only), valid for any bit pattern.
        let raw: syscall_set = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        for (abi, row) in Abi::ALL.iter().zip(raw.seen.iter()) {
            for (nr, &seen) in row.iter().flatten().enumerate() {
                if seen != 0 {
                    set.insert(*abi, nr as u32);
                }
            }
        }
        set.out_of_range = raw.out_of_range;
        Ok(set)
    }
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
