//! The OCI state the runtime passes to a prestart hook on stdin.

use std::io::Read;
use std::os::unix::fs::MetadataExt;

use oci_spec::runtime::State;
use thiserror::Error;

use crate::annotation::{self, Request, ANNOTATION};
use crate::limits;

/// The largest state read: real ones are a few KiB (annotations included).
const MAX_STATE_BYTES: u64 = 1024 * 1024;

/// What the hook needs from the state: whom to trace and where to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub pid: i32,
    pub request: Request,
}

#[derive(Debug, Error)]
pub enum StateError {
    #[error("failed to read the OCI state from stdin: {0}")]
    Read(#[source] std::io::Error),
    #[error("failed to parse the OCI state on stdin (is this run as an OCI prestart hook?): {0}")]
    Parse(#[source] serde_json::Error),
    #[error("the OCI state on stdin is over {MAX_STATE_BYTES} bytes: is this run as an OCI prestart hook?")]
    TooLarge,
    #[error("the OCI state of container {id} has no pid: run the hook in the prestart stage")]
    NoPid { id: String },
    #[error(
        "container {id} has no {ANNOTATION} annotation: the hooks.d entry should only match containers that have it"
    )]
    NoAnnotation { id: String },
    #[error(transparent)]
    Annotation(#[from] annotation::AnnotationError),
    #[error(
        "failed to read the mount namespace of container {id} (pid {pid}): {source}: is the container still starting?"
    )]
    Namespace { id: String, pid: i32, source: std::io::Error },
    #[error("container {id}: pid {pid} shares the mount namespace of {whose}: the hook expects the pid of a container's init, in a mount namespace of its own (is the runtime or the hooks.d entry misconfigured?)")]
    HostNamespace { id: String, pid: i32, whose: &'static str },
}

/// Reads and interprets the state.
pub fn read(input: impl Read) -> Result<Container, StateError> {
    let mut raw = String::new();
    input.take(MAX_STATE_BYTES + 1).read_to_string(&mut raw).map_err(StateError::Read)?;
    if raw.len() as u64 > MAX_STATE_BYTES {
        return Err(StateError::TooLarge);
    }
    let state: State = serde_json::from_str(&raw).map_err(StateError::Parse)?;
    let id = limits::shown(state.id());
    let pid = state.pid().filter(|&p| p > 0).ok_or_else(|| StateError::NoPid { id: id.clone() })?;
    let value = state
        .annotations()
        .as_ref()
        .and_then(|a| a.get(ANNOTATION))
        .ok_or_else(|| StateError::NoAnnotation { id: id.clone() })?;
    let request = annotation::parse(value)?;
    Ok(Container { id: state.id().clone(), pid, request })
}

/// Refuses a pid that is not in a mount namespace of its own: recording
/// the host's (pid 1's) or the hook's would write a profile of the host.
pub fn check_not_host(c: &Container) -> Result<(), StateError> {
    let id = limits::shown(&c.id);
    if c.pid == 1 {
        return Err(StateError::HostNamespace { id, pid: 1, whose: "the host (it is the host's init)" });
    }
    let ns = |pid: &str| std::fs::metadata(format!("/proc/{pid}/ns/mnt")).map(|m| (m.dev(), m.ino()));
    let theirs =
        ns(&c.pid.to_string()).map_err(|source| StateError::Namespace { id: id.clone(), pid: c.pid, source })?;
    // pid 1's may be unreadable, or itself in a namespace of its own (a
    // sandbox's init); kernel threads always sit in the initial mount
    // namespace, so kthreadd's is the host's for sure; the hook's own is
    // the host's whenever the runtime runs on the host.
    let kthreadd = is_kernel_thread("2").then_some(("2", "the host (its kernel threads)"));
    for (pid, whose) in [("1", "the host (pid 1)"), ("self", "the hook itself")].into_iter().chain(kthreadd) {
        if ns(pid).is_ok_and(|ours| ours == theirs) {
            return Err(StateError::HostNamespace { id, pid: c.pid, whose });
        }
    }
    Ok(())
}

