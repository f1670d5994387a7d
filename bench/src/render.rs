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
    /// The kind of the empty program, raw_tp or tp_btf.
    pub floor_kind: String,
    /// The recorder's kind of hook (raw_tp, tp_btf).
    pub recorder_kind: String,
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

pub fn markdown(f: &Figures, run: &RunInfo) -> String {
    [
        header(run),
        machine(run),
        targets(f),
        start_latency(f, run),
        tracer(f, run),
        in_container(f, run),
        host(f, run),
        alternated(f, run),
        traced_loop(f, run),
        crate::notes::notes(f),
    ]
    .concat()
}

fn header(run: &RunInfo) -> String {
    format!(
        "# Benchmark results\n\nWritten by `cargo run --release -p bench -- {}` (`just bench`) on {}, in {:.1} \
         minutes. Do not edit: rerun instead. How the figures are measured: [README.md](README.md).\n\n",
        run.args, run.date, run.minutes
    )
}

/// The machine, the run's settings, and how to read the figures.
fn machine(run: &RunInfo) -> String {
    let (mc, cfg) = (&run.machine, &run.cfg);
    let mut s = String::from("## Machine\n\n");
    let _ = writeln!(s, "- kernel `{}`, CPU `{}`, nproc {}, {:.0} GiB", mc.kernel, mc.cpu, mc.nproc, mc.mem_gib);
    let tools: Vec<String> = mc.tools.iter().map(|(t, v)| format!("{t}: `{v}`")).collect();
    let _ = writeln!(s, "- {}", tools.join(", "));
    let mit: Vec<String> = mc.mitigations.iter().map(|(v, m)| format!("{v}: `{m}`")).collect();
    let _ = writeln!(s, "- mitigations that tax kernel calls and returns: {}", mit.join("; "));
    let _ = writeln!(
        s,
        "- hook built from commit `{}`; its recorder is a `{}` program, the floor an empty `{}` one on the same \
         sys_enter hook",
        mc.commit, run.recorder_kind, run.floor_kind
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
        crate::suite::LATENCY_ROUNDS_PER_RUN * cfg.runs,
        cfg.runs,
        cfg.sleep_secs,
        cfg.runs,
        cfg.chunks,
        cfg.calls,
        cfg.host_rounds,
        (cfg.calls / 10).max(1000)
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
         headers this machine lacks), so its column gives its published figures (upstream v1.3.1-dev, measured \
         on another machine of this kind): its own workloads (`busybox dd`) and wall time, so compare orders \
         of magnitude and growth with K, not single ns.\n"
    );
    s
}

fn targets(f: &Figures) -> String {
    let rows: Vec<Vec<String>> = f
        .verdicts()
        .into_iter()
        .map(|v| vec![v.what, v.got, v.want, if v.ok { "met".into() } else { "**not met**".into() }])
        .collect();
    format!("## Targets\n\n{}", table(&["figure", "measured", "target", "verdict"], &rows))
}

fn start_latency(f: &Figures, run: &RunInfo) -> String {
    let mut s = String::from("\n## 1. Container start latency\n\n");
    s.push_str("`podman run --rm IMAGE /bin/true`, wall time of the podman command in ms; the hook process alone as a runtime runs it (OCI state on stdin, for a process in its own mount namespace), until it returns.\n\n");
    let mut rows = Vec::new();
    for (name, r) in ["runc", "crun"].iter().zip(&f.start) {
        rows.push(vec![format!("{name}, untraced"), fs(Some(r[0].abs), 1), "-".into(), "362 ms".into()]);
        rows.push(vec![
            format!("{name}, traced"),
            fs(Some(r[1].abs), 1),
            fd(r[1].paired, 1),
            format!("953 ms (+{} ms)", old::START_ADDED_MS),
        ]);
    }
    rows.push(vec![
        "runc, a /bin/true prestart hook instead".into(),
        fs(Some(f.runc_noop.abs), 1),
        fd(f.runc_noop.paired, 1),
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
        format!("for scale: load + attach of the empty {} program in the bench's process", run.floor_kind),
        fs(f.empty_attach, 1),
        "-".into(),
        "-".into(),
    ]);
    s.push_str(&table(&["variant", "ms", "added by tracing, ms", "old tool"], &rows));
    s
}

