//! `AzureQueue` and `AzureBlobStore` against a real Azurite (started by `scripts/test`, or
//! `eval "$(scripts/azurite start)"`). Each test uses its own queue or container.

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{DEV_ACCOUNT, DEV_KEY, blob_endpoint, queue, queue_endpoint, store, unique};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use spotkit_azure::storage::{
    AzureBlobStore, AzureQueue, MAX_ENCODED_MESSAGE_BYTES, SharedKeyCredential, StorageCredential,
    StorageOptions,
};
use spotkit_cloud::{
    Clock, ETag, ObjectStore, Queue, QueueError, StoreError, SystemClock, WriteCondition,
};

const LEASE: Duration = Duration::from_secs(30);

async fn new_queue(prefix: &str) -> AzureQueue {
    let q = queue(&unique(prefix));
    q.create_if_missing().await.unwrap();
    q
}

#[tokio::test]
async fn send_receive_update_delete_and_stale_receipts() {
    let q = new_queue("crud").await;
    q.create_if_missing().await.expect("creating twice is fine");
    let id = q
        .send(b"hello <world> & \"you\"", Duration::ZERO)
        .await
        .unwrap();

    let got = q.receive(1, LEASE).await.unwrap();
    assert_eq!(got.len(), 1);
    let d = &got[0];
    assert_eq!(d.lease.message_id, id);
    assert_eq!(d.body, b"hello <world> & \"you\"");
    assert_eq!(d.dequeue_count, 1);
    assert!(d.inserted_at.unix_millis() > 0);

    let renewed = q
        .set_visibility(&d.lease, Duration::from_secs(60))
        .await
        .unwrap();
    assert_ne!(
        renewed.pop_receipt, d.lease.pop_receipt,
        "update issues a new receipt"
    );
    assert!(renewed.visible_at > d.lease.visible_at);

    match q.delete(&d.lease).await {
        Err(QueueError::LeaseLost { message_id }) => assert_eq!(message_id, id),
        other => panic!("delete with a stale receipt: expected LeaseLost, got {other:?}"),
    }
    match q.set_visibility(&d.lease, LEASE).await {
        Err(QueueError::LeaseLost { .. }) => {}
        other => panic!("update with a stale receipt: expected LeaseLost, got {other:?}"),
    }
    q.delete(&renewed).await.unwrap();
    match q.delete(&renewed).await {
        Err(QueueError::LeaseLost { .. }) => {}
        other => panic!("deleting twice: expected LeaseLost, got {other:?}"),
    }
    assert_eq!(q.approximate_len().await.unwrap(), 0);
}

#[tokio::test]
async fn visibility_expiry_redelivers_with_a_higher_count() {
    let q = new_queue("expiry").await;
    q.send(b"x", Duration::ZERO).await.unwrap();
    let first = q.receive(1, Duration::from_secs(1)).await.unwrap();
    assert_eq!(first[0].dequeue_count, 1);
    assert!(q.receive(1, LEASE).await.unwrap().is_empty(), "leased");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let again = q.receive(1, LEASE).await.unwrap();
    assert_eq!(again.len(), 1, "redelivered after the lease lapsed");
    assert_eq!(again[0].lease.message_id, first[0].lease.message_id);
    assert_eq!(again[0].dequeue_count, 2);
    assert!(matches!(
        q.delete(&first[0].lease).await,
        Err(QueueError::LeaseLost { .. })
    ));
}

#[tokio::test]
async fn zero_visibility_releases_at_once() {
    let q = new_queue("release").await;
    q.send(b"x", Duration::ZERO).await.unwrap();
    let got = q.receive(1, LEASE).await.unwrap();
    let released = q
        .set_visibility(&got[0].lease, Duration::ZERO)
        .await
        .unwrap();
    let again = q.receive(1, LEASE).await.unwrap();
    assert_eq!(again.len(), 1, "visible again at once");
    assert_eq!(again[0].lease.message_id, released.message_id);
    assert_eq!(again[0].dequeue_count, 2);
}

