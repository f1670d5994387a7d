//! What runs inside the guest: the stage 2 script rendered for one command, and the files the
//! host puts in the harness share next to it.
//!
//! Results come back through that share (a host directory mounted writable over 9p) rather than
//! through markers on the serial console: the output arrives byte for byte, without the tty's
//! newline rewriting and without kernel messages interleaved, the exit status is a file that
//! exists only if the command finished, and the same directory carries the script in.

use std::path::PathBuf;

/// The templates; see the comment at the top of each.
const RUN_TEMPLATE: &str = include_str!("guest/run.sh");
const SYSTEMD_RUN_TEMPLATE: &str = include_str!("guest/systemd-run.sh");
const CONTAINERS_CONF: &str = include_str!("guest/containers.conf");
const SYSTEMD_CONTAINERS_CONF: &str = include_str!("guest/containers-systemd.conf");
/// The unit that runs stage 2 in a systemd guest.
const SYSTEMD_UNIT: &str = include_str!("guest/vm-harness.service");

/// Printed on the console by stage 2 once everything is mounted (boot time ends here) and once
/// the image archive is loaded.
pub const BOOTED_MARKER: &str = "VM-HARNESS-BOOTED";
pub const READY_MARKER: &str = "VM-HARNESS-READY";
/// Printed by stage 1 when booted only to see whether the accelerator works.
pub const PROBE_MARKER: &str = "VM-HARNESS-PROBE-OK";
/// Prefix of the guest's own error lines on the console.
pub const ERROR_PREFIX: &str = "vm-harness: ";

/// Files in the harness share.
pub const RUN_SCRIPT: &str = "run.sh";
pub const CONTAINERS_CONF_FILE: &str = "containers.conf";
/// Systemd guests: the unit stage 1 enables, and the repository's path (shared as `repo`).
pub const SYSTEMD_UNIT_FILE: &str = "vm-harness.service";
pub const REPO_PATH_FILE: &str = "repo-path";
/// On the kernel command line of a systemd guest: stage 1 boots systemd instead of run.sh.
pub const SYSTEMD_PARAM: &str = "vmharness.systemd";
pub const OUTPUT_FILE: &str = "output.log";
pub const STATUS_FILE: &str = "status";

/// Directories stage 2 covers with a fresh tmpfs: host files below them are invisible in the
/// guest. Keep in step with `guest/run.sh`. Not /tmp: a checkout (CI's fresh clone) may live
/// there, and the overlay already makes it writable in the guest.
pub const MASKED_DIRS: &[&str] = &["/run", "/var/tmp", "/var/lib/containers", "/dev", "/proc", "/sys"];

/// The masked directory `path` (absolute) is under, if any.
pub fn masked_by(path: &std::path::Path) -> Option<&'static str> {
    MASKED_DIRS.iter().copied().find(|dir| path.starts_with(dir))
}

/// The one command a VM runs.
#[derive(Debug, Clone)]
pub struct Job {
    /// Run with `podman load -i` before the command; a host path, visible at the same place.
    pub image_archive: Option<PathBuf>,
    /// The command's working directory, a host path.
    pub workdir: PathBuf,
    /// Extra environment, after (so overriding) PATH, HOME and CONTAINERS_CONF.
    pub env: Vec<(String, String)>,
    pub command: Vec<String>,
    /// Boot a userland root with systemd as PID 1 instead of the host root with run.sh.
    pub systemd: Option<SystemdGuest>,
}

/// A guest that boots like a distribution: a userland root (shared read-only as the guest's `/`),
/// systemd as PID 1, cgroup v2 unified, journald, the package installed at boot. The job's
/// working directory is shared too, at its own path.
#[derive(Debug, Clone)]
pub struct SystemdGuest {
    pub root: PathBuf,
    /// `apt-get install`ed before the command; a path the guest sees.
    pub deb: Option<PathBuf>,
}

/// The files of the harness share for `job`: `(name, contents)`.
pub fn share_files(job: &Job) -> Vec<(&'static str, String)> {
    let mut files = vec![(RUN_SCRIPT, render_run_script(job))];
    if job.systemd.is_some() {
        files.push((CONTAINERS_CONF_FILE, SYSTEMD_CONTAINERS_CONF.to_owned()));
        files.push((SYSTEMD_UNIT_FILE, SYSTEMD_UNIT.to_owned()));
        files.push((REPO_PATH_FILE, job.workdir.display().to_string()));
    } else {
        files.push((CONTAINERS_CONF_FILE, CONTAINERS_CONF.to_owned()));
    }
    files
}

