//! The operator's policy for shared hosts:
//! /etc/containers/oci-seccomp-bpf-hook.conf (TOML).
//!
//! Under Kubernetes the annotation is written by the pod's author, so the
//! administrator may confine `of:` and `if:` to directories, set the mode of
//! written profiles and cap sizes. Without the file the hook behaves as the
//! tool it replaces; a malformed file fails every prestart, loudly, rather
//! than silently lifting the restrictions it meant to set.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::limits::{self, MAX_INPUT_BYTES};

pub const DEFAULT_CONFIG: &str = "/etc/containers/oci-seccomp-bpf-hook.conf";
/// Overrides DEFAULT_CONFIG (hooks.d entries can set it with "env").
pub const CONFIG_ENV: &str = "OCI_SECCOMP_BPF_HOOK_CONFIG";
/// The largest config file read: a few lines are expected.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// The file as written; every field optional, unknown fields refused (a
/// typo must not silently lift a restriction).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    output_dirs: Option<Vec<PathBuf>>,
    input_dirs: Option<Vec<PathBuf>>,
    profile_mode: Option<u32>,
    max_input_bytes: Option<u64>,
}

/// The policy in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Where `of:` may point (None: anywhere).
    pub output_dirs: Option<Vec<PathBuf>>,
    /// Where `if:` may point (None: anywhere).
    pub input_dirs: Option<Vec<PathBuf>>,
    /// The mode of a newly created profile.
    pub profile_mode: u32,
    /// The largest baseline read.
    pub max_input_bytes: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { output_dirs: None, input_dirs: None, profile_mode: 0o644, max_input_bytes: MAX_INPUT_BYTES }
    }
}

#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("failed to read the hook's config {path:?}: {reason}: fix or remove it")]
    Read { path: PathBuf, reason: String },
    #[error("failed to parse the hook's config {path:?}: {reason}: fix it (see `man oci-seccomp-bpf-hook`)")]
    Parse { path: PathBuf, reason: String },
    #[error("the hook's config {path:?}: {field}: {reason}")]
    Invalid { path: PathBuf, field: &'static str, reason: String },
    #[error("{what} {path:?} is outside the directories the hook's config {config:?} allows ({allowed:?}): give a path inside one of them")]
    NotAllowed { what: &'static str, path: PathBuf, config: PathBuf, allowed: Vec<PathBuf> },
}

/// Where the config is read from.
pub fn config_path() -> PathBuf {
    std::env::var_os(CONFIG_ENV).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
}

/// Reads the policy at `path`: the default when there is no file.
pub fn load(path: &Path) -> Result<Policy, PolicyError> {
    let read_err = |e: std::io::Error| PolicyError::Read { path: path.into(), reason: e.to_string() };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Policy::default()),
        Err(e) => return Err(read_err(e)),
    };
    if !file.metadata().map_err(read_err)?.is_file() {
        return Err(PolicyError::Read { path: path.into(), reason: "not a regular file".into() });
    }
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text).map_err(read_err)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(PolicyError::Read { path: path.into(), reason: format!("larger than {MAX_CONFIG_BYTES} bytes") });
    }
    parse(path, &text)
}

/// Parses and checks the policy text (`path` only names it in errors).
pub fn parse(path: &Path, text: &str) -> Result<Policy, PolicyError> {
    let raw: RawPolicy = toml::from_str(text)
        .map_err(|e| PolicyError::Parse { path: path.into(), reason: limits::shown_message(e.message()) })?;
    let invalid = |field, reason: String| PolicyError::Invalid { path: path.into(), field, reason };
    let defaults = Policy::default();
    for (field, dirs) in [("output_dirs", &raw.output_dirs), ("input_dirs", &raw.input_dirs)] {
        for dir in dirs.iter().flatten() {
            if !is_plain_absolute(dir) {
                return Err(invalid(field, format!("{dir:?} must be an absolute path without '.' or '..'")));
            }
        }
    }
    let profile_mode = raw.profile_mode.unwrap_or(defaults.profile_mode);
    if profile_mode & !0o666 != 0 {
        return Err(invalid(
            "profile_mode",
            format!("{profile_mode:#o} is not a mode for a data file: write e.g. 0o640"),
        ));
    }
    let max_input_bytes = raw.max_input_bytes.unwrap_or(defaults.max_input_bytes);
    if max_input_bytes == 0 || max_input_bytes > 16 * MAX_INPUT_BYTES {
        return Err(invalid(
            "max_input_bytes",
            format!("{max_input_bytes} is not between 1 and {}", 16 * MAX_INPUT_BYTES),
        ));
    }
    Ok(Policy { output_dirs: raw.output_dirs, input_dirs: raw.input_dirs, profile_mode, max_input_bytes })
}

