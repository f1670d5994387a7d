//! The QEMU command line, one pure function per concern so each flag's reason sits next to it
//! and the table tests below pin what we pass.

use std::path::{Path, PathBuf};

pub const QEMU: &str = "qemu-system-x86_64";

/// How the guest CPU is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation: only where a probe boot showed it works (see `vm::probe_kvm`).
    Kvm,
    /// Emulation: slow but works everywhere, including hosts whose /dev/kvm hangs normal kernels.
    Tcg,
}

/// A host directory shown to the guest over virtio-9p.
#[derive(Debug, Clone)]
pub struct Share {
    /// The name the guest mounts (`mount -t 9p TAG DIR`).
    pub tag: String,
    pub path: PathBuf,
    pub readonly: bool,
}

/// Everything that varies between boots.
#[derive(Debug, Clone)]
pub struct VmConfig {
    pub accel: Accel,
    pub memory_mib: u32,
    pub cpus: u32,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// Kernel parameters on top of [`BASE_APPEND`].
    pub extra_append: Vec<String>,
    pub shares: Vec<Share>,
    pub console_log: PathBuf,
}

/// The full argument list, without the program name.
pub fn command_line(cfg: &VmConfig) -> Vec<String> {
    let mut args = defaults();
    args.extend(machine(cfg.accel));
    args.extend(resources(cfg.memory_mib, cfg.cpus));
    args.extend(boot(&cfg.kernel, &cfg.initrd, &cfg.extra_append));
    for share in &cfg.shares {
        args.extend(virtfs(share));
    }
    args.extend(console(&cfg.console_log));
    args
}

