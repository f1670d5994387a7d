//! Argument rules: a recorded profile allows socket, personality, clone,
//! unshare and prctl only with the first arguments the workload used. A
//! replay making the same calls behaves the same, and one making the same
//! calls with other values is refused (EPERM), where the same profile
//! without its `args` would let them through.

use rstest::rstest;
use serde_json::{json, Value};

use hook_test_support::PROBE_IN_IMAGE as PROBE;

use crate::support::{stderr, stdout, Podman};

/// What the workload does: each probe prints "NAME VALUE: ok" or the error,
/// and goes on. AF_UNIX and AF_INET sockets, a persona query, a fork-like
/// clone, an unshare of nothing, PR_GET_DUMPABLE.
const RECORDED: &str = "P=/usr/local/bin/sysprobe; $P socket 1 2; $P personality 0xffffffff; $P clone 0; \
                        $P unshare 0; $P prctl 3";
/// The same calls with other values: AF_NETLINK and AF_PACKET sockets,
/// PER_LINUX32, a new user namespace by clone and by unshare, PR_GET_SECCOMP.
const OTHERS: &str = "P=/usr/local/bin/sysprobe; $P socket 1 16 17; $P personality 8; $P clone 0x10000000; \
                      $P unshare 0x10000000; $P prctl 21";
const REFUSED: [&str; 6] =
    ["socket 16", "socket 17", "personality 8", "clone 268435456", "unshare 268435456", "prctl 21"];

/// The values of the `args` rules for `name` in `profile`: (value, valueTwo).
fn rule_values(profile: &Value, name: &str) -> Vec<(u64, u64)> {
    let rules = profile["syscalls"].as_array().into_iter().flatten();
    let of_name = rules.filter(|r| r["names"] == json!([name]) && r["action"] == "SCMP_ACT_ALLOW");
    of_name
        .flat_map(|r| r["args"].as_array().into_iter().flatten())
        .map(|a| (a["value"].as_u64().unwrap(), a["valueTwo"].as_u64().unwrap()))
        .collect()
}

/// The profile with every rule's `args` removed: names only.
fn names_only(profile: &Value) -> Value {
    let mut out = profile.clone();
    for rule in out["syscalls"].as_array_mut().unwrap() {
        rule.as_object_mut().unwrap().remove("args");
    }
    out
}

fn line_of<'a>(output: &'a str, probe: &str) -> &'a str {
    output.lines().find(|l| l.starts_with(&format!("{probe}:"))).unwrap_or_else(|| panic!("no {probe} in {output}"))
}

#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn other_argument_values_are_refused_on_replay(#[case] runtime: &'static str) {
    let Some(p) = Podman::new(runtime) else { return };
    let out = p.path("args.json");
    let (profile, first) = p.trace(None, &out, &["/bin/sh", "-c", RECORDED]);
    println!("{runtime}: {}", serde_json::to_string_pretty(&profile["syscalls"]).unwrap());
    assert_eq!(rule_values(&profile, "socket"), [(1, 0), (2, 0)]);
    assert_eq!(rule_values(&profile, "personality"), [(0xffff_ffff, 0)]);
    assert_eq!(rule_values(&profile, "unshare"), [(0x7e02_0000, 0)]);
    assert!(rule_values(&profile, "prctl").contains(&(3, 0)), "prctl 3 not kept; the hook's log:\n{}", p.hook_log());
    assert_eq!(rule_values(&profile, "clone"), [(0x7e02_0000, 0)], "no namespace flags: a fork");

    let again = p.replay(&out, &["/bin/sh", "-c", RECORDED]);
    assert_eq!((again.status.code(), stdout(&again)), (first.status.code(), stdout(&first)), "{}", stderr(&again));

    let others = p.replay(&out, &["/bin/sh", "-c", OTHERS]);
    let loose_path = p.path("names-only.json");
    std::fs::write(&loose_path, names_only(&profile).to_string()).unwrap();
    let loose = p.replay(&loose_path, &["/bin/sh", "-c", OTHERS]);
    assert_eq!(line_of(&stdout(&others), "socket 1"), "socket 1: ok");
    for probe in REFUSED {
        assert_eq!(
            line_of(&stdout(&others), probe),
            format!("{probe}: Operation not permitted"),
            "{runtime}: {probe} under the argument rules"
        );
    }
    for probe in ["socket 16", "personality 8", "clone 268435456", "unshare 268435456", "prctl 21"] {
        assert_eq!(line_of(&stdout(&loose), probe), format!("{probe}: ok"), "{runtime}: {probe} by name only");
    }
}

/// A program whose threads start with clone3 keeps it: the kernel cannot
/// check clone3's flags, so it is allowed by name when recorded.
#[rstest]
#[case::runc("runc")]
#[case::crun("crun")]
fn clone3_is_allowed_by_name_when_recorded(#[case] runtime: &'static str) {
    let Some(p) = Podman::new(runtime) else { return };
    let profile = p.trace_and_replay(&[PROBE, "threads"]);
    let rules = profile["syscalls"].as_array().unwrap();
    let clone3: Vec<&Value> =
        rules.iter().filter(|r| r["names"].as_array().unwrap().contains(&json!("clone3"))).collect();
    assert!(clone3.iter().all(|r| r["action"] == "SCMP_ACT_ALLOW" && r.get("args").is_none()), "{clone3:?}");
}
