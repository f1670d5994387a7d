//! oci-seccomp-bpf-hook: records the syscalls of a container with eBPF and
//! writes a seccomp profile that allows exactly those.
//!
//! The data flow, one module per step:
//! [`state`] (OCI state on stdin) -> [`annotation`] -> [`tracer`] (BPF) ->
//! [`handoff`] (what of it the profile allows) -> [`syscalls`] (the set,
//! named) and [`arg_rules`] (its argument values) -> [`profile`] (merge) ->
//! [`profile_file`] (checked, written atomically).
//! The commands that drive it: [`prestart`] (the hook), [`session`] (the
//! detached tracer process it starts) and [`standalone`] (`record -- CMD`).
//! [`tools`]: merge, diff, check and convert the profiles users keep.

pub mod annotation;
pub mod arg_rules;
pub mod cli;
pub mod exit_watch;
pub mod handoff;
pub mod limits;
pub mod log_event;
pub mod logging;
pub mod output_dir;
pub mod policy;
pub mod prestart;
pub mod privileges;
pub mod profile;
pub mod profile_file;
pub mod recording;
pub mod session;
pub mod standalone;
pub mod state;
pub mod syscalls;
pub mod tools;
pub mod tracer;
