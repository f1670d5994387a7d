//! The measurements of issue 4, each variant alternated with the others
//! round by round (the order reversed every other round, so a variant is
//! not always the one after the same neighbour), and every round sampled
//! from a host where only the bench's own containers are traced.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::bpf::{self, Census, References};
use crate::harness::{self, Harness, Mode};
use crate::probe::Probe;

/// Podman's start time spreads by ~20 ms around its median here, against a
/// 15 ms target: the latency section needs more samples than the others.
pub const LATENCY_ROUNDS_PER_RUN: usize = 4;

#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Rounds of the container sections (latency gets
    /// LATENCY_ROUNDS_PER_RUN times as many).
    pub runs: usize,
    /// getppid calls per loop sample.
    pub calls: u64,
    /// Loop samples per traced container and, in all, per K level and round.
    pub chunks: usize,
    /// Times the cycled sections go through all their states.
    pub cycles: usize,
    /// Rounds of the host section (each starts and stops 16 containers).
    pub host_rounds: usize,
    /// Length of the container whose tracer's usage we report.
    pub sleep_secs: u64,
}

/// Wall times in ms.
#[derive(Debug, Default)]
pub struct Latency {
    pub runc: [Vec<f64>; 2],
    pub crun: [Vec<f64>; 2],
    /// The hook alone, loading the program (no other container traced).
    pub hook_load: Vec<f64>,
    /// The hook alone, joining the program another tracer pinned.
    pub hook_join: Vec<f64>,
    /// runc with a /bin/true prestart hook: what any hook costs.
    pub runc_noop: Vec<f64>,
}

#[derive(Debug, Default)]
pub struct TracerUsage {
    pub rss_kib: Vec<f64>,
    pub cpu_ms: Vec<f64>,
    pub threads: Vec<f64>,
}

pub struct Suite<'a> {
    pub h: &'a Harness,
    pub probe: &'a Probe,
    pub cfg: Config,
    /// The reference programs, and what attaching them cost.
    pub refs: References,
    pub foreign: Foreign,
    /// Every per-syscall sample, by start time, for bench/out/samples.tsv.
    pub raw: Vec<(u64, String)>,
    /// When the bench started, for progress lines.
    pub started: Instant,
}

/// Other people's traced containers, which the census sees next to ours.
#[derive(Debug, Default)]
pub struct Foreign {
    /// Samples taken while some ran.
    pub samples: usize,
    /// Time spent waiting for them to finish.
    pub waited: Duration,
}

/// The variants' order in round `round`.
pub(crate) fn order(variants: usize, round: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..variants).collect();
    if round % 2 == 1 {
        v.reverse();
    }
    v
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Foreign {
    /// Takes a sample only when the machine has exactly `k` traced
    /// containers (ours) before and after it; waits for other people's to
    /// leave and retakes the sample, but waits two minutes at most over the
    /// whole run, after which samples are kept and counted as foreign.
    pub(crate) fn clean<T>(&mut self, k: usize, mut f: impl FnMut() -> Result<T>) -> Result<T> {
        let want = Census::expected(k);
        for attempt in 1.. {
            let patient = self.waited < Duration::from_secs(120);
            let t0 = Instant::now();
            let before = bpf::settle(want, if patient { 5 } else { 0 });
            let waited = t0.elapsed();
            let value = f()?;
            let t1 = Instant::now();
            // Programs are freed a moment after their last link goes.
            let after = bpf::settle(want, if patient { 2 } else { 0 });
            self.waited += waited + t1.elapsed();
            if before == want && after == want {
                return Ok(value);
            }
            if !patient || attempt == 3 {
                self.samples += 1;
                return Ok(value);
            }
            eprintln!("bench: other tracers on the machine ({before:?}/{after:?}, want {want:?}); sample retaken");
            std::thread::sleep(Duration::from_secs(2));
            self.waited += Duration::from_secs(2);
        }
        unreachable!("the loop returns by its third attempt")
    }
}

