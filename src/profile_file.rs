//! Reading a baseline profile and writing the result: checked before the
//! container starts, written atomically when it ends.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag, AT_FDCWD};
use thiserror::Error;

use crate::limits;
use crate::output_dir::{self, Output, OutputError};
use crate::policy::{Policy, PolicyError};
use crate::profile::{InvalidProfile, Profile};

#[derive(Debug, Error)]
pub enum ProfileFileError {
    #[error("failed to read input profile {path:?}: {reason}: give an existing, readable seccomp profile with 'if:'")]
    Read { path: PathBuf, reason: String },
    #[error("input profile {path:?} resolves to {real:?}, under {under}: give a regular file with 'if:'")]
    Pseudo { path: PathBuf, real: PathBuf, under: &'static str },
    #[error("input profile {path:?} is a {kind}, not a regular file: give a regular file with 'if:'")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("input profile {path:?} is {size} bytes, over the limit of {limit} bytes: give a smaller baseline (the limit is max_input_bytes in the hook's config)")]
    TooLarge { path: PathBuf, size: u64, limit: u64 },
    #[error("input profile {path:?} is not a seccomp profile in the containers/common JSON format: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("input profile {path:?} is not a profile podman would load: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// An I/O error in words, never "No such file or directory" (see
/// [`output_dir::describe`]).
fn describe(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => output_dir::describe(nix::errno::Errno::from_raw(code)),
        None => e.to_string(),
    }
}

/// Filesystems whose "files" are not data: reading them can block, never
/// end, or act on the host.
const PSEUDO_ROOTS: &[&str] = &["/proc", "/dev", "/sys"];

/// Reads, parses and validates a baseline profile (once), as the policy
/// allows: a regular file, outside /proc, /dev and /sys, within the size
/// cap, in an allowed directory when the policy names some.
pub fn load_baseline(path: &Path, policy: &Policy) -> Result<Profile, ProfileFileError> {
    let allowed = policy.input_dir_for(path)?;
    let raw = read_bounded(path, allowed, policy.max_input_bytes)?;
    // serde and the validator quote the file's own strings: keep them short.
    let profile: Profile = serde_json::from_slice(&raw)
        .map_err(|e| ProfileFileError::Parse { path: path.into(), reason: limits::shown_message(&e.to_string()) })?;
    profile.validate().map_err(|e: InvalidProfile| ProfileFileError::Invalid {
        path: path.into(),
        reason: limits::shown_message(&e.to_string()),
    })?;
    Ok(profile)
}

fn read_bounded(path: &Path, allowed: Option<&Path>, limit: u64) -> Result<Vec<u8>, ProfileFileError> {
    let read_err = |e: std::io::Error| ProfileFileError::Read { path: path.into(), reason: describe(&e) };
    // Resolve links first, so a link into /proc or /dev is seen for what it is.
    let real = std::fs::canonicalize(path).map_err(read_err)?;
    if let Some(under) = PSEUDO_ROOTS.iter().find(|r| real.starts_with(r)) {
        return Err(ProfileFileError::Pseudo { path: path.into(), real, under });
    }
    if let Some(dir) = allowed {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        if !real.starts_with(&dir) {
            let config = crate::policy::config_path();
            let allowed = vec![dir];
            return Err(PolicyError::NotAllowed { what: "input", path: real, config, allowed }.into());
        }
    }
    check_regular(path, &std::fs::metadata(&real).map_err(read_err)?)?;
    // Non-blocking: a FIFO swapped in since the check cannot hang the start;
    // no symlinks: what was resolved above is what is opened.
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let how = OpenHow::new().flags(flags).resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
    let file = File::from(openat2(AT_FDCWD, &real, how).map_err(|e| read_err(e.into()))?);
    let meta = file.metadata().map_err(read_err)?;
    check_regular(path, &meta)?;
    if meta.len() > limit {
        return Err(ProfileFileError::TooLarge { path: path.into(), size: meta.len(), limit });
    }
    let mut raw = Vec::new();
    file.take(limit + 1).read_to_end(&mut raw).map_err(read_err)?;
    if raw.len() as u64 > limit {
        return Err(ProfileFileError::TooLarge { path: path.into(), size: raw.len() as u64, limit });
    }
    Ok(raw)
}

fn check_regular(path: &Path, meta: &std::fs::Metadata) -> Result<(), ProfileFileError> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let kind = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    };
    Err(ProfileFileError::NotRegular { path: path.into(), kind })
}

/// Checks, before the container starts, that the profile can be written
/// there later, and keeps its directory open for that (see [`output_dir`]).
pub fn check_output(path: &Path, policy: &Policy) -> Result<Output, ProfileFileError> {
    let allowed = policy.output_dir_for(path)?;
    Ok(Output::open(path, allowed, policy.profile_mode)?)
}

/// Writes the profile as pretty JSON, atomically, into the directory
/// opened at prestart.
pub fn write_atomic(output: &Output, profile: &Profile) -> Result<(), ProfileFileError> {
    Ok(output.write(&profile_json(profile))?)
}

