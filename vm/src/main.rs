//! Command line of the VM harness: parse, dispatch, map outcomes to exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use vm_harness::chroot::ChrootJob;
use vm_harness::fetch::{Cache, Kernel};
use vm_harness::guest::{self, Job};
use vm_harness::report::{self, Row, Verdict};
use vm_harness::userland::{self, UserlandJob};
use vm_harness::vm::{self, AccelMode, Outcome, VmOptions};
use vm_harness::{exit, kernels, matrix, rootfs, systemd};

const EXIT_CODES: &str = "Exit codes:
  0  the command succeeded on every kernel
  1  the command failed (non-zero exit or failed tests) on at least one kernel
  2  bad command line or vm/KERNELS
  3  infrastructure failure on at least one kernel: download, boot, kernel panic, guest setup
     (e.g. podman load) or timeout; the console log is in vm/out/<version>/console.log";

#[derive(Parser)]
#[command(about = "Boot Debian kernels under QEMU and run one command in each", after_help = EXIT_CODES)]
struct Cli {
    /// The kernel list.
    #[arg(long, global = true, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/KERNELS"))]
    kernels_file: PathBuf,
    /// Downloaded kernels and apt state, by exact version.
    #[arg(long, global = true, env = "VM_HARNESS_CACHE", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/cache"))]
    cache: PathBuf,
    /// Console logs, command output and initramfs of each boot.
    #[arg(long, global = true, env = "VM_HARNESS_OUT", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/out"))]
    out: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Resolve the newest version of each series (all when none given) and download it.
    Fetch {
        /// Kernel series from vm/KERNELS, e.g. 5.10 7.3.
        series: Vec<String>,
    },
    /// Boot one kernel, run the command, stream its output; exit as documented below.
    Run {
        /// Kernel series from vm/KERNELS, e.g. 6.1.
        #[arg(long)]
        kernel: String,
        #[command(flatten)]
        vm: VmArgs,
    },
    /// Run the command on each kernel (all when none given), several VMs at a time, and print
    /// a table of passed/failed/skipped tests per kernel.
    Matrix {
        /// Kernel series from vm/KERNELS, e.g. 5.10 7.3.
        series: Vec<String>,
        /// VMs at a time [default: what memory and cores allow].
        #[arg(long)]
        jobs: Option<usize>,
        #[command(flatten)]
        vm: VmArgs,
    },
    /// Run the command on the host kernel inside Debian userlands (all when none given) with newer
    /// podman, runc and crun: a cached mmdebstrap root as a chroot, in a private mount namespace.
    Userland {
        /// Userlands, e.g. trixie sid.
        names: Vec<String>,
        /// Where roots are cached, by the versions of their packages.
        #[arg(long, value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/userlands"))]
        roots: PathBuf,
        /// `podman load -i` this archive in each root before the command.
        #[arg(long, value_name = "FILE")]
        image_archive: Option<PathBuf>,
        /// Environment for the command, on top of PATH and HOME (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE", value_parser = guest::parse_env)]
        env: Vec<(String, String)>,
        /// The command and its arguments, run as root in the chroot from the current directory,
        /// which is bound into the root at the same path.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Boot a userland's root on one kernel with systemd as PID 1 (cgroup v2, journald, podman's
    /// systemd cgroup manager), install the package, run the command; the repository is shared.
    Systemd {
        /// The userland, e.g. sid.
        userland: String,
        /// Kernel series from vm/KERNELS, e.g. 7.3.
        #[arg(long)]
        kernel: String,
        /// `apt-get install` this package at boot, before the command.
        #[arg(long, value_name = "FILE")]
        deb: Option<PathBuf>,
        /// Where roots are cached, by the versions of their packages.
        #[arg(long, value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/userlands"))]
        roots: PathBuf,
        #[command(flatten)]
        vm: VmArgs,
    },
}

#[derive(Args)]
struct VmArgs {
    /// `podman load -i` this archive in the guest before the command.
    #[arg(long, value_name = "FILE")]
    image_archive: Option<PathBuf>,
    /// Seconds before a VM counts as hung (generous: TCG is 10-20x slower than the host).
    #[arg(long, value_name = "SECS", default_value_t = 2700)]
    timeout: u64,
    /// The command's working directory [default: the current one].
    #[arg(long, value_name = "DIR")]
    workdir: Option<PathBuf>,
    /// Environment for the command, on top of PATH, HOME and CONTAINERS_CONF (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = guest::parse_env)]
    env: Vec<(String, String)>,
    /// Guest memory in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    memory: u32,
    /// Guest vCPUs.
    #[arg(long, default_value_t = 1)]
    cpus: u32,
    /// Accelerator: auto probes KVM with a quick boot and falls back to TCG.
    #[arg(long, value_enum, env = "VM_HARNESS_ACCEL", default_value = "auto")]
    accel: AccelMode,
    /// The command and its arguments, run as root in the guest with the host's paths.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match dispatch(&cli) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("vm-harness: error: {:#}", failure.error);
            failure.code
        }
    };
    ExitCode::from(code as u8)
}

