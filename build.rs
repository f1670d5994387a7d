//! Compiles bpf/recorder.bpf.c with clang and generates its libbpf-rs skeleton.
use std::{env, path::PathBuf};

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "bpf/recorder.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("recorder.skel.rs");
    SkeletonBuilder::new()
        .source(SRC)
        .clang_args(["-Wall", "-Werror"])
        .build_and_generate(&out)
        .expect("failed to build bpf/recorder.bpf.c: is clang installed (just deps)?");
    for f in [SRC, "bpf/recorder.h", "bpf/vmlinux_min.h"] {
        println!("cargo:rerun-if-changed={f}");
    }
}
