//! Running the host tools the harness leans on (apt-get, dpkg-deb, xz, zstd) with errors that
//! name the command and keep its stderr, since that text is usually the only clue.

use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("failed to start `{program}` (is it installed?)")]
    Spawn { program: String, source: std::io::Error },
    #[error("`{command}` failed with {status}: {stderr}")]
    Failed { command: String, status: std::process::ExitStatus, stderr: String },
}

/// Runs `cmd` to completion and returns its stdout; a non-zero exit is an error carrying stderr.
pub fn output(cmd: &mut Command) -> Result<Vec<u8>, ToolError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.stdin(Stdio::null()).output().map_err(|source| ToolError::Spawn { program, source })?;
    if !out.status.success() {
        return Err(ToolError::Failed {
            command: describe(cmd),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out.stdout)
}

/// Like [`output`] for commands whose stdout is text.
pub fn text(cmd: &mut Command) -> Result<String, ToolError> {
    output(cmd).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// The command as a user could retype it, for messages.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
