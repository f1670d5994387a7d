use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::*;

/// The kernel's BTF, or None (after saying so) on a kernel without it.
fn vmlinux(test: &str) -> Option<Btf<'static>> {
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        println!("SKIPPED: {test}: this kernel has no BTF (/sys/kernel/btf/vmlinux)");
        return None;
    }
    Some(Btf::from_vmlinux().unwrap())
}

/// Parses raw BTF the way libbpf reads the cache (btf_custom_path).
fn parse(dir: &Path, bytes: &[u8]) -> Btf<'static> {
    let path = dir.join("min.btf");
    fs::write(&path, bytes).unwrap();
    Btf::from_path(&path).unwrap()
}

/// The derivation finds what the program reads (task_struct.nsproxy is
/// how it finds a task's mount namespace) and leaves out the program's
/// own types, which the kernel does not have.
#[test]
fn the_program_s_kernel_types_come_from_its_object() {
    let Some(kernel) = vmlinux("the_program_s_kernel_types_come_from_its_object") else { return };
    let (structs, enums, _) = wanted(&kernel).unwrap();
    let task = structs.iter().find(|(n, _)| n == "task_struct").expect("task_struct is read");
    assert!(task.1.contains(&"nsproxy".to_string()), "{task:?}");
    assert!(!structs.iter().any(|(n, _)| n == "container_record" || n == "record_map"), "{structs:?}");
    assert!(enums.iter().any(|(n, _)| n == "bpf_func_id"), "{enums:?}");
    assert!(structs.iter().all(|(_, members)| !members.is_empty()), "{structs:?}");
}

#[test]
fn minimal_btf_has_the_kernels_offsets() {
    let Some(kernel) = vmlinux("minimal_btf_has_the_kernels_offsets") else { return };
    let (structs, enums, ids) = wanted(&kernel).unwrap();
    let bytes = minimal(&kernel).unwrap();
    assert!(bytes.len() < 2048, "minimal means small: {} bytes", bytes.len());
    let tmp = tempfile::tempdir().unwrap();
    let min = parse(tmp.path(), &bytes);
    for (name, members) in &structs {
        let full: Composite<'_> = kernel.type_by_id(ids[&(true, name.clone())]).unwrap();
        let small = kernel_type(&min, BtfKind::Struct, name).unwrap_or_else(|| panic!("{name} missing"));
        let small: Composite<'_> = min.type_by_id(small).unwrap();
        assert_eq!(small.size(), full.size(), "{name} size");
        for member in members {
            // A member this kernel lacks (read behind bpf_core_field_exists)
            // is absent from the minimal BTF too.
            let Some((_, full_offset)) = find_member(&kernel, full.type_id(), member) else {
                assert!(find_member(&min, small.type_id(), member).is_none(), "{name}.{member} made up");
                continue;
            };
            let (_, min_offset) = find_member(&min, small.type_id(), member).unwrap();
            assert_eq!(min_offset, full_offset, "{name}.{member} offset");
        }
    }
    for (name, _) in &enums {
        let e = kernel_type(&min, BtfKind::Enum, name).expect("5.11+ kernels have the helper");
        let e: Enum<'_> = min.type_by_id(e).unwrap();
        assert_eq!(e.len(), 1, "{name}: only what the program asks about");
    }
}

#[test]
fn members_inside_anonymous_unions_are_found() {
    let mut src = Writer::empty().unwrap();
    let int = src.add_int("unsigned int", 4, 0).unwrap();
    // struct ns_common { unsigned int pad[2]; union { struct { unsigned int inum; }; }; }
    let inner = src.add_struct("", 4).unwrap();
    src.add_field("inum", int, 0).unwrap();
    let union = src.add_union("", 8).unwrap();
    src.add_field("", inner, 0).unwrap();
    let outer = src.add_struct("ns_common", 16).unwrap();
    src.add_field("pad", int, 0).unwrap();
    src.add_field("", union, 64).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let btf = parse(tmp.path(), &src.raw());
    let outer = TypeId::from(outer as u32);
    assert_eq!(find_member(&btf, outer, "inum"), Some((TypeId::from(int as u32), 64)));
    assert_eq!(find_member(&btf, outer, "missing"), None);
}

#[test]
fn the_cache_is_written_once_in_a_closed_directory_without_leftovers() {
    if vmlinux("the_cache_is_written_once_in_a_closed_directory_without_leftovers").is_none() {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("cache");
    let path = cached_in(&dir).unwrap();
    assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, [path.file_name().unwrap()], "no temporary file left behind");
    let written = fs::metadata(&path).unwrap().modified().unwrap();
    assert_eq!(cached_in(&dir).unwrap(), path);
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), written, "reused, not rewritten");
}

#[test]
fn a_cache_directory_open_to_others_is_refused() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("cache");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let err = cached_in(&dir).unwrap_err();
    assert!(matches!(err, BtfError::Home(HomeError::Untrusted { .. })), "{err:?}");
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "nothing written there");
}

/// A kernel whose BTF has the function that marks preemptible syscall
/// tracepoint programs keeps it in the minimal BTF, where the tracer looks
/// for it at every load; one without it does not get it.
#[test]
fn the_preemption_mark_survives_into_the_minimal_btf() {
    let tmp = tempfile::tempdir().unwrap();
    let mut marked = Writer::empty().unwrap();
    marked.add_func(preemption::MARK).unwrap();
    for (kernel, expected) in [(marked.raw(), true), (Writer::empty().unwrap().raw(), false)] {
        let kernel = parse(tmp.path(), &kernel);
        assert_eq!(preemption::preemptible(&kernel), expected);
        let min = parse(tmp.path(), &minimal(&kernel).unwrap());
        assert_eq!(preemption::preemptible(&min), expected, "the mark in the minimal BTF");
    }
}
