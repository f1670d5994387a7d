//! A minimal copy of the kernel's BTF: only the kernel types the BPF
//! program reads, with only the members it reads, at the running kernel's
//! offsets.
//!
//! libbpf resolves CO-RE relocations against the kernel's BTF, and parsing
//! all of /sys/kernel/btf/vmlinux (5 MiB, 126,000 types on 6.18) took 9 to
//! 14 ms of every container start. The first tracer after boot writes this
//! copy (a few hundred bytes) to /run, keyed by boot id, BPF object and writer format, and
//! every later load relocates against it instead (libbpf's btf_custom_path).
//!
//! Which types: those of the program's own BTF (the compiled object, so
//! bpf/vmlinux_min.h is the only list) that the kernel's BTF has too, and
//! the function that tells a kernel with preemptible syscall tracepoint
//! programs (preemption.rs).
//! Reading goes through libbpf-rs's safe BTF API; only the writer below
//! calls libbpf-sys, which has the `btf__add_*` functions libbpf-rs lacks.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use libbpf_rs::btf::types::{Composite, Enum, Int, IntEncoding, MemberAttr};
use libbpf_rs::btf::{Btf, BtfKind, BtfType, HasSize, TypeId};
use libbpf_sys as sys;
use thiserror::Error;

use super::home::{self, HomeError};
use super::preemption;

/// The compiled BPF program (build.rs): its BTF says what it reads.
const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/recorder.bpf.o"));
const CACHE_DIR: &str = "/run/oci-seccomp-bpf-hook";
/// What `minimal` writes, in the cache file's name beside the boot and the
/// BPF object: bump it when `minimal` copies something else (version 2 keeps
/// the function preemption.rs looks for), so an upgrade within a boot does
/// not read an older writer's copy.
const WRITER_FORMAT: u32 = 2;

