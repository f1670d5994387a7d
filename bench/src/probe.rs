//! One sample of per-syscall cost: `sysprobe loop N` (N raw getppid
//! calls) timed by the static `timeit` helper, on the host or inside a
//! container, minus `sysprobe loop 0` timed the same way. The subtraction
//! cancels what is not the loop (fork, exec, runtime start-up, and for
//! strace its attach), so what is left divided by N is the cost of one
//! getppid.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use crate::harness::{text, Harness, Mode};

/// Where the helper is bind-mounted in containers.
const TIMEIT_IN_CONTAINER: &str = "/bench-timeit";
const SYSPROBE_IN_IMAGE: &str = "/usr/local/bin/sysprobe";

/// Nanoseconds per syscall, by CPU time (what the bench compares) and by
/// wall time (which also counts time lost to other tenants of the VM).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerCall {
    pub cpu_ns: f64,
    pub wall_ns: f64,
}

/// One `timeit` report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timing {
    wall_ns: u64,
    cpu_ns: u64,
}

/// The `timeit wall_ns=.. cpu_ns=.. status=..` lines in `out`, in order.
/// A failed command is an error: its timing means nothing.
fn parse_timings(out: &str) -> Result<Vec<Timing>> {
    let mut timings = Vec::new();
    for line in out.lines().filter(|l| l.starts_with("timeit ")) {
        let field = |name: &str| -> Result<u64> {
            let v = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix(name).and_then(|w| w.strip_prefix('=')))
                .with_context(|| format!("no {name} in {line:?}"))?;
            v.parse().with_context(|| format!("bad {name} in {line:?}"))
        };
        ensure!(field("status")? == 0, "the timed command failed: {line:?}");
        timings.push(Timing { wall_ns: field("wall_ns")?, cpu_ns: field("cpu_ns")? });
    }
    Ok(timings)
}

/// (loop N) - (loop 0), per call.
fn per_call(empty: Timing, full: Timing, n: u64) -> PerCall {
    let d = |a: u64, b: u64| (a as f64 - b as f64) / n as f64;
    PerCall { cpu_ns: d(full.cpu_ns, empty.cpu_ns), wall_ns: d(full.wall_ns, empty.wall_ns) }
}

pub struct Probe {
    pub timeit: PathBuf,
    pub sysprobe: PathBuf,
}

impl Probe {
    /// The loop on the host, run directly (`wrap` empty) or under a tool
    /// such as `strace -f` that `timeit` then times with its children.
    pub fn host(&self, n: u64, wrap: &[&str]) -> Result<PerCall> {
        let mut timings = Vec::new();
        for count in [0, n] {
            let o = Command::new(&self.timeit)
                .args(wrap)
                .arg(&self.sysprobe)
                .args(["loop", &count.to_string()])
                .output()
                .with_context(|| format!("failed to run {:?}", self.timeit))?;
            ensure!(o.status.success(), "sysprobe loop {count} failed: {}{}", text(&o.stdout), text(&o.stderr));
            timings.extend(parse_timings(&text(&o.stdout))?);
        }
        match timings[..] {
            [empty, full] => Ok(per_call(empty, full, n)),
            _ => bail!("expected two timeit lines, got {timings:?}"),
        }
    }

    /// The loop inside one runc container of the fixture image, traced
    /// into a profile or not. Both runs happen in the same container so
    /// that its start-up cancels out.
    pub fn container(&self, h: &Harness, n: u64, traced: bool) -> Result<PerCall> {
        let mount = format!("{}:{TIMEIT_IN_CONTAINER}:ro", self.timeit.display());
        let script = format!(
            "{TIMEIT_IN_CONTAINER} {SYSPROBE_IN_IMAGE} loop 0 && {TIMEIT_IN_CONTAINER} {SYSPROBE_IN_IMAGE} loop {n}"
        );
        let mode = if traced { Mode::Traced } else { Mode::Plain };
        let (o, _) = h.run("runc", mode, &["-v", &mount], &["/bin/sh", "-c", &script])?;
        match parse_timings(&text(&o.stdout))?[..] {
            [empty, full] => Ok(per_call(empty, full, n)),
            ref t => bail!("expected two timeit lines from the container, got {t:?}"),
        }
    }
}

/// `timeit` is built next to the bench by build.rs.
pub fn timeit_path() -> &'static Path {
    Path::new(env!("BENCH_TIMEIT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_timeit_lines_among_the_program_output() {
        let out =
            "loop: 0\ntimeit wall_ns=1000 cpu_ns=400 status=0\nloop: 10\ntimeit wall_ns=6000 cpu_ns=2400 status=0\n";
        let t = parse_timings(out).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(per_call(t[0], t[1], 10), PerCall { cpu_ns: 200.0, wall_ns: 500.0 });
    }

    #[test]
    fn a_failed_command_is_no_sample() {
        assert!(parse_timings("timeit wall_ns=1 cpu_ns=1 status=1\n").is_err());
        assert!(parse_timings("timeit wall_ns=x cpu_ns=1 status=0\n").is_err());
    }
}