fn tracer(f: &Figures, run: &RunInfo) -> String {
    let mut s = format!("\n## 2. Tracer of a {}-second container\n\n", run.cfg.sleep_secs);
    s.push_str("As the tracer logs them at exit (getrusage of itself); threads read from /proc while it runs.\n\n");
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
    s
}

fn in_container(f: &Figures, run: &RunInfo) -> String {
    let mut s = String::from("\n## 3. Per-syscall cost inside a container\n\n");
    s.push_str(
        "`sysprobe loop N` (raw getppid) in runc containers, CPU time per call in ns (wall time for reference: \
         it also counts time the VM gave to others). In each untraced container the empty program is switched \
         on and off every 0.3 s and its samples are paired with the nearest program-free ones; traced \
         containers alternate with untraced ones and are compared with the neighbouring untraced container.\n\n",
    );
    let floor_name = format!("untraced, empty {} program attached (floor)", run.floor_kind);
    let names = ["untraced container", "traced container", floor_name.as_str()];
    s.push_str(&traced_table(&names, &f.container, 1, f.container[2].paired_median()));
    s
}

/// The table of a traced variant beside its untraced baseline and floor
/// (sections 3 and 6): only row `traced` gets the ratio to `floor` and the
/// old tool's figure.
fn traced_table(names: &[&str], rows: &[Row], traced: usize, floor: f64) -> String {
    let rows: Vec<Vec<String>> = names
        .iter()
        .zip(rows)
        .enumerate()
        .map(|(i, (n, r))| {
            let vs_floor = if i == traced { fmt_ratio(stats::ratio(r.paired_median(), floor)) } else { "-".into() };
            let oldv = if i == traced { format!("+{} ns", old::IN_CONTAINER_NS) } else { "-".into() };
            vec![n.to_string(), fs(Some(r.abs), 1), fd(r.paired, 1), vs_floor, fs(r.wall, 1), oldv]
        })
        .collect();
    table(&["variant", "ns/call", "above untraced", "/ floor", "wall ns/call", "old tool"], &rows)
}

/// A row of the host tables (sections 4 and 5), its ratio to the floor of
/// section 5.
fn host_row(f: &Figures, name: String, r: &Row, digits: usize, oldv: String) -> Vec<String> {
    vec![
        name,
        fs(Some(r.abs), digits),
        fd(r.paired, digits),
        fmt_ratio(stats::ratio(r.paired_median(), f.host_floor.paired_median())),
        fs(r.wall, digits),
        oldv,
    ]
}

/// A baseline row: no ratio to the floor.
fn base_row(f: &Figures, name: &str, r: &Row) -> Vec<String> {
    let mut row = host_row(f, name.into(), r, 1, "-".into());
    row[3] = "-".into();
    row
}

/// The K rows, the old tool's figure at K=1.
fn k_rows(f: &Figures, ks: &[(usize, Row)], what: &str) -> Vec<Vec<String>> {
    let old_at = |k| if k == 1 { format!("+{} ns", old::HOST_ONE_NS) } else { "-".into() };
    ks.iter().map(|(k, r)| host_row(f, format!("K={k} {what}"), r, 1, old_at(*k))).collect()
}

const HOST_HEAD: [&str; 6] = ["variant", "ns/call", "above K=0", "/ floor", "wall ns/call", "old tool"];

fn host(f: &Figures, run: &RunInfo) -> String {
    let mut s = String::from("\n## 4. Untraced host process while K containers are traced\n\n");
    s.push_str(
        "`target/fixtures/sysprobe loop N` on the host, CPU time per call in ns, while K detached runc containers \
         (`sleep 1000`) are traced. Each round climbs K = 0, 1, 4, 16 and comes back down; samples are compared \
         with the round's K=0 median, seconds away, so the machine's fast and slow states (see section 5) widen \
         the quartiles. The floor column uses the floor of section 5.\n\n",
    );
    let mut rows = vec![base_row(f, "K=0 (no BPF)", &f.host_base)];
    rows.extend(k_rows(f, &f.host_k, "containers"));
    rows.push(host_row(f, "K=0, strace -f".into(), &f.host_strace, 0, "-".into()));
    s.push_str(&table(&HOST_HEAD, &rows));
    let _ = writeln!(s, "\n![cost per syscall against K]({})\n", run.chart);
    s
}

