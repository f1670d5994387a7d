//! Per-syscall samples: `sysprobe loop N` (N raw getppid calls), run many
//! times in a row by the static `timeit` helper, on the host or inside a
//! container. Each run is one sample: its CPU time minus the start-up of
//! the same program (the median of three `loop 0` runs timed the same way),
//! divided by N.
//!
//! While the runs go on, the bench can cycle reference BPF programs on and
//! off (`cycle`). Every run carries its CLOCK_MONOTONIC start and end, so
//! each one is assigned to the attach window it fell in, and runs that
//! straddle a switch are dropped. The variants are thereby alternated every
//! few hundred ms, inside one process tree or one container, which is what
//! makes differences of a few tens of ns measurable on this noisy VM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::bpf::{Reference, References};
use crate::harness::text;
use crate::stats;

/// Where the helper is bind-mounted in containers.
pub const TIMEIT_IN_CONTAINER: &str = "/bench-timeit";
const STARTUP_RUNS: usize = 3;

/// Nanoseconds per syscall, by CPU time (what the bench compares) and by
/// wall time (which also counts time lost to other tenants of the VM).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerCall {
    pub cpu_ns: f64,
    pub wall_ns: f64,
}

/// One `timeit` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub start_ns: u64,
    pub end_ns: u64,
    pub wall_ns: u64,
    pub cpu_ns: u64,
}

/// A timed sample and when it ran.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at_ns: u64,
    pub per_call: PerCall,
}

/// The `timeit ...` lines in `out`, in order. A failed command is an
/// error: its timing means nothing.
fn parse_runs(out: &str) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    for line in out.lines().filter(|l| l.starts_with("timeit ")) {
        let field = |name: &str| -> Result<u64> {
            let v = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix(name).and_then(|w| w.strip_prefix('=')))
                .with_context(|| format!("no {name} in {line:?}"))?;
            v.parse().with_context(|| format!("bad {name} in {line:?}"))
        };
        ensure!(field("status")? == 0, "the timed command failed: {line:?}");
        runs.push(Run {
            start_ns: field("start_ns")?,
            end_ns: field("end_ns")?,
            wall_ns: field("wall_ns")?,
            cpu_ns: field("cpu_ns")?,
        });
    }
    Ok(runs)
}

/// The shell command that times `runs` loops of `calls` getppid, after
/// STARTUP_RUNS empty loops, all pinned to `cpu` (see probe/timeit.c for
/// why). `wrap` (e.g. strace) goes before sysprobe.
pub fn script(timeit: &str, cpu: usize, wrap: &str, sysprobe: &str, calls: u64, runs: usize) -> String {
    let t = format!("{timeit} -c {cpu}");
    format!("{t} -n {STARTUP_RUNS} {wrap} {sysprobe} loop 0 && {t} -n {runs} {wrap} {sysprobe} loop {calls}")
}

/// The samples in the output of `script(.., calls, ..)`.
pub fn samples(out: &str, calls: u64) -> Result<Vec<(Run, PerCall)>> {
    let runs = parse_runs(out)?;
    ensure!(runs.len() > STARTUP_RUNS, "expected more than {STARTUP_RUNS} timeit lines, got {}", runs.len());
    let (startup, loops) = runs.split_at(STARTUP_RUNS);
    let median = |f: fn(&Run) -> u64| stats::Summary::of(&startup.iter().map(|r| f(r) as f64).collect::<Vec<_>>());
    let (cpu0, wall0) = (median(|r| r.cpu_ns).unwrap().median, median(|r| r.wall_ns).unwrap().median);
    let n = calls as f64;
    Ok(loops
        .iter()
        .map(|r| (*r, PerCall { cpu_ns: (r.cpu_ns as f64 - cpu0) / n, wall_ns: (r.wall_ns as f64 - wall0) / n }))
        .collect())
}

/// CLOCK_MONOTONIC in ns, the clock timeit stamps its runs with.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A span of time during which state `state` (an index into the cycled
/// states) was in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_ns: u64,
    pub end_ns: u64,
    pub state: usize,
}

