//! [`ArmClient`]: one authorized, paced and retried ARM request, plus paging.
//!
//! # Expected flow of a request
//! 1. Wait for the throttle ([`ArmThrottle`]): ARM's per-method bucket and, for Compute calls,
//!    the per-region and per-VM buckets, or a pause set by an earlier 429.
//! 2. Get a token for `https://management.azure.com/.default` and send, with a per-request
//!    timeout.
//! 3. Read `x-ms-ratelimit-remaining-*` into the throttle.
//! 4. Classify: 2xx is the answer; 429 waits `Retry-After` and retries (unless it asks for longer
//!    than [`ArmClientOptions::max_retry_after`]: then [`ArmError::Throttled`] goes to the
//!    caller, whose reconcile loop can do better than sleep); 401 fetches a fresh token once; 5xx,
//!    timeouts and transport errors retry with capped exponential backoff and jitter, for reads
//!    and idempotent writes only (a POST of [`OperationClass::Arm`] is retried only if it never
//!    left); other statuses are [`ArmError::Http`] with ARM's error body parsed.
//!
//! # Guarantees
//! - Time is read and waited on only through the injected [`Clock`].
//! - A bearer token is sent only to the base URL's origin (scheme, host, port): absolute URLs
//!   from responses (`nextLink`, LRO status URLs) on another origin are refused
//!   ([`ArmError::UntrustedUrl`]).
//! - No token appears in `Debug` output, logs or errors.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use spotkit_cloud::{Clock, SystemClock};
use spotkit_core::Timestamp;
use spotkit_core::backoff::{Backoff, SplitMix64};

use super::credential::{ARM_SCOPE, TokenProvider};
use super::error::{ArmError, parse_error_body};
use super::throttle::{ArmKind, ArmLimits, ArmThrottle, OperationClass, RateLimitHeaders};
use crate::storage::TokenError;

/// Public Azure's ARM endpoint.
pub const DEFAULT_ARM_BASE_URL: &str = "https://management.azure.com";

/// Characters of a response body kept in errors.
const BODY_EXCERPT_CHARS: usize = 300;

/// How the client behaves. `Default` suits production.
#[derive(Clone)]
pub struct ArmClientOptions {
    /// Whole-request timeout (connect, send, read the body). Default 30 s.
    pub request_timeout: Duration,
    /// Retries after a 5xx, timeout or transport error (for retryable requests). Default 4.
    pub max_retries: u32,
    /// Retries after a 429 whose `Retry-After` is acceptable. Default 6.
    pub max_throttle_retries: u32,
    /// Backoff between retries of failures. Default 500 ms doubling up to 30 s.
    pub backoff: Backoff,
    /// A 429 asking to wait longer than this is returned as [`ArmError::Throttled`] at once.
    /// Default 60 s.
    pub max_retry_after: Duration,
    /// Wait this long after a 429 without `Retry-After`. Default 10 s.
    pub default_retry_after: Duration,
    /// Our own pacing never waits longer than this for one request; beyond it the request fails
    /// with [`ArmError::Throttled`]. Default 120 s.
    pub max_pacing_wait: Duration,
    /// ARM's subscription limits the client paces itself under.
    pub limits: ArmLimits,
    /// How long Spot Placement Score answers are reused (the service asks clients to cache
    /// them 15-30 min). Default 20 min.
    pub placement_cache_ttl: Duration,
    /// Seed of the backoff jitter (tests fix it; `None` seeds from the clock).
    pub jitter_seed: Option<u64>,
    /// A preconfigured HTTP client; `None` builds one (honouring proxy settings).
    pub http_client: Option<reqwest::Client>,
    /// The clock for pacing, backoff and `Retry-After`. [`SystemClock`] by default.
    pub clock: Arc<dyn Clock>,
}

impl fmt::Debug for ArmClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArmClientOptions")
            .field("request_timeout", &self.request_timeout)
            .field("max_retries", &self.max_retries)
            .field("max_retry_after", &self.max_retry_after)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for ArmClientOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            max_retries: 4,
            max_throttle_retries: 6,
            backoff: Backoff {
                base: Duration::from_millis(500),
                max: Duration::from_secs(30),
            },
            max_retry_after: Duration::from_secs(60),
            default_retry_after: Duration::from_secs(10),
            max_pacing_wait: Duration::from_secs(120),
            limits: ArmLimits::default(),
            placement_cache_ttl: Duration::from_secs(20 * 60),
            jitter_seed: None,
            http_client: None,
            clock: Arc::new(SystemClock),
        }
    }
}

