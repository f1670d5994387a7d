//! The numbers behind RESULTS.md: each figure of issue 4 reduced from the
//! raw samples, with its target verdict. Rendering is in render.rs.

use crate::probe::PerCall;
use crate::stats::{self, Summary};
use crate::suite::{Host, InContainer, Latency, TracerUsage, KS};

/// The old tool's figures, from /work/shared/BASELINE.md (it cannot run
/// here: bcc needs kernel headers this machine lacks).
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
    pub delta: Option<Summary>,
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

fn row(abs: &[f64], wall_ns: Option<&[f64]>, delta: Option<&[f64]>) -> Row {
    Row { abs: sum(abs), wall: wall_ns.map(sum), delta: delta.map(sum) }
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
    /// Host: untraced baseline, empty program, strace, then K = 1, 4, 16.
    pub host_base: Row,
    pub host_floor: Row,
    pub host_strace: Row,
    /// Reference program: namespace read + hash-map miss / hit and mark.
    pub host_miss: Row,
    pub host_hit: Row,
    pub host_k: Vec<(usize, Row)>,
}

impl Figures {
    pub fn new(l: &Latency, t: &TracerUsage, c: &InContainer, h: &Host, attach_ms: &[f64]) -> Figures {
        let start = |v: &[Vec<f64>; 2]| {
            let d = stats::paired(&v[1], &v[0]);
            [row(&v[0], None, None), row(&v[1], None, Some(&d))]
        };
        let col = |i: usize| c.rounds.iter().map(|r| r[i]).collect::<Vec<_>>();
        let (c0, c1, c2) = (col(0), col(1), col(2));
        let container = [
            row(&cpu(&c0), Some(&wall(&c0)), None),
            row(&cpu(&c1), Some(&wall(&c1)), Some(&stats::paired(&cpu(&c1), &cpu(&c0)))),
            row(&cpu(&c2), Some(&wall(&c2)), Some(&stats::paired(&cpu(&c2), &cpu(&c0)))),
        ];
        // Host samples are paired with the mean of their round's baseline
        // samples (one at each end of the round).
        let mut acc: [(Vec<f64>, Vec<f64>, Vec<f64>); 8] = Default::default();
        for r in &h.rounds {
            let base = cpu(&r.base);
            let b = base.iter().sum::<f64>() / base.len().max(1) as f64;
            let lists = [&r.base, &r.floor, &r.strace, &r.k[0], &r.k[1], &r.k[2], &r.miss, &r.hit];
            for (slot, list) in acc.iter_mut().zip(lists) {
                slot.0.extend(cpu(list));
                slot.1.extend(wall(list));
                slot.2.extend(cpu(list).iter().map(|v| v - b));
            }
        }
        let host = |i: usize, delta: bool| row(&acc[i].0, Some(&acc[i].1), delta.then_some(&acc[i].2[..]));
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
            host_base: host(0, true),
            host_floor: host(1, true),
            host_strace: host(2, true),
            host_miss: host(6, true),
            host_hit: host(7, true),
            host_k: KS.iter().enumerate().map(|(i, &k)| (k, host(3 + i, true))).collect(),
        }
    }

    fn delta(r: &Row) -> f64 {
        r.delta.map_or(f64::NAN, |d| d.median)
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
            let d = Self::delta(&rows[1]);
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
        let (traced, floor) = (Self::delta(&self.container[1]), Self::delta(&self.container[2]));
        let r = stats::ratio(traced, floor);
        v.push(verdict(
            Target::Traced,
            "syscall in a traced container, above untraced, / empty-program floor",
            format!("{traced:+.1} ns / {floor:+.1} ns = {}", fmt_ratio(r)),
            format!("<= {}x", target::FLOOR_RATIO),
            r.is_some_and(|r| r <= target::FLOOR_RATIO),
        ));
        let one = Self::delta(&self.host_k[0].1);
        let hfloor = Self::delta(&self.host_floor);
        let r = stats::ratio(one, hfloor);
        v.push(verdict(
            Target::Untraced,
            "untraced host process, K=1, above K=0, / empty-program floor",
            format!("{one:+.1} ns / {hfloor:+.1} ns = {}", fmt_ratio(r)),
            format!("<= {}x", target::FLOOR_RATIO),
            r.is_some_and(|r| r <= target::FLOOR_RATIO),
        ));
        let sixteen = Self::delta(&self.host_k[2].1);
        let spread = self.k_spread();
        v.push(verdict(
            Target::Flat,
            "untraced host process, K=16 vs K=1 (cost above K=0)",
            format!(
                "{sixteen:+.1} ns vs {one:+.1} ns ({})",
                spread.map_or("n/a".into(), |s| format!("{:+.0}%", s * 100.0))
            ),
            format!("within {:.0}%", target::K_SPREAD * 100.0),
            spread.is_some_and(|s| s.abs() <= target::K_SPREAD),
        ));
        v
    }

    /// The median of a row's paired differences (NaN when not measured).
    pub fn above(r: &Row) -> f64 {
        Self::delta(r)
    }

    /// (K=16 - K=1) / K=1, of the costs above the K=0 baseline.
    pub fn k_spread(&self) -> Option<f64> {
        let one = Self::delta(&self.host_k[0].1);
        let sixteen = Self::delta(&self.host_k[2].1);
        stats::ratio(sixteen - one, one)
    }
}

pub fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("n/a (floor not above noise)".into(), |r| format!("{r:.2}x"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::HostRound;

    fn pc(cpu_ns: f64) -> PerCall {
        PerCall { cpu_ns, wall_ns: cpu_ns }
    }

    /// Host samples are compared with their own round's baseline: a round
    /// where the whole machine ran 100 ns slower changes no difference.
    #[test]
    fn host_costs_are_paired_with_their_round() {
        let round = |slow: f64| HostRound {
            base: vec![pc(200.0 + slow), pc(202.0 + slow)],
            floor: vec![pc(300.0 + slow), pc(302.0 + slow)],
            miss: vec![pc(340.0 + slow); 2],
            hit: vec![pc(360.0 + slow); 2],
            strace: vec![pc(20000.0 + slow); 2],
            k: [vec![pc(352.0 + slow); 2], vec![pc(352.0 + slow); 2], vec![pc(356.0 + slow); 2]],
        };
        let host = Host { rounds: vec![round(0.0), round(100.0), round(0.0)] };
        let f = Figures::new(&Latency::default(), &TracerUsage::default(), &InContainer::default(), &host, &[]);
        assert_eq!(Figures::above(&f.host_floor), 100.0);
        assert_eq!(Figures::above(&f.host_k[0].1), 151.0);
        assert_eq!(f.host_k[0].1.abs.median, 352.0);
        let spread = f.k_spread().unwrap();
        assert!((spread - 4.0 / 151.0).abs() < 1e-9, "{spread}");
        let v = f.verdicts();
        let untraced = v.iter().find(|v| v.target == Target::Untraced).unwrap();
        assert!(!untraced.ok, "151 ns over a 100 ns floor is over 1.5x: {}", untraced.got);
        let flat = v.iter().find(|v| v.target == Target::Flat).unwrap();
        assert!(flat.ok, "a 3% step is flat: {}", flat.got);
    }
}
