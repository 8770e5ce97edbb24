//! Bearer tokens for storage from the VM's managed identity, via IMDS (FACTS.md 1.2).

use std::sync::Arc;
use std::time::Duration;

use spotkit_cloud::Clock;

use super::ConfigError;
use super::auth::{TokenError, TokenFuture, TokenSource};
use super::url::encode;

/// The Entra ID resource (audience) for Azure Storage.
pub const STORAGE_RESOURCE: &str = "https://storage.azure.com/";

/// The IMDS identity API version documented with the token response shape (FACTS.md 1.2).
const IDENTITY_API_VERSION: &str = "2018-02-01";

/// Tokens are refreshed this long before `expires_on`, so a request never carries one that expires
/// in flight and clock skew between VM and Entra ID does not matter.
const REFRESH_MARGIN_SECS: i64 = 5 * 60;

/// How to reach the managed-identity token endpoint.
#[derive(Clone, Debug)]
pub struct ImdsTokenOptions {
    /// IMDS base URL: `http://169.254.169.254` on Azure, a loopback URL in tests.
    pub base_url: String,
    /// A user-assigned identity's client id; `None` for the system-assigned identity (required
    /// when several user-assigned identities are attached).
    pub client_id: Option<String>,
    /// The resource (audience); [`STORAGE_RESOURCE`] by default.
    pub resource: String,
    /// Whole-request timeout. Default 10 s: the first token request on a VM can be slow.
    pub timeout: Duration,
}

impl Default for ImdsTokenOptions {
    fn default() -> Self {
        Self {
            base_url: "http://169.254.169.254".to_string(),
            client_id: None,
            resource: STORAGE_RESOURCE.to_string(),
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Clone)]
struct Cached {
    token: String,
    /// Unix seconds after which the token is no longer handed out.
    refresh_at: i64,
}

/// A [`TokenSource`] backed by the VM's managed identity: `GET
/// {imds}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=…` with `Metadata: true`,
/// never through a proxy. Tokens are cached until 5 minutes before `expires_on`; concurrent callers
/// share one fetch (IMDS allows only 5 concurrent identity requests per VM). No retries: a failed
/// fetch surfaces as [`TokenError`] and the caller's retry policy applies.
pub struct ImdsManagedIdentity {
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    url: String,
    resource: String,
    timeout: Duration,
    cache: std::sync::Mutex<Option<Cached>>,
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ImdsManagedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImdsManagedIdentity")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl ImdsManagedIdentity {
    /// A token source for `options`; `clock` (normally [`spotkit_cloud::SystemClock`]) decides
    /// when a cached token is due for refresh.
    ///
    /// # Errors
    /// [`ConfigError::HttpClient`] when the HTTP client cannot be built.
    pub fn new(options: &ImdsTokenOptions, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        let http = reqwest::Client::builder()
            // IMDS must never be reached through a proxy (FACTS 1.1).
            .no_proxy()
            .build()
            .map_err(ConfigError::HttpClient)?;
        let mut url = format!(
            "{}/metadata/identity/oauth2/token?api-version={IDENTITY_API_VERSION}&resource={}",
            options.base_url.trim_end_matches('/'),
            encode(&options.resource, false)
        );
        if let Some(id) = &options.client_id {
            url.push_str("&client_id=");
            url.push_str(&encode(id, false));
        }
        Ok(Self {
            http,
            clock,
            url,
            resource: options.resource.clone(),
            timeout: options.timeout,
            cache: std::sync::Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// The resource (audience) this source fetches tokens for.
    #[must_use]
    pub fn resource(&self) -> &str {
        &self.resource
    }

    fn unix_now(&self) -> i64 {
        self.clock.now().unix_millis().div_euclid(1000)
    }

    fn cached(&self, now: i64) -> Option<String> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .as_ref()
            .filter(|c| now < c.refresh_at)
            .map(|c| c.token.clone())
    }

    async fn fetch(&self) -> Result<String, TokenError> {
        if let Some(t) = self.cached(self.unix_now()) {
            return Ok(t);
        }
        // One fetch at a time; whoever waited re-checks the cache the winner filled.
        let _guard = self.fetching.lock().await;
        if let Some(t) = self.cached(self.unix_now()) {
            return Ok(t);
        }
        let unavailable = |e: reqwest::Error| TokenError::Unavailable {
            detail: if e.is_timeout() {
                format!("no answer from IMDS within {:?}", self.timeout)
            } else {
                error_chain(&e.without_url())
            },
        };
        let response = self
            .http
            .get(&self.url)
            .header("Metadata", "true")
            .timeout(self.timeout)
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(unavailable)?;
        if status != 200 {
            let detail = format!(
                "IMDS token endpoint answered {status}: {}",
                describe_error(&body)
            );
            // FACTS 1.2: 404 (IMDS updating), 410, 429 and 5xx are worth retrying; other 4xx not.
            return Err(
                if matches!(status, 404 | 408 | 410 | 429) || status >= 500 {
                    TokenError::Unavailable { detail }
                } else {
                    TokenError::Refused { detail }
                },
            );
        }
        let now = self.unix_now();
        let (token, expires_on) = parse_token_response(&body, now)?;
        *self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Cached {
            token: token.clone(),
            refresh_at: expires_on - REFRESH_MARGIN_SECS,
        });
        Ok(token)
    }
}

impl TokenSource for ImdsManagedIdentity {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(self.fetch())
    }

