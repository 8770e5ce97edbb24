//! The embedded backends pass the same contract suites as Azure Storage.

use std::sync::Arc;

use spotkit_cloud::SystemClock;
use spotkit_cloud::contract::{commit_contract, queue_contract, store_contract};
use spotkit_embedded::{SqliteQueue, SqliteStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_queue_meets_the_queue_contract() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}?name=contract", dir.path().join("q.db").display());
    let q = SqliteQueue::open(&url, Arc::new(SystemClock)).unwrap();
    queue_contract(&q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_meets_the_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}?name=contract", dir.path().join("s.db").display());
    let s = SqliteStore::open(&url).unwrap();
    store_contract(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_queue_is_an_error_not_an_empty_queue() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}?name=nope", dir.path().join("q.db").display());
    let q = SqliteQueue::open(&url, Arc::new(SystemClock)).unwrap();
    use spotkit_cloud::{Queue, QueueError};
    assert!(matches!(
        q.receive(1, std::time::Duration::from_secs(1)).await,
        Err(QueueError::QueueNotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_and_store_in_one_file_commit_and_delete_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("both.db");
    let q = SqliteQueue::open(
        &format!("sqlite:{}?name=work", db.display()),
        Arc::new(SystemClock),
    )
    .unwrap();
    let s = SqliteStore::open(&format!("sqlite:{}?name=effects", db.display())).unwrap();
    commit_contract(&q, &s, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_and_store_in_different_files_fall_back() {
    let dir = tempfile::tempdir().unwrap();
    let q = SqliteQueue::open(
        &format!("sqlite:{}?name=work", dir.path().join("q.db").display()),
        Arc::new(SystemClock),
    )
    .unwrap();
    let s = SqliteStore::open(&format!(
        "sqlite:{}?name=effects",
        dir.path().join("s.db").display()
    ))
    .unwrap();
    commit_contract(&q, &s, false).await;
}
