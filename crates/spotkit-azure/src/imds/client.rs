//! The IMDS HTTP client.

use std::sync::Arc;
use std::time::Duration;

use spotkit_cloud::{Clock, EventSource, EventSourceError};
use spotkit_core::Timestamp;
use spotkit_core::events::{EventId, EventsDocument};

use super::parse::{SkippedEvent, parse_document};

/// The Scheduled Events API version spotkit speaks (adds `DurationInSeconds`).
pub const SCHEDULED_EVENTS_API_VERSION: &str = "2020-07-01";

/// Instance metadata version used to read `compute.name`: old enough to exist on every VM.
const INSTANCE_API_VERSION: &str = "2021-02-01";

/// IMDS allows 5 requests/s per VM; spacing every request this far apart keeps us under 4.8/s.
pub const MIN_REQUEST_SPACING: Duration = Duration::from_millis(210);

/// How to reach IMDS.
#[derive(Clone, Debug)]
pub struct ImdsClientOptions {
    /// Base URL, `http://169.254.169.254` on Azure; a loopback URL in tests.
    pub base_url: String,
    /// Connection-establishment timeout; IMDS is link-local, so a slow connect means it is absent.
    pub connect_timeout: Duration,
}

impl Default for ImdsClientOptions {
    fn default() -> Self {
        Self {
            base_url: "http://169.254.169.254".to_string(),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

/// A client for IMDS Scheduled Events and instance metadata.
///
/// Implements [`EventSource`]. Skipped events are logged at `warn` once per event id and reason
/// change, so an unknown event type seen every second does not flood the log.
pub struct ImdsClient {
    http: reqwest::Client,
    events_url: String,
    instance_url: String,
    clock: Arc<dyn Clock>,
    last_request: tokio::sync::Mutex<Option<Timestamp>>,
    last_skipped: std::sync::Mutex<Vec<SkippedEvent>>,
}

impl std::fmt::Debug for ImdsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImdsClient")
            .field("events_url", &self.events_url)
            .finish_non_exhaustive()
    }
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the IMDS HTTP client: {0}")]
pub struct BuildError(#[source] reqwest::Error);

impl ImdsClient {
    /// A client for the IMDS at `options.base_url`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS backend initialisation).
    pub fn new(options: &ImdsClientOptions, clock: Arc<dyn Clock>) -> Result<Self, BuildError> {
        let http = reqwest::Client::builder()
            // IMDS must never be reached through a proxy (FACTS 1.1).
            .no_proxy()
            .connect_timeout(options.connect_timeout)
            .pool_max_idle_per_host(1)
            .build()
            .map_err(BuildError)?;
        let base = options.base_url.trim_end_matches('/');
        Ok(Self {
            http,
            events_url: format!(
                "{base}/metadata/scheduledevents?api-version={SCHEDULED_EVENTS_API_VERSION}"
            ),
            instance_url: format!("{base}/metadata/instance?api-version={INSTANCE_API_VERSION}"),
            clock,
            last_request: tokio::sync::Mutex::new(None),
            last_skipped: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The Scheduled Events URL polled.
    #[must_use]
    pub fn events_url(&self) -> &str {
        &self.events_url
    }

    /// Waits so that requests stay [`MIN_REQUEST_SPACING`] apart, then claims the slot.
    async fn pace(&self) {
        let mut last = self.last_request.lock().await;
        if let Some(previous) = *last {
            self.clock
                .sleep_until(previous.plus(MIN_REQUEST_SPACING))
                .await;
        }
        *last = Some(self.clock.now());
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
        timeout: Duration,
    ) -> Result<Vec<u8>, EventSourceError> {
        self.pace().await;
        let response = request
            .header("Metadata", "true")
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| transport_error(url, timeout, e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(url, timeout, e))?;
        if !status.is_success() {
            return Err(EventSourceError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).chars().take(200).collect(),
            });
        }
        Ok(body.to_vec())
    }

    /// Reads this VM's name (`compute.name`) from instance metadata.
    ///
    /// # Errors
    /// Transport or status errors, or a document without `compute.name`.
    pub async fn vm_name(&self, timeout: Duration) -> Result<String, EventSourceError> {
        let url = self.instance_url.clone();
        let body = self.send(self.http.get(&url), &url, timeout).await?;
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| EventSourceError::Malformed {
                url: url.clone(),
                detail: e.to_string(),
            })?;
        value
            .pointer("/compute/name")
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| EventSourceError::Malformed {
                url,
                detail: "no compute.name in the instance metadata".to_string(),
            })
    }

    fn log_skipped(&self, skipped: Vec<SkippedEvent>) {
        let mut last = self
            .last_skipped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for skip in &skipped {
            if !last.contains(skip) {
                tracing::warn!(
                    event_id = skip.event_id.as_deref().unwrap_or("-"),
                    "scheduled events: {}; ignoring it",
                    skip.reason
                );
            }
        }
        *last = skipped;
    }
}

fn transport_error(url: &str, timeout: Duration, e: reqwest::Error) -> EventSourceError {
    if e.is_timeout() {
        EventSourceError::Timeout {
            url: url.to_string(),
            timeout,
        }
    } else {
        EventSourceError::Unreachable {
            url: url.to_string(),
            source: Box::new(e),
        }
    }
}

impl EventSource for ImdsClient {
    async fn poll(&self, timeout: Duration) -> Result<EventsDocument, EventSourceError> {
        let url = self.events_url.clone();
        let body = self.send(self.http.get(&url), &url, timeout).await?;
        let parsed = parse_document(&body).map_err(|e| EventSourceError::Malformed {
            url,
            detail: format!(
                "{e} (body starts {:?})",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(80)
                    .collect::<String>()
            ),
        })?;
        self.log_skipped(parsed.skipped);
        Ok(parsed.document)
    }

    async fn approve(&self, events: &[EventId]) -> Result<(), EventSourceError> {
        let url = self.events_url.clone();
        let body = start_requests_body(events);
        self.send(
            self.http
                .post(&url)
                .header("Content-Type", "application/json")
                .body(body),
            &url,
            Duration::from_secs(2),
        )
        .await
        .map(|_| ())
    }
}

/// `{"StartRequests":[{"EventId":"..."}]}`, as in the official bash sample.
#[must_use]
pub fn start_requests_body(events: &[EventId]) -> String {
    let requests: Vec<serde_json::Value> = events
        .iter()
        .map(|id| serde_json::json!({ "EventId": id.as_str() }))
        .collect();
    serde_json::json!({ "StartRequests": requests }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_body_matches_the_official_sample() {
        let sample = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/azure/scheduled-events/scheduled-events-start-request-bash-sample.json"
        ))
        .unwrap();
        let expected: serde_json::Value = serde_json::from_str(&sample).unwrap();
        let ours: serde_json::Value = serde_json::from_str(&start_requests_body(&[EventId::new(
            "f020ba2e-3bc0-4c40-a10b-86575a9eabd5",
        )]))
        .unwrap();
        assert_eq!(ours, expected);
    }
}
