//! Queue and store URLs to backends: `sqlite:PATH[?name=NAME]` (embedded) or Azure Storage URLs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use spotkit_azure::storage::{
    AzureBlobStore, AzureQueue, ConnectionString, ImdsManagedIdentity, ImdsTokenOptions,
    ResourceUrl, Service, StorageCredential, StorageOptions, redact_sas,
};
use spotkit_cloud::{
    Clock, CommitError, Delivery, ETag, Lease, MessageId, ObjectStore, PeekedMessage, Queue,
    QueueError, StoreError, StoredObject, WriteCondition,
};
use spotkit_embedded::{SqliteQueue, SqliteStore};

/// Any queue backend, chosen by URL.
#[derive(Clone, Debug)]
pub enum AnyQueue {
    /// `sqlite:PATH?name=NAME`.
    Sqlite(SqliteQueue),
    /// Azure Queue Storage (or Azurite).
    Azure(Arc<AzureQueue>),
}

/// Any object store backend, chosen by URL.
#[derive(Clone, Debug)]
pub enum AnyStore {
    /// `sqlite:PATH?name=NAME`.
    Sqlite(SqliteStore),
    /// Azure Blob Storage (or Azurite).
    Azure(Arc<AzureBlobStore>),
}

/// Opens the queue at `url`.
pub fn open_queue(url: &str, clock: Arc<dyn Clock>) -> anyhow::Result<AnyQueue> {
    if url.starts_with("sqlite:") {
        return Ok(AnyQueue::Sqlite(SqliteQueue::open(url, clock)?));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        let credential = azure_credential(url, Service::Queue, &clock)?;
        let options = StorageOptions {
            clock,
            ..StorageOptions::default()
        };
        let queue = AzureQueue::from_url(url, credential, options)
            .with_context(|| format!("queue {}", redact_sas(url)))?;
        return Ok(AnyQueue::Azure(Arc::new(queue)));
    }
    bail!(
        "{url}: not a queue URL; use sqlite:PATH?name=NAME or https://ACCOUNT.queue.core.windows.net/QUEUE"
    )
}

/// The poison queue next to `url` (`NAME-poison`), unless one is given.
pub fn poison_url(url: &str) -> anyhow::Result<String> {
    if let Some((base, query)) = url.split_once("?name=") {
        return Ok(format!("{base}?name={query}-poison"));
    }
    if url.starts_with("sqlite:") {
        return Ok(format!("{url}?name=default-poison"));
    }
    let (path, query) = url
        .split_once('?')
        .map_or((url, None), |(p, q)| (p, Some(q)));
    let path = path.trim_end_matches('/');
    Ok(match query {
        Some(q) => format!("{path}-poison?{q}"),
        None => format!("{path}-poison"),
    })
}

/// Opens the object store at `url`.
pub fn open_store(url: &str, clock: Arc<dyn Clock>) -> anyhow::Result<AnyStore> {
    if url.starts_with("sqlite:") {
        return Ok(AnyStore::Sqlite(
            SqliteStore::open(url).with_context(|| format!("store {url}"))?,
        ));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        let credential = azure_credential(url, Service::Blob, &clock)?;
        let options = StorageOptions {
            clock,
            ..StorageOptions::default()
        };
        let store = AzureBlobStore::from_url(url, credential, options)
            .with_context(|| format!("store {}", redact_sas(url)))?;
        return Ok(AnyStore::Azure(Arc::new(store)));
    }
    bail!(
        "{url}: not a store URL; use sqlite:PATH?name=NAME or https://ACCOUNT.blob.core.windows.net/CONTAINER"
    )
}

