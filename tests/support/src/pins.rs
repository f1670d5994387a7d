//! What the hook has pinned in bpffs, read by name (the layout comes from
//! the hook's library): every build's program directory, its link and the
//! one record per traced container.

use std::path::PathBuf;

use oci_seccomp_bpf_hook::tracer::{BPFFS, LINK_PIN, PIN_DIR_PREFIX, RECORD_PIN_PREFIX};

/// The program directories of every build of the hook on the machine.
pub fn dirs() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(BPFFS) else { return Vec::new() };
    let ours = |e: &std::fs::DirEntry| e.file_name().to_string_lossy().starts_with(PIN_DIR_PREFIX);
    entries.flatten().filter(ours).map(|e| e.path()).collect()
}

/// The mount namespaces with a pinned record: the containers traced now,
/// by any build.
pub fn records() -> Vec<u64> {
    let names = dirs().into_iter().flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten());
    names.filter_map(|e| e.file_name().to_str()?.strip_prefix(RECORD_PIN_PREFIX)?.parse().ok()).collect()
}

/// Whether some build's program is pinned (so attached).
pub fn program_pinned() -> bool {
    dirs().iter().any(|d| d.join(LINK_PIN).exists())
}
