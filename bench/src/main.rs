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
mod syscall_cost;
mod traced_loop;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use clap::Parser;

use crate::alternated::Alternated;
use crate::report::Figures;
use crate::suite::{Config, Latency, Suite, TracerUsage};
use crate::syscall_cost::{Host, InContainer};
use crate::traced_loop::TracedLoop;

const CHART: &str = "per-syscall-vs-k.svg";

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
    /// host, alternated, traced-loop), for working on the bench; the others show "-".
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The empty program for the floor: raw_tp or tp_btf (default: the
    /// kind bpf/recorder.bpf.c uses).
    #[arg(long, value_parser = ["raw_tp", "tp_btf"])]
    floor: Option<String>,
    #[arg(long)]
    hook: Option<PathBuf>,
    #[arg(long, default_value = hook_test_support::IMAGE)]
    image: String,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("bench sits in the workspace").to_path_buf()
}

fn main() -> Result<()> {
    let started = Instant::now();
    let args = Args::parse();
    let ticks = machine::CpuTicks::now();
    let load_start = machine::load_average();
    let (hook, sysprobe) = preflight(&args)?;
    let cfg = config(&args)?;
    let mc = machine::Machine::probe(&repo());
    println!("bench: kernel {}, CPU {}, nproc {}", mc.kernel, mc.cpu, mc.nproc);
    for (tool, version) in &mc.tools {
        println!("bench: {tool}: {version}");
    }

    let h = harness::Harness::new(hook, args.image.clone(), repo().join("bench/out"))?;
    // The last CPU: any one would do, as long as every loop uses the same.
    let cpu = mc.nproc.saturating_sub(1);
    let probe = probe::Probe { timeit: probe::timeit_path().to_path_buf(), sysprobe, cpu };
    let mut suite = Suite {
        h: &h,
        probe: &probe,
        cfg,
        refs: bpf::References::new(args.floor.clone())?,
        foreign: Default::default(),
        raw: Vec::new(),
        started,
    };
    let sections = run_sections(&mut suite, &args.only)?;
    write_samples(&mut suite.raw, &h.scratch)?;
    let figures = sections.figures(&suite.refs.empty_attach_ms);
    let (busy_pct, steal_pct) = ticks.until(&machine::CpuTicks::now());
    let run = render::RunInfo {
        machine: mc,
        cfg,
        args: command_line(),
        date: date(),
        minutes: started.elapsed().as_secs_f64() / 60.0,
        busy_pct,
        steal_pct,
        load: (load_start, machine::load_average()),
        foreign: suite.foreign.samples,
        chart: CHART.into(),
        cpu,
        floor_kind: suite.refs.kind.clone(),
        recorder_kind: bpf::recorder_kind()?,
    };
    write_results(&args.out, &figures, &run)
}

/// The release hook and the fixtures, checked before anything runs.
fn preflight(args: &Args) -> Result<(PathBuf, PathBuf)> {
    ensure!(nix_is_root(), "the bench needs root (podman, BPF)");
    let hook = args.hook.clone().unwrap_or_else(|| repo().join("target/release/oci-seccomp-bpf-hook"));
    ensure!(hook.exists(), "{hook:?} is missing: run `cargo build --release` (or `just bench`)");
    let sysprobe = repo().join("target/fixtures/sysprobe");
    ensure!(sysprobe.exists(), "{sysprobe:?} is missing: run `just fixtures`");
    Ok((hook, sysprobe))
}

fn config(args: &Args) -> Result<Config> {
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
    Ok(cfg)
}

/// What each section measured; a section left out by `--only` is empty.
struct Sections {
    latency: Latency,
    tracer: TracerUsage,
    container: InContainer,
    host: Host,
    alternated: Alternated,
    traced_loop: TracedLoop,
}

impl Sections {
    fn figures(&self, empty_attach_ms: &[f64]) -> Figures {
        let Sections { latency, tracer, container, host, alternated, traced_loop } = self;
        Figures::new(latency, tracer, container, host, alternated, traced_loop, empty_attach_ms)
    }
}

fn run_sections(suite: &mut Suite, only: &[String]) -> Result<Sections> {
    let want = |s: &str| only.is_empty() || only.iter().any(|o| o == s);
    Ok(Sections {
        latency: if want("latency") { suite.latency()? } else { Default::default() },
        tracer: if want("tracer") { suite.tracer()? } else { Default::default() },
        container: if want("container") { suite.in_container()? } else { Default::default() },
        host: if want("host") { suite.host()? } else { Default::default() },
        alternated: if want("alternated") { suite.alternated()? } else { Default::default() },
        traced_loop: if want("traced-loop") { suite.traced_loop()? } else { Default::default() },
    })
}

/// Every per-syscall sample, by start time, into SCRATCH/samples.tsv.
fn write_samples(raw: &mut [(u64, String)], scratch: &Path) -> Result<()> {
    raw.sort();
    let lines: Vec<&str> = raw.iter().map(|(_, l)| l.as_str()).collect();
    let tsv = scratch.join("samples.tsv");
    std::fs::write(&tsv, format!("section\tvariant\tstart_ns\tcpu_ns\twall_ns\n{}\n", lines.join("\n")))
        .with_context(|| format!("failed to write {tsv:?}"))
}

/// The Markdown results at `out` and the chart next to it.
fn write_results(out: &Path, figures: &Figures, run: &render::RunInfo) -> Result<()> {
    let md = render::markdown(figures, run);
    std::fs::write(out, &md).with_context(|| format!("failed to write {out:?}"))?;
    let svg = out.with_file_name(CHART);
    std::fs::write(&svg, chart::Chart::of(figures).render()).with_context(|| format!("failed to write {svg:?}"))?;
    println!("{md}");
    println!("bench: wrote {out:?} and {svg:?} in {:.1} min", run.minutes);
    Ok(())
}

/// The bench's arguments as given, for the results' first line.
fn command_line() -> String {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() {
        "(defaults)".into()
    } else {
        argv.join(" ")
    }
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
