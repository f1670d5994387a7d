//! vm-harness: runs one command on Debian kernels under QEMU, with the host root shared
//! read-only, so the project's tests meet every kernel of the matrix.
//!
//! The data flow is the module order: `kernels` (what to boot) -> `fetch` (Debian's archive into
//! `vm/cache`) -> `modules` + `initramfs` (stage 1) -> `guest` (stage 2 and the share) ->
//! `qemu` (the command line) -> `vm` (one boot) -> `matrix` (many) -> `report` (the table).
//!
//! The userland tier runs on the host kernel instead: `rootfs` (a Debian root per userland,
//! cached under target/) -> `chroot` (the command inside it) -> `userland` (each, and the table).
//! `systemd` boots such a root under QEMU instead, with systemd as PID 1 (stage 1 and `vm` as
//! above, `guest::SystemdGuest` for what differs).

pub mod bzimage;
pub mod chroot;
pub mod elf;
pub mod fetch;
pub mod guest;
pub mod initramfs;
pub mod kernels;
pub mod matrix;
pub mod modules;
pub mod qemu;
pub mod report;
pub mod rootfs;
pub mod systemd;
pub mod tool;
pub mod userland;
pub mod vm;

/// Process exit codes, documented in `--help`.
pub mod exit {
    /// Every kernel ran the command and it succeeded.
    pub const OK: i32 = 0;
    /// The command failed (non-zero exit or failed tests) on at least one kernel.
    pub const TEST_FAILURE: i32 = 1;
    /// Bad command line or vm/KERNELS (clap also exits 2 on usage errors).
    pub const USAGE: i32 = 2;
    /// A kernel could not give a result: download, boot, panic, guest setup or timeout.
    /// Takes precedence over TEST_FAILURE, since the results are incomplete.
    pub const INFRA: i32 = 3;
}
