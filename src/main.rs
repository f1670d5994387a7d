//! Thin entry point: parse options, set up logging, dispatch.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use oci_seccomp_bpf_hook::cli::{Cli, Command};
use oci_seccomp_bpf_hook::logging::{self, Mode, Sink};
use oci_seccomp_bpf_hook::{prestart, standalone};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match (cli.start, cli.command) {
        (true, _) => Command::Prestart,
        (false, Some(c)) => c,
        (false, None) => unreachable!("clap requires -s or a subcommand"),
    };
    if let Command::Man = command {
        return match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&format!("failed to write the man page: {e}"), Sink::Stderr),
        };
    }
    let mode = match command {
        Command::Record { .. } => Mode::Interactive,
        _ => Mode::Hook,
    };
    let sink = logging::init(&cli.log_level, mode);
    let result = match command {
        Command::Prestart => prestart::run(std::io::stdin().lock()).map(|()| 0),
        Command::Record { input, output, command } => standalone::run(&standalone::Record { input, output, command }),
        Command::Man => unreachable!("handled above"),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => fail(&format!("{e:#}"), sink),
    }
}

/// Errors go to the log, and to stderr too when the log is elsewhere:
/// podman with runc shows a failing hook's stderr to the user.
fn fail(message: &str, sink: Sink) -> ExitCode {
    tracing::error!("{message}");
    if sink != Sink::Stderr {
        eprintln!("oci-seccomp-bpf-hook: {message}");
    }
    ExitCode::FAILURE
}
