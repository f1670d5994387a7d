//! The seccomp profile, in the containers/common format that
//! `podman run --security-opt seccomp=FILE` reads, and the merge of a
//! recording into a baseline profile.
//!
//! Fields we do not interpret (`flags`, `listenerPath`,
//! `includes`, `excludes`, `errnoRet`, `comment`, and anything newer) are kept
//! in `extra` so a baseline passes through verbatim.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::syscalls::{Abi, NamedSyscalls};

pub const ACT_ALLOW: &str = "SCMP_ACT_ALLOW";
pub const ACT_ERRNO: &str = "SCMP_ACT_ERRNO";

/// The actions containers/common accepts.
const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    ACT_ERRNO,
    "SCMP_ACT_TRACE",
    ACT_ALLOW,
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch_map: Option<Vec<ArchMap>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    #[serde(default)]
    pub syscalls: Vec<Rule>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default)]
    pub sub_architectures: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    pub action: String,
    /// Conditions on the syscall's arguments; the rule applies when all hold
    /// (an Option so that a baseline's `"args": []` passes through as is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Arg>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One condition on a syscall argument, as containers/common writes it:
/// `{"index": 0, "value": 16, "valueTwo": 0, "op": "SCMP_CMP_EQ"}`. For
/// `SCMP_CMP_MASKED_EQ`, `value` is the mask and `valueTwo` the expected
/// masked value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

pub const CMP_EQ: &str = "SCMP_CMP_EQ";
pub const CMP_MASKED_EQ: &str = "SCMP_CMP_MASKED_EQ";

/// The comparisons containers/common accepts in `args[].op`.
const OPS: &[&str] =
    &["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", CMP_EQ, "SCMP_CMP_GE", "SCMP_CMP_GT", CMP_MASKED_EQ];

/// Why a profile is not one podman would load.
#[derive(Debug, Error, PartialEq)]
pub enum InvalidProfile {
    #[error("unknown defaultAction {0:?} (expected one of {ACTIONS:?})")]
    DefaultAction(String),
    #[error("both 'architectures' and 'archMap' are set; podman accepts only one of them")]
    ArchitecturesAndArchMap,
    #[error("unknown architecture {0:?} (expected a libseccomp name such as SCMP_ARCH_X86_64)")]
    Architecture(String),
    #[error("syscalls[{index}] has unknown action {action:?} (expected one of {ACTIONS:?})")]
    RuleAction { index: usize, action: String },
    #[error("syscalls[{index}] has both 'name' and 'names'; podman accepts only one of them")]
    NameAndNames { index: usize },
    #[error("syscalls[{index}] names no syscall; such a rule matches nothing")]
    NoNames { index: usize },
    #[error("syscalls[{index}] has an empty syscall name")]
    EmptyName { index: usize },
    #[error("syscalls[{index}].args has unknown op {op:?} (expected one of {OPS:?})")]
    ArgOp { index: usize, op: String },
    #[error("syscalls[{index}].args has index {arg} (a syscall has arguments 0 to 5)")]
    ArgIndex { index: usize, arg: u32 },
}

impl Rule {
    pub fn allow(names: Vec<String>) -> Self {
        Rule { name: None, names: Some(names), action: ACT_ALLOW.to_string(), args: None, extra: Map::new() }
    }

    /// Every syscall name the rule speaks of, whatever its action.
    pub fn all_names(&self) -> impl Iterator<Item = &str> {
        self.name.iter().chain(self.names.iter().flatten()).map(String::as_str)
    }
}

impl Profile {
    /// A profile that allows nothing: the starting point without a baseline.
    pub fn deny_all() -> Self {
        Profile {
            default_action: ACT_ERRNO.to_string(),
            default_errno_ret: None,
            arch_map: None,
            architectures: None,
            syscalls: Vec::new(),
            extra: Map::new(),
        }
    }

    /// Checks what podman would refuse, and rules that cannot mean anything.
    pub fn validate(&self) -> Result<(), InvalidProfile> {
        if !ACTIONS.contains(&self.default_action.as_str()) {
            return Err(InvalidProfile::DefaultAction(self.default_action.clone()));
        }
        if self.architectures.as_ref().is_some_and(|a| !a.is_empty())
            && self.arch_map.as_ref().is_some_and(|m| !m.is_empty())
        {
            return Err(InvalidProfile::ArchitecturesAndArchMap);
        }
        let map_arches =
            self.arch_map.iter().flatten().flat_map(|m| std::iter::once(&m.architecture).chain(&m.sub_architectures));
        for arch in self.architectures.iter().flatten().chain(map_arches) {
            if arch.parse::<libseccomp::ScmpArch>().is_err() {
                return Err(InvalidProfile::Architecture(arch.clone()));
            }
        }
        for (index, rule) in self.syscalls.iter().enumerate() {
            if !ACTIONS.contains(&rule.action.as_str()) {
                return Err(InvalidProfile::RuleAction { index, action: rule.action.clone() });
            }
            if rule.name.is_some() && rule.names.is_some() {
                return Err(InvalidProfile::NameAndNames { index });
            }
            if rule.all_names().next().is_none() {
                return Err(InvalidProfile::NoNames { index });
            }
            if rule.all_names().any(str::is_empty) {
                return Err(InvalidProfile::EmptyName { index });
            }
            if let Some(arg) = rule.args.iter().flatten().find(|a| !OPS.contains(&a.op.as_str())) {
                return Err(InvalidProfile::ArgOp { index, op: arg.op.clone() });
            }
            if let Some(arg) = rule.args.iter().flatten().find(|a| a.index > 5) {
                return Err(InvalidProfile::ArgIndex { index, arg: arg.index });
            }
        }
        Ok(())
    }