fn alternated(f: &Figures, run: &RunInfo) -> String {
    let kind = &run.floor_kind;
    let mut s = String::from("## 5. Floor, reference programs and K, alternated every half second\n\n");
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
        base_row(f, "K=0, no BPF", &f.alt_base),
        host_row(f, format!("empty {kind} program (floor)"), &f.host_floor, 1, "-".into()),
        host_row(f, "reference: namespace read, hash-map miss (untraced path)".into(), &f.host_miss, 1, "-".into()),
        host_row(f, "reference: namespace read, hash-map hit, mark (traced path)".into(), &f.host_hit, 1, "-".into()),
    ];
    rows.extend(k_rows(f, &f.alt_k, "stand-ins"));
    rows.push(base_row(f, "K=16 stand-ins, above K=1 (paired with K=1)", &f.k16_over_k1));
    s.push_str(&table(&HOST_HEAD, &rows));
    s.push('\n');
    s
}

fn traced_loop(f: &Figures, run: &RunInfo) -> String {
    let mut s = String::from("## 6. A traced syscall, alternated every half second\n\n");
    let _ = writeln!(
        s,
        "The host loop as a container's task is to the recorder: in a mount namespace of its own and under a \
         seccomp filter that allows everything (`timeit -s`). Every 0.5 s the bench switches between no program, \
         the empty `{}` program (the floor) and the loop's own namespace registered with the prestart hook (its \
         tracer started, then stopped with SIGTERM); each state sits next to a no-program window and is paired \
         with the nearest no-program samples. The loop is one process throughout, so the VM's drift between its \
         fast and slow states (section 5) weighs on neither side of a pair. The traced-syscall verdict uses this \
         section; section 3 measures the same in real containers, each against its neighbour.\n",
        run.floor_kind
    );
    let names = ["untraced, no BPF", "empty program attached (floor)", "its namespace traced"];
    s.push_str(&traced_table(&names, &f.traced_loop, 2, f.traced_loop[1].paired_median()));
    s.push('\n');
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

    /// An empty run still renders every section, in order, and names no
    /// file outside the repository.
    #[test]
    fn every_section_in_order() {
        use crate::suite::{Latency, TracerUsage};
        use crate::syscall_cost::{Host, InContainer};
        let (l, t, c, h) = (Latency::default(), TracerUsage::default(), InContainer::default(), Host::default());
        let f = Figures::new(&l, &t, &c, &h, &Default::default(), &Default::default(), &[]);
        let cfg = Config { runs: 1, calls: 10_000, chunks: 4, cycles: 1, host_rounds: 1, sleep_secs: 5 };
        let run = RunInfo {
            machine: Default::default(),
            cfg,
            args: "(defaults)".into(),
            date: "today".into(),
            minutes: 1.0,
            busy_pct: 0.0,
            steal_pct: 0.0,
            load: ("0".into(), "0".into()),
            foreign: 0,
            chart: "c.svg".into(),
            cpu: 0,
            floor_kind: "raw_tp".into(),
            recorder_kind: "raw_tp".into(),
        };
        let md = markdown(&f, &run);
        let heads: Vec<&str> = md.lines().filter(|l| l.starts_with("## ")).collect();
        assert_eq!(heads.len(), 9, "{heads:?}");
        assert!(heads[0] == "## Machine" && heads[1] == "## Targets" && heads[8] == "## Reading the verdicts");
        assert!(heads[7].starts_with("## 6. "), "{heads:?}");
        assert!(md.contains("the floor an empty `raw_tp` one"), "the floor kind is the run's");
        assert!(!md.contains("/work/") && !md.contains("BASELINE"), "names a file outside the repository");
    }

    #[test]
    fn formats_summaries_and_missing_figures() {
        let s = Summary { median: 1.25, q1: 1.0, q3: 2.0, n: 3 };
        assert_eq!(fs(Some(s), 1), "1.2 [1.0, 2.0]");
        assert_eq!(fd(Some(s), 0), "+1 [+1, +2]");
        assert_eq!(fs(None, 1), "-");
    }
}
