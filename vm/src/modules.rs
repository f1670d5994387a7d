//! Which kernel modules the initramfs must carry, and in what order to insmod them.
//!
//! Debian's kernel packages do not ship `modules.dep` (the postinst runs depmod), and the host has
//! no depmod. The dependency list depmod would write is already in every module: modpost stores
//! it as `depends=a,b` in the `.modinfo` ELF section. We read that from the package's own files,
//! so each kernel gets exactly its own order (5.10 needs fscache, 6.12+ builds virtio in).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tool::{self, ToolError};

/// What the guest needs to mount the host root: the virtio PCI transport, the 9p filesystem over
/// virtio, and overlayfs for the writable layer. Their dependencies are found, not listed.
pub const ROOTS: &[&str] = &["virtio_pci", "9pnet_virtio", "9p", "overlay"];

#[derive(Debug, thiserror::Error)]
pub enum ModulesError {
    #[error("failed to read {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("failed to decompress {path}")]
    Decompress { path: PathBuf, source: ToolError },
    #[error("{path} is not a 64-bit little-endian ELF module with a .modinfo section")]
    NotAModule { path: PathBuf },
    #[error("module {module} depends on {dependency}, which the package does not contain")]
    MissingDependency { module: String, dependency: String },
    #[error("module dependencies loop through {module}")]
    Cycle { module: String },
}

/// A module to load: its name and its uncompressed bytes.
pub struct Module {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The modules for [`ROOTS`] and their dependencies, dependencies first. A root with no file in
/// the package is built into the kernel and needs nothing.
pub fn load_order(modules_dir: &Path) -> Result<Vec<Module>, ModulesError> {
    let index = index_files(&modules_dir.join("kernel"))?;
    let mut loaded: HashMap<String, Vec<String>> = HashMap::new();
    let mut order = Vec::new();
    for root in ROOTS {
        if index.contains_key(&normalize(root)) {
            visit(&normalize(root), &index, &mut loaded, &mut Vec::new(), &mut order)?;
        }
    }
    Ok(order)
}

/// Depth-first: every dependency is pushed before the module that needs it, each module once.
fn visit(
    name: &str,
    index: &HashMap<String, PathBuf>,
    seen: &mut HashMap<String, Vec<String>>,
    stack: &mut Vec<String>,
    order: &mut Vec<Module>,
) -> Result<(), ModulesError> {
    if seen.contains_key(name) {
        return Ok(());
    }
    if stack.iter().any(|s| s == name) {
        return Err(ModulesError::Cycle { module: name.to_owned() });
    }
    let path = &index[name];
    let bytes = read_module(path)?;
    let deps = modinfo_depends(&bytes).ok_or_else(|| ModulesError::NotAModule { path: path.clone() })?;
    stack.push(name.to_owned());
    for dep in &deps {
        if !index.contains_key(dep) {
            return Err(ModulesError::MissingDependency { module: name.to_owned(), dependency: dep.clone() });
        }
        visit(dep, index, seen, stack, order)?;
    }
    stack.pop();
    seen.insert(name.to_owned(), deps);
    order.push(Module { name: name.to_owned(), bytes });
    Ok(())
}

/// Module name -> file, for every `.ko`, `.ko.xz` and `.ko.zst` under `dir`.
fn index_files(dir: &Path) -> Result<HashMap<String, PathBuf>, ModulesError> {
    let mut index = HashMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| ModulesError::Read { path: dir.clone(), source })?;
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Some(name) = module_name(&path) {
                index.insert(name, path);
            }
        }
    }
    Ok(index)
}

/// `kernel/drivers/virtio/virtio-rng.ko.xz` -> `virtio_rng`: the kernel treats `-` and `_` alike
/// in module names and `depends=` uses `_`.
pub fn module_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"].iter().find_map(|ext| file.strip_suffix(ext))?;
    Some(normalize(stem))
}

fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The module's bytes as insmod needs them: busybox insmod cannot decompress, so we do it here.
fn read_module(path: &Path) -> Result<Vec<u8>, ModulesError> {
    let name = path.to_string_lossy();
    let decompressor = if name.ends_with(".xz") {
        Some("xz")
    } else if name.ends_with(".zst") {
        Some("zstd")
    } else if name.ends_with(".gz") {
        Some("gzip")
    } else {
        None
    };
    match decompressor {
        None => std::fs::read(path).map_err(|source| ModulesError::Read { path: path.into(), source }),
        Some(program) => tool::output(Command::new(program).arg("-dc").arg(path))
            .map_err(|source| ModulesError::Decompress { path: path.into(), source }),
    }
}

/// The `depends=` list of a module's `.modinfo` section; `None` if the bytes are not such a module.
pub fn modinfo_depends(elf: &[u8]) -> Option<Vec<String>> {
    let modinfo = crate::elf::section(elf, ".modinfo")?;
    let depends = modinfo.split(|b| *b == 0).find_map(|entry| entry.strip_prefix(b"depends=")).unwrap_or_default();
    Some(String::from_utf8_lossy(depends).split(',').filter(|d| !d.is_empty()).map(normalize).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_module(modinfo: &[u8]) -> Vec<u8> {
        crate::elf::build(&[(".modinfo", 1, modinfo)])
    }

    #[test]
    fn depends_come_from_modinfo() {
        let cases: &[(&[u8], &[&str])] = &[
            (b"license=GPL\0depends=9pnet,netfs,fscache\0name=9p\0", &["9pnet", "netfs", "fscache"]),
            (b"depends=\0name=netfs\0", &[]),
            (b"name=virtio\0", &[]),
            (b"depends=virtio-pci-legacy-dev\0", &["virtio_pci_legacy_dev"]),
        ];
        for (modinfo, expected) in cases {
            assert_eq!(modinfo_depends(&fake_module(modinfo)).unwrap(), *expected);
        }
    }

    #[test]
    fn non_elf_bytes_are_rejected() {
        assert_eq!(modinfo_depends(b"not an elf"), None);
        assert_eq!(modinfo_depends(&fake_module(b"x")[..70]), None);
    }

    #[test]
    fn module_names_drop_extension_and_dashes() {
        let cases = [
            ("kernel/fs/9p/9p.ko", Some("9p")),
            ("kernel/net/9p/9pnet_virtio.ko.xz", Some("9pnet_virtio")),
            ("kernel/drivers/char/hw_random/virtio-rng.ko.zst", Some("virtio_rng")),
            ("kernel/fs/overlayfs/overlay.ko.gz", Some("overlay")),
            ("modules.order", None),
        ];
        for (path, expected) in cases {
            assert_eq!(module_name(Path::new(path)).as_deref(), expected, "{path}");
        }
    }

    #[test]
    fn dependencies_load_first_and_once() {
        let dir = std::env::temp_dir().join(format!("vm-harness-modules-{}", std::process::id()));
        let kernel = dir.join("kernel");
        std::fs::create_dir_all(&kernel).unwrap();
        for (name, deps) in
            [("9p", "9pnet,netfs"), ("9pnet", ""), ("netfs", ""), ("9pnet_virtio", "9pnet"), ("overlay", "")]
        {
            std::fs::write(kernel.join(format!("{name}.ko")), fake_module(format!("depends={deps}\0").as_bytes()))
                .unwrap();
        }
        let order: Vec<String> = load_order(&dir).unwrap().into_iter().map(|m| m.name).collect();
        std::fs::remove_dir_all(&dir).unwrap();
        // virtio_pci has no file: built in, as on 6.12 and later.
        assert_eq!(order, ["9pnet", "9pnet_virtio", "netfs", "9p", "overlay"]);
    }
}
