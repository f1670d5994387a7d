//! The tracer's start and end log lines, in a form programs can read.
//!
//! Each is one line of `key=value` pairs (README, "Log lines"): the tests
//! find a container's tracer by it, and the bench its peak RSS and CPU
//! time. The same text reaches the journal's MESSAGE and the log file, so
//! readers need not know which sink took it. Strings are quoted as Rust's
//! `{:?}` quotes them; numbers are bare.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::exit_watch::Ended;

/// The field names, in the order the lines carry them.
pub mod field {
    /// `tracer-started` or `tracer-ended`; always first.
    pub const EVENT: &str = "event";
    /// The OCI container id.
    pub const CONTAINER: &str = "container";
    /// The container's init, as the runtime gave it.
    pub const PID: &str = "pid";
    /// The mount namespace inode the recorder keys the container by.
    pub const MNTNS: &str = "mntns";
    /// The tracer process.
    pub const TRACER_PID: &str = "tracer_pid";
    /// `exited`, or `signal-N` when the tracer was stopped first.
    pub const ENDED: &str = "ended";
    /// The profile written.
    pub const OUTPUT: &str = "output";
    /// Distinct syscalls recorded.
    pub const RECORDED: &str = "recorded";
    /// Names the profile allows that the baseline did not.
    pub const ALLOWED_NEW: &str = "allowed_new";
    /// The tracer's peak resident set, KiB (getrusage).
    pub const RSS_KIB: &str = "rss_kib";
    /// The tracer's user + system CPU time, ms (getrusage).
    pub const CPU_MS: &str = "cpu_ms";
    /// Syscall entries on the host that skipped the recorder while the
    /// container ran (tracer/preemption.rs; 0 before 5.12, which has no
    /// counter), or `unknown` when the kernel would not say: a syscall of
    /// the container can be missing only when this is above 0.
    pub const SKIPPED_RUNS: &str = "skipped_runs";
}

/// The value of a count the kernel could not give.
const UNKNOWN: &str = "unknown";
const STARTED: &str = "tracer-started";
const ENDED_EVENT: &str = "tracer-ended";

/// Logged once recording is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracerStarted {
    pub container: String,
    pub pid: i32,
    pub mntns: u32,
    pub tracer_pid: u32,
}

/// Logged once the profile is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracerEnded {
    pub container: String,
    pub ended: Ended,
    pub output: PathBuf,
    pub recorded: usize,
    pub allowed_new: usize,
    pub rss_kib: i64,
    pub cpu_ms: i64,
    pub skipped_runs: Option<u64>,
}

impl fmt::Display for TracerStarted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use field::*;
        write!(f, "{EVENT}={STARTED} {CONTAINER}={:?} {PID}={} ", self.container, self.pid)?;
        write!(f, "{MNTNS}={} {TRACER_PID}={}", self.mntns, self.tracer_pid)
    }
}

impl fmt::Display for TracerEnded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use field::*;
        let ended = match self.ended {
            Ended::Exited => "exited".to_string(),
            Ended::Signal(signo) => format!("signal-{signo}"),
        };
        write!(f, "{EVENT}={ENDED_EVENT} {CONTAINER}={:?} {ENDED}={ended} ", self.container)?;
        write!(f, "{OUTPUT}={:?} {RECORDED}={} {ALLOWED_NEW}={} ", self.output, self.recorded, self.allowed_new)?;
        write!(f, "{RSS_KIB}={} {CPU_MS}={} ", self.rss_kib, self.cpu_ms)?;
        match self.skipped_runs {
            Some(n) => write!(f, "{SKIPPED_RUNS}={n}"),
            None => write!(f, "{SKIPPED_RUNS}={UNKNOWN}"),
        }
    }
}

impl TracerStarted {
    /// The event in a log line (with whatever prefix the sink added), if it
    /// holds one.
    pub fn parse(line: &str) -> Option<TracerStarted> {
        use field::*;
        let f = fields(line, STARTED)?;
        Some(TracerStarted {
            container: f.get(CONTAINER)?.clone(),
            pid: f.get(PID)?.parse().ok()?,
            mntns: f.get(MNTNS)?.parse().ok()?,
            tracer_pid: f.get(TRACER_PID)?.parse().ok()?,
        })
    }
}

