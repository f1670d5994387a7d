//! What the hook has pinned in bpffs, read by name (the layout comes from
//! the hook's library, `tracer::pins`): every build's program directory, its
//! link and the one record per traced container.

use std::path::PathBuf;

use oci_seccomp_bpf_hook::tracer::pins::{self, BPFFS, DIR_PREFIX, LINK};

/// The program directories of every build of the hook on the machine.
pub fn dirs() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(BPFFS) else { return Vec::new() };
    let ours = |e: &std::fs::DirEntry| e.file_name().to_string_lossy().starts_with(DIR_PREFIX);
    entries.flatten().filter(ours).map(|e| e.path()).collect()
}

/// The mount namespaces with a pinned record: the containers traced now,
/// by any build.
pub fn records() -> Vec<u64> {
    dirs().iter().flat_map(|d| pins::records(d)).map(u64::from).collect()
}

/// Whether some build's program is pinned (so attached).
pub fn program_pinned() -> bool {
    dirs().iter().any(|d| d.join(LINK).exists())
}
