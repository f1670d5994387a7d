//! Logs go to the journal when one is running (the operator reads them
//! there), else to stderr.

use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};

/// Where log lines end up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Journal,
    Stderr,
}

/// Sets up logging at `level` (overridden by RUST_LOG) and says where it goes.
pub fn init(level: &str) -> Sink {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let journal = std::path::Path::new("/run/systemd/journal/socket")
        .exists()
        .then(|| tracing_journald::layer().ok())
        .flatten();
    match journal {
        Some(layer) => {
            let layer = layer.with_syslog_identifier("oci-seccomp-bpf-hook".to_string());
            tracing_subscriber::registry()
                .with(filter)
                .with(layer)
                .init();
            Sink::Journal
        }
        None => {
            let fmt = tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false);
            tracing_subscriber::registry().with(filter).with(fmt).init();
            Sink::Stderr
        }
    }
}
