//! The handler contract, for in-process Rust handlers (the process contract builds on it).

use std::future::Future;

use tokio::sync::{mpsc, oneshot, watch};

/// Why a checkpoint could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A later attempt on this message (another worker, after our lease lapsed) already saved
    /// progress: stop working on it; nothing of ours will be committed.
    #[error("a newer attempt holds this message; stop (checkpoint not saved)")]
    Superseded,
    /// The store kept failing.
    #[error("checkpoint store failed: {0}")]
    Store(String),
}

/// How a handler attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandlerResult {
    /// Finished: `effect` is committed once (create-only) under the idempotency key.
    Done {
        /// The result to commit; may be empty.
        effect: Vec<u8>,
    },
    /// Try again later (another worker may take it); `checkpoint` is saved first if given.
    RetryLater {
        /// Progress to resume from.
        checkpoint: Option<Vec<u8>>,
    },
    /// This attempt failed; retried until the dequeue limit, then poisoned.
    Failed {
        /// Why, for the log.
        reason: String,
        /// Progress to resume from.
        checkpoint: Option<Vec<u8>>,
    },
}

/// A checkpoint to save and where to report whether it was saved.
pub(crate) type CheckpointRequest = (Vec<u8>, oneshot::Sender<Result<(), CheckpointError>>);

/// Saves checkpoints through the worker (fenced against newer attempts).
#[derive(Clone, Debug)]
pub struct Checkpointer {
    pub(crate) tx: mpsc::Sender<CheckpointRequest>,
}

/// Everything a handler gets for one message.
#[derive(Debug)]
pub struct HandlerContext {
    /// The queue's message id.
    pub message_id: String,
    /// Receives so far, this one included (1 on the first attempt).
    pub dequeue_count: u32,
    /// The idempotency key: the producer's (envelope) or the message id.
    pub idempotency_key: String,
    /// The message body.
    pub body: Vec<u8>,
    /// The last checkpoint saved for this key by an earlier attempt, if any. Resume from it, or
    /// ignore it to revert and start over: the handler decides.
    pub checkpoint: Option<Vec<u8>>,
    pub(crate) checkpointer: Checkpointer,
    pub(crate) interrupt: watch::Receiver<bool>,
}

impl HandlerContext {
    /// Saves progress outside the VM. Returns once it is durable.
    ///
    /// # Errors
    /// [`CheckpointError::Superseded`] when a newer attempt owns the message (stop working), or a
    /// store failure after retries.
    pub async fn save_checkpoint(&self, data: Vec<u8>) -> Result<(), CheckpointError> {
        let (done_tx, done_rx) = oneshot::channel();
        self.checkpointer
            .tx
            .send((data, done_tx))
            .await
            .map_err(|_| CheckpointError::Store("worker is gone".into()))?;
        done_rx
            .await
            .map_err(|_| CheckpointError::Store("worker is gone".into()))?
    }

    /// Whether the worker asked this handler to stop (shutdown deadline near).
    #[must_use]
    pub fn is_interrupted(&self) -> bool {
        *self.interrupt.borrow()
    }

    /// Completes when the worker asks this handler to stop: checkpoint and return
    /// `RetryLater` then.
    pub async fn interrupted(&mut self) {
        let _ = self.interrupt.wait_for(|stop| *stop).await;
    }
}

/// A message handler. The same guarantees as the process contract: at-least-once calls, effects
/// committed once, fenced checkpoints, interruption before the shutdown deadline.
pub trait Handler: Send + Sync + 'static {
    /// Handles one message.
    fn handle(&self, ctx: HandlerContext) -> impl Future<Output = HandlerResult> + Send;
}
