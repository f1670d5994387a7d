//! Booting the uncompressed kernel through its PVH entry point instead of the bzImage.
//!
//! Under TCG a bzImage spends time decompressing itself in emulated code (measured here: boot
//! 9.2-9.9 s with the bzImage, 8.4-9.1 s with the vmlinux, for 6.18). QEMU can instead load the ELF vmlinux directly when it carries
//! the Xen PVH entry note (Debian builds with CONFIG_PVH=y), so we decompress it once on the host
//! with the real xz/zstd and cache it. Any kernel where that does not work boots the bzImage.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::elf;
use crate::tool::{self, ToolError};

/// Why a kernel cannot boot through PVH; written to `vmlinux.unusable` and the bzImage is used.
#[derive(Debug, thiserror::Error)]
pub enum BzImageError {
    #[error("failed to {what} {path}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("no xz or zstd payload in the bzImage")]
    NoPayload,
    #[error("failed to decompress the bzImage payload")]
    Decompress(#[from] ToolError),
    #[error("the kernel has no PVH entry note (CONFIG_PVH off)")]
    NoPvhNote,
}

/// XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit entry point QEMU's PVH loader jumps to.
const PVH_NOTE: u32 = 18;

/// The compressed kernel inside a bzImage and the host tool that decompresses it.
pub fn payload(bz: &[u8]) -> Option<(&'static str, &[u8])> {
    let u32_at = |o: usize| Some(u32::from_le_bytes(bz.get(o..o + 4)?.try_into().ok()?) as usize);
    // Boot protocol header ("HdrS") of version 2.08 or later, which has payload_offset/length.
    let version = u16::from_le_bytes(bz.get(0x206..0x208)?.try_into().ok()?);
    if bz.get(0x202..0x206)? != b"HdrS" || version < 0x208 {
        return None;
    }
    // setup_sects: 0 means 4 for historical reasons. The protected-mode code follows them.
    let setup_sects = match *bz.get(0x1f1)? {
        0 => 4,
        n => n as usize,
    };
    let start = (setup_sects + 1) * 512 + u32_at(0x248)?;
    let data = bz.get(start..start.checked_add(u32_at(0x24c)?)?)?;
    // The kernel build appends the uncompressed size (4 bytes) after xz and zstd streams; the
    // decompressors would call it trailing garbage.
    let trimmed = data.get(..data.len().checked_sub(4)?)?;
    if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(("zstd", trimmed))
    } else if data.starts_with(b"\xfd7zXZ\0") {
        Some(("xz", trimmed))
    } else {
        None
    }
}

/// The image QEMU should boot for `vmlinuz`: a PVH-capable vmlinux cached in `dir` when one can
/// be made, `vmlinuz` otherwise. The answer is cached too (`vmlinux` or `vmlinux.unusable`).
pub fn boot_image(vmlinuz: &Path, dir: &Path) -> PathBuf {
    let vmlinux = dir.join("vmlinux");
    let unusable = dir.join("vmlinux.unusable");
    if vmlinux.is_file() {
        return vmlinux;
    }
    if unusable.is_file() {
        return vmlinuz.to_owned();
    }
    match extract(vmlinuz, &vmlinux) {
        Ok(()) => vmlinux,
        Err(reason) => {
            let _ = std::fs::write(&unusable, format!("{:#}\n", anyhow::Error::from(reason)));
            vmlinuz.to_owned()
        }
    }
}

fn extract(vmlinuz: &Path, vmlinux: &Path) -> Result<(), BzImageError> {
    let io = |what, path: &Path| {
        let path = path.to_owned();
        move |source| BzImageError::Io { what, path, source }
    };
    let bz = std::fs::read(vmlinuz).map_err(io("read", vmlinuz))?;
    let (program, compressed) = payload(&bz).ok_or(BzImageError::NoPayload)?;
    let staged = vmlinux.with_extension("payload");
    std::fs::write(&staged, compressed).map_err(io("write", &staged))?;
    let decompressed = tool::output(Command::new(program).arg("-dc").arg(&staged));
    let _ = std::fs::remove_file(&staged);
    let elf = decompressed?;
    if !elf::has_note(&elf, "Xen", PVH_NOTE) {
        return Err(BzImageError::NoPvhNote);
    }
    // Through a temporary name, so a partial file never passes for a cached kernel.
    let partial = vmlinux.with_extension("partial");
    std::fs::write(&partial, elf).and_then(|()| std::fs::rename(&partial, vmlinux)).map_err(io("write", vmlinux))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bzimage(setup_sects: u8, version: u16, payload: &[u8]) -> Vec<u8> {
        let mut bz = vec![0u8; 0x300];
        bz[0x1f1] = setup_sects;
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        bz[0x206..0x208].copy_from_slice(&version.to_le_bytes());
        bz[0x248..0x24c].copy_from_slice(&16u32.to_le_bytes());
        bz[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        let sects = if setup_sects == 0 { 4 } else { setup_sects as usize };
        bz.resize((sects + 1) * 512 + 16, 0);
        bz.extend_from_slice(payload);
        bz
    }

    #[test]
    fn payload_table() {
        let zstd = [&[0x28, 0xb5, 0x2f, 0xfd][..], b"data", b"SIZE"].concat();
        let xz = [&b"\xfd7zXZ\0"[..], b"data", b"SIZE"].concat();
        let gzip = [&[0x1f, 0x8b][..], b"data"].concat();
        let zstd_trimmed = &zstd[..zstd.len() - 4];
        let xz_trimmed = &xz[..xz.len() - 4];
        type Expected<'a> = Option<(&'a str, &'a [u8])>;
        let cases: [(Vec<u8>, Expected); 5] = [
            (bzimage(39, 0x20f, &zstd), Some(("zstd", zstd_trimmed))),
            (bzimage(0, 0x20f, &xz), Some(("xz", xz_trimmed))),
            (bzimage(30, 0x20f, &gzip), None),
            (bzimage(30, 0x207, &zstd), None),
            (b"not a kernel".to_vec(), None),
        ];
        for (bz, expected) in cases {
            assert_eq!(payload(&bz), expected);
        }
    }
}
