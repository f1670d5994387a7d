//! `vm-harness userland`: the integration tests against newer podman, runc and crun on the host
//! kernel. For each userland: its root from `rootfs` (built or cached), the command in it through
//! `chroot`, then one table row (versions, test counts, wall time) and what failed.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::chroot::{self, ChrootJob, SETUP_FAILED};
use crate::exit;
use crate::report::{self, TestCounts, Verdict};
use crate::rootfs::{self, Root, Userland};

/// Everything a run needs besides the userland.
#[derive(Debug, Clone)]
pub struct UserlandJob {
    /// apt state per suite (shared with the kernels: `cache/apt/<suite>`).
    pub apt_dir: PathBuf,
    /// Where roots are cached: `<roots>/<name>/<key>/root`.
    pub roots: PathBuf,
    /// The chroot job, with `root` filled in per userland.
    pub template: ChrootJob,
}

/// One userland's result.
#[derive(Debug)]
pub struct UserlandReport {
    pub userland: Userland,
    pub root: Option<Root>,
    /// The command's run (load and tests), without building the root.
    pub wall: Duration,
    pub counts: TestCounts,
    pub verdict: Verdict,
    pub output: String,
}

/// Runs the job on each userland in turn (they share the host's cgroups and BPF state, so not
/// in parallel), streaming the command's output to `live`.
pub fn run_all(userlands: &[Userland], job: &UserlandJob, live: &mut dyn Write) -> Vec<UserlandReport> {
    userlands.iter().map(|u| run_one(*u, job, live)).collect()
}

fn run_one(userland: Userland, job: &UserlandJob, live: &mut dyn Write) -> UserlandReport {
    let start = Instant::now();
    let infra = |root, reason: String, output| UserlandReport {
        userland,
        root,
        wall: start.elapsed(),
        counts: TestCounts::default(),
        verdict: Verdict::Infra(reason),
        output,
    };
    let _ = writeln!(live, "vm-harness: userland {}: resolving versions, building the root if needed", userland.name);
    let root = match rootfs::ensure(userland, &job.apt_dir, &job.roots) {
        Ok(root) => root,
        Err(e) => return infra(None, format!("{:#}", anyhow::Error::from(e)), String::new()),
    };
    let built = root.built_in.map_or("cached".to_owned(), |d| format!("built in {:.0}s", d.as_secs_f64()));
    let _ = writeln!(
        live,
        "vm-harness: userland {}: podman {}, crun {}, runc {} ({built}): {}",
        userland.name,
        root.version("podman"),
        root.version("crun"),
        root.version("runc"),
        root.path.display()
    );
    let start = Instant::now();
    let chroot_job = ChrootJob { root: root.path.clone(), ..job.template.clone() };
    let (status, output) = match chroot::run(&chroot_job, live) {
        Ok(done) => done,
        Err(e) => return infra(Some(root), format!("{:#}", anyhow::Error::from(e)), String::new()),
    };
    if status == SETUP_FAILED {
        let reason = output.lines().rev().find_map(|l| l.strip_prefix(chroot::ERROR_PREFIX)).unwrap_or("setup failed");
        return infra(Some(root), reason.to_owned(), output);
    }
    let counts = report::parse_libtest(&output);
    let verdict = if status == 0 && counts.failed == 0 { Verdict::Pass } else { Verdict::Fail };
    UserlandReport { userland, root: Some(root), wall: start.elapsed(), counts, verdict, output }
}

/// The table printed at the end, then what failed on each userland.
pub fn render(reports: &[UserlandReport]) -> String {
    let header = ["userland", "podman", "crun", "runc", "passed", "failed", "skipped", "root", "wall", "result"];
    let rows: Vec<Vec<String>> = reports.iter().map(row).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out += &line(r);
    }
    for r in reports {
        match &r.verdict {
            Verdict::Infra(reason) => out += &format!("{}: infrastructure failure: {reason}\n", r.userland.name),
            Verdict::Fail => {
                out +=
                    &format!("---- {}: what failed ----\n{}", r.userland.name, report::failure_excerpt(&r.output, 80))
            }
            Verdict::Pass => {}
        }
    }
    out
}

fn row(r: &UserlandReport) -> Vec<String> {
    let version = |p| r.root.as_ref().map_or("-".to_owned(), |root| root.version(p).to_owned());
    let built = match &r.root {
        None => "-".to_owned(),
        Some(Root { built_in: None, .. }) => "cached".to_owned(),
        Some(Root { built_in: Some(d), .. }) => format!("built {:.0}s", d.as_secs_f64()),
    };
    vec![
        r.userland.name.to_owned(),
        version("podman"),
        version("crun"),
        version("runc"),
        r.counts.passed.to_string(),
        r.counts.failed.to_string(),
        r.counts.skipped.to_string(),
        built,
        format!("{:.1}s", r.wall.as_secs_f64()),
        match r.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Infra(_) => "INFRA",
        }
        .to_owned(),
    ]
}

/// The process exit code for these results, as for the VM matrix.
pub fn exit_code(reports: &[UserlandReport]) -> i32 {
    if reports.iter().any(|r| matches!(r.verdict, Verdict::Infra(_))) {
        exit::INFRA
    } else if reports.iter().any(|r| r.verdict == Verdict::Fail) {
        exit::TEST_FAILURE
    } else {
        exit::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::USERLANDS;

    fn report(verdict: Verdict, built_in: Option<Duration>) -> UserlandReport {
        let versions = [("podman", "5.8.6+ds1-1"), ("crun", "1.28-1"), ("runc", "1.3.6+ds1-1")];
        let root = Root {
            userland: USERLANDS[1],
            path: "/r".into(),
            versions: versions.iter().map(|(p, v)| (p.to_string(), v.to_string())).collect(),
            built_in,
        };
        UserlandReport {
            userland: USERLANDS[1],
            root: Some(root),
            wall: Duration::from_millis(61_250),
            counts: TestCounts { passed: 30, failed: 1, skipped: 2 },
            verdict,
            output: "failures:\n    podman::it_fails\n\ntest result: FAILED. 30 passed; 1 failed\n".into(),
        }
    }

    #[test]
    fn table_shows_versions_counts_and_what_failed() {
        let text = render(&[report(Verdict::Fail, None)]);
        let row = text.lines().nth(1).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells, ["sid", "5.8.6+ds1-1", "1.28-1", "1.3.6+ds1-1", "30", "1", "2", "cached", "61.2s", "FAIL"]);
        assert!(text.contains("---- sid: what failed ----\nfailures:\n    podman::it_fails"), "{text}");
    }

    #[test]
    fn exit_code_table() {
        let cases = [
            (vec![Verdict::Pass, Verdict::Pass], exit::OK),
            (vec![Verdict::Pass, Verdict::Fail], exit::TEST_FAILURE),
            (vec![Verdict::Fail, Verdict::Infra("x".into())], exit::INFRA),
        ];
        for (verdicts, expected) in cases {
            let reports: Vec<_> = verdicts.into_iter().map(|v| report(v, Some(Duration::from_secs(40)))).collect();
            assert_eq!(exit_code(&reports), expected);
        }
    }
}
