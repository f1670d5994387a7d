//! The hook as a distribution installs it (packaging/deb.sh, `just install`):
//! podman finds it in its default hooks directories, with no `--hooks-dir`,
//! and the packaged entry has no `env`, so it logs to the journal where one
//! runs, else to the default log file.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::podman::Cli;
use crate::{text, tracer_ended, tracer_started, Error, TracerEnded, TracerStarted};

/// The package's name, which is also the journal identifier of its log
/// (src/logging.rs).
pub const PACKAGE: &str = "oci-seccomp-bpf-hook";
/// Where the package puts the hook and its hooks.d entry.
pub const BINARY: &str = "/usr/libexec/oci/hooks.d/oci-seccomp-bpf-hook";
pub const ENTRY: &str = "/usr/share/containers/oci/hooks.d/oci-seccomp-bpf-hook.json";
/// Where the packaged hook logs when no journal runs.
pub const LOG_FILE: &str = oci_seccomp_bpf_hook::logging::DEFAULT_LOG_FILE;
/// Whose presence makes the hook log to the journal (src/logging.rs).
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
/// How far back `log` reads the journal: longer than any test waits for an
/// event, however slow the machine. Events are found by container id or by
/// output path, both unique, so older lines do no harm.
const JOURNAL_WINDOW: &str = "-900s";

/// Whether the hook and its entry are installed.
pub fn installed() -> bool {
    Path::new(BINARY).is_file() && Path::new(ENTRY).is_file()
}

/// podman with the suite's containers.conf but podman's default hooks
/// directories: what runs the installed hook. Err if that containers.conf
/// sets `hooks_dir`, which would hide the installed entry.
pub fn podman() -> Result<Cli, Error> {
    let conf = crate::containers_conf();
    let settings =
        std::fs::read_to_string(&conf).map_err(|source| Error::Io { what: "read", path: conf.clone(), source })?;
    if settings.contains("hooks_dir") {
        let detail =
            format!("{conf:?} sets hooks_dir: the installed hook is found only in podman's default hooks dirs");
        return Err(Error::Failed { what: "podman with the packaged hook".into(), detail });
    }
    Ok(Cli { conf, hooks_dir: None, limit: None })
}

/// What the packaged hook and its tracers logged: the journal's messages
/// where one runs (`journalctl -t oci-seccomp-bpf-hook`), else its file.
pub fn log() -> String {
    if !Path::new(JOURNAL_SOCKET).exists() {
        return std::fs::read_to_string(LOG_FILE).unwrap_or_default();
    }
    let journal = crate::bounded("journalctl", Duration::from_secs(60))
        .args(["--no-pager", "-o", "cat", "-t", PACKAGE, "--since", JOURNAL_WINDOW])
        .output();
    journal.map(|o| text(&o.stdout)).unwrap_or_default()
}

/// The start event of container `id`'s tracer, waiting up to `limit` for
/// it (the tracer logs it a moment after the container starts).
pub fn wait_for_start(id: &str, limit: Duration) -> Result<TracerStarted, Error> {
    wait_for(limit, &format!("the tracer-started event of container {id}"), |log| tracer_started(log, id))
}

/// The end event of the tracer writing `output`, waiting up to `limit`
/// (it is logged once the profile is written).
pub fn wait_for_end(output: &Path, limit: Duration) -> Result<TracerEnded, Error> {
    wait_for(limit, &format!("the tracer-ended event for {output:?}"), |log| tracer_ended(log, output))
}

fn wait_for<T>(limit: Duration, what: &str, find: impl Fn(&str) -> Option<T>) -> Result<T, Error> {
    let deadline = Instant::now() + limit;
    loop {
        let log = log();
        if let Some(event) = find(&log) {
            return Ok(event);
        }
        if Instant::now() > deadline {
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let detail = format!(
                "not logged in {} s; the log's last lines, newest first:\n{}",
                limit.as_secs(),
                tail.join("\n")
            );
            return Err(Error::Failed { what: format!("waiting for {what}"), detail });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
