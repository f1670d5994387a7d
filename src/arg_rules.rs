//! Argument rules: for a few syscalls, the first argument decides what the
//! call can do (which socket family, which namespaces), and a profile that
//! only names the syscall allows all of it. The recorder keeps the values a
//! container used for the syscalls of [`WATCHED`] (bpf/recorder.bpf.c,
//! `keep_args`), and the profile allows each with one `args` rule per value.
//!
//! When a name is allowed without arguments instead, and why:
//! - more than [`MAX_VALUES`] distinct values, or a value the recorder could
//!   not keep (its shared map was full): the log says so, never silently;
//! - the name is allowed by a hand-off or threaded-runtime allowance
//!   (handoff.rs) rather than recorded: no value was seen, so none can be
//!   listed; `clone` then gets its [`Watched::assumed`] value (a new thread,
//!   no namespace).
//!
//! What the kernel cannot filter: seccomp compares argument registers, not
//! memory, so `clone3` (flags in a struct) and i386 `socketcall` (arguments
//! in an array) are allowed by name when recorded. A profile that allows
//! `clone` but not `clone3` makes `clone3` fail with ENOSYS, as Docker's
//! default profile does, so that glibc falls back to `clone` and its rule.

use std::collections::{BTreeMap, BTreeSet};

use libseccomp::ScmpSyscall;

use crate::profile::{Arg, CMP_EQ, CMP_MASKED_EQ};
use crate::syscalls::{Abi, SyscallSet};

/// How a kept value becomes a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// `SCMP_CMP_EQ`: the argument is exactly the value.
    Equal,
    /// `SCMP_CMP_MASKED_EQ`: the argument's bits under the mask are the
    /// value's (the recorder keeps the value masked already).
    MaskedEqual(u64),
}

/// One syscall argument the recorder keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watched {
    pub name: &'static str,
    /// The argument's index (0-5).
    pub arg: u32,
    pub compare: Compare,
    /// The value a call allowed by an allowance rather than recorded stands
    /// for, if there is one everybody makes.
    pub assumed: Option<u64>,
}

impl Watched {
    /// The mask the recorder applies before keeping a value.
    pub fn mask(&self) -> u64 {
        match self.compare {
            Compare::Equal => u64::MAX,
            Compare::MaskedEqual(mask) => mask,
        }
    }

    /// The condition that allows `value`.
    pub fn condition(&self, value: u64) -> Arg {
        match self.compare {
            Compare::Equal => Arg { index: self.arg, value, value_two: 0, op: CMP_EQ.to_string() },
            Compare::MaskedEqual(mask) => {
                Arg { index: self.arg, value: mask, value_two: value, op: CMP_MASKED_EQ.to_string() }
            }
        }
    }

    /// Its number under `abi`, as the recorder numbers it, if the ABI has it.
    ///
    /// libseccomp resolves i386 `socket` to a pseudo number (negative: the
    /// call may go through `socketcall`), while the kernel has had a direct
    /// one since 4.3, which is what a program's call is recorded as; the
    /// direct number is then found by naming the table's numbers.
    pub fn number(&self, abi: Abi) -> Option<u32> {
        let nr = i32::from(ScmpSyscall::from_name_by_arch(self.name, abi.scmp_arch()).ok()?);
        if nr >= 0 {
            return abi.recorder_number(nr);
        }
        (0..crate::tracer::SYSCALL_SLOTS as u32).find(|&nr| {
            let libseccomp = ScmpSyscall::from(abi.libseccomp_number(nr));
            libseccomp.get_name_by_arch(abi.scmp_arch()).is_ok_and(|name| name == self.name)
        })
    }
}

/// The namespace flags of clone and unshare (include/uapi/linux/sched.h):
/// NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET. CLONE_NEWTIME
/// (0x80) is left out: in clone's flags those bits are the exit signal.
pub const CLONE_NAMESPACES: u64 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

