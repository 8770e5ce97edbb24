//! The Scheduled Events document: a typed snapshot and its exact wire shape.
//!
//! The wire shape follows the official examples key for key and in the same order:
//! `DocumentIncarnation`, then `Events` whose items carry `EventId`, `EventStatus`, `EventType`,
//! `ResourceType`, `Resources`, `NotBefore`, `Description`, `EventSource`, `DurationInSeconds`.

use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use spotkit_core::Timestamp;

use super::ids::EventId;
use super::model::{EventSource, EventStatus, EventType};

/// Switches that make the document harder (but still legal) to parse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentSettings {
    /// Write `DocumentIncarnation` and `DurationInSeconds` as JSON strings (`"2"`) instead of
    /// numbers: the IMDS overview says its primitives are strings, the examples show numbers.
    #[serde(default)]
    pub numbers_as_strings: bool,
    /// Add a field no client knows ([`UNKNOWN_FIELD_NAME`]) to every event, as a future API
    /// version might.
    #[serde(default)]
    pub extra_fields: bool,
}

/// The name of the extra per-event field written when [`DocumentSettings::extra_fields`] is on.
pub const UNKNOWN_FIELD_NAME: &str = "EmulatorUnknownField";

/// One event as the VM sees it at a given instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventView {
    /// `EventId`.
    pub id: EventId,
    /// `EventType`.
    pub event_type: EventType,
    /// `EventStatus`.
    pub status: EventStatus,
    /// `Resources`: VM names the event applies to.
    pub resources: Vec<String>,
    /// `NotBefore`; `None` once Started (rendered as `""`).
    pub not_before: Option<Timestamp>,
    /// `Description`.
    pub description: String,
    /// `EventSource`.
    pub event_source: EventSource,
    /// `DurationInSeconds` (-1 = unknown).
    pub duration_seconds: i64,
}

/// The whole document as the VM sees it at a given instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventsSnapshot {
    /// `DocumentIncarnation`.
    pub incarnation: u64,
    /// `Events`, oldest first.
    pub events: Vec<EventView>,
}

impl EventsSnapshot {
    /// The event with this id (compared without regard to case), if present.
    #[must_use]
    pub fn event(&self, id: &str) -> Option<&EventView> {
        self.events.iter().find(|event| event.id.matches(id))
    }

    /// The document exactly as `GET /metadata/scheduledevents` returns it.
    #[must_use]
    pub fn to_json(&self, settings: DocumentSettings) -> String {
        let integer = |n: i64| -> Value {
            if settings.numbers_as_strings {
                Value::String(n.to_string())
            } else {
                Value::from(n)
            }
        };
        let wire = WireDocument {
            document_incarnation: if settings.numbers_as_strings {
                Value::String(self.incarnation.to_string())
            } else {
                Value::from(self.incarnation)
            },
            events: self
                .events
                .iter()
                .map(|event| WireEvent {
                    event_id: event.id.as_str(),
                    event_status: event.status.as_str(),
                    event_type: event.event_type.as_str(),
                    resource_type: "VirtualMachine",
                    resources: &event.resources,
                    not_before: event.not_before.map(http_date).unwrap_or_default(),
                    description: &event.description,
                    event_source: event.event_source.as_str(),
                    duration_in_seconds: integer(event.duration_seconds),
                    unknown: settings.extra_fields.then(unknown_field_value),
                })
                .collect(),
        };
        serde_json::to_string(&wire)
            .expect("a document made of strings, numbers and arrays always serializes")
    }
}

/// Something a client cannot know about: nested, mixed-type, so lax parsers get exercised.
fn unknown_field_value() -> Value {
    serde_json::json!({ "Note": "added by the spotkit IMDS emulator", "Values": [1, "two", null] })
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireDocument<'a> {
    document_incarnation: Value,
    events: Vec<WireEvent<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireEvent<'a> {
    event_id: &'a str,
    event_status: &'static str,
    event_type: &'a str,
    resource_type: &'static str,
    resources: &'a [String],
    not_before: String,
    description: &'a str,
    event_source: &'static str,
    duration_in_seconds: Value,
    #[serde(
        rename = "EmulatorUnknownField",
        skip_serializing_if = "Option::is_none"
    )]
    unknown: Option<Value>,
}

/// The last instant `httpdate` can format (9999-12-31T23:59:59Z); it panics beyond it.
const LAST_HTTP_DATE_MILLIS: i64 = 253_402_300_799_000;

/// RFC 1123, as in `NotBefore`: `Mon, 11 Apr 2022 22:26:58 GMT`. Sub-second parts are dropped;
/// instants outside 1970..=9999 are clamped because the format cannot express them.
#[must_use]
pub fn http_date(at: Timestamp) -> String {
    let millis = at.unix_millis().clamp(0, LAST_HTTP_DATE_MILLIS);
    let since_epoch = Duration::from_millis(u64::try_from(millis).unwrap_or(0));
    httpdate::fmt_http_date(UNIX_EPOCH + since_epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_match_the_documented_example_and_never_panic() {
        // 2022-04-11T22:26:58Z, the NotBefore of the official incarnation-2 example.
        let at = Timestamp::from_unix_secs(1_649_716_018);
        assert_eq!(http_date(at), "Mon, 11 Apr 2022 22:26:58 GMT");
        assert_eq!(
            http_date(Timestamp::from_unix_millis(-5)),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(
            http_date(Timestamp::from_unix_millis(i64::MAX)),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
    }
}
