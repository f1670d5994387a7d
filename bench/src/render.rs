//! RESULTS.md: the machine, the target verdicts, one table per figure of
//! issue 4, and the reading of the numbers that decide a verdict.

use std::fmt::Write;

use crate::machine::Machine;
use crate::report::{fmt_ratio, old, Figures, Row};
use crate::stats::{self, Summary};
use crate::suite::Config;

pub struct RunInfo {
    pub machine: Machine,
    pub cfg: Config,
    pub args: String,
    pub date: String,
    pub minutes: f64,
    pub busy_pct: f64,
    pub steal_pct: f64,
    pub load: (String, String),
    pub foreign: usize,
    pub chart: String,
    /// The CPU the loops are pinned to.
    pub cpu: usize,
}

/// A Markdown table; every row must have as many cells as `head`.
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));
    for r in rows {
        assert_eq!(r.len(), head.len(), "row {r:?} does not fit {head:?}");
        let _ = writeln!(s, "| {} |", r.join(" | "));
    }
    s
}

/// `median [q1, q3]`, or a dash for a figure with no samples.
fn fs(s: Option<Summary>, digits: usize) -> String {
    match s {
        Some(s) if s.n > 0 => format!("{:.d$} [{:.d$}, {:.d$}]", s.median, s.q1, s.q3, d = digits),
        _ => "-".into(),
    }
}

fn fd(s: Option<Summary>, digits: usize) -> String {
    match s {
        Some(s) if s.n > 0 => format!("{:+.d$} [{:+.d$}, {:+.d$}]", s.median, s.q1, s.q3, d = digits),
        _ => "-".into(),
    }
}

fn m(r: &Row) -> f64 {
    r.delta.map_or(f64::NAN, |d| d.median)
}