/// The watched arguments, in the order of the recorder's watch slots.
pub const WATCHED: &[Watched] = &[
    // The family: AF_ALG, AF_PACKET, AF_VSOCK, AF_NETLINK are where socket
    // exploits start, and a program uses one or two families.
    Watched { name: "socket", arg: 0, compare: Compare::Equal, assumed: None },
    // The persona: READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE weaken the process.
    Watched { name: "personality", arg: 0, compare: Compare::Equal, assumed: None },
    // clone's and unshare's namespaces (i386 clone swaps its last two
    // arguments, but the flags are the first everywhere).
    Watched { name: "clone", arg: 0, compare: Compare::MaskedEqual(CLONE_NAMESPACES), assumed: Some(0) },
    Watched { name: "unshare", arg: 0, compare: Compare::MaskedEqual(CLONE_NAMESPACES), assumed: None },
    // The option: prctl multiplexes some 80 operations.
    Watched { name: "prctl", arg: 0, compare: Compare::Equal, assumed: None },
];

/// Distinct values a name is allowed with before its rule drops its
/// arguments (recorder.h, ARG_VALUES).
pub const MAX_VALUES: usize = crate::tracer::ARG_VALUES;
const _: () = assert!(WATCHED.len() <= crate::tracer::ARG_WATCHES);

/// What the recorder kept for one watch of one ABI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept {
    pub values: BTreeSet<u64>,
    /// A value was not kept (the shared map was full or busy).
    pub lost: bool,
}

/// The kept values of a container: (ABI, index in [`WATCHED`]) -> values.
pub type ArgValues = BTreeMap<(Abi, usize), Kept>;

/// The conditions an allowed name is allowed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// One rule per condition.
    With(Vec<Arg>),
    /// The name alone, for this reason.
    Plain(Plain),
}

/// Why a watched name is allowed without conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Plain {
    /// Not a loss: an allowance of handoff.rs added it, no call was seen.
    #[error("it is allowed under {0} by a runtime allowance, not recorded, so no value is known")]
    Unrecorded(Abi),
    #[error("a value under {0} could not be recorded (the recorder's value map was full or busy)")]
    Lost(Abi),
    #[error("calls under {0} were recorded without their values")]
    NotKept(Abi),
    #[error("more than {MAX_VALUES} distinct values were recorded")]
    TooMany,
}

/// For every watched name the profile allows, how it allows it: `own` is
/// what the container's tasks called (their values are `kept`), `granted`
/// what the allowances add (handoff.rs), whose values no run shows.
pub fn conditions(kept: &ArgValues, own: &SyscallSet, granted: &SyscallSet) -> BTreeMap<String, Allowed> {
    let mut out = BTreeMap::new();
    for (index, watched) in WATCHED.iter().enumerate() {
        let holds = |set: &SyscallSet, abi| watched.number(abi).is_some_and(|nr| set.contains(abi, nr));
        let calls: Vec<Call> = Abi::ALL
            .into_iter()
            .map(|abi| Call { abi, own: holds(own, abi), granted: holds(granted, abi) })
            .filter(|c| c.own || c.granted)
            .collect();
        if !calls.is_empty() {
            out.insert(watched.name.to_string(), allowed_as(watched, &calls, |abi| kept.get(&(abi, index))));
        }
    }
    out
}

/// How a watched name is allowed under one ABI: by the container's own
/// calls, by an allowance, or both.
struct Call {
    abi: Abi,
    own: bool,
    granted: bool,
}

fn allowed_as<'a>(watched: &Watched, calls: &[Call], kept: impl Fn(Abi) -> Option<&'a Kept>) -> Allowed {
    let mut values = BTreeSet::new();
    for call in calls {
        if call.granted {
            match watched.assumed {
                Some(value) => values.insert(value),
                None => return Allowed::Plain(Plain::Unrecorded(call.abi)),
            };
        }
        if call.own {
            // The recorder keeps a value for every call outside the setup:
            // none kept is a value lost.
            match kept(call.abi) {
                Some(k) if k.lost => return Allowed::Plain(Plain::Lost(call.abi)),
                Some(k) if !k.values.is_empty() => values.extend(&k.values),
                _ => return Allowed::Plain(Plain::NotKept(call.abi)),
            }
        }
    }
    if values.len() > MAX_VALUES {
        return Allowed::Plain(Plain::TooMany);
    }
    Allowed::With(values.into_iter().map(|v| watched.condition(v)).collect())
}

#[cfg(test)]
mod tests;
