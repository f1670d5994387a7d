//! `convert --to oci|spo|containers IN -o OUT`: a profile in another
//! consumer's format. The input's format is detected: an SPO object (YAML
//! or JSON with `kind: SeccompProfile`), an OCI config.json (its
//! `linux.seccomp`), a bare `linux.seccomp` (only fields OCI has), or a
//! containers/common profile. Every input is read into the containers
//! model ([`Profile`]) and checked as podman would; the output is written
//! from it, atomically.

pub mod oci;
pub mod spo;

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;
use serde_json::Value;
use thiserror::Error;

use super::{shape, FileError};
use crate::profile::Profile;

/// The formats `convert` reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// containers/common JSON, as `podman run --security-opt seccomp=` reads.
    Containers,
    /// The OCI runtime-spec's `linux.seccomp` JSON, as runc and crun read.
    Oci,
    /// A Kubernetes security-profiles-operator SeccompProfile (YAML).
    Spo,
}

#[derive(Debug, Error)]
pub enum ConvertError {
    #[error("cannot be expressed in {format}: field {field}: {reason}")]
    Unsupported { format: &'static str, field: String, reason: String },
    #[error("{path:?} {source}")]
    At { path: PathBuf, source: Box<ConvertError> },
    #[error(transparent)]
    File(#[from] FileError),
}

const CONTAINERS: &str = "a seccomp profile in the containers/common JSON format";
const OCI: &str = "an OCI linux.seccomp object";
const SPO: &str = "a security-profiles-operator SeccompProfile object";

/// Converts `input` to `to`, written to `output`; returns the input's format.
pub fn run(input: &Path, to: Format, output: &Path, name: Option<&str>) -> Result<Format, ConvertError> {
    let (from, profile) = read_any(input)?;
    let at = |e: ConvertError| ConvertError::At { path: input.into(), source: Box::new(e) };
    let name = name.map_or_else(|| spo::object_name(output), String::from);
    let bytes = render(&profile, to, &name).map_err(at)?;
    super::write_atomic(output, &bytes)?;
    Ok(from)
}

/// The profile in format `to` (`name` names an SPO object).
pub fn render(profile: &Profile, to: Format, name: &str) -> Result<Vec<u8>, ConvertError> {
    let mut bytes = match to {
        Format::Containers => return Ok(crate::profile_file::profile_json(profile)),
        Format::Oci => serde_json::to_vec_pretty(&oci::from_profile(profile)?).expect("LinuxSeccomp serialises"),
        Format::Spo => {
            let object = spo::from_profile(profile, name)?;
            serde_saphyr::to_string(&object).expect("a SeccompProfile serialises").into_bytes()
        }
    };
    if !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    Ok(bytes)
}

/// Reads a profile in any of the formats, detecting which.
pub fn read_any(path: &Path) -> Result<(Format, Profile), ConvertError> {
    let text = super::read_text(path)?;
    let value = if text.trim_start().starts_with('{') {
        super::parse_json(path, &text, CONTAINERS)?
    } else {
        // YAML: only SPO objects are written in it.
        serde_saphyr::from_str::<Value>(&text).map_err(|e| FileError::Syntax {
            path: path.into(),
            format: SPO,
            reason: e.to_string(),
        })?
    };
    if value.get("kind").is_some() || value.get("apiVersion").is_some() {
        return Ok((Format::Spo, read_spo(path, value)?));
    }
    if let Some(seccomp) = value.get("linux") {
        let seccomp = seccomp.get("seccomp").cloned().unwrap_or(Value::Null);
        return Ok((Format::Oci, read_oci(path, seccomp)?));
    }
    if is_oci_shaped(&value) {
        return Ok((Format::Oci, read_oci(path, value)?));
    }
    let profile = super::from_value(path, value, &shape::PROFILE, CONTAINERS)?;
    Ok((Format::Containers, super::validated(path, profile)?))
}

/// An OCI `linux.seccomp`: checked field by field and as podman would, then
/// read by oci-spec's own deserialiser.
fn read_oci(path: &Path, value: Value) -> Result<Profile, ConvertError> {
    super::validated(path, super::from_value::<Profile>(path, value.clone(), &shape::PROFILE, OCI)?)?;
    let seccomp: LinuxSeccomp = serde_json::from_value(value).map_err(|e| FileError::Syntax {
        path: path.into(),
        format: OCI,
        reason: e.to_string(),
    })?;
    Ok(super::validated(path, oci::to_profile(&seccomp))?)
}

fn read_spo(path: &Path, value: Value) -> Result<Profile, ConvertError> {
    let field = |field: &str, expected: String| FileError::Field { path: path.into(), field: field.into(), expected };
    if value.get("apiVersion").and_then(Value::as_str) != Some(spo::API_VERSION) {
        return Err(field("apiVersion", format!("{:?}", spo::API_VERSION)).into());
    }
    if value.get("kind").and_then(Value::as_str) != Some(spo::KIND) {
        return Err(field("kind", format!("{:?}", spo::KIND)).into());
    }
    let spec = value.get("spec").cloned().ok_or_else(|| field("spec", "an object (it is required)".into()))?;
    if let Err(m) = shape::PROFILE.check(&spec) {
        return Err(field(&format!("spec.{}", m.field), m.expected).into());
    }
    let object: spo::SeccompProfile = serde_json::from_value(value).map_err(|e| FileError::Syntax {
        path: path.into(),
        format: SPO,
        reason: e.to_string(),
    })?;
    let profile = spo::to_profile(&object).map_err(|e| ConvertError::At { path: path.into(), source: Box::new(e) })?;
    Ok(super::validated(path, profile)?)
}

/// Whether the JSON has only fields OCI's `linux.seccomp` has.
fn is_oci_shaped(value: &Value) -> bool {
    const TOP: &[&str] =
        &["defaultAction", "defaultErrnoRet", "architectures", "flags", "listenerPath", "listenerMetadata", "syscalls"];
    const RULE: &[&str] = &["names", "action", "errnoRet", "args"];
    let only =
        |v: &Value, allowed: &[&str]| v.as_object().is_some_and(|m| m.keys().all(|k| allowed.contains(&k.as_str())));
    only(value, TOP)
        && value.get("syscalls").and_then(Value::as_array).into_iter().flatten().all(|rule| only(rule, RULE))
}

#[cfg(test)]
mod tests;
