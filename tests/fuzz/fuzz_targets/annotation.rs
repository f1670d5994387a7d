//! The annotation grammar: never panics, and an error, whatever the input,
//! stays short enough for the 64 KiB pipe runc reads after the hook exits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_seccomp_bpf_hook::annotation;

fuzz_target!(|value: &str| {
    match annotation::parse(value) {
        Ok(request) => {
            assert!(request.output.is_absolute(), "{request:?}");
            assert!(request.input.as_ref().is_none_or(|i| i.is_absolute()), "{request:?}");
        }
        Err(e) => assert!(e.to_string().len() < 2048, "error of {} bytes", e.to_string().len()),
    }
});
