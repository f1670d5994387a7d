//! The `vm/KERNELS` file: which kernels the matrix boots and where Debian keeps them.
//! The file documents its own fields; this module enforces them, one error per rule, so a typo
//! is reported with its line instead of surfacing later as a confusing apt failure.

use std::path::{Path, PathBuf};

/// One line of `vm/KERNELS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelSpec {
    /// `MAJOR.MINOR`, the name users type.
    pub series: String,
    /// Debian suite, e.g. `trixie-backports`.
    pub suite: String,
    /// Package name patterns, each with one `*`.
    pub packages: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum KernelsError {
    #[error("failed to read {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: expected `SERIES SUITE PACKAGE...`, found {found} field(s)")]
    MissingFields { path: PathBuf, line: usize, found: usize },
    #[error("{path}:{line}: series {series:?} is not MAJOR.MINOR (for example 6.1)")]
    BadSeries { path: PathBuf, line: usize, series: String },
    #[error("{path}:{line}: series {series} is listed twice (first on line {first})")]
    DuplicateSeries { path: PathBuf, line: usize, series: String, first: usize },
    #[error(
        "{path}:{line}: suite {suite:?} is not a Debian suite name \
         (lowercase codename, optionally -security, -backports or -updates)"
    )]
    BadSuite { path: PathBuf, line: usize, suite: String },
    #[error("{path}:{line}: package {package:?} must contain exactly one `*` (the moving version part)")]
    BadStar { path: PathBuf, line: usize, package: String },
    #[error(
        "{path}:{line}: package {package:?} has characters Debian package names cannot have \
         (allowed: a-z 0-9 + - . and the one `*`)"
    )]
    BadPackageChars { path: PathBuf, line: usize, package: String },
    #[error("{path}: no kernels are listed")]
    Empty { path: PathBuf },
    #[error("kernel series {series} is not in {path} (listed: {known})")]
    UnknownSeries { path: PathBuf, series: String, known: String },
}

/// Reads and validates the file.
pub fn load(path: &Path) -> Result<Vec<KernelSpec>, KernelsError> {
    let text = std::fs::read_to_string(path).map_err(|source| KernelsError::Read { path: path.to_owned(), source })?;
    parse(path, &text)
}

/// Validates the text of a KERNELS file; `path` is only used in messages.
pub fn parse(path: &Path, text: &str) -> Result<Vec<KernelSpec>, KernelsError> {
    let path = path.to_owned();
    let mut specs: Vec<(usize, KernelSpec)> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.split('#').next().unwrap_or("");
        let fields: Vec<&str> = content.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() < 3 {
            let found = fields.len();
            return Err(KernelsError::MissingFields { path, line, found });
        }
        let series = fields[0].to_owned();
        if !is_series(&series) {
            return Err(KernelsError::BadSeries { path, line, series });
        }
        if let Some((first, _)) = specs.iter().find(|(_, s)| s.series == series) {
            let first = *first;
            return Err(KernelsError::DuplicateSeries { path, line, series, first });
        }
        let suite = fields[1].to_owned();
        if !is_suite(&suite) {
            return Err(KernelsError::BadSuite { path, line, suite });
        }
        let mut packages = Vec::new();
        for package in &fields[2..] {
            let package = (*package).to_owned();
            if package.matches('*').count() != 1 {
                return Err(KernelsError::BadStar { path, line, package });
            }
            let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.*".contains(c);
            if !package.chars().all(allowed) {
                return Err(KernelsError::BadPackageChars { path, line, package });
            }
            packages.push(package);
        }
        specs.push((line, KernelSpec { series, suite, packages }));
    }
    if specs.is_empty() {
        return Err(KernelsError::Empty { path });
    }
    Ok(specs.into_iter().map(|(_, s)| s).collect())
}

/// Picks the requested series in the order given, or all of them when none is given.
pub fn select(path: &Path, specs: &[KernelSpec], wanted: &[String]) -> Result<Vec<KernelSpec>, KernelsError> {
    if wanted.is_empty() {
        return Ok(specs.to_vec());
    }
    wanted
        .iter()
        .map(|series| {
            specs.iter().find(|s| &s.series == series).cloned().ok_or_else(|| KernelsError::UnknownSeries {
                path: path.to_owned(),
                series: series.clone(),
                known: specs.iter().map(|s| s.series.as_str()).collect::<Vec<_>>().join(", "),
            })
        })
        .collect()
}

