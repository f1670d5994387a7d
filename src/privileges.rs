//! Refuse early, with the reason, when the hook cannot load BPF programs.

use thiserror::Error;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PrivilegeError {
    #[error("must run as root (effective uid is {euid}): tracing needs root; rootless containers cannot be traced")]
    NotRoot { euid: u32 },
    #[error("root without CAP_SYS_ADMIN, or CAP_BPF and CAP_PERFMON: cannot load BPF programs (effective capabilities {caps:#x})")]
    MissingCapabilities { caps: u64 },
}

/// Whether effective capabilities `caps` can load and attach a tracing program.
pub fn can_trace(caps: u64) -> bool {
    let has = |cap: u32| caps & (1u64 << cap) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

pub fn check() -> Result<(), PrivilegeError> {
    let euid = nix::unistd::geteuid().as_raw();
    if euid != 0 {
        return Err(PrivilegeError::NotRoot { euid });
    }
    match effective_caps() {
        Some(caps) if !can_trace(caps) => Err(PrivilegeError::MissingCapabilities { caps }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_sets() {
        assert!(can_trace(1 << CAP_SYS_ADMIN));
        assert!(can_trace((1 << CAP_BPF) | (1 << CAP_PERFMON)));
        assert!(!can_trace(1 << CAP_BPF));
        assert!(!can_trace(0));
    }
}
