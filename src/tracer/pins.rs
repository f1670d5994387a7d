//! The pin layout in bpffs: where the shared program lives and how its
//! pins are named. Public because the tests and the bench find the program
//! and count the traced containers by these names.

use std::fs;
use std::path::{Path, PathBuf};

/// Where bpffs is mounted (and where the hook mounts it when it is not).
pub const BPFFS: &str = "/sys/fs/bpf";
/// The pin directory's name before the BPF object's id: one directory per
/// build of the program, so that tracers share only identical programs.
pub const DIR_PREFIX: &str = "oci-seccomp-bpf-hook-";
/// The program's link: removing it detaches the program.
pub const LINK: &str = "link";
/// The second program's link, on kernels that need it (preemption.rs).
pub const LINK_AGAIN: &str = "link-again";
/// The slot table (`containers` in bpf/recorder.bpf.c).
pub const SLOTS: &str = "containers";
/// The argument values of every traced container (`arg_values`).
pub const ARG_VALUES: &str = "arg-values";
/// The pins every tracer shares, removed by the last one out.
pub const SHARED: [&str; 4] = [LINK, LINK_AGAIN, SLOTS, ARG_VALUES];
/// Each traced container's record map is pinned as `record-<mount
/// namespace inode>`: the list of traced containers.
pub const RECORD_PREFIX: &str = "record-";

/// The pin directory of this build's program.
pub fn dir() -> PathBuf {
    Path::new(BPFFS).join(format!("{DIR_PREFIX}{}", env!("RECORDER_BPF_ID")))
}

/// The pin of the record of `mntns`.
pub fn record(pins: &Path, mntns: u32) -> PathBuf {
    pins.join(format!("{RECORD_PREFIX}{mntns}"))
}

/// The mount namespaces with a pinned record in `pins`.
pub fn records(pins: &Path) -> Vec<u32> {
    let Ok(dir) = fs::read_dir(pins) else { return Vec::new() };
    dir.flatten().filter_map(|e| e.file_name().to_str()?.strip_prefix(RECORD_PREFIX)?.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_lists_only_record_pins() {
        let dir = tempfile::tempdir().unwrap();
        for name in [LINK, SLOTS, "record-12", "record-x", "other-3", "record-4026531841"] {
            fs::write(dir.path().join(name), "").unwrap();
        }
        let mut found = records(dir.path());
        found.sort();
        assert_eq!(found, [12, 4026531841]);
        assert_eq!(record(dir.path(), 12), dir.path().join("record-12"));
        assert!(records(&dir.path().join("missing")).is_empty());
    }
}
