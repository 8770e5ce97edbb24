//! A small object store with conditional writes: Azure Blob Storage, or the embedded SQLite store.
//! The worker keeps checkpoints and its idempotency ledger here, outside the VM.

use std::fmt;
use std::future::Future;
use std::time::Duration;

/// An entity tag: changes on every write of an object.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ETag(pub String);

impl fmt::Debug for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// When a write may happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteCondition {
    /// Only if the object does not exist (Azure: `If-None-Match: *`).
    IfAbsent,
    /// Only if the object still has this ETag (Azure: `If-Match`).
    IfMatch(ETag),
    /// Always.
    Always,
}

/// An object and its ETag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// The bytes.
    pub body: Vec<u8>,
    /// Its current ETag.
    pub etag: ETag,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write condition did not hold (Azure: 412 ConditionNotMet, or 409 BlobAlreadyExists for
    /// `If-None-Match: *`). Not an outage: someone else wrote first.
    #[error("condition failed writing {key}: another writer got there first")]
    ConditionFailed {
        /// The object key.
        key: String,
    },
    /// The container or database does not exist.
    #[error("store {store} does not exist; create it or fix the URL")]
    StoreNotFound {
        /// Its name or URL.
        store: String,
    },
    /// The service asked us to slow down.
    #[error("store throttled; retry after {retry_after:?}")]
    Throttled {
        /// How long to wait.
        retry_after: Duration,
    },
    /// Credentials were refused (401/403).
    #[error("store refused the credentials: {detail}")]
    Unauthorized {
        /// What the service said.
        detail: String,
    },
    /// The request was invalid: do not retry.
    #[error("store rejected the request: {detail}")]
    Rejected {
        /// What the service said.
        detail: String,
    },
    /// Transport error, timeout or 5xx: safe to retry.
    #[error("transient store failure: {detail}")]
    Transient {
        /// What happened.
        detail: String,
    },
}

/// Objects by key (`/`-separated names), with conditional writes. One service call per method.
pub trait ObjectStore: Send + Sync + 'static {
    /// Creates the container if it does not exist.
    fn create_if_missing(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Reads an object; `None` if absent.
    fn get(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<StoredObject>, StoreError>> + Send;

    /// Writes an object if `condition` holds; returns the new ETag.
    fn put(
        &self,
        key: &str,
        body: &[u8],
        condition: WriteCondition,
    ) -> impl Future<Output = Result<ETag, StoreError>> + Send;

    /// Deletes an object if present (absent is `Ok`).
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Keys under `prefix`, in lexical order (for inspection and tests; pages internally).
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// The concrete backend behind this store, for a queue that can write to it in its own
    /// transaction ([`crate::Queue::commit_and_delete`]); wrappers forward their inner store's.
    /// `None` (the default): no queue shares a transaction with this store.
    fn transactional_backend(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        None
    }
}
