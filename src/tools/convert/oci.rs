//! The OCI runtime-spec's `linux.seccomp` (config.json), through
//! oci-spec's own types: what runc and crun read from a bundle.
//!
//! OCI has no `archMap` (the host's entry is flattened into
//! `architectures`, as podman does when it hands a profile to the
//! runtime), no `includes`/`excludes` (they depend on the host: refused),
//! and no rule `comment` (dropped: it never changes the filter).

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::ConvertError;
use crate::profile::{Arg, Profile, Rule};
use crate::syscalls::Abi;

/// Top-level fields of a containers profile OCI has a field for.
const TOP_FIELDS: &[&str] = &["flags", "listenerPath", "listenerMetadata"];

/// A containers/common profile as OCI's `linux.seccomp`.
pub fn from_profile(p: &Profile) -> Result<LinuxSeccomp, ConvertError> {
    if let Some(key) = p.extra.keys().find(|k| !TOP_FIELDS.contains(&k.as_str())) {
        return Err(unsupported(key, "OCI's linux.seccomp has no such field"));
    }
    let mut b = LinuxSeccompBuilder::default()
        .default_action(enum_of::<LinuxSeccompAction>(&p.default_action, "defaultAction")?);
    if let Some(errno) = p.default_errno_ret {
        b = b.default_errno_ret(errno);
    }
    let arches = architectures(p)?;
    if !arches.is_empty() {
        b = b.architectures(arches);
    }
    if let Some(flags) = p.extra.get("flags") {
        b = b.flags(
            serde_json::from_value::<Vec<LinuxSeccompFilterFlag>>(flags.clone()).map_err(|e| invalid("flags", e))?,
        );
    }
    if let Some(path) = p.extra.get("listenerPath").and_then(Value::as_str) {
        b = b.listener_path(path);
    }
    if let Some(meta) = p.extra.get("listenerMetadata").and_then(Value::as_str) {
        b = b.listener_metadata(meta);
    }
    let syscalls = p.syscalls.iter().enumerate().map(|(i, r)| syscall(i, r)).collect::<Result<Vec<_>, _>>()?;
    b.syscalls(syscalls).build().map_err(|e| invalid("(top level)", e))
}

/// `architectures`, or the host's (x86_64) entry of `archMap` flattened.
fn architectures(p: &Profile) -> Result<Vec<Arch>, ConvertError> {
    let native = Abi::NATIVE.scmp_name();
    let names: Vec<&String> = match p.arch_map.as_ref().filter(|m| !m.is_empty()) {
        Some(map) => match map.iter().find(|m| m.architecture == native) {
            Some(m) => std::iter::once(&m.architecture).chain(&m.sub_architectures).collect(),
            None => return Err(unsupported("archMap", &format!("it has no entry for this host's {native}"))),
        },
        None => p.architectures.iter().flatten().collect(),
    };
    names.into_iter().map(|a| enum_of::<Arch>(a, "architectures")).collect()
}

fn syscall(i: usize, r: &Rule) -> Result<LinuxSyscall, ConvertError> {
    let field = |f: &str| format!("syscalls[{i}].{f}");
    if let Some(key) = r.extra.keys().find(|k| !["errnoRet", "comment"].contains(&k.as_str())) {
        return Err(unsupported(&field(key), "OCI's syscall rules have no such field"));
    }
    let mut b = LinuxSyscallBuilder::default()
        .names(r.all_names().map(String::from).collect::<Vec<_>>())
        .action(enum_of::<LinuxSeccompAction>(&r.action, &field("action"))?);
    if let Some(errno) = r.extra.get("errnoRet") {
        let errno = errno.as_u64().and_then(|e| u32::try_from(e).ok());
        b = b.errno_ret(
            errno.ok_or_else(|| unsupported(&field("errnoRet"), "expected an integer from 0 to 4294967295"))?,
        );
    }
    if let Some(args) = &r.args {
        b = b.args(args.iter().map(|a| arg(a, &field("args"))).collect::<Result<Vec<_>, _>>()?);
    }
    b.build().map_err(|e| invalid(&format!("syscalls[{i}]"), e))
}

fn arg(a: &Arg, field: &str) -> Result<LinuxSeccompArg, ConvertError> {
    LinuxSeccompArgBuilder::default()
        .index(a.index as usize)
        .value(a.value)
        .value_two(a.value_two)
        .op(enum_of::<LinuxSeccompOperator>(&a.op, &format!("{field}.op"))?)
        .build()
        .map_err(|e| invalid(field, e))
}

/// OCI's `linux.seccomp` as a containers/common profile.
pub fn to_profile(s: &LinuxSeccomp) -> Profile {
    let mut extra = Map::new();
    if let Some(flags) = s.flags() {
        extra.insert("flags".into(), Value::Array(flags.iter().map(name_of).collect()));
    }
    if let Some(path) = s.listener_path() {
        extra.insert("listenerPath".into(), Value::String(path.to_string_lossy().into_owned()));
    }
    if let Some(meta) = s.listener_metadata() {
        extra.insert("listenerMetadata".into(), Value::String(meta.clone()));
    }
    Profile {
        default_action: string_of(&s.default_action()),
        default_errno_ret: s.default_errno_ret(),
        arch_map: None,
        architectures: s.architectures().as_ref().map(|a| a.iter().map(string_of).collect()),
        syscalls: s.syscalls().iter().flatten().map(rule).collect(),
        extra,
    }
}

fn rule(s: &LinuxSyscall) -> Rule {
    let mut r = Rule::allow(s.names().clone());
    r.action = string_of(&s.action());
    if let Some(errno) = s.errno_ret() {
        r.extra.insert("errnoRet".into(), errno.into());
    }
    r.args = s.args().as_ref().map(|args| {
        args.iter()
            .map(|a| Arg {
                index: a.index() as u32,
                value: a.value(),
                value_two: a.value_two().unwrap_or(0),
                op: string_of(&a.op()),
            })
            .collect()
    });
    r
}

/// An enum of oci-spec from its JSON name, or an error naming the field.
fn enum_of<T: DeserializeOwned>(name: &str, field: &str) -> Result<T, ConvertError> {
    serde_json::from_value(Value::String(name.to_string())).map_err(|e| invalid(field, e))
}

fn name_of<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn string_of<T: Serialize>(v: &T) -> String {
    name_of(v).as_str().unwrap_or_default().to_string()
}

fn unsupported(field: &str, reason: &str) -> ConvertError {
    ConvertError::Unsupported { format: "OCI", field: field.into(), reason: reason.into() }
}

fn invalid(field: &str, e: impl std::fmt::Display) -> ConvertError {
    ConvertError::Unsupported { format: "OCI", field: field.into(), reason: e.to_string() }
}
