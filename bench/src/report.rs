//! The numbers behind RESULTS.md: each figure of issue 4 reduced from the
//! raw samples, with its target verdict. Rendering is in render.rs.

use crate::alternated::Alternated;
use crate::probe::PerCall;
use crate::stats::{self, Summary};
use crate::suite::{Latency, TracerUsage};
use crate::syscall_cost::{Host, InContainer, Series, KS};
use crate::traced_loop::TracedLoop;

/// The old tool's figures (upstream oci-seccomp-bpf-hook v1.3.1-dev, as
/// measured on another machine of this kind: Debian 12, kernel 6.18, 2
/// vCPUs). It cannot run here: bcc needs kernel headers this machine lacks.
pub mod old {
    pub const START_ADDED_MS: f64 = 591.0;
    pub const HOOK_MS: f64 = 563.0;
    pub const RSS_MIB: f64 = 145.0;
    pub const THREADS: f64 = 6.0;
    pub const IN_CONTAINER_NS: f64 = 80.0;
    pub const HOST_ONE_NS: f64 = 64.0;
}

pub mod target {
    pub const START_ADDED_MS: f64 = 15.0;
    pub const RSS_MIB: f64 = 8.0;
    pub const FLOOR_RATIO: f64 = 1.5;
    pub const K_SPREAD: f64 = 0.10;
}

/// The targets of issue 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Start,
    Rss,
    Traced,
    Untraced,
    Flat,
}

pub struct Verdict {
    pub target: Target,
    pub what: String,
    pub got: String,
    pub want: String,
    pub ok: bool,
}

/// A variant's absolute figure and, where it has one, its cost above the
/// untraced baseline measured in the same rounds.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub abs: Summary,
    pub wall: Option<Summary>,
    /// The paired differences: each sample minus the baseline sample next
    /// to it in time.
    pub paired: Option<Summary>,
}

impl Row {
    /// The median of the paired differences (NaN when not measured): the
    /// one figure behind every "added" and "above" column and verdict.
    pub fn paired_median(&self) -> f64 {
        self.paired.map_or(f64::NAN, |d| d.median)
    }
}

fn cpu(v: &[PerCall]) -> Vec<f64> {
    v.iter().map(|p| p.cpu_ns).collect()
}

fn wall(v: &[PerCall]) -> Vec<f64> {
    v.iter().map(|p| p.wall_ns).collect()
}

fn sum(v: &[f64]) -> Summary {
    Summary::of(v).unwrap_or(Summary { median: f64::NAN, q1: f64::NAN, q3: f64::NAN, n: 0 })
}

fn row(abs: &[f64], wall_ns: Option<&[f64]>, paired: Option<&[f64]>) -> Row {
    Row { abs: sum(abs), wall: wall_ns.map(sum), paired: paired.map(sum) }
}

pub struct Figures {
    /// runc, crun: [untraced, traced].
    pub start: [[Row; 2]; 2],
    pub hook_load: Row,
    pub hook_join: Row,
    /// runc with a /bin/true prestart hook, and its paired difference.
    pub runc_noop: Row,
    pub empty_attach: Option<Summary>,
    pub rss_mib: Row,
    pub rss_max_mib: f64,
    pub tracer_cpu_ms: Row,
    pub tracer_threads: Option<Summary>,
    /// [untraced, traced, empty program] inside a container.
    pub container: [Row; 3],
    /// Section 4, real containers: baseline, K = 1, 4, 16, and strace.
    pub host_base: Row,
    pub host_k: Vec<(usize, Row)>,
    pub host_strace: Row,
    /// Section 5, alternated: baseline, empty program, the reference
    /// program missing / hitting, K = 1, 4, 16 stand-ins, and K=16 over K=1.
    pub alt_base: Row,
    pub host_floor: Row,
    pub host_miss: Row,
    pub host_hit: Row,
    pub alt_k: Vec<(usize, Row)>,
    pub k16_over_k1: Row,
    /// Section 6, the loop as a container's task, alternated: [baseline,
    /// empty program, its namespace traced].
    pub traced_loop: [Row; 3],
}

