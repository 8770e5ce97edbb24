//! Paths Azurite cannot show over plain http: the bearer-token credential (Azurite needs
//! `--oauth basic` plus HTTPS for it), throttling, 5xx and timeouts. A local axum server plays the
//! Queue service here; only the HTTP exchange is faked, the client code is the production one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use spotkit_azure::storage::{
    AzureBlobStore, AzureQueue, StorageCredential, StorageOptions, TokenError, TokenFuture,
    TokenSource,
};
use spotkit_cloud::{ObjectStore, Queue, QueueError, StoreError};

/// How the fake service answers.
#[derive(Clone, Copy)]
enum Mode {
    /// 200 with a message count only for `Bearer token-1`, else 403 AuthenticationFailed.
    AcceptSecondToken,
    /// 403 AuthenticationFailed whatever the token.
    RefuseAll,
    /// 503 ServerBusy with `Retry-After: 3`.
    Busy,
    /// 429 without Retry-After.
    TooMany,
    /// 500 InternalError.
    Internal,
    /// Answers after 2 s.
    Slow,
}

#[derive(Clone)]
struct Fake {
    mode: Mode,
    /// `Authorization` and `x-ms-version` of each request.
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

async fn service(State(fake): State<Fake>, headers: HeaderMap) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let auth = header("authorization");
    fake.seen
        .lock()
        .unwrap()
        .push((auth.clone(), header("x-ms-version")));
    let refused = (
        StatusCode::FORBIDDEN,
        [("x-ms-error-code", "AuthenticationFailed")],
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code>\
         <Message>Server failed to authenticate the request.\nRequestId:1</Message></Error>",
    );
    match fake.mode {
        Mode::AcceptSecondToken if auth == "Bearer token-1" => {
            (StatusCode::OK, [("x-ms-approximate-messages-count", "5")]).into_response()
        }
        Mode::AcceptSecondToken | Mode::RefuseAll => refused.into_response(),
        Mode::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("x-ms-error-code", "ServerBusy"), ("retry-after", "3")],
        )
            .into_response(),
        Mode::TooMany => StatusCode::TOO_MANY_REQUESTS.into_response(),
        Mode::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("x-ms-error-code", "InternalError")],
        )
            .into_response(),
        Mode::Slow => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            StatusCode::OK.into_response()
        }
    }
}

