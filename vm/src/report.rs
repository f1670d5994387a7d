//! Reading a libtest run's output and the matrix table.

use std::time::Duration;

use crate::vm::{Outcome, VmReport};

/// Counts from a libtest binary's output.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TestCounts {
    pub passed: u32,
    pub failed: u32,
    /// Lines starting with `SKIPPED:`: our tests print `SKIPPED: <test>: <reason>` when the kernel
    /// lacks what they need (libtest itself would count them as passed).
    pub skipped: u32,
}

/// Sums every `test result: ... N passed; M failed; ...` line (one per test binary or doc-test
/// group) and counts the lines that start with `SKIPPED:`.
pub fn parse_libtest(output: &str) -> TestCounts {
    let mut counts = TestCounts::default();
    for line in output.lines() {
        // With --test-threads=1 --nocapture libtest prints `test NAME ... ` before running the
        // test, so the test's own first line lands right after it.
        let own_output = line.strip_prefix("test ").and_then(|rest| rest.split_once(" ... ")).map_or(line, |(_, r)| r);
        if own_output.starts_with("SKIPPED:") {
            counts.skipped += 1;
        }
        let Some(summary) = line.trim().strip_prefix("test result: ") else { continue };
        for part in summary.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(number)) = (words.next(), words.next()) else { continue };
            let Ok(n) = number.parse::<u32>() else { continue };
            match label {
                "passed" => counts.passed += n,
                "failed" => counts.failed += n,
                _ => {}
            }
        }
    }
    counts
}

/// The part of a failed run worth printing in a CI log: what each failed test printed (with
/// `--nocapture` that is inline, from its `test NAME ... ` line to the next test's) and libtest's
/// `failures:` section (captured outputs, then the names); without a `failures:` section (a crash,
/// a command that is not libtest), the last `tail` lines.
pub fn failure_excerpt(output: &str, tail: usize) -> String {
    let lines: Vec<&str> = output.lines().collect();
    // libtest prints `failures:` twice: before the captured outputs, then before the names.
    let Some(start) = lines.iter().position(|l| l.trim_end() == "failures:") else {
        return lines[lines.len().saturating_sub(tail)..].iter().map(|l| format!("{l}\n")).collect();
    };
    let end = lines[start..].iter().position(|l| l.starts_with("test result: ")).map_or(lines.len(), |n| start + n + 1);
    let section = &lines[start..end];
    // The names: the indented lines after the last `failures:` of the section.
    let names_from = section.iter().rposition(|l| l.trim_end() == "failures:").unwrap_or(0);
    let names: Vec<&str> = section[names_from..].iter().map(|l| l.trim()).filter(|l| !l.is_empty()).skip(1).collect();
    let mut excerpt = String::new();
    for (i, line) in lines[..start].iter().enumerate() {
        let Some((name, _)) = line.strip_prefix("test ").and_then(|r| r.split_once(" ... ")) else { continue };
        if !names.contains(&name) {
            continue;
        }
        let own = lines[i + 1..start].iter().take_while(|l| !l.starts_with("test ")).map(|l| format!("{l}\n"));
        excerpt += &format!("{line}\n{}", own.collect::<String>());
    }
    excerpt + &section.iter().map(|l| format!("{l}\n")).collect::<String>()
}

/// What a kernel's row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// The command exited non-zero or reported failed tests.
    Fail,
    /// The VM could not produce a result; see [`Outcome::Infra`].
    Infra(String),
}

/// One row of the matrix table.
#[derive(Debug, Clone)]
pub struct Row {
    pub series: String,
    pub version: String,
    pub release: String,
    pub counts: TestCounts,
    pub boot: Option<Duration>,
    pub wall: Duration,
    pub verdict: Verdict,
}

impl Row {
    pub fn from_report(report: &VmReport) -> Row {
        let (counts, verdict) = match &report.outcome {
            Outcome::Exited { status, output } => {
                let counts = parse_libtest(output);
                let verdict = if *status == 0 && counts.failed == 0 { Verdict::Pass } else { Verdict::Fail };
                (counts, verdict)
            }
            Outcome::Infra(reason) => (TestCounts::default(), Verdict::Infra(reason.clone())),
        };
        Row {
            series: report.kernel.series.clone(),
            version: report.kernel.version.clone(),
            release: report.kernel.release.clone(),
            counts,
            boot: report.boot,
            wall: report.wall,
            verdict,
        }
    }
}

