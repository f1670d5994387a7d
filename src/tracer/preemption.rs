//! Kernels that run programs on the syscall tracepoints preemptibly: how
//! the tracer tells, and how many syscall entries the kernel let pass
//! without running the recorder.
//!
//! The kernel runs a program at most once at a time on a CPU (per program,
//! `prog->active`). Up to 6.18 it keeps preemption off around a program on
//! sys_enter, so that only matters for nesting, which a syscall entry never
//! does. 7.x runs it preemptibly: a task preempted inside the program keeps
//! it busy on that CPU, and the syscalls every other task makes there until
//! it runs again skip the program; the kernel only counts them (the
//! program's `recursion_misses`). Measured under TCG, one vCPU, four busy
//! loops for 40 s: 368 skipped runs on 7.3, none on 6.12 and 6.18. The
//! change that made these programs preemptible added the kernel function
//! [`MARK`], so its presence in the kernel's BTF is the test; the minimal
//! BTF (kernel_btf.rs) keeps it, so the test costs nothing per container.
//!
//! On such kernels the recorder loads its program twice
//! (`record_syscall_again`, bpf/recorder.bpf.c), and each tracer reports
//! the second one's misses over its recording: a syscall can only have
//! been lost in one of those. Measured the same way with both loaded: the
//! first skipped 96 to 346 runs, the second 21 to 175; a traced task making
//! 60,000 syscalls among the busy loops lost none, with one copy or two
//! (4 runs): most skipped runs are other tasks' syscalls.

use std::path::Path;

use libbpf_rs::btf::types::Func;
use libbpf_rs::btf::Btf;
use libbpf_rs::query::ProgInfoIter;
use libbpf_rs::Link;

/// A kernel function that exists from the change that made programs on
/// the syscall tracepoints preemptible (kernel/trace/bpf_trace.c).
pub const MARK: &str = "trace_call_bpf_faultable";

/// Whether the kernel described by `btf` runs programs on the syscall
/// tracepoints preemptibly.
pub fn preemptible(btf: &Btf) -> bool {
    btf.type_by_name::<Func<'_>>(MARK).is_some()
}

/// Whether the running kernel does: read from the minimal BTF at `cached`
/// when there is one, else from the kernel's own BTF.
pub fn running_kernel_preemptible(cached: Option<&Path>) -> bool {
    let btf = match cached {
        Some(path) => Btf::from_path(path),
        None => Btf::from_vmlinux(),
    };
    match btf {
        Ok(btf) => preemptible(&btf),
        Err(e) => {
            tracing::warn!(
                "cannot tell whether this kernel runs syscall tracepoint programs preemptibly ({e}); assuming it does"
            );
            true
        }
    }
}

/// The runs the kernel skipped so far of the program that sees a syscall
/// last (the second where there is one), in the pin directory `pins`; None
/// when its info cannot be read. Before 5.12 the kernel has no such
/// counter and the info reads 0.
pub fn skipped_runs(pins: &Path) -> Option<u64> {
    let again = pins.join(super::pins::LINK_AGAIN);
    let link = Link::open(if again.exists() { again } else { pins.join(super::pins::LINK) }).ok()?;
    let prog_id = link.info().ok()?.prog_id;
    ProgInfoIter::default().find(|p| p.id == prog_id).map(|p| p.recursion_misses)
}
