//! The HTTP facade: axum routes over a shared [`ImdsModel`], time from an `Arc<dyn Clock>`.
//!
//! Handlers read the clock once on arrival, lock the model, call one pure operation and unlock
//! before any `.await`, so the model never sees a half-done request.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use spotkit_cloud::{Clock, SystemClock};
use spotkit_core::Timestamp;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::document::{DocumentSettings, EventsSnapshot};
use super::faults::Fault;
use super::ids::EventId;
use super::model::{
    ApprovalRecord, EventError, ImdsConfig, ImdsModel, MetadataRequest, ScheduleRequest,
    ScheduledEventsReply,
};
use super::stats::RequestStats;

/// The newest Scheduled Events api-versions, listed in the "api-version was not specified" error.
pub const SCHEDULED_EVENTS_API_VERSIONS: &[&str] = &["2020-07-01", "2019-08-01", "2019-04-01"];

/// The newest instance-metadata api-versions, listed in the "api-version was not specified" error.
pub const INSTANCE_API_VERSIONS: &[&str] = &["2025-04-07", "2024-07-17", "2024-03-15"];

/// One emulated VM's IMDS: a shared model, a clock, and the routes that expose them.
///
/// Cloning is cheap and every clone shares the same state, so a test can keep one clone for
/// direct calls while another serves HTTP.
#[derive(Clone)]
pub struct ImdsEmulator {
    shared: Arc<Shared>,
}

struct Shared {
    model: Arc<Mutex<ImdsModel>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ImdsEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImdsEmulator")
            .field("vm_name", &self.lock().config().vm_name)
            .finish_non_exhaustive()
    }
}

impl ImdsEmulator {
    /// An emulator for the VM in `config`, reading time from `clock`.
    #[must_use]
    pub fn new(config: ImdsConfig, clock: Arc<dyn Clock>) -> Self {
        Self::from_shared(Arc::new(Mutex::new(ImdsModel::new(config))), clock)
    }

    /// An emulator over a model someone else also holds (the spot-cloud simulator keeps one
    /// per simulated VM and schedules its evictions on it).
    #[must_use]
    pub fn from_shared(model: Arc<Mutex<ImdsModel>>, clock: Arc<dyn Clock>) -> Self {
        Self {
            shared: Arc::new(Shared { model, clock }),
        }
    }

    /// Answers one `/metadata/...` request as [`ImdsEmulator::router`] would, for facades that
    /// mount this VM's IMDS under a prefix of their own (`path` is the part from `/metadata`).
    pub async fn handle_metadata(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        query: Option<String>,
        body: Bytes,
    ) -> Response {
        let state = State(self.clone());
        match path {
            "/metadata/scheduledevents" if method == Method::GET => {
                get_scheduled_events(state, headers, RawQuery(query)).await
            }
            "/metadata/scheduledevents" if method == Method::POST => {
                post_scheduled_events(state, headers, RawQuery(query), body).await
            }
            "/metadata/instance" if method == Method::GET => {
                get_instance(state, headers, RawQuery(query)).await
            }
            "/metadata/identity/oauth2/token" if method == Method::GET => {
                get_identity_token(state, headers, RawQuery(query)).await
            }
            "/metadata/scheduledevents"
            | "/metadata/instance"
            | "/metadata/identity/oauth2/token" => StatusCode::METHOD_NOT_ALLOWED.into_response(),
            _ => {
                let uri = path.parse::<Uri>().unwrap_or_default();
                not_found(state, uri, headers).await
            }
        }
    }

