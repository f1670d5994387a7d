//! Where log lines go.
//!
//! The hook and its tracer log to the journal when one runs (the operator
//! reads it there), else append to a log file: runc shows a failing hook's
//! stderr but crun does not, and the tracer outlives the hook's stderr.
//! `record` is interactive and logs to stderr.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;

use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};

/// The log file of the hook and tracer when no journal runs.
pub const DEFAULT_LOG_FILE: &str = "/var/log/oci-seccomp-bpf-hook.log";
/// Overrides DEFAULT_LOG_FILE (hooks.d entries can set it with "env").
pub const LOG_FILE_ENV: &str = "OCI_SECCOMP_BPF_HOOK_LOG_FILE";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `-s` and the tracer it starts.
    Hook,
    /// `record`, run by a person.
    Interactive,
}

/// Where log lines end up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    Journal,
    File(PathBuf),
    Stderr,
}

pub fn log_file() -> PathBuf {
    std::env::var_os(LOG_FILE_ENV).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(DEFAULT_LOG_FILE))
}

/// Sets up logging at `level` (overridden by RUST_LOG) and says where it goes.
pub fn init(level: &str, mode: Mode) -> Sink {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let registry = tracing_subscriber::registry().with(filter);
    if mode == Mode::Hook {
        let journal = std::path::Path::new("/run/systemd/journal/socket")
            .exists()
            .then(|| tracing_journald::layer().ok())
            .flatten();
        if let Some(layer) = journal {
            registry.with(layer.with_syslog_identifier("oci-seccomp-bpf-hook".to_string())).init();
            return Sink::Journal;
        }
        let path = log_file();
        if let Ok(file) = OpenOptions::new().create(true).append(true).open(&path) {
            let layer = tracing_subscriber::fmt::layer().with_writer(Mutex::new(file)).with_ansi(false);
            registry.with(layer).init();
            return Sink::File(path);
        }
    }
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time();
    registry.with(layer).init();
    Sink::Stderr
}