/// A successful answer: status, headers and the parsed body.
#[derive(Debug)]
pub struct ArmResponse<T> {
    /// HTTP status (2xx).
    pub status: u16,
    /// Response headers (`Location`, `Azure-AsyncOperation`, `Retry-After`...).
    pub headers: HeaderMap,
    /// The body.
    pub body: T,
}

impl<T> ArmResponse<T> {
    /// A header as text.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A page of an ARM list: `value` plus `nextLink`.
pub trait Paged: DeserializeOwned {
    /// One element.
    type Item;
    /// The elements and the next page's URL, if any.
    fn into_page(self) -> (Vec<Self::Item>, Option<String>);
}

/// The common `{ "value": [...], "nextLink": "..." }` list shape.
#[derive(Debug, serde::Deserialize)]
pub struct ArmList<T> {
    /// Elements of this page.
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    /// The next page (absolute URL); absent, null or empty on the last.
    #[serde(rename = "nextLink", default)]
    pub next_link: Option<String>,
}

impl<T: DeserializeOwned> Paged for ArmList<T> {
    type Item = T;
    fn into_page(self) -> (Vec<T>, Option<String>) {
        (self.value, self.next_link.filter(|l| !l.trim().is_empty()))
    }
}

/// Pages after which paging stops with an error rather than loop on a service bug.
const MAX_PAGES: usize = 10_000;

/// An Azure Resource Manager client. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct ArmClient {
    http: reqwest::Client,
    base: Url,
    tokens: Arc<dyn TokenProvider>,
    options: ArmClientOptions,
    throttle: Mutex<ArmThrottle>,
    jitter: Mutex<SplitMix64>,
    /// Answers of cached POSTs by request (URL + body): expiry and raw body.
    cache: Mutex<BTreeMap<String, (Timestamp, Vec<u8>)>>,
}

/// Cached answers kept at most; expired ones go first, then the soonest to expire.
const CACHE_ENTRIES_MAX: usize = 1_024;

impl fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArmClient")
            .field("base", &self.base.as_str())
            .field("credential", &self.tokens.kind())
            .finish_non_exhaustive()
    }
}

/// What one attempt produced.
enum Attempt {
    Done(u16, HeaderMap, Vec<u8>),
    /// Retry after this delay (already decided retryable), remembering the error if we give up.
    Retry(Duration, ArmError),
    Fail(ArmError),
}

impl ArmClient {
    /// A client for `base_url` (`https://management.azure.com`, or a loopback fake).
    ///
    /// # Errors
    /// [`ArmError::Config`] when the URL is not absolute, is plain http off loopback (a bearer
    /// token must not cross the network in clear) or the HTTP client cannot be built.
    pub fn new(
        base_url: &str,
        tokens: Arc<dyn TokenProvider>,
        options: ArmClientOptions,
    ) -> Result<Self, ArmError> {
        let base = Url::parse(base_url.trim_end_matches('/')).map_err(|e| ArmError::Config {
            detail: format!("ARM base URL {base_url:?}: {e}"),
        })?;
        let host = base.host_str().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if base.scheme() != "https" && !(base.scheme() == "http" && loopback) {
            return Err(ArmError::Config {
                detail: format!(
                    "ARM base URL {base_url:?} must be https (plain http only on loopback)"
                ),
            });
        }
        let http = match &options.http_client {
            Some(c) => c.clone(),
            None => reqwest::Client::builder()
                .build()
                .map_err(|e| ArmError::Config {
                    detail: format!("cannot build the HTTP client: {e}"),
                })?,
        };
        let now = options.clock.now();
        let seed = options
            .jitter_seed
            .unwrap_or_else(|| now.unix_millis().unsigned_abs());
        Ok(Self {
            http,
            base,
            tokens,
            throttle: Mutex::new(ArmThrottle::new(options.limits, now)),
            jitter: Mutex::new(SplitMix64::new(seed)),
            cache: Mutex::new(BTreeMap::new()),
            options,
        })
    }

