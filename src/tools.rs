//! The tools for the profiles users keep: `merge`, `diff`, `check --covers`
//! and `convert`. They read and write profiles in the containers/common
//! format of [`crate::profile`], see the filter per ABI through [`view`],
//! and write their outputs atomically, as the hook does.

pub mod convert;
pub mod covers;
pub mod diff;
pub mod merge;
pub mod shape;
pub mod view;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::limits;
use crate::profile::Profile;

/// Why an input could not be read or an output not written.
#[derive(Debug, Error)]
pub enum FileError {
    #[error("failed to read {path:?}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path:?} is not a regular file: give a profile file")]
    NotRegular { path: PathBuf },
    #[error("{path:?} is {size} bytes, over the limit of {limit} bytes for a profile")]
    TooLarge { path: PathBuf, size: u64, limit: u64 },
    #[error("{path:?} is not {format}: {reason}")]
    Syntax { path: PathBuf, format: &'static str, reason: String },
    #[error("{path:?}: field {field}: expected {expected}")]
    Field { path: PathBuf, field: String, expected: String },
    #[error("{path:?} is not a profile podman would load: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("failed to write {path:?}: {reason} (the previous file, if any, is unchanged)")]
    Write { path: PathBuf, reason: String },
}

/// Reads a profile file, whole, refusing what is not a regular file (a
/// FIFO would hang the tool) or is over the hook's own input limit.
pub fn read_text(path: &Path) -> Result<String, FileError> {
    let read_err = |e: std::io::Error| FileError::Read { path: path.into(), reason: e.to_string() };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_file() {
        return Err(FileError::NotRegular { path: path.into() });
    }
    if meta.len() > limits::MAX_INPUT_BYTES {
        return Err(FileError::TooLarge { path: path.into(), size: meta.len(), limit: limits::MAX_INPUT_BYTES });
    }
    std::fs::read_to_string(path).map_err(read_err)
}

/// Deserialises `value` after checking its fields against `shape`, so a
/// wrong field is named with its path ("syscalls[2].args[0].value").
pub fn from_value<T: DeserializeOwned>(
    path: &Path,
    value: serde_json::Value,
    shape: &shape::Shape,
    format: &'static str,
) -> Result<T, FileError> {
    shape.check(&value).map_err(|m| FileError::Field { path: path.into(), field: m.field, expected: m.expected })?;
    serde_json::from_value(value).map_err(|e| FileError::Syntax {
        path: path.into(),
        format,
        reason: limits::shown_message(&e.to_string()),
    })
}

/// Parses JSON text, naming the file and the line on error.
pub fn parse_json(path: &Path, text: &str, format: &'static str) -> Result<serde_json::Value, FileError> {
    serde_json::from_str(text).map_err(|e| FileError::Syntax {
        path: path.into(),
        format,
        reason: limits::shown_message(&e.to_string()),
    })
}

/// Checks what podman would refuse, naming the file.
pub fn validated(path: &Path, profile: Profile) -> Result<Profile, FileError> {
    profile
        .validate()
        .map_err(|e| FileError::Invalid { path: path.into(), reason: limits::shown_message(&e.to_string()) })?;
    Ok(profile)
}

/// Reads a profile in the containers/common JSON format.
pub fn load_profile(path: &Path) -> Result<Profile, FileError> {
    const FORMAT: &str = "a seccomp profile in the containers/common JSON format";
    let value = parse_json(path, &read_text(path)?, FORMAT)?;
    validated(path, from_value(path, value, &shape::PROFILE, FORMAT)?)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, synced, then renamed over the target. A reader sees the old
/// file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let write_err = |e: std::io::Error| FileError::Write { path: path.into(), reason: e.to_string() };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".profile-").tempfile_in(dir).map_err(write_err)?;
    tmp.write_all(bytes).map_err(write_err)?;
    // Readable by all, as the hook writes profiles by default.
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests;