/// The archive that carries a suite: security updates live on their own mirror path.
pub fn archive_url(suite: &str) -> &'static str {
    if suite.ends_with("-security") {
        "http://deb.debian.org/debian-security"
    } else {
        "http://deb.debian.org/debian"
    }
}

fn is_series(s: &str) -> bool {
    let mut parts = s.split('.');
    let numeric = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    numeric(parts.next()) && numeric(parts.next()) && parts.next().is_none()
}

fn is_suite(s: &str) -> bool {
    let (codename, pocket) = match s.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (s, None),
    };
    !codename.is_empty()
        && codename.bytes().all(|b| b.is_ascii_lowercase())
        && matches!(pocket, None | Some("security" | "backports" | "updates"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Vec<KernelSpec>, KernelsError> {
        parse(Path::new("KERNELS"), text)
    }

    #[test]
    fn the_shipped_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("KERNELS");
        let specs = load(&path).unwrap();
        let series: Vec<_> = specs.iter().map(|s| s.series.as_str()).collect();
        assert_eq!(series, ["5.10", "6.1", "6.12", "6.18", "7.3"]);
        assert_eq!(specs[4].packages.len(), 2);
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let specs = parse_str("# c\n\n6.1 bookworm linux-image-6.1.0-*-amd64 # trailing\n").unwrap();
        assert_eq!(
            specs,
            [KernelSpec {
                series: "6.1".into(),
                suite: "bookworm".into(),
                packages: vec!["linux-image-6.1.0-*-amd64".into()],
            }]
        );
    }

    #[test]
    fn each_rule_has_its_own_error() {
        let cases: &[(&str, &str)] = &[
            ("6.1 bookworm\n", "KERNELS:1: expected `SERIES SUITE PACKAGE...`, found 2 field(s)"),
            ("6 bookworm linux-*\n", "KERNELS:1: series \"6\" is not MAJOR.MINOR (for example 6.1)"),
            ("6.x bookworm linux-*\n", "KERNELS:1: series \"6.x\" is not MAJOR.MINOR (for example 6.1)"),
            ("6.1 bookworm linux-*\n6.1 trixie linux-*\n", "KERNELS:2: series 6.1 is listed twice (first on line 1)"),
            ("6.1 Bookworm linux-*\n", "KERNELS:1: suite \"Bookworm\" is not a Debian suite name"),
            ("6.1 trixie-foo linux-*\n", "KERNELS:1: suite \"trixie-foo\" is not a Debian suite name"),
            ("6.1 bookworm linux-image\n", "KERNELS:1: package \"linux-image\" must contain exactly one `*`"),
            ("6.1 bookworm linux-*-*\n", "KERNELS:1: package \"linux-*-*\" must contain exactly one `*`"),
            ("6.1 bookworm Linux-*\n", "KERNELS:1: package \"Linux-*\" has characters"),
            ("# nothing\n", "KERNELS: no kernels are listed"),
        ];
        for (text, expected) in cases {
            let message = parse_str(text).unwrap_err().to_string();
            assert!(message.starts_with(expected), "{text:?}: got {message:?}");
        }
    }

    #[test]
    fn select_keeps_order_and_names_unknown_series() {
        let specs = parse_str("5.10 bullseye-security a-*\n6.1 bookworm b-*\n").unwrap();
        let path = Path::new("KERNELS");
        assert_eq!(select(path, &specs, &[]).unwrap().len(), 2);
        let picked = select(path, &specs, &["6.1".into(), "5.10".into()]).unwrap();
        assert_eq!(picked[0].series, "6.1");
        let err = select(path, &specs, &["4.19".into()]).unwrap_err().to_string();
        assert_eq!(err, "kernel series 4.19 is not in KERNELS (listed: 5.10, 6.1)");
    }

    #[test]
    fn security_suites_come_from_the_security_archive() {
        assert_eq!(archive_url("bullseye-security"), "http://deb.debian.org/debian-security");
        assert_eq!(archive_url("trixie-backports"), "http://deb.debian.org/debian");
    }
}
