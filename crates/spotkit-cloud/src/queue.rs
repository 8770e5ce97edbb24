//! A message queue with visibility-timeout leases: Azure Queue Storage, or the embedded SQLite queue.
//!
//! The semantics are Azure Queue Storage's (FACTS.md section 6): a received message becomes
//! invisible for a visibility timeout and carries a *pop receipt*; updating its visibility issues a
//! new receipt and invalidates the old one; deleting needs the latest receipt; each receive bumps the
//! message's dequeue count. A worker whose receipt was superseded has lost the lease.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use spotkit_core::Timestamp;

use crate::store::{ETag, ObjectStore, StoreError};

/// A message's id, as the queue assigned it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub String);

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Proof of holding a message's lease: its id and the latest pop receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The message.
    pub message_id: MessageId,
    /// The latest pop receipt; superseded by every visibility update.
    pub pop_receipt: String,
    /// When the message becomes visible again unless the lease is extended.
    pub visible_at: Timestamp,
}

/// A received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The lease on it.
    pub lease: Lease,
    /// How many times it has been received, this time included (1 on the first receive).
    pub dequeue_count: u32,
    /// The body, decoded (Azure: base64 of the MessageText, as the Azure SDKs write it).
    pub body: Vec<u8>,
    /// When it was put on the queue.
    pub inserted_at: Timestamp,
}

/// A message seen without taking a lease (`peek`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeekedMessage {
    /// The message.
    pub message_id: MessageId,
    /// Receives so far.
    pub dequeue_count: u32,
    /// The body, decoded.
    pub body: Vec<u8>,
    /// When it was put on the queue.
    pub inserted_at: Timestamp,
}

/// Why a queue operation failed. Callers branch on the variant, never on the message.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The pop receipt is stale or the message is gone (Azure: 404 MessageNotFound or 400
    /// PopReceiptMismatch): someone else holds or finished it. Drop local state; never retry.
    #[error("lease on message {message_id} lost (receipt superseded or message gone)")]
    LeaseLost {
        /// The message.
        message_id: MessageId,
    },
    /// The queue does not exist.
    #[error("queue {queue} does not exist; create it (spotkit queue create) or fix the URL")]
    QueueNotFound {
        /// The queue's name or URL.
        queue: String,
    },
    /// The service asked us to slow down (HTTP 503 ServerBusy / 429).
    #[error("queue throttled; retry after {retry_after:?}")]
    Throttled {
        /// How long to wait.
        retry_after: Duration,
    },
    /// Credentials were refused (HTTP 401/403): refresh them once, then surface the error.
    #[error("queue refused the credentials: {detail}")]
    Unauthorized {
        /// What the service said.
        detail: String,
    },
    /// The request was invalid (message too large, bad parameters): do not retry.
    #[error("queue rejected the request: {detail}")]
    Rejected {
        /// What the service said.
        detail: String,
    },
    /// A transport error, timeout or 5xx: safe to retry with backoff.
    #[error("transient queue failure: {detail}")]
    Transient {
        /// What happened.
        detail: String,
    },
}

/// Why [`Queue::commit_and_delete`] did not commit. On every error nothing was written and the
/// message was not deleted (the pair is atomic).
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// This queue cannot commit to that store atomically (different services or files): the
    /// caller falls back to `put(IfAbsent)` then `delete`. Never has side effects.
    #[error("this queue and store cannot commit an effect and delete a message atomically")]
    Unsupported,
    /// The store refused the create-only write; `ConditionFailed` means another attempt committed
    /// the effect first (the message is still there: delete it).
    #[error(transparent)]
    Store(StoreError),
    /// The queue refused the delete; `LeaseLost` means someone else holds or finished the message,
    /// so nothing was committed.
    #[error(transparent)]
    Queue(QueueError),
}

/// A queue of messages with leases. Every method is one service call (no hidden retries), so
/// callers own the retry policy.
pub trait Queue: Send + Sync + 'static {
    /// Creates the queue if it does not exist.
    fn create_if_missing(&self) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Puts a message, visible after `delay`. Returns its id.
    fn send(
        &self,
        body: &[u8],
        delay: Duration,
    ) -> impl Future<Output = Result<MessageId, QueueError>> + Send;

    /// Receives up to `max` (1..=32) visible messages, each invisible for `visibility`.
    fn receive(
        &self,
        max: u32,
        visibility: Duration,
    ) -> impl Future<Output = Result<Vec<Delivery>, QueueError>> + Send;

    /// Sets the message's visibility timeout from now: extends a lease, or releases the message at
    /// once with `Duration::ZERO`. Returns the new lease (new pop receipt).
    fn set_visibility(
        &self,
        lease: &Lease,
        visibility: Duration,
    ) -> impl Future<Output = Result<Lease, QueueError>> + Send;

    /// Deletes the message. `LeaseLost` if the receipt was superseded or it is already gone.
    fn delete(&self, lease: &Lease) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Optional capability: creates `key` in `store` with `body` (create-only, as
    /// `put(key, body, WriteCondition::IfAbsent)`) and deletes the leased message, in one atomic
    /// step: both happen or neither does. A superseded receipt fails the whole step with
    /// `CommitError::Queue(QueueError::LeaseLost)` and commits nothing.
    ///
    /// Backends that share a transaction with `store` (the embedded SQLite queue and store in one
    /// file) implement it; the default is [`CommitError::Unsupported`], with no side effects, and
    /// callers fall back to the two separate calls.
    fn commit_and_delete<S: ObjectStore>(
        &self,
        store: &S,
        key: &str,
        body: &[u8],
        lease: &Lease,
    ) -> impl Future<Output = Result<ETag, CommitError>> + Send {
        let _ = (store, key, body, lease);
        std::future::ready(Err(CommitError::Unsupported))
    }

    /// Up to `max` visible messages, without leasing them.
    fn peek(&self, max: u32)
    -> impl Future<Output = Result<Vec<PeekedMessage>, QueueError>> + Send;

    /// The approximate number of messages, visible or not (Azure: x-ms-approximate-messages-count).
    fn approximate_len(&self) -> impl Future<Output = Result<u64, QueueError>> + Send;
}
