//! `just bench`: measures the hook against the targets of issue 4 and
//! writes bench/RESULTS.md and the chart next to it. Needs root, podman,
//! runc, crun, strace, the release hook and the fixtures (`just fixtures`).

mod alternated;
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
mod syscalls;

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
    /// Rounds of the container sections: podman runs per variant (start
    /// latency takes four times as many) and containers per per-syscall variant.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// getppid calls per loop sample. Many short samples alternated fast
    /// beat a few long ones here: the spread comes from the machine's
    /// state drifting between samples.
    #[arg(long, default_value_t = 200_000)]
    calls: u64,
    /// Loop samples per traced container, and per K level and round.
    #[arg(long, default_value_t = 24)]
    chunks: usize,
    /// Times the cycled runs (untraced container, K=0 host block) go
    /// through their states (none, empty program, ...), 300 ms each.
    #[arg(long, default_value_t = 4)]
    cycles: usize,
    /// Rounds of the K section (each starts and removes 16 containers).
    #[arg(long, default_value_t = 3)]
    host_rounds: usize,
    /// A smoke run, 1-2 minutes: 3 runs, 100k calls, 12 chunks, 2 cycles,
    /// 1 K round.
    #[arg(long)]
    quick: bool,
    /// Only these sections (comma-separated: latency, tracer, container,
    /// host, alternated), for working on the bench; the others show "-".
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

    let cfg = if args.quick {
        Config { runs: 3, calls: 100_000, chunks: 12, cycles: 2, host_rounds: 1, sleep_secs: 5 }
    } else {
        Config {
            runs: args.runs,
            calls: args.calls,
            chunks: args.chunks,
            cycles: args.cycles,
            host_rounds: args.host_rounds,
            sleep_secs: 5,
        }
    };
    ensure!(
        cfg.runs >= 1 && cfg.host_rounds >= 1 && cfg.cycles >= 1 && cfg.chunks >= 4 && cfg.calls >= 10_000,
        "--runs, --host-rounds and --cycles must be at least 1, --chunks at least 4, --calls at least 10000"
    );

    if let Some(kind) = &args.floor {
        let _ = bpf::FLOOR_KIND.set(kind.clone());
    }
    let mc = machine::Machine::probe(&repo);
    println!("bench: kernel {}, CPU {}, nproc {}", mc.kernel, mc.cpu, mc.nproc);
    for (tool, version) in &mc.tools {
        println!("bench: {tool}: {version}");
    }

    let h = harness::Harness::new(hook, args.image.clone(), repo.join("bench/out"))?;
    // The last CPU: any one would do, as long as every loop uses the same.
    let cpu = mc.nproc.saturating_sub(1);
    let probe = probe::Probe { timeit: probe::timeit_path().to_path_buf(), sysprobe, cpu };
    let mut suite = Suite { h: &h, probe: &probe, cfg, foreign: 0, waited: Default::default(), raw: Vec::new() };
    let want = |s: &str| args.only.is_empty() || args.only.iter().any(|o| o == s);
    let latency = if want("latency") { suite.latency()? } else { Default::default() };
    let tracer = if want("tracer") { suite.tracer()? } else { Default::default() };
    let container = if want("container") { suite.in_container()? } else { Default::default() };
    let host = if want("host") { suite.host()? } else { Default::default() };
    let alternated = if want("alternated") { suite.alternated()? } else { Default::default() };

    suite.raw.sort();
    let raw: Vec<String> = suite.raw.iter().map(|(_, l)| l.clone()).collect();
    let tsv = h.scratch.join("samples.tsv");
    std::fs::write(&tsv, format!("section\tvariant\tstart_ns\tcpu_ns\twall_ns\n{}\n", raw.join("\n")))
        .with_context(|| format!("failed to write {tsv:?}"))?;
    let figures = report::Figures::new(&latency, &tracer, &container, &host, &alternated, &bpf::attach_times());
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
        cpu,
    };
    let md = render::markdown(&figures, &run);
    let line = |label, colour, base: &report::Row, ks: &[(usize, report::Row)]| chart::Line {
        label,
        colour,
        points: std::iter::once((0, base.delta))
            .chain(ks.iter().map(|(k, r)| (*k, r.delta)))
            .filter_map(|(k, d)| d.filter(|d| d.n > 0).map(|d| (k, d)))
            .collect(),
    };
    let chart = chart::Chart {
        lines: vec![
            line("K real containers (levels seconds apart)", "#1565c0", &figures.host_base, &figures.host_k),
            line("K stand-ins (alternated every 0.5 s)", "#6a1b9a", &figures.alt_base, &figures.alt_k),
        ],
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
