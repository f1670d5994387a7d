//! Command-line definition, shared by main.rs and the man page generator.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::tools::convert::Format;

/// Records the syscalls a container makes with eBPF and writes a seccomp
/// profile that allows exactly those.
///
/// As an OCI prestart hook (`-s`), it is enabled per container by the
/// annotation io.containers.trace-syscall="[if:/abs/base.json;]of:/abs/out.json".
/// The profile is written when the container exits. With `if:`, the
/// baseline's rules are kept first and verbatim, and a syscall named in any
/// of them (blocked ones included) is not added again.
///
/// Refused before the container starts: an `of:` that is not a regular
/// file or a free name (a device, FIFO, socket or link), whose directory
/// path holds a symbolic link, or that is immutable or append-only; an
/// `if:` that is not a regular file, resolves into /proc, /dev or /sys, or
/// is over 8 MiB; an annotation over 8 KiB, with a path over PATH_MAX or
/// a control character; a state whose pid shares the host's (pid 1's) or
/// the hook's own mount namespace. The output's directory is opened once,
/// at prestart, and the profile is written relative to it.
///
/// CONFIGURATION: /etc/containers/oci-seccomp-bpf-hook.conf (TOML; the
/// OCI_SECCOMP_BPF_HOOK_CONFIG environment variable, e.g. in the hooks.d
/// entry's "env", names another file). Without it the hook accepts any
/// absolute path. A malformed file fails every prestart. Fields, all
/// optional:
///
///   output_dirs = ["/var/lib/seccomp"]  # `of:` must be beneath one of these
///                                       # (no '..' out of it, no symlinks)
///
///   input_dirs = ["/usr/share/containers"]  # `if:` must resolve beneath one
///
///   profile_mode = 0o640  # mode of a newly written profile (default 0o644;
///                         # a replaced file keeps its owner and mode)
///
///   max_input_bytes = 1048576  # largest baseline read (default 8 MiB)
///
/// The configuration binds the hook (`-s`); `record`, run by root by hand,
/// applies the same checks with the defaults.
#[derive(Debug, Parser)]
#[command(
    name = "oci-seccomp-bpf-hook",
    version,
    verbatim_doc_comment,
    arg_required_else_help = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Run as an OCI prestart hook: read the container state from stdin
    /// (same as the `prestart` subcommand).
    #[arg(short = 's', long = "start")]
    pub start: bool,

    /// Log level (error, warn, info, debug, trace); RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "info", env = "OCI_SECCOMP_BPF_HOOK_LOG")]
    pub log_level: String,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run as an OCI prestart hook: read the container state from stdin.
    Prestart,
    /// Run a command in new PID and mount namespaces and record its syscalls.
    Record {
        /// Baseline profile: its rules are kept, and what it names (blocked
        /// or allowed) is not added again.
        #[arg(short = 'i', long = "input", value_name = "BASE")]
        input: Option<PathBuf>,
        /// Where to write the profile.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: PathBuf,
        /// The command and its arguments.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<OsString>,
    },
    /// Merge recorded profiles into one that allows what any of them allows.
    ///
    /// Names any input blocks (a rule with another action than
    /// SCMP_ACT_ALLOW and no argument conditions) stay blocked: no rule of
    /// the output allows them, and the blocking rule is kept. Allow rules
    /// with argument conditions (`args`) are kept one per condition set,
    /// unless the name is also allowed unconditionally, which covers them.
    /// Each allow rule carries a coverage note in its `comment`: "in K of N
    /// inputs". Architectures are the union; the inputs must agree on
    /// defaultAction and the other top-level fields. The output is written
    /// atomically. Exit status: 0 on success, 1 on error.
    #[command(verbatim_doc_comment)]
    Merge {
        /// The profiles to merge (containers/common JSON).
        #[arg(required = true, value_name = "PROFILE")]
        inputs: Vec<PathBuf>,
        /// Where to write the merged profile.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: PathBuf,
    },
    /// Show what B's filter allows or blocks that A's does not, per ABI.
    ///
    /// Each name is resolved for each architecture the profiles list, with
    /// libseccomp's tables; a name an architecture lacks is not in its
    /// filter. Lines start with '-' (only in A) or '+' (only in B) and give
    /// the action, the name and its argument conditions. Comments and the
    /// grouping of names into rules are not differences.
    /// Exit status: 0 when the filters are the same, 1 when they differ,
    /// 2 on error.
    #[command(verbatim_doc_comment)]
    Diff {
        /// The old profile.
        #[arg(value_name = "A")]
        a: PathBuf,
        /// The new profile.
        #[arg(value_name = "B")]
        b: PathBuf,
    },
    /// Check that a profile allows everything some recordings allow (for CI).
    ///
    /// Per ABI: a recording's allow of a name with argument conditions is
    /// covered by the profile allowing the name unconditionally or with the
    /// same conditions; an unconditional allow only by an unconditional one.
    /// What is missing is printed, one call per line.
    /// Exit status: 0 when covered, 1 when something is missing, 2 on error.
    #[command(verbatim_doc_comment)]
    Check {
        /// The profile that should cover the recordings.
        #[arg(long = "covers", value_name = "PROFILE")]
        covers: PathBuf,
        /// Recorded profiles.
        #[arg(required = true, value_name = "RECORDING")]
        recordings: Vec<PathBuf>,
    },
    /// Convert a profile to OCI, Kubernetes (security-profiles-operator) or containers format.
    ///
    /// --to oci writes the OCI runtime-spec's linux.seccomp object (JSON),
    /// for a bundle's config.json (runc, crun). --to spo writes a
    /// SeccompProfile object (YAML, apiVersion
    /// security-profiles-operator.x-k8s.io/v1beta1) for `kubectl apply`.
    /// --to containers writes the format podman reads. The input's format
    /// is detected: any of these three, or a whole OCI config.json. Rule
    /// comments are dropped where the target has no field for them; what
    /// the target cannot express (archMap outside OCI, includes/excludes,
    /// defaultErrnoRet in SPO) is refused, naming the field.
    /// The output is written atomically. Exit status: 0 on success, 1 on error.
    #[command(verbatim_doc_comment)]
    Convert {
        /// The format to write.
        #[arg(long = "to", value_enum, value_name = "FORMAT")]
        to: Format,
        /// The profile to convert.
        #[arg(value_name = "IN")]
        input: PathBuf,
        /// Where to write the result.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: PathBuf,
        /// metadata.name of an SPO object (default: from OUT's file name).
        #[arg(long = "name", value_name = "NAME")]
        name: Option<String>,
    },
    /// Print the man page (roff) to stdout.
    #[command(hide = true)]
    Man,
}

