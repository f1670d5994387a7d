//! Kubernetes security-profiles-operator's `SeccompProfile` object
//! (apiVersion security-profiles-operator.x-k8s.io/v1beta1), in YAML, as
//! `kubectl apply -f` takes it. Its `spec` mirrors the profile: the same
//! field names as containers/common, without `defaultErrnoRet`, `archMap`,
//! `includes`/`excludes` (refused) or a rule `comment` (dropped).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ConvertError;
use crate::profile::{Arg, Profile, Rule};

pub const API_VERSION: &str = "security-profiles-operator.x-k8s.io/v1beta1";
pub const KIND: &str = "SeccompProfile";

/// Spec fields SPO has beyond defaultAction, architectures and syscalls.
const SPEC_FIELDS: &[&str] = &["flags", "listenerPath", "listenerMetadata"];
/// Spec fields about the object's life in the cluster, not the filter.
const CLUSTER_FIELDS: &[&str] = &["disabled", "state"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfile {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: Spec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub name: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub default_action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<Vec<Syscall>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Syscall {
    pub names: Vec<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Arg>>,
}

/// The object for `profile`, named `name`.
pub fn from_profile(p: &Profile, name: &str) -> Result<SeccompProfile, ConvertError> {
    if let Some(key) = p.extra.keys().find(|k| !SPEC_FIELDS.contains(&k.as_str())) {
        return Err(unsupported(key, "SPO's spec has no such field"));
    }
    if p.default_errno_ret.is_some() {
        return Err(unsupported("defaultErrnoRet", "SPO's spec has no such field"));
    }
    if p.arch_map.as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(unsupported("archMap", "SPO's spec has only 'architectures': convert to OCI and back first"));
    }
    let syscalls = p.syscalls.iter().enumerate().map(|(i, r)| syscall(i, r)).collect::<Result<Vec<_>, _>>()?;
    Ok(SeccompProfile {
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        metadata: Metadata { name: name.into(), extra: Map::new() },
        spec: Spec {
            default_action: p.default_action.clone(),
            architectures: p.architectures.clone(),
            syscalls: Some(syscalls),
            extra: p.extra.clone(),
        },
    })
}

fn syscall(i: usize, r: &Rule) -> Result<Syscall, ConvertError> {
    if let Some(key) = r.extra.keys().find(|k| !["errnoRet", "comment"].contains(&k.as_str())) {
        return Err(unsupported(&format!("syscalls[{i}].{key}"), "SPO's syscall rules have no such field"));
    }
    let errno = match r.extra.get("errnoRet") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|e| u32::try_from(e).ok())
                .ok_or_else(|| unsupported(&format!("syscalls[{i}].errnoRet"), "expected an integer"))?,
        ),
    };
    Ok(Syscall {
        names: r.all_names().map(String::from).collect(),
        action: r.action.clone(),
        errno_ret: errno,
        args: r.args.clone(),
    })
}

/// The profile an object describes. Fields about the object in the
/// cluster (`disabled`, `state`) are not the filter's and are left out.
pub fn to_profile(object: &SeccompProfile) -> Result<Profile, ConvertError> {
    let spec = &object.spec;
    let mut extra = spec.extra.clone();
    extra.retain(|k, _| !CLUSTER_FIELDS.contains(&k.as_str()));
    if let Some(key) = extra.keys().find(|k| !SPEC_FIELDS.contains(&k.as_str())) {
        let reason = "it is resolved by the operator in the cluster; convert what it names and `merge` it instead";
        return Err(unsupported(&format!("spec.{key}"), reason));
    }
    Ok(Profile {
        default_action: spec.default_action.clone(),
        default_errno_ret: None,
        arch_map: None,
        architectures: spec.architectures.clone(),
        syscalls: spec.syscalls.iter().flatten().map(rule).collect(),
        extra,
    })
}

fn rule(s: &Syscall) -> Rule {
    let mut r = Rule::allow(s.names.clone());
    r.action = s.action.clone();
    r.args = s.args.clone();
    if let Some(errno) = s.errno_ret {
        r.extra.insert("errnoRet".into(), errno.into());
    }
    r
}

/// A name Kubernetes accepts (an RFC 1123 subdomain) made from the output
/// file's name: `web-server.yaml` -> `web-server`.
pub fn object_name(output: &Path) -> String {
    let stem = output.file_stem().map(|s| s.to_string_lossy().to_lowercase()).unwrap_or_default();
    let name: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect();
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let name = if name.is_empty() { "recorded-profile" } else { name };
    name.chars().take(253).collect::<String>().trim_end_matches(|c: char| !c.is_ascii_alphanumeric()).to_string()
}

fn unsupported(field: &str, reason: &str) -> ConvertError {
    ConvertError::Unsupported { format: "SPO", field: field.into(), reason: reason.into() }
}