/// Runs `child` while cycling `cycles` times through `states` (None: no
/// reference program, attached through `refs`), `period` each, then stops it with `stop` (it is
/// started with more runs than it can finish); returns its output, the
/// windows, and whether it ended on its own (which cuts the cycling short).
pub fn cycle(
    child: Child,
    states: &[Option<Reference>],
    refs: &mut References,
    period: Duration,
    cycles: usize,
    stop: impl FnOnce(&mut Child),
) -> Result<(Output, Vec<Window>, bool)> {
    let mut attached = None;
    cycle_with(child, states.len(), period, cycles, stop, |i| {
        attached = None;
        attached = states[i].map(|r| refs.attach(r)).transpose()?;
        Ok(())
    })
}

/// The same with any set of states: `enter(i)` leaves the previous state
/// and puts state i in force; the window starts when it returns. Cycling
/// starts once the child's start-up runs are done (a container can take
/// seconds to start on a loaded machine), and the child is stopped on
/// every path, errors included: it would otherwise loop for hours.
pub fn cycle_with(
    mut child: Child,
    states: usize,
    period: Duration,
    cycles: usize,
    stop: impl FnOnce(&mut Child),
    mut enter: impl FnMut(usize) -> Result<()>,
) -> Result<(Output, Vec<Window>, bool)> {
    let stdout = child.stdout.take().context("the loop's stdout must be piped")?;
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    let reader = std::thread::spawn(move || {
        let (mut out, mut line, mut r) = (Vec::new(), Vec::new(), BufReader::new(stdout));
        while matches!(r.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            if line.starts_with(b"timeit ") {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            out.append(&mut line);
        }
        out
    });
    let mut windows = Vec::new();
    let mut ended = false;
    let mut run = || -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while seen.load(Ordering::Relaxed) < STARTUP_RUNS && !ended {
            ensure!(Instant::now() < deadline, "the loop did not start within 120 s");
            std::thread::sleep(Duration::from_millis(10));
            ended = child.try_wait()?.is_some();
        }
        for _ in 0..cycles {
            for state in 0..states {
                if ended {
                    return Ok(());
                }
                enter(state)?;
                let start_ns = monotonic_ns();
                let until = Instant::now() + period;
                while Instant::now() < until && !ended {
                    std::thread::sleep(Duration::from_millis(5));
                    ended = child.try_wait()?.is_some();
                }
                windows.push(Window { start_ns, end_ns: monotonic_ns(), state });
            }
        }
        Ok(())
    };
    let result = run();
    if !ended {
        stop(&mut child);
    }
    let mut output = child.wait_with_output()?;
    output.stdout = reader.join().unwrap_or_default();
    result.map(|()| (output, windows, ended))
}

/// Sorts samples into the windows they ran entirely inside of, per state.
pub fn classify(runs: &[(Run, PerCall)], windows: &[Window], states: usize) -> Vec<Vec<Sample>> {
    let mut by_state = vec![Vec::new(); states];
    for (run, per_call) in runs {
        if let Some(w) = windows.iter().find(|w| w.start_ns <= run.start_ns && run.end_ns <= w.end_ns) {
            by_state[w.state].push(Sample { at_ns: run.start_ns, per_call: *per_call });
        }
    }
    by_state
}

/// Each sample minus the mean of the nearest baseline samples before and
/// after it: the finest pairing the alternation allows.
pub fn paired_with_nearest(samples: &[Sample], base: &[Sample]) -> Vec<f64> {
    samples
        .iter()
        .filter_map(|s| {
            let before = base.iter().filter(|b| b.at_ns < s.at_ns).max_by_key(|b| b.at_ns);
            let after = base.iter().filter(|b| b.at_ns > s.at_ns).min_by_key(|b| b.at_ns);
            let near: Vec<f64> = before.into_iter().chain(after).map(|b| b.per_call.cpu_ns).collect();
            (!near.is_empty()).then(|| s.per_call.cpu_ns - near.iter().sum::<f64>() / near.len() as f64)
        })
        .collect()
}

pub struct Probe {
    pub timeit: PathBuf,
    pub sysprobe: PathBuf,
    /// The CPU every loop runs on.
    pub cpu: usize,
}

impl Probe {
    /// The loop on the host, started (not waited for) through /bin/sh, in
    /// a process group of its own so that it can be stopped as a whole.
    pub fn spawn_host(&self, wrap: &str, calls: u64, runs: usize) -> Result<Child> {
        let (timeit, sysprobe) = (self.timeit.to_string_lossy(), self.sysprobe.to_string_lossy());
        let s = script(&timeit, self.cpu, wrap, &sysprobe, calls, runs);
        spawn(Command::new("/bin/sh").args(["-c", &s]))
    }

