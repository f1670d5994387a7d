//! The `io.containers.trace-syscall` annotation: `of:OUT` with an optional
//! `if:BASE`, separated by `;`, in either order, both absolute paths.

use std::path::PathBuf;

use thiserror::Error;

use crate::limits::{self, MAX_ANNOTATION_BYTES, PATH_MAX};

pub const ANNOTATION: &str = "io.containers.trace-syscall";

/// Where to write the profile, and the baseline to merge, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub input: Option<PathBuf>,
    pub output: PathBuf,
}

/// The `value` fields hold the value as shown (cut short, see [`limits`]).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AnnotationError {
    #[error(
        "{ANNOTATION}={value}: the value is longer than {MAX_ANNOTATION_BYTES} bytes: give at most two short paths"
    )]
    TooLong { value: String },
    #[error("{ANNOTATION}={value}: holds the control character {found:?}: give printable paths only")]
    ControlChar { value: String, found: char },
    #[error(
        "{ANNOTATION}={value}: {what} path is {len} bytes, longer than PATH_MAX ({PATH_MAX}): give a shorter path"
    )]
    PathTooLong { value: String, what: &'static str, len: usize },
    #[error("{ANNOTATION}={value}: more than one ';': give at most \"if:/abs/base.json;of:/abs/out.json\"")]
    TooManyParts { value: String },
    #[error("{ANNOTATION}={value}: empty part: remove the stray ';' or write \"of:/abs/out.json\"")]
    EmptyPart { value: String },
    #[error("{ANNOTATION}={value}: part {part} starts with neither 'if:' nor 'of:'")]
    UnknownPrefix { value: String, part: String },
    #[error("{ANNOTATION}={value}: '{prefix}' given twice: give one input and one output file")]
    Duplicate { value: String, prefix: &'static str },
    #[error("{ANNOTATION}={value}: '{prefix}' has no path: write '{prefix}/abs/path.json'")]
    EmptyPath { value: String, prefix: &'static str },
    #[error("{ANNOTATION}={value}: {what} path {path} is not absolute: the hook does not run in your working directory, give a path starting with '/'")]
    Relative { value: String, what: &'static str, path: String },
    #[error("{ANNOTATION}={value}: no output file: add 'of:/abs/out.json'")]
    MissingOutput { value: String },
}

/// Parses the annotation's value.
pub fn parse(value: &str) -> Result<Request, AnnotationError> {
    let v = || limits::shown(value);
    if value.len() > MAX_ANNOTATION_BYTES {
        return Err(AnnotationError::TooLong { value: v() });
    }
    if let Some(found) = limits::control_char(value) {
        return Err(AnnotationError::ControlChar { value: v(), found });
    }
    let parts: Vec<&str> = value.split(';').map(str::trim).collect();
    if parts.len() > 2 {
        return Err(AnnotationError::TooManyParts { value: v() });
    }
    let mut input = None;
    let mut output = None;
    for part in parts {
        if part.is_empty() {
            return Err(AnnotationError::EmptyPart { value: v() });
        }
        let (prefix, what, slot) = if part.starts_with("if:") {
            ("if:", "input", &mut input)
        } else if part.starts_with("of:") {
            ("of:", "output", &mut output)
        } else {
            return Err(AnnotationError::UnknownPrefix { value: v(), part: limits::shown(part) });
        };
        if slot.is_some() {
            return Err(AnnotationError::Duplicate { value: v(), prefix });
        }
        let path = part[prefix.len()..].trim();
        if path.is_empty() {
            return Err(AnnotationError::EmptyPath { value: v(), prefix });
        }
        if !path.starts_with('/') {
            return Err(AnnotationError::Relative { value: v(), what, path: limits::shown(path) });
        }
        if path.len() >= PATH_MAX {
            return Err(AnnotationError::PathTooLong { value: v(), what, len: path.len() });
        }
        *slot = Some(PathBuf::from(path));
    }
    let output = output.ok_or_else(|| AnnotationError::MissingOutput { value: v() })?;
    Ok(Request { input, output })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn req(input: Option<&str>, output: &str) -> Request {
        Request { input: input.map(PathBuf::from), output: PathBuf::from(output) }
    }

    #[rstest]
    #[case::output_only("of:/tmp/out.json", req(None, "/tmp/out.json"))]
    #[case::input_then_output("if:/tmp/in.json;of:/tmp/out.json", req(Some("/tmp/in.json"), "/tmp/out.json"))]
    #[case::output_then_input("of:/tmp/out.json;if:/tmp/in.json", req(Some("/tmp/in.json"), "/tmp/out.json"))]
    #[case::whitespace_around_parts("  if:/a.json ; of:/b.json  ", req(Some("/a.json"), "/b.json"))]
    #[case::whitespace_in_values("if: /a.json;of:\t/b.json", req(Some("/a.json"), "/b.json"))]
    #[case::path_with_spaces("of:/tmp/my dir/out.json", req(None, "/tmp/my dir/out.json"))]
    #[case::same_file_both_ways("if:/p.json;of:/p.json", req(Some("/p.json"), "/p.json"))]
    fn valid(#[case] value: &str, #[case] expected: Request) {
        assert_eq!(parse(value).unwrap(), expected);
    }

    #[rstest]
    #[case::three_parts("if:/a;of:/b;of:/c", "more than one ';'")]
    #[case::two_semicolons_trailing("of:/b;;", "more than one ';'")]
    #[case::trailing_semicolon("of:/b;", "empty part")]
    #[case::leading_semicolon(";of:/b", "empty part")]
    #[case::empty_value("", "empty part")]
    #[case::blank_value("   ", "empty part")]
    #[case::no_prefix("/tmp/out.json", "starts with neither")]
    #[case::unknown_prefix("out:/tmp/out.json", "starts with neither")]
    #[case::upper_case_prefix("OF:/tmp/out.json", "starts with neither")]
    #[case::duplicate_output("of:/a;of:/b", "'of:' given twice")]
    #[case::duplicate_input("if:/a;if:/b", "'if:' given twice")]
    #[case::empty_output("of:", "'of:' has no path")]
    #[case::empty_input("if: ;of:/b", "'if:' has no path")]
    #[case::relative_output("of:out.json", "output path \"out.json\" is not absolute")]
    #[case::dot_relative_output("of:./out.json", "is not absolute")]
    #[case::relative_input("if:base.json;of:/out.json", "input path \"base.json\" is not absolute")]
    #[case::missing_output("if:/in.json", "no output file")]
    #[case::nul("of:/tmp/a\0b.json", "control character '\\0'")]
    #[case::newline("of:/tmp/a.json\nof:/x", "control character '\\n'")]
    #[case::escape("of:/tmp/\u{1b}[2J.json", "control character '\\u{1b}'")]
    fn invalid(#[case] value: &str, #[case] message: &str) {
        let err = parse(value).unwrap_err().to_string();
        assert!(err.contains(message), "{err:?} should contain {message:?}");
        assert!(err.contains(ANNOTATION), "the error names the annotation: {err}");
    }

    /// Failure 6: a 100 KB value was echoed twice in a 200 KB message, more
    /// than the 64 KiB pipe runc reads only after the hook exits.
    #[test]
    fn huge_value_is_refused_with_a_short_message() {
        let value = format!("of:/{}", "a".repeat(100_000));
        let err = parse(&value).unwrap_err().to_string();
        assert!(err.contains("longer than 8208 bytes"), "{err}");
        assert!(err.contains("(100004 bytes in all)"), "the full length is stated: {err}");
        assert!(err.len() < 1024, "the message stays short: {} bytes", err.len());
    }

    #[test]
    fn path_over_path_max_is_refused() {
        let value = format!("of:/{}", "a".repeat(4095));
        let err = parse(&value).unwrap_err().to_string();
        assert!(err.contains("longer than PATH_MAX"), "{err}");
        // Just under both limits: accepted.
        assert!(parse(&format!("of:/{}", "a".repeat(4000))).is_ok());
    }

    #[test]
    fn every_echo_is_cut() {
        let value = format!("if:{};of:/o", "x".repeat(3000));
        let err = parse(&value).unwrap_err().to_string();
        assert!(err.len() < 1024 && err.contains("bytes in all"), "{err}");
    }
}
