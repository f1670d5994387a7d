//! Command-line definition, shared by main.rs and the man page generator.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    /// Print the man page (roff) to stdout.
    #[command(hide = true)]
    Man,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

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
    fn the_man_page_documents_the_config() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains(crate::policy::DEFAULT_CONFIG) && help.contains(crate::policy::CONFIG_ENV), "{help}");
        for field in ["output_dirs", "input_dirs", "profile_mode", "max_input_bytes"] {
            assert!(help.contains(field), "{field} is not documented");
        }
    }
}
