//! The process handler contract (`spotkit worker -- HANDLER ARGS...`).
//!
//! Per message the worker starts HANDLER in its own process group with:
//! - stdin: the message body (then closed);
//! - `SPOTKIT_MESSAGE_ID`, `SPOTKIT_DEQUEUE_COUNT`, `SPOTKIT_IDEMPOTENCY_KEY`;
//! - `SPOTKIT_CHECKPOINT_FILE`: a path that holds the last checkpoint if there is one (the file is
//!   absent otherwise). To checkpoint, write the file anew (write elsewhere and rename for
//!   atomicity); the worker saves it outside the VM whenever it changes (checked every 500 ms) and
//!   when the handler exits;
//! - `SPOTKIT_RESULT_FILE`: write the effect here before exiting 0; it is committed once.
//!
//! Exit 0: done. Exit 75 (`EX_TEMPFAIL`): retry later. Anything else, or death by a signal: a
//! failed attempt. On shutdown the handler gets SIGTERM at `deadline - checkpoint_grace`: save a
//! checkpoint and exit 75; SIGKILL follows at the deadline.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

use crate::handler::{Handler, HandlerContext, HandlerResult};

/// The exit code that means "retry later" (sysexits' `EX_TEMPFAIL`).
pub const RETRY_LATER_EXIT_CODE: i32 = 75;

/// Runs a command per message.
#[derive(Clone, Debug)]
pub struct ProcessHandler {
    argv: Vec<String>,
    scratch: PathBuf,
}

impl ProcessHandler {
    /// A handler running `argv`; per-message files go in a fresh directory under `scratch`.
    ///
    /// # Panics
    /// If `argv` is empty (the CLI rejects that before).
    #[must_use]
    pub fn new(argv: Vec<String>, scratch: PathBuf) -> Self {
        assert!(!argv.is_empty(), "ProcessHandler needs a command");
        Self { argv, scratch }
    }
}

fn read_if_present(path: &std::path::Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

impl Handler for ProcessHandler {
    async fn handle(&self, ctx: HandlerContext) -> HandlerResult {
        let dir = match tempfile::Builder::new()
            .prefix("msg-")
            .tempdir_in(&self.scratch)
        {
            Ok(d) => d,
            Err(e) => {
                return HandlerResult::Failed {
                    reason: format!(
                        "cannot create a scratch directory in {}: {e}",
                        self.scratch.display()
                    ),
                    checkpoint: None,
                };
            }
        };
        let checkpoint_file = dir.path().join("checkpoint");
        let result_file = dir.path().join("result");
        if let Some(cp) = &ctx.checkpoint
            && let Err(e) = std::fs::write(&checkpoint_file, cp)
        {
            return HandlerResult::Failed {
                reason: format!("cannot write the checkpoint file: {e}"),
                checkpoint: None,
            };
        }
        let mut command = Command::new(&self.argv[0]);
        command
            .args(&self.argv[1..])
            .env("SPOTKIT_MESSAGE_ID", &ctx.message_id)
            .env("SPOTKIT_DEQUEUE_COUNT", ctx.dequeue_count.to_string())
            .env("SPOTKIT_IDEMPOTENCY_KEY", &ctx.idempotency_key)
            .env("SPOTKIT_CHECKPOINT_FILE", &checkpoint_file)
            .env("SPOTKIT_RESULT_FILE", &result_file)
            .stdin(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(c) => c,
            Err(e) => {
                return HandlerResult::Failed {
                    reason: format!("cannot start handler {:?}: {e}", self.argv[0]),
                    checkpoint: None,
                };
            }
        };
        let pgid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .map(Pid::from_raw);
        // If this future is dropped (the worker kills the attempt at the deadline, or forgets a
        // lost lease), the whole process group goes, not just the direct child.
        let mut guard = GroupGuard(pgid);
        let mut interrupt = ctx.interrupt.clone();
        if let Some(mut stdin) = child.stdin.take() {
            // A handler that does not read stdin makes this fail with EPIPE: not an error.
            let _ = stdin.write_all(&ctx.body).await;
        }
        let mut last_saved = ctx.checkpoint.clone();
        let mut ticker = tokio::time::interval(Duration::from_millis(500));
        let mut interrupted = false;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                _ = ticker.tick() => {
                    let current = read_if_present(&checkpoint_file);
                    if current.is_some() && current != last_saved {
                        if let Some(data) = current.clone()
                            && let Err(e) = ctx.save_checkpoint(data).await
                        {
                            tracing::warn!(message_id = %ctx.message_id, "checkpoint not saved: {e}");
                            if matches!(e, crate::CheckpointError::Superseded)
                                && let Some(pgid) = pgid
                            {
                                let _ = killpg(pgid, Signal::SIGKILL);
                            }
                        }
                        last_saved = current;
                    }
                }
                () = stop_requested(&mut interrupt), if !interrupted => {
                    interrupted = true;
                    if let Some(pgid) = pgid {
                        let _ = killpg(pgid, Signal::SIGTERM);
                    }
                }
            }
        };
        // Reaped: the pgid may be reused from now on, so the guard must not signal it.
        guard.0 = None;
        let checkpoint =
            read_if_present(&checkpoint_file).filter(|c| Some(c) != last_saved.as_ref());
        match status {
            Ok(s) if s.code() == Some(0) => HandlerResult::Done {
                effect: read_if_present(&result_file).unwrap_or_default(),
            },
            Ok(s) if s.code() == Some(RETRY_LATER_EXIT_CODE) => {
                HandlerResult::RetryLater { checkpoint }
            }
            Ok(s) => HandlerResult::Failed {
                reason: format!("handler exited with {s}"),
                checkpoint,
            },
            Err(e) => HandlerResult::Failed {
                reason: format!("cannot wait for the handler: {e}"),
                checkpoint,
            },
        }
    }
}

struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// Completes when `interrupt` turns true (never, if its sender is gone).
async fn stop_requested(interrupt: &mut tokio::sync::watch::Receiver<bool>) {
    if interrupt.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}
