//! The orchestrator's HTTP endpoint for agents and operators (loopback by default).
//!
//! - `POST /notice`: an agent's notice (`spotkit agent --notify-url`), the JSON of docs/agent.md
//!   (`vm_name`, `event_type`, `not_before`, `observed_at`; other fields are ignored). 202 when
//!   queued for the pool, 400 naming what is wrong otherwise.
//! - `POST /heartbeat`: `{"vm_name","healthy","at"}` (`spotkit agent --heartbeat-url`).
//! - `GET /status`: the pool's [`StatusView`] as JSON.
//!
//! With a token ([`require_bearer_token`]), every route answers 401 unless the request carries
//! `Authorization: Bearer TOKEN`: the endpoint leaves loopback in production (agents on the spot
//! VMs reach it over the VNet), and an unauthenticated `/notice` would let anyone there make the
//! pool replace VMs.
//!
//! Parsing is tolerant where it costs nothing (unknown fields, a missing `observed_at`, which is
//! then the time of arrival) and strict where a wrong guess would mislead the pool (an unknown
//! event type or an unreadable timestamp are refused, never ignored).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use spotkit_cloud::Clock;
use spotkit_core::events::EventType;
use tokio::sync::{mpsc, watch};

use crate::runner::AgentReport;
use crate::view::{StatusView, parse_rfc3339};

#[derive(Clone)]
struct Endpoint {
    reports: mpsc::Sender<AgentReport>,
    status: watch::Receiver<StatusView>,
    clock: Arc<dyn Clock>,
}

#[derive(Deserialize)]
struct NoticeBody {
    vm_name: Option<String>,
    event_type: Option<String>,
    not_before: Option<String>,
    observed_at: Option<String>,
}

#[derive(Deserialize)]
struct HeartbeatBody {
    vm_name: Option<String>,
    healthy: Option<bool>,
}

/// The router: reports go to `reports` (the [`PoolRunner`](crate::PoolRunner)'s channel),
/// `GET /status` answers `status` ([`PoolRunner::view`](crate::PoolRunner::view)); `clock`
/// stamps notices that carry no `observed_at`.
pub fn notice_router(
    reports: mpsc::Sender<AgentReport>,
    status: watch::Receiver<StatusView>,
    clock: Arc<dyn Clock>,
) -> Router {
    Router::new()
        .route("/notice", post(notice))
        .route("/heartbeat", post(heartbeat))
        .route("/status", get(status_handler))
        .with_state(Endpoint {
            reports,
            status,
            clock,
        })
}

/// A shared secret agents and operators present to the endpoint. Its `Debug` never shows the
/// value, so it can sit in structs that get logged.
#[derive(Clone)]
pub struct EndpointToken(Arc<str>);

impl EndpointToken {
    /// The token, trimmed of surrounding whitespace (token files usually end with a newline).
    ///
    /// # Errors
    /// When it is empty or shorter than 16 characters: a guessable token protects nothing.
    pub fn new(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.len() < 16 {
            return Err(format!(
                "the endpoint token is {} characters long; use at least 16 random ones \
                 (for example `openssl rand -hex 32`)",
                value.len()
            ));
        }
        Ok(Self(value.into()))
    }

    /// The `Authorization` header value for requests to the endpoint.
    #[must_use]
    pub fn header_value(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Whether `presented` (an `Authorization` header value) carries this token. The comparison
    /// takes the same time wherever the first difference is, so timing does not leak a prefix.
    fn accepts(&self, presented: &[u8]) -> bool {
        let Some(candidate) = presented.strip_prefix(b"Bearer ") else {
            return false;
        };
        let expected = self.0.as_bytes();
        candidate.len() == expected.len()
            && candidate
                .iter()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl std::fmt::Debug for EndpointToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EndpointToken(REDACTED)")
    }
}

/// Wraps `router` so that every route requires `Authorization: Bearer TOKEN`; others get 401
/// with `WWW-Authenticate: Bearer` and nothing reaches the pool.
pub fn require_bearer_token(router: Router, token: EndpointToken) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        token,
        check_bearer_token,
    ))
}