/// Stage 2 for `job`.
pub fn render_run_script(job: &Job) -> String {
    let image = job.image_archive.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let mut env: Vec<String> = ["PATH", "HOME", "CONTAINERS_CONF"].iter().map(|k| format!("{k}=\"${k}\"")).collect();
    env.extend(job.env.iter().map(|(k, v)| quote(&format!("{k}={v}"))));
    let command: Vec<String> = job.command.iter().map(|a| quote(a)).collect();
    let (template, deb) = match &job.systemd {
        Some(guest) => (SYSTEMD_RUN_TEMPLATE, guest.deb.as_ref().map(|d| d.display().to_string()).unwrap_or_default()),
        None => (RUN_TEMPLATE, String::new()),
    };
    template
        .replace("@DEB@", &quote(&deb))
        .replace("@IMAGE_ARCHIVE@", &quote(&image))
        .replace("@WORKDIR@", &quote(&job.workdir.display().to_string()))
        .replace("@ENV@", &env.join(" "))
        .replace("@COMMAND@", &command.join(" "))
}

/// Single-quotes a word for sh: inside '' nothing is special except ' itself.
pub fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Parses `--env K=V`.
pub fn parse_env(arg: &str) -> Result<(String, String), String> {
    let (key, value) = arg.split_once('=').ok_or_else(|| format!("{arg:?} is not KEY=VALUE"))?;
    let valid = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!("{key:?} is not a valid environment variable name"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_table() {
        let cases = [
            ("/tmp/images.tar", None),
            ("/var/tmp/images.tar", Some("/var/tmp")),
            ("/runfoo/images.tar", None),
            ("/var/lib/containers/x", Some("/var/lib/containers")),
            ("/work/main/target/fixtures/images.tar", None),
        ];
        for (path, expected) in cases {
            assert_eq!(masked_by(std::path::Path::new(path)), expected, "{path}");
        }
    }

    #[test]
    fn quoting_table() {
        let cases =
            [("plain", "'plain'"), ("", "''"), ("it's", r"'it'\''s'"), ("$HOME `x` \"y\"", "'$HOME `x` \"y\"'")];
        for (word, expected) in cases {
            assert_eq!(quote(word), expected);
        }
    }

    #[test]
    fn env_table() {
        assert_eq!(parse_env("RUST_LOG=debug=x"), Ok(("RUST_LOG".into(), "debug=x".into())));
        assert_eq!(parse_env("EMPTY="), Ok(("EMPTY".into(), String::new())));
        assert!(parse_env("NOEQUALS").is_err());
        assert!(parse_env("=v").is_err());
        assert!(parse_env("1X=v").is_err());
        assert!(parse_env("A-B=v").is_err());
    }

    #[test]
    fn script_runs_the_quoted_command_in_its_directory() {
        let job = Job {
            image_archive: Some("/t/images.tar".into()),
            workdir: "/work/main".into(),
            env: vec![("RUST_BACKTRACE".into(), "1".into())],
            command: vec!["/t/integration-abc".into(), "--test-threads=1".into(), "a b".into()],
            systemd: None,
        };
        let script = render_run_script(&job);
        assert!(script.contains("image='/t/images.tar'\n"));
        assert!(script.contains("cd '/work/main' ||"));
        assert!(script.contains(
            "/usr/bin/env -i PATH=\"$PATH\" HOME=\"$HOME\" CONTAINERS_CONF=\"$CONTAINERS_CONF\" \
             'RUST_BACKTRACE=1' '/t/integration-abc' '--test-threads=1' 'a b' >"
        ));
        for placeholder in ["@IMAGE_ARCHIVE@", "@WORKDIR@", "@ENV@", "@COMMAND@"] {
            assert!(!script.contains(placeholder), "{placeholder} was left");
        }
    }

    #[test]
    fn no_image_means_no_load() {
        let job =
            Job { image_archive: None, workdir: "/".into(), env: vec![], command: vec!["true".into()], systemd: None };
        assert!(render_run_script(&job).contains("image=''\n"));
    }

    #[test]
    fn a_systemd_guest_gets_its_unit_its_repository_and_the_package() {
        let mut job =
            Job { image_archive: None, workdir: "/w/x".into(), env: vec![], command: vec!["t".into()], systemd: None };
        let names = |job: &Job| share_files(job).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(names(&job), [RUN_SCRIPT, CONTAINERS_CONF_FILE]);
        job.systemd = Some(SystemdGuest { root: "/r".into(), deb: Some("/w/x/h.deb".into()) });
        assert_eq!(names(&job), [RUN_SCRIPT, CONTAINERS_CONF_FILE, SYSTEMD_UNIT_FILE, REPO_PATH_FILE]);
        let files = share_files(&job);
        assert_eq!(files[3].1, "/w/x");
        assert!(!files[1].1.contains("cgroup_manager"), "podman's default cgroup manager: {}", files[1].1);
        let script = &files[0].1;
        assert!(script.contains("deb='/w/x/h.deb'\n") && script.contains("systemctl poweroff"), "{script}");
        for placeholder in ["@DEB@", "@IMAGE_ARCHIVE@", "@WORKDIR@", "@ENV@", "@COMMAND@"] {
            assert!(!script.contains(placeholder), "{placeholder} was left");
        }
    }
}