impl Figures {
    pub fn new(
        l: &Latency,
        t: &TracerUsage,
        c: &InContainer,
        h: &Host,
        a: &Alternated,
        tl: &TracedLoop,
        attach_ms: &[f64],
    ) -> Figures {
        let start = |v: &[Vec<f64>; 2]| {
            let d = stats::paired(&v[1], &v[0]);
            [row(&v[0], None, None), row(&v[1], None, Some(&d))]
        };
        let series = |s: &Series| row(&cpu(&s.abs), Some(&wall(&s.abs)), Some(&s.paired));
        let container = [series(&c.untraced), series(&c.traced), series(&c.floor)];
        let mib: Vec<f64> = t.rss_kib.iter().map(|k| k / 1024.0).collect();
        Figures {
            start: [start(&l.runc), start(&l.crun)],
            hook_load: row(&l.hook_load, None, None),
            hook_join: row(&l.hook_join, None, None),
            runc_noop: row(&l.runc_noop, None, Some(&stats::paired(&l.runc_noop, &l.runc[0]))),
            empty_attach: Summary::of(attach_ms),
            rss_max_mib: mib.iter().copied().fold(f64::NAN, f64::max),
            rss_mib: row(&mib, None, None),
            tracer_cpu_ms: row(&t.cpu_ms, None, None),
            tracer_threads: Summary::of(&t.threads),
            container,
            host_base: series(&h.base),
            host_strace: series(&h.strace),
            host_k: KS.iter().zip(&h.k).map(|(&k, s)| (k, series(s))).collect(),
            alt_base: series(&a.base),
            host_floor: series(&a.floor),
            host_miss: series(&a.miss),
            host_hit: series(&a.hit),
            alt_k: KS.iter().zip(&a.k).map(|(&k, s)| (k, series(s))).collect(),
            k16_over_k1: series(&a.k16_over_k1),
            traced_loop: [series(&tl.base), series(&tl.floor), series(&tl.traced)],
        }
    }

    /// One line of the summary table per target of issue 4.
    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut v = Vec::new();
        let verdict = |target, what: &str, got: String, want: String, ok| Verdict {
            target,
            what: what.to_string(),
            got,
            want,
            ok,
        };
        for (name, rows) in ["runc", "crun"].iter().zip(&self.start) {
            let d = rows[1].paired_median();
            v.push(verdict(
                Target::Start,
                &format!("start latency added by tracing ({name})"),
                format!("{d:+.1} ms"),
                format!("<= {} ms", target::START_ADDED_MS),
                d <= target::START_ADDED_MS,
            ));
        }
        v.push(verdict(
            Target::Rss,
            "tracer peak RSS (max of runs)",
            format!("{:.1} MiB", self.rss_max_mib),
            format!("<= {} MiB", target::RSS_MIB),
            self.rss_max_mib <= target::RSS_MIB,
        ));
        // Added cost over the empty program's, against FLOOR_RATIO.
        let floor_verdict = |which, what: &str, above: f64, floor: f64| {
            let r = stats::ratio(above, floor);
            verdict(
                which,
                what,
                format!("{above:+.1} ns / {floor:+.1} ns = {}", fmt_ratio(r)),
                format!("<= {}x", target::FLOOR_RATIO),
                r.is_some_and(|r| r <= target::FLOOR_RATIO),
            )
        };
        v.push(floor_verdict(
            Target::Traced,
            "syscall of a traced container's task, above untraced, / empty-program floor (alternated)",
            self.traced_loop[2].paired_median(),
            self.traced_loop[1].paired_median(),
        ));
        let one = self.alt_k[0].1.paired_median();
        v.push(floor_verdict(
            Target::Untraced,
            "untraced host process, K=1, above K=0, / empty-program floor (alternated)",
            one,
            self.host_floor.paired_median(),
        ));
        let step = self.k16_over_k1.paired_median();
        let spread = self.k_spread();
        v.push(verdict(
            Target::Flat,
            "untraced host process, K=16 vs K=1 (alternated)",
            format!(
                "{step:+.1} ns on {one:+.1} ns ({})",
                spread.map_or("n/a".into(), |s| format!("{:+.0}%", s * 100.0))
            ),
            format!("within {:.0}%", target::K_SPREAD * 100.0),
            spread.is_some_and(|s| s.abs() <= target::K_SPREAD),
        ));
        v
    }

    /// The step from K=1 to K=16 (paired, alternated) over the K=1 cost
    /// above K=0.
    pub fn k_spread(&self) -> Option<f64> {
        stats::ratio(self.k16_over_k1.paired_median(), self.alt_k[0].1.paired_median())
    }
}

