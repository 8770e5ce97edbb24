//! Azure Queue Storage and Blob Storage over their REST APIs: [`AzureQueue`] implements
//! [`spotkit_cloud::Queue`] and [`AzureBlobStore`] implements [`spotkit_cloud::ObjectStore`].
//!
//! A thin client on `reqwest` rather than the official SDK crates, because those support only
//! Entra ID tokens (no Shared Key, no connection strings) and refuse plain-http endpoints when a
//! token is used (`shared/rust-ecosystem.md` section 2.1).
//!
//! Facts this module relies on (`shared/azure/FACTS.md` section 6, `shared/rust-ecosystem.md`
//! sections 1-2, both verified against Azurite 3.37.0):
//! - message bodies travel as `<QueueMessage><MessageText>…</MessageText></QueueMessage>`; we write
//!   base64 as the Azure SDKs do, and a message is at most 64 KiB *encoded*;
//! - Update Message returns the new pop receipt only in the `x-ms-popreceipt` header and the new
//!   visibility in `x-ms-time-next-visible`; the old receipt becomes invalid;
//! - a stale pop receipt is 404 `MessageNotFound` on Azure but 400 `PopReceiptMismatch` on
//!   Azurite (and in older docs): both mean the lease is lost;
//! - `If-None-Match: *` on an existing blob is 409 `BlobAlreadyExists`, a stale `If-Match` is 412
//!   `ConditionNotMet`: both mean another writer got there first;
//! - Shared Key signing for path-style (Azurite) URLs puts the account in the canonicalized
//!   resource twice: `/devstoreaccount1/devstoreaccount1/queue`;
//! - a bearer (Entra ID) token needs `x-ms-version` 2017-11-09 or later; the managed-identity
//!   token comes from IMDS (FACTS 1.2), never through a proxy, and its values are all strings.
//!
//! Every trait method is one service call (the blob `list` pages internally); the only retry is a
//! single one after a 401/403 with a bearer credential, with a freshly fetched token. Callers own
//! all other retries, guided by the error variant.
//!
//! Secrets (account keys, SAS signatures, bearer tokens) never appear in `Debug` output, logs or
//! error messages: URLs in errors go through [`redact_sas`].

mod auth;
mod blob;
mod connection_string;
mod imds_token;
mod queue;
mod transport;
mod url;
mod xml;

use std::sync::Arc;
use std::time::Duration;

use spotkit_cloud::{Clock, SystemClock};

pub use auth::{SharedKeyCredential, StorageCredential, TokenError, TokenFuture, TokenSource};
pub use blob::AzureBlobStore;
pub use connection_string::ConnectionString;
pub use imds_token::{ImdsManagedIdentity, ImdsTokenOptions, STORAGE_RESOURCE};
pub use queue::{AzureQueue, MAX_ENCODED_MESSAGE_BYTES};
pub(crate) use url::encode;
pub use url::{ResourceUrl, Service, redact_sas};

/// The storage REST API version sent as `x-ms-version` (Azurite 3.37.0 supports it natively; a
/// bearer token needs 2017-11-09 or later).
pub const STORAGE_API_VERSION: &str = "2025-11-05";

/// How requests are made. `Default` suits production.
#[derive(Clone)]
pub struct StorageOptions {
    /// Whole-request timeout (connect, send, read the body). Default 10 s.
    pub timeout: Duration,
    /// Put Message `messagettl`: `None` (the default) means the message never expires (`-1`),
    /// because the [`spotkit_cloud::Queue`] contract has no expiry and a silently expired message
    /// is lost work; Azure's own default would be 7 days.
    pub message_ttl: Option<Duration>,
    /// List Blobs `maxresults` per page; `None` lets the service choose (5000). Tests set it small
    /// to exercise paging.
    pub list_page_size: Option<u32>,
    /// A preconfigured HTTP client (for example one trusting a test CA). `None` builds one that
    /// honours the environment's proxy settings, as storage is normally reached through them.
    pub http_client: Option<reqwest::Client>,
    /// The wall clock for `x-ms-date` (which the service checks to within 15 minutes) and for
    /// reading `Retry-After` dates. [`SystemClock`] by default.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageOptions")
            .field("timeout", &self.timeout)
            .field("message_ttl", &self.message_ttl)
            .field("list_page_size", &self.list_page_size)
            .field("http_client", &self.http_client.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for StorageOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            message_ttl: None,
            list_page_size: None,
            http_client: None,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Why a storage client could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The resource URL is not a storage queue or container URL.
    #[error("invalid storage URL {url}: {detail}")]
    InvalidUrl {
        /// The URL, SAS signature redacted.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The connection string cannot be used.
    #[error("invalid storage connection string: {detail}")]
    InvalidConnectionString {
        /// What is wrong with it (never the key).
        detail: String,
    },
    /// The account key is not base64.
    #[error("the storage account key is not valid base64")]
    InvalidKey,
    /// The credential does not fit the URL (for example `Sas` without a SAS in the URL).
    #[error("credential does not fit {url}: {detail}")]
    CredentialMismatch {
        /// The URL, SAS signature redacted.
        url: String,
        /// What does not fit.
        detail: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the storage HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}
