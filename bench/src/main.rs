//! `just bench`: measures the hook against the targets of issue 4 and
//! writes bench/RESULTS.md and the chart next to it. Needs root, podman,
//! runc, crun, strace, the release hook and the fixtures (`just fixtures`).

mod bpf;
mod chart;
mod harness;
mod machine;
mod notes;
mod probe;
mod render;
mod report;
mod stats;
mod suite;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use clap::Parser;

use crate::suite::{Config, Suite};

const CHART: &str = "per-syscall-vs-k.svg";

/// When the bench started, for progress lines.
pub static STARTED: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

#[derive(Parser, Debug)]
#[command(about = "Benchmarks the hook against the targets of issue 4")]
struct Args {
    /// Where to write the Markdown results; the SVG chart goes next to it.
    #[arg(long, default_value = "bench/RESULTS.md")]
    out: PathBuf,
    /// Samples per variant (start latency takes twice as many).
    #[arg(long, default_value_t = 12)]
    runs: usize,
    /// getppid calls per loop sample. More samples beat longer ones here:
    /// the spread comes from the machine's state drifting between samples.
    #[arg(long, default_value_t = 1_000_000)]
    loops: u64,
    /// A smoke run: 3 samples, 500k calls per loop, 1-2 minutes.
    #[arg(long)]
    quick: bool,
    /// Only these sections (comma-separated: latency, tracer, container,
    /// host), for working on the bench; the others show as "-".
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The empty program for the floor: raw_tp or tp_btf (default: the
    /// kind bpf/recorder.bpf.c uses).
    #[arg(long, value_parser = ["raw_tp", "tp_btf"])]
    floor: Option<String>,
    #[arg(long)]
    hook: Option<PathBuf>,
    #[arg(long, default_value = "localhost/seccomp-fixture:latest")]
    image: String,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("bench sits in the workspace").to_path_buf()
}

fn main() -> Result<()> {
    let args = Args::parse();
    let started = *STARTED;
    let ticks = machine::CpuTicks::now();
    let load_start = machine::load_average();
    let repo = repo();
    ensure!(nix_is_root(), "the bench needs root (podman, BPF)");
    let hook = args.hook.clone().unwrap_or_else(|| repo.join("target/release/oci-seccomp-bpf-hook"));
    ensure!(hook.exists(), "{hook:?} is missing: run `cargo build --release` (or `just bench`)");
    let sysprobe = repo.join("target/fixtures/sysprobe");
    ensure!(sysprobe.exists(), "{sysprobe:?} is missing: run `just fixtures`");

    let (runs, loops) = if args.quick { (3, 500_000) } else { (args.runs, args.loops) };
    ensure!(runs >= 1 && loops >= 1000, "--runs must be at least 1 and --loops at least 1000");
    let cfg = Config { runs, loops, strace_loops: (loops / 40).max(1000), sleep_secs: 5 };

    if let Some(kind) = &args.floor {
        let _ = bpf::FLOOR_KIND.set(kind.clone());
    }
    let mc = machine::Machine::probe(&repo);
    println!("bench: kernel {}, CPU {}, nproc {}", mc.kernel, mc.cpu, mc.nproc);
    for (tool, version) in &mc.tools {
        println!("bench: {tool}: {version}");
    }

    let h = harness::Harness::new(
        hook,
        args.image.clone(),
        repo.join("tests/fixtures/containers.conf"),
        repo.join("bench/out"),
    )?;
    let probe = probe::Probe { timeit: probe::timeit_path().to_path_buf(), sysprobe };
    let mut suite = Suite { h: &h, probe: &probe, cfg, foreign: 0, waited: Default::default() };
    let want = |s: &str| args.only.is_empty() || args.only.iter().any(|o| o == s);
    let latency = if want("latency") { suite.latency()? } else { Default::default() };
    let tracer = if want("tracer") { suite.tracer()? } else { Default::default() };
    let container = if want("container") { suite.in_container()? } else { Default::default() };
    let host = if want("host") { suite.host()? } else { Default::default() };

    let figures = report::Figures::new(&latency, &tracer, &container, &host, &bpf::attach_times());
    let (busy_pct, steal_pct) = ticks.until(&machine::CpuTicks::now());
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() {
        argv.push("(defaults)".into());
    }
    let run = render::RunInfo {
        machine: mc,
        cfg,
        args: argv.join(" "),
        date: date(),
        minutes: started.elapsed().as_secs_f64() / 60.0,
        busy_pct,
        steal_pct,
        load: (load_start, machine::load_average()),
        foreign: suite.foreign,
        chart: CHART.into(),
    };
    let md = render::markdown(&figures, &run);
    let chart = chart::Chart {
        points: std::iter::once((0, figures.host_base.delta))
            .chain(figures.host_k.iter().map(|(k, r)| (*k, r.delta)))
            .filter_map(|(k, d)| d.filter(|d| d.n > 0).map(|d| (k, d)))
            .collect(),
        floor: figures.host_floor.delta.map_or(0.0, |d| d.median),
        reference: figures.host_miss.delta.map_or(0.0, |d| d.median),
        old_at_one: report::old::HOST_ONE_NS,
    };
    std::fs::write(&args.out, &md).with_context(|| format!("failed to write {:?}", args.out))?;
    let svg = args.out.with_file_name(CHART);
    std::fs::write(&svg, chart.render()).with_context(|| format!("failed to write {svg:?}"))?;
    println!("{md}");
    println!("bench: wrote {:?} and {svg:?} in {:.1} min", args.out, run.minutes);
    Ok(())
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
