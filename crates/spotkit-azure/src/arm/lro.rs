//! Long-running operations (FACTS.md section 5, "LRO").
//!
//! # Expected flow
//! A PUT, POST or DELETE answers 201 or 202 (sometimes 200) and names a status URL:
//! - `Azure-AsyncOperation`: GET it until its body's `status` is terminal: `Succeeded`, or
//!   `Failed`/`Canceled` with `error {code, message}` ([`ArmError::OperationFailed`]);
//! - else `Location`: GET it until it stops answering 202 (200/201/204 mean done; an error status
//!   is the operation's failure).
//!
//! Each wait honours the latest `Retry-After` (seconds), else [`LroOptions::poll_interval`]; the
//! whole wait is bounded by [`LroOptions::timeout`] on the client's clock. Status URLs are opaque
//! and can be long (clients must accept at least 4 KB); they are absolute and are followed only
//! on the ARM endpoint's own origin (see [`super::ArmClient::resolve`]): a status URL on another
//! host would receive our bearer token, so it is refused rather than trusted.

use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::Deserialize;

use super::client::{ArmClient, parse_json, retry_after};
use super::error::{ArmError, ArmErrorDetail};
use super::throttle::{ComputeOperation, OperationClass};

/// How long-running operations are awaited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LroOptions {
    /// Give up (with [`ArmError::OperationTimeout`]) after this long. Default 30 min: a Spot VM
    /// create is usually done in minutes, but allocation can be slow.
    pub timeout: Duration,
    /// Wait between polls when the service names no `Retry-After`. Default 5 s.
    pub poll_interval: Duration,
    /// Never wait longer than this between polls, whatever `Retry-After` says. Default 60 s.
    pub max_poll_interval: Duration,
}

impl Default for LroOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30 * 60),
            poll_interval: Duration::from_secs(5),
            max_poll_interval: Duration::from_secs(60),
        }
    }
}

/// The body of an `Azure-AsyncOperation` status URL.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AsyncOperationStatus {
    /// `InProgress`, `Succeeded`, `Failed`, `Canceled` (providers may use others while running).
    #[serde(default)]
    pub status: String,
    /// The failure, for `Failed` / `Canceled`.
    #[serde(default)]
    pub error: Option<ArmErrorDetail>,
    /// Operation name (id), if given.
    #[serde(default)]
    pub name: Option<String>,
    /// When it started, if given.
    #[serde(rename = "startTime", default)]
    pub start_time: Option<String>,
    /// When it ended, if given.
    #[serde(rename = "endTime", default)]
    pub end_time: Option<String>,
}

/// Where an operation stands, according to one `Azure-AsyncOperation` status body.
#[derive(Clone, Debug)]
pub enum OperationState {
    /// `InProgress`, or a provider-specific running state: poll again.
    Running,
    /// `Succeeded`.
    Succeeded,
    /// `Failed` or `Canceled`: always [`ArmError::OperationFailed`].
    Ended(ArmError),
}

/// Reads one `Azure-AsyncOperation` status body. Status names are matched without regard to case;
/// an unknown status counts as running, because providers report their own intermediate states.
///
/// # Errors
/// [`ArmError::Malformed`] when the body is not a status object.
pub fn parse_operation_status(body: &[u8]) -> Result<OperationState, ArmError> {
    let op: AsyncOperationStatus = parse_json(body, "Azure-AsyncOperation status")?;
    Ok(match op.status.to_ascii_lowercase().as_str() {
        "succeeded" => OperationState::Succeeded,
        "failed" | "canceled" | "cancelled" => {
            let error = op.error.unwrap_or_default();
            OperationState::Ended(ArmError::OperationFailed {
                status: op.status,
                code: error.code,
                message: error.message,
                details: error.details,
            })
        }
        _ => OperationState::Running,
    })
}

enum Monitor {
    AsyncOperation(String),
    Location(String),
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The class of status polls for an operation of `class`.
fn poll_class(class: &OperationClass) -> OperationClass {
    match class {
        OperationClass::Compute { region, .. } => {
            OperationClass::compute(ComputeOperation::GetOperation, region.as_deref(), None)
        }
        OperationClass::Arm | OperationClass::ArmQuery => OperationClass::Arm,
    }
}

/// Waits for the operation an initial answer (`status`, `headers`) started. Returns at once when
/// the answer names no status URL (the operation completed synchronously).
///
/// # Errors
/// [`ArmError::OperationFailed`] when it ended `Failed`/`Canceled`, [`ArmError::OperationTimeout`]
/// after [`LroOptions::timeout`], [`ArmError::UntrustedUrl`] for a status URL on another origin,
/// and any error of the polls themselves.
pub async fn wait_for_operation(
    client: &ArmClient,
    status: u16,
    headers: &HeaderMap,
    class: &OperationClass,
    options: &LroOptions,
) -> Result<(), ArmError> {
    let monitor = if let Some(url) = header(headers, "azure-asyncoperation") {
        Monitor::AsyncOperation(url)
    } else if status == 202
        && let Some(url) = header(headers, "location")
    {
        Monitor::Location(url)
    } else {
        return Ok(());
    };
    let url = match &monitor {
        Monitor::AsyncOperation(u) | Monitor::Location(u) => u.clone(),
    };
    // Refuse a foreign status URL before waiting for it.
    client.resolve(&url)?;
    let class = poll_class(class);
    let started = client.clock().now();
    let mut wait = retry_after(headers).unwrap_or(options.poll_interval);
    loop {
        let wait_now = wait.min(options.max_poll_interval);
        let elapsed = client.clock().now().since(started);
        if elapsed.saturating_add(wait_now) > options.timeout {
            return Err(ArmError::OperationTimeout { after: elapsed });
        }
        client.sleep(wait_now).await;
        let (poll_status, poll_headers, body) =
            client.send(Method::GET, &url, None, &class).await?;
        wait = retry_after(&poll_headers).unwrap_or(options.poll_interval);
        match &monitor {
            Monitor::AsyncOperation(_) => match parse_operation_status(&body)? {
                OperationState::Succeeded => return Ok(()),
                OperationState::Ended(failure) => return Err(failure),
                OperationState::Running => {}
            },
            Monitor::Location(_) => {
                if poll_status != 202 {
                    return Ok(());
                }
            }
        }
    }
}
