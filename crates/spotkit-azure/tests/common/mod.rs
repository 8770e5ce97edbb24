//! Shared helpers for the tests that talk to Azurite.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use spotkit_azure::storage::{
    AzureBlobStore, AzureQueue, SharedKeyCredential, StorageCredential, StorageOptions,
};
use spotkit_cloud::{Clock, SystemClock};
use std::sync::atomic::{AtomicU32, Ordering};

/// Azurite's well-known development account and key (public: they are in the Azurite README).
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
pub const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn endpoint(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: these tests need Azurite. Run ./scripts/test, which starts Azurite, \
             or eval \"$(scripts/azurite start)\" first (scripts/azurite install once)."
        )
    })
}

/// `http://127.0.0.1:PORT/devstoreaccount1` of Azurite's queue service.
pub fn queue_endpoint() -> String {
    endpoint("SPOTKIT_AZURITE_QUEUE")
}

/// `http://127.0.0.1:PORT/devstoreaccount1` of Azurite's blob service.
pub fn blob_endpoint() -> String {
    endpoint("SPOTKIT_AZURITE_BLOB")
}

/// A queue or container name no other test (or earlier run against the same Azurite) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let millis = SystemClock.now().unix_millis() % 1_000_000_000;
    format!(
        "{prefix}-{}-{millis}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn dev_key() -> StorageCredential {
    StorageCredential::SharedKey(SharedKeyCredential::new(DEV_ACCOUNT, DEV_KEY).unwrap())
}

/// A queue called `name` (not created) on Azurite, with the development key.
pub fn queue(name: &str) -> AzureQueue {
    AzureQueue::from_url(
        &format!("{}/{name}", queue_endpoint()),
        dev_key(),
        StorageOptions::default(),
    )
    .unwrap()
}

/// A container called `name` (not created) on Azurite, with the development key.
pub fn store(name: &str, list_page_size: Option<u32>) -> AzureBlobStore {
    AzureBlobStore::from_url(
        &format!("{}/{name}", blob_endpoint()),
        dev_key(),
        StorageOptions {
            list_page_size,
            ..StorageOptions::default()
        },
    )
    .unwrap()
}