/// An error and the exit code it maps to.
struct Failure {
    error: anyhow::Error,
    code: i32,
}

fn usage(error: impl Into<anyhow::Error>) -> Failure {
    Failure { error: error.into(), code: exit::USAGE }
}

fn infra(error: impl Into<anyhow::Error>) -> Failure {
    Failure { error: error.into(), code: exit::INFRA }
}

fn dispatch(cli: &Cli) -> Result<i32, Failure> {
    let specs = kernels::load(&cli.kernels_file).map_err(usage)?;
    let mut cache = Cache::new(cli.cache.clone());
    let mut kernels_for = |series: &[String], fetch: bool| -> Result<Vec<Kernel>, Failure> {
        let selected = kernels::select(&cli.kernels_file, &specs, series).map_err(usage)?;
        selected
            .iter()
            .map(|spec| if fetch { cache.fetch(spec) } else { cache.cached_or_fetch(spec) })
            .collect::<Result<_, _>>()
            .map_err(infra)
    };
    match &cli.command {
        Command::Fetch { series } => {
            for k in kernels_for(series, true)? {
                println!("{}\t{}\t{}\t{}", k.series, k.version, k.release, k.boot_image.display());
            }
            Ok(exit::OK)
        }
        Command::Run { kernel, vm } => {
            let kernel = kernels_for(std::slice::from_ref(kernel), false)?.remove(0);
            let (job, opts) = prepare(vm, &kernel, &cli.out)?;
            let report = vm::run(&kernel, &job, &opts, &cli.out, Some(&mut std::io::stdout()));
            let (series, version) = (&kernel.series, &kernel.version);
            let boot = report.boot.map_or("-".into(), |b| format!("{:.1}s", b.as_secs_f64()));
            let wall = report.wall.as_secs_f64();
            Ok(match report.outcome {
                Outcome::Exited { status, .. } => {
                    eprintln!("vm-harness: {series} ({version}): exit status {status}; boot {boot}, wall {wall:.1}s");
                    if status == 0 {
                        exit::OK
                    } else {
                        exit::TEST_FAILURE
                    }
                }
                Outcome::Infra(reason) => {
                    eprintln!("vm-harness: {series} ({version}): infrastructure failure: {reason}");
                    exit::INFRA
                }
            })
        }
        Command::Userland { names, roots, image_archive, env, command } => {
            let job = UserlandJob {
                apt_dir: cli.cache.join("apt"),
                roots: roots.clone(),
                template: ChrootJob {
                    root: PathBuf::new(),
                    workdir: PathBuf::new(),
                    repo: PathBuf::new(),
                    image_archive: image_archive.clone(),
                    env: env.clone(),
                    command: command.clone(),
                },
            };
            userlands(names, job)
        }
        Command::Systemd { userland, kernel, deb, roots, vm } => {
            let userland = rootfs::select(std::slice::from_ref(userland)).map_err(usage)?.remove(0);
            let kernel = kernels_for(std::slice::from_ref(kernel), false)?.remove(0);
            let (job, opts) = prepare(vm, &kernel, &cli.out)?;
            let deb = deb.as_ref().map(|d| existing(d, "package")).transpose()?;
            std::fs::create_dir_all(roots)
                .with_context(|| format!("failed to create {}", roots.display()))
                .map_err(infra)?;
            let roots = existing(roots, "roots directory")?;
            let dirs = systemd::Dirs { apt: cli.cache.join("apt"), roots, out: cli.out.clone() };
            systemd::run(userland, &kernel, &job, deb, &opts, &dirs, &mut std::io::stdout()).map_err(infra)
        }
        Command::Matrix { series, jobs, vm } => {
            let kernels = kernels_for(series, false)?;
            let (job, opts) = prepare(vm, &kernels[0], &cli.out)?;
            let jobs = jobs.unwrap_or_else(|| matrix::default_jobs(kernels.len(), opts.memory_mib));
            eprintln!(
                "vm-harness: {} kernel(s), {jobs} VM(s) at a time, {} MiB and {} vCPU each",
                kernels.len(),
                opts.memory_mib,
                opts.cpus
            );
            let start = Instant::now();
            let reports = matrix::run(&kernels, &job, &opts, &cli.out, jobs);
            let rows: Vec<Row> = reports.iter().map(Row::from_report).collect();
            print!("{}", report::render_table(&rows));
            for (row, r) in rows.iter().zip(&reports) {
                if row.verdict == Verdict::Fail {
                    if let Outcome::Exited { output, .. } = &r.outcome {
                        print!(
                            "---- {} ({}): what failed ----\n{}",
                            row.series,
                            row.version,
                            report::failure_excerpt(output, 80)
                        );
                    }
                    println!(
                        "{} ({}): output in {}",
                        row.series,
                        row.version,
                        r.out_dir.join("share").join(guest::OUTPUT_FILE).display()
                    );
                }
            }
            println!("matrix wall time: {:.1}s", start.elapsed().as_secs_f64());
            let any = |f: fn(&Verdict) -> bool| rows.iter().any(|r| f(&r.verdict));
            Ok(if any(|v| matches!(v, Verdict::Infra(_))) {
                exit::INFRA
            } else if any(|v| *v == Verdict::Fail) {
                exit::TEST_FAILURE
            } else {
                exit::OK
            })
        }
    }
}

