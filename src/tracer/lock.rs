//! The lock between tracers: joining, registering and the last one's
//! unpinning happen one tracer at a time.

use std::fs::File;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use super::{home, TracerError};

/// /run is root's: the file cannot be planted there by another user, and
/// `home::trusted_file` checks that it was not.
pub const LOCK_FILE: &str = "/run/oci-seccomp-bpf-hook.lock";

/// Holds the lock between tracers for as long as the value lives.
pub fn lock() -> Result<Flock<File>, TracerError> {
    let file = home::trusted_file(Path::new(LOCK_FILE))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, source)| TracerError::Lock { path: LOCK_FILE.into(), source })
}
