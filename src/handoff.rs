//! From what the recorder observed to what the profile allows.
//!
//! The BPF program files every syscall of a container under a phase
//! (`enum recorded_phase` in bpf/recorder.h, decided in recorder.bpf.c):
//! - filtered: the task's seccomp filter was in force, so a replay's filter
//!   sees this call too: the workload, and the runtime's last steps between
//!   attaching the filter and exec'ing the entrypoint;
//! - unfiltered workload: no filter, a program of the container's own
//!   (a container run with `seccomp=unconfined` or `--privileged`);
//! - runtime setup: no filter, the runtime's own program (mounts, pivot_root,
//!   sethostname, its own seccomp()): what the container's filter never sees;
//! - session setup: the same, once the workload of a container without a
//!   filter has run: a runtime setting up a `podman exec` session.
//!
//! Filtered and unfiltered-workload calls are allowed. Runtime setup is not,
//! with two exceptions that a replay needs and one run cannot show (and one
//! addition to the workload's own calls):
//! - the hand-off: a container recorded without a filter is replayed with
//!   one, and then the runtime makes its last steps under it. Those steps are
//!   the [`HANDOFF`] calls its setup made after its last change of the root
//!   filesystem ([`ROOTFS_CHANGES`]; a filter goes on after those, see
//!   `record_setup` in bpf/recorder.bpf.c), and for a threaded runtime the
//!   [`HANDOFF_THREADED`] ones too (measured below); they are added when
//!   nothing was recorded under a filter. A session's runtime makes more
//!   steps after its filter ([`SESSION_HANDOFF`]): those its session setup
//!   made are added too.
//! - a threaded runtime: runc is a Go program, whose other threads wake,
//!   sleep, yield and preempt each other at moments no run can predict, also
//!   after the filter is attached (`tgkill` appeared in 7 of 8 runs,
//!   `sched_yield` in 3). When the runtime's setup shows threads being woken
//!   (`futex`), [`THREADED_RUNTIME`] is added as a whole, so every run gives
//!   the same profile.
//! - timing: a program that starts threads may or may not wait for them with
//!   futex, by timing alone; [`TIMING_DEPENDENT`] adds such calls whenever
//!   what shows the situation (clone3, clone) was recorded.
//!
//! The lists are names, resolved per ABI by libseccomp; they are derived from
//! measurement (README, "Precise profiles") and a test fails when a runtime
//! needs something outside them.

use libseccomp::ScmpSyscall;

use crate::arg_rules::ArgValues;
use crate::syscalls::{Abi, SyscallSet};

/// Why a syscall was recorded, in the order of `enum recorded_phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Filtered,
    UnfilteredWorkload,
    RuntimeSetup,
    SessionSetup,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Filtered, Phase::UnfilteredWorkload, Phase::RuntimeSetup, Phase::SessionSetup];
}

/// What every OCI runtime measured calls between attaching the container's
/// filter and exec'ing its entrypoint: capabilities, user, signal mask, the
/// sync socket, closing its own descriptors (crun 1.8 to 1.28 make only
/// these; crun 1.21 added close_range).
pub const HANDOFF: &[&str] = &[
    "capset",
    "close",
    "close_range",
    "execve",
    "prctl",
    "pselect6",
    "read",
    "rt_sigaction",
    "rt_sigprocmask",
    "setresgid",
    "setresuid",
    "write",
];

/// What a session's runtime (`podman exec`) calls after attaching the
/// filter besides [`HANDOFF`] and, when threaded, [`HANDOFF_THREADED`]:
/// crun 1.8 to 1.28 read `/proc/self/setgroups` (openat; statx, and fstat
/// in 1.28), set the supplementary groups, give the standard streams that
/// are no terminal to the session's user (ioctl, fchown) and set the umask,
/// which at a start they do before the filter; runc 1.3 makes the detached
/// procfs mount of its handle (fsopen, fsconfig, fsmount, open_tree), reads
/// the kernel's version (uname) and looks the executable up (faccessat).
/// Added only for the calls a session's setup made
/// (`Observed::session_setup`).
pub const SESSION_HANDOFF: &[&str] = &[
    "faccessat",
    "fchown",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fstat",
    "ioctl",
    "open_tree",
    "openat",
    "setgroups",
    "statx",
    "umask",
    "uname",
];

