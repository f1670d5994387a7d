//! The hook run alone, as a runtime runs it, for a stand-in: a process in
//! its own mount namespace, which is what a container is to the recorder.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{text, Error, ANNOTATION};

/// The mount namespace inode of `pid` ("self" for ours).
///
/// Read here rather than through the hook's library: the tests check that
/// the recorder keys containers by this number, so they must not take it
/// from the code under test.
pub fn mount_namespace(pid: &str) -> Result<u64, Error> {
    use std::os::unix::fs::MetadataExt;
    let path = format!("/proc/{pid}/ns/mnt");
    let meta = std::fs::metadata(&path).map_err(|source| Error::Io { what: "stat", path: path.into(), source })?;
    Ok(meta.ino())
}

/// A process in a mount namespace of its own, waiting for [`StandIn::go`]
/// before it execs its command. Killed when dropped.
pub struct StandIn {
    child: Child,
    /// Its mount namespace inode.
    pub mntns: u64,
}

impl StandIn {
    /// Starts `cmd` behind `unshare --mount` and waits until it has left
    /// our namespace (unshare(2) comes after the fork: until then the hook
    /// would record the whole host).
    pub fn start<S: AsRef<std::ffi::OsStr>>(cmd: &[S]) -> Result<StandIn, Error> {
        let child = Command::new("unshare")
            .args(["--mount", "--", "sh", "-c", "read go && exec \"$@\"", "stand-in"])
            .args(cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|source| Error::Spawn { what: "unshare (util-linux)".into(), source })?;
        let mut stand_in = StandIn { child, mntns: 0 };
        let ours = mount_namespace("self")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Gone or not there yet reads as ours: keep looking.
            stand_in.mntns = mount_namespace(&stand_in.pid().to_string()).unwrap_or(ours);
            if stand_in.mntns != ours {
                return Ok(stand_in);
            }
            if Instant::now() > deadline {
                return Err(Error::NoNewNamespace { pid: stand_in.pid() });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets the command run and waits for it; Err if it failed.
    pub fn go(mut self) -> Result<(), Error> {
        let what = "the stand-in's command".to_string();
        let stdin = self.child.stdin.take().expect("stdin is piped");
        let ran = (&stdin).write_all(b"go\n").and_then(|()| {
            drop(stdin);
            self.child.wait()
        });
        match ran {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(Error::Failed { what, detail: status.to_string() }),
            Err(source) => Err(Error::Spawn { what, source }),
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The OCI state a runtime gives a prestart hook for container `id`.
pub fn oci_state(id: &str, pid: u32, out: &Path) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.0.2", "id": id, "status": "created", "pid": pid, "bundle": "/",
        "annotations": {ANNOTATION: format!("of:{}", out.display())},
    })
}

/// Runs the prestart hook `hook` as a runtime does (`-s`, the state on
/// stdin, an empty environment but for the log file) for a container `id`
/// whose init is `pid`, traced into `out`; returns how long the hook took
/// to return. Err if it failed.
pub fn run_hook(hook: &Path, log: &Path, id: &str, pid: u32, out: &Path) -> Result<Duration, Error> {
    let spawn = |source| Error::Spawn { what: hook.display().to_string(), source };
    let start = Instant::now();
    let mut child = Command::new(hook)
        .arg("-s")
        .env_clear()
        .env(oci_seccomp_bpf_hook::logging::LOG_FILE_ENV, log)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn)?;
    let state = oci_state(id, pid, out).to_string();
    child.stdin.take().expect("stdin is piped").write_all(state.as_bytes()).map_err(spawn)?;
    let o: Output = child.wait_with_output().map_err(spawn)?;
    let took = start.elapsed();
    if !o.status.success() {
        return Err(Error::Failed { what: format!("the hook for pid {pid}"), detail: text(&o.stderr) });
    }
    Ok(took)
}

/// Waits up to `secs` for the profile at `path` (the tracer writes it
/// atomically, a moment after the container ends).
pub fn wait_for_file(path: &Path, secs: u64) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !path.exists() {
        if Instant::now() > deadline {
            let detail = format!("no file at {path:?} after {secs} s");
            return Err(Error::Failed { what: "waiting for the profile".into(), detail });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}
