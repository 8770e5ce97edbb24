//! One authorized storage request, and how its failures are classified.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spotkit_cloud::Clock;
use spotkit_core::Timestamp;

use super::auth::{StorageCredential, TokenError};
use super::imds_token::error_chain;
use super::url::{ResourceUrl, redact_sas};
use super::{ConfigError, STORAGE_API_VERSION, StorageOptions, xml};

/// Wait this long after a throttling answer that names no `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// A request below the resource (queue or container).
pub(crate) struct Call {
    pub method: reqwest::Method,
    /// Percent-encoded path below the resource, starting with `/`, or empty for the resource itself.
    pub tail: String,
    /// Decoded query parameters (encoded when the URL is built).
    pub query: Vec<(&'static str, String)>,
    /// Extra headers, lowercase names.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Call {
    pub fn new(method: reqwest::Method, tail: impl Into<String>) -> Self {
        Self {
            method,
            tail: tail.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn query(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.query.push((name, value.into()));
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, content_type: &'static str, body: Vec<u8>) -> Self {
        self.headers
            .push(("content-type", content_type.to_string()));
        self.body = body;
        self
    }
}

/// A successful (2xx) answer.
pub(crate) struct Reply {
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A non-2xx answer from the service.
#[derive(Debug)]
pub(crate) struct ServiceError {
    pub status: u16,
    /// `x-ms-error-code`, or the `<Code>` of the body.
    pub code: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
    retry_after: Option<Duration>,
    /// `METHOD url`, SAS signature redacted.
    what: String,
}

impl ServiceError {
    pub fn is(&self, status: u16, code: &str) -> bool {
        self.status == status && self.code.as_deref() == Some(code)
    }

    /// `METHOD url: 403 AuthenticationFailed: first line of the message (request id …)`: the
    /// service's own words, never a key, token or signature.
    pub fn detail(&self) -> String {
        let mut out = format!("{}: {}", self.what, self.status);
        if let Some(code) = &self.code {
            out.push(' ');
            out.push_str(code);
        }
        if let Some(message) = &self.message {
            out.push_str(": ");
            out.push_str(&redact_sas(message));
        }
        if let Some(id) = &self.request_id {
            out.push_str(&format!(" (request id {id})"));
        }
        out
    }
}

/// Why a request failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The service answered with a non-2xx status.
    Service(ServiceError),
    /// No answer: connection error or timeout, or an answer we could not read.
    Transport { detail: String },
    /// No bearer token could be had.
    Token(TokenError),
}

/// The operation-independent meaning of a failure; queue and blob code handle their specific
/// statuses (lease lost, condition failed, not found) first and fall back to this.
pub(crate) enum Class {
    Unauthorized(String),
    Throttled(Duration),
    Transient(String),
    Rejected(String),
}

impl Failure {
    pub fn class(&self) -> Class {
        match self {
            Self::Transport { detail } => Class::Transient(detail.clone()),
            Self::Token(e @ TokenError::Unavailable { .. }) => Class::Transient(e.to_string()),
            Self::Token(e) => Class::Unauthorized(e.to_string()),
            Self::Service(e) => match e.status {
                401 | 403 => Class::Unauthorized(e.detail()),
                429 | 503 => Class::Throttled(e.retry_after.unwrap_or(DEFAULT_RETRY_AFTER)),
                408 | 500..=599 => Class::Transient(e.detail()),
                400..=499 => Class::Rejected(e.detail()),
                // Redirects and other oddities: likely a proxy in the way; worth another try.
                _ => Class::Transient(e.detail()),
            },
        }
    }
}

/// Sends authorized requests for one resource.
pub(crate) struct Transport {
    http: reqwest::Client,
    url: ResourceUrl,
    credential: StorageCredential,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Transport {
    /// The URL (SAS signature redacted) and the credential kind only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("url", &self.url)
            .field("credential", &self.credential)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub fn new(
        url: ResourceUrl,
        credential: StorageCredential,
        options: &StorageOptions,
    ) -> Result<Self, ConfigError> {
        match &credential {
            StorageCredential::Sas if !url.has_sas() => {
                return Err(ConfigError::CredentialMismatch {
                    url: url.to_string(),
                    detail: "the Sas credential needs a SAS query string (with sig=) in the URL"
                        .to_string(),
                });
            }
            StorageCredential::SharedKey(k) if k.account() != url.account() => {
                return Err(ConfigError::CredentialMismatch {
                    url: url.to_string(),
                    detail: format!("the shared key is for account {:?}", k.account()),
                });
            }
            // A bearer token over plain http could be read on the way; allow it only to a local
            // test endpoint (the Azure service itself refuses tokens over http).
            StorageCredential::Bearer(_) if !url.is_https() && !url.is_loopback() => {
                return Err(ConfigError::CredentialMismatch {
                    url: url.to_string(),
                    detail: "a bearer token needs https (plain http only to a loopback address)"
                        .to_string(),
                });
            }
            _ => {}
        }
        let http = match &options.http_client {
            Some(client) => client.clone(),
            None => reqwest::Client::builder()
                .user_agent(concat!("spotkit/", env!("CARGO_PKG_VERSION")))
                // One service call per method: a redirect is reported, not followed.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(ConfigError::HttpClient)?,
        };
        Ok(Self {
            http,
            url,
            credential,
            timeout: options.timeout,
            clock: options.clock.clone(),
        })
    }

    pub fn url(&self) -> &ResourceUrl {
        &self.url
    }

    /// Sends `call`: one request, plus one retry with a fresh token if a bearer token was refused.
    pub async fn send(&self, call: &Call) -> Result<Reply, Failure> {
        let url_text = self.url.request_url(&call.tail, &call.query);
        let url = reqwest::Url::parse(&url_text).map_err(|e| Failure::Transport {
            detail: format!("cannot build request URL {}: {e}", redact_sas(&url_text)),
        })?;
        let what = format!("{} {}", call.method, redact_sas(&url_text));
        let StorageCredential::Bearer(source) = &self.credential else {
            return self.send_once(call, &url, None, &what).await;
        };
        let token = source.token().await.map_err(Failure::Token)?;
        match self.send_once(call, &url, Some(&token), &what).await {
            Err(Failure::Service(e)) if matches!(e.status, 401 | 403) => {
                // A managed identity's token can be refused after a role change or identity
                // swap while still unexpired; a fresh one may be accepted (seed brief).
                tracing::debug!(request = %what, status = e.status, "bearer token refused; retrying once with a fresh token");
                source.invalidate();
                let token = source.token().await.map_err(Failure::Token)?;
                self.send_once(call, &url, Some(&token), &what).await
            }
            other => other,
        }
    }

    async fn send_once(
        &self,
        call: &Call,
        url: &reqwest::Url,
        bearer: Option<&str>,
        what: &str,
    ) -> Result<Reply, Failure> {
        let now = self.clock.now();
        let mut headers: Vec<(&str, String)> = vec![
            ("x-ms-version", STORAGE_API_VERSION.to_string()),
            ("x-ms-date", httpdate::fmt_http_date(to_system_time(now))),
        ];
        headers.extend(call.headers.iter().map(|(n, v)| (*n, v.clone())));
        let mut request = self
            .http
            .request(call.method.clone(), url.clone())
            .timeout(self.timeout);
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        match &self.credential {
            StorageCredential::SharedKey(key) => {
                let auth = key.authorization(call.method.as_str(), url, &headers, call.body.len());
                request = request.header("authorization", auth);
            }
            StorageCredential::Bearer(_) => {
                request = request.header(
                    "authorization",
                    format!("Bearer {}", bearer.unwrap_or_default()),
                );
            }
            StorageCredential::Sas => {}
        }
        if !call.body.is_empty() {
            request = request.body(call.body.clone());
        } else if matches!(call.method, reqwest::Method::PUT | reqwest::Method::POST) {
            // The service wants a Content-Length on every PUT/POST (Azurite answers 400 without
            // one, Azure 411), and reqwest sends none for an empty body.
            request = request.header(reqwest::header::CONTENT_LENGTH, "0");
        }
        let transport = |e: reqwest::Error| Failure::Transport {
            detail: if e.is_timeout() {
                format!("{what}: no answer within {:?}", self.timeout)
            } else {
                // without_url: reqwest would print the URL with its SAS signature.
                format!("{what}: {}", error_chain(&e.without_url()))
            },
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport)?.to_vec();
        tracing::debug!(request = %what, status, "storage request");
        if (200..300).contains(&status) {
            return Ok(Reply { headers, body });
        }
        let header = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (body_code, message) = xml::parse_error(&body);
        // Not a storage error document (a proxy's page, an empty 400): show its start instead.
        let message = message.or_else(|| {
            let text = String::from_utf8_lossy(&body);
            let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
            Some(line.chars().take(120).collect())
        });
        Err(Failure::Service(ServiceError {
            status,
            code: header("x-ms-error-code").or(body_code),
            message,
            request_id: header("x-ms-request-id"),
            retry_after: header("retry-after").and_then(|v| parse_retry_after(&v, now)),
            what: what.to_string(),
        }))
    }
}

fn to_system_time(t: Timestamp) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(t.unix_millis()).unwrap_or(0))
}

/// `Retry-After` as delay-seconds or an HTTP date (relative to `now`).
fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value.trim()).ok()?;
    Some(
        at.duration_since(to_system_time(now))
            .unwrap_or(Duration::ZERO),
    )
}

