//! Builds the two helpers the bench needs besides the hook itself:
//! - bpf/empty.bpf.c, the empty-program floor, as a libbpf-rs skeleton;
//! - probe/timeit.c, a static timer bind-mounted into containers (see the
//!   top of that file for why it exists).
use std::{env, path::PathBuf, process::Command};

use libbpf_cargo::SkeletonBuilder;

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    SkeletonBuilder::new()
        .source("bpf/empty.bpf.c")
        .clang_args(["-Wall", "-Werror"])
        .build_and_generate(out_dir.join("empty.skel.rs"))
        .expect("failed to build bench/bpf/empty.bpf.c: is clang installed (scripts/bootstrap.sh)?");

    // Static: the fixture image has no libc for it to load.
    let timeit = out_dir.join("timeit");
    let status = Command::new("gcc")
        .args(["-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&timeit)
        .arg("probe/timeit.c")
        .status()
        .expect("failed to run gcc for bench/probe/timeit.c");
    assert!(status.success(), "gcc failed on bench/probe/timeit.c (needs glibc's static libc, libc6-dev)");
    println!("cargo:rustc-env=BENCH_TIMEIT={}", timeit.display());

    for f in ["bpf/empty.bpf.c", "../bpf/vmlinux_min.h", "probe/timeit.c"] {
        println!("cargo:rerun-if-changed={f}");
    }
}