/// Whether `pid` is a kernel thread (PF_KTHREAD in /proc/PID/stat's flags):
/// pid 2 is kthreadd, unless the hook runs in a PID namespace of its own,
/// where that number is some other process.
fn is_kernel_thread(pid: &str) -> bool {
    const PF_KTHREAD: u64 = 0x0020_0000;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let after_comm = stat.rfind(')').map(|i| &stat[i + 1..]).unwrap_or_default();
    let flags = after_comm.split_whitespace().nth(6).and_then(|f| f.parse::<u64>().ok());
    flags.is_some_and(|f| f & PF_KTHREAD != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_threads_are_told_from_processes() {
        assert!(!is_kernel_thread("self") && !is_kernel_thread("1") && !is_kernel_thread("no-such-pid"));
        // Outside a PID namespace of its own (CI, a host), pid 2 is kthreadd.
        if std::fs::read_to_string("/proc/2/comm").is_ok_and(|c| c.trim() == "kthreadd") {
            assert!(is_kernel_thread("2"));
        }
    }

    #[test]
    fn reads_pid_and_annotation() {
        let json = r#"{"ociVersion":"1.0.2","id":"abc","status":"created","pid":4242,
            "bundle":"/run/b","annotations":{"io.containers.trace-syscall":"of:/tmp/o.json","x":"y"}}"#;
        let c = read(json.as_bytes()).unwrap();
        assert_eq!(c.id, "abc");
        assert_eq!(c.pid, 4242);
        assert_eq!(c.request.output, std::path::PathBuf::from("/tmp/o.json"));
    }

    #[test]
    fn errors_name_what_is_missing() {
        let no_pid = r#"{"ociVersion":"1.0.2","id":"abc","status":"created","bundle":"/b"}"#;
        assert!(read(no_pid.as_bytes()).unwrap_err().to_string().contains("has no pid"));
        let no_annotation = r#"{"ociVersion":"1.0.2","id":"abc","status":"created","pid":1,"bundle":"/b"}"#;
        assert!(read(no_annotation.as_bytes()).unwrap_err().to_string().contains("no io.containers.trace-syscall"));
        assert!(read("not json".as_bytes()).unwrap_err().to_string().contains("failed to parse the OCI state"));
        let bad = r#"{"id":"abc","pid":1,"bundle":"/b","annotations":{"io.containers.trace-syscall":"of:rel"}}"#;
        assert!(read(bad.as_bytes()).unwrap_err().to_string().contains("not absolute"));
    }

    /// Failure 7: a host pid recorded the host's mount namespace.
    #[test]
    fn host_and_own_namespaces_are_refused() {
        let request = annotation::parse("of:/tmp/o.json").unwrap();
        let own = Container { id: "c".into(), pid: std::process::id() as i32, request: request.clone() };
        let e = check_not_host(&own).unwrap_err().to_string();
        assert!(e.contains("shares the mount namespace of") && e.contains("expects the pid of a container"), "{e}");
        let init = Container { id: "c".into(), pid: 1, request: request.clone() };
        let e = check_not_host(&init).unwrap_err().to_string();
        assert!(e.contains("the host"), "{e}");
        // pid 2 (kthreadd) lives in the host's mount namespace.
        let kthreadd = Container { id: "c".into(), pid: 2, request: request.clone() };
        assert!(check_not_host(&kthreadd).unwrap_err().to_string().contains("shares the mount namespace"));
        let gone = Container { id: "c".into(), pid: i32::MAX, request };
        assert!(check_not_host(&gone).unwrap_err().to_string().contains("failed to read the mount namespace"));
    }

    #[test]
    fn a_huge_state_or_id_is_not_echoed_whole() {
        let big =
            format!(r#"{{"ociVersion":"1.0.2","id":"{}","status":"created","bundle":"/b"}}"#, "i".repeat(100_000));
        let e = read(big.as_bytes()).unwrap_err().to_string();
        assert!(e.len() < 1024 && e.contains("bytes in all"), "{e}");
        let huge = " ".repeat(MAX_STATE_BYTES as usize + 1);
        assert!(read(huge.as_bytes()).unwrap_err().to_string().contains("is over"));
    }
}
