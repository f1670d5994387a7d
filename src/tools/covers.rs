//! `check --covers PROFILE RECORDING...`: whether PROFILE lets through
//! every call the recordings allow, per ABI.
//!
//! A recording's allow of a name under conditions (socket if arg0 == 1) is
//! covered by the profile allowing the name unconditionally or under the
//! same conditions; an unconditional allow only by an unconditional allow.
//! A profile whose default action is ALLOW covers what it does not block.
//! A rule of the profile with another action undoes the cover when it
//! applies whatever the arguments, or to the same conditions. A name the
//! architecture's table lacks is not checked for that architecture.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::view::{architectures, atoms_in, Atom};
use super::FileError;
use crate::profile::{Profile, ACT_ALLOW};

#[derive(Debug, Error)]
pub enum CoversError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("failed to write the report: {0}")]
    Output(std::io::Error),
}

/// A call a recording allows that the profile does not.
#[derive(Debug, Clone, PartialEq)]
pub struct Uncovered {
    pub recording: PathBuf,
    pub arch: String,
    pub call: Atom,
}

/// Checks every recording; writes what is missing to `out`. Returns the
/// exit code: 0 when everything is covered, 1 when something is not.
pub fn run(profile: &Path, recordings: &[PathBuf], out: &mut dyn Write) -> Result<i32, CoversError> {
    let p = super::load_profile(profile)?;
    let mut missing = Vec::new();
    for path in recordings {
        let recording = super::load_profile(path)?;
        missing.extend(uncovered(&p, &recording).into_iter().map(|(arch, call)| Uncovered {
            recording: path.clone(),
            arch,
            call,
        }));
    }
    if missing.is_empty() {
        return Ok(0);
    }
    writeln!(out, "{} does not allow {} call(s) the recordings allow:", profile.display(), missing.len())
        .map_err(CoversError::Output)?;
    for m in &missing {
        writeln!(out, "{m}").map_err(CoversError::Output)?;
    }
    Ok(1)
}

/// The (architecture, allow) pairs of `recording` that `profile` does not cover.
pub fn uncovered(profile: &Profile, recording: &Profile) -> Vec<(String, Atom)> {
    let covered_arches = architectures(profile);
    let mut missing = Vec::new();
    for arch in architectures(recording) {
        let have = atoms_in(profile, &arch);
        let allows = atoms_in(recording, &arch).into_iter().filter(|a| a.verdict.action == ACT_ALLOW);
        for call in allows {
            let ok = covered_arches.contains(&arch) && covers(profile, &have, &call);
            if !ok {
                missing.push((arch.clone(), call));
            }
        }
    }
    missing
}

/// Whether rules `have` (of one architecture) let `call` through.
fn covers(profile: &Profile, have: &std::collections::BTreeSet<Atom>, call: &Atom) -> bool {
    let same_name = || have.iter().filter(|a| a.name == call.name);
    let blocks = same_name()
        .filter(|a| a.verdict.action != ACT_ALLOW)
        .any(|a| a.cond.is_none() || call.cond.is_none() || a.cond == call.cond);
    if blocks {
        return false;
    }
    profile.default_action == ACT_ALLOW
        || same_name().filter(|a| a.verdict.action == ACT_ALLOW).any(|a| a.cond.is_none() || a.cond == call.cond)
}

impl fmt::Display for Uncovered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.recording.display(), self.arch, self.call)
    }
}

#[cfg(test)]
mod tests;
