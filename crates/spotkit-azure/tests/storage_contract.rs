//! The backend contract suites of `spotkit-cloud` (feature `contract`), run against Azurite: the
//! same rules the embedded SQLite backend must pass.

mod common;

use common::{queue, store, unique};

#[tokio::test]
async fn azure_queue_passes_the_queue_contract() {
    spotkit_cloud::contract::queue_contract(&queue(&unique("contract"))).await;
}

#[tokio::test]
async fn azure_blob_store_passes_the_store_contract() {
    // A small page size so `list` pages even here.
    spotkit_cloud::contract::store_contract(&store(&unique("contract"), Some(2))).await;
}

#[tokio::test]
async fn azure_queue_and_blob_store_fall_back_to_put_then_delete() {
    // Queue Storage and Blob Storage share no transaction: the pair must say so and change nothing.
    spotkit_cloud::contract::commit_contract(
        &queue(&unique("commit")),
        &store(&unique("commit"), None),
        false,
    )
    .await;
}