/// The calls by which a runtime changes the container's mount tree: all of
/// them come before its filter, so a hand-off call it made only before its
/// last one is not a hand-off call (crun 1.8 marks its descriptors
/// close-on-exec with `close_range` before `pivot_root`; crun 1.21 does it
/// again after its filter). Not `fsopen`/`fsmount`/`open_tree`: they make
/// a detached mount, which changes no tree (runc 1.3's exec session makes
/// one for its procfs handle, under its filter).
pub const ROOTFS_CHANGES: &[&str] =
    &["chroot", "mount", "mount_setattr", "move_mount", "pivot_root", "umount", "umount2"];

/// What a threaded runtime calls there besides (runc 1.1 and 1.3: its
/// capabilities read, user, the exec fifo, the executable's lookup, and in
/// 1.3 a statx of its procfs handle). A single-threaded runtime makes these
/// in its setup but not after its filter, so they are added only where the
/// setup shows threads (`Observed::threaded_runtime`).
pub const HANDOFF_THREADED: &[&str] = &[
    "capget",
    "chdir",
    "epoll_ctl",
    "faccessat2",
    "fcntl",
    "fstat",
    "fstatfs",
    "futex",
    "getcwd",
    "getdents64",
    "getpid",
    "getppid",
    "newfstatat",
    "openat",
    "openat2",
    "setgid",
    "setgroups",
    "setuid",
    "statx",
];

/// What a Go runtime's threads may call at any moment: wake and wait
/// (futex), sleep (nanosleep), yield (sched_yield), preempt a thread with a
/// signal (getpid, tgkill), and start one more thread (clone, and in it
/// gettid, sigaltstack, rt_sigprocmask, mmap). Under emulation (TCG guests)
/// runc's setup takes long enough for any of these to fall after the filter
/// (rt_sigprocmask did in 1 of 96 recordings on 7.3). Signal returns are
/// always allowed (profile.rs).
pub const THREADED_RUNTIME: &[&str] = &[
    "clone",
    "futex",
    "getpid",
    "gettid",
    "mmap",
    "nanosleep",
    "rt_sigprocmask",
    "sched_yield",
    "sigaltstack",
    "tgkill",
];

/// The call whose presence in the runtime's setup shows it has threads to
/// wake: a single-threaded runtime never needs it.
const THREADS_WOKEN: &str = "futex";

/// Calls a run makes or not by timing alone, keyed by the call that shows
/// the workload is where they happen: a program that starts threads or
/// children (clone3, clone) waits for them with futex only when one is still
/// running when it joins (1 recording in 12 of a two-thread program had
/// none). Allowed whenever the key was recorded, so every run agrees.
pub const TIMING_DEPENDENT: &[(&str, &[&str])] = &[("clone3", &["futex"]), ("clone", &["futex"])];

/// A container's recording, by phase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub filtered: SyscallSet,
    pub unfiltered_workload: SyscallSet,
    pub runtime_setup: SyscallSet,
    /// The part of `runtime_setup` made (last) after the setup's last
    /// [`ROOTFS_CHANGES`] call.
    pub setup_tail: SyscallSet,
    /// What runtimes called to set up sessions in the running container,
    /// once its workload had run without a filter.
    pub session_setup: SyscallSet,
    /// Entries whose number was outside the recorder's table.
    pub out_of_range: u64,
    /// The watched arguments' values outside the runtime's setup
    /// (arg_rules.rs).
    pub args: ArgValues,
}

impl Observed {
    pub fn phase_mut(&mut self, phase: Phase) -> &mut SyscallSet {
        match phase {
            Phase::Filtered => &mut self.filtered,
            Phase::UnfilteredWorkload => &mut self.unfiltered_workload,
            Phase::RuntimeSetup => &mut self.runtime_setup,
            Phase::SessionSetup => &mut self.session_setup,
        }
    }