#[tokio::test]
async fn peek_does_not_lease_and_len_counts() {
    let q = new_queue("peek").await;
    for body in [&b"a"[..], b"b", b"c"] {
        q.send(body, Duration::ZERO).await.unwrap();
    }
    assert_eq!(q.approximate_len().await.unwrap(), 3);
    let peeked = q.peek(32).await.unwrap();
    assert_eq!(peeked.len(), 3);
    assert!(peeked.iter().all(|p| p.dequeue_count == 0));
    let got = q.receive(32, LEASE).await.unwrap();
    assert_eq!(got.len(), 3, "peek leased nothing");
    assert!(got.iter().all(|d| d.dequeue_count == 1));
    assert!(
        q.peek(32).await.unwrap().is_empty(),
        "peek sees only visible messages"
    );
    assert_eq!(
        q.approximate_len().await.unwrap(),
        3,
        "invisible messages still count"
    );
}

#[tokio::test]
async fn delayed_message_is_invisible_until_due() {
    let q = new_queue("delay").await;
    q.send(b"later", Duration::from_secs(2)).await.unwrap();
    assert!(q.receive(1, LEASE).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(q.receive(1, LEASE).await.unwrap().len(), 1);
}

#[tokio::test]
async fn message_size_limit_is_the_encoded_64_kib() {
    let q = new_queue("size").await;
    // 48 KiB encodes to exactly 64 KiB of base64: the largest accepted body.
    let largest = vec![7u8; MAX_ENCODED_MESSAGE_BYTES / 4 * 3];
    q.send(&largest, Duration::ZERO)
        .await
        .expect("exactly 64 KiB encoded is accepted");
    let got = q.receive(1, LEASE).await.unwrap();
    assert_eq!(got[0].body, largest);
    match q.send(&vec![7u8; largest.len() + 1], Duration::ZERO).await {
        Err(QueueError::Rejected { detail }) => assert!(detail.contains("65540"), "{detail}"),
        other => panic!("oversize message: expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn missing_queue_is_queue_not_found() {
    let q = queue(&unique("missing"));
    match q.send(b"x", Duration::ZERO).await {
        Err(QueueError::QueueNotFound { queue }) => assert!(queue.contains("missing-"), "{queue}"),
        other => panic!("expected QueueNotFound, got {other:?}"),
    }
    assert!(matches!(
        q.receive(1, LEASE).await,
        Err(QueueError::QueueNotFound { .. })
    ));
    assert!(matches!(
        q.approximate_len().await,
        Err(QueueError::QueueNotFound { .. })
    ));
}

#[tokio::test]
async fn wrong_key_is_unauthorized_and_never_echoed() {
    let wrong_key = BASE64.encode(b"definitely-not-the-devstoreaccount1-key-0123456789");
    let cred =
        StorageCredential::SharedKey(SharedKeyCredential::new(DEV_ACCOUNT, &wrong_key).unwrap());
    let q = AzureQueue::from_url(
        &format!("{}/{}", queue_endpoint(), unique("wrongkey")),
        cred.clone(),
        StorageOptions::default(),
    )
    .unwrap();
    let err = q.create_if_missing().await.unwrap_err();
    let QueueError::Unauthorized { detail } = &err else {
        panic!("expected Unauthorized, got {err:?}");
    };
    assert!(detail.contains("403"), "{detail}");
    for shown in [err.to_string(), format!("{err:?}"), format!("{q:?}")] {
        assert!(!shown.contains(&wrong_key), "key leaked: {shown}");
        assert!(!shown.contains(DEV_KEY), "key leaked: {shown}");
    }

    let s = AzureBlobStore::from_url(
        &format!("{}/{}", blob_endpoint(), unique("wrongkey")),
        cred,
        StorageOptions::default(),
    )
    .unwrap();
    assert!(matches!(
        s.create_if_missing().await,
        Err(StoreError::Unauthorized { .. })
    ));
}

/// An account SAS (blob + queue, all resource types), signed as the service expects for
/// `sv` 2020-12-06 and later: the string-to-sign ends with the (empty) encryption scope.
fn account_sas() -> String {
    let now_secs = SystemClock.now().unix_millis() / 1000;
    let expiry = time::OffsetDateTime::from_unix_timestamp(now_secs + 3600).unwrap();
    let se = expiry
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (sv, ss, srt, sp, spr) = ("2025-11-05", "bq", "sco", "rwdlacup", "https,http");
    let string_to_sign = format!("{DEV_ACCOUNT}\n{sp}\n{ss}\n{srt}\n\n{se}\n\n{spr}\n{sv}\n\n");
    let mut mac = Hmac::<Sha256>::new_from_slice(&BASE64.decode(DEV_KEY).unwrap()).unwrap();
    mac.update(string_to_sign.as_bytes());
    let sig = BASE64.encode(mac.finalize().into_bytes());
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    format!(
        "sv={sv}&ss={ss}&srt={srt}&sp={sp}&se={}&spr={}&sig={}",
        enc(&se),
        enc(spr),
        enc(&sig)
    )
}

#[tokio::test]
async fn account_sas_in_the_url_authorizes_queue_and_blob() {
    let sas = account_sas();
    let sig = sas.split("sig=").nth(1).unwrap().to_string();
    let q = AzureQueue::from_url(
        &format!("{}/{}?{sas}", queue_endpoint(), unique("sas")),
        StorageCredential::Sas,
        StorageOptions::default(),
    )
    .unwrap();
    assert!(
        !format!("{q:?}").contains(&sig),
        "SAS signature leaked in Debug"
    );
    // Before creation: the error names the queue with the signature redacted.
    match q.send(b"x", Duration::ZERO).await {
        Err(QueueError::QueueNotFound { queue }) => {
            assert!(queue.contains("sig=REDACTED"), "{queue}");
            assert!(!queue.contains(&sig), "{queue}");
        }
        other => panic!("expected QueueNotFound, got {other:?}"),
    }
    q.create_if_missing().await.unwrap();
    q.send(b"via sas", Duration::ZERO).await.unwrap();
    let got = q.receive(1, LEASE).await.unwrap();
    assert_eq!(got[0].body, b"via sas");
    let renewed = q.set_visibility(&got[0].lease, LEASE).await.unwrap();
    q.delete(&renewed).await.unwrap();

    let s = AzureBlobStore::from_url(
        &format!("{}/{}?{sas}", blob_endpoint(), unique("sas")),
        StorageCredential::Sas,
        StorageOptions::default(),
    )
    .unwrap();
    s.create_if_missing().await.unwrap();
    let etag = s.put("a/b", b"1", WriteCondition::IfAbsent).await.unwrap();
    assert_eq!(s.get("a/b").await.unwrap().unwrap().etag, etag);
    assert_eq!(s.list("a/").await.unwrap(), vec!["a/b"]);

    // A tampered signature is refused, and the error does not show it.
    let bad = sas.replace(&sig, "AAAA");
    let q = AzureQueue::from_url(
        &format!("{}/{}?{bad}", queue_endpoint(), unique("badsas")),
        StorageCredential::Sas,
        StorageOptions::default(),
    )
    .unwrap();
    match q.create_if_missing().await {
        Err(QueueError::Unauthorized { detail }) => assert!(!detail.contains("AAAA"), "{detail}"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

#[tokio::test]
async fn connection_string_constructors_reach_azurite() {
    let conn = format!(
        "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};\
         BlobEndpoint={};QueueEndpoint={};",
        blob_endpoint(),
        queue_endpoint()
    );
    let q =
        AzureQueue::from_connection_string(&conn, &unique("connstr"), StorageOptions::default())
            .unwrap();
    q.create_if_missing().await.unwrap();
    q.send(b"x", Duration::ZERO).await.unwrap();
    assert_eq!(q.approximate_len().await.unwrap(), 1);
    let s = AzureBlobStore::from_connection_string(
        &conn,
        &unique("connstr"),
        StorageOptions::default(),
    )
    .unwrap();
    s.create_if_missing().await.unwrap();
    s.put("k", b"v", WriteCondition::Always).await.unwrap();
}

async fn new_store(prefix: &str, page_size: Option<u32>) -> AzureBlobStore {
    let s = store(&unique(prefix), page_size);
    s.create_if_missing().await.unwrap();
    s
}

#[tokio::test]
async fn blob_conditional_writes() {
    let s = new_store("cond", None).await;
    s.create_if_missing().await.expect("creating twice is fine");
    assert!(
        s.get("ckpt/1").await.unwrap().is_none(),
        "absent reads as None"
    );
    let first = s
        .put("ckpt/1", b"v1", WriteCondition::IfAbsent)
        .await
        .unwrap();
    match s.put("ckpt/1", b"v1b", WriteCondition::IfAbsent).await {
        Err(StoreError::ConditionFailed { key }) => assert_eq!(key, "ckpt/1"),
        other => panic!("second IfAbsent: expected ConditionFailed, got {other:?}"),
    }
    let second = s
        .put("ckpt/1", b"v2", WriteCondition::IfMatch(first.clone()))
        .await
        .expect("IfMatch with the current ETag");
    assert_ne!(first, second);
    match s.put("ckpt/1", b"v3", WriteCondition::IfMatch(first)).await {
        Err(StoreError::ConditionFailed { .. }) => {}
        other => panic!("stale IfMatch: expected ConditionFailed, got {other:?}"),
    }
    match s
        .put(
            "ckpt/1",
            b"v3",
            WriteCondition::IfMatch(ETag("\"0x1234\"".to_string())),
        )
        .await
    {
        Err(StoreError::ConditionFailed { .. }) => {}
        other => panic!("made-up IfMatch: expected ConditionFailed, got {other:?}"),
    }
    let got = s.get("ckpt/1").await.unwrap().unwrap();
    assert_eq!((got.body.as_slice(), &got.etag), (&b"v2"[..], &second));
    s.delete("ckpt/1").await.unwrap();
    s.delete("ckpt/1")
        .await
        .expect("deleting an absent blob is Ok");
    assert!(s.get("ckpt/1").await.unwrap().is_none());
}

#[tokio::test]
async fn blob_names_with_odd_characters_round_trip() {
    let s = new_store("names", None).await;
    let keys = ["a b/c+d", "ümlaut/ä", "q?x=1&y#z", "percent%2F"];
    for k in keys {
        s.put(k, k.as_bytes(), WriteCondition::IfAbsent)
            .await
            .unwrap();
        assert_eq!(s.get(k).await.unwrap().unwrap().body, k.as_bytes(), "{k}");
    }
    let mut expected: Vec<String> = keys.iter().map(|k| (*k).to_string()).collect();
    expected.sort();
    assert_eq!(s.list("").await.unwrap(), expected);
}

#[tokio::test]
async fn list_pages_through_prefix() {
    let s = new_store("list", Some(2)).await;
    for i in 0..7 {
        s.put(&format!("ledger/{i:02}"), b"", WriteCondition::Always)
            .await
            .unwrap();
    }
    s.put("other/x", b"", WriteCondition::Always).await.unwrap();
    let listed = s.list("ledger/").await.unwrap();
    assert_eq!(
        listed,
        (0..7).map(|i| format!("ledger/{i:02}")).collect::<Vec<_>>(),
        "all 7 across 4 pages of 2"
    );
    assert_eq!(s.list("other/").await.unwrap(), vec!["other/x"]);
    assert!(s.list("none/").await.unwrap().is_empty());
}

#[tokio::test]
async fn missing_container_is_store_not_found() {
    let s = store(&unique("missing"), None);
    assert!(matches!(
        s.get("k").await,
        Err(StoreError::StoreNotFound { .. })
    ));
    assert!(matches!(
        s.put("k", b"v", WriteCondition::Always).await,
        Err(StoreError::StoreNotFound { .. })
    ));
    assert!(matches!(
        s.list("").await,
        Err(StoreError::StoreNotFound { .. })
    ));
}