async fn check_bearer_token(
    State(token): State<EndpointToken>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(axum::http::HeaderValue::as_bytes);
    if presented.is_some_and(|p| token.accepts(p)) {
        return next.run(request).await;
    }
    let why = if presented.is_some() {
        "the bearer token does not match the orchestrator's"
    } else {
        "this endpoint needs Authorization: Bearer TOKEN (the orchestrator's endpoint token)"
    };
    tracing::warn!(path = %request.uri().path(), "refused an unauthenticated request: {why}");
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({ "error": why })),
    )
        .into_response()
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": message.into() })),
    )
        .into_response()
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| {
        format!("the body is not a {what} JSON object ({e}); see docs/orchestrator.md")
    })
}

fn required(v: Option<String>, field: &str) -> Result<String, String> {
    v.map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{field} is missing or empty"))
}

async fn forward(endpoint: &Endpoint, report: AgentReport) -> Response {
    match endpoint.reports.send(report).await {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({ "accepted": true }))).into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "the pool is shutting down; retry against its successor" })),
        )
            .into_response(),
    }
}

async fn notice(State(endpoint): State<Endpoint>, body: axum::body::Bytes) -> Response {
    let parsed = (|| {
        let b: NoticeBody = parse_json(&body, "notice")?;
        let vm_name = required(b.vm_name, "vm_name")?;
        let type_text = required(b.event_type, "event_type")?;
        let event_type = EventType::parse(&type_text).ok_or_else(|| {
            format!(
                "event_type {type_text:?} is not one of Freeze, Reboot, Redeploy, Preempt, Terminate"
            )
        })?;
        let time = |field: &str, v: Option<String>| match v.filter(|s| !s.trim().is_empty()) {
            None => Ok(None),
            Some(s) => parse_rfc3339(&s).map(Some).ok_or_else(|| {
                format!("{field} {s:?} is not an RFC 3339 time like 2026-01-01T00:00:00Z")
            }),
        };
        let not_before = time("not_before", b.not_before)?;
        let observed_at =
            time("observed_at", b.observed_at)?.unwrap_or_else(|| endpoint.clock.now());
        Ok::<_, String>(AgentReport::Notice {
            vm_name,
            event_type,
            not_before,
            observed_at,
        })
    })();
    match parsed {
        Ok(report) => {
            tracing::info!(?report, "agent notice");
            forward(&endpoint, report).await
        }
        Err(message) => bad_request(message),
    }
}

async fn heartbeat(State(endpoint): State<Endpoint>, body: axum::body::Bytes) -> Response {
    let parsed = (|| {
        let b: HeartbeatBody = parse_json(&body, "heartbeat")?;
        let vm_name = required(b.vm_name, "vm_name")?;
        let healthy = b
            .healthy
            .ok_or_else(|| "healthy is missing (true or false)".to_string())?;
        Ok::<_, String>(AgentReport::Heartbeat { vm_name, healthy })
    })();
    match parsed {
        Ok(report) => forward(&endpoint, report).await,
        Err(message) => bad_request(message),
    }
}

