//! Sections 3 to 5 of issue 4: what a syscall costs inside a traced
//! container, and for an untraced host process while K containers are
//! traced, against the floor of an empty program and against strace.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use hook_test_support::podman::SLEEPER;
use hook_test_support::PROBE_IN_IMAGE;

use crate::bpf::{self, Census, Reference};
use crate::harness::{text, Harness, Mode};
use crate::probe::{self, PerCall, Run, Sample, TIMEIT_IN_CONTAINER};
use crate::stats;
use crate::suite::{order, Suite};

pub const KS: [usize; 3] = [1, 4, 16];

/// How long each state of a cycle lasts: several loop samples fit in one,
/// and a neighbour's burst rarely outlasts two.
const PERIOD: Duration = Duration::from_millis(300);

/// One variant's samples: per call (CPU and wall) and, paired with the
/// untraced baseline next to them in time, the CPU cost above it.
#[derive(Debug, Default, Clone)]
pub struct Series {
    pub abs: Vec<PerCall>,
    pub paired: Vec<f64>,
}

impl Series {
    pub(crate) fn add(&mut self, samples: &[Sample], paired: impl IntoIterator<Item = f64>) {
        self.abs.extend(samples.iter().map(|s| s.per_call));
        self.paired.extend(paired);
    }

    /// Adds samples taken while the baseline could not be measured, each
    /// against the baseline's median over the same round.
    pub(crate) fn add_against(&mut self, samples: &[Sample], base: f64) {
        self.add(samples, samples.iter().map(|s| s.per_call.cpu_ns - base).collect::<Vec<_>>());
    }
}

#[derive(Debug, Default)]
pub struct InContainer {
    pub untraced: Series,
    pub traced: Series,
    /// Untraced, with the empty program attached.
    pub floor: Series,
}

#[derive(Debug, Default)]
pub struct Host {
    pub base: Series,
    pub strace: Series,
    /// While KS[i] containers are traced.
    pub k: [Series; 3],
}

pub(crate) fn cpu_median(samples: &[Sample]) -> f64 {
    let v: Vec<f64> = samples.iter().map(|s| s.per_call.cpu_ns).collect();
    stats::Summary::of(&v).map_or(f64::NAN, |s| s.median)
}

fn as_samples(runs: Vec<(Run, PerCall)>) -> Vec<Sample> {
    runs.into_iter().map(|(r, per_call)| Sample { at_ns: r.start_ns, per_call }).collect()
}

/// Samples of a cycled run, per state; the base (state 0) paired with its
/// own median, the others with their nearest base samples.
pub(crate) fn cycled(by_state: &[Vec<Sample>], into: &mut [&mut Series]) {
    let base = &by_state[0];
    let median = cpu_median(base);
    into[0].add_against(base, median);
    for (samples, series) in by_state.iter().zip(into.iter_mut()).skip(1) {
        series.add(samples, probe::paired_with_nearest(samples, base));
    }
}

