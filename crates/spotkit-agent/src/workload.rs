//! The supervised workload: one process in its own process group.

use std::process::ExitStatus;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// A running workload process.
pub(crate) struct Workload {
    pgid: Pid,
    alive: bool,
}

impl Workload {
    /// Starts `argv` in a new process group (so signals reach the whole tree a shell wrapper may
    /// start) with inherited stdio. Returns the handle and the `Child` to wait on.
    pub(crate) fn spawn(
        argv: &[String],
        env: &[(String, String)],
    ) -> std::io::Result<(Self, Child)> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| std::io::Error::other("empty workload command"))?;
        let mut command = Command::new(program);
        command.args(args).process_group(0).kill_on_drop(false);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn()?;
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| std::io::Error::other("workload exited before its pid was read"))?;
        Ok((
            Self {
                pgid: Pid::from_raw(pid),
                alive: true,
            },
            child,
        ))
    }

    /// Records that the process exited, so no signal is ever sent to a recycled pid.
    pub(crate) fn mark_exited(&mut self) {
        self.alive = false;
    }

    /// Whether the process is still running, as far as we know.
    pub(crate) fn is_alive(&self) -> bool {
        self.alive
    }

    /// Sends `signal` to the workload's process group.
    pub(crate) fn signal(&self, signal: Signal) {
        if !self.alive {
            return;
        }
        if let Err(e) = killpg(self.pgid, signal) {
            // ESRCH: it exited between our check and the signal; nothing left to stop.
            if e != nix::errno::Errno::ESRCH {
                tracing::warn!(
                    pgid = self.pgid.as_raw(),
                    "cannot send {signal} to the workload: {e}"
                );
            }
        }
    }
}

/// The exit code a shell would report: the code, or 128 + signal number.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}
