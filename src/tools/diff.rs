//! `diff A B`: what B's filter does differently from A's, per ABI: each
//! (action, name, argument conditions) added or removed, and top-level
//! fields that changed. Comments and the grouping of names into rules are
//! not differences: the filter is the same.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;
use std::path::Path;

use serde_json::Value;
use thiserror::Error;

use super::view::{architectures, atoms_in, Atom};
use super::FileError;
use crate::profile::Profile;

#[derive(Debug, Error)]
pub enum DiffError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("failed to write the differences: {0}")]
    Output(std::io::Error),
}

/// One field that changed: its name and both values.
#[derive(Debug, PartialEq)]
pub struct Changed {
    pub field: String,
    pub before: String,
    pub after: String,
}

/// The differences between two profiles.
#[derive(Debug, Default, PartialEq)]
pub struct ProfileDiff {
    pub fields: Vec<Changed>,
    /// Per architecture: what only A has, and what only B has.
    pub arches: BTreeMap<String, (Vec<Atom>, Vec<Atom>)>,
}

impl ProfileDiff {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.arches.is_empty()
    }
}

/// Compares the two files; writes the differences to `out`. Returns the
/// exit code: 0 when the filters are the same, 1 when they differ.
pub fn run(a: &Path, b: &Path, out: &mut dyn Write) -> Result<i32, DiffError> {
    let diff = diff(&super::load_profile(a)?, &super::load_profile(b)?);
    if diff.is_empty() {
        return Ok(0);
    }
    write!(out, "--- {}\n+++ {}\n{diff}", a.display(), b.display()).map_err(DiffError::Output)?;
    Ok(1)
}

pub fn diff(a: &Profile, b: &Profile) -> ProfileDiff {
    let mut d = ProfileDiff { fields: changed_fields(a, b), ..ProfileDiff::default() };
    let arches: BTreeSet<String> = architectures(a).into_iter().chain(architectures(b)).collect();
    for arch in arches {
        let (before, after) = (atoms_in(a, &arch), atoms_in(b, &arch));
        let removed: Vec<Atom> = before.difference(&after).cloned().collect();
        let added: Vec<Atom> = after.difference(&before).cloned().collect();
        if !removed.is_empty() || !added.is_empty() {
            d.arches.insert(arch, (removed, added));
        }
    }
    d
}

fn changed_fields(a: &Profile, b: &Profile) -> Vec<Changed> {
    let json = |p: &Profile| match serde_json::to_value(p) {
        Ok(Value::Object(mut map)) => {
            // Compared per ABI instead.
            for key in ["syscalls", "architectures", "archMap"] {
                map.remove(key);
            }
            map
        }
        _ => serde_json::Map::new(),
    };
    let (a, b) = (json(a), json(b));
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let show = |v: Option<&Value>| v.map_or_else(|| "(none)".to_string(), Value::to_string);
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| Changed { field: k.clone(), before: show(a.get(k)), after: show(b.get(k)) })
        .collect()
}

impl fmt::Display for ProfileDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.fields {
            writeln!(f, "{}: {} -> {}", c.field, c.before, c.after)?;
        }
        for (arch, (removed, added)) in &self.arches {
            writeln!(f, "{arch}:")?;
            for atom in removed {
                writeln!(f, "- {atom}")?;
            }
            for atom in added {
                writeln!(f, "+ {atom}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
