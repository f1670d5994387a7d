//! The shared map of argument values (`arg_values` in bpf/recorder.bpf.c):
//! reading a container's values, and removing them when its record goes.

use std::mem::size_of;

use libbpf_rs::{MapCore, MapHandle};

use super::record::abi_of_row;
use super::skel::types::arg_key;
use crate::arg_rules::ArgValues;

// SAFETY: the generated key is repr(C) and made of integers whose sizes add
// up to its size (u32, u8, u8, u16, u64): no padding, every bit pattern is
// a valid value, which is what `Plain` asks for.
unsafe impl plain::Plain for arg_key {}
const _: () = assert!(size_of::<arg_key>() == 4 + 1 + 1 + 2 + 8);

fn key_of(bytes: &[u8]) -> Option<arg_key> {
    let mut key = arg_key::default();
    (bytes.len() == size_of::<arg_key>()).then_some(())?;
    plain::copy_from_bytes(&mut key, bytes).ok()?;
    Some(key)
}

/// The keys of `mntns`. Keys are walked, not looked up: the map holds a few
/// values per traced container.
fn keys_of(values: &MapHandle, mntns: u32) -> Vec<(Vec<u8>, arg_key)> {
    values.keys().filter_map(|bytes| Some((bytes.clone(), key_of(&bytes)?))).filter(|(_, k)| k.mntns == mntns).collect()
}

/// Adds the values the program kept for `mntns` to `out` (watch indexes and
/// ABIs as in the record's rows).
pub fn read(values: &MapHandle, mntns: u32, out: &mut ArgValues) {
    for (_, key) in keys_of(values, mntns) {
        let Some(abi) = abi_of_row(key.abi as usize) else { continue };
        out.entry((abi, key.watch as usize)).or_default().values.insert(key.value);
    }
}

/// Removes the values of `mntns`: when its record goes, and before a new
/// record for a reused namespace inode starts.
pub fn remove(values: &MapHandle, mntns: u32) {
    for (bytes, _) in keys_of(values, mntns) {
        let _ = values.delete(&bytes);
    }
}