/// Credentials for an Azure Storage URL, following the Azure SDKs' conventions: a SAS in the URL;
/// else `AZURE_STORAGE_CONNECTION_STRING` (shared key, development and Azurite); else the VM's
/// managed identity from IMDS (`AZURE_CLIENT_ID` selects a user-assigned identity).
fn azure_credential(
    url: &str,
    service: Service,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<StorageCredential> {
    let parsed = ResourceUrl::parse(url, service)?;
    if parsed.has_sas() {
        return Ok(StorageCredential::Sas);
    }
    if let Ok(cs) = std::env::var("AZURE_STORAGE_CONNECTION_STRING") {
        let cs = ConnectionString::parse(&cs).context("AZURE_STORAGE_CONNECTION_STRING")?;
        return Ok(cs.credential().clone());
    }
    let mut options = ImdsTokenOptions::default();
    if let Ok(imds) = std::env::var("SPOTKIT_IMDS_URL") {
        options.base_url = imds;
    }
    options.client_id = std::env::var("AZURE_CLIENT_ID")
        .ok()
        .filter(|s| !s.is_empty());
    let identity = ImdsManagedIdentity::new(&options, clock.clone()).context("managed identity")?;
    Ok(StorageCredential::Bearer(Arc::new(identity)))
}

macro_rules! delegate_queue {
    ($self:ident, $q:ident => $call:expr) => {
        match $self {
            AnyQueue::Sqlite($q) => $call.await,
            AnyQueue::Azure($q) => $call.await,
        }
    };
}

impl Queue for AnyQueue {
    async fn create_if_missing(&self) -> Result<(), QueueError> {
        delegate_queue!(self, q => q.create_if_missing())
    }
    async fn send(&self, body: &[u8], delay: Duration) -> Result<MessageId, QueueError> {
        delegate_queue!(self, q => q.send(body, delay))
    }
    async fn receive(&self, max: u32, visibility: Duration) -> Result<Vec<Delivery>, QueueError> {
        delegate_queue!(self, q => q.receive(max, visibility))
    }
    async fn set_visibility(
        &self,
        lease: &Lease,
        visibility: Duration,
    ) -> Result<Lease, QueueError> {
        delegate_queue!(self, q => q.set_visibility(lease, visibility))
    }
    async fn delete(&self, lease: &Lease) -> Result<(), QueueError> {
        delegate_queue!(self, q => q.delete(lease))
    }
    async fn commit_and_delete<S: ObjectStore>(
        &self,
        store: &S,
        key: &str,
        body: &[u8],
        lease: &Lease,
    ) -> Result<ETag, CommitError> {
        delegate_queue!(self, q => q.commit_and_delete(store, key, body, lease))
    }
    async fn peek(&self, max: u32) -> Result<Vec<PeekedMessage>, QueueError> {
        delegate_queue!(self, q => q.peek(max))
    }
    async fn approximate_len(&self) -> Result<u64, QueueError> {
        delegate_queue!(self, q => q.approximate_len())
    }
}

macro_rules! delegate_store {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Sqlite($s) => $call.await,
            AnyStore::Azure($s) => $call.await,
        }
    };
}

impl ObjectStore for AnyStore {
    async fn create_if_missing(&self) -> Result<(), StoreError> {
        delegate_store!(self, s => s.create_if_missing())
    }
    async fn get(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        delegate_store!(self, s => s.get(key))
    }
    async fn put(
        &self,
        key: &str,
        body: &[u8],
        condition: WriteCondition,
    ) -> Result<ETag, StoreError> {
        delegate_store!(self, s => s.put(key, body, condition))
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        delegate_store!(self, s => s.delete(key))
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        delegate_store!(self, s => s.list(prefix))
    }
    // Forwarded so `AnyQueue::Sqlite` finds the `SqliteStore` behind an `AnyStore::Sqlite`.
    fn transactional_backend(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        match self {
            AnyStore::Sqlite(s) => s.transactional_backend(),
            AnyStore::Azure(s) => s.transactional_backend(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poison_queue_sits_next_to_the_work_queue() {
        assert_eq!(
            poison_url("sqlite:/q.db?name=jobs").unwrap(),
            "sqlite:/q.db?name=jobs-poison"
        );
        assert_eq!(
            poison_url("sqlite:/q.db").unwrap(),
            "sqlite:/q.db?name=default-poison"
        );
        assert_eq!(
            poison_url("https://acct.queue.core.windows.net/jobs?sv=1&sig=x").unwrap(),
            "https://acct.queue.core.windows.net/jobs-poison?sv=1&sig=x"
        );
        assert_eq!(
            poison_url("http://127.0.0.1:10001/devstoreaccount1/jobs").unwrap(),
            "http://127.0.0.1:10001/devstoreaccount1/jobs-poison"
        );
    }
}
