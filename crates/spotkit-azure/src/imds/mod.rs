//! IMDS (`169.254.169.254`): Scheduled Events and instance metadata.
//!
//! Facts this module relies on (`shared/azure/FACTS.md` section 1):
//! - every request carries `Metadata: true` and never goes through a proxy, so the HTTP client is
//!   built with `no_proxy()` whatever `HTTP(S)_PROXY` say;
//! - IMDS allows 5 requests/s per VM, so the client spaces *all* its requests (polls, approvals,
//!   instance metadata) at least [`MIN_REQUEST_SPACING`] apart;
//! - documents are parsed tolerantly (see [`parse`]).

mod client;
pub mod parse;

pub use client::{
    ImdsClient, ImdsClientOptions, MIN_REQUEST_SPACING, SCHEDULED_EVENTS_API_VERSION,
    start_requests_body,
};
pub use parse::{ParsedDocument, SkippedEvent, parse_document};