/// The table printed after a matrix run, then one line per infrastructure failure.
pub fn render_table(rows: &[Row]) -> String {
    let header = ["kernel", "version", "passed", "failed", "skipped", "boot", "wall", "result"];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.release.clone(),
                r.version.clone(),
                r.counts.passed.to_string(),
                r.counts.failed.to_string(),
                r.counts.skipped.to_string(),
                r.boot.map_or("-".to_owned(), seconds),
                seconds(r.wall),
                match &r.verdict {
                    Verdict::Pass => "pass".to_owned(),
                    Verdict::Fail => "FAIL".to_owned(),
                    Verdict::Infra(_) => "INFRA".to_owned(),
                },
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| cells.iter().map(|c| c[i].len()).chain([header[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |fields: Vec<&str>| {
        let padded: Vec<String> = fields.iter().zip(&widths).map(|(f, w)| format!("{f:<w$}")).collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut table = line(header.to_vec());
    for c in &cells {
        table += &line(c.iter().map(String::as_str).collect());
    }
    for r in rows {
        if let Verdict::Infra(reason) = &r.verdict {
            table += &format!("{} ({}): infrastructure failure: {reason}\n", r.series, r.version);
        }
    }
    table
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_output_table() {
        let cases: &[(&str, TestCounts)] = &[
            ("", TestCounts::default()),
            (
                "test result: ok. 12 passed; 0 failed; 3 ignored; 0 measured; 0 filtered out; finished in 1.2s\n",
                TestCounts { passed: 12, failed: 0, skipped: 0 },
            ),
            (
                "test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n\
                 test result: ok. 5 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n",
                TestCounts { passed: 7, failed: 1, skipped: 0 },
            ),
            (
                "running 3 tests\nSKIPPED: tracer::attach: needs 5.11 (memcg accounting)\n\
                 test tracer::attach ... ok\n  SKIPPED: indented does not count\n\
                 test result: ok. 3 passed; 0 failed; 0 ignored\n",
                TestCounts { passed: 3, failed: 0, skipped: 1 },
            ),
            (
                // What libtest really prints with --test-threads=1 --nocapture.
                "test a ... SKIPPED: a: no BTF\nok\ntest b ... ok\ntest c ... ignored\n\n\
                 test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s\n",
                TestCounts { passed: 2, failed: 0, skipped: 1 },
            ),
        ];
        for (output, expected) in cases {
            assert_eq!(parse_libtest(output), *expected, "{output:?}");
        }
    }

    #[test]
    fn failure_excerpt_keeps_what_a_nocapture_test_printed() {
        let out = "test a ... ok\ntest b ... \nthread 'b' panicked at x.rs:1:\nboom\nFAILED\ntest c ... ok\n\n\
                   failures:\n\nfailures:\n    b\n\ntest result: FAILED. 2 passed; 1 failed\n";
        assert_eq!(
            failure_excerpt(out, 2),
            "test b ... \nthread 'b' panicked at x.rs:1:\nboom\nFAILED\n\
             failures:\n\nfailures:\n    b\n\ntest result: FAILED. 2 passed; 1 failed\n"
        );
    }

    #[test]
    fn failure_excerpt_is_the_failures_section_or_the_tail() {
        let failed = "test a ... ok\ntest b ... FAILED\n\nfailures:\n\n---- b stdout ----\nboom\n\n\
                      failures:\n    b\n\ntest result: FAILED. 1 passed; 1 failed\n\nafter\n";
        assert_eq!(
            failure_excerpt(failed, 2),
            "test b ... FAILED\n\nfailures:\n\n---- b stdout ----\nboom\n\nfailures:\n    b\n\ntest result: FAILED. 1 passed; 1 failed\n"
        );
        assert_eq!(failure_excerpt("one\ntwo\nthree\n", 2), "two\nthree\n");
        assert_eq!(failure_excerpt("", 2), "");
    }

    #[test]
    fn table_aligns_and_explains_infra_failures() {
        let row = |series: &str, verdict| Row {
            series: series.into(),
            version: format!("{series}.1-1"),
            release: format!("{series}.0-1-amd64"),
            counts: TestCounts { passed: 10, failed: 0, skipped: 2 },
            boot: Some(Duration::from_millis(4200)),
            wall: Duration::from_secs(61),
            verdict,
        };
        let table = render_table(&[row("5.10", Verdict::Pass), row("7.3", Verdict::Infra("timed out".into()))]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "kernel          version   passed  failed  skipped  boot  wall   result");
        assert_eq!(lines[1], "5.10.0-1-amd64  5.10.1-1  10      0       2        4.2s  61.0s  pass");
        assert_eq!(lines[2], "7.3.0-1-amd64   7.3.1-1   10      0       2        4.2s  61.0s  INFRA");
        assert_eq!(lines[3], "7.3 (7.3.1-1): infrastructure failure: timed out");
    }
}
