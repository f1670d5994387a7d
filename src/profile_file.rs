//! Reading a baseline profile and writing the result: checked before the
//! container starts, written atomically when it ends.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::profile::{InvalidProfile, Profile};

#[derive(Debug, Error)]
pub enum ProfileFileError {
    #[error("failed to read input profile {path:?}: {reason}: give an existing, readable seccomp profile with 'if:'")]
    Read { path: PathBuf, reason: String },
    #[error("input profile {path:?} is not a seccomp profile in the containers/common JSON format")]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("input profile {path:?} is not a profile podman would load")]
    Invalid { path: PathBuf, source: InvalidProfile },
    #[error("output {path:?}: directory {dir:?} does not exist: create it before starting the container")]
    NoDirectory { path: PathBuf, dir: PathBuf },
    #[error("output {path:?} is a directory: give a file path with 'of:'")]
    IsDirectory { path: PathBuf },
    #[error("output {path:?}: cannot write in {dir:?}: {reason}")]
    NotWritable { path: PathBuf, dir: PathBuf, reason: String },
    #[error("failed to write profile {path:?}: {reason} (the previous file, if any, is unchanged)")]
    Write { path: PathBuf, reason: String },
}

/// An I/O error in words. Never "No such file or directory": podman reads
/// that text in a hook's error as "runtime not found" and exits 127
/// instead of 126.
fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "it does not exist".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_string(),
                None => text,
            }
        }
    }
}

/// Reads, parses and validates a baseline profile (once).
pub fn load_baseline(path: &Path) -> Result<Profile, ProfileFileError> {
    let raw = fs::read(path).map_err(|e| ProfileFileError::Read { path: path.into(), reason: describe(&e) })?;
    let profile: Profile =
        serde_json::from_slice(&raw).map_err(|source| ProfileFileError::Parse { path: path.into(), source })?;
    profile.validate().map_err(|source| ProfileFileError::Invalid { path: path.into(), source })?;
    Ok(profile)
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Checks, before the container starts, that the profile can be written
/// there later: the directory exists and accepts a new file.
pub fn check_output(path: &Path) -> Result<(), ProfileFileError> {
    let dir = parent_dir(path);
    if !dir.is_dir() {
        return Err(ProfileFileError::NoDirectory { path: path.into(), dir });
    }
    if path.is_dir() {
        return Err(ProfileFileError::IsDirectory { path: path.into() });
    }
    // Root passes access(2) checks even on a read-only mount: try for real.
    let probe = temp_path(path, "probe");
    let not_writable = |e| ProfileFileError::NotWritable { path: path.into(), dir: dir.clone(), reason: describe(&e) };
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(&probe).map_err(not_writable)?;
    fs::remove_file(&probe).map_err(not_writable)?;
    Ok(())
}

fn temp_path(path: &Path, what: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    parent_dir(path).join(format!(".{name}.{what}-{}", std::process::id()))
}

/// Writes the profile as pretty JSON: a temporary file in the same
/// directory, fsync, rename over the target, fsync the directory. A reader
/// sees the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, profile: &Profile) -> Result<(), ProfileFileError> {
    let err = |e: std::io::Error| ProfileFileError::Write { path: path.into(), reason: describe(&e) };
    let mut json = serde_json::to_vec_pretty(profile).map_err(|e| err(e.into()))?;
    json.push(b'\n');
    let tmp = temp_path(path, "tmp");
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o644).open(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(parent_dir(path))?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Rule;

    #[test]
    fn baseline_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        let e = load_baseline(&missing).unwrap_err().to_string();
        assert!(e.contains("missing.json") && e.contains("failed to read"), "{e}");
        let bad = dir.path().join("bad.json");
        fs::write(&bad, "{not json").unwrap();
        let e = load_baseline(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.json") && e.contains("not a seccomp profile"), "{e}");
        let invalid = dir.path().join("invalid.json");
        fs::write(
            &invalid,
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":[],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        let e = format!("{:#}", anyhow::Error::from(load_baseline(&invalid).unwrap_err()));
        assert!(e.contains("invalid.json") && e.contains("names no syscall"), "{e}");
    }

    #[test]
    fn output_checks() {
        let dir = tempfile::tempdir().unwrap();
        check_output(&dir.path().join("out.json")).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "the probe file is removed");
        let e = check_output(&dir.path().join("nope/out.json")).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
        let e = check_output(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
    }

    #[test]
    fn write_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.json");
        fs::write(&out, "old").unwrap();
        let mut p = Profile::deny_all();
        p.syscalls.push(Rule::allow(vec!["read".into()]));
        write_atomic(&out, &p).unwrap();
        let text = fs::read_to_string(&out).unwrap();
        assert!(text.ends_with("}\n") && text.contains("\n  \"defaultAction\""), "pretty: {text}");
        assert_eq!(serde_json::from_str::<Profile>(&text).unwrap(), p);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.json");
        fs::write(&out, "old").unwrap();
        // A directory where the temporary file would go makes the write fail.
        fs::create_dir(temp_path(&out, "tmp")).unwrap();
        let e = write_atomic(&out, &Profile::deny_all()).unwrap_err().to_string();
        assert!(e.contains("unchanged"), "{e}");
        assert_eq!(fs::read_to_string(&out).unwrap(), "old");
    }
}