    /// The base URL.
    #[must_use]
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The clock the client uses (LROs and caches read time through it too).
    #[must_use]
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.options.clock
    }

    /// The options.
    #[must_use]
    pub fn options(&self) -> &ArmClientOptions {
        &self.options
    }

    /// Sleeps `d` on the client's clock.
    pub(crate) async fn sleep(&self, d: Duration) {
        let clock = &self.options.clock;
        clock.sleep_until(clock.now().plus(d)).await;
    }

    /// `path_and_query` (`/subscriptions/…?api-version=…`) below the base URL, or an absolute URL
    /// on the base URL's origin.
    ///
    /// # Errors
    /// [`ArmError::UntrustedUrl`] for an absolute URL on another origin: a URL taken from a
    /// response must not make us send our bearer token to a host we were not configured for.
    pub fn resolve(&self, path_and_query: &str) -> Result<Url, ArmError> {
        if path_and_query.starts_with("http://") || path_and_query.starts_with("https://") {
            let url = Url::parse(path_and_query).map_err(|e| ArmError::Malformed {
                what: format!("URL from the service: {e}"),
                body_excerpt: excerpt(path_and_query.as_bytes()),
            })?;
            if url.origin() != self.base.origin() {
                return Err(ArmError::UntrustedUrl {
                    url: excerpt(path_and_query.as_bytes()),
                    base: self.base.origin().ascii_serialization(),
                });
            }
            return Ok(url);
        }
        let joined = format!(
            "{}{}{}",
            self.base.as_str().trim_end_matches('/'),
            if path_and_query.starts_with('/') {
                ""
            } else {
                "/"
            },
            path_and_query
        );
        Url::parse(&joined).map_err(|e| ArmError::Config {
            detail: format!("request path {path_and_query:?}: {e}"),
        })
    }

    /// GET and parse JSON.
    ///
    /// # Errors
    /// [`ArmError`] after the retries the request qualifies for.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
        class: OperationClass,
    ) -> Result<ArmResponse<T>, ArmError> {
        let (status, headers, body) = self.send(Method::GET, path_and_query, None, &class).await?;
        Ok(ArmResponse {
            status,
            body: parse_json(&body, path_and_query)?,
            headers,
        })
    }

    /// POST a JSON body and parse the JSON answer.
    ///
    /// # Errors
    /// As [`ArmClient::get_json`].
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path_and_query: &str,
        body: &B,
        class: OperationClass,
    ) -> Result<ArmResponse<T>, ArmError> {
        let json = to_json(body)?;
        let (status, headers, body) = self
            .send(Method::POST, path_and_query, Some(json), &class)
            .await?;
        Ok(ArmResponse {
            status,
            body: parse_json(&body, path_and_query)?,
            headers,
        })
    }

    /// POST a JSON body whose answer may be reused for `ttl`: an equal request (same URL and
    /// body) within `ttl` is answered from the cache without a call. For read-only POSTs
    /// (placement scores).
    ///
    /// # Errors
    /// As [`ArmClient::get_json`]; failures are not cached.
    pub async fn post_json_cached<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path_and_query: &str,
        body: &B,
        class: OperationClass,
        ttl: Duration,
    ) -> Result<T, ArmError> {
        let json = to_json(body)?;
        let key = format!("{path_and_query}\n{}", String::from_utf8_lossy(&json));
        let now = self.options.clock.now();
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .filter(|(expires, _)| *expires > now)
            .map(|(_, bytes)| bytes.clone());
        if let Some(bytes) = cached {
            return parse_json(&bytes, path_and_query);
        }
        let (_, _, bytes) = self
            .send(Method::POST, path_and_query, Some(json), &class)
            .await?;
        let parsed = parse_json(&bytes, path_and_query)?;
        let now = self.options.clock.now();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_ENTRIES_MAX {
            cache.retain(|_, (expires, _)| *expires > now);
        }
        while cache.len() >= CACHE_ENTRIES_MAX {
            let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, (expires, _))| *expires)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            cache.remove(&oldest);
        }
        cache.insert(key, (now.plus(ttl), bytes));
        Ok(parsed)
    }

    /// PUT a JSON body; the answer's body is parsed when there is one (`None` for an empty body,
    /// as some 201/202 answers have).
    ///
    /// # Errors
    /// As [`ArmClient::get_json`].
    pub async fn put_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path_and_query: &str,
        body: &B,
        class: OperationClass,
    ) -> Result<ArmResponse<Option<T>>, ArmError> {
        let json = to_json(body)?;
        let (status, headers, body) = self
            .send(Method::PUT, path_and_query, Some(json), &class)
            .await?;
        Ok(ArmResponse {
            status,
            body: parse_optional_json(&body, path_and_query)?,
            headers,
        })
    }

    /// DELETE; the raw body is dropped.
    ///
    /// # Errors
    /// As [`ArmClient::get_json`] (a 404 is [`ArmError::Http`]; callers decide if that is fine).
    pub async fn delete(
        &self,
        path_and_query: &str,
        class: OperationClass,
    ) -> Result<ArmResponse<()>, ArmError> {
        let (status, headers, _) = self
            .send(Method::DELETE, path_and_query, None, &class)
            .await?;
        Ok(ArmResponse {
            status,
            headers,
            body: (),
        })
    }

    /// POST without a body (actions such as `start`, `deallocate`, `simulateEviction` → 204).
    ///
    /// # Errors
    /// As [`ArmClient::get_json`].
    pub async fn post_empty(
        &self,
        path_and_query: &str,
        class: OperationClass,
    ) -> Result<ArmResponse<()>, ArmError> {
        let (status, headers, _) = self
            .send(Method::POST, path_and_query, Some(Vec::new()), &class)
            .await?;
        Ok(ArmResponse {
            status,
            headers,
            body: (),
        })
    }

    /// GET `first` and every `nextLink` after it; all elements in order.
    ///
    /// # Errors
    /// As [`ArmClient::get_json`]; [`ArmError::Malformed`] if a page links to itself or paging
    /// does not end; [`ArmError::UntrustedUrl`] for a `nextLink` on another origin.
    pub async fn follow_next_link<P: Paged>(
        &self,
        first: &str,
        class: OperationClass,
    ) -> Result<Vec<P::Item>, ArmError> {
        let mut items = Vec::new();
        let mut next = Some(first.to_string());
        let mut pages = 0usize;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(ArmError::Malformed {
                    what: format!("paging from {first} did not end after {MAX_PAGES} pages"),
                    body_excerpt: String::new(),
                });
            }
            let page: ArmResponse<P> = self.get_json(&url, class.clone()).await?;
            let (mut page_items, link) = page.body.into_page();
            items.append(&mut page_items);
            if link.as_deref() == Some(url.as_str()) {
                return Err(ArmError::Malformed {
                    what: format!("page {url} names itself as nextLink"),
                    body_excerpt: String::new(),
                });
            }
            next = link;
        }
        Ok(items)
    }

    /// Sends one logical request with pacing, retries and classification; the raw 2xx answer.
    ///
    /// # Errors
    /// [`ArmError`] once retries are exhausted or the failure is not retryable.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        class: &OperationClass,
    ) -> Result<(u16, HeaderMap, Vec<u8>), ArmError> {
        let url = self.resolve(path_and_query)?;
        let kind = ArmKind::of(&method);
        let idempotent = class.is_idempotent(&method);
        let mut failures = 0u32;
        let mut throttles = 0u32;
        let mut refreshed_token = false;
        loop {
            self.pace(kind, class).await?;
            match self
                .attempt(&method, &url, body.as_deref(), kind, class, idempotent)
                .await
            {
                Attempt::Done(status, headers, bytes) => return Ok((status, headers, bytes)),
                Attempt::Fail(ArmError::Unauthorized { status: 401, .. }) if !refreshed_token => {
                    // A cached token may have been revoked or expired early: one fresh try.
                    refreshed_token = true;
                    self.tokens.invalidate(ARM_SCOPE);
                }
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(delay, e @ ArmError::Throttled { .. }) => {
                    throttles += 1;
                    if throttles > self.options.max_throttle_retries {
                        return Err(e);
                    }
                    tracing::debug!(url = %url.path(), ?delay, "ARM throttled the request; waiting");
                    self.sleep(delay).await;
                }
                Attempt::Retry(delay, e) => {
                    failures += 1;
                    if failures > self.options.max_retries {
                        return Err(e);
                    }
                    let backoff = {
                        let mut rng = self.jitter.lock().unwrap_or_else(PoisonError::into_inner);
                        self.options.backoff.delay(failures, rng.next_u64())
                    };
                    let delay = delay.max(backoff);
                    tracing::debug!(url = %url.path(), ?delay, error = %e, "ARM request failed; retrying");
                    self.sleep(delay).await;
                }
            }
        }
    }

    /// Waits until the throttle grants a token.
    async fn pace(&self, kind: ArmKind, class: &OperationClass) -> Result<(), ArmError> {
        let mut waited = Duration::ZERO;
        loop {
            let now = self.options.clock.now();
            let granted = self
                .throttle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .try_acquire(kind, class, now);
            match granted {
                Ok(()) => return Ok(()),
                Err(wait) => {
                    if waited.saturating_add(wait) > self.options.max_pacing_wait {
                        return Err(ArmError::Throttled {
                            retry_after: wait,
                            code: None,
                            message: format!(
                                "client-side pacing under ARM's limits would wait {wait:?} for this {kind:?} request"
                            ),
                        });
                    }
                    waited += wait;
                    self.sleep(wait).await;
                }
            }
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
        kind: ArmKind,
        class: &OperationClass,
        idempotent: bool,
    ) -> Attempt {
        let token = match self.tokens.token(ARM_SCOPE).await {
            Ok(t) => t,
            Err(TokenError::Unavailable { detail }) => {
                return Attempt::Retry(
                    Duration::ZERO,
                    ArmError::Transport {
                        detail: format!("no ARM token ({}): {detail}", self.tokens.kind()),
                    },
                );
            }
            Err(e) => {
                return Attempt::Fail(ArmError::Unauthorized {
                    status: 0,
                    code: "CredentialUnavailable".to_string(),
                    message: format!("no ARM token ({}): {e}", self.tokens.kind()),
                });
            }
        };
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(token)
            .header("accept", "application/json")
            .timeout(self.options.request_timeout);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_vec());
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return self.transport_failure(&e, idempotent),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let now = self.options.clock.now();
        self.throttle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .observe(kind, class, &RateLimitHeaders::from_headers(&headers), now);
        let bytes = match response.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => return self.transport_failure(&e, idempotent),
        };
        if (200..300).contains(&status) {
            return Attempt::Done(status, headers, bytes);
        }
        let parsed = parse_error_body(&bytes);
        let retry_after = retry_after(&headers);
        if status == 429 || parsed.as_ref().is_some_and(|p| p.is_too_many_requests()) {
            let wait = retry_after.unwrap_or(self.options.default_retry_after);
            self.throttle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pause(kind, wait, now);
            let (code, message) = parsed
                .map(|p| (Some(p.code), p.message))
                .unwrap_or((None, excerpt(&bytes)));
            let err = ArmError::Throttled {
                retry_after: wait,
                code,
                message,
            };
            // A throttled request was not processed, so any request may be sent again.
            return if wait > self.options.max_retry_after {
                Attempt::Fail(err)
            } else {
                Attempt::Retry(wait, err)
            };
        }
        let err = ArmError::from_status(status, parsed, &bytes);
        if status >= 500 && idempotent {
            Attempt::Retry(retry_after.unwrap_or(Duration::ZERO), err)
        } else {
            Attempt::Fail(err)
        }
    }

    fn transport_failure(&self, e: &reqwest::Error, idempotent: bool) -> Attempt {
        // A connection that was never made carried nothing: safe to retry for any request.
        let never_sent = e.is_connect();
        let err = if e.is_timeout() {
            ArmError::Timeout {
                after: self.options.request_timeout,
            }
        } else {
            ArmError::Transport {
                detail: e.without_url_ref(),
            }
        };
        if idempotent || never_sent {
            Attempt::Retry(Duration::ZERO, err)
        } else {
            Attempt::Fail(err)
        }
    }
}

