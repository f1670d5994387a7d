//! The initramfs: the host's static busybox, the stage 1 script as `/init`, and the kernel's own
//! modules. Written as an uncompressed newc cpio archive, the format every kernel unpacks
//! without any decompressor configured, and small enough (a few MiB) to rebuild for every boot
//! so it can never be stale with respect to the harness.

use std::path::{Path, PathBuf};

use crate::modules::{self, ModulesError};

/// The busybox-static package puts a statically linked busybox here; a dynamic one would need
/// the host's libc inside the initramfs.
pub const BUSYBOX: &str = "/bin/busybox";

const INIT: &str = include_str!("guest/init.sh");

#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error("failed to read {path} (install busybox-static)")]
    Busybox { path: PathBuf, source: std::io::Error },
    #[error("failed to collect the kernel modules")]
    Modules(#[from] ModulesError),
    #[error("failed to write {path}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Builds the initramfs for the kernel whose modules live in `modules_dir` and writes it to `out`.
/// Returns the module names in load order, for the log.
pub fn build(modules_dir: &Path, out: &Path) -> Result<Vec<String>, InitramfsError> {
    let busybox = std::fs::read(BUSYBOX).map_err(|source| InitramfsError::Busybox { path: BUSYBOX.into(), source })?;
    let modules = modules::load_order(modules_dir)?;
    let mut cpio = Cpio::default();
    for dir in ["bin", "dev", "proc", "sys", "lower", "rw", "newroot", "modules"] {
        cpio.directory(dir);
    }
    // The kernel opens /dev/console for init's stdin/stdout before /init runs; without the node
    // the stage 1 messages would go nowhere.
    cpio.char_device("dev/console", 5, 1);
    cpio.file("bin/busybox", 0o755, &busybox);
    cpio.file("init", 0o755, INIT.as_bytes());
    for (index, module) in modules.iter().enumerate() {
        cpio.file(&format!("modules/{index:02}-{}.ko", module.name), 0o644, &module.bytes);
    }
    std::fs::write(out, cpio.finish()).map_err(|source| InitramfsError::Write { path: out.into(), source })?;
    Ok(modules.into_iter().map(|m| m.name).collect())
}

/// A writer for the "new ASCII" (newc, magic 070701) cpio format the kernel's initramfs unpacker
/// reads: per entry a 110-byte hex header, the NUL-terminated name and the data, each padded to 4.
#[derive(Default)]
pub struct Cpio {
    bytes: Vec<u8>,
    next_inode: u32,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

impl Cpio {
    pub fn directory(&mut self, name: &str) {
        self.entry(name, S_IFDIR | 0o755, 2, (0, 0), &[]);
    }

    pub fn file(&mut self, name: &str, permissions: u32, data: &[u8]) {
        self.entry(name, S_IFREG | permissions, 1, (0, 0), data);
    }

    pub fn char_device(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, S_IFCHR | 0o600, 1, (major, minor), &[]);
    }

    /// Appends the trailer entry that ends the archive.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, 1, (0, 0), &[]);
        self.bytes
    }

    fn entry(&mut self, name: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) {
        self.next_inode += 1;
        let fields = [
            self.next_inode,
            mode,
            0, // uid: root
            0, // gid: root
            nlink,
            0, // mtime: fixed, so the same inputs give the same archive
            data.len() as u32,
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check: only used by the crc format
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes.extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        self.bytes.resize(self.bytes.len().next_multiple_of(4), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_follow_the_newc_layout() {
        let mut cpio = Cpio::default();
        cpio.file("init", 0o755, b"#!/bin/sh\n");
        let bytes = cpio.finish();
        let header = std::str::from_utf8(&bytes[..110]).unwrap();
        assert_eq!(&header[..6], "070701");
        let field = |i: usize| u32::from_str_radix(&header[6 + 8 * i..14 + 8 * i], 16).unwrap();
        assert_eq!(field(1), 0o100755, "mode");
        assert_eq!(field(6), 10, "file size");
        assert_eq!(field(11), 5, "name size with its NUL");
        // 110 + 5 = 115, padded to 116; then the 10 data bytes padded to 12.
        assert_eq!(&bytes[110..115], b"init\0");
        assert_eq!(&bytes[116..126], b"#!/bin/sh\n");
        assert_eq!(&bytes[128..134], b"070701");
        assert!(bytes.windows(10).any(|w| w == b"TRAILER!!!"));
        assert_eq!(bytes.len() % 4, 0);
    }

    #[test]
    fn device_nodes_carry_their_numbers() {
        let mut cpio = Cpio::default();
        cpio.char_device("dev/console", 5, 1);
        let header = String::from_utf8(cpio.finish()[..110].to_vec()).unwrap();
        let field = |i: usize| u32::from_str_radix(&header[6 + 8 * i..14 + 8 * i], 16).unwrap();
        assert_eq!((field(1), field(9), field(10)), (0o020600, 5, 1));
    }
}
