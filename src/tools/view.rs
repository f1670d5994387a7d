//! A profile as the kernel's filter sees it, one ABI at a time: which
//! names it lists for that ABI, under which conditions, with which action.
//! A name is resolved per listed architecture with libseccomp's tables, as
//! runc and crun do; a name an architecture's table lacks is not in that
//! architecture's filter.

use std::collections::BTreeSet;
use std::fmt;

use libseccomp::{ScmpArch, ScmpSyscall};

use crate::profile::{Arg, Profile, Rule, ACT_ALLOW, CMP_MASKED_EQ};
use crate::syscalls::Abi;

/// The conditions of a rule, sorted; None when it has none (an empty
/// `args` list is no condition either).
pub type Cond = Option<Vec<Arg>>;

/// What a rule does with a call: its action and, for ERRNO and TRACE, the
/// errno it returns.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Verdict {
    pub action: String,
    pub errno: Option<u64>,
}

/// One (name, conditions, verdict) of a filter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Atom {
    pub name: String,
    pub cond: Cond,
    pub verdict: Verdict,
}

pub fn cond_of(rule: &Rule) -> Cond {
    let mut args = rule.args.clone().filter(|a| !a.is_empty())?;
    args.sort();
    Some(args)
}

pub fn verdict_of(rule: &Rule) -> Verdict {
    Verdict { action: rule.action.clone(), errno: rule.extra.get("errnoRet").and_then(|v| v.as_u64()) }
}

pub fn is_allow(rule: &Rule) -> bool {
    rule.action == ACT_ALLOW
}

/// Every atom of the profile's rules, whatever the ABI.
pub fn atoms(profile: &Profile) -> impl Iterator<Item = Atom> + '_ {
    profile.syscalls.iter().flat_map(|rule| {
        let (cond, verdict) = (cond_of(rule), verdict_of(rule));
        rule.all_names().map(move |name| Atom { name: name.to_string(), cond: cond.clone(), verdict: verdict.clone() })
    })
}

/// The architectures the filter covers, by libseccomp name: those listed
/// (through `architectures` or `archMap`), or the native one when none is.
pub fn architectures(profile: &Profile) -> BTreeSet<String> {
    let native = || Abi::NATIVE.scmp_name().to_string();
    let mapped =
        profile.arch_map.iter().flatten().flat_map(|m| std::iter::once(&m.architecture).chain(&m.sub_architectures));
    let listed: BTreeSet<String> = profile
        .architectures
        .iter()
        .flatten()
        .chain(mapped)
        .map(|a| if a == "SCMP_ARCH_NATIVE" { native() } else { a.clone() })
        .collect();
    if listed.is_empty() {
        BTreeSet::from([native()])
    } else {
        listed
    }
}

/// libseccomp's pseudo-numbers from -101 up to here stand for calls it
/// multiplexes (i386's `socket` through `socketcall`, -101; `semop`
/// through `ipc`, -201): the filter does match them. From -10000 down they
/// stand for names of other architectures (x86_64's `socketcall`, -10060).
const MULTIPLEXED_FLOOR: i32 = -10000;

/// Whether `arch`'s filter can match `name`, by libseccomp's table.
pub fn exists_in(name: &str, arch: &str) -> bool {
    let Ok(arch) = arch.parse::<ScmpArch>() else { return false };
    ScmpSyscall::from_name_by_arch(name, arch).is_ok_and(|s| i32::from(s) > MULTIPLEXED_FLOOR)
}

/// The profile's atoms for one architecture; empty when it does not cover it.
pub fn atoms_in(profile: &Profile, arch: &str) -> BTreeSet<Atom> {
    if !architectures(profile).contains(arch) {
        return BTreeSet::new();
    }
    atoms(profile).filter(|a| exists_in(&a.name, arch)).collect()
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = self.action.strip_prefix("SCMP_ACT_").unwrap_or(&self.action).to_lowercase();
        match self.errno {
            Some(errno) => write!(f, "{action}({errno})"),
            None => f.write_str(&action),
        }
    }
}

/// `arg0 == 1`, `arg0 & 0x7e020000 == 0`.
pub struct ShowArg<'a>(pub &'a Arg);

impl fmt::Display for ShowArg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.0;
        if a.op == CMP_MASKED_EQ {
            return write!(f, "arg{} & {:#x} == {:#x}", a.index, a.value, a.value_two);
        }
        let op = match a.op.as_str() {
            "SCMP_CMP_NE" => "!=",
            "SCMP_CMP_LT" => "<",
            "SCMP_CMP_LE" => "<=",
            "SCMP_CMP_EQ" => "==",
            "SCMP_CMP_GE" => ">=",
            "SCMP_CMP_GT" => ">",
            other => other,
        };
        write!(f, "arg{} {op} {}", a.index, a.value)
    }
}

/// `socket if arg0 == 1 and arg1 == 2`, or just `socket`.
pub struct ShowCall<'a>(pub &'a str, pub &'a Cond);

impl fmt::Display for ShowCall<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)?;
        for (i, arg) in self.1.iter().flatten().enumerate() {
            write!(f, " {} {}", if i == 0 { "if" } else { "and" }, ShowArg(arg))?;
        }
        Ok(())
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verdict, ShowCall(&self.name, &self.cond))
    }
}
