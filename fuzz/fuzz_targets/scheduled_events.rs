//! The IMDS Scheduled Events parser on arbitrary bodies.
//!
//! Beyond "no panic": every event kept has a non-empty id, and the parse is a fixed point:
//! writing the parsed document back in IMDS's shape and parsing it again gives the same document
//! with nothing skipped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use spotkit_azure::imds::parse::parse_document;
use spotkit_core::events::{EventStatus, EventsDocument};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The document in IMDS's shape, or `None` when a `NotBefore` has no RFC 3339 form (an offset
/// can push a parsed time past year 9999 or before year 0; the parser keeps it, as it should).
fn write_back(doc: &EventsDocument) -> Option<Vec<u8>> {
    let mut events = Vec::new();
    for e in &doc.events {
        let not_before = match e.not_before {
            None => String::new(),
            Some(t) => {
                let nanos = i128::from(t.unix_millis()) * 1_000_000;
                OffsetDateTime::from_unix_timestamp_nanos(nanos)
                    .ok()?
                    .format(&Rfc3339)
                    .ok()?
            }
        };
        events.push(json!({
                "EventId": e.id.as_str(),
                "EventType": e.event_type.as_str(),
                "ResourceType": "VirtualMachine",
                "Resources": e.resources,
                "EventStatus": match e.status {
                    EventStatus::Scheduled => "Scheduled",
                    EventStatus::Started => "Started",
                },
                "NotBefore": not_before,
                "Description": e.description,
                "EventSource": e.source,
                "DurationInSeconds": e.duration.map_or(-1, |d| i64::try_from(d.as_secs()).unwrap()),
        }));
    }
    let events: Vec<Value> = events;
    Some(
        serde_json::to_vec(&json!({
            "DocumentIncarnation": doc.incarnation,
            "Events": events,
        }))
        .unwrap(),
    )
}

fuzz_target!(|body: &[u8]| {
    let parsed = match parse_document(body) {
        Ok(p) => p,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    for event in &parsed.document.events {
        assert!(
            !event.id.as_str().trim().is_empty(),
            "kept an event without an id"
        );
    }
    for skip in &parsed.skipped {
        assert!(!skip.reason.is_empty(), "a skip must say why");
    }
    let Some(written) = write_back(&parsed.document) else {
        return;
    };
    let again = parse_document(&written).expect("our own document parses");
    assert_eq!(
        again.document, parsed.document,
        "parse is not a fixed point"
    );
    assert!(
        again.skipped.is_empty(),
        "our own document had skips: {:?}",
        again.skipped
    );
});