impl Suite<'_> {
    fn container_script(&self, runs: usize) -> String {
        probe::script(TIMEIT_IN_CONTAINER, self.probe.cpu, "", PROBE_IN_IMAGE, self.cfg.calls, runs)
    }

    /// Each round runs an untraced container, in which the empty program
    /// is switched on and off every PERIOD, and a traced one. Their order
    /// swaps every round; round 0 only warms up.
    pub fn in_container(&mut self) -> Result<InContainer> {
        let (h, calls) = (self.h, self.cfg.calls);
        let mount = format!("{}:{TIMEIT_IN_CONTAINER}:ro", self.probe.timeit.display());
        // The cycled container runs until stopped; the traced one a fixed
        // number of samples, about as many as the cycled one gets per state.
        let (forever, fixed) = (self.container_script(1_000_000), self.container_script(self.cfg.chunks));
        let cycled_cmd = ["/bin/sh", "-c", forever.as_str()];
        let cmd = ["/bin/sh", "-c", fixed.as_str()];
        let cycles = self.cfg.cycles;
        let mut c = InContainer::default();
        for round in 0..=self.cfg.runs {
            if round > 0 {
                self.progress("syscalls in a container", round - 1, self.cfg.runs);
            }
            let (mut untraced, mut traced) = (Vec::new(), Vec::new());
            for v in order(2, round) {
                if v == 0 {
                    untraced = self.foreign.clean(0, || {
                        let name = format!("bench-cycle-{}", std::process::id());
                        let child = h.spawn("runc", &["--name", &name, "-v", &mount], &cycled_cmd)?;
                        let states = [None, Some(Reference::Empty)];
                        let (o, windows, ended) =
                            probe::cycle(child, &states, &mut self.refs, PERIOD, cycles, |_| h.kill(&name))?;
                        ensure!(!ended, "untraced container ended early: {}", text(&o.stderr));
                        Ok(probe::classify(&probe::samples(&text(&o.stdout), calls)?, &windows, 2))
                    })?;
                } else {
                    traced = self.foreign.clean(0, || {
                        let (o, _) = h.run("runc", Mode::Traced, &["-v", &mount], &cmd)?;
                        Ok(as_samples(probe::samples(&text(&o.stdout), calls)?))
                    })?;
                }
            }
            self.log("container", &["untraced", "floor"], &untraced);
            self.log("container", &["traced"], std::slice::from_ref(&traced));
            if round > 0 {
                let base = cpu_median(&untraced[0]);
                cycled(&untraced, &mut [&mut c.untraced, &mut c.floor]);
                c.traced.add_against(&traced, base);
            }
        }
        Ok(c)
    }

    /// The untraced host process, with K = 0, 1, 4, 16 traced containers.
    /// Starting 16 traced containers takes seconds, so the levels cannot
    /// alternate sample by sample; each round climbs 0, 1, 4, 16 and comes
    /// back down 16, 4, 1, 0, sampling every step, so each level is seen
    /// twice per round, once on either side in time of the others.
    pub fn host(&mut self) -> Result<Host> {
        let mut host = Host::default();
        let visit = self.cfg.chunks.div_ceil(2);
        for round in 0..self.cfg.host_rounds {
            self.progress("untraced host process vs K containers", round, self.cfg.host_rounds);
            let mut base = self.host_visit(0, visit)?;
            let mut levels: [Vec<Sample>; 3] = Default::default();
            let mut containers = Containers { h: self.h, ids: Vec::new() };
            for (i, &k) in KS.iter().enumerate() {
                let more = k - containers.ids.len();
                containers.ids.extend(self.h.start_traced_many(more, &SLEEPER)?);
                quiesce();
                levels[i].extend(self.host_visit(k, visit)?);
            }
            for (i, &k) in KS.iter().enumerate().rev() {
                if containers.shrink(k)? {
                    quiesce();
                }
                levels[i].extend(self.host_visit(k, visit)?);
            }
            containers.shrink(0)?;
            quiesce();
            base.extend(self.host_visit(0, visit)?);
            let strace = self.strace()?;
            self.log("host", &["strace"], std::slice::from_ref(&strace));
            let median = cpu_median(&base);
            host.base.add_against(&base, median);
            for (series, samples) in host.k.iter_mut().zip(&levels) {
                series.add_against(samples, median);
            }
            host.strace.add_against(&strace, median);
        }
        Ok(host)
    }

    fn host_visit(&mut self, k: usize, runs: usize) -> Result<Vec<Sample>> {
        let (probe, calls) = (self.probe, self.cfg.calls);
        let samples = self.foreign.clean(k, || probe.host("", calls, runs).map(as_samples))?;
        self.log("host", &[&format!("K={k}")], std::slice::from_ref(&samples));
        Ok(samples)
    }

    /// Keeps samples for bench/out/samples.tsv (section, variant, start
    /// time, CPU and wall ns per call), to look at what a median hides.
    pub(crate) fn log(&mut self, section: &str, variants: &[&str], by_variant: &[Vec<Sample>]) {
        for (variant, samples) in variants.iter().zip(by_variant) {
            for s in samples {
                let (c, w) = (s.per_call.cpu_ns, s.per_call.wall_ns);
                self.raw.push((s.at_ns, format!("{section}\t{variant}\t{}\t{c:.1}\t{w:.1}", s.at_ns)));
            }
        }
    }

    /// strace -f on the same loop, with fewer calls (it is ~100x slower).
    fn strace(&mut self) -> Result<Vec<Sample>> {
        let (probe, calls) = (self.probe, (self.cfg.calls / 10).max(1000));
        self.foreign.clean(0, || probe.host("strace -f -qq -o /dev/null", calls, 4).map(as_samples))
    }
}

/// Lets the machine settle after starting or removing containers: conmon,
/// podman's cleanup and the tracers' exits would otherwise run on the other
/// CPU during the next sample and slow it through shared caches.
fn quiesce() {
    std::thread::sleep(Duration::from_secs(1));
}

/// Detached traced containers, removed when dropped (also on errors).
pub(crate) struct Containers<'a> {
    pub h: &'a Harness,
    pub ids: Vec<String>,
}

impl Containers<'_> {
    /// Removes containers until `k` remain and their tracers have left
    /// (counted against what was there, in case others trace too). Says
    /// whether there was anything to remove.
    pub fn shrink(&mut self, k: usize) -> Result<bool> {
        let gone = self.ids.split_off(k.min(self.ids.len()));
        if gone.is_empty() {
            return Ok(false);
        }
        let before = Census::take();
        self.h.remove(&gone).context("failed to remove traced containers")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Census::take().traced > before.traced.saturating_sub(gone.len()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if k == 0 {
            bpf::settle(Census::expected(0), 2);
        }
        Ok(true)
    }
}

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        let _ = self.h.remove(&self.ids);
    }
}