    fn invalidate(&self) {
        *self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// The text of an error and its sources.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `error: error_description` from an IMDS error body, or the start of the body.
fn describe_error(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let field = |k: &str| v.get(k).and_then(serde_json::Value::as_str).unwrap_or("");
        if !field("error").is_empty() {
            return format!("{}: {}", field("error"), field("error_description"));
        }
    }
    String::from_utf8_lossy(body).chars().take(200).collect()
}

/// The access token and its expiry (unix seconds) from an IMDS token response. Values are strings
/// per the docs (FACTS 1.2); numbers are accepted too. Without `expires_on`, `now + expires_in`.
pub(crate) fn parse_token_response(body: &[u8], now: i64) -> Result<(String, i64), TokenError> {
    let malformed = |detail: &str| TokenError::Malformed {
        detail: detail.to_string(),
    };
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| malformed(&format!("not JSON: {e}")))?;
    let token = v
        .get("access_token")
        .and_then(serde_json::Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| malformed("no access_token"))?;
    let int = |k: &str| -> Option<i64> {
        match v.get(k)? {
            serde_json::Value::String(s) => s.trim().parse().ok(),
            serde_json::Value::Number(n) => n.as_i64(),
            _ => None,
        }
    };
    let expires_on = int("expires_on")
        .or_else(|| int("expires_in").map(|s| now + s))
        .ok_or_else(|| malformed("neither expires_on nor expires_in is a number"))?;
    Ok((token.to_string(), expires_on))
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

