//! A minimal copy of the kernel's BTF: only the types and members
//! bpf/vmlinux_min.h declares, at the running kernel's offsets.
//!
//! libbpf resolves CO-RE relocations against the kernel's BTF, and parsing
//! all of /sys/kernel/btf/vmlinux (5 MiB, 126,000 types on 6.18) took 9 to
//! 14 ms of every container start. The first tracer after boot writes this
//! copy (a few hundred bytes) to /run, keyed by boot id and BPF object, and
//! every later load relocates against it instead (libbpf's btf_custom_path).

use std::ffi::{CStr, CString};
use std::fs;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use libbpf_sys as sys;

/// Each struct vmlinux_min.h declares, with the members it reads. The test
/// `table_matches_the_header` keeps the two in step.
pub const STRUCTS: &[(&str, &[&str])] = &[
    ("task_struct", &["thread_info", "nsproxy", "seccomp", "mm"]),
    ("thread_info", &["status"]),
    ("nsproxy", &["mnt_ns"]),
    ("mnt_namespace", &["ns"]),
    ("ns_common", &["inum"]),
    ("seccomp", &["mode"]),
    ("vfsmount", &["mnt_root"]),
    ("mount", &["mnt", "mnt_ns"]),
    ("path", &["mnt"]),
    ("file", &["f_path"]),
    ("mm_struct", &["exe_file"]),
];
/// Enumerators the program asks about with bpf_core_enum_value_exists.
pub const ENUMS: &[(&str, &[&str])] = &[("bpf_func_id", &["BPF_FUNC_get_current_task_btf"])];

const CACHE_DIR: &str = "/run/oci-seccomp-bpf-hook";

/// The cached minimal BTF for this boot, written now if missing.
pub fn cached() -> Result<PathBuf> {
    let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id").context("failed to read the boot id")?;
    let path = PathBuf::from(CACHE_DIR).join(format!("{}-{}.btf", boot_id.trim(), env!("RECORDER_BPF_ID")));
    if path.exists() {
        return Ok(path);
    }
    let vmlinux = Btf::vmlinux()?;
    let bytes = minimal(&vmlinux)?;
    fs::create_dir_all(CACHE_DIR).with_context(|| format!("failed to create {CACHE_DIR}"))?;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    fs::write(&tmp, bytes).with_context(|| format!("failed to write {tmp:?}"))?;
    fs::rename(&tmp, &path).with_context(|| format!("failed to rename {tmp:?}"))?;
    Ok(path)
}

/// An owned libbpf BTF object.
pub struct Btf(*mut sys::btf);

impl Drop for Btf {
    fn drop(&mut self) {
        // SAFETY: we own the pointer, created by libbpf and freed once.
        unsafe { sys::btf__free(self.0) }
    }
}

impl Btf {
    fn from_raw(ptr: *mut sys::btf, what: &str) -> Result<Self> {
        if ptr.is_null() {
            bail!("failed to {what}: {}", std::io::Error::last_os_error());
        }
        Ok(Btf(ptr))
    }

    pub fn vmlinux() -> Result<Self> {
        // SAFETY: no arguments; returns a new object or NULL.
        Self::from_raw(unsafe { sys::btf__load_vmlinux_btf() }, "load the kernel's BTF")
    }

    pub fn empty() -> Result<Self> {
        // SAFETY: no arguments; returns a new object or NULL.
        Self::from_raw(unsafe { sys::btf__new_empty() }, "create a BTF object")
    }