/// A profile as every writer here writes it (the hook and the tools): pretty
/// JSON and a final newline. A `Profile` holds only strings, numbers and
/// string-keyed maps, so it always serialises.
pub fn profile_json(profile: &Profile) -> Vec<u8> {
    let mut json = serde_json::to_vec_pretty(profile).expect("a Profile always serialises");
    json.push(b'\n');
    json
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::profile::Rule;

    fn load(path: &Path) -> Result<Profile, ProfileFileError> {
        load_baseline(path, &Policy::default())
    }

    #[test]
    fn baseline_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        let e = load(&missing).unwrap_err().to_string();
        assert!(e.contains("missing.json") && e.contains("failed to read"), "{e}");
        let bad = dir.path().join("bad.json");
        fs::write(&bad, "{not json").unwrap();
        let e = load(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.json") && e.contains("not a seccomp profile"), "{e}");
        let invalid = dir.path().join("invalid.json");
        fs::write(
            &invalid,
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":[],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        let e = load(&invalid).unwrap_err().to_string();
        assert!(e.contains("invalid.json") && e.contains("names no syscall"), "{e}");
    }

    /// Failure 4: a FIFO hung the container's start.
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("base.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = load(&fifo).unwrap_err().to_string();
        assert!(e.contains("is a FIFO, not a regular file"), "{e}");
    }

    /// Failure 5: `if:/dev/zero` grew the hook to 1.9 GiB.
    #[test]
    fn devices_and_proc_are_refused_even_through_a_link() {
        let e = load(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("under /dev"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("base.json");
        std::os::unix::fs::symlink("/proc/self/environ", &link).unwrap();
        let e = load(&link).unwrap_err().to_string();
        assert!(e.contains("under /proc"), "{e}");
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
    }

    #[test]
    fn a_baseline_over_the_cap_is_refused_naming_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        fs::File::create(&big).unwrap().set_len(limits::MAX_INPUT_BYTES + 1).unwrap();
        let e = load(&big).unwrap_err().to_string();
        assert!(e.contains("over the limit of 8388608 bytes"), "{e}");
        let small = Policy { max_input_bytes: 10, ..Policy::default() };
        fs::write(&big, r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#).unwrap();
        let e = load_baseline(&big, &small).unwrap_err().to_string();
        assert!(e.contains("over the limit of 10 bytes"), "{e}");
    }

    #[test]
    fn echoed_strings_from_the_file_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.json");
        let action = "X".repeat(100_000);
        fs::write(&path, format!(r#"{{"defaultAction":"{action}"}}"#)).unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.len() < limits::MAX_MESSAGE_BYTES + 500, "{} bytes", e.len());
    }

    #[test]
    fn policy_confines_the_baseline() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("allowed");
        fs::create_dir(&allowed).unwrap();
        let inside = allowed.join("base.json");
        fs::write(&inside, r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#).unwrap();
        let policy = Policy { input_dirs: Some(vec![allowed.clone()]), ..Policy::default() };
        load_baseline(&inside, &policy).unwrap();
        let outside = dir.path().join("base.json");
        fs::write(&outside, r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#).unwrap();
        let e = load_baseline(&outside, &policy).unwrap_err().to_string();
        assert!(e.contains("outside the directories"), "{e}");
        // A link inside that points out is judged by where it points.
        let link = allowed.join("link.json");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let e = load_baseline(&link, &policy).unwrap_err().to_string();
        assert!(e.contains("outside the directories"), "{e}");
    }

    #[test]
    fn write_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.json");
        fs::write(&out, "old").unwrap();
        let mut p = Profile::deny_all();
        p.syscalls.push(Rule::allow(vec!["read".into()]));
        write_atomic(&check_output(&out, &Policy::default()).unwrap(), &p).unwrap();
        let text = fs::read_to_string(&out).unwrap();
        assert!(text.ends_with("}\n") && text.contains("\n  \"defaultAction\""), "pretty: {text}");
        assert_eq!(serde_json::from_str::<Profile>(&text).unwrap(), p);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// Found by the profile_merge fuzz target: without serde_json's
    /// float_roundtrip, an integer too large for u64 (70 digits) in a field
    /// we pass through was read as 6.6666666666666674e69 and came back as
    /// 6.666666666666667e69.
    #[test]
    fn numbers_in_passed_through_fields_come_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.json");
        let n = format!("{}0", "6".repeat(69));
        fs::write(
            &base,
            format!(r#"{{"defaultAction":"SCMP_ACT_ERRNO","x-note":[{n},6.6666666666666674e69,0.1,1e-300]}}"#),
        )
        .unwrap();
        let profile = load(&base).unwrap();
        let out = dir.path().join("out.json");
        write_atomic(&check_output(&out, &Policy::default()).unwrap(), &profile).unwrap();
        assert_eq!(load(&out).unwrap(), profile);
    }

    #[test]
    fn output_checks() {
        let dir = tempfile::tempdir().unwrap();
        let policy = Policy::default();
        check_output(&dir.path().join("out.json"), &policy).unwrap();
        let e = check_output(&dir.path().join("nope/out.json"), &policy).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
        let restricted = Policy { output_dirs: Some(vec![dir.path().join("only")]), ..Policy::default() };
        let e = check_output(&dir.path().join("out.json"), &restricted).unwrap_err().to_string();
        assert!(e.contains("outside the directories"), "{e}");
    }
}
