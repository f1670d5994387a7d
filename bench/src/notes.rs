//! "Reading the verdicts": for each target, the measurements of the same
//! run that explain it, and for a target not met, what limits it. Written
//! from the numbers, so the text stays true when the bench is rerun.

use std::fmt::Write;

use crate::report::{old, target, Figures, Row, Target};

fn x(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "n/a".into()
    }
}

fn iqr(r: &Row) -> String {
    r.paired.map_or("-".into(), |d| format!("[{:+.1}, {:+.1}]", d.q1, d.q3))
}

pub fn notes(f: &Figures) -> String {
    let verdicts = f.verdicts();
    let met = |t: Target| verdicts.iter().filter(|v| v.target == t).all(|v| v.ok);
    [
        "## Reading the verdicts\n\n".to_string(),
        start_latency(f, met(Target::Start)),
        tracer_memory(f, met(Target::Rss)),
        traced(f, met(Target::Traced)),
        untraced(f, met(Target::Untraced)),
        flat(f, met(Target::Flat)),
    ]
    .concat()
}

fn word(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "not met"
    }
}

fn start_latency(f: &Figures, met: bool) -> String {
    let mut s = String::new();
    let (load, join) = (f.hook_load.abs.median, f.hook_join.abs.median);
    let _ = writeln!(
        s,
        "- **Start latency** ({}). The hook process alone takes {load:.1} ms when its tracer loads and attaches \
         the program, {join:.1} ms when it joins one already loaded; a `/bin/true` prestart hook changes a runc \
         start by {:+.1} ms. The traced-minus-untraced differences have quartiles runc {}, crun {} ms: podman's \
         own run-to-run spread is of the size of the target.{}",
        word(met),
        f.runc_noop.paired_median(),
        iqr(&f.start[0][1]),
        iqr(&f.start[1][1]),
        if met {
            String::new()
        } else if load <= target::START_ADDED_MS {
            format!(
                " The hook itself stays under {} ms, so what is over the target in this run comes from around \
                 it (the tracer's work after `ready` runs while the container starts) or from that spread; \
                 rerun when the machine is quieter to tell them apart.",
                target::START_ADDED_MS
            )
        } else {
            format!(
                " The hook itself is over the target; loading and attaching an empty program of the same kind \
                 takes {:.1} ms in the bench's own process, so the rest is the hook's start-up and set-up.",
                f.empty_attach.map_or(f64::NAN, |e| e.median)
            )
        }
    );
    s
}

fn tracer_memory(f: &Figures, met: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "- **Tracer memory** ({}): peak RSS {:.2} MiB at most over the runs, against the old tool's {} MiB.",
        word(met),
        f.rss_max_mib,
        old::RSS_MIB
    );
    s
}

fn traced(f: &Figures, met: bool) -> String {
    let mut s = String::new();
    // The target "cost <= 1.5 floors" leaves the recorder half a floor of
    // its own work. The reference programs are the hash-map design (the
    // recorder's first), measured on the host.
    let hf = f.host_floor.paired_median();
    let hit = f.host_hit.paired_median() - hf;
    let (t, cf) = (f.traced_loop[2].paired_median(), f.traced_loop[1].paired_median());
    let (ct, ccf) = (f.container[1].paired_median(), f.container[2].paired_median());
    let _ = writeln!(
        s,
        "- **Traced syscalls** ({}): a traced container's task pays {t:+.1} ns per syscall, {} the empty \
         program's {cf:+.1} ns for the same task (section 6; in real containers, each against its neighbour, \
         {ct:+.1} ns on {ccf:+.1} ns, {}).{} The target leaves the recorder {:.1} ns of its own work; it does \
         {:.1} ns.{}",
        word(met),
        x(t, cf),
        x(ct, ccf),
        if cf < 0.85 * hf {
            format!(
                " (The empty program adds less for a task with a seccomp filter than for the host loop, \
                 {hf:+.1} ns: the filter already puts its syscalls on the kernel's slow path, so the same work \
                 weighs more floors there.)"
            )
        } else {
            String::new()
        },
        0.5 * cf,
        t - cf,
        limit(met, 0.5 * cf, t - cf, hit)
    );
    s
}

fn untraced(f: &Figures, met: bool) -> String {
    let mut s = String::new();
    let hf = f.host_floor.paired_median();
    let miss = f.host_miss.paired_median() - hf;
    let one = f.alt_k[0].1.paired_median();
    let _ = writeln!(
        s,
        "- **Untraced syscalls** ({}): with one namespace traced, every other process pays {one:+.1} ns per \
         syscall (section 5; {:+.1} ns with one real container in section 4, seconds from its baseline), {} \
         the floor ({hf:+.1} ns). The target leaves {:.1} ns of work above the floor; the recorder does {:.1} \
         ns.{}",
        word(met),
        f.host_k[0].1.paired_median(),
        x(one, hf),
        0.5 * hf,
        one - hf,
        limit(met, 0.5 * hf, one - hf, miss)
    );
    s
}

fn flat(f: &Figures, met: bool) -> String {
    let mut s = String::new();
    let one = f.alt_k[0].1.paired_median();
    let ks: Vec<String> = f.host_k.iter().map(|(k, r)| format!("K={k} {:+.1} {}", r.paired_median(), iqr(r))).collect();
    let step = f.k16_over_k1.paired_median();
    let _ = writeln!(
        s,
        "- **Flat in K** ({}): alternated, K=16 costs {step:+.1} ns {} per syscall more than K=1, \
         against the {one:+.1} ns K=1 costs above K=0. The untraced path reads the same 4 slots whatever the \
         number of traced containers. The container levels of section 4, seconds apart, give {} (ns above K=0, median \
         [quartiles]); their spread is the machine's fast and slow states, not K.{}",
        word(met),
        iqr(&f.k16_over_k1),
        ks.join(", "),
        if met {
            String::new()
        } else {
            format!(
                " 10% of the K=1 cost is {:.1} ns; the quartiles of the paired step show whether this run can \
                 resolve it. The old tool, for comparison, added a program, and its cost (+{} ns), per traced \
                 container.",
                target::K_SPREAD * one,
                old::HOST_ONE_NS
            )
        }
    );
    s
}

/// The recorder against the hash-map design, and what limits it when it is
/// over the target. All in ns of work above the floor.
fn limit(ok: bool, allowed: f64, recorder: f64, reference: f64) -> String {
    let mut s = format!(
        " The hash-map design (the reference program: namespace read, one hash lookup, a call into the \
         kernel) does {reference:.1} ns, {} the allowance; the recorder's slot table (lookups the verifier \
         inlines) does {:+.1} ns against it.",
        if reference > allowed { "over" } else { "within" },
        recorder - reference
    );
    if !ok {
        s += " What the recorder still does: one call (`bpf_get_current_task_btf`, a call and a return under \
              the mitigations listed above), three loads to the mount namespace and the slot loads; a recorder \
              that finds each task's container cannot skip the call on this kernel.";
    }
    s
}
