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
#[derive(Debug, Parser)]
#[command(
    name = "oci-seccomp-bpf-hook",
    version,
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
}
