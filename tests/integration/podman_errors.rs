//! Mistakes are reported by podman at once (exit 126, the hook's reason on
//! stderr), before the container runs, and nothing on disk is touched.

use rstest::rstest;

use crate::support::{stderr, Podman};

fn assert_refused(p: &Podman, annotation: &str, expected: &str) {
    let marker = p.path("container-ran");
    let o = p.trace_with(
        annotation,
        &["-v", &format!("{}:/w", p.work.path().display())],
        &["/bin/touch", "/w/container-ran"],
    );
    assert_eq!(o.status.code(), Some(126), "podman should refuse; stderr: {}", stderr(&o));
    // runc shows the hook's stderr to the user; crun drops it, so the hook's
    // log (journal or log file) must carry the reason for every runtime.
    if p.runtime == "runc" {
        assert!(stderr(&o).contains(expected), "stderr should contain {expected:?}: {}", stderr(&o));
    }
    let log = p.hook_log();
    assert!(log.contains(expected), "the hook's log should contain {expected:?}: {log}");
    assert!(!marker.exists(), "the container must not run");
}

#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn annotation_errors(#[case] runtime: &'static str) {
    let Some(p) = Podman::new(runtime) else { return };
    assert_refused(&p, "of:relative.json", "is not absolute");
    assert_refused(&p, "if:/a.json;of:/b.json;of:/c.json", "more than one ';'");
    assert_refused(&p, "out:/tmp/x.json", "starts with neither 'if:' nor 'of:'");
    assert_refused(&p, "if:/tmp/base.json", "no output file");
    assert_refused(&p, "of:/tmp/a.json;", "empty part");
}

#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn file_errors(#[case] runtime: &'static str) {
    let Some(p) = Podman::new(runtime) else { return };
    let missing_dir = p.path("no-such-dir/out.json");
    assert_refused(&p, &format!("of:{}", missing_dir.display()), "does not exist");

    let out = p.path("out.json");
    std::fs::write(&out, "previous").unwrap();
    let missing = p.path("missing.json");
    assert_refused(&p, &format!("if:{};of:{}", missing.display(), out.display()), "failed to read input profile");
    let broken = p.path("broken.json");
    std::fs::write(&broken, "{\"defaultAction\":").unwrap();
    assert_refused(&p, &format!("if:{};of:{}", broken.display(), out.display()), "not a seccomp profile");
    let invalid = p.path("invalid.json");
    std::fs::write(&invalid, r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"ALLOW"}]}"#)
        .unwrap();
    assert_refused(&p, &format!("if:{};of:{}", invalid.display(), out.display()), "unknown action");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous", "the old output is untouched");
}
