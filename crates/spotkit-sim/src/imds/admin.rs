//! The `/admin` API: drive the emulator over HTTP (no `Metadata` header needed).
//!
//! See the [module docs](super) or `IMDS-EMULATOR.md` for the endpoint list. Bodies are JSON;
//! unknown fields are refused (400) so a typo in a test does not silently do nothing.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::document::{DocumentSettings, http_date};
use super::faults::{Fault, FaultKind};
use super::http::{ImdsEmulator, error_response, json_response};
use super::model::{ApprovalRecord, EventError, EventSource, EventType, ScheduleRequest};
use super::stats::RequestStats;

pub(super) fn routes() -> Router<ImdsEmulator> {
    Router::new()
        .route("/admin/events", get(get_events).post(post_event))
        .route("/admin/events/{id}", axum::routing::delete(delete_event))
        .route("/admin/events/{id}/start", post(start_event))
        .route(
            "/admin/faults",
            get(get_faults).post(post_fault).delete(delete_faults),
        )
        .route("/admin/approvals", get(get_approvals))
        .route("/admin/stats", get(get_stats).delete(delete_stats))
        .route("/admin/settings", get(get_settings).put(put_settings))
}

/// `POST /admin/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventRequestBody {
    /// `EventType`; the five documented names in any case, anything else verbatim.
    #[serde(rename = "type")]
    event_type: String,
    /// Seconds until `NotBefore`; absent or 0 = created Started.
    notice_seconds: Option<f64>,
    /// `Resources`; absent = this VM.
    resources: Option<Vec<String>>,
    /// `Description`; absent = a per-type default.
    description: Option<String>,
    /// `EventSource`: `Platform` (default) or `User`.
    event_source: Option<EventSource>,
    /// `DurationInSeconds`; absent = -1.
    duration_seconds: Option<i64>,
    /// Seconds the event stays Started; absent = per-type default.
    started_for_seconds: Option<f64>,
}

#[derive(Debug, Serialize)]
struct EventCreated {
    event_id: String,
    event_status: &'static str,
    /// RFC 1123, or `""` when created Started.
    not_before: String,
}

/// A fault as sent to and listed by `/admin/faults`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum FaultBody {
    Status { status: u16, count: Option<u32> },
    Garbage { count: Option<u32> },
    Truncated { count: Option<u32> },
    Slow { delay_ms: u64, count: Option<u32> },
}

impl FaultBody {
    fn into_fault(self) -> Result<Fault, String> {
        let (kind, count) = match self {
            FaultBody::Status { status, count } => {
                if !(400..=599).contains(&status) {
                    return Err(format!(
                        "status must be an error status (400..=599), not {status}"
                    ));
                }
                (FaultKind::Status(status), count)
            }
            FaultBody::Garbage { count } => (FaultKind::Garbage, count),
            FaultBody::Truncated { count } => (FaultKind::Truncated, count),
            FaultBody::Slow { delay_ms, count } => {
                (FaultKind::Slow(Duration::from_millis(delay_ms)), count)
            }
        };
        match count {
            Some(0) => Err("count must be at least 1 (omit it for \"until cleared\")".to_owned()),
            count => Ok(Fault {
                kind,
                remaining: count,
            }),
        }
    }

    fn from_fault(fault: Fault) -> Self {
        let count = fault.remaining;
        match fault.kind {
            FaultKind::Status(status) => FaultBody::Status { status, count },
            FaultKind::Garbage => FaultBody::Garbage { count },
            FaultKind::Truncated => FaultBody::Truncated { count },
            FaultKind::Slow(delay) => FaultBody::Slow {
                delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                count,
            },
        }
    }
}

/// `PUT /admin/settings`: absent fields keep their value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    numbers_as_strings: Option<bool>,
    extra_fields: Option<bool>,
}

#[derive(Debug, Serialize)]
struct ApprovalBody {
    event_ids: Vec<String>,
    at_unix_ms: i64,
    body: String,
    accepted: bool,
    error: Option<String>,
}

impl From<ApprovalRecord> for ApprovalBody {
    fn from(record: ApprovalRecord) -> Self {
        Self {
            event_ids: record.event_ids,
            at_unix_ms: record.at.unix_millis(),
            body: record.body,
            accepted: record.accepted,
            error: record.error,
        }
    }
}

#[derive(Debug, Serialize)]
struct StatsBody {
    scheduled_events_gets: u64,
    scheduled_events_posts: u64,
    instance_gets: u64,
    rejected_requests: u64,
    faulted_responses: u64,
    recent_get_times_unix_ms: Vec<i64>,
}

impl From<RequestStats> for StatsBody {
    fn from(stats: RequestStats) -> Self {
        Self {
            scheduled_events_gets: stats.scheduled_events_gets,
            scheduled_events_posts: stats.scheduled_events_posts,
            instance_gets: stats.instance_gets,
            rejected_requests: stats.rejected_requests,
            faulted_responses: stats.faulted_responses,
            recent_get_times_unix_ms: stats
                .recent_get_times
                .iter()
                .map(|at| at.unix_millis())
                .collect(),
        }
    }
}

