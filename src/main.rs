//! Thin entry point: parse options, set up logging, dispatch.

use std::process::ExitCode;

use clap::Parser;
use oci_seccomp_bpf_hook::cli::{self, Cli, Command};
use oci_seccomp_bpf_hook::logging::{self, Mode, Sink};
use oci_seccomp_bpf_hook::{prestart, standalone, tools};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match (cli.start, cli.command) {
        (true, _) => Command::Prestart,
        (false, Some(c)) => c,
        (false, None) => unreachable!("clap requires -s or a subcommand"),
    };
    if let Command::Man = command {
        return match cli::render_man(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&format!("failed to write the man page: {e}"), Sink::Stderr),
        };
    }
    let mode = match command {
        Command::Prestart => Mode::Hook,
        _ => Mode::Interactive,
    };
    let sink = logging::init(&cli.log_level, mode);
    let error_code = command.error_code();
    let mut out = std::io::stdout().lock();
    let result: anyhow::Result<i32> = match command {
        Command::Prestart => prestart::run(std::io::stdin().lock()).map(|()| 0),
        Command::Record { input, output, command } => standalone::run(&standalone::Record { input, output, command }),
        Command::Merge { inputs, output } => tools::merge::run(&inputs, &output).map(|_| 0).map_err(Into::into),
        Command::Diff { a, b } => tools::diff::run(&a, &b, &mut out).map_err(Into::into),
        Command::Check { covers, recordings } => tools::covers::run(&covers, &recordings, &mut out).map_err(Into::into),
        Command::Convert { to, input, output, name } => {
            tools::convert::run(&input, to, &output, name.as_deref()).map(|_| 0).map_err(Into::into)
        }
        Command::Man => unreachable!("handled above"),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            fail(&format!("{e:#}"), sink);
            ExitCode::from(error_code)
        }
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