/// `Retry-After` in seconds (ARM sends seconds; HTTP dates are not used by ARM).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The start of a body, for errors.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .take(BODY_EXCERPT_CHARS)
        .collect()
}

fn to_json<B: Serialize + ?Sized>(body: &B) -> Result<Vec<u8>, ArmError> {
    serde_json::to_vec(body).map_err(|e| ArmError::Config {
        detail: format!("cannot serialize the request body: {e}"),
    })
}

pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ArmError> {
    serde_json::from_slice(bytes).map_err(|e| ArmError::Malformed {
        what: format!("answer to {}: {e}", what.split('?').next().unwrap_or(what)),
        body_excerpt: excerpt(bytes),
    })
}

fn parse_optional_json<T: DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<Option<T>, ArmError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    parse_json(bytes, what).map(Some)
}

/// `reqwest::Error::without_url` by reference (it takes `self`): URLs can carry SAS-like
/// secrets in other services, and here they only add noise.
trait WithoutUrlRef {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrlRef for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut out = if self.is_connect() {
            "connection failed".to_string()
        } else if self.is_body() || self.is_decode() {
            "reading the response failed".to_string()
        } else {
            "request failed".to_string()
        };
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            out.push_str(": ");
            out.push_str(&s.to_string());
            source = s.source();
        }
        out
    }
}