fn strings<const N: usize>(items: [&str; N]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Start from an empty machine.
pub fn defaults() -> Vec<String> {
    strings([
        // No default NIC, VGA, floppy, monitor or serial: the guest gets only what we add below,
        // boots faster, and has no network by construction.
        "-nodefaults",
        // Ignore any qemu.conf on the host so every machine boots the same guest.
        "-no-user-config",
    ])
}

/// Machine type and accelerator.
pub fn machine(accel: Accel) -> Vec<String> {
    let (accel, cpu) = match accel {
        // The host CPU as is: the fastest model, and the only one KVM can run without masking.
        Accel::Kvm => ("kvm", "host"),
        // Every feature TCG emulates, rdrand included, so early getrandom() never stalls (5.10).
        Accel::Tcg => ("tcg", "max"),
    };
    vec![
        // q35: a PCIe machine with ACPI, so `poweroff -f` in the guest ends QEMU.
        "-machine".into(),
        "q35".into(),
        "-accel".into(),
        accel.into(),
        "-cpu".into(),
        cpu.into(),
    ]
}

/// Guest memory and vCPUs.
pub fn resources(memory_mib: u32, cpus: u32) -> Vec<String> {
    // Memory is a ceiling: the host only pays for pages the guest touches (about 600 MB for
    // a podman run), which is what lets several VMs run side by side.
    vec!["-m".into(), memory_mib.to_string(), "-smp".into(), cpus.to_string()]
}

/// Kernel parameters every boot gets.
pub const BASE_APPEND: &[&str] = &[
    // The serial port is the only console: its output is the console log kept on disk.
    "console=ttyS0",
    // Reboot at once on panic; with -no-reboot that ends QEMU instead of hanging until timeout.
    "panic=-1",
    // An oops in a test (say a BPF program crashing the kernel) is a panic, not a limping guest.
    "oops=panic",
    // Our init lives in the initramfs; no root= device exists.
    "rdinit=/init",
    // Warnings and errors only: every console byte costs time under emulation.
    "loglevel=4",
    // Seed the RNG from rdrand so podman and Go programs do not wait for entropy.
    "random.trust_cpu=on",
    // The guest only runs our tests; speculation mitigations just slow emulation down.
    "mitigations=off",
];

/// Kernel, initramfs and the command line.
pub fn boot(kernel: &Path, initrd: &Path, extra_append: &[String]) -> Vec<String> {
    let append: Vec<&str> = BASE_APPEND.iter().copied().chain(extra_append.iter().map(String::as_str)).collect();
    vec![
        // Direct kernel boot: no disk image, no bootloader.
        "-kernel".into(),
        kernel.display().to_string(),
        "-initrd".into(),
        initrd.display().to_string(),
        "-append".into(),
        append.join(" "),
        // A guest reboot (including the one panic=-1 asks for) exits QEMU.
        "-no-reboot".into(),
    ]
}

/// One virtio-9p share.
pub fn virtfs(share: &Share) -> Vec<String> {
    let mut spec = format!(
        "local,path={},mount_tag={},security_model=none,multidevs=remap",
        escape_option(&share.path.display().to_string()),
        escape_option(&share.tag),
    );
    // security_model=none: the guest sees the host's real owners and modes, and QEMU (root)
    // can read every file, as root on the host could.
    // multidevs=remap: the host root spans several filesystems; remapping keeps their inode
    // numbers from colliding in the guest (overlayfs and podman compare them).
    if share.readonly {
        // The host root must never be changed by a test: writes go to the guest's tmpfs overlay.
        spec.push_str(",readonly=on");
    }
    vec!["-virtfs".into(), spec]
}

/// Where the guest's console goes.
pub fn console(log: &Path) -> Vec<String> {
    vec![
        // No window and no terminal attached: the harness runs unattended.
        "-display".into(),
        "none".into(),
        // ttyS0 into a file: the console log kept for every boot, read for panics and markers.
        "-serial".into(),
        format!("file:{}", log.display()),
    ]
}

/// QEMU splits option values on `,`; a literal comma is written twice.
pub fn escape_option(value: &str) -> String {
    value.replace(',', ",,")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(args: &[String]) -> Vec<(String, String)> {
        args.chunks(2).map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default())).collect()
    }

    #[test]
    fn machine_per_accelerator() {
        let cases = [
            (Accel::Kvm, ["-machine q35", "-accel kvm", "-cpu host"]),
            (Accel::Tcg, ["-machine q35", "-accel tcg", "-cpu max"]),
        ];
        for (accel, expected) in cases {
            let got: Vec<String> = pairs(&machine(accel)).into_iter().map(|(f, v)| format!("{f} {v}")).collect();
            assert_eq!(got, expected, "{accel:?}");
        }
    }

    #[test]
    fn resources_table() {
        let cases = [((2048, 1), ["-m", "2048", "-smp", "1"]), ((512, 2), ["-m", "512", "-smp", "2"])];
        for ((memory, cpus), expected) in cases {
            assert_eq!(resources(memory, cpus), expected);
        }
    }

    #[test]
    fn boot_ends_qemu_on_panic_and_appends_extras() {
        let cases: [(&[String], &str); 2] = [(&[], ""), (&["vmharness.probe".to_owned()], " vmharness.probe")];
        for (extra, suffix) in cases {
            let args = boot(Path::new("/k/vmlinuz"), Path::new("/o/initramfs.cpio"), extra);
            assert_eq!(args[..4], ["-kernel", "/k/vmlinuz", "-initrd", "/o/initramfs.cpio"]);
            assert_eq!(args[4], "-append");
            assert!(args[5].starts_with("console=ttyS0 panic=-1 "), "{}", args[5]);
            assert!(args[5].ends_with(&format!("mitigations=off{suffix}")), "{}", args[5]);
            assert_eq!(args[6], "-no-reboot");
        }
    }

    #[test]
    fn virtfs_table() {
        let cases = [
            (
                Share { tag: "rootfs".into(), path: "/".into(), readonly: true },
                "local,path=/,mount_tag=rootfs,security_model=none,multidevs=remap,readonly=on",
            ),
            (
                Share { tag: "harness".into(), path: "/w/out,1/share".into(), readonly: false },
                "local,path=/w/out,,1/share,mount_tag=harness,security_model=none,multidevs=remap",
            ),
        ];
        for (share, expected) in cases {
            assert_eq!(virtfs(&share), ["-virtfs", expected]);
        }
    }

    #[test]
    fn console_goes_to_the_log_file() {
        assert_eq!(console(Path::new("/o/console.log")), ["-display", "none", "-serial", "file:/o/console.log"]);
    }

    #[test]
    fn command_line_has_every_concern_once() {
        let cfg = VmConfig {
            accel: Accel::Tcg,
            memory_mib: 2048,
            cpus: 1,
            kernel: "/k".into(),
            initrd: "/i".into(),
            extra_append: vec![],
            shares: vec![
                Share { tag: "rootfs".into(), path: "/".into(), readonly: true },
                Share { tag: "harness".into(), path: "/s".into(), readonly: false },
            ],
            console_log: "/c".into(),
        };
        let args = command_line(&cfg);
        for flag in ["-nodefaults", "-machine", "-m", "-kernel", "-append", "-no-reboot", "-serial"] {
            assert_eq!(args.iter().filter(|a| *a == flag).count(), 1, "{flag}");
        }
        assert_eq!(args.iter().filter(|a| *a == "-virtfs").count(), 2);
    }
}
