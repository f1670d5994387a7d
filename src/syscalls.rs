//! The recorded syscall set: which (ABI, number) pairs a container entered,
//! and their names as runc and podman resolve them (libseccomp's tables).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::profile::Arg;
use libseccomp::{ScmpArch, ScmpSyscall};

/// arch/x86/include/uapi/asm/unistd.h: x32 numbers carry it.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// An ABI a syscall can enter through, as seccomp tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Abi {
    X86_64,
    X86,
    X32,
}

impl Abi {
    /// All ABIs, in the order of the rows of the BPF `syscall_set.seen`
    /// table (`enum recorded_abi` in bpf/recorder.h).
    pub const ALL: [Abi; 3] = [Abi::X86_64, Abi::X86, Abi::X32];

    /// The host's own ABI, always listed in a profile.
    pub const NATIVE: Abi = Abi::X86_64;

    /// The name a containers/common profile uses (`architectures`).
    pub fn scmp_name(self) -> &'static str {
        match self {
            Abi::X86_64 => "SCMP_ARCH_X86_64",
            Abi::X86 => "SCMP_ARCH_X86",
            Abi::X32 => "SCMP_ARCH_X32",
        }
    }

    pub(crate) fn scmp_arch(self) -> ScmpArch {
        match self {
            Abi::X86_64 => ScmpArch::X8664,
            Abi::X86 => ScmpArch::X86,
            Abi::X32 => ScmpArch::X32,
        }
    }

    /// The number libseccomp's x32 table uses carries the x32 bit; the BPF
    /// side strips it to index its table.
    pub(crate) fn libseccomp_number(self, nr: u32) -> i32 {
        match self {
            Abi::X32 => (nr | X32_SYSCALL_BIT) as i32,
            _ => nr as i32,
        }
    }

    /// The recorder's number for libseccomp's `nr` of this ABI; None for
    /// libseccomp's negative pseudo-numbers (a name the ABI lacks).
    pub(crate) fn recorder_number(self, nr: i32) -> Option<u32> {
        let nr = u32::try_from(nr).ok()?;
        Some(match self {
            Abi::X32 => nr & !X32_SYSCALL_BIT,
            _ => nr,
        })
    }
}

impl fmt::Display for Abi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scmp_name())
    }
}

/// Syscall numbers seen per ABI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyscallSet {
    numbers: BTreeMap<Abi, BTreeSet<u32>>,
    /// Entries whose number was outside the recorder's table.
    pub out_of_range: u64,
}

/// The set, named: what goes into a profile, and what could not be named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamedSyscalls {
    /// Every name, whatever its ABI: seccomp profiles list names once and
    /// the runtime resolves each for every listed architecture.
    pub names: BTreeSet<String>,
    /// The ABIs anything was recorded under.
    pub abis: BTreeSet<Abi>,
    /// (ABI, number) pairs libseccomp has no name for.
    pub unnamed: Vec<(Abi, u32)>,
    /// Names allowed only under these conditions, one rule each
    /// (arg_rules.rs); a name in `names` without an entry is allowed alone.
    pub conditions: BTreeMap<String, Vec<Arg>>,
}

impl SyscallSet {
    pub fn insert(&mut self, abi: Abi, nr: u32) {
        self.numbers.entry(abi).or_default().insert(nr);
    }

    pub fn extend(&mut self, other: &SyscallSet) {
        for (&abi, numbers) in &other.numbers {
            self.numbers.entry(abi).or_default().extend(numbers);
        }
    }

    pub fn contains(&self, abi: Abi, nr: u32) -> bool {
        self.numbers.get(&abi).is_some_and(|s| s.contains(&nr))
    }

    pub fn is_empty(&self) -> bool {
        self.numbers.values().all(BTreeSet::is_empty)
    }

    pub fn len(&self) -> usize {
        self.numbers.values().map(BTreeSet::len).sum()
    }

    pub fn numbers(&self, abi: Abi) -> impl Iterator<Item = u32> + '_ {
        self.numbers.get(&abi).into_iter().flatten().copied()
    }

    /// Names every number with libseccomp's table for its ABI.
    pub fn named(&self) -> NamedSyscalls {
        let mut out = NamedSyscalls::default();
        for (&abi, numbers) in &self.numbers {
            if numbers.is_empty() {
                continue;
            }
            out.abis.insert(abi);
            for &nr in numbers {
                match ScmpSyscall::from(abi.libseccomp_number(nr)).get_name_by_arch(abi.scmp_arch()) {
                    Ok(name) => {
                        out.names.insert(name);
                    }
                    Err(_) => out.unnamed.push((abi, nr)),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(Abi::X86_64, 39, "getpid")]
    #[case(Abi::X86, 20, "getpid")] // the old tool named this `writev` (x86_64's 20)
    #[case(Abi::X86, 102, "socketcall")]
    #[case(Abi::X86_64, 1, "write")]
    #[case(Abi::X32, 39, "getpid")]
    #[case(Abi::X32, 512, "rt_sigaction")]
    fn names_come_from_the_abi_table(#[case] abi: Abi, #[case] nr: u32, #[case] name: &str) {
        let mut set = SyscallSet::default();
        set.insert(abi, nr);
        let named = set.named();
        assert_eq!(named.names.iter().collect::<Vec<_>>(), vec![name]);
        assert_eq!(named.abis, BTreeSet::from([abi]));
        assert!(named.unnamed.is_empty());
    }

    #[test]
    fn unknown_numbers_are_reported_not_named() {
        let mut set = SyscallSet::default();
        set.insert(Abi::X86_64, 1000);
        set.insert(Abi::X86_64, 0);
        let named = set.named();
        assert_eq!(named.names, BTreeSet::from(["read".to_string()]));
        assert_eq!(named.unnamed, vec![(Abi::X86_64, 1000)]);
    }

    #[test]
    fn same_name_under_two_abis_is_listed_once() {
        let mut set = SyscallSet::default();
        set.insert(Abi::X86_64, 39);
        set.insert(Abi::X86, 20);
        let named = set.named();
        assert_eq!(named.names.len(), 1);
        assert_eq!(named.abis.len(), 2);
        assert_eq!(set.len(), 2);
    }
}
