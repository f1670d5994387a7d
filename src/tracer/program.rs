//! The shared program: load it (against the cached minimal BTF), attach it
//! (twice where the kernel runs it preemptibly, see preemption.rs) and pin
//! its links, slot table and value map; route libbpf's log to ours.

use std::fs;
use std::mem::MaybeUninit;
use std::path::Path;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapHandle};

use super::skel::RecorderSkelBuilder;
use super::{kernel_btf, pins, preemption, TracerError};

/// Loads the program, attaches it and pins the link, the slot table and the
/// value map in `dir`, a directory only root can change; returns the slot
/// table.
pub fn load_and_pin(dir: &Path) -> Result<MapHandle, TracerError> {
    route_libbpf_logs();
    // Leftovers of a tracer that died half-way through this function.
    for pin in pins::SHARED {
        let _ = fs::remove_file(dir.join(pin));
    }
    // Record pins of a previous program are of no use to this one.
    for mntns in pins::records(dir) {
        let _ = fs::remove_file(pins::record(dir, mntns));
    }

    let mut storage = MaybeUninit::uninit();
    let mut builder = RecorderSkelBuilder::default();
    // Relocate against the cached minimal BTF rather than parse the whole
    // kernel BTF at every container start (see kernel_btf.rs); without it,
    // libbpf parses /sys/kernel/btf/vmlinux as usual.
    let cached = match kernel_btf::cached() {
        Ok(path) => match builder.obj_builder.btf_custom_path(&path) {
            Ok(_) => Some(path),
            Err(e) => {
                tracing::warn!("cannot use the minimal BTF {path:?}: {e}");
                None
            }
        },
        Err(e) => {
            tracing::warn!("no minimal BTF, loading against the full kernel BTF: {e}");
            None
        }
    };
    let again = preemption::running_kernel_preemptible(cached.as_deref());
    let load = |source| TracerError::Load { source };
    let mut open = builder.open(&mut storage).map_err(load)?;
    // The .bss map only carries the dummy instances that make the skeleton
    // emit the shared types; the program never reads it.
    open.maps.bss.set_autocreate(false).map_err(load)?;
    open.progs.record_syscall_again.set_autoload(again);
    let skel = open.load().map_err(load)?;
    let attach = |source| TracerError::Attach { source };
    let mut link: Link = skel.progs.record_syscall.attach().map_err(attach)?;
    let link_again = again.then(|| skel.progs.record_syscall_again.attach()).transpose().map_err(attach)?;
    // Pin the map first: a link pinned without its map would be found by
    // the next tracer and leave it nothing to record into.
    let pin = |name: &str| {
        let path = dir.join(name);
        move |source| TracerError::Pin { path, source }
    };
    let mut values = MapHandle::try_from(&skel.maps.arg_values).map_err(pin(pins::ARG_VALUES))?;
    values.pin(dir.join(pins::ARG_VALUES)).map_err(pin(pins::ARG_VALUES))?;
    let mut map = MapHandle::try_from(&skel.maps.containers).map_err(pin(pins::SLOTS))?;
    map.pin(dir.join(pins::SLOTS)).map_err(pin(pins::SLOTS))?;
    // The first link last: joining tracers take its pin for a whole program.
    if let Some(mut again) = link_again {
        again.pin(dir.join(pins::LINK_AGAIN)).map_err(pin(pins::LINK_AGAIN))?;
    }
    link.pin(dir.join(pins::LINK)).map_err(pin(pins::LINK))?;
    Ok(map)
}

/// The kind of hook the program attaches to (`raw_tp`, `tp_btf`, ...): the
/// first part of its ELF section name, read from the embedded object (the
/// bench attaches its reference programs to the same kind).
pub fn attach_kind() -> Result<String, TracerError> {
    let mut storage = MaybeUninit::uninit();
    let open = RecorderSkelBuilder::default().open(&mut storage).map_err(|source| TracerError::Load { source })?;
    let section = open.progs.record_syscall.section().to_string_lossy().into_owned();
    Ok(section.split('/').next().unwrap_or_default().to_string())
}

/// libbpf prints to stderr by default; send its lines to our log instead,
/// so that the tracer (stderr closed) and the journal keep them.
fn route_libbpf_logs() {
    use libbpf_rs::PrintLevel;
    fn print(level: PrintLevel, msg: String) {
        let msg = msg.trim_end();
        match level {
            PrintLevel::Warn => tracing::warn!(target: "libbpf", "{msg}"),
            PrintLevel::Info => tracing::debug!(target: "libbpf", "{msg}"),
            PrintLevel::Debug => tracing::trace!(target: "libbpf", "{msg}"),
        }
    }
    libbpf_rs::set_print(Some((PrintLevel::Debug, print)));
}

#[cfg(test)]
mod tests {
    /// Opening the object needs no privileges; the bench's floor programs
    /// exist for these two kinds only.
    #[test]
    fn the_program_sits_on_a_kind_of_hook_the_bench_can_match() {
        let kind = super::attach_kind().unwrap();
        assert!(kind == "raw_tp" || kind == "tp_btf", "{kind}");
    }
}
