//! Contract suites every backend must pass (feature `contract`): the same assertions run against
//! the embedded SQLite backend and against Azure Storage (Azurite), so drift between them fails a
//! test. Each function panics with a message naming the broken rule.

use std::time::Duration;

use crate::queue::{CommitError, Queue, QueueError};
use crate::store::{ObjectStore, StoreError, WriteCondition};

async fn sleep(d: Duration) {
    tokio::time::sleep(d).await;
}

/// Runs every queue rule against `q`, a freshly created, empty queue.
///
/// # Panics
/// When the backend breaks a rule.
pub async fn queue_contract<Q: Queue>(q: &Q) {
    q.create_if_missing()
        .await
        .expect("create_if_missing is idempotent");
    assert!(
        q.receive(32, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty(),
        "a new queue is empty"
    );

    // Binary-safe bodies, and approximate length.
    let binary: Vec<u8> = (0..=255u8).collect();
    q.send(&binary, Duration::ZERO).await.unwrap();
    q.send(b"two", Duration::ZERO).await.unwrap();
    q.send(b"three <&> \"quoted\"", Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        q.approximate_len().await.unwrap(),
        3,
        "three messages counted"
    );

    // Peek leases nothing.
    let peeked = q.peek(32).await.unwrap();
    assert_eq!(peeked.len(), 3, "peek sees all visible messages");
    assert!(
        peeked.iter().all(|p| p.dequeue_count == 0),
        "peek does not dequeue"
    );

    // Receive leases and counts.
    let mut got = q.receive(32, Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        got.len(),
        3,
        "receive returns all visible messages up to max"
    );
    assert!(
        got.iter().all(|d| d.dequeue_count == 1),
        "first receive has dequeue count 1"
    );
    got.sort_by_key(|d| d.body.len());
    assert_eq!(got[0].body, b"two");
    assert_eq!(
        got[1].body, b"three <&> \"quoted\"",
        "XML-special characters survive"
    );
    assert_eq!(got[2].body, binary, "binary bodies survive");
    assert!(
        q.receive(32, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty(),
        "leased messages are invisible"
    );

    // Extending a lease supersedes the old receipt.
    let old = got[0].lease.clone();
    let renewed = q
        .set_visibility(&old, Duration::from_secs(60))
        .await
        .unwrap();
    assert_ne!(
        renewed.pop_receipt, old.pop_receipt,
        "a new receipt per update"
    );
    assert!(
        renewed.visible_at > old.visible_at,
        "the lease was extended"
    );
    match q.delete(&old).await {
        Err(QueueError::LeaseLost { .. }) => {}
        other => panic!("delete with a superseded receipt must be LeaseLost, got {other:?}"),
    }
    match q.set_visibility(&old, Duration::from_secs(5)).await {
        Err(QueueError::LeaseLost { .. }) => {}
        other => panic!("update with a superseded receipt must be LeaseLost, got {other:?}"),
    }
    q.delete(&renewed)
        .await
        .expect("delete with the current receipt");
    match q.delete(&renewed).await {
        Err(QueueError::LeaseLost { .. }) => {}
        other => panic!("deleting twice must be LeaseLost, got {other:?}"),
    }

    // Releasing (visibility zero) makes a message receivable at once, with a higher count.
    let released = q
        .set_visibility(&got[1].lease, Duration::ZERO)
        .await
        .unwrap();
    let again = q.receive(32, Duration::from_secs(30)).await.unwrap();
    assert_eq!(again.len(), 1, "the released message is visible again");
    assert_eq!(again[0].lease.message_id, released.message_id);
    assert_eq!(again[0].dequeue_count, 2, "a second receive counts 2");
    match q.delete(&released).await {
        Err(QueueError::LeaseLost { .. }) => {}
        other => panic!("a receipt superseded by a later receive must be LeaseLost, got {other:?}"),
    }
    q.delete(&again[0].lease).await.unwrap();
    q.delete(&got[2].lease).await.unwrap();

    // A lapsed lease redelivers.
    q.send(b"lapse", Duration::ZERO).await.unwrap();
    let short = q.receive(1, Duration::from_secs(1)).await.unwrap();
    assert_eq!(short.len(), 1);
    assert!(
        q.receive(1, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty()
    );
    sleep(Duration::from_millis(1600)).await;
    let redelivered = q.receive(1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(redelivered.len(), 1, "visible again once the lease lapsed");
    assert_eq!(redelivered[0].lease.message_id, short[0].lease.message_id);
    assert_eq!(redelivered[0].dequeue_count, short[0].dequeue_count + 1);
    match q.delete(&short[0].lease).await {
        Err(QueueError::LeaseLost { .. }) => {}
        other => panic!("a lapsed lease's receipt must be LeaseLost, got {other:?}"),
    }
    q.delete(&redelivered[0].lease).await.unwrap();

    // A delayed message is invisible until its delay passes.
    q.send(b"later", Duration::from_secs(2)).await.unwrap();
    assert!(
        q.receive(1, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty(),
        "a delayed message is not visible yet"
    );
    sleep(Duration::from_millis(2500)).await;
    let later = q.receive(1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(later.len(), 1, "visible after its delay");
    q.delete(&later[0].lease).await.unwrap();
    assert_eq!(q.approximate_len().await.unwrap(), 0, "all deleted");
}

/// Runs every object-store rule against `s`, a freshly created, empty store.
///
/// # Panics
/// When the backend breaks a rule.
pub async fn store_contract<S: ObjectStore>(s: &S) {
    s.create_if_missing()
        .await
        .expect("create_if_missing is idempotent");
    let key = "checkpoints/msg 1+ä";
    assert!(
        s.get(key).await.unwrap().is_none(),
        "absent objects read as None"
    );

    let first = s.put(key, b"v1", WriteCondition::IfAbsent).await.unwrap();
    match s.put(key, b"v1-again", WriteCondition::IfAbsent).await {
        Err(StoreError::ConditionFailed { .. }) => {}
        other => panic!("IfAbsent on an existing object must be ConditionFailed, got {other:?}"),
    }
    let read = s.get(key).await.unwrap().expect("written");
    assert_eq!(read.body, b"v1");
    assert_eq!(read.etag, first, "get returns the ETag put returned");

    let second = s
        .put(key, b"v2", WriteCondition::IfMatch(first.clone()))
        .await
        .unwrap();
    assert_ne!(second, first, "every write changes the ETag");
    match s.put(key, b"stale", WriteCondition::IfMatch(first)).await {
        Err(StoreError::ConditionFailed { .. }) => {}
        other => panic!("IfMatch with a stale ETag must be ConditionFailed, got {other:?}"),
    }
    assert_eq!(
        s.get(key).await.unwrap().unwrap().body,
        b"v2",
        "a failed write changes nothing"
    );
    let third = s.put(key, b"v3", WriteCondition::Always).await.unwrap();
    assert_eq!(s.get(key).await.unwrap().unwrap().etag, third);

    let empty = s
        .put("ledger/empty", b"", WriteCondition::IfAbsent)
        .await
        .unwrap();
    assert_eq!(s.get("ledger/empty").await.unwrap().unwrap().etag, empty);
    assert!(
        s.get("ledger/empty")
            .await
            .unwrap()
            .unwrap()
            .body
            .is_empty()
    );

    s.put("ledger/b", b"", WriteCondition::Always)
        .await
        .unwrap();
    s.put("ledger/a", b"", WriteCondition::Always)
        .await
        .unwrap();
    assert_eq!(
        s.list("ledger/").await.unwrap(),
        vec!["ledger/a", "ledger/b", "ledger/empty"],
        "list is by prefix, in lexical order"
    );
    assert_eq!(s.list("checkpoints/").await.unwrap(), vec![key]);

    s.delete(key).await.unwrap();
    s.delete(key)
        .await
        .expect("deleting an absent object is Ok");
    assert!(s.get(key).await.unwrap().is_none());
    match s.put(key, b"back", WriteCondition::IfAbsent).await {
        Ok(_) => {}
        Err(e) => panic!("IfAbsent after delete must succeed: {e}"),
    }
}

/// Runs the rules of [`Queue::commit_and_delete`] against `q` and `s` (fresh and empty). With
/// `atomic` the pair must support it (the embedded queue and store in one file); without, it must
/// answer `Unsupported` and change nothing, so callers can fall back to put-then-delete.
///
/// # Panics
/// When the backend breaks a rule.
pub async fn commit_contract<Q: Queue, S: ObjectStore>(q: &Q, s: &S, atomic: bool) {
    q.create_if_missing().await.unwrap();
    s.create_if_missing().await.unwrap();

    q.send(b"commit me", Duration::ZERO).await.unwrap();
    let got = q.receive(1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(got.len(), 1);
    let lease = &got[0].lease;
    let result = q.commit_and_delete(s, "ledger/one", b"effect", lease).await;
    if !atomic {
        match result {
            Err(CommitError::Unsupported) => {}
            other => panic!("a non-atomic pair must answer Unsupported, got {other:?}"),
        }
        assert!(
            s.get("ledger/one").await.unwrap().is_none(),
            "Unsupported writes nothing"
        );
        q.delete(lease)
            .await
            .expect("Unsupported leaves the message and its lease alone");
        return;
    }
    let etag = result.expect("commit with the current receipt");
    let entry = s
        .get("ledger/one")
        .await
        .unwrap()
        .expect("the entry exists");
    assert_eq!(entry.body, b"effect", "the effect is committed");
    assert_eq!(entry.etag, etag, "get returns the ETag the commit returned");
    match q.delete(lease).await {
        Err(QueueError::LeaseLost { .. }) => {}
        other => panic!("the committed message must be gone, got {other:?}"),
    }

    // A lost lease (receipt superseded) commits nothing and deletes nothing.
    q.send(b"superseded", Duration::ZERO).await.unwrap();
    let got = q.receive(1, Duration::from_secs(30)).await.unwrap();
    let old = got[0].lease.clone();
    let current = q
        .set_visibility(&old, Duration::from_secs(30))
        .await
        .unwrap();
    match q.commit_and_delete(s, "ledger/two", b"effect", &old).await {
        Err(CommitError::Queue(QueueError::LeaseLost { .. })) => {}
        other => panic!("a superseded receipt must fail with LeaseLost, got {other:?}"),
    }
    assert!(
        s.get("ledger/two").await.unwrap().is_none(),
        "a lost lease commits no ledger entry"
    );
    assert_eq!(
        s.list("ledger/").await.unwrap(),
        vec!["ledger/one"],
        "nothing else was written"
    );
    // The current holder still can, once.
    q.commit_and_delete(s, "ledger/two", b"theirs", &current)
        .await
        .expect("the current receipt commits");
    assert_eq!(s.get("ledger/two").await.unwrap().unwrap().body, b"theirs");

    // An entry that exists already (another attempt committed first): ConditionFailed, the entry
    // is unchanged and the message is still there for its holder to delete.
    q.send(b"duplicate", Duration::ZERO).await.unwrap();
    let got = q.receive(1, Duration::from_secs(30)).await.unwrap();
    match q
        .commit_and_delete(s, "ledger/one", b"again", &got[0].lease)
        .await
    {
        Err(CommitError::Store(StoreError::ConditionFailed { .. })) => {}
        other => panic!("an existing entry must fail with ConditionFailed, got {other:?}"),
    }
    assert_eq!(
        s.get("ledger/one").await.unwrap().unwrap().body,
        b"effect",
        "a failed commit changes nothing"
    );
    q.delete(&got[0].lease)
        .await
        .expect("a failed commit leaves the message and its lease alone");
    assert_eq!(q.approximate_len().await.unwrap(), 0, "all deleted");
}
