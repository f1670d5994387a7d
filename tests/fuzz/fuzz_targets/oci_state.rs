//! The OCI state on stdin: never panics, errors stay short, and an
//! accepted state names a positive pid and a parsed request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_seccomp_bpf_hook::{limits, state};

fuzz_target!(|data: &[u8]| {
    match state::read(data) {
        Ok(c) => assert!(c.pid > 0, "{c:?}"),
        Err(e) => {
            let text = e.to_string();
            assert!(text.len() < limits::MAX_MESSAGE_BYTES, "error of {} bytes", text.len());
        }
    }
});