async fn status_handler(State(endpoint): State<Endpoint>) -> Json<StatusView> {
    Json(endpoint.status.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use spotkit_cloud::SystemClock;
    use spotkit_core::Timestamp;
    use spotkit_core::orchestrator::{PoolMachine, PoolSpec, Target};

    async fn serve() -> (
        String,
        mpsc::Receiver<AgentReport>,
        watch::Sender<StatusView>,
    ) {
        let spec = PoolSpec::new("p", Target::Vms(1), vec![]);
        let now = Timestamp::from_unix_secs(1_767_225_600);
        let view = StatusView::build(
            &spec,
            &PoolMachine::new(spec.clone(), now, 1).status(),
            &[],
            now,
        );
        let (keep, status) = watch::channel(view);
        let (tx, rx) = mpsc::channel(8);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = notice_router(tx, status, Arc::new(SystemClock));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), rx, keep)
    }

    async fn post(url: &str, body: &str) -> (u16, String) {
        let r = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    #[tokio::test]
    async fn accepts_the_agents_notice_and_refuses_malformed_ones_clearly() {
        let (base, mut rx, _status) = serve().await;
        let url = format!("{base}/notice");
        let (code, _) = post(
            &url,
            r#"{"vm_name":"p-0","event_id":"E1","event_type":"Preempt","not_before":"2026-01-01T00:00:30Z","observed_at":"2026-01-01T00:00:00Z","drain_deadline":null,"extra":1}"#,
        )
        .await;
        assert_eq!(code, 202);
        assert_eq!(
            rx.recv().await.unwrap(),
            AgentReport::Notice {
                vm_name: "p-0".into(),
                event_type: EventType::Preempt,
                not_before: Some(Timestamp::from_unix_secs(1_767_225_630)),
                observed_at: Timestamp::from_unix_secs(1_767_225_600),
            }
        );
        for (body, says) in [
            ("not json", "not a notice JSON object"),
            (r#"{"event_type":"Preempt"}"#, "vm_name is missing"),
            (r#"{"vm_name":"a","event_type":"Explode"}"#, "is not one of"),
            (
                r#"{"vm_name":"a","event_type":"Preempt","not_before":"soon"}"#,
                "is not an RFC 3339 time",
            ),
        ] {
            let (code, text) = post(&url, body).await;
            assert_eq!(code, 400, "{body}");
            assert!(text.contains(says), "{body}: {text}");
        }
        let (code, _) = post(
            &format!("{base}/heartbeat"),
            r#"{"vm_name":"p-0","healthy":false,"at":"x"}"#,
        )
        .await;
        assert_eq!(code, 202);
        assert_eq!(
            rx.recv().await.unwrap(),
            AgentReport::Heartbeat {
                vm_name: "p-0".into(),
                healthy: false
            }
        );
        let (code, text) = post(&format!("{base}/heartbeat"), r#"{"vm_name":"p-0"}"#).await;
        assert_eq!((code, text.contains("healthy is missing")), (400, true));
        let status: StatusView = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("{base}/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(status.pool, "p");
    }

    #[tokio::test]
    async fn with_a_token_only_requests_that_carry_it_reach_the_pool() {
        let spec = PoolSpec::new("p", Target::Vms(1), vec![]);
        let now = Timestamp::from_unix_secs(1_767_225_600);
        let view = StatusView::build(
            &spec,
            &PoolMachine::new(spec.clone(), now, 1).status(),
            &[],
            now,
        );
        let (_keep, status) = watch::channel(view);
        let (tx, mut rx) = mpsc::channel(8);
        let token = EndpointToken::new("  0123456789abcdef-secret\n").unwrap();
        assert_eq!(format!("{token:?}"), "EndpointToken(REDACTED)");
        let app = require_bearer_token(
            notice_router(tx, status, Arc::new(SystemClock)),
            token.clone(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let notice = r#"{"vm_name":"p-0","event_type":"Preempt"}"#;
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Bearer 0123456789abcdef-secreT"),
            Some("0123456789abcdef-secret"),
            Some("Basic 0123456789abcdef-secret"),
        ] {
            for (method, path) in [
                ("POST", "/notice"),
                ("POST", "/heartbeat"),
                ("GET", "/status"),
            ] {
                let mut request = http.request(method.parse().unwrap(), format!("{base}{path}"));
                if let Some(a) = auth {
                    request = request.header("authorization", a);
                }
                let r = request
                    .header("content-type", "application/json")
                    .body(notice)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 401, "{auth:?} {path}");
                assert_eq!(r.headers()["www-authenticate"], "Bearer");
            }
        }
        assert!(rx.try_recv().is_err(), "a refused request reached the pool");
        let r = http
            .post(format!("{base}/notice"))
            .header("authorization", token.header_value())
            .body(notice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        assert!(matches!(rx.recv().await, Some(AgentReport::Notice { .. })));
        let r = http
            .get(format!("{base}/status"))
            .header("authorization", token.header_value())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }

    #[test]
    fn short_or_empty_tokens_are_refused_with_what_to_do() {
        for bad in ["", "   ", "short", "123456789012345"] {
            let e = EndpointToken::new(bad).unwrap_err();
            assert!(e.contains("at least 16"), "{e}");
        }
        assert!(EndpointToken::new("1234567890123456").is_ok());
    }
}