/// Starts the fake; returns its base URL (path style) and the requests it saw.
async fn serve(mode: Mode) -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new().fallback(service).with_state(Fake {
        mode,
        seen: seen.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/devstoreaccount1"), seen)
}

/// Hands out `token-N`, where N counts invalidations.
#[derive(Default)]
struct FakeTokens {
    generation: AtomicUsize,
    fail: Option<fn() -> TokenError>,
}

impl TokenSource for FakeTokens {
    fn token(&self) -> TokenFuture<'_> {
        let result = match self.fail {
            Some(f) => Err(f()),
            None => Ok(format!("token-{}", self.generation.load(Ordering::SeqCst))),
        };
        Box::pin(async move { result })
    }

    fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

fn bearer_queue(base: &str, tokens: Arc<FakeTokens>, timeout: Duration) -> AzureQueue {
    AzureQueue::from_url(
        &format!("{base}/jobs"),
        StorageCredential::Bearer(tokens),
        StorageOptions {
            timeout,
            ..StorageOptions::default()
        },
    )
    .unwrap()
}

#[tokio::test]
async fn refused_token_is_invalidated_and_the_request_retried_once() {
    let (base, seen) = serve(Mode::AcceptSecondToken).await;
    let tokens = Arc::new(FakeTokens::default());
    let q = bearer_queue(&base, tokens.clone(), Duration::from_secs(5));
    assert_eq!(q.approximate_len().await.unwrap(), 5);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one retry: {seen:?}");
    assert_eq!(seen[0].0, "Bearer token-0");
    assert_eq!(
        seen[1].0, "Bearer token-1",
        "the retry carries a fresh token"
    );
    for (_, version) in &seen {
        assert!(
            version.as_str() >= "2017-11-09",
            "bearer needs x-ms-version >= 2017-11-09, sent {version:?}"
        );
    }
    assert_eq!(tokens.generation.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_second_refusal_surfaces_as_unauthorized_without_the_token() {
    let (base, seen) = serve(Mode::RefuseAll).await;
    let q = bearer_queue(
        &base,
        Arc::new(FakeTokens::default()),
        Duration::from_secs(5),
    );
    match q.approximate_len().await {
        Err(QueueError::Unauthorized { detail }) => {
            assert!(detail.contains("403 AuthenticationFailed"), "{detail}");
            assert!(detail.contains("Server failed to authenticate"), "{detail}");
            assert!(!detail.contains("token-"), "token leaked: {detail}");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert_eq!(seen.lock().unwrap().len(), 2, "exactly one retry, no loop");

    let s = AzureBlobStore::from_url(
        &format!("{base}/ckpt"),
        StorageCredential::Bearer(Arc::new(FakeTokens::default())),
        StorageOptions::default(),
    )
    .unwrap();
    assert!(matches!(
        s.get("k").await,
        Err(StoreError::Unauthorized { .. })
    ));
}

#[tokio::test]
async fn token_source_failures_are_classified_without_a_request() {
    let (base, seen) = serve(Mode::RefuseAll).await;
    let unavailable = Arc::new(FakeTokens {
        fail: Some(|| TokenError::Unavailable {
            detail: "IMDS 503".to_string(),
        }),
        ..FakeTokens::default()
    });
    assert!(matches!(
        bearer_queue(&base, unavailable, Duration::from_secs(5))
            .approximate_len()
            .await,
        Err(QueueError::Transient { .. })
    ));
    let refused = Arc::new(FakeTokens {
        fail: Some(|| TokenError::Refused {
            detail: "no identity".to_string(),
        }),
        ..FakeTokens::default()
    });
    assert!(matches!(
        bearer_queue(&base, refused, Duration::from_secs(5))
            .approximate_len()
            .await,
        Err(QueueError::Unauthorized { .. })
    ));
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn throttling_uses_retry_after_or_one_second() {
    let (base, _) = serve(Mode::Busy).await;
    let q = bearer_queue(
        &base,
        Arc::new(FakeTokens::default()),
        Duration::from_secs(5),
    );
    assert!(matches!(
        q.receive(1, Duration::from_secs(30)).await,
        Err(QueueError::Throttled { retry_after }) if retry_after == Duration::from_secs(3)
    ));
    let (base, _) = serve(Mode::TooMany).await;
    let q = bearer_queue(
        &base,
        Arc::new(FakeTokens::default()),
        Duration::from_secs(5),
    );
    assert!(matches!(
        q.send(b"x", Duration::ZERO).await,
        Err(QueueError::Throttled { retry_after }) if retry_after == Duration::from_secs(1)
    ));
}

#[tokio::test]
async fn server_errors_timeouts_and_refused_connections_are_transient() {
    let (base, _) = serve(Mode::Internal).await;
    let q = bearer_queue(
        &base,
        Arc::new(FakeTokens::default()),
        Duration::from_secs(5),
    );
    assert!(matches!(
        q.approximate_len().await,
        Err(QueueError::Transient { .. })
    ));

    let (base, _) = serve(Mode::Slow).await;
    let q = bearer_queue(
        &base,
        Arc::new(FakeTokens::default()),
        Duration::from_millis(200),
    );
    match q.approximate_len().await {
        Err(QueueError::Transient { detail }) => {
            assert!(detail.contains("no answer within"), "{detail}")
        }
        other => panic!("expected a Transient timeout, got {other:?}"),
    }

    let q = AzureQueue::from_url(
        "http://127.0.0.1:9/devstoreaccount1/jobs?sv=1&sig=topsecret",
        StorageCredential::Sas,
        StorageOptions::default(),
    )
    .unwrap();
    match q.approximate_len().await {
        Err(QueueError::Transient { detail }) => {
            assert!(!detail.contains("topsecret"), "SAS leaked: {detail}");
            assert!(detail.contains("sig=REDACTED"), "{detail}");
        }
        other => panic!("expected Transient, got {other:?}"),
    }
}

#[test]
fn credentials_that_do_not_fit_the_url_are_refused_up_front() {
    use spotkit_azure::storage::ConfigError;
    let bearer = StorageCredential::Bearer(Arc::new(FakeTokens::default()));
    assert!(matches!(
        AzureQueue::from_url(
            "http://acct.queue.core.windows.net/jobs",
            bearer.clone(),
            StorageOptions::default()
        ),
        Err(ConfigError::CredentialMismatch { .. })
    ));
    assert!(
        AzureQueue::from_url(
            "https://acct.queue.core.windows.net/jobs",
            bearer,
            StorageOptions::default()
        )
        .is_ok()
    );
    assert!(matches!(
        AzureQueue::from_url(
            "https://acct.queue.core.windows.net/jobs?sv=2025-11-05",
            StorageCredential::Sas,
            StorageOptions::default()
        ),
        Err(ConfigError::CredentialMismatch { .. })
    ));
}
