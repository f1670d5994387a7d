//! Section 6: the cost of a traced syscall, alternated. The host loop runs
//! as a container's task is to the recorder (its own mount namespace, a
//! seccomp filter), and every half second the bench switches between no
//! program, the empty program (the floor) and the loop's own namespace
//! registered with the hook, each state next to a baseline.
//!
//! Section 3 measures the same in real containers, but there a traced
//! container is compared with the untraced container before or after it,
//! seconds away, and this VM drifts between a fast and a slow state on that
//! time scale (section 5): its quartiles span the target. Here the loop is
//! the same process throughout, so the traced-syscall verdict uses this.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::alternated::of;
use crate::bpf::{AttachedReference, Census, Reference};
use crate::harness::{text, wait_for_file};
use crate::probe::{self, Sample};
use crate::suite::Suite;
use crate::syscall_cost::Series;

const PERIOD: Duration = Duration::from_millis(500);
/// After the tracer starts or leaves: its work must weigh on no state.
const SETTLE: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Base,
    Floor,
    Traced,
}

const STATES: [State; 4] = [State::Base, State::Floor, State::Base, State::Traced];

#[derive(Debug, Default)]
pub struct TracedLoop {
    pub base: Series,
    pub floor: Series,
    pub traced: Series,
}

impl Suite<'_> {
    pub fn traced_loop(&mut self) -> Result<TracedLoop> {
        self.progress("a traced loop, alternated", 0, 1);
        let (h, probe, calls) = (self.h, self.probe, self.cfg.calls);
        let child = probe.spawn_host_as_container(calls, 1_000_000)?;
        let pid = child.id();
        wait_for_own_namespace(pid)?;
        let (refs, cycles) = (&mut self.refs, 2 * self.cfg.cycles);
        let mut attached: Option<AttachedReference> = None;
        let mut tracer: Option<(u32, std::path::PathBuf)> = None;
        let mut foreign = 0;
        let cycled = probe::cycle_with(child, STATES.len(), PERIOD, cycles, probe::kill_group, |i| {
            attached = None;
            if let Some(t) = tracer.take() {
                stop_tracer(t)?;
            }
            match STATES[i] {
                State::Floor => attached = Some(refs.attach(Reference::Empty)?),
                State::Traced => tracer = Some(h.trace_namespace_of(pid)?),
                State::Base => {}
            }
            let k = usize::from(STATES[i] == State::Traced);
            foreign += usize::from(crate::bpf::settle(Census::expected(k), 5) != Census::expected(k));
            if matches!(STATES[i], State::Traced)
                || matches!(STATES[(i + STATES.len() - 1) % STATES.len()], State::Traced)
            {
                std::thread::sleep(SETTLE);
            }
            Ok(())
        });
        drop(attached);
        if let Some(t) = tracer.take() {
            stop_tracer(t)?;
        }
        let (o, windows, ended) = cycled?;
        ensure!(!ended, "the traced loop ended early: {}", text(&o.stderr));
        self.foreign.samples += foreign;
        let by_state = probe::classify(&probe::samples(&text(&o.stdout), calls)?, &windows, STATES.len());
        self.log("traced loop", &["base", "floor", "base", "traced"], &by_state);
        Ok(figures(&by_state))
    }
}

/// Base against its own median; the floor and the traced state each
/// paired with the nearest baseline samples.
fn figures(by_state: &[Vec<Sample>]) -> TracedLoop {
    let base = of(&STATES, by_state, State::Base);
    let mut t = TracedLoop::default();
    let median = crate::syscall_cost::cpu_median(&base);
    t.base.add(&base, base.iter().map(|s| s.per_call.cpu_ns - median).collect::<Vec<_>>());
    for (series, state) in [(&mut t.floor, State::Floor), (&mut t.traced, State::Traced)] {
        let s = of(&STATES, by_state, state);
        series.add(&s, probe::paired_with_nearest(&s, &base));
    }
    t
}

/// `unshare` execs the loop's shell once it has its namespace: until then
/// registering the pid would trace the bench's own namespace.
fn wait_for_own_namespace(pid: u32) -> Result<()> {
    let ns = |p: &str| hook_test_support::hook::mount_namespace(p).ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ns(&pid.to_string()).is_none() || ns(&pid.to_string()) == ns("self") {
        ensure!(Instant::now() < deadline, "the loop {pid} did not get a mount namespace of its own within 10 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// SIGTERM makes the tracer write its profile and leave (exit_watch.rs);
/// the last one out detaches the program. A tracer already gone (the loop
/// ended first) has written it too.
fn stop_tracer((tracer, out): (u32, std::path::PathBuf)) -> Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(tracer as i32, libc::SIGTERM) } != 0 {
        let e = std::io::Error::last_os_error();
        ensure!(e.raw_os_error() == Some(libc::ESRCH), "failed to stop the tracer {tracer}: {e}");
    }
    wait_for_file(&out, 20).context("the stopped tracer wrote no profile")?;
    Ok(())
}
