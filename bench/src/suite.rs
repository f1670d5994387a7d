//! The measurements of issue 4, each variant alternated with the others
//! round by round (the order reversed every other round, so a variant is
//! not always the one after the same neighbour), and every round sampled
//! from a host where only the bench's own containers are traced.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::bpf::{self, Census, Floor, Reference};
use crate::harness::{self, Harness, Mode, Sleeper};
use crate::probe::{PerCall, Probe};

pub const KS: [usize; 3] = [1, 4, 16];

#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Samples per variant (latency gets twice as many: its effect is
    /// small against podman's own spread).
    pub runs: usize,
    /// getppid calls per loop sample.
    pub loops: u64,
    /// Fewer under strace, which is ~100x slower per call.
    pub strace_loops: u64,
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

/// Per round: [untraced, traced, untraced + empty program].
#[derive(Debug, Default)]
pub struct InContainer {
    pub rounds: Vec<[PerCall; 3]>,
}

#[derive(Debug, Default, Clone)]
pub struct HostRound {
    pub base: Vec<PerCall>,
    pub floor: Vec<PerCall>,
    /// With the reference lookup program missing (untraced) and hitting
    /// (traced) for every host task.
    pub miss: Vec<PerCall>,
    pub hit: Vec<PerCall>,
    pub strace: Vec<PerCall>,
    /// Samples while KS[i] containers are traced.
    pub k: [Vec<PerCall>; 3],
}

#[derive(Debug, Default)]
pub struct Host {
    pub rounds: Vec<HostRound>,
}

pub struct Suite<'a> {
    pub h: &'a Harness,
    pub probe: &'a Probe,
    pub cfg: Config,
    /// Samples taken while someone else's traced containers ran.
    pub foreign: usize,
    /// Time spent waiting for them to finish.
    pub waited: Duration,
}

/// The variants' order in round `round`.
fn order(variants: usize, round: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..variants).collect();
    if round % 2 == 1 {
        v.reverse();
    }
    v
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn progress(what: &str, round: usize, rounds: usize) {
    eprintln!("bench: [{:>4} s] {what}: round {}/{rounds}", crate::STARTED.elapsed().as_secs(), round + 1);
}

