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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_share_a_transaction_but_fail_alone() {
    use spotkit_cloud::{CommitError, ObjectStore, Queue, QueueError};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("both.db");
    let q = Arc::new(
        SqliteQueue::open(
            &format!("sqlite:{}?name=work", db.display()),
            Arc::new(SystemClock),
        )
        .unwrap(),
    );
    let s = Arc::new(SqliteStore::open(&format!("sqlite:{}?name=effects", db.display())).unwrap());
    q.create_if_missing().await.unwrap();
    s.create_if_missing().await.unwrap();
    for _ in 0..24 {
        q.send(b"m", Duration::ZERO).await.unwrap();
    }
    let got = q.receive(24, Duration::from_secs(30)).await.unwrap();
    assert_eq!(got.len(), 24);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, d) in got.into_iter().enumerate() {
        let (q, s) = (q.clone(), s.clone());
        tasks.spawn(async move {
            let mut lease = d.lease.clone();
            if i % 4 == 0 {
                // Supersede the receipt: this pair must fail alone.
                q.set_visibility(&lease, Duration::from_secs(30))
                    .await
                    .unwrap();
            } else if i % 4 == 1 {
                lease = q
                    .set_visibility(&lease, Duration::from_secs(30))
                    .await
                    .unwrap();
            }
            let r = q
                .commit_and_delete(s.as_ref(), &format!("ledger/{i:02}"), b"e", &lease)
                .await;
            (i, r)
        });
    }
    while let Some(r) = tasks.join_next().await {
        let (i, r) = r.unwrap();
        if i % 4 == 0 {
            assert!(
                matches!(r, Err(CommitError::Queue(QueueError::LeaseLost { .. }))),
                "{i}: {r:?}"
            );
        } else {
            r.unwrap_or_else(|e| panic!("{i}: {e}"));
        }
    }
    let keys = s.list("ledger/").await.unwrap();
    let want: Vec<String> = (0..24)
        .filter(|i| i % 4 != 0)
        .map(|i| format!("ledger/{i:02}"))
        .collect();
    assert_eq!(
        keys, want,
        "exactly the pairs with a current receipt committed"
    );
    assert_eq!(
        q.approximate_len().await.unwrap(),
        6,
        "the lost ones stay queued"
    );
}