pub fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("n/a (floor not above noise)".into(), |r| format!("{r:.2}x"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pc(cpu_ns: f64) -> PerCall {
        PerCall { cpu_ns, wall_ns: cpu_ns }
    }

    fn series(cpu: &[f64], paired: &[f64]) -> Series {
        Series { abs: cpu.iter().map(|&v| pc(v)).collect(), paired: paired.to_vec() }
    }

    /// The figures are the medians of the paired differences, and the
    /// verdicts follow from them.
    #[test]
    fn verdicts_follow_the_paired_medians() {
        let a = Alternated {
            base: series(&[200.0, 202.0], &[-1.0, 1.0]),
            floor: series(&[300.0, 302.0, 305.0], &[99.0, 100.0, 104.0]),
            k: [series(&[352.0], &[151.0]), series(&[353.0], &[152.0]), series(&[356.0], &[155.0])],
            k16_over_k1: series(&[356.0, 355.0], &[4.0, 5.0]),
            ..Default::default()
        };
        let (l, t, c, h) = (Latency::default(), TracerUsage::default(), InContainer::default(), Host::default());
        let f = Figures::new(&l, &t, &c, &h, &a, &TracedLoop::default(), &[]);
        assert_eq!(f.host_floor.paired_median(), 100.0);
        assert_eq!(f.host_floor.abs.median, 302.0);
        assert_eq!(f.alt_k[0].1.paired_median(), 151.0);
        let spread = f.k_spread().unwrap();
        assert!((spread - 4.5 / 151.0).abs() < 1e-9, "{spread}");
        let v = f.verdicts();
        let untraced = v.iter().find(|v| v.target == Target::Untraced).unwrap();
        assert!(!untraced.ok, "151 ns over a 100 ns floor is over 1.5x: {}", untraced.got);
        let flat = v.iter().find(|v| v.target == Target::Flat).unwrap();
        assert!(flat.ok, "a 3% step is flat: {}", flat.got);
        let traced = v.iter().find(|v| v.target == Target::Traced).unwrap();
        assert!(!traced.ok && traced.got.contains("n/a"), "not measured is not met: {}", traced.got);
    }

    /// The traced verdict is the alternated loop's: its traced state over
    /// its own floor, whatever section 3 measured.
    #[test]
    fn the_traced_verdict_uses_the_alternated_loop() {
        let tl = TracedLoop {
            base: series(&[300.0], &[0.0]),
            floor: series(&[380.0, 382.0], &[80.0, 82.0]),
            traced: series(&[410.0, 420.0, 430.0], &[110.0, 120.0, 130.0]),
        };
        let c =
            InContainer { traced: series(&[500.0], &[200.0]), floor: series(&[380.0], &[80.0]), ..Default::default() };
        let (l, t, h, a) = (Latency::default(), TracerUsage::default(), Host::default(), Alternated::default());
        let v = Figures::new(&l, &t, &c, &h, &a, &tl, &[]).verdicts();
        let traced = v.iter().find(|v| v.target == Target::Traced).unwrap();
        assert!(traced.ok && traced.got.contains("+120.0 ns / +81.0 ns = 1.48x"), "{}", traced.got);
    }
}