/// Why an admin request was refused; answered as `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
enum AdminError {
    /// The body is not the JSON this endpoint takes (400).
    #[error("invalid body: {0}")]
    InvalidBody(#[from] serde_json::Error),
    /// A field has a value this endpoint cannot use (400).
    #[error("{0}")]
    InvalidValue(String),
    /// The event named in the path cannot take this operation (404 or 409).
    #[error(transparent)]
    Event(#[from] EventError),
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = match &self {
            AdminError::InvalidBody(_) | AdminError::InvalidValue(_) => StatusCode::BAD_REQUEST,
            AdminError::Event(EventError::NotFound(_)) => StatusCode::NOT_FOUND,
            AdminError::Event(EventError::AlreadyStarted(_)) => StatusCode::CONFLICT,
        };
        error_response(status, &self.to_string())
    }
}

fn to_json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => json_response(status, body),
        Err(error) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}

/// An optional non-negative number of seconds.
fn seconds(field: &str, value: Option<f64>) -> Result<Option<Duration>, AdminError> {
    value
        .map(|secs| {
            Duration::try_from_secs_f64(secs).map_err(|_| {
                AdminError::InvalidValue(format!(
                    "{field} must be a finite number >= 0, not {secs}"
                ))
            })
        })
        .transpose()
}

async fn get_events(State(emulator): State<ImdsEmulator>) -> Response {
    json_response(StatusCode::OK, emulator.document_json())
}

async fn post_event(
    State(emulator): State<ImdsEmulator>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let request = build_schedule_request(&body)?;
    let (id, not_before) = emulator.with_model(|model, now| {
        let not_before = request.not_before(now);
        (model.schedule(request, now), not_before)
    });
    tracing::info!(%id, ?not_before, "admin scheduled an event");
    let created = EventCreated {
        event_id: id.to_string(),
        event_status: if not_before.is_some() {
            "Scheduled"
        } else {
            "Started"
        },
        not_before: not_before.map(http_date).unwrap_or_default(),
    };
    Ok(to_json(StatusCode::CREATED, &created))
}

fn build_schedule_request(body: &[u8]) -> Result<ScheduleRequest, AdminError> {
    let body: EventRequestBody = serde_json::from_slice(body)?;
    Ok(ScheduleRequest {
        event_type: EventType::from_name(&body.event_type),
        resources: body.resources,
        notice: seconds("notice_seconds", body.notice_seconds)?,
        description: body.description,
        event_source: body.event_source.unwrap_or_default(),
        duration_seconds: body.duration_seconds.unwrap_or(-1),
        started_for: seconds("started_for_seconds", body.started_for_seconds)?,
    })
}

async fn delete_event(
    State(emulator): State<ImdsEmulator>,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    emulator.cancel(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn start_event(
    State(emulator): State<ImdsEmulator>,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    emulator.force_start(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_faults(State(emulator): State<ImdsEmulator>) -> Response {
    let faults: Vec<FaultBody> = emulator
        .pending_faults()
        .into_iter()
        .map(FaultBody::from_fault)
        .collect();
    to_json(StatusCode::OK, &faults)
}

async fn post_fault(
    State(emulator): State<ImdsEmulator>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let fault = serde_json::from_slice::<FaultBody>(&body)?
        .into_fault()
        .map_err(AdminError::InvalidValue)?;
    tracing::info!(?fault, "admin queued a fault");
    let pending = emulator.with_model(|model, _| {
        model.push_fault(fault);
        model.pending_faults().len()
    });
    Ok(to_json(
        StatusCode::CREATED,
        &serde_json::json!({ "pending_faults": pending }),
    ))
}

async fn delete_faults(State(emulator): State<ImdsEmulator>) -> Response {
    emulator.clear_faults();
    StatusCode::NO_CONTENT.into_response()
}

async fn get_approvals(State(emulator): State<ImdsEmulator>) -> Response {
    let approvals: Vec<ApprovalBody> = emulator
        .approvals()
        .into_iter()
        .map(ApprovalBody::from)
        .collect();
    to_json(StatusCode::OK, &approvals)
}

async fn get_stats(State(emulator): State<ImdsEmulator>) -> Response {
    to_json(StatusCode::OK, &StatsBody::from(emulator.stats()))
}

async fn delete_stats(State(emulator): State<ImdsEmulator>) -> Response {
    emulator.reset_stats();
    StatusCode::NO_CONTENT.into_response()
}

async fn get_settings(State(emulator): State<ImdsEmulator>) -> Response {
    to_json(StatusCode::OK, &emulator.settings())
}

async fn put_settings(
    State(emulator): State<ImdsEmulator>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let update: SettingsBody = serde_json::from_slice(&body)?;
    let settings = emulator.with_model(|model, _| {
        let current = model.settings();
        let updated = DocumentSettings {
            numbers_as_strings: update
                .numbers_as_strings
                .unwrap_or(current.numbers_as_strings),
            extra_fields: update.extra_fields.unwrap_or(current.extra_fields),
        };
        model.set_settings(updated);
        updated
    });
    Ok(to_json(StatusCode::OK, &settings))
}