    use axum::extract::{RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;
    use spotkit_core::Timestamp;

    use super::*;

    const T0: i64 = 1_700_000_000;

    /// A clock the test moves by hand.
    struct ManualClock(AtomicI64);

    impl Clock for ManualClock {
        fn now(&self) -> Timestamp {
            Timestamp::from_unix_secs(self.0.load(Ordering::SeqCst))
        }

        fn sleep_until(&self, _: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
            Box::pin(async {})
        }
    }

    #[test]
    fn parses_the_documented_sample() {
        let sample = include_bytes!(
            "../../../../fixtures/azure/imds/imds-managed-identity-token-sample-response.json"
        );
        let (token, expires_on) = parse_token_response(sample, 0).unwrap();
        assert_eq!(token, "eyJ0eXAi...");
        assert_eq!(expires_on, 1_506_484_173);
    }

    #[test]
    fn accepts_numbers_and_falls_back_to_expires_in() {
        let (_, e) =
            parse_token_response(br#"{"access_token":"t","expires_on":1700000000}"#, 0).unwrap();
        assert_eq!(e, 1_700_000_000);
        let (_, e) =
            parse_token_response(br#"{"access_token":"t","expires_in":"3599"}"#, 100).unwrap();
        assert_eq!(e, 3699);
        assert!(matches!(
            parse_token_response(br#"{"access_token":"","expires_on":"1"}"#, 0),
            Err(TokenError::Malformed { .. })
        ));
        assert!(matches!(
            parse_token_response(b"<html>", 0),
            Err(TokenError::Malformed { .. })
        ));
    }

    #[derive(Clone)]
    struct Fake {
        hits: Arc<AtomicUsize>,
        status: StatusCode,
    }

    /// Serves `token-N` (N counts requests), all expiring at `T0 + 3600`, as strings.
    async fn token_endpoint(
        State(fake): State<Fake>,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
    ) -> (StatusCode, String) {
        let n = fake.hits.fetch_add(1, Ordering::SeqCst) + 1;
        assert_eq!(headers.get("metadata").unwrap(), "true");
        let query = query.unwrap_or_default();
        assert!(query.contains("api-version=2018-02-01"), "{query}");
        assert!(
            query.contains("resource=https%3A%2F%2Fstorage.azure.com%2F"),
            "{query}"
        );
        assert!(query.contains("client_id=my-client"), "{query}");
        if fake.status != StatusCode::OK {
            return (
                fake.status,
                r#"{"error":"invalid_request","error_description":"Identity not found"}"#
                    .to_string(),
            );
        }
        (
            StatusCode::OK,
            format!(
                r#"{{"access_token":"token-{n}","refresh_token":"","expires_in":"3600","expires_on":"{}","not_before":"{T0}","resource":"https://storage.azure.com/","token_type":"Bearer"}}"#,
                T0 + 3600
            ),
        )
    }

    async fn serve(
        status: StatusCode,
    ) -> (ImdsManagedIdentity, Arc<AtomicUsize>, Arc<ManualClock>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .route("/metadata/identity/oauth2/token", get(token_endpoint))
            .with_state(Fake {
                hits: hits.clone(),
                status,
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let clock = Arc::new(ManualClock(AtomicI64::new(T0)));
        let source = ImdsManagedIdentity::new(
            &ImdsTokenOptions {
                base_url: format!("http://{addr}/"),
                client_id: Some("my-client".to_string()),
                ..ImdsTokenOptions::default()
            },
            clock.clone(),
        )
        .unwrap();
        (source, hits, clock)
    }

    #[tokio::test]
    async fn caches_until_five_minutes_before_expiry() {
        let (source, hits, clock) = serve(StatusCode::OK).await;
        assert_eq!(source.token().await.unwrap(), "token-1");
        assert_eq!(
            source.token().await.unwrap(),
            "token-1",
            "served from the cache"
        );
        clock.0.store(T0 + 3600 - 301, Ordering::SeqCst);
        assert_eq!(
            source.token().await.unwrap(),
            "token-1",
            "still outside the margin"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        clock.0.store(T0 + 3600 - 300, Ordering::SeqCst);
        assert_eq!(
            source.token().await.unwrap(),
            "token-2",
            "refreshed 5 min before expiry"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn invalidate_forces_a_fetch() {
        let (source, hits, _) = serve(StatusCode::OK).await;
        assert_eq!(source.token().await.unwrap(), "token-1");
        source.invalidate();
        assert_eq!(source.token().await.unwrap(), "token-2");
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let (source, hits, _) = serve(StatusCode::OK).await;
        let (a, b, c) = tokio::join!(source.token(), source.token(), source.token());
        for t in [a, b, c] {
            assert_eq!(t.unwrap(), "token-1");
        }
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn errors_are_classified() {
        let (source, _, _) = serve(StatusCode::BAD_REQUEST).await;
        match source.token().await {
            Err(TokenError::Refused { detail }) => {
                assert!(detail.contains("Identity not found"), "{detail}");
            }
            other => panic!("expected Refused, got {other:?}"),
        }
        let (source, _, _) = serve(StatusCode::TOO_MANY_REQUESTS).await;
        assert!(matches!(
            source.token().await,
            Err(TokenError::Unavailable { .. })
        ));
        let nowhere = ImdsManagedIdentity::new(
            &ImdsTokenOptions {
                base_url: "http://127.0.0.1:9".to_string(),
                ..ImdsTokenOptions::default()
            },
            Arc::new(spotkit_cloud::SystemClock),
        )
        .unwrap();
        assert!(matches!(
            nowhere.token().await,
            Err(TokenError::Unavailable { .. })
        ));
    }
}
