//! Scheduled Events as a source of documents and a sink of approvals.

use std::future::Future;
use std::time::Duration;

use spotkit_core::agent::PollFailure;
use spotkit_core::events::{EventId, EventsDocument};

/// Why talking to the Scheduled Events endpoint failed.
#[derive(Debug, thiserror::Error)]
pub enum EventSourceError {
    /// The endpoint answered with an error status.
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the body, for the log.
        body: String,
    },
    /// No answer in time.
    #[error("{url} did not answer within {timeout:?}")]
    Timeout {
        /// The URL requested.
        url: String,
        /// The per-request timeout.
        timeout: Duration,
    },
    /// No connection could be made (refused, reset, unroutable).
    #[error("cannot reach {url}: {source}; is this an Azure VM (or is --imds-url right)?")]
    Unreachable {
        /// The URL requested.
        url: String,
        /// The transport error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The body was not a Scheduled Events document.
    #[error("{url} answered with something that is not a Scheduled Events document: {detail}")]
    Malformed {
        /// The URL requested.
        url: String,
        /// What was wrong.
        detail: String,
    },
}

impl EventSourceError {
    /// The failure kind the agent core reasons about.
    #[must_use]
    pub fn kind(&self) -> PollFailure {
        match self {
            EventSourceError::Status { status, .. } => match *status {
                429 => PollFailure::Throttled,
                410 => PollFailure::Gone,
                404 => PollFailure::NotFound,
                s @ 500..=599 => PollFailure::ServerError(s),
                s => PollFailure::UnexpectedStatus(s),
            },
            EventSourceError::Timeout { .. } => PollFailure::Timeout,
            EventSourceError::Unreachable { .. } => PollFailure::Unreachable,
            EventSourceError::Malformed { .. } => PollFailure::Malformed,
        }
    }
}

/// Where Scheduled Events come from: IMDS on an Azure VM, or the simulator.
///
/// Contract: `poll` returns the current document with every event the implementation could
/// understand (unknown event types are dropped and logged by the implementation, never an error);
/// `approve` succeeds for ids the endpoint knows, including ones already approved.
pub trait EventSource: Send + Sync + 'static {
    /// Fetches the current document. `timeout` bounds this one request.
    fn poll(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<EventsDocument, EventSourceError>> + Send;

    /// Approves (`StartRequests`) the given events so the platform may proceed at once.
    fn approve(
        &self,
        events: &[EventId],
    ) -> impl Future<Output = Result<(), EventSourceError>> + Send;
}
