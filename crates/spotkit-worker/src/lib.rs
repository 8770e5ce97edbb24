//! The interruptible queue worker runtime.
//!
//! The scheduling decisions (how many messages to hold, when to receive, renew, retry, poison,
//! release, interrupt) live in `spotkit_core::worker::WorkerMachine`; this crate performs them
//! against any [`spotkit_cloud::Queue`] and [`spotkit_cloud::ObjectStore`] and runs a [`Handler`]
//! per message: a process ([`ProcessHandler`], the `spotkit worker -- HANDLER` contract) or Rust
//! code implementing the trait.
//!
//! # Guarantees
//! - At-least-once: a message is deleted only after its effect is committed; anything the worker
//!   cannot finish goes back to the queue (released at once on shutdown).
//! - Effects once: the handler's effect is committed with a create-only write of
//!   `ledger/<key>` (the idempotency key: the producer's, or the message id). A message whose
//!   effect is already committed is deleted without running the handler again.
//! - Fenced checkpoints: `checkpoints/<key>` carries the dequeue count of the attempt that wrote
//!   it; an attempt never overwrites a checkpoint written by a later attempt (ETag-conditional
//!   read-check-write), so a worker that lost its lease cannot clobber newer progress.
//!
//! Start at [`run`].

mod envelope;
mod handler;
mod process;
mod records;
mod runner;

pub use envelope::{Envelope, EnvelopeError, encode_envelope, parse_envelope};
pub use handler::{CheckpointError, Handler, HandlerContext, HandlerResult};
pub use process::{ProcessHandler, RETRY_LATER_EXIT_CODE};
pub use records::{
    PoisonRecord, checkpoint_key, checkpoint_write_allowed, decode_checkpoint, encode_checkpoint,
    ledger_key,
};
pub use runner::{WorkerError, WorkerOptions, WorkerReport, run};