    #[cfg(test)]
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        // SAFETY: libbpf copies `bytes` (pointer and length valid here).
        Self::from_raw(unsafe { sys::btf__new(bytes.as_ptr().cast(), bytes.len() as u32) }, "parse BTF")
    }

    pub fn raw(&self) -> Vec<u8> {
        let mut size = 0u32;
        // SAFETY: returns a pointer into the object's own buffer of `size` bytes.
        let data = unsafe { sys::btf__raw_data(self.0, &mut size) };
        // SAFETY: as above; copied out before the object can change.
        unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) }.to_vec()
    }

    fn find(&self, name: &str, kind: u32) -> Option<u32> {
        let c = CString::new(name).ok()?;
        // SAFETY: valid object and NUL-terminated name.
        let id = unsafe { sys::btf__find_by_name_kind(self.0, c.as_ptr(), kind) };
        (id > 0).then_some(id as u32)
    }

    fn ty(&self, id: u32) -> Type<'_> {
        // SAFETY: ids come from this object; libbpf returns a pointer into it.
        let t = unsafe { &*sys::btf__type_by_id(self.0, id) };
        Type { btf: self, t }
    }

    fn name(&self, off: u32) -> &str {
        // SAFETY: offsets come from this object's types; strings live as long as it.
        let p = unsafe { sys::btf__name_by_offset(self.0, off) };
        if p.is_null() {
            return "";
        }
        // SAFETY: libbpf returns a NUL-terminated string inside the object.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("")
    }

    fn check(ret: i32, what: &str) -> Result<i32> {
        if ret < 0 {
            bail!("failed to add {what} to the minimal BTF: error {ret}");
        }
        Ok(ret)
    }

    fn add_struct(&mut self, name: &str, size: u32) -> Result<i32> {
        let c = CString::new(name)?;
        // SAFETY: valid object and name.
        Self::check(unsafe { sys::btf__add_struct(self.0, c.as_ptr(), size) }, name)
    }

    fn add_field(&mut self, name: &str, ty: i32, bit_offset: u32) -> Result<i32> {
        let c = CString::new(name)?;
        // SAFETY: valid object; the field joins the struct added last.
        Self::check(unsafe { sys::btf__add_field(self.0, c.as_ptr(), ty, bit_offset, 0) }, name)
    }

    fn add_ptr(&mut self, to: i32) -> Result<i32> {
        // SAFETY: valid object; forward references are allowed.
        Self::check(unsafe { sys::btf__add_ptr(self.0, to) }, "a pointer")
    }

    fn add_int(&mut self, name: &str, size: u32, encoding: u32) -> Result<i32> {
        let c = CString::new(name)?;
        // SAFETY: valid object and name.
        Self::check(unsafe { sys::btf__add_int(self.0, c.as_ptr(), size as _, encoding as i32) }, name)
    }

    fn add_enum(&mut self, name: &str, size: u32, values: &[(String, i64)]) -> Result<i32> {
        let c = CString::new(name)?;
        // SAFETY: valid object and name.
        let id = Self::check(unsafe { sys::btf__add_enum(self.0, c.as_ptr(), size) }, name)?;
        for (value_name, value) in values {
            let v = CString::new(value_name.as_str())?;
            // SAFETY: the value joins the enum added just before.
            Self::check(unsafe { sys::btf__add_enum_value(self.0, v.as_ptr(), *value) }, value_name)?;
        }
        Ok(id)
    }
}

/// A view of one `struct btf_type` and the records that follow it.
struct Type<'a> {
    btf: &'a Btf,
    t: &'a sys::btf_type,
}

impl<'a> Type<'a> {
    fn kind(&self) -> u32 {
        (self.t.info >> 24) & 0x1f
    }
    fn vlen(&self) -> usize {
        (self.t.info & 0xffff) as usize
    }
    fn kind_flag(&self) -> bool {
        self.t.info >> 31 != 0
    }
    fn name(&self) -> &'a str {
        self.btf.name(self.t.name_off)
    }
    fn size(&self) -> u32 {
        // SAFETY: both union fields are u32; which one applies depends on kind.
        unsafe { self.t.__bindgen_anon_1.size }
    }
    fn referenced(&self) -> u32 {
        // SAFETY: as above.
        unsafe { self.t.__bindgen_anon_1.type_ }
    }
    /// The records after the type (members, enumerators): `vlen` of `T`.
    fn records<T>(&self) -> &'a [T] {
        // SAFETY: BTF lays `vlen` records of the kind's record type right
        // after struct btf_type; the caller picks T by kind.
        unsafe { std::slice::from_raw_parts((self.t as *const sys::btf_type).add(1).cast::<T>(), self.vlen()) }
    }
    /// BTF_INT_ENCODING of an INT: the u32 after the type, bits 24-27.
    fn int_encoding(&self) -> u32 {
        // SAFETY: an INT type is followed by one u32 of encoding, offset, bits.
        let info = unsafe { *(self.t as *const sys::btf_type).add(1).cast::<u32>() };
        (info >> 24) & 0x0f
    }
    /// (name, type id, bit offset) of each member.
    fn members(&self) -> impl Iterator<Item = (&'a str, u32, u32)> + 'a {
        let bitfield = self.kind_flag();
        let btf = self.btf;
        self.records::<sys::btf_member>().iter().map(move |m| {
            let offset = if bitfield { m.offset & 0x00ff_ffff } else { m.offset };
            (btf.name(m.name_off), m.type_, offset)
        })
    }
}

