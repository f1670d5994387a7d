//! Waiting for a process we did not necessarily start, by pidfd, while
//! staying stoppable by the usual signals.

use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;

/// Why the wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited,
    Signal(u32),
}

pub fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Blocks until the process exits, or until we are asked to stop
/// (SIGTERM, SIGINT, SIGHUP), which the caller answers by still writing
/// what was recorded.
pub fn wait_for_exit(pidfd: &OwnedFd) -> Result<Ended> {
    let mut signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(s);
    }
    signals.thread_block().context("failed to block signals")?;
    let sfd = SignalFd::new(&signals).context("failed to create a signalfd")?;
    loop {
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN), PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("failed to wait for the container"),
            Ok(_) => {}
        }
        if fds[0].any().unwrap_or(false) {
            return Ok(Ended::Exited);
        }
        if let Ok(Some(info)) = sfd.read_signal() {
            return Ok(Ended::Signal(info.ssi_signo));
        }
    }
}
