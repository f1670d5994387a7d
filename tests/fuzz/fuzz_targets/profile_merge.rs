//! A baseline profile: parse, validate, merge a recording into it, write it
//! back. A baseline podman would load must give a merged profile podman
//! would load, that allows what was recorded unless the baseline names it,
//! and that reads back as written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_seccomp_bpf_hook::profile::{self, Profile};
use oci_seccomp_bpf_hook::syscalls::{Abi, NamedSyscalls};

fuzz_target!(|data: &[u8]| {
    let Ok(base) = serde_json::from_slice::<Profile>(data) else { return };
    if base.validate().is_err() {
        return;
    }
    let mut recorded = NamedSyscalls::default();
    recorded.names.extend(["read", "write", "execve", "getpid"].map(String::from));
    recorded.abis.extend([Abi::X86_64, Abi::X86]);
    let merged = profile::merge(Some(&base), &recorded);
    merged.validate().unwrap_or_else(|e| panic!("merged profile is invalid: {e}"));
    let named = merged.named_syscalls();
    for name in &recorded.names {
        assert!(named.contains(name.as_str()), "{name} is neither allowed nor named by the baseline");
    }
    assert_eq!(
        &merged.syscalls[..base.syscalls.len()],
        &base.syscalls[..],
        "the baseline's rules come first, verbatim"
    );
    let json = serde_json::to_vec_pretty(&merged).unwrap();
    let again: Profile = serde_json::from_slice(&json).unwrap();
    assert_eq!(again, merged, "the written profile reads back the same");
});
