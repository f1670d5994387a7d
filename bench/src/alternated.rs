//! Section 5: the untraced host loop while the bench switches, every half
//! second, between no program, the reference programs, and K = 1, 4, 16
//! traced stand-ins, each state next to a baseline.
//!
//! Section 4 moves between K levels by starting and removing containers,
//! which takes seconds, and this VM switches between a fast and a slow
//! state (the same loop at ~210 or ~270 ns) on that same time scale, so its
//! level visits cannot resolve a 10% step or even tell 1.3 floors from 1.7.
//! Stand-ins can be switched in a fraction of a second: processes in their
//! own mount namespace (`unshare -m sleep`), registered and removed by the
//! same prestart hook, as in the hook-alone latency figure. To the BPF
//! program a stand-in is what a container is: an entry in its map, keyed
//! by mount namespace. The verdicts on untraced syscalls use these figures;
//! section 4 shows the same with real containers.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Result};

use crate::bpf::{self, AttachedReference, Census, Reference};
use hook_test_support::hook::StandIn;

use crate::harness::{text, wait_for_file, Harness};
use crate::probe::{self, Sample};
use crate::suite::Suite;
use crate::syscall_cost::Series;

const PERIOD: Duration = Duration::from_millis(500);
/// After a change of traced stand-ins: the hooks' and tracers' leftover
/// work (exits, cgroup moves, profile writing) must weigh on no state.
const SETTLE: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Base,
    Ref(Reference),
    K(usize),
}

/// Every reference and K level sits next to a baseline window; K=16 also
/// next to K=1, the comparison the flatness target is about.
const STATES: [State; 10] = [
    State::Base,
    State::Ref(Reference::Empty),
    State::Base,
    State::Ref(Reference::Miss),
    State::Base,
    State::Ref(Reference::Hit),
    State::Base,
    State::K(1),
    State::K(16),
    State::K(4),
];

#[derive(Debug, Default)]
pub struct Alternated {
    pub base: Series,
    pub floor: Series,
    pub miss: Series,
    pub hit: Series,
    /// K = 1, 4, 16 stand-ins, above the baseline.
    pub k: [Series; 3],
    /// K=16 paired with the nearest K=1 samples.
    pub k16_over_k1: Series,
}

/// Registered stand-ins; removing one waits for its tracer to finish.
struct StandIns<'a> {
    h: &'a Harness,
    live: Vec<(StandIn, PathBuf)>,
}

impl StandIns<'_> {
    fn resize(&mut self, n: usize) -> Result<()> {
        while self.live.len() < n {
            let (stand_in, out, _) = self.h.register_stand_in()?;
            self.live.push((stand_in, out));
        }
        for (stand_in, out) in self.live.split_off(n) {
            drop(stand_in);
            wait_for_file(&out, 20)?;
        }
        Ok(())
    }
}

/// The samples of every window of state `want`, in time order.
pub fn of<S: PartialEq>(states: &[S], by_state: &[Vec<Sample>], want: S) -> Vec<Sample> {
    let mut v: Vec<Sample> =
        states.iter().zip(by_state).filter(|(s, _)| **s == want).flat_map(|(_, v)| v.iter().copied()).collect();
    v.sort_by_key(|s| s.at_ns);
    v
}

impl Suite<'_> {
    pub fn alternated(&mut self) -> Result<Alternated> {
        self.progress("host loop, variants alternated", 0, 1);
        let (h, probe, calls) = (self.h, self.probe, self.cfg.calls);
        let mut stand_ins = StandIns { h, live: Vec::new() };
        let mut attached: Option<AttachedReference> = None;
        let (mut foreign, refs, cycles) = (0, &mut self.refs, 2 * self.cfg.cycles);
        let child = probe.spawn_host("", calls, 1_000_000)?;
        let cycled = probe::cycle_with(child, STATES.len(), PERIOD, cycles, probe::kill_group, |i| {
            attached = None;
            let k = match STATES[i] {
                State::K(k) => k,
                _ => 0,
            };
            let changed = stand_ins.live.len() != k;
            stand_ins.resize(k)?;
            if let State::Ref(r) = STATES[i] {
                attached = Some(refs.attach(r)?);
            }
            // The last tracer out unpins the program a moment after its
            // stand-in dies.
            foreign += usize::from(bpf::settle(Census::expected(k), 5) != Census::expected(k));
            if changed {
                std::thread::sleep(SETTLE);
            }
            Ok(())
        });
        drop(attached);
        stand_ins.resize(0)?;
        let (o, windows, ended) = cycled?;
        ensure!(!ended, "host loop ended early: {}", text(&o.stderr));
        self.foreign.samples += foreign;
        let by_state = probe::classify(&probe::samples(&text(&o.stdout), calls)?, &windows, STATES.len());
        let names = STATES.map(|s| match s {
            State::Base => "base".to_string(),
            State::Ref(r) => format!("{r:?}"),
            State::K(k) => format!("stand-ins K={k}"),
        });
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.log("alternated", &names, &by_state);

        let base = of(&STATES, &by_state, State::Base);
        let mut a = Alternated::default();
        let median = crate::syscall_cost::cpu_median(&base);
        a.base.add(&base, base.iter().map(|s| s.per_call.cpu_ns - median).collect::<Vec<_>>());
        let above = |s: &[Sample], reference: &[Sample]| probe::paired_with_nearest(s, reference);
        let [k1, k4, k16] = &mut a.k;
        for (series, state) in [
            (&mut a.floor, State::Ref(Reference::Empty)),
            (&mut a.miss, State::Ref(Reference::Miss)),
            (&mut a.hit, State::Ref(Reference::Hit)),
            (k1, State::K(1)),
            (k4, State::K(4)),
            (k16, State::K(16)),
        ] {
            let s = of(&STATES, &by_state, state);
            series.add(&s, above(&s, &base));
        }
        let (k1, k16) = (of(&STATES, &by_state, State::K(1)), of(&STATES, &by_state, State::K(16)));
        a.k16_over_k1.add(&k16, above(&k16, &k1));
        Ok(a)
    }
}
