//! Just enough ELF64 reading for two questions: what a kernel module's `.modinfo` says, and
//! whether a vmlinux carries the PVH entry note. Every x86_64 kernel and module is a 64-bit
//! little-endian ELF; offsets below are from the ELF64 header and section header layouts.

/// A section: its name, `sh_type` and contents.
pub struct Section<'a> {
    pub name: &'a [u8],
    pub kind: u32,
    pub data: &'a [u8],
}

/// `sh_type` of note sections.
pub const SHT_NOTE: u32 = 7;

/// All sections, or `None` if the bytes are not a well-formed ELF64 LE file.
pub fn sections(elf: &[u8]) -> Option<Vec<Section<'_>>> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?) as usize);
    let u32_at = |o: usize| Some(u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| usize::try_from(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?)).ok();
    // Magic, ELFCLASS64, ELFDATA2LSB.
    if elf.get(0..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let (shoff, shentsize, shnum, shstrndx) = (u64_at(0x28)?, u16_at(0x3a)?, u16_at(0x3c)?, u16_at(0x3e)?);
    let header = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
    // sh_name at 0, sh_type at 4, sh_offset at 0x18, sh_size at 0x20.
    let contents = |h: usize| elf.get(u64_at(h + 0x18)?..u64_at(h + 0x18)?.checked_add(u64_at(h + 0x20)?)?);
    let names = contents(header(shstrndx)?)?;
    (0..shnum)
        .map(|i| {
            let h = header(i)?;
            let start = u32_at(h)? as usize;
            let end = start + names.get(start..)?.iter().position(|b| *b == 0)?;
            let kind = u32_at(h + 4)?;
            // SHT_NOBITS (.bss) has a size but no bytes in the file.
            let data = if kind == 8 { &[][..] } else { contents(h)? };
            Some(Section { name: names.get(start..end)?, kind, data })
        })
        .collect()
}

/// The contents of the section called `name`.
pub fn section<'a>(elf: &'a [u8], name: &str) -> Option<&'a [u8]> {
    sections(elf)?.into_iter().find(|s| s.name == name.as_bytes()).map(|s| s.data)
}

/// Whether a note section holds a note of `owner` (e.g. `Xen`) and type `kind`.
pub fn has_note(elf: &[u8], owner: &str, kind: u32) -> bool {
    let Some(sections) = sections(elf) else { return false };
    sections.iter().filter(|s| s.kind == SHT_NOTE).any(|s| {
        // Each note: namesz, descsz, type (u32 each), then name and desc padded to 4 bytes.
        let mut rest = s.data;
        while rest.len() >= 12 {
            let word = |i: usize| u32::from_le_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]) as usize;
            let (namesz, descsz, note_kind) = (word(0), word(4), word(8) as u32);
            let name = rest.get(12..12 + namesz).unwrap_or_default();
            if note_kind == kind && name.strip_suffix(b"\0").unwrap_or(name) == owner.as_bytes() {
                return true;
            }
            let next = 12 + namesz.next_multiple_of(4) + descsz.next_multiple_of(4);
            rest = rest.get(next..).unwrap_or_default();
        }
        false
    })
}

/// Builds an ELF64 image holding the given sections, for tests.
#[cfg(test)]
pub fn build(sections: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut shstrtab = b"\0.shstrtab\0".to_vec();
    let mut elf = vec![0u8; 64];
    elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
    let mut headers = vec![[0u8; 64]];
    let mut header = |name: usize, kind: u32, offset: usize, size: usize| {
        let mut h = [0u8; 64];
        h[..4].copy_from_slice(&(name as u32).to_le_bytes());
        h[4..8].copy_from_slice(&kind.to_le_bytes());
        h[0x18..0x20].copy_from_slice(&(offset as u64).to_le_bytes());
        h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
        headers.push(h);
    };
    for (name, kind, data) in sections {
        let name_at = shstrtab.len();
        shstrtab.extend_from_slice(name.as_bytes());
        shstrtab.push(0);
        header(name_at, *kind, elf.len(), data.len());
        elf.extend_from_slice(data);
    }
    header(1, 3, elf.len(), shstrtab.len());
    elf.extend_from_slice(&shstrtab);
    let shoff = elf.len();
    let count = headers.len();
    for h in headers {
        elf.extend_from_slice(&h);
    }
    elf[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
    elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    elf[0x3c..0x3e].copy_from_slice(&(count as u16).to_le_bytes());
    elf[0x3e..0x40].copy_from_slice(&((count - 1) as u16).to_le_bytes());
    elf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(owner: &str, kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut n = Vec::new();
        n.extend_from_slice(&(owner.len() as u32 + 1).to_le_bytes());
        n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        n.extend_from_slice(&kind.to_le_bytes());
        n.extend_from_slice(owner.as_bytes());
        n.push(0);
        n.resize(n.len().next_multiple_of(4), 0);
        n.extend_from_slice(desc);
        n.resize(n.len().next_multiple_of(4), 0);
        n
    }

    #[test]
    fn finds_sections_by_name() {
        let elf = build(&[(".text", 1, b"code"), (".modinfo", 1, b"depends=\0")]);
        assert_eq!(section(&elf, ".modinfo"), Some(&b"depends=\0"[..]));
        assert_eq!(section(&elf, ".missing"), None);
        assert!(section(b"\x7fELF\x01\x01", ".text").is_none(), "32-bit is refused");
    }

    #[test]
    fn notes_table() {
        let notes = [note("GNU", 3, b"build-id"), note("Xen", 18, &[0; 8])].concat();
        let elf = build(&[(".notes", SHT_NOTE, &notes)]);
        assert!(has_note(&elf, "Xen", 18));
        assert!(has_note(&elf, "GNU", 3));
        assert!(!has_note(&elf, "Xen", 5));
        let not_a_note_section = build(&[(".data", 1, &notes)]);
        assert!(!has_note(&not_a_note_section, "Xen", 18));
    }
}