impl Suite<'_> {
    pub(crate) fn progress(&self, what: &str, round: usize, rounds: usize) {
        eprintln!("bench: [{:>4} s] {what}: round {}/{rounds}", self.started.elapsed().as_secs(), round + 1);
    }

    pub fn latency(&mut self) -> Result<Latency> {
        let h = self.h;
        let rounds = LATENCY_ROUNDS_PER_RUN * self.cfg.runs;
        let mut l = Latency::default();
        // One untimed round: the first run of each variant pays for cold
        // caches (image layers, binaries), which is not what we compare.
        for round in 0..=rounds {
            if round > 0 {
                self.progress("start latency", round - 1, rounds);
            }
            let mut got = [0.0; 7];
            let start = |runtime, mode| h.run(runtime, mode, &[], &["/bin/true"]).map(|r| ms(r.1));
            for v in order(7, round) {
                got[v] = self.foreign.clean(0, || match v {
                    0 => start("runc", Mode::Plain),
                    1 => start("runc", Mode::Traced),
                    2 => start("crun", Mode::Plain),
                    3 => start("crun", Mode::Traced),
                    4 => hook_alone(h, false),
                    5 => hook_alone(h, true),
                    _ => start("runc", Mode::NoopHook),
                })?;
            }
            if round > 0 {
                l.runc[0].push(got[0]);
                l.runc[1].push(got[1]);
                l.crun[0].push(got[2]);
                l.crun[1].push(got[3]);
                l.hook_load.push(got[4]);
                l.hook_join.push(got[5]);
                l.runc_noop.push(got[6]);
            }
        }
        Ok(l)
    }

    /// Peak RSS, CPU and threads of the tracer of a `sleep_secs` container,
    /// as the tracer itself logs them at exit.
    pub fn tracer(&mut self) -> Result<TracerUsage> {
        let h = self.h;
        let mut u = TracerUsage::default();
        for round in 0..self.cfg.runs {
            self.progress("tracer usage", round, self.cfg.runs);
            let secs = self.cfg.sleep_secs.to_string();
            // Not through clean(): the census changes as soon as it starts.
            if bpf::settle(Census::expected(0), 2) != Census::expected(0) {
                self.foreign.samples += 1;
            }
            let (_id, out) = h.start_traced(true, &["/bin/sleep", &secs])?;
            std::thread::sleep(Duration::from_secs(1).min(Duration::from_secs(self.cfg.sleep_secs) / 2));
            if let Some(t) = harness::tracer_threads(&h.hook) {
                u.threads.push(t as f64);
            }
            harness::wait_for_file(&out, self.cfg.sleep_secs + 30)?;
            // The usage line follows the profile by a moment.
            let deadline = Instant::now() + Duration::from_secs(5);
            let (rss, cpu) = loop {
                if let Some(usage) = h.tracer_usage(&out) {
                    break usage;
                }
                anyhow::ensure!(Instant::now() < deadline, "no tracer usage line for {out:?} in the hook log");
                std::thread::sleep(Duration::from_millis(20));
            };
            u.rss_kib.push(rss as f64);
            u.cpu_ms.push(cpu as f64);
        }
        Ok(u)
    }
}

/// The hook process alone, as a runtime would run it, for a stand-in
/// container (a process in its own mount namespace). With `join`, another
/// tracer already has the program loaded, as when other containers are
/// being traced; else this hook's tracer loads and attaches it.
fn hook_alone(h: &Harness, join: bool) -> Result<f64> {
    let holder = if join { Some(h.register_stand_in()?) } else { None };
    let (stand_in, out, took) = h.register_stand_in()?;
    drop(stand_in);
    harness::wait_for_file(&out, 20)?;
    if let Some((stand_in, out, _)) = holder {
        drop(stand_in);
        harness::wait_for_file(&out, 20)?;
    }
    Ok(ms(took))
}