impl TracerEnded {
    /// The event in a log line, if it holds one.
    pub fn parse(line: &str) -> Option<TracerEnded> {
        use field::*;
        let f = fields(line, ENDED_EVENT)?;
        let ended = match f.get(ENDED)?.as_str() {
            "exited" => Ended::Exited,
            other => Ended::Signal(other.strip_prefix("signal-")?.parse().ok()?),
        };
        Some(TracerEnded {
            container: f.get(CONTAINER)?.clone(),
            ended,
            output: PathBuf::from(f.get(OUTPUT)?),
            recorded: f.get(RECORDED)?.parse().ok()?,
            allowed_new: f.get(ALLOWED_NEW)?.parse().ok()?,
            rss_kib: f.get(RSS_KIB)?.parse().ok()?,
            cpu_ms: f.get(CPU_MS)?.parse().ok()?,
            skipped_runs: match f.get(SKIPPED_RUNS)?.as_str() {
                UNKNOWN => None,
                n => Some(n.parse().ok()?),
            },
        })
    }
}

/// The pairs from `event=<event>` to the end of the line.
fn fields(line: &str, event: &str) -> Option<BTreeMap<String, String>> {
    let mut rest = &line[line.find(&format!("{}={event} ", field::EVENT))?..];
    let mut pairs = BTreeMap::new();
    while let Some((key, after)) = rest.trim_start().split_once('=') {
        let (value, next) = value(after)?;
        pairs.insert(key.to_string(), value);
        rest = next;
    }
    Some(pairs)
}

/// A bare value up to the next space, or a `{:?}`-quoted string; returns it
/// and what follows.
fn value(s: &str) -> Option<(String, &str)> {
    let Some(quoted) = s.strip_prefix('"') else {
        let end = s.find(' ').unwrap_or(s.len());
        return Some((s[..end].to_string(), &s[end..]));
    };
    let mut out = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &quoted[i + 1..])),
            '\\' => out.push(match chars.next()?.1 {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '0' => '\0',
                other => other,
            }),
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_round_trips_behind_a_log_prefix() {
        let e = TracerStarted { container: "abc".into(), pid: 12, mntns: 4026532, tracer_pid: 99 };
        let line = format!("2026-01-01T00:00:00Z  INFO oci_seccomp_bpf_hook::session: {e}");
        assert_eq!(
            line.split_once(": ").unwrap().1,
            r#"event=tracer-started container="abc" pid=12 mntns=4026532 tracer_pid=99"#
        );
        assert_eq!(TracerStarted::parse(&line), Some(e));
        assert_eq!(TracerEnded::parse(&line), None, "the other event");
    }

    #[test]
    fn ended_round_trips_with_awkward_paths() {
        let e = TracerEnded {
            container: "x y".into(),
            ended: Ended::Signal(15),
            output: PathBuf::from("/tmp/a \"b\" c=d\\e.json"),
            recorded: 49,
            allowed_new: 50,
            rss_kib: 5044,
            cpu_ms: 21,
            skipped_runs: Some(3),
        };
        assert_eq!(TracerEnded::parse(&e.to_string()), Some(e.clone()));
        let exited = TracerEnded { ended: Ended::Exited, ..e };
        assert!(exited.to_string().contains(" ended=exited "));
        assert_eq!(TracerEnded::parse(&exited.to_string()), Some(exited.clone()));
        let unknown = TracerEnded { skipped_runs: None, ..exited };
        assert!(unknown.to_string().ends_with(" skipped_runs=unknown"), "{unknown}");
        assert_eq!(TracerEnded::parse(&unknown.to_string()), Some(unknown));
    }

    #[test]
    fn broken_lines_are_not_events() {
        assert_eq!(TracerStarted::parse("recording container abc (pid 1) in tracer pid 2"), None);
        assert_eq!(TracerStarted::parse(r#"event=tracer-started container="abc pid=1"#), None);
        assert_eq!(TracerStarted::parse("event=tracer-started container=\"a\" pid=x mntns=1 tracer_pid=2"), None);
    }
}