pub fn markdown(f: &Figures, run: &RunInfo) -> String {
    let mut s = String::new();
    let mc = &run.machine;
    let _ = writeln!(s, "# Benchmark results\n");
    let _ = writeln!(
        s,
        "Written by `cargo run --release -p bench -- {}` (`just bench`) on {}, in {:.1} minutes. \
         Do not edit: rerun instead. How the figures are measured: [README.md](README.md).\n",
        run.args, run.date, run.minutes
    );
    let _ = writeln!(s, "## Machine\n");
    let _ = writeln!(s, "- kernel `{}`, CPU `{}`, nproc {}, {:.0} GiB", mc.kernel, mc.cpu, mc.nproc, mc.mem_gib);
    let tools: Vec<String> = mc.tools.iter().map(|(t, v)| format!("{t}: `{v}`")).collect();
    let _ = writeln!(s, "- {}", tools.join(", "));
    let mit: Vec<String> = mc.mitigations.iter().map(|(v, m)| format!("{v}: `{m}`")).collect();
    let _ = writeln!(s, "- mitigations that tax kernel calls and returns: {}", mit.join("; "));
    let _ = writeln!(
        s,
        "- hook built from commit `{}`; its recorder is a `{}` program, the floor an empty `{}` one on the same \
         sys_enter hook",
        mc.commit,
        crate::bpf::RECORDER_KIND,
        crate::bpf::floor_kind()
    );
    let _ = writeln!(
        s,
        "- during the run: all CPUs {:.0}% busy (the bench included), {:.1}% stolen by the hypervisor; \
         load average {} at the start, {} at the end",
        run.busy_pct, run.steal_pct, run.load.0, run.load.1
    );
    let _ = writeln!(
        s,
        "- loops pinned to CPU {} (the vCPUs of this VM are fast or slow independently); {} podman runs per \
         start-latency variant; {} runs of the {} s container for the tracer; {} rounds \
         of containers for section 3, {} loop samples of {} getppid each per container; {} rounds for \
         sections 4-5 ({} getppid per sample under strace)",
        run.cpu,
        crate::suite::LATENCY_ROUNDS_PER_RUN * run.cfg.runs,
        run.cfg.runs,
        run.cfg.sleep_secs,
        run.cfg.runs,
        run.cfg.chunks,
        run.cfg.calls,
        run.cfg.host_rounds,
        (run.cfg.calls / 10).max(1000)
    );
    if run.foreign > 0 {
        let _ = writeln!(
            s,
            "- **{} samples were taken while containers traced by someone else ran** (the bench waited two \
             minutes in all for them to leave, then kept measuring)",
            run.foreign
        );
    }
    let _ = writeln!(
        s,
        "\nFigures are `median [first quartile, third quartile]`. \"Added\" and \"above\" figures are medians of \
         differences between samples taken next to each other in time (the same round, or neighbouring windows \
         of an alternated loop), not differences of medians. The old tool cannot run here (bcc needs kernel \
         headers this machine lacks), so its column is copied from `/work/shared/BASELINE.md`: another machine \
         of this kind, its own workloads (`busybox dd`) and wall time, so compare orders of magnitude and growth \
         with K, not single ns.\n"
    );

    let _ = writeln!(s, "## Targets\n");
    let rows: Vec<Vec<String>> = f
        .verdicts()
        .into_iter()
        .map(|v| vec![v.what, v.got, v.want, if v.ok { "met".into() } else { "**not met**".into() }])
        .collect();
    s.push_str(&table(&["figure", "measured", "target", "verdict"], &rows));

    let _ = writeln!(s, "\n## 1. Container start latency\n");
    let _ = writeln!(s, "`podman run --rm IMAGE /bin/true`, wall time of the podman command in ms; the hook process alone as a runtime runs it (OCI state on stdin, for a process in its own mount namespace), until it returns.\n");
    let mut rows = Vec::new();
    for (name, r) in ["runc", "crun"].iter().zip(&f.start) {
        rows.push(vec![format!("{name}, untraced"), fs(Some(r[0].abs), 1), "-".into(), "362 ms".into()]);
        rows.push(vec![
            format!("{name}, traced"),
            fs(Some(r[1].abs), 1),
            fd(r[1].delta, 1),
            format!("953 ms (+{} ms)", old::START_ADDED_MS),
        ]);
    }
    rows.push(vec![
        "runc, a /bin/true prestart hook instead".into(),
        fs(Some(f.runc_noop.abs), 1),
        fd(f.runc_noop.delta, 1),
        "-".into(),
    ]);
    rows.push(vec![
        "hook alone, loads the program".into(),
        fs(Some(f.hook_load.abs), 1),
        "-".into(),
        format!("{} ms", old::HOOK_MS),
    ]);
    rows.push(vec!["hook alone, joins a loaded program".into(), fs(Some(f.hook_join.abs), 1), "-".into(), "-".into()]);
    rows.push(vec![
        format!("for scale: load + attach of the empty {} program in the bench's process", crate::bpf::floor_kind()),
        fs(f.empty_attach, 1),
        "-".into(),
        "-".into(),
    ]);
    s.push_str(&table(&["variant", "ms", "added by tracing, ms", "old tool"], &rows));

    let _ = writeln!(s, "\n## 2. Tracer of a {}-second container\n", run.cfg.sleep_secs);
    let _ =
        writeln!(s, "As the tracer logs them at exit (getrusage of itself); threads read from /proc while it runs.\n");
    let rows = vec![
        vec![
            "peak RSS, MiB".into(),
            fs(Some(f.rss_mib.abs), 2),
            format!("{:.2}", f.rss_max_mib),
            format!("{} MiB", old::RSS_MIB),
        ],
        vec!["CPU time, ms".into(), fs(Some(f.tracer_cpu_ms.abs), 0), "-".into(), "-".into()],
        vec!["threads".into(), fs(f.tracer_threads, 0), "-".into(), format!("{}", old::THREADS)],
    ];
    s.push_str(&table(&["figure", "median", "max", "old tool"], &rows));

    let _ = writeln!(s, "\n## 3. Per-syscall cost inside a container\n");
    let _ = writeln!(
        s,
        "`sysprobe loop N` (raw getppid) in runc containers, CPU time per call in ns (wall time for reference: \
         it also counts time the VM gave to others). In each untraced container the empty program is switched \
         on and off every 0.3 s and its samples are paired with the nearest program-free ones; traced \
         containers alternate with untraced ones and are compared with the neighbouring untraced container.\n"
    );
    let floor_name = format!("untraced, empty {} program attached (floor)", crate::bpf::floor_kind());
    let names = ["untraced container", "traced container", floor_name.as_str()];
    let rows: Vec<Vec<String>> = names
        .iter()
        .zip(&f.container)
        .enumerate()
        .map(|(i, (n, r))| {
            let vs_floor = if i == 1 { fmt_ratio(stats::ratio(m(r), m(&f.container[2]))) } else { "-".into() };
            let oldv = if i == 1 { format!("+{} ns", old::IN_CONTAINER_NS) } else { "-".into() };
            vec![n.to_string(), fs(Some(r.abs), 1), fd(r.delta, 1), vs_floor, fs(r.wall, 1), oldv]
        })
        .collect();
    s.push_str(&table(&["variant", "ns/call", "above untraced", "/ floor", "wall ns/call", "old tool"], &rows));

    let kind = crate::bpf::floor_kind();
    let line = |name: String, r: &Row, digits: usize, oldv: String| {
        vec![
            name,
            fs(Some(r.abs), digits),
            fd(r.delta, digits),
            fmt_ratio(stats::ratio(m(r), m(&f.host_floor))),
            fs(r.wall, digits),
            oldv,
        ]
    };
    let head = ["variant", "ns/call", "above K=0", "/ floor", "wall ns/call", "old tool"];
    let _ = writeln!(s, "\n## 4. Untraced host process while K containers are traced\n");
    let _ = writeln!(
        s,
        "`target/fixtures/sysprobe loop N` on the host, CPU time per call in ns, while K detached runc containers \
         (`sleep 1000`) are traced. Each round climbs K = 0, 1, 4, 16 and comes back down; samples are compared \
         with the round's K=0 median, seconds away, so the machine's fast and slow states (see section 5) widen \
         the quartiles. The floor column uses the floor of section 5.\n"
    );
    let mut rows = vec![line("K=0 (no BPF)".into(), &f.host_base, 1, "-".into())];
    rows[0][3] = "-".into();
    for (k, r) in &f.host_k {
        let oldv = if *k == 1 { format!("+{} ns", old::HOST_ONE_NS) } else { "-".into() };
        rows.push(line(format!("K={k} containers"), r, 1, oldv));
    }
    rows.push(line("K=0, strace -f".into(), &f.host_strace, 0, "-".into()));
    s.push_str(&table(&head, &rows));
    let _ = writeln!(s, "\n![cost per syscall against K]({})\n", run.chart);

    let _ = writeln!(s, "## 5. Floor, reference programs and K, alternated every half second\n");
    let _ = writeln!(
        s,
        "The same host loop runs on while the bench switches, every 0.5 s, between no program, the empty \
         `{kind}` program (the floor), the reference program (README.md) missing or hitting for every host task, \
         and K = 1, 16, 4 traced stand-ins: processes in their own mount namespace that the same prestart hook \
         registers and removes, which is what a container is to the BPF program, and which, unlike containers, \
         can be switched faster than this VM drifts. Every state sits next to a no-program window and is paired \
         with the nearest no-program samples. The target verdicts on untraced syscalls use this section.\n"
    );
    let mut rows = vec![
        line("K=0, no BPF".into(), &f.alt_base, 1, "-".into()),
        line(format!("empty {kind} program (floor)"), &f.host_floor, 1, "-".into()),
        line("reference: namespace read, hash-map miss (untraced path)".into(), &f.host_miss, 1, "-".into()),
        line("reference: namespace read, hash-map hit, mark (traced path)".into(), &f.host_hit, 1, "-".into()),
    ];
    rows[0][3] = "-".into();
    for (k, r) in &f.alt_k {
        let oldv = if *k == 1 { format!("+{} ns", old::HOST_ONE_NS) } else { "-".into() };
        rows.push(line(format!("K={k} stand-ins"), r, 1, oldv));
    }
    let mut step = line("K=16 stand-ins, above K=1 (paired with K=1)".into(), &f.k16_over_k1, 1, "-".into());
    step[3] = "-".into();
    rows.push(step);
    s.push_str(&table(&head, &rows));
    s.push('\n');
    s.push_str(&crate::notes::notes(f));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_markdown_table() {
        let t = table(&["a", "b"], &[vec!["1".into(), "2".into()], vec!["x".into(), "y".into()]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |\n| x | y |\n");
    }

    #[test]
    fn formats_summaries_and_missing_figures() {
        let s = Summary { median: 1.25, q1: 1.0, q3: 2.0, n: 3 };
        assert_eq!(fs(Some(s), 1), "1.2 [1.0, 2.0]");
        assert_eq!(fd(Some(s), 0), "+1 [+1, +2]");
        assert_eq!(fs(None, 1), "-");
    }
}
