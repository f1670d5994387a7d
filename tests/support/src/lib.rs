//! What the integration tests (tests/integration) and the bench (bench/)
//! both need to drive the hook, written once: a podman wired to a build of
//! the hook, the hooks.d entry, the hook run on a made-up OCI state for a
//! stand-in process, the pinned program's records, and the tracer's log
//! events. Names the hook defines (the annotation, the pin layout, the log
//! fields) come from its library, never retyped.
//!
//! Functions return [`Error`]; tests panic on it, the bench adds context.

pub mod hook;
pub mod packaged;
pub mod pins;
pub mod podman;

use std::path::PathBuf;

pub use oci_seccomp_bpf_hook::annotation::ANNOTATION;
pub use oci_seccomp_bpf_hook::log_event::{TracerEnded, TracerStarted};

/// The fixture image tests/fixtures/images.sh builds.
pub const IMAGE: &str = "localhost/seccomp-fixture:latest";
/// Where sysprobe (tests/fixtures/sysprobe.c) sits in the image.
pub const PROBE_IN_IMAGE: &str = "/usr/local/bin/sysprobe";
/// Its 32-bit build (`-m32`), beside it.
pub const PROBE32_IN_IMAGE: &str = "/usr/local/bin/sysprobe32";
/// The syscalls `sysprobe unusual` makes and a plain program does not.
pub const UNUSUAL: [&str; 5] = ["personality", "sched_get_priority_max", "getcpu", "times", "sysinfo"];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to run {what}: {source}; is it installed?")]
    Spawn { what: String, source: std::io::Error },
    #[error("failed to {what} on {path:?}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{what} failed: {detail}")]
    Failed { what: String, detail: String },
    #[error("pid {pid} did not leave our mount namespace in 10 s: is `unshare --mount` allowed here (root)?")]
    NoNewNamespace { pid: u32 },
}

/// The repository's root.
pub fn repo_root() -> PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).expect("tests/support sits two levels below the root").to_path_buf()
}

/// podman's configuration for this machine: `CONTAINERS_CONF` when set, as
/// podman itself reads it, so a machine with its own settings (a systemd
/// guest using podman's default cgroup manager and events logger) tests
/// podman as it is configured there; else tests/fixtures/containers.conf,
/// which the Justfile exports for every recipe anyway.
pub fn containers_conf() -> PathBuf {
    match std::env::var_os("CONTAINERS_CONF").filter(|v| !v.is_empty()) {
        // Relative to our working directory, as podman (which inherits it)
        // would read it; made absolute so a unit file can name it too.
        Some(conf) => std::path::absolute(&conf).unwrap_or_else(|_| PathBuf::from(conf)),
        None => repo_root().join("tests/fixtures/containers.conf"),
    }
}

/// `program` under coreutils' timeout: SIGTERM after `limit`, SIGKILL 10 s
/// later, and exit status 124 then. Tests on slow machines (TCG guests) wait
/// long, but never forever.
pub fn bounded(program: impl AsRef<std::ffi::OsStr>, limit: std::time::Duration) -> std::process::Command {
    let mut c = std::process::Command::new("timeout");
    c.args(["--kill-after=10s", &format!("{}s", limit.as_secs().max(1))]).arg(program);
    c
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The start event of container `id`'s tracer in a log, if it is there.
pub fn tracer_started(log: &str, id: &str) -> Option<TracerStarted> {
    log.lines().filter_map(TracerStarted::parse).find(|e| e.container == id)
}

/// The last end event of the tracer that wrote `output`, if it is there.
pub fn tracer_ended(log: &str, output: &std::path::Path) -> Option<TracerEnded> {
    log.lines().rev().filter_map(TracerEnded::parse).find(|e| e.output == output)
}