    /// Every name any rule mentions, whatever its action.
    pub fn named_syscalls(&self) -> BTreeSet<&str> {
        self.syscalls.iter().flat_map(Rule::all_names).collect()
    }

    /// Makes sure the profile's filter covers `abi`, through whichever of
    /// `architectures` or `archMap` it uses (podman refuses both at once).
    fn cover_abi(&mut self, abi: Abi) {
        let name = abi.scmp_name().to_string();
        if let Some(map) = self.arch_map.as_mut().filter(|m| !m.is_empty()) {
            let native = Abi::NATIVE.scmp_name();
            let pos = match map.iter().position(|m| m.architecture == native) {
                Some(pos) => pos,
                None => {
                    map.push(ArchMap {
                        architecture: native.to_string(),
                        sub_architectures: Vec::new(),
                        extra: Map::new(),
                    });
                    map.len() - 1
                }
            };
            let entry = &mut map[pos];
            if entry.architecture != name && !entry.sub_architectures.contains(&name) {
                entry.sub_architectures.push(name);
            }
            return;
        }
        let arches = self.architectures.get_or_insert_with(Vec::new);
        if !arches.contains(&name) {
            arches.push(name);
        }
    }
}

/// Syscalls the kernel makes a process call at moments no recording can
/// predict: returning from a signal handler, and resuming a syscall a
/// signal interrupted. A run that got no signal misses them, and a replay
/// that gets one dies (runc's Go init takes preemption signals at random:
/// without rt_sigreturn it crashed in 5 of 60 replays here). Every profile
/// allows them, unless the baseline names them.
pub const SIGNAL_SYSCALLS: &[&str] = &["rt_sigreturn", "restart_syscall"];
/// i386's older signal return, allowed too when 32-bit code was recorded.
pub const SIGNAL_SYSCALLS_X86: &[&str] = &["sigreturn"];

/// What a recording adds to a baseline (or to nothing).
///
/// The baseline's rules come first and verbatim. A recorded syscall is added
/// only if no baseline rule names it, whatever that rule's action: a syscall
/// the baseline blocks stays blocked, and a baseline rule with `args` for it
/// is kept as the only one. Names allowed alone go in one trailing allow
/// rule; a name with conditions (`recorded.conditions`) gets one allow rule
/// per condition after it. When `clone` is added but `clone3` is neither
/// recorded nor named, `clone3` fails with ENOSYS, so that glibc falls back
/// to `clone`, whose flags a rule can check (see arg_rules.rs). The filter
/// covers the native ABI and every ABI something was recorded under. The
/// signal syscalls above join the recorded ones when anything was recorded.
/// No allow rule is written when there is nothing new to allow.
pub fn merge(base: Option<&Profile>, recorded: &NamedSyscalls) -> Profile {
    let mut out = base.cloned().unwrap_or_else(Profile::deny_all);
    out.default_action = ACT_ERRNO.to_string();
    out.cover_abi(Abi::NATIVE);
    for &abi in &recorded.abis {
        out.cover_abi(abi);
    }
    let mut wanted = recorded.names.clone();
    if !recorded.names.is_empty() {
        wanted.extend(SIGNAL_SYSCALLS.iter().map(|s| s.to_string()));
    }
    if recorded.abis.contains(&Abi::X86) {
        wanted.extend(SIGNAL_SYSCALLS_X86.iter().map(|s| s.to_string()));
    }
    let known: BTreeSet<String> = out.named_syscalls().into_iter().map(str::to_string).collect();
    let new: Vec<String> = wanted.into_iter().filter(|n| !known.contains(n)).collect();
    let (conditional, plain): (Vec<String>, Vec<String>) =
        new.iter().cloned().partition(|n| recorded.conditions.get(n).is_some_and(|c| !c.is_empty()));
    if !plain.is_empty() {
        out.syscalls.push(Rule::allow(plain));
    }
    for name in &conditional {
        for arg in &recorded.conditions[name] {
            out.syscalls.push(Rule { args: Some(vec![arg.clone()]), ..Rule::allow(vec![name.clone()]) });
        }
    }
    if new.iter().any(|n| n == CLONE) && !recorded.names.contains(CLONE3) && !known.contains(CLONE3) {
        out.syscalls.push(Rule::enosys(CLONE3));
    }
    out
}

const CLONE: &str = "clone";
const CLONE3: &str = "clone3";
/// ENOSYS on x86: what a kernel without the syscall returns.
pub const ENOSYS: u32 = 38;

impl Rule {
    /// Whether the rule makes its names fail as if the kernel lacked them
    /// (ERRNO with ENOSYS, no conditions): a fallback, not a block.
    pub fn is_enosys(&self) -> bool {
        self.action == ACT_ERRNO && self.args.is_none() && self.extra.get("errnoRet") == Some(&ENOSYS.into())
    }

    /// A rule making `name` fail as if the kernel lacked it.
    fn enosys(name: &str) -> Self {
        let mut extra = Map::new();
        extra.insert("errnoRet".into(), ENOSYS.into());
        Rule { name: None, names: Some(vec![name.into()]), action: ACT_ERRNO.into(), args: None, extra }
    }
}

#[cfg(test)]
mod tests;