/// Unix milliseconds of an RFC 1123 date as the services write them (`Fri, 09 Oct 2009 21:04:30 GMT`).
pub(crate) fn parse_time(value: &str) -> Option<Timestamp> {
    let t = httpdate::parse_http_date(value.trim()).ok()?;
    let ms = t.duration_since(UNIX_EPOCH).ok()?.as_millis();
    Some(Timestamp::from_unix_millis(i64::try_from(ms).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: Option<&str>, retry_after: Option<Duration>) -> Failure {
        Failure::Service(ServiceError {
            status,
            code: code.map(str::to_string),
            message: Some("msg".to_string()),
            request_id: None,
            retry_after,
            what: "GET http://x/q?sig=REDACTED".to_string(),
        })
    }

    #[test]
    fn generic_classification() {
        assert!(
            matches!(service(403, Some("AuthenticationFailed"), None).class(), Class::Unauthorized(d) if d.contains("AuthenticationFailed"))
        );
        assert!(matches!(
            service(401, None, None).class(),
            Class::Unauthorized(_)
        ));
        assert!(
            matches!(service(503, Some("ServerBusy"), None).class(), Class::Throttled(d) if d == Duration::from_secs(1))
        );
        assert!(
            matches!(service(429, None, Some(Duration::from_secs(7))).class(), Class::Throttled(d) if d == Duration::from_secs(7))
        );
        for s in [500, 502, 504, 408] {
            assert!(
                matches!(service(s, None, None).class(), Class::Transient(_)),
                "{s}"
            );
        }
        assert!(matches!(
            service(400, Some("InvalidXmlDocument"), None).class(),
            Class::Rejected(_)
        ));
        assert!(matches!(
            service(413, None, None).class(),
            Class::Rejected(_)
        ));
    }

    #[test]
    fn retry_after_forms() {
        let now = Timestamp::from_unix_secs(1_255_122_260); // 10 s before the date below
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Fri, 09 Oct 2009 21:04:30 GMT", now),
            Some(Duration::from_secs(10))
        );
        let later = Timestamp::from_unix_secs(2_000_000_000);
        assert_eq!(
            parse_retry_after("Fri, 09 Oct 2009 21:04:30 GMT", later),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn times_parse() {
        assert_eq!(
            parse_time("Fri, 09 Oct 2009 21:04:30 GMT").map(Timestamp::unix_millis),
            Some(1_255_122_270_000)
        );
        assert_eq!(parse_time(""), None);
    }
}
