//! podman, configured for this machine and running a given build of the
//! hook from a private hooks.d folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::{text, Error, ANNOTATION, IMAGE};

/// The hooks.d entry a distribution installs (hooks.d/ in the repository).
const PACKAGED_ENTRY: &str = include_str!("../../../hooks.d/oci-seccomp-bpf-hook.json");
/// The entry's file name in a hooks.d folder.
pub const ENTRY_FILE: &str = "oci-seccomp-bpf-hook.json";

/// runc's error when `runc init` exits before it writes its first byte, which
/// it does at the very start of nsexec (libcontainer/nsenter), before it reads
/// its config: no hook has run, so the failure is the runtime's alone. runc
/// 1.1.15 (Debian 13) did this once in about a thousand starts in CI.
pub const RUNTIME_DIED_BEFORE_INIT: &str = "waiting for init preliminary setup";

/// A container that runs until it is removed.
pub const SLEEPER: [&str; 2] = ["/bin/sleep", "1000"];

/// The packaged hooks.d entry, as installed.
pub fn packaged_entry() -> Value {
    serde_json::from_str(PACKAGED_ENTRY).expect("hooks.d/oci-seccomp-bpf-hook.json is JSON")
}

/// The packaged entry pointed at `hook`, logging to `log`.
pub fn entry_for(hook: &Path, log: &Path) -> Value {
    let mut entry = packaged_entry();
    entry["hook"]["path"] = hook.to_string_lossy().into();
    let env = format!("{}={}", oci_seccomp_bpf_hook::logging::LOG_FILE_ENV, log.display());
    entry["hook"]["env"] = serde_json::json!([env]);
    entry
}

/// Writes `entry_for(hook, log)` into the hooks.d folder `dir`.
pub fn write_entry(dir: &Path, hook: &Path, log: &Path) -> Result<(), Error> {
    let path = dir.join(ENTRY_FILE);
    let io = |source| Error::Io { what: "write the hooks.d entry", path: path.clone(), source };
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::write(&path, entry_for(hook, log).to_string()).map_err(io)
}

/// The annotation value that traces a container into `out`.
pub fn traced_into(out: &Path) -> String {
    format!("{ANNOTATION}=of:{}", out.display())
}

/// podman with the suite's containers.conf (`crate::containers_conf`) and a
/// hooks.d folder, or podman's default ones (`crate::packaged::podman`).
#[derive(Debug, Clone)]
pub struct Cli {
    pub conf: PathBuf,
    /// None: podman's default hooks directories, where a package installs
    /// its entry.
    pub hooks_dir: Option<PathBuf>,
    /// Each podman is stopped after this long (`crate::bounded`).
    pub limit: Option<Duration>,
}

impl Cli {
    pub fn new(hooks_dir: PathBuf) -> Cli {
        Cli { conf: crate::containers_conf(), hooks_dir: Some(hooks_dir), limit: None }
    }

    /// Every podman this runs is stopped after `limit`: a podman that
    /// stalls fails the test (exit 124) instead of hanging it.
    pub fn bounded(self, limit: Duration) -> Cli {
        Cli { limit: Some(limit), ..self }
    }

    /// `podman [--hooks-dir DIR]`, to add arguments to.
    pub fn command(&self) -> Command {
        let mut c = match self.limit {
            Some(limit) => crate::bounded("podman", limit),
            None => Command::new("podman"),
        };
        c.env("CONTAINERS_CONF", &self.conf);
        if let Some(dir) = &self.hooks_dir {
            c.arg("--hooks-dir").arg(dir);
        }
        c
    }

    /// Runs podman; a `podman run` whose runtime died before its container's
    /// init began (`RUNTIME_DIED_BEFORE_INIT`) is run once more, and says so.
    pub fn output<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Result<Output, Error> {
        let run =
            || self.command().args(args).output().map_err(|source| Error::Spawn { what: "podman".into(), source });
        let o = run()?;
        let is_run = args.first().is_some_and(|a| a.as_ref() == "run");
        if !is_run || o.status.success() || !text(&o.stderr).contains(RUNTIME_DIED_BEFORE_INIT) {
            return Ok(o);
        }
        eprintln!(
            "podman run: the runtime died before its init began (no hook had run), once more: {}",
            text(&o.stderr)
        );
        if let Some(name) = args.windows(2).find(|w| w[0].as_ref() == "--name").map(|w| w[1].as_ref().to_owned()) {
            let _ = self.command().args(["rm", "-f", "-t", "0"]).arg(name).output();
        }
        run()
    }