    /// The host loop as a container's task is to the recorder: in a mount
    /// namespace of its own (`unshare --mount` execs the shell in its own
    /// process, so the child's pid is in it) and under a seccomp filter
    /// (`timeit -s`). Registering that namespace with the hook traces it.
    pub fn spawn_host_as_container(&self, calls: u64, runs: usize) -> Result<Child> {
        let timeit = format!("{} -s", self.timeit.to_string_lossy());
        let s = script(&timeit, self.cpu, "", &self.sysprobe.to_string_lossy(), calls, runs);
        spawn(Command::new("unshare").args(["--mount", "--", "/bin/sh", "-c", &s]))
    }

    /// The loop on the host, to its end.
    pub fn host(&self, wrap: &str, calls: u64, runs: usize) -> Result<Vec<(Run, PerCall)>> {
        let o = self.spawn_host(wrap, calls, runs)?.wait_with_output()?;
        ensure!(o.status.success(), "host loop failed: {}{}", text(&o.stdout), text(&o.stderr));
        samples(&text(&o.stdout), calls)
    }
}

/// `cmd` started, in a process group of its own, its output piped.
fn spawn(cmd: &mut Command) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().context("failed to start the host loop")
}

/// Stops a loop started by spawn_host (shell, timeit and sysprobe).
pub fn kill_group(child: &mut Child) {
    // SAFETY: kill has no memory-safety preconditions; the group is the
    // child's own (process_group(0)).
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
}

/// `timeit` is built next to the bench by build.rs.
pub fn timeit_path() -> &'static Path {
    Path::new(env!("BENCH_TIMEIT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "loop: 0\n\
        timeit start_ns=1 end_ns=2 wall_ns=1000 cpu_ns=400 status=0\n\
        timeit start_ns=3 end_ns=4 wall_ns=1000 cpu_ns=500 status=0\n\
        timeit start_ns=5 end_ns=6 wall_ns=1000 cpu_ns=600 status=0\n\
        loop: 10\n\
        timeit start_ns=10 end_ns=20 wall_ns=6000 cpu_ns=2500 status=0\n\
        timeit start_ns=30 end_ns=40 wall_ns=7000 cpu_ns=3500 status=0\n";

    #[test]
    fn samples_subtract_the_median_start_up() {
        let s = samples(OUT, 10).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].1, PerCall { cpu_ns: 200.0, wall_ns: 500.0 });
        assert_eq!(s[1].1.cpu_ns, 300.0);
    }

    #[test]
    fn a_failed_command_is_no_sample() {
        assert!(parse_runs("timeit start_ns=1 end_ns=2 wall_ns=1 cpu_ns=1 status=1\n").is_err());
        assert!(parse_runs("timeit start_ns=1 end_ns=2 wall_ns=x cpu_ns=1 status=0\n").is_err());
    }

    #[test]
    fn runs_straddling_a_switch_are_dropped() {
        let s = samples(OUT, 10).unwrap();
        let windows = [Window { start_ns: 0, end_ns: 25, state: 0 }, Window { start_ns: 25, end_ns: 50, state: 1 }];
        let by = classify(&s, &windows, 2);
        assert_eq!((by[0].len(), by[1].len()), (1, 1));
        let windows = [Window { start_ns: 0, end_ns: 15, state: 0 }, Window { start_ns: 15, end_ns: 50, state: 1 }];
        let by = classify(&s, &windows, 2);
        assert_eq!((by[0].len(), by[1].len()), (0, 1), "the run from 10 to 20 straddles 15");
    }

    #[test]
    fn pairs_with_the_nearest_baseline_on_each_side() {
        let at = |t: u64, v: f64| Sample { at_ns: t, per_call: PerCall { cpu_ns: v, wall_ns: v } };
        let base = [at(0, 100.0), at(10, 110.0), at(30, 130.0)];
        let d = paired_with_nearest(&[at(20, 200.0), at(40, 150.0)], &base);
        assert_eq!(d, vec![80.0, 20.0]);
    }
}
