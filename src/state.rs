//! The OCI state the runtime passes to a prestart hook on stdin.

use std::io::Read;

use oci_spec::runtime::State;
use thiserror::Error;

use crate::annotation::{self, Request, ANNOTATION};

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
    #[error("the OCI state of container {id:?} has no pid: run the hook in the prestart stage")]
    NoPid { id: String },
    #[error(
        "container {id:?} has no {ANNOTATION} annotation: the hooks.d entry should only match containers that have it"
    )]
    NoAnnotation { id: String },
    #[error(transparent)]
    Annotation(#[from] annotation::AnnotationError),
}

/// Reads and interprets the state.
pub fn read(mut input: impl Read) -> Result<Container, StateError> {
    let mut raw = String::new();
    input.read_to_string(&mut raw).map_err(StateError::Read)?;
    let state: State = serde_json::from_str(&raw).map_err(StateError::Parse)?;
    let id = state.id().clone();
    let pid = state.pid().filter(|&p| p > 0).ok_or_else(|| StateError::NoPid { id: id.clone() })?;
    let value = state
        .annotations()
        .as_ref()
        .and_then(|a| a.get(ANNOTATION))
        .ok_or_else(|| StateError::NoAnnotation { id: id.clone() })?;
    let request = annotation::parse(value)?;
    Ok(Container { id, pid, request })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