impl Suite<'_> {
    /// Takes a sample only when the machine has exactly `k` traced
    /// containers (ours) before and after it; waits for other people's to
    /// leave and retakes the sample, but waits two minutes at most over the
    /// whole run, after which samples are kept and counted as foreign.
    fn clean<T>(&mut self, k: usize, mut f: impl FnMut() -> Result<T>) -> Result<T> {
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
                self.foreign += 1;
                return Ok(value);
            }
            eprintln!("bench: other tracers on the machine ({before:?}/{after:?}, want {want:?}); sample retaken");
            std::thread::sleep(Duration::from_secs(2));
            self.waited += Duration::from_secs(2);
        }
        unreachable!("the loop returns by its third attempt")
    }

    pub fn latency(&mut self) -> Result<Latency> {
        let h = self.h;
        let rounds = 2 * self.cfg.runs;
        let mut l = Latency::default();
        // One untimed round: the first run of each variant pays for cold
        // caches (image layers, binaries), which is not what we compare.
        for round in 0..=rounds {
            if round > 0 {
                progress("start latency", round - 1, rounds);
            }
            let mut got = [0.0; 7];
            let start = |runtime, mode| h.run(runtime, mode, &[], &["/bin/true"]).map(|r| ms(r.1));
            for v in order(7, round) {
                got[v] = self.clean(0, || match v {
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
            progress("tracer usage", round, self.cfg.runs);
            let secs = self.cfg.sleep_secs.to_string();
            // Not through clean(): the census changes as soon as it starts.
            if bpf::settle(Census::expected(0), 2) != Census::expected(0) {
                self.foreign += 1;
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

    pub fn in_container(&mut self) -> Result<InContainer> {
        let (h, probe, n) = (self.h, self.probe, self.cfg.loops);
        let mut c = InContainer::default();
        for round in 0..=self.cfg.runs {
            if round > 0 {
                progress("syscalls in a container", round - 1, self.cfg.runs);
            }
            let mut got = [PerCall { cpu_ns: 0.0, wall_ns: 0.0 }; 3];
            for v in order(3, round) {
                got[v] = self.clean(0, || match v {
                    0 => probe.container(h, n, false),
                    1 => probe.container(h, n, true),
                    _ => {
                        let _floor = Floor::attach(Reference::Empty)?;
                        probe.container(h, n, false)
                    }
                })?;
            }
            // Round 0 warms up, as in latency().
            if round > 0 {
                c.rounds.push(got);
            }
        }
        Ok(c)
    }

    /// The untraced host process, with K = 0, 1, 4, 16 traced containers.
    /// Starting 16 traced containers takes seconds, so the levels cannot
    /// alternate sample by sample; each round climbs 0, 1, 4, 16 and comes
    /// back down 16, 4, 1, 0 with a sample at every step, so each level is
    /// sampled twice per round, once on either side in time of the others.
    pub fn host(&mut self) -> Result<Host> {
        let rounds = self.cfg.runs.div_ceil(2);
        let mut host = Host::default();
        for round in 0..rounds {
            progress("untraced host process vs K", round, rounds);
            let mut r = HostRound::default();
            self.host_zero(&mut r, 0)?;
            let mut containers = Containers { h: self.h, ids: Vec::new() };
            for (i, &k) in KS.iter().enumerate() {
                let more = k - containers.ids.len();
                containers.ids.extend(self.h.start_traced_many(more, &["/bin/sleep", "1000"])?);
                quiesce();
                let s = self.host_loop(k)?;
                r.k[i].push(s);
            }
            for (i, &k) in KS.iter().enumerate().rev() {
                if containers.shrink(k)? {
                    quiesce();
                }
                let s = self.host_loop(k)?;
                r.k[i].push(s);
            }
            containers.shrink(0)?;
            quiesce();
            self.host_zero(&mut r, 1)?;
            host.rounds.push(r);
        }
        Ok(host)
    }

    fn host_loop(&mut self, k: usize) -> Result<PerCall> {
        let (probe, n) = (self.probe, self.cfg.loops);
        self.clean(k, || probe.host(n, &[]))
    }

    /// The K = 0 variants: bare, empty program, strace, and the reference
    /// lookup program missing and hitting.
    fn host_zero(&mut self, r: &mut HostRound, half: usize) -> Result<()> {
        let (probe, n, sn) = (self.probe, self.cfg.loops, self.cfg.strace_loops);
        let with = |what| -> Result<PerCall> {
            let _attached = Floor::attach(what)?;
            probe.host(n, &[])
        };
        for v in order(5, half) {
            let s = self.clean(0, || match v {
                0 => probe.host(n, &[]),
                1 => with(Reference::Empty),
                2 => probe.host(sn, &["strace", "-f", "-qq", "-o", "/dev/null"]),
                3 => with(Reference::Miss),
                _ => with(Reference::Hit),
            })?;
            [&mut r.base, &mut r.floor, &mut r.strace, &mut r.miss, &mut r.hit][v].push(s);
        }
        Ok(())
    }
}

/// Lets the machine settle after starting or removing containers: conmon,
/// podman's cleanup and the tracers' exits would otherwise run on the other
/// CPU during the next sample and slow it through shared caches.
fn quiesce() {
    std::thread::sleep(Duration::from_secs(1));
}

/// The hook process alone, as a runtime would run it, for a stand-in
/// container (a process in its own mount namespace). With `join`, another
/// tracer already has the program loaded, as when other containers are
/// being traced; else this hook's tracer loads and attaches it.
fn hook_alone(h: &Harness, join: bool) -> Result<f64> {
    let holder = if join {
        let s = Sleeper::start()?;
        let out = h.out_path();
        h.run_hook(s.pid(), &out)?;
        Some((s, out))
    } else {
        None
    };
    let sleeper = Sleeper::start()?;
    let out = h.out_path();
    let took = h.run_hook(sleeper.pid(), &out)?;
    drop(sleeper);
    harness::wait_for_file(&out, 20)?;
    if let Some((s, out)) = holder {
        drop(s);
        harness::wait_for_file(&out, 20)?;
    }
    Ok(ms(took))
}

/// Detached traced containers, removed when dropped (also on errors).
struct Containers<'a> {
    h: &'a Harness,
    ids: Vec<String>,
}

impl Containers<'_> {
    /// Removes containers until `k` remain and their tracers have left
    /// (counted against what was there, in case others trace too). Says
    /// whether there was anything to remove.
    fn shrink(&mut self, k: usize) -> Result<bool> {
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