    /// The clock this emulator reads.
    #[must_use]
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.clock
    }

    /// The clock's current time.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    /// Locks the model. A panic while locked cannot leave it half-updated in a way that matters
    /// to a test double, so a poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, ImdsModel> {
        self.shared
            .model
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `operation` on the model with the current time (read before locking). For anything
    /// the convenience methods below do not cover; do not block inside it.
    pub fn with_model<R>(&self, operation: impl FnOnce(&mut ImdsModel, Timestamp) -> R) -> R {
        let now = self.now();
        operation(&mut self.lock(), now)
    }

    /// Creates an event now; see [`ImdsModel::schedule`].
    pub fn schedule(&self, request: ScheduleRequest) -> EventId {
        self.with_model(|model, now| model.schedule(request, now))
    }

    /// Cancels a `Scheduled` event now; see [`ImdsModel::cancel`].
    ///
    /// # Errors
    /// As [`ImdsModel::cancel`].
    pub fn cancel(&self, id: &str) -> Result<(), EventError> {
        self.with_model(|model, now| model.cancel(id, now))
    }

    /// Starts an event now; see [`ImdsModel::force_start`].
    ///
    /// # Errors
    /// As [`ImdsModel::force_start`].
    pub fn force_start(&self, id: &str) -> Result<(), EventError> {
        self.with_model(|model, now| model.force_start(id, now))
    }

    /// The document as the VM would see it now (no request is counted, no fault consumed).
    #[must_use]
    pub fn snapshot(&self) -> EventsSnapshot {
        self.with_model(|model, now| model.snapshot(now))
    }

    /// The document's JSON as the VM would see it now (no request counted, no fault consumed).
    #[must_use]
    pub fn document_json(&self) -> String {
        self.with_model(|model, now| model.document_json(now))
    }

    /// Every approval received so far, oldest first.
    #[must_use]
    pub fn approvals(&self) -> Vec<ApprovalRecord> {
        self.lock().approvals().to_vec()
    }

    /// A copy of the request counters.
    #[must_use]
    pub fn stats(&self) -> RequestStats {
        self.lock().stats()
    }

    /// Zeroes the request counters.
    pub fn reset_stats(&self) {
        self.lock().reset_stats();
    }

    /// Queues a fault for upcoming `GET /metadata/scheduledevents` requests.
    pub fn push_fault(&self, fault: Fault) {
        self.lock().push_fault(fault);
    }

    /// Drops every pending fault.
    pub fn clear_faults(&self) {
        self.lock().clear_faults();
    }

    /// Pending faults, next first.
    #[must_use]
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.lock().pending_faults()
    }

    /// Current document settings.
    #[must_use]
    pub fn settings(&self) -> DocumentSettings {
        self.lock().settings()
    }

    /// Replaces the document settings.
    pub fn set_settings(&self, settings: DocumentSettings) {
        self.lock().set_settings(settings);
    }

    /// The `/metadata` and `/admin` routes over this emulator's state.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/metadata/scheduledevents",
                get(get_scheduled_events).post(post_scheduled_events),
            )
            .route("/metadata/instance", get(get_instance))
            .route("/metadata/identity/oauth2/token", get(get_identity_token))
            .merge(super::admin::routes())
            .fallback(not_found)
            .with_state(self.clone())
    }

    /// Serves [`ImdsEmulator::router`] on `listener` until the task is dropped or aborted.
    ///
    /// # Errors
    /// Only if accepting connections fails fatally.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Binds `127.0.0.1:0` and serves there on a new task; returns the address bound.
    /// Keep a clone of the emulator for direct calls; abort the handle to stop serving.
    ///
    /// # Errors
    /// If the port cannot be bound.
    pub async fn spawn_on_loopback(
        self,
    ) -> std::io::Result<(SocketAddr, JoinHandle<std::io::Result<()>>)> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        tracing::debug!(%address, "IMDS emulator listening");
        Ok((address, tokio::spawn(self.serve(listener))))
    }
}

/// An emulator for `config` on the system clock, served on `127.0.0.1:0` from a new task.
/// Use [`ImdsEmulator::spawn_on_loopback`] instead to keep a handle for direct calls.
///
/// # Errors
/// If the port cannot be bound.
pub async fn spawn_on_loopback(
    config: ImdsConfig,
) -> std::io::Result<(SocketAddr, JoinHandle<std::io::Result<()>>)> {
    ImdsEmulator::new(config, Arc::new(SystemClock))
        .spawn_on_loopback()
        .await
}

