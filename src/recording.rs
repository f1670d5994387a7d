//! The end of a recording: name what was recorded, merge it into the
//! baseline, write the profile, and say what happened.

use crate::arg_rules::{self, Allowed, Plain};
use crate::handoff::Observed;
use crate::output_dir::Output;
use crate::profile::{self, Profile};
use crate::profile_file::{self, ProfileFileError};

/// What was written, for the log line and the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub recorded: usize,
    pub allowed_new: usize,
    pub unnamed: usize,
}

pub fn write_profile(
    observed: &Observed,
    base: Option<&Profile>,
    output: &Output,
) -> Result<Summary, ProfileFileError> {
    let set = observed.allowed();
    tracing::debug!(
        "recorded under a filter: {:?}; without one, the workload: {:?}; the runtime's setup (not allowed): {:?}; \
         the sessions' setup (not allowed): {:?}",
        observed.filtered.named().names,
        observed.unfiltered_workload.named().names,
        observed.runtime_setup.named().names,
        observed.session_setup.named().names,
    );
    let mut named = set.named();
    for (name, allowed) in arg_rules::conditions(&observed.args, &observed.own(), &observed.granted()) {
        match allowed {
            Allowed::With(conditions) => {
                named.conditions.insert(name, conditions);
            }
            Allowed::Plain(why @ Plain::Unrecorded(_)) => {
                tracing::debug!("{name} is allowed without argument rules: {why}")
            }
            Allowed::Plain(why) => tracing::warn!("{name} is allowed without argument rules: {why}"),
        }
    }
    for (abi, nr) in &named.unnamed {
        tracing::warn!(
            "syscall {nr} ({abi}) has no name in libseccomp {}: it cannot be listed in the profile and stays denied",
            libseccomp_version()
        );
    }
    if set.out_of_range > 0 {
        tracing::warn!(
            "{} syscall entries had numbers outside the recorder's table and were not recorded",
            set.out_of_range
        );
    }
    let merged = profile::merge(base, &named);
    let before = base.map_or(0, |b| b.syscalls.len());
    let added = merged.syscalls[before..].iter().filter(|r| r.action == profile::ACT_ALLOW);
    let allowed_new = added.flat_map(|r| r.all_names()).collect::<std::collections::BTreeSet<_>>().len();
    profile_file::write_atomic(output, &merged)?;
    Ok(Summary { recorded: set.len(), allowed_new, unnamed: named.unnamed.len() })
}

fn libseccomp_version() -> String {
    libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_else(|_| "(unknown version)".into())
}

/// Says when the kernel skipped the recorder while `what` ran: only then
/// can its profile lack a syscall (tracer/preemption.rs).
pub fn warn_if_skipped(what: &str, skipped_runs: Option<u64>) {
    if let Some(n @ 1..) = skipped_runs {
        tracing::warn!(
            "the kernel let {n} syscall entries on this host pass without running the recorder while {what} ran \
             (programs on the syscall tracepoints are preemptible on this kernel): its profile may lack a syscall; \
             if a replay fails, record it again"
        );
    }
}