impl Command {
    /// The profile tools report errors with 2 where 1 means "they differ".
    pub fn error_code(&self) -> u8 {
        match self {
            Command::Diff { .. } | Command::Check { .. } => 2,
            _ => 1,
        }
    }
}

/// The man page: the main page, then a section per subcommand with its
/// synopsis, description and options.
pub fn render_man(w: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut cli = Cli::command();
    cli.build();
    clap_mangen::Man::new(cli.clone()).render(w)?;
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        writeln!(w, ".SH \"COMMAND: {}\"", sub.get_name().to_uppercase())?;
        let man = clap_mangen::Man::new(sub.clone());
        man.render_synopsis_section(w)?;
        man.render_description_section(w)?;
        man.render_options_section(w)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn dash_s_is_the_prestart_hook() {
        let cli = Cli::try_parse_from(["oci-seccomp-bpf-hook", "-s"]).unwrap();
        assert!(cli.start && cli.command.is_none());
        let cli = Cli::try_parse_from(["oci-seccomp-bpf-hook", "prestart"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Prestart)));
    }

    #[test]
    fn record_takes_the_command_after_dashes() {
        let cli = Cli::try_parse_from(["x", "record", "-i", "b.json", "-o", "o.json", "--", "ls", "-l"]).unwrap();
        let Some(Command::Record { input, output, command }) = cli.command else { panic!("not record") };
        assert_eq!(input, Some(PathBuf::from("b.json")));
        assert_eq!(output, PathBuf::from("o.json"));
        assert_eq!(command, vec![OsString::from("ls"), OsString::from("-l")]);
        assert!(Cli::try_parse_from(["x", "record", "-o", "o.json"]).is_err(), "a command is required");
    }

    #[test]
    fn the_profile_tools_parse() {
        let cli = Cli::try_parse_from(["x", "merge", "a.json", "b.json", "-o", "m.json"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Merge { ref inputs, .. }) if inputs.len() == 2));
        let cli = Cli::try_parse_from(["x", "check", "--covers", "p.json", "r1.json", "r2.json"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Check { ref recordings, .. }) if recordings.len() == 2));
        let cli = Cli::try_parse_from(["x", "convert", "--to", "spo", "p.json", "-o", "p.yaml"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Convert { to: Format::Spo, .. })));
        assert!(Cli::try_parse_from(["x", "convert", "--to", "docker", "p.json", "-o", "o"]).is_err());
        assert!(Cli::try_parse_from(["x", "merge", "-o", "m.json"]).is_err(), "an input is required");
        let cli = Cli::try_parse_from(["x", "diff", "a.json", "b.json"]).unwrap();
        assert_eq!(cli.command.unwrap().error_code(), 2);
    }

    #[test]
    fn the_man_page_has_a_section_per_tool() {
        let mut page = Vec::new();
        render_man(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        for (section, text) in [
            ("COMMAND: MERGE", "in K of N"),
            ("COMMAND: DIFF", "2 on error"),
            ("COMMAND: CHECK", "same conditions"),
            ("COMMAND: CONVERT", "security\\-profiles\\-operator.x\\-k8s.io/v1beta1"),
        ] {
            assert!(page.contains(section) && page.contains(text), "{section} / {text} missing in:\n{page}");
        }
        assert!(!page.contains("COMMAND: MAN"), "the hidden man command stays hidden");
    }

    #[test]
    fn the_man_page_documents_the_config() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains(crate::policy::DEFAULT_CONFIG) && help.contains(crate::policy::CONFIG_ENV), "{help}");
        for field in ["output_dirs", "input_dirs", "profile_mode", "max_input_bytes"] {
            assert!(help.contains(field), "{field} is not documented");
        }
    }
}
