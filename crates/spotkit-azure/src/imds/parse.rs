//! Tolerant parsing of Scheduled Events documents.
//!
//! IMDS's documented examples send numbers for `DocumentIncarnation` and `DurationInSeconds`, but
//! the IMDS overview says its JSON primitives are strings, so both are accepted. `NotBefore` is RFC
//! 1123 (`Mon, 11 Apr 2022 22:26:58 GMT`) and becomes `""` once an event has Started; RFC 850,
//! asctime and RFC 3339 are accepted too. Key names are matched without regard to case. An event
//! this version cannot understand (unknown `EventType`, no `EventId`) is skipped and reported, never
//! fatal: one odd event must not hide a `Preempt` next to it.

use std::time::Duration;

use serde_json::{Map, Value};
use spotkit_core::Timestamp;
use spotkit_core::events::{EventId, EventStatus, EventType, EventsDocument, ScheduledEvent};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A parsed document and what had to be left out of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedDocument {
    /// The events understood.
    pub document: EventsDocument,
    /// Events (or fields) skipped, with why: for the log.
    pub skipped: Vec<SkippedEvent>,
}

/// An event left out of a document, or a field that had to be guessed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedEvent {
    /// The event's id, if it had one.
    pub event_id: Option<String>,
    /// What was wrong, in words for the log.
    pub reason: String,
}

/// Why a body is not a Scheduled Events document at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object with an `Events` array.
    #[error("JSON without an `Events` array")]
    NoEvents,
}

/// Parses a Scheduled Events body.
///
/// # Errors
/// Only when the body is not JSON or has no `Events` array; everything inside is handled tolerantly.
pub fn parse_document(body: &[u8]) -> Result<ParsedDocument, ParseError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    let root = value.as_object().ok_or(ParseError::NoEvents)?;
    let events = field(root, "Events")
        .and_then(Value::as_array)
        .ok_or(ParseError::NoEvents)?;
    let mut skipped = Vec::new();
    let incarnation = match field(root, "DocumentIncarnation").map(as_i64) {
        Some(Some(n)) if n >= 0 => n.unsigned_abs(),
        other => {
            skipped.push(SkippedEvent {
                event_id: None,
                reason: format!(
                    "DocumentIncarnation missing or not a non-negative integer ({other:?}); using 0"
                ),
            });
            0
        }
    };
    let mut parsed = Vec::with_capacity(events.len());
    for raw in events {
        match parse_event(raw, &mut skipped) {
            Ok(event) => parsed.push(event),
            Err(skip) => skipped.push(skip),
        }
    }
    Ok(ParsedDocument {
        document: EventsDocument {
            incarnation,
            events: parsed,
        },
        skipped,
    })
}

fn parse_event(raw: &Value, notes: &mut Vec<SkippedEvent>) -> Result<ScheduledEvent, SkippedEvent> {
    let Some(obj) = raw.as_object() else {
        return Err(SkippedEvent {
            event_id: None,
            reason: format!("event is not a JSON object: {}", excerpt(&raw.to_string())),
        });
    };
    let id = field(obj, "EventId")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| SkippedEvent {
            event_id: None,
            reason: "event without an EventId".to_string(),
        })?
        .to_string();
    let type_text = field(obj, "EventType")
        .and_then(Value::as_str)
        .unwrap_or("");
    let event_type = EventType::parse(type_text).ok_or_else(|| SkippedEvent {
        event_id: Some(id.clone()),
        reason: format!("unknown EventType {type_text:?}"),
    })?;
    let status_text = field(obj, "EventStatus")
        .and_then(Value::as_str)
        .unwrap_or("");
    let status = if status_text.eq_ignore_ascii_case("Scheduled") {
        EventStatus::Scheduled
    } else {
        if !status_text.eq_ignore_ascii_case("Started") {
            // Treat an unknown status as Started: acting early is safe, acting late loses work.
            notes.push(SkippedEvent {
                event_id: Some(id.clone()),
                reason: format!("unknown EventStatus {status_text:?}; treated as Started"),
            });
        }
        EventStatus::Started
    };
    let resources = match field(obj, "Resources") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    };
    let not_before = match field(obj, "NotBefore") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => {
            let parsed = parse_time(s);
            if parsed.is_none() {
                notes.push(SkippedEvent {
                    event_id: Some(id.clone()),
                    reason: format!("unparseable NotBefore {s:?}; treated as imminent"),
                });
            }
            parsed
        }
        Some(other) => {
            notes.push(SkippedEvent {
                event_id: Some(id.clone()),
                reason: format!("NotBefore is not a string ({other}); treated as imminent"),
            });
            None
        }
    };
    let duration = field(obj, "DurationInSeconds")
        .and_then(as_i64)
        .and_then(|s| u64::try_from(s).ok())
        .map(Duration::from_secs);
    Ok(ScheduledEvent {
        id: EventId::new(id),
        event_type,
        status,
        resources,
        not_before,
        description: text(obj, "Description"),
        source: text(obj, "EventSource"),
        duration,
    })
}

/// Looks a key up ignoring ASCII case (exact match first, as IMDS sends PascalCase).
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn text(obj: &Map<String, Value>, key: &str) -> String {
    field(obj, key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// An integer sent as a JSON number or as a string.
fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// RFC 1123 / RFC 850 / asctime (HTTP dates), then RFC 3339.
fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = httpdate::parse_http_date(s) {
        let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
        return Some(Timestamp::from_unix_secs(i64::try_from(secs).ok()?));
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    let millis = t.unix_timestamp_nanos() / 1_000_000;
    Some(Timestamp::from_unix_millis(i64::try_from(millis).ok()?))
}

fn excerpt(s: &str) -> String {
    s.chars().take(120).collect()
}

#[cfg(test)]
mod tests;