/// The job and VM options from the flags; picks the accelerator (probing with `kernel`).
fn prepare(args: &VmArgs, kernel: &Kernel, out: &Path) -> Result<(Job, VmOptions), Failure> {
    let workdir = match &args.workdir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("failed to read the current directory").map_err(usage)?,
    };
    // The guest sees the host's paths, so absolute host paths are all it needs.
    let workdir =
        workdir.canonicalize().with_context(|| format!("no working directory {}", workdir.display())).map_err(usage)?;
    let image_archive = match &args.image_archive {
        Some(file) => {
            Some(file.canonicalize().with_context(|| format!("no image archive {}", file.display())).map_err(usage)?)
        }
        None => None,
    };
    // Relative command paths resolve against the working directory, checked here too.
    let command = PathBuf::from(&args.command[0]);
    for (what, path) in [("working directory", &workdir), ("command", &command)] {
        if let Some(dir) = guest::masked_by(path) {
            return Err(usage(anyhow::anyhow!(
                "the {what} {} is under {dir}, which the guest replaces with an empty tmpfs; use a path outside it",
                path.display()
            )));
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("failed to create {}", out.display())).map_err(infra)?;
    let (accel, why) = vm::choose_accel(args.accel, kernel, out);
    eprintln!("vm-harness: accelerator: {why}");
    let job = Job { image_archive, workdir, env: args.env.clone(), command: args.command.clone(), systemd: None };
    let opts =
        VmOptions { accel, memory_mib: args.memory, cpus: args.cpus, timeout: Duration::from_secs(args.timeout) };
    Ok((job, opts))
}

/// `path` made absolute, or a usage error naming `what`.
fn existing(path: &Path, what: &str) -> Result<PathBuf, Failure> {
    path.canonicalize().with_context(|| format!("no {what} {}", path.display())).map_err(usage)
}

/// `userland`: the command in each userland's root, the table, the exit code.
fn userlands(names: &[String], mut job: UserlandJob) -> Result<i32, Failure> {
    let userlands = rootfs::select(names).map_err(usage)?;
    // The repository is bound into the root at its own path, so host paths work unchanged.
    let repo = std::env::current_dir().context("failed to read the current directory").map_err(usage)?;
    let archive = &mut job.template.image_archive;
    if let Some(file) = archive.take() {
        let found = file.canonicalize().with_context(|| format!("no image archive {}", file.display()));
        *archive = Some(found.map_err(usage)?);
    }
    // Canonical, so the paths in messages read well (the default has `vm/..` in it).
    std::fs::create_dir_all(&job.roots)
        .with_context(|| format!("failed to create {}", job.roots.display()))
        .map_err(infra)?;
    job.roots =
        job.roots.canonicalize().with_context(|| format!("no directory {}", job.roots.display())).map_err(infra)?;
    job.template.workdir = repo.clone();
    job.template.repo = repo;
    let start = Instant::now();
    let reports = userland::run_all(&userlands, &job, &mut std::io::stdout());
    print!("{}", userland::render(&reports));
    println!("userlands wall time: {:.1}s", start.elapsed().as_secs_f64());
    Ok(userland::exit_code(&reports))
}
