//! Integration tests: the root tests of the recording engine on the host
//! kernel (`record`), and podman end to end under runc and crun.
//!
//! They run as root (CI is root); without root each test prints
//! `SKIPPED: <test>: <reason>` and returns. The same binary runs inside the
//! VM kernel matrix (`just vm-test`).

mod support;

mod argument_rules;
mod bounded_replay;
mod hostile_inputs;
mod minimal;
mod packaging;
mod pin_home;
mod podman_errors;
mod podman_profiles;
mod precise_profiles;
mod profile_tools;
mod record;
mod shared_recorder;
mod systemd_host;
mod systemd_unit;
