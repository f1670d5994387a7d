//! `merge A B... -o OUT`: the union of recorded profiles.
//!
//! - Blocked stays blocked: a name that any input names in an unconditional
//!   rule whose action is not ALLOW is allowed by no rule of the output, and
//!   that rule is kept. Rules with another action and conditions on the
//!   arguments are kept too, beside the allows (as in the input that had
//!   them).
//! - An ENOSYS rule (the recorder's `clone3` when it saw only `clone`) is a
//!   fallback, not a block: its names stay allowed where another input
//!   allows them, and the rule keeps only the names no input allows.
//! - Allows are regrouped: one rule per count of inputs that allowed the
//!   names unconditionally, with a `comment` "in K of N inputs" (the
//!   coverage note), then one rule per (name, conditions) that was only
//!   allowed under conditions. An unconditional allow of a name subsumes its
//!   conditional ones.
//! - Allow rules with fields beyond names, args and comment (`includes`,
//!   `excludes`, ...) mean more than "allow": they are kept verbatim.
//! - Architectures are the union; defaultAction, defaultErrnoRet and the
//!   other top-level fields must agree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use thiserror::Error;

use super::view::{cond_of, is_allow, Cond};
use super::FileError;
use crate::profile::{ArchMap, Profile, Rule};

#[derive(Debug, Error)]
pub enum MergeError {
    #[error("nothing to merge: give at least one profile")]
    NoInputs,
    #[error("{path:?} has {field} {found} but {first:?} has {expected}: merge only profiles that agree on it")]
    Disagree { path: PathBuf, first: PathBuf, field: String, found: String, expected: String },
    #[error("the inputs list architectures with both 'architectures' and 'archMap', which podman refuses in one profile: convert them to one style first")]
    ArchStyles,
    #[error(transparent)]
    File(#[from] FileError),
}

/// Reads the inputs, merges them and writes the result atomically.
pub fn run(inputs: &[PathBuf], output: &Path) -> Result<Profile, MergeError> {
    let profiles = inputs
        .iter()
        .map(|p| super::load_profile(p).map(|profile| (p.clone(), profile)))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = merge(&profiles)?;
    super::write_atomic(output, &crate::profile_file::profile_json(&merged))?;
    Ok(merged)
}

/// The note on an allow rule: in how many of the inputs its names appeared.
pub fn coverage_note(count: usize, of: usize) -> String {
    format!("in {count} of {of} inputs")
}

pub fn merge(inputs: &[(PathBuf, Profile)]) -> Result<Profile, MergeError> {
    let (first_path, first) = inputs.first().ok_or(MergeError::NoInputs)?;
    for (path, p) in &inputs[1..] {
        agree(first_path, first, path, p)?;
    }
    let mut out = Profile { syscalls: Vec::new(), arch_map: None, architectures: None, ..first.clone() };
    merge_architectures(&mut out, inputs.iter().map(|(_, p)| p))?;
    let blocked = blocked_names(inputs.iter().map(|(_, p)| p));
    let allowed = allowed_names(inputs.iter().map(|(_, p)| p));
    out.syscalls = kept_rules(inputs.iter().map(|(_, p)| p), &blocked, &allowed);
    out.syscalls.extend(allow_rules(inputs.iter().map(|(_, p)| p), &blocked, inputs.len()));
    Ok(out)
}

/// The top-level fields that must be the same in every input.
fn agree(first_path: &Path, first: &Profile, path: &Path, p: &Profile) -> Result<(), MergeError> {
    let show = |v: Option<&Value>| v.map_or_else(|| "none".to_string(), Value::to_string);
    let disagree = |field: &str, found: String, expected: String| MergeError::Disagree {
        path: path.into(),
        first: first_path.into(),
        field: field.into(),
        found,
        expected,
    };
    if p.default_action != first.default_action {
        return Err(disagree("defaultAction", p.default_action.clone(), first.default_action.clone()));
    }
    if p.default_errno_ret != first.default_errno_ret {
        let show = |e: Option<u32>| e.map_or_else(|| "none".to_string(), |e| e.to_string());
        return Err(disagree("defaultErrnoRet", show(p.default_errno_ret), show(first.default_errno_ret)));
    }
    let keys: BTreeSet<&String> = p.extra.keys().chain(first.extra.keys()).collect();
    match keys.into_iter().find(|k| p.extra.get(*k) != first.extra.get(*k)) {
        Some(key) => Err(disagree(key, show(p.extra.get(key)), show(first.extra.get(key)))),
        None => Ok(()),
    }
}

fn merge_architectures<'a>(out: &mut Profile, inputs: impl Iterator<Item = &'a Profile>) -> Result<(), MergeError> {
    let mut arches: Vec<String> = Vec::new();
    let mut map: Vec<ArchMap> = Vec::new();
    for p in inputs {
        for arch in p.architectures.iter().flatten() {
            if !arches.contains(arch) {
                arches.push(arch.clone());
            }
        }
        for entry in p.arch_map.iter().flatten() {
            match map.iter_mut().find(|m| m.architecture == entry.architecture) {
                Some(m) => {
                    let new: Vec<String> =
                        entry.sub_architectures.iter().filter(|s| !m.sub_architectures.contains(s)).cloned().collect();
                    m.sub_architectures.extend(new);
                }
                None => map.push(entry.clone()),
            }
        }
    }
    if !arches.is_empty() && !map.is_empty() {
        return Err(MergeError::ArchStyles);
    }
    out.architectures = (!arches.is_empty()).then_some(arches);
    out.arch_map = (!map.is_empty()).then_some(map);
    Ok(())
}

