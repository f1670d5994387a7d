//! The bench's own BPF: the empty-program floor, and a census of the
//! hook's programs on the machine (other people's tests share it).

use std::mem::MaybeUninit;

use anyhow::{Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags};

mod skel {
    #![allow(clippy::all, non_camel_case_types, unused_imports, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/empty.skel.rs"));
}

/// The recorder's kind of hook, raw_tp or tp_btf, found by build.rs.
pub const RECORDER_KIND: &str = env!("BENCH_RECORDER_KIND");

/// Which reference program of bpf/empty.bpf.c to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// Does nothing: the floor.
    Empty,
    /// Reads the mount namespace and misses in a hash map (untraced task).
    Miss,
    /// The same, with the host's namespace in the map: every host task
    /// hits and marks its syscall (traced task).
    Hit,
}

/// The reference programs of one bench run: which kind of hook they sit
/// on, and what attaching the empty one cost each time.
#[derive(Debug)]
pub struct References {
    /// raw_tp or tp_btf (`--floor`; the recorder's kind by default).
    pub kind: String,
    /// How long each attach of the empty program took, in ms: the least a
    /// libbpf tool pays to start tracing sys_enter on this kernel (open,
    /// verify, attach), a bound under the hook's start latency.
    pub empty_attach_ms: Vec<f64>,
}

impl References {
    pub fn new(kind: Option<String>) -> References {
        References { kind: kind.unwrap_or_else(|| RECORDER_KIND.into()), empty_attach_ms: Vec::new() }
    }

    /// Attaches `what` to sys_enter until the returned value is dropped.
    pub fn attach(&mut self, what: Reference) -> Result<AttachedReference> {
        let start = std::time::Instant::now();
        let attached = AttachedReference::attach(what, self.kind == "raw_tp")?;
        if what == Reference::Empty {
            self.empty_attach_ms.push(start.elapsed().as_secs_f64() * 1e3);
        }
        Ok(attached)
    }
}

/// While alive, a reference program is attached to sys_enter. Only the
/// link is kept: it holds the program, and dropping it detaches.
pub struct AttachedReference {
    _link: Link,
}

impl AttachedReference {
    fn attach(what: Reference, raw: bool) -> Result<AttachedReference> {
        let mut storage = MaybeUninit::uninit();
        let mut open =
            skel::EmptySkelBuilder::default().open(&mut storage).context("failed to open bench/bpf/empty.bpf.c")?;
        // Only the attached program is loaded: the others would cost load
        // time (a tp_btf one makes libbpf parse the whole kernel BTF).
        let p = &mut open.progs;
        let empty = what == Reference::Empty;
        p.empty_tp_btf.set_autoload(empty && !raw);
        p.empty_raw_tp.set_autoload(empty && raw);
        p.lookup_tp_btf.set_autoload(!empty && !raw);
        p.lookup_raw_tp.set_autoload(!empty && raw);
        let skel = open.load().context("failed to load bench/bpf/empty.bpf.c")?;
        if what == Reference::Hit {
            let ns = hook_test_support::hook::mount_namespace("self")?;
            // Namespace inode numbers are 32-bit in the kernel.
            let key = (ns as u32).to_ne_bytes();
            let value = vec![0u8; skel.maps.watched.value_size() as usize];
            skel.maps.watched.update(&key, &value, MapFlags::ANY).context("failed to watch our namespace")?;
        }
        let p = &skel.progs;
        let prog = match (empty, raw) {
            (true, true) => &p.empty_raw_tp,
            (true, false) => &p.empty_tp_btf,
            (false, true) => &p.lookup_raw_tp,
            (false, false) => &p.lookup_tp_btf,
        };
        let kind = if raw { "raw_tp" } else { "tp_btf" };
        let link = prog.attach().with_context(|| format!("failed to attach the {what:?} {kind} program"))?;
        Ok(AttachedReference { _link: link })
    }
}

/// What the hook has running on the machine, ours and anyone else's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Census {
    /// Loaded recorder programs (one per build of the BPF object in use).
    pub recorders: usize,
    /// Containers registered with the recorders (their pinned records).
    pub traced: usize,
}

impl Census {
    pub fn take() -> Census {
        let recorders = libbpf_rs::query::ProgInfoIter::default().filter(|p| p.name == "record_syscall").count();
        Census { recorders, traced: hook_test_support::pins::records().len() }
    }

    /// What the machine looks like when only the bench's `k` traced
    /// containers run.
    pub fn expected(k: usize) -> Census {
        Census { recorders: usize::from(k > 0), traced: k }
    }
}

/// Waits up to `secs` for the census to reach `want` (tracers leave a
/// moment after their container). Returns the last census seen.
pub fn settle(want: Census, secs: u64) -> Census {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let now = Census::take();
        if now == want || std::time::Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