#[derive(Debug, Error)]
pub enum BtfError {
    #[error("failed to read the boot id")]
    BootId { source: io::Error },
    #[error("failed to read the {which} BTF")]
    Read { which: &'static str, source: libbpf_rs::Error },
    #[error("the compiled BPF program has no BTF: rebuild it with -g (libbpf-cargo does)")]
    NoObjectBtf,
    #[error("the kernel's struct {name} has no member {member}, which the BPF program reads")]
    NoMember { name: String, member: String },
    #[error("{name}.{member} has a type of BTF kind {kind:?}, which the minimal BTF does not copy")]
    Kind { name: String, member: String, kind: BtfKind },
    #[error("failed to add {what} to the minimal BTF: libbpf error {code}")]
    Add { what: String, code: i64 },
    #[error("failed to create an empty BTF object")]
    Empty,
    #[error("the cache directory is not safe to use")]
    Home(#[from] HomeError),
    #[error("failed to write the minimal BTF {path:?}")]
    Write { path: PathBuf, source: io::Error },
}

/// The cached minimal BTF for this boot, written now if missing.
pub fn cached() -> Result<PathBuf, BtfError> {
    cached_in(Path::new(CACHE_DIR))
}

fn cached_in(dir: &Path) -> Result<PathBuf, BtfError> {
    let boot_id =
        fs::read_to_string("/proc/sys/kernel/random/boot_id").map_err(|source| BtfError::BootId { source })?;
    // Refused (and so not used) unless only root can write it: libbpf
    // trusts what it reads there.
    home::trusted_dir(dir, false)?;
    let path = dir.join(format!("{}-{}-v{WRITER_FORMAT}.btf", boot_id.trim(), env!("RECORDER_BPF_ID")));
    if path.exists() {
        return Ok(path);
    }
    let kernel = Btf::from_vmlinux().map_err(|source| BtfError::Read { which: "kernel's", source })?;
    let bytes = minimal(&kernel)?;
    let write = |source| BtfError::Write { path: path.clone(), source };
    // A random name, created with O_EXCL, renamed over the final one: a
    // concurrent tracer writes its own copy, and readers see whole files.
    let mut tmp = tempfile::Builder::new().prefix(".minimal-").suffix(".tmp").tempfile_in(dir).map_err(write)?;
    tmp.write_all(&bytes).map_err(write)?;
    tmp.persist(&path).map_err(|e| write(e.error))?;
    Ok(path)
}

/// A name as the BTF API gives it (anonymous types and members have none).
fn name_of(name: Option<&OsStr>) -> String {
    name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Named kernel types the program declares: (name, the members or
/// enumerators it declares).
type Wanted = Vec<(String, Vec<String>)>;

/// The kernel's id of each wanted struct (`true`) and enum, by name.
type KernelIds = HashMap<(bool, String), TypeId>;

/// The structs and enums of the program's BTF that the kernel's BTF has
/// too, each with what the program declares of it, and their kernel ids.
/// The program's own types (the record, the map definitions) are not the
/// kernel's and drop out.
fn wanted(kernel: &Btf) -> Result<(Wanted, Wanted, KernelIds), BtfError> {
    let object = Btf::from_raw("recorder", OBJECT)
        .map_err(|source| BtfError::Read { which: "BPF program's", source })?
        .ok_or(BtfError::NoObjectBtf)?;
    let declared = |kind: BtfKind| -> Wanted {
        object
            .type_by_kind::<BtfType<'_>>()
            .filter(|t| t.kind() == kind && t.name().is_some())
            .map(|t| {
                let names: Vec<String> = match Composite::try_from(t) {
                    Ok(c) => (0..c.len()).filter_map(|i| c.get(i)).map(|m| name_of(m.name)).collect(),
                    Err(t) => match Enum::try_from(t) {
                        Ok(e) => (0..e.len()).filter_map(|i| e.get(i)).map(|v| name_of(v.name)).collect(),
                        Err(_) => Vec::new(),
                    },
                };
                (name_of(t.name()), names)
            })
            .collect()
    };
    let mut ids = KernelIds::new();
    let mut keep = |kind, is_struct| -> Wanted {
        let in_kernel = |(name, _): &(String, Vec<String>)| match kernel_type(kernel, kind, name) {
            Some(id) => ids.insert((is_struct, name.clone()), id).is_none(),
            None => false,
        };
        declared(kind).into_iter().filter(in_kernel).collect()
    };
    let structs = keep(BtfKind::Struct, true);
    let enums = keep(BtfKind::Enum, false);
    Ok((structs, enums, ids))
}

/// The kernel's type of this kind and name: the first, as libbpf's
/// relocation finds it. libbpf's own search by name first (fast, in C);
/// a walk of every type only when another kind holds the name first.
fn kernel_type(kernel: &Btf, kind: BtfKind, name: &str) -> Option<TypeId> {
    match kernel.type_by_name::<BtfType<'_>>(name)? {
        t if t.kind() == kind => Some(t.type_id()),
        _ => kernel
            .type_by_kind::<BtfType<'_>>()
            .find(|t| t.kind() == kind && t.name() == Some(OsStr::new(name)))
            .map(|t| t.type_id()),
    }
}

/// Finds `name` among the members of struct or union `ty`, looking into
/// anonymous structs and unions; returns its type and bit offset.
fn find_member(btf: &Btf, ty: TypeId, name: &str) -> Option<(TypeId, u32)> {
    let composite: Composite<'_> = btf.type_by_id(ty)?;
    for member in (0..composite.len()).filter_map(|i| composite.get(i)) {
        let offset = match member.attr {
            MemberAttr::Normal { offset } | MemberAttr::BitField { offset, .. } => offset,
        };
        match member.name {
            Some(n) if n == name => return Some((member.ty, offset)),
            Some(_) => continue,
            None => {}
        }
        let inner = btf.type_by_id::<BtfType<'_>>(member.ty)?.skip_mods_and_typedefs();
        if let Some((t, o)) = find_member(btf, inner.type_id(), name) {
            return Some((t, offset + o));
        }
    }
    None
}

/// What a member's type becomes in the minimal BTF.
enum Field {
    Struct(usize),
    Pointer(Option<usize>),
    Int { name: String, size: u32, encoding: u32 },
}

/// One struct of the minimal BTF: name, size, (member, field, bit offset).
type Layout = (String, u32, Vec<(String, Field, u32)>);

/// The layout of each wanted struct in the kernel.
fn layouts(kernel: &Btf, ids: &KernelIds, structs: &Wanted) -> Result<Vec<Layout>, BtfError> {
    let index = |name: Option<&OsStr>| structs.iter().position(|(n, _)| Some(OsStr::new(n)) == name);
    let mut layouts = Vec::new();
    for (name, members) in structs {
        let no_member = |member: &str| BtfError::NoMember { name: name.clone(), member: member.into() };
        let ty: Composite<'_> =
            ids.get(&(true, name.clone())).and_then(|&id| kernel.type_by_id(id)).ok_or_else(|| no_member(""))?;
        let mut fields = Vec::new();
        for member in members {
            // A member this kernel lacks is left out, as the full BTF lacks
            // it: the program reads such members only behind
            // bpf_core_field_exists (ns_common.ns_id, mnt_namespace.seq).
            let Some((member_ty, offset)) = find_member(kernel, ty.type_id(), member) else { continue };
            let t =
                kernel.type_by_id::<BtfType<'_>>(member_ty).ok_or_else(|| no_member(member))?.skip_mods_and_typedefs();
            let field = match t.kind() {
                BtfKind::Struct | BtfKind::Union => Field::Struct(index(t.name()).ok_or_else(|| BtfError::Kind {
                    name: name.clone(),
                    member: member.clone(),
                    kind: t.kind(),
                })?),
                BtfKind::Ptr => Field::Pointer(t.next_type().and_then(|to| index(to.skip_mods_and_typedefs().name()))),
                BtfKind::Int => {
                    let int = Int::try_from(t).map_err(|_| no_member(member))?;
                    let encoding = match int.encoding {
                        IntEncoding::None => 0,
                        IntEncoding::Signed => sys::BTF_INT_SIGNED,
                        IntEncoding::Char => sys::BTF_INT_CHAR,
                        IntEncoding::Bool => sys::BTF_INT_BOOL,
                    };
                    Field::Int { name: name_of(t.name()), size: int.size() as u32, encoding }
                }
                BtfKind::Enum => {
                    let size = Enum::try_from(t).map(|e| e.size() as u32).unwrap_or(4);
                    Field::Int { name: "unsigned int".into(), size, encoding: 0 }
                }
                kind => return Err(BtfError::Kind { name: name.clone(), member: member.clone(), kind }),
            };
            fields.push((member.clone(), field, offset));
        }
        layouts.push((name.clone(), ty.size() as u32, fields));
    }
    Ok(layouts)
}

/// Builds the minimal BTF of `kernel` for the kernel types the program reads.
pub fn minimal(kernel: &Btf) -> Result<Vec<u8>, BtfError> {
    let (structs, enums, ids) = wanted(kernel)?;
    let layouts = layouts(kernel, &ids, &structs)?;

    // Type ids, known before anything is added (fields may point forward):
    // the structs first, then one pointer per struct, then the ints.
    let struct_id = |i: usize| (i + 1) as i32;
    let ptr_id = |i: usize| (structs.len() + i + 1) as i32;
    let mut ints: Vec<(String, u32, u32)> = Vec::new();
    for (_, _, fields) in &layouts {
        for (_, field, _) in fields {
            if let Field::Int { name, size, encoding } = field {
                if !ints.iter().any(|(n, _, _)| n == name) {
                    ints.push((name.clone(), *size, *encoding));
                }
            }
        }
    }
    let int_id = |name: &str| ints.iter().position(|(n, _, _)| n == name).map(|i| (2 * structs.len() + 1 + i) as i32);

    let mut out = Writer::empty()?;
    for (name, size, fields) in &layouts {
        out.add_struct(name, *size)?;
        for (member, field, offset) in fields {
            let ty = match field {
                Field::Struct(i) => struct_id(*i),
                Field::Pointer(Some(i)) => ptr_id(*i),
                Field::Pointer(None) => ptr_id(0), // any pointer relocates as a pointer
                Field::Int { name, .. } => int_id(name).unwrap_or(0),
            };
            out.add_field(member, ty, *offset)?;
        }
    }
    for i in 0..structs.len() {
        out.add_ptr(struct_id(i))?;
    }
    for (name, size, encoding) in &ints {
        out.add_int(name, *size, *encoding)?;
    }
    for (name, wanted) in &enums {
        let Some(e) = ids.get(&(false, name.clone())).and_then(|&id| kernel.type_by_id::<Enum<'_>>(id)) else {
            continue;
        };
        let values: Vec<(String, i64)> = (0..e.len())
            .filter_map(|i| e.get(i))
            .map(|v| (name_of(v.name), v.value))
            .filter(|(n, _)| wanted.contains(n))
            .collect();
        // A kernel without any of them (5.10 lacks the helper the program
        // asks about) gets no enum: the relocation then says "absent".
        if !values.is_empty() {
            out.add_enum(name, e.size() as u32, &values)?;
        }
    }
    if preemption::preemptible(kernel) {
        out.add_func(preemption::MARK)?;
    }
    Ok(out.raw())
}

/// A BTF object being written, owned (libbpf's `struct btf`).
struct Writer(*mut sys::btf);

impl Drop for Writer {
    fn drop(&mut self) {
        // SAFETY: we own the pointer, created by libbpf and freed once.
        unsafe { sys::btf__free(self.0) }
    }
}

impl Writer {
    fn empty() -> Result<Self, BtfError> {
        // SAFETY: no arguments; returns a new object or NULL.
        let ptr = unsafe { sys::btf__new_empty() };
        if ptr.is_null() {
            return Err(BtfError::Empty);
        }
        Ok(Writer(ptr))
    }

    fn raw(&self) -> Vec<u8> {
        let mut size = 0u32;
        // SAFETY: returns a pointer into the object's own buffer of `size` bytes.
        let data = unsafe { sys::btf__raw_data(self.0, &mut size) };
        // SAFETY: as above; copied out before the object can change.
        unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) }.to_vec()
    }

    fn check(ret: i32, what: &str) -> Result<i32, BtfError> {
        if ret < 0 {
            return Err(BtfError::Add { what: what.into(), code: ret.into() });
        }
        Ok(ret)
    }

    fn name(name: &str) -> Result<CString, BtfError> {
        CString::new(name).map_err(|_| BtfError::Add { what: format!("{name:?}"), code: -i64::from(libc::EINVAL) })
    }

    fn add_struct(&mut self, name: &str, size: u32) -> Result<i32, BtfError> {
        let c = Self::name(name)?;
        // SAFETY: valid object and name.
        Self::check(unsafe { sys::btf__add_struct(self.0, c.as_ptr(), size) }, name)
    }

    #[cfg(test)]
    fn add_union(&mut self, name: &str, size: u32) -> Result<i32, BtfError> {
        let c = Self::name(name)?;
        // SAFETY: valid object and name.
        Self::check(unsafe { sys::btf__add_union(self.0, c.as_ptr(), size) }, name)
    }

    fn add_field(&mut self, name: &str, ty: i32, bit_offset: u32) -> Result<i32, BtfError> {
        let c = Self::name(name)?;
        // SAFETY: valid object; the field joins the struct added last.
        Self::check(unsafe { sys::btf__add_field(self.0, c.as_ptr(), ty, bit_offset, 0) }, name)
    }

    fn add_ptr(&mut self, to: i32) -> Result<i32, BtfError> {
        // SAFETY: valid object; forward references are allowed.
        Self::check(unsafe { sys::btf__add_ptr(self.0, to) }, "a pointer")
    }

    fn add_int(&mut self, name: &str, size: u32, encoding: u32) -> Result<i32, BtfError> {
        let c = Self::name(name)?;
        // SAFETY: valid object and name.
        Self::check(unsafe { sys::btf__add_int(self.0, c.as_ptr(), size as _, encoding as i32) }, name)
    }

    /// A function without arguments or result (only its name matters).
    fn add_func(&mut self, name: &str) -> Result<i32, BtfError> {
        let c = Self::name(name)?;
        // SAFETY: valid object; 0 is void, the prototype's result.
        let proto = Self::check(unsafe { sys::btf__add_func_proto(self.0, 0) }, name)?;
        // SAFETY: valid object and name; `proto` was just added.
        Self::check(unsafe { sys::btf__add_func(self.0, c.as_ptr(), sys::BTF_FUNC_STATIC, proto) }, name)
    }

    fn add_enum(&mut self, name: &str, size: u32, values: &[(String, i64)]) -> Result<i32, BtfError> {
        let c = Self::name(name)?;
        // SAFETY: valid object and name.
        let id = Self::check(unsafe { sys::btf__add_enum(self.0, c.as_ptr(), size) }, name)?;
        for (value_name, value) in values {
            let v = Self::name(value_name)?;
            // SAFETY: the value joins the enum added just before.
            Self::check(unsafe { sys::btf__add_enum_value(self.0, v.as_ptr(), *value) }, value_name)?;
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests;