/// A JSON response; IMDS labels its JSON `application/json; charset=utf-8`.
pub(super) fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// `{"error": message}` with `status`.
pub(super) fn error_response(status: StatusCode, message: &str) -> Response {
    json_response(status, serde_json::json!({ "error": message }).to_string())
}

/// Why IMDS refuses a `/metadata` request with 400, in its words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
enum MetadataRefusal {
    /// No `Metadata: true` header: the guard against server-side request forgery.
    #[error("Bad request. Required metadata header not specified")]
    MissingMetadataHeader,
    /// A proxy was involved, which IMDS does not support.
    #[error("Bad request. Requests with an X-Forwarded-For header are not accepted")]
    ForwardedFor,
    /// No (or an empty) `api-version` query parameter.
    #[error(
        "Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds"
    )]
    MissingApiVersion {
        /// Listed in the answer, as IMDS does.
        newest_versions: &'static [&'static str],
    },
}

impl IntoResponse for MetadataRefusal {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let body = match self {
            MetadataRefusal::MissingApiVersion { newest_versions } => {
                serde_json::json!({ "error": message, "newest-versions": newest_versions })
            }
            MetadataRefusal::MissingMetadataHeader | MetadataRefusal::ForwardedFor => {
                serde_json::json!({ "error": message })
            }
        };
        json_response(StatusCode::BAD_REQUEST, body.to_string())
    }
}

/// The header checks IMDS applies to every `/metadata` request.
fn check_headers(headers: &HeaderMap) -> Result<(), MetadataRefusal> {
    // IMDS wants the literal lower-case `true`.
    let has_metadata_true = headers
        .get_all("metadata")
        .iter()
        .any(|value| value.as_bytes() == b"true");
    if !has_metadata_true {
        return Err(MetadataRefusal::MissingMetadataHeader);
    }
    if headers.contains_key("x-forwarded-for") {
        return Err(MetadataRefusal::ForwardedFor);
    }
    Ok(())
}

/// The header checks, then a non-empty `api-version` query parameter (any value: clients are
/// tested on what they send, and IMDS accepts many versions).
fn check_metadata_request(
    headers: &HeaderMap,
    query: Option<&str>,
    newest_versions: &'static [&'static str],
) -> Result<(), MetadataRefusal> {
    check_headers(headers)?;
    let has_api_version = query.unwrap_or_default().split('&').any(|pair| {
        pair.split_once('=')
            .is_some_and(|(key, value)| key == "api-version" && !value.is_empty())
    });
    if has_api_version {
        Ok(())
    } else {
        Err(MetadataRefusal::MissingApiVersion { newest_versions })
    }
}

async fn get_scheduled_events(
    State(emulator): State<ImdsEmulator>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let now = emulator.now();
    if let Err(refusal) =
        check_metadata_request(&headers, query.as_deref(), SCHEDULED_EVENTS_API_VERSIONS)
    {
        emulator
            .lock()
            .record_rejected(MetadataRequest::ScheduledEventsGet, now);
        return refusal.into_response();
    }
    let reply = emulator.lock().get_scheduled_events(now);
    if !matches!(reply, ScheduledEventsReply::Document(_)) {
        tracing::debug!(?reply, "answering with an injected fault");
    }
    match reply {
        ScheduledEventsReply::Document(body) | ScheduledEventsReply::Truncated(body) => {
            json_response(StatusCode::OK, body)
        }
        ScheduledEventsReply::Status { status, body } => json_response(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        ),
        ScheduledEventsReply::Garbage(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
            body,
        )
            .into_response(),
        ScheduledEventsReply::Delayed(delay) => {
            // Wait on the emulator's clock, so a simulated clock controls the delay too.
            emulator.clock().sleep_until(now.plus(delay)).await;
            json_response(StatusCode::OK, emulator.document_json())
        }
    }
}