    /// Whether a filter was ever in force for the container's tasks.
    pub fn had_filter(&self) -> bool {
        !self.filtered.is_empty()
    }

    /// Whether the runtime's setup (a start's or a session's) shows a
    /// threaded runtime.
    pub fn threaded_runtime(&self) -> bool {
        let woken = |set: &SyscallSet| {
            Abi::ALL.iter().any(|&abi| numbers(abi, &[THREADS_WOKEN]).any(|nr| set.contains(abi, nr)))
        };
        woken(&self.runtime_setup) || woken(&self.session_setup)
    }

    /// What the profile allows: see the module's documentation.
    pub fn allowed(&self) -> SyscallSet {
        let mut out = self.own();
        out.extend(&self.granted_beside(&out));
        out.out_of_range = self.out_of_range;
        out
    }

    /// What the container's own tasks made under its filter, or as its
    /// workload without one.
    pub fn own(&self) -> SyscallSet {
        let mut out = self.filtered.clone();
        out.extend(&self.unfiltered_workload);
        out
    }

    /// What the allowances add (the hand-off, a threaded runtime, timing),
    /// whether or not this run made the calls: calls whose argument values
    /// this run may not show (arg_rules.rs).
    pub fn granted(&self) -> SyscallSet {
        self.granted_beside(&self.own())
    }

    fn granted_beside(&self, own: &SyscallSet) -> SyscallSet {
        let mut out = SyscallSet::default();
        if own.is_empty() {
            return out;
        }
        let threaded = self.threaded_runtime();
        let setup_abis: Vec<Abi> = Abi::ALL
            .into_iter()
            .filter(|&a| self.runtime_setup.numbers(a).chain(self.session_setup.numbers(a)).next().is_some())
            .collect();
        if !self.had_filter() {
            for &abi in &setup_abis {
                self.hand_off(abi, threaded, &mut out);
            }
        }
        add_timing_companions(own, &mut out);
        if threaded {
            for &abi in &setup_abis {
                for nr in numbers(abi, THREADED_RUNTIME) {
                    out.insert(abi, nr);
                }
            }
        }
        out
    }

    /// Adds to `out` the calls of `abi` that the setups made and that a
    /// replay's filter will meet: the start's after its last mount-tree
    /// change, and the sessions'.
    fn hand_off(&self, abi: Abi, threaded: bool, out: &mut SyscallSet) {
        let threaded_extra: &[&str] = if threaded { HANDOFF_THREADED } else { &[] };
        let either = |nr: &u32| self.setup_tail.contains(abi, *nr) || self.session_setup.contains(abi, *nr);
        for nr in numbers(abi, HANDOFF).chain(numbers(abi, threaded_extra)).filter(either) {
            out.insert(abi, nr);
        }
        for nr in numbers(abi, SESSION_HANDOFF).filter(|&nr| self.session_setup.contains(abi, nr)) {
            out.insert(abi, nr);
        }
    }
}

/// Adds to `out` the companions of every `TIMING_DEPENDENT` key that `own`
/// or `out` holds, under the key's ABI.
fn add_timing_companions(own: &SyscallSet, out: &mut SyscallSet) {
    for &(key, companions) in TIMING_DEPENDENT {
        let abis: Vec<Abi> = Abi::ALL
            .into_iter()
            .filter(|&abi| numbers(abi, &[key]).any(|nr| own.contains(abi, nr) || out.contains(abi, nr)))
            .collect();
        for abi in abis {
            for nr in numbers(abi, companions) {
                out.insert(abi, nr);
            }
        }
    }
}

/// The numbers of `names` in `abi`'s table (names it lacks are skipped).
pub(crate) fn numbers<'a>(abi: Abi, names: &'a [&'a str]) -> impl Iterator<Item = u32> + 'a {
    names.iter().filter_map(move |name| {
        let nr = i32::from(ScmpSyscall::from_name_by_arch(name, abi.scmp_arch()).ok()?);
        abi.recorder_number(nr)
    })
}

#[cfg(test)]
mod tests;