fn is_plain_absolute(p: &Path) -> bool {
    p.is_absolute() && p.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

impl Policy {
    /// The allowed directory `output` must stay beneath, if any.
    pub fn output_dir_for(&self, output: &Path) -> Result<Option<&Path>, PolicyError> {
        allowed_dir("output", &self.output_dirs, output)
    }

    /// The allowed directory `input` must stay beneath, if any.
    pub fn input_dir_for(&self, input: &Path) -> Result<Option<&Path>, PolicyError> {
        allowed_dir("input", &self.input_dirs, input)
    }
}

/// The first of `dirs` that holds `path` by its name (the caller opens it
/// with RESOLVE_BENEATH, which catches `..` and links climbing out).
fn allowed_dir<'a>(
    what: &'static str,
    dirs: &'a Option<Vec<PathBuf>>,
    path: &Path,
) -> Result<Option<&'a Path>, PolicyError> {
    let Some(dirs) = dirs else { return Ok(None) };
    match dirs.iter().find(|d| path.starts_with(d) && path != d.as_path()) {
        Some(d) => Ok(Some(d)),
        None => Err(PolicyError::NotAllowed { what, path: path.into(), config: config_path(), allowed: dirs.clone() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Policy, PolicyError> {
        parse(Path::new("/etc/test.conf"), text)
    }

    #[test]
    fn absent_file_is_the_compatible_default() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(&dir.path().join("none.conf")).unwrap(), Policy::default());
        assert_eq!(p("").unwrap(), Policy::default());
    }

    #[test]
    fn every_field_is_read() {
        let text =
            "output_dirs = [\"/var/lib/profiles\"]\ninput_dirs = [\"/usr/share/containers\", \"/etc/seccomp\"]\n\
                    profile_mode = 0o640\nmax_input_bytes = 1048576\n";
        let policy = p(text).unwrap();
        assert_eq!(policy.output_dirs, Some(vec![PathBuf::from("/var/lib/profiles")]));
        assert_eq!(policy.input_dirs.as_ref().map(Vec::len), Some(2));
        assert_eq!((policy.profile_mode, policy.max_input_bytes), (0o640, 1 << 20));
    }

    #[test]
    fn malformed_config_is_an_error() {
        for (text, expected) in [
            ("output_dirs = \"/x\"", "failed to parse"),
            ("outptu_dirs = [\"/x\"]", "unknown field"),
            ("output_dirs = [\"relative\"]", "must be an absolute path"),
            ("input_dirs = [\"/a/../b\"]", "without '.' or '..'"),
            ("profile_mode = 0o4755", "not a mode for a data file"),
            ("max_input_bytes = 0", "not between"),
            ("[[[", "failed to parse"),
        ] {
            let e = p(text).unwrap_err().to_string();
            assert!(e.contains(expected) && e.contains("/etc/test.conf"), "{text}: {e}");
        }
    }

    #[test]
    fn paths_outside_the_allowed_dirs_are_refused_naming_them() {
        let policy = p("output_dirs = [\"/var/lib/profiles\"]").unwrap();
        assert_eq!(
            policy.output_dir_for(Path::new("/var/lib/profiles/a.json")).unwrap(),
            Some(Path::new("/var/lib/profiles"))
        );
        for bad in ["/etc/passwd", "/var/lib/profiles-evil/a.json", "/var/lib/profiles"] {
            let e = policy.output_dir_for(Path::new(bad)).unwrap_err().to_string();
            assert!(e.contains("[\"/var/lib/profiles\"]") && e.contains("outside"), "{bad}: {e}");
        }
        assert_eq!(policy.input_dir_for(Path::new("/anywhere.json")).unwrap(), None, "no input_dirs: anywhere");
    }
}