async fn post_scheduled_events(
    State(emulator): State<ImdsEmulator>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let now = emulator.now();
    if let Err(refusal) =
        check_metadata_request(&headers, query.as_deref(), SCHEDULED_EVENTS_API_VERSIONS)
    {
        emulator
            .lock()
            .record_rejected(MetadataRequest::ScheduledEventsPost, now);
        return refusal.into_response();
    }
    let outcome = emulator.lock().post_scheduled_events(&body, now);
    match outcome {
        Ok(ids) => {
            tracing::debug!(?ids, "approval accepted");
            StatusCode::OK.into_response()
        }
        Err(error) => {
            tracing::debug!(%error, "approval refused");
            error_response(StatusCode::BAD_REQUEST, &format!("Bad request. {error}"))
        }
    }
}

async fn get_instance(
    State(emulator): State<ImdsEmulator>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let now = emulator.now();
    if let Err(refusal) = check_metadata_request(&headers, query.as_deref(), INSTANCE_API_VERSIONS)
    {
        emulator
            .lock()
            .record_rejected(MetadataRequest::InstanceGet, now);
        return refusal.into_response();
    }
    let document = emulator.lock().get_instance();
    json_response(StatusCode::OK, document.to_string())
}

/// Unknown paths: 404, except that `/metadata/...` first demands its headers, as IMDS does.
async fn not_found(State(emulator): State<ImdsEmulator>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if (path == "/metadata" || path.starts_with("/metadata/"))
        && let Err(refusal) = check_headers(&headers)
    {
        let now = emulator.now();
        emulator.lock().record_rejected(MetadataRequest::Other, now);
        return refusal.into_response();
    }
    error_response(StatusCode::NOT_FOUND, "Not found")
}

/// A fake JWT: `{"typ":"JWT","alg":"none"}` . `{"sub":"spotkit-sim"}` . a VM-specific tail.
/// Nothing checks it; clients only pass it along as a bearer token.
fn fake_access_token(vm_id: &str, expires_on: i64) -> String {
    format!(
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.eyJzdWIiOiJzcG90a2l0LXNpbSJ9.{}{expires_on:x}",
        vm_id.replace('-', "")
    )
}

fn identity_error(description: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        serde_json::json!({ "error": "invalid_request", "error_description": description })
            .to_string(),
    )
}

/// `GET /metadata/identity/oauth2/token`: a managed-identity token shaped like IMDS's (all
/// values strings, `expires_in` 3599), for whatever `resource` is asked.
async fn get_identity_token(
    State(emulator): State<ImdsEmulator>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let now = emulator.now();
    let refuse = |description: &str| {
        emulator.lock().record_rejected(MetadataRequest::Other, now);
        identity_error(description)
    };
    if check_headers(&headers).is_err() {
        return refuse("Required metadata header not specified");
    }
    let pairs: Vec<(String, String)> = query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_owned(), percent_decode(value)))
        .collect();
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.clone())
    };
    if value("api-version").is_none() {
        return refuse("Required query variable 'api-version' is missing");
    }
    let Some(resource) = value("resource") else {
        return refuse("Required audience parameter not specified");
    };
    let not_before = now.unix_millis().div_euclid(1000);
    let expires_on = not_before + 3599;
    let vm_id = emulator.lock().config().vm_id.clone();
    let body = serde_json::json!({
        "access_token": fake_access_token(&vm_id, expires_on),
        "refresh_token": "",
        "expires_in": "3599",
        "expires_on": expires_on.to_string(),
        "not_before": not_before.to_string(),
        "resource": resource,
        "token_type": "Bearer",
    });
    json_response(StatusCode::OK, body.to_string())
}

/// `%XX` and `+` decoding of one query value (enough for resource URLs).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        index += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