/// Names some input gives an action other than ALLOW whatever the arguments.
fn blocked_names<'a>(inputs: impl Iterator<Item = &'a Profile>) -> BTreeSet<String> {
    inputs
        .flat_map(|p| &p.syscalls)
        .filter(|r| !is_allow(r) && cond_of(r).is_none() && !r.is_enosys())
        .flat_map(|r| r.all_names().map(String::from))
        .collect()
}

/// Names some input allows, under conditions or not.
fn allowed_names<'a>(inputs: impl Iterator<Item = &'a Profile>) -> BTreeSet<String> {
    inputs.flat_map(|p| &p.syscalls).filter(|r| is_allow(r)).flat_map(|r| r.all_names().map(String::from)).collect()
}

/// An allow rule that only allows: names, maybe args, maybe our comment.
fn is_plain_allow(rule: &Rule) -> bool {
    is_allow(rule) && rule.extra.keys().all(|k| k == "comment")
}

/// Every rule that is not a plain allow, once, in the order first seen;
/// blocked names are taken out of allow rules kept this way, and allowed
/// ones out of ENOSYS rules.
fn kept_rules<'a>(
    inputs: impl Iterator<Item = &'a Profile>,
    blocked: &BTreeSet<String>,
    allowed: &BTreeSet<String>,
) -> Vec<Rule> {
    let mut kept: Vec<Rule> = Vec::new();
    for rule in inputs.flat_map(|p| &p.syscalls).filter(|r| !is_plain_allow(r)) {
        let mut rule = rule.clone();
        let taken_out = match (is_allow(&rule), rule.is_enosys()) {
            (true, _) => Some(blocked),
            (false, true) => Some(allowed),
            (false, false) => None,
        };
        if let Some(taken_out) = taken_out {
            let names: Vec<String> = rule.all_names().filter(|n| !taken_out.contains(*n)).map(String::from).collect();
            if names.is_empty() {
                continue;
            }
            (rule.name, rule.names) = (None, Some(names));
        }
        if !kept.contains(&rule) {
            kept.push(rule);
        }
    }
    kept
}

/// The plain allows, regrouped by how many inputs had them.
fn allow_rules<'a>(inputs: impl Iterator<Item = &'a Profile>, blocked: &BTreeSet<String>, of: usize) -> Vec<Rule> {
    // Per name: the inputs that allowed it at all, and per condition.
    let mut by_name: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    let mut by_call: BTreeMap<(String, Cond), BTreeSet<usize>> = BTreeMap::new();
    for (i, p) in inputs.enumerate() {
        for rule in p.syscalls.iter().filter(|r| is_plain_allow(r)) {
            let cond = cond_of(rule);
            for name in rule.all_names().filter(|n| !blocked.contains(*n)) {
                by_name.entry(name.to_string()).or_default().insert(i);
                by_call.entry((name.to_string(), cond.clone())).or_default().insert(i);
            }
        }
    }
    let unconditional: BTreeSet<&String> =
        by_call.keys().filter(|(_, cond)| cond.is_none()).map(|(name, _)| name).collect();
    let mut rules = Vec::new();
    for count in (1..=of).rev() {
        let names: Vec<String> =
            unconditional.iter().filter(|n| by_name[n.as_str()].len() == count).map(|n| n.to_string()).collect();
        if !names.is_empty() {
            rules.push(with_comment(Rule::allow(names), coverage_note(count, of)));
        }
    }
    for ((name, cond), seen) in &by_call {
        if let (Some(args), false) = (cond, unconditional.contains(name)) {
            let mut rule = Rule::allow(vec![name.clone()]);
            rule.args = Some(args.clone());
            rules.push(with_comment(rule, coverage_note(seen.len(), of)));
        }
    }
    rules
}

fn with_comment(mut rule: Rule, comment: String) -> Rule {
    rule.extra = Map::from_iter([("comment".to_string(), Value::String(comment))]);
    rule
}

#[cfg(test)]
mod tests;