/// Follows typedefs and qualifiers to the type that has a layout.
fn resolve(btf: &Btf, mut id: u32) -> u32 {
    loop {
        let t = btf.ty(id);
        match t.kind() {
            sys::BTF_KIND_TYPEDEF
            | sys::BTF_KIND_VOLATILE
            | sys::BTF_KIND_CONST
            | sys::BTF_KIND_RESTRICT
            | sys::BTF_KIND_TYPE_TAG => id = t.referenced(),
            _ => return id,
        }
    }
}

/// Finds `name` among the members of struct `id`, looking into anonymous
/// structs and unions; returns its type id and bit offset.
fn find_member(btf: &Btf, id: u32, name: &str) -> Option<(u32, u32)> {
    for (member, ty, offset) in btf.ty(id).members() {
        if member == name {
            return Some((ty, offset));
        }
        let inner = resolve(btf, ty);
        let kind = btf.ty(inner).kind();
        if member.is_empty() && (kind == sys::BTF_KIND_STRUCT || kind == sys::BTF_KIND_UNION) {
            if let Some((t, o)) = find_member(btf, inner, name) {
                return Some((t, offset + o));
            }
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

/// Builds the minimal BTF of `src` for STRUCTS and ENUMS.
pub fn minimal(src: &Btf) -> Result<Vec<u8>> {
    let index = |name: &str| STRUCTS.iter().position(|(n, _)| *n == name);
    let mut layouts = Vec::new();
    for (name, members) in STRUCTS {
        let id = src.find(name, sys::BTF_KIND_STRUCT).with_context(|| format!("the kernel has no struct {name}"))?;
        let mut fields = Vec::new();
        for member in *members {
            let (ty, offset) =
                find_member(src, id, member).with_context(|| format!("struct {name} has no member {member}"))?;
            let ty = src.ty(resolve(src, ty));
            let field = match ty.kind() {
                sys::BTF_KIND_STRUCT | sys::BTF_KIND_UNION => {
                    Field::Struct(index(ty.name()).with_context(|| format!("{name}.{member}: unexpected type"))?)
                }
                sys::BTF_KIND_PTR => Field::Pointer(index(src.ty(resolve(src, ty.referenced())).name())),
                sys::BTF_KIND_INT => {
                    Field::Int { name: ty.name().to_string(), size: ty.size(), encoding: ty.int_encoding() }
                }
                sys::BTF_KIND_ENUM => Field::Int { name: "unsigned int".into(), size: ty.size(), encoding: 0 },
                k => bail!("{name}.{member} has a type of BTF kind {k} the recorder does not read"),
            };
            fields.push((*member, field, offset));
        }
        layouts.push((*name, src.ty(id).size(), fields));
    }

    // Type ids, known before anything is added (fields may point forward):
    // the structs first, then one pointer per struct, then the ints.
    let struct_id = |i: usize| (i + 1) as i32;
    let ptr_id = |i: usize| (STRUCTS.len() + i + 1) as i32;
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
    let int_id = |name: &str| (2 * STRUCTS.len() + 1 + ints.iter().position(|(n, _, _)| n == name).unwrap()) as i32;

    let mut out = Btf::empty()?;
    for (name, size, fields) in &layouts {
        out.add_struct(name, *size)?;
        for (member, field, offset) in fields {
            let ty = match field {
                Field::Struct(i) => struct_id(*i),
                Field::Pointer(Some(i)) => ptr_id(*i),
                Field::Pointer(None) => ptr_id(0), // any pointer relocates as a pointer
                Field::Int { name, .. } => int_id(name),
            };
            out.add_field(member, ty, *offset)?;
        }
    }
    for i in 0..STRUCTS.len() {
        out.add_ptr(struct_id(i))?;
    }
    for (name, size, encoding) in &ints {
        out.add_int(name, *size, *encoding)?;
    }
    for (name, wanted) in ENUMS {
        let Some(id) = src.find(name, sys::BTF_KIND_ENUM) else { continue };
        let t = src.ty(id);
        let values: Vec<(String, i64)> = t
            .records::<sys::btf_enum>()
            .iter()
            .filter(|e| wanted.contains(&src.name(e.name_off)))
            .map(|e| (src.name(e.name_off).to_string(), i64::from(e.val)))
            .collect();
        if !values.is_empty() {
            out.add_enum(name, t.size(), &values)?;
        }
    }
    Ok(out.raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The struct/member lines of bpf/vmlinux_min.h, as (struct, members).
    fn header_structs() -> Vec<(String, Vec<String>)> {
        let header = include_str!("../../bpf/vmlinux_min.h");
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        let mut current: Option<(String, Vec<String>)> = None;
        for line in header.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("struct ").and_then(|r| r.strip_suffix(" {")) {
                current = Some((rest.to_string(), Vec::new()));
            } else if line.starts_with('}') {
                out.extend(current.take());
            } else if let Some((_, members)) = current.as_mut() {
                let field = line.trim_end_matches(';').rsplit([' ', '*']).next().unwrap_or("");
                members.push(field.to_string());
            }
        }
        out
    }

    #[test]
    fn table_matches_the_header() {
        let table: Vec<(String, Vec<String>)> =
            STRUCTS.iter().map(|(n, m)| (n.to_string(), m.iter().map(|s| s.to_string()).collect())).collect();
        let mut header = header_structs();
        header.sort();
        let mut table_sorted = table.clone();
        table_sorted.sort();
        assert_eq!(table_sorted, header, "bpf/vmlinux_min.h and STRUCTS drifted apart");
    }

    #[test]
    fn minimal_btf_has_the_kernels_offsets() {
        if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
            println!("SKIPPED: minimal_btf_has_the_kernels_offsets: this kernel has no BTF (/sys/kernel/btf/vmlinux)");
            return;
        }
        let vmlinux = Btf::vmlinux().unwrap();
        let min = Btf::parse(&minimal(&vmlinux).unwrap()).unwrap();
        for (name, members) in STRUCTS {
            let full_id = vmlinux.find(name, sys::BTF_KIND_STRUCT).unwrap();
            let min_id = min.find(name, sys::BTF_KIND_STRUCT).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(min.ty(min_id).size(), vmlinux.ty(full_id).size(), "{name} size");
            for member in *members {
                let (_, full_offset) = find_member(&vmlinux, full_id, member).unwrap();
                let (_, min_offset) = find_member(&min, min_id, member).unwrap();
                assert_eq!(min_offset, full_offset, "{name}.{member} offset");
            }
        }
        let func_id = min.find("bpf_func_id", sys::BTF_KIND_ENUM).expect("5.11+ kernels have the helper");
        assert_eq!(min.ty(func_id).vlen(), 1);
        assert!(min.raw().len() < 2048, "minimal means small: {} bytes", min.raw().len());
    }

    #[test]
    fn members_inside_anonymous_unions_are_found() {
        let mut src = Btf::empty().unwrap();
        let int = src.add_int("unsigned int", 4, 0).unwrap();
        // struct ns_common { long pad; union { struct { unsigned int inum; }; }; }
        let c = CString::new("").unwrap();
        // SAFETY: valid object and name; fields follow.
        let inner = unsafe { sys::btf__add_struct(src.0, c.as_ptr(), 4) };
        src.add_field("inum", int, 0).unwrap();
        // SAFETY: as above.
        let union = unsafe { sys::btf__add_union(src.0, c.as_ptr(), 8) };
        src.add_field("", inner, 0).unwrap();
        let outer = src.add_struct("ns_common", 16).unwrap();
        src.add_field("pad", int, 0).unwrap();
        src.add_field("", union, 64).unwrap();
        assert_eq!(find_member(&src, outer as u32, "inum"), Some((int as u32, 64)));
        assert_eq!(find_member(&src, outer as u32, "missing"), None);
    }
}