    /// Like `output`, and podman must succeed.
    pub fn ok<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Result<Output, Error> {
        let o = self.output(args)?;
        if !o.status.success() {
            let what = args.iter().map(|a| a.as_ref().to_string_lossy()).collect::<Vec<_>>().join(" ");
            let detail = format!("{}{}", text(&o.stdout), text(&o.stderr));
            return Err(Error::Failed { what: format!("podman {what}"), detail });
        }
        Ok(o)
    }

    /// Whether the fixture image is there.
    pub fn has_image(&self, image: &str) -> bool {
        self.output(&["image", "exists", image]).is_ok_and(|o| o.status.success())
    }

    /// Removes containers at once (-t 0: no grace period for sleep).
    pub fn remove<S: AsRef<str>>(&self, names: &[S]) -> Result<(), Error> {
        if names.is_empty() {
            return Ok(());
        }
        let mut args = vec!["rm", "-f", "-t", "0"];
        args.extend(names.iter().map(AsRef::as_ref));
        self.ok(&args).map(drop)
    }
}

/// The arguments of one `podman run` of an image: `--network none`, the
/// runtime, and whatever the caller adds.
#[derive(Debug, Clone)]
pub struct Run {
    runtime: String,
    image: String,
    flags: Vec<String>,
}

impl Run {
    /// `podman run --network none --runtime RUNTIME ... IMAGE`.
    pub fn new(runtime: &str) -> Run {
        Run { runtime: runtime.into(), image: IMAGE.into(), flags: Vec::new() }
    }

    pub fn image(mut self, image: &str) -> Run {
        self.image = image.into();
        self
    }

    /// `--rm`.
    pub fn rm(self) -> Run {
        self.flag("--rm")
    }

    /// `-d`: podman returns the id once the container runs.
    pub fn detach(self) -> Run {
        self.flag("-d")
    }

    pub fn name(self, name: &str) -> Run {
        self.flag("--name").flag(name)
    }

    /// `--annotation` with `key=value`.
    pub fn annotation(self, key_value: &str) -> Run {
        self.flag("--annotation").flag(key_value)
    }

    /// Traced, the profile written to `out`.
    pub fn traced_into(self, out: &Path) -> Run {
        self.annotation(&traced_into(out))
    }

    /// Confined by the seccomp profile `profile`.
    pub fn confined_by(self, profile: &Path) -> Run {
        self.flag("--security-opt").flag(&format!("seccomp={}", profile.display()))
    }

    /// Any other option, before the image.
    pub fn flag(mut self, flag: &str) -> Run {
        self.flags.push(flag.into());
        self
    }

    pub fn flags<S: AsRef<str>>(self, flags: &[S]) -> Run {
        flags.iter().fold(self, |run, f| run.flag(f.as_ref()))
    }

    /// The whole argument list, running `cmd`.
    pub fn args<S: AsRef<str>>(&self, cmd: &[S]) -> Vec<String> {
        let mut args: Vec<String> = ["run", "--network", "none", "--runtime", &self.runtime].map(String::from).into();
        args.extend(self.flags.iter().cloned());
        args.push(self.image.clone());
        args.extend(cmd.iter().map(|c| c.as_ref().to_string()));
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_arguments_put_options_before_the_image() {
        let args =
            Run::new("crun").rm().traced_into(Path::new("/o.json")).flag("-v").flag("/a:/b").args(&["/bin/true"]);
        let want = ["run", "--network", "none", "--runtime", "crun", "--rm", "--annotation"];
        assert_eq!(&args[..7], want);
        assert_eq!(args[7], format!("{ANNOTATION}=of:/o.json"));
        assert_eq!(&args[8..], ["-v", "/a:/b", IMAGE, "/bin/true"]);
    }

    #[test]
    fn the_entry_is_the_packaged_one_pointed_at_a_build() {
        let entry = entry_for(Path::new("/build/hook"), Path::new("/tmp/hook.log"));
        assert_eq!(entry["hook"]["path"], "/build/hook");
        assert_eq!(entry["hook"]["env"][0], "OCI_SECCOMP_BPF_HOOK_LOG_FILE=/tmp/hook.log");
        assert_eq!(entry["when"], packaged_entry()["when"]);
        assert_eq!(entry["hook"]["args"], packaged_entry()["hook"]["args"]);
    }
}
