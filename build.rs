//! Compiles bpf/recorder.bpf.c with clang and generates its libbpf-rs
//! skeleton. Also names the compiled object by a hash of its bytes: tracers
//! share one pinned program only when they were built from the same object.
use std::{env, fs, path::PathBuf};

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "bpf/recorder.bpf.c";

/// FNV-1a: small, stable across Rust versions, enough to tell objects apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let obj = out_dir.join("recorder.bpf.o");
    SkeletonBuilder::new()
        .source(SRC)
        .obj(&obj)
        .clang_args(["-Wall", "-Werror"])
        .build_and_generate(out_dir.join("recorder.skel.rs"))
        .expect("failed to build bpf/recorder.bpf.c: is clang installed (scripts/bootstrap.sh)?");
    let bytes = fs::read(&obj).expect("libbpf-cargo wrote the object");
    println!("cargo:rustc-env=RECORDER_BPF_ID={:016x}", fnv1a(&bytes));
    for f in [SRC, "bpf/recorder.h", "bpf/vmlinux_min.h"] {
        println!("cargo:rerun-if-changed={f}");
    }
}
