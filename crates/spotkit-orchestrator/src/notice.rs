//! The orchestrator's HTTP endpoint for agents and operators (loopback by default).
//!
//! - `POST /notice`: an agent's notice (`spotkit agent --notify-url`), the JSON of docs/agent.md
//!   (`vm_name`, `event_type`, `not_before`, `observed_at`; other fields are ignored). 202 when
//!   queued for the pool, 400 naming what is wrong otherwise.
//! - `POST /heartbeat`: `{"vm_name","healthy","at"}` (`spotkit agent --heartbeat-url`).
//! - `GET /status`: the pool's [`StatusView`] as JSON.
//!
//! Parsing is tolerant where it costs nothing (unknown fields, a missing `observed_at`, which is
//! then the time of arrival) and strict where a wrong guess would mislead the pool (an unknown
//! event type or an unreadable timestamp are refused, never ignored).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
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
}
