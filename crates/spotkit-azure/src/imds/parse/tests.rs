use super::*;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/azure/scheduled-events"
);

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_official_json_example_parses() {
    let mut seen = 0;
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("scheduled-events-example-incarnation") {
            continue;
        }
        let parsed = parse_document(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(parsed.skipped.is_empty(), "{name}: {:?}", parsed.skipped);
        seen += 1;
    }
    assert_eq!(seen, 4);
}

#[test]
fn official_freeze_example_maps_every_field() {
    let parsed = parse_document(&fixture("scheduled-events-example-incarnation-2.json")).unwrap();
    let doc = parsed.document;
    assert_eq!(doc.incarnation, 2);
    assert_eq!(doc.events.len(), 1);
    let e = &doc.events[0];
    assert_eq!(e.id.as_str(), "C7061BAC-AFDC-4513-B24B-AA5F13A16123");
    assert_eq!(e.event_type, EventType::Freeze);
    assert_eq!(e.status, EventStatus::Scheduled);
    assert_eq!(e.resources, vec!["WestNO_0", "WestNO_1"]);
    // Mon, 11 Apr 2022 22:26:58 GMT
    assert_eq!(e.not_before, Some(Timestamp::from_unix_secs(1_649_716_018)));
    assert_eq!(e.source, "Platform");
    assert_eq!(e.duration, Some(Duration::from_secs(5)));
    assert!(e.concerns("westno_1"));
    assert!(!e.concerns("WestNO_2"));
}

#[test]
fn started_example_has_no_not_before_and_keeps_the_event_id() {
    let scheduled =
        parse_document(&fixture("scheduled-events-example-incarnation-2.json")).unwrap();
    let started = parse_document(&fixture("scheduled-events-example-incarnation-3.json")).unwrap();
    let e = &started.document.events[0];
    assert_eq!(e.status, EventStatus::Started);
    assert_eq!(e.not_before, None);
    assert_eq!(e.id, scheduled.document.events[0].id);
}

#[test]
fn the_documented_response_sequence_parses_document_by_document() {
    let text =
        String::from_utf8(fixture("scheduled-events-example-responses-sequence.txt")).unwrap();
    let incarnations: Vec<u64> = text
        .split("\n\n")
        .map(str::trim)
        .filter(|chunk| !chunk.is_empty())
        .map(|chunk| {
            parse_document(chunk.as_bytes())
                .unwrap()
                .document
                .incarnation
        })
        .collect();
    assert_eq!(incarnations, vec![1, 2, 3, 4]);
}

#[test]
fn the_schema_template_is_rejected_cleanly_not_with_a_panic() {
    // The doc's template has placeholders ({IncarnationID}) and a trailing comma: not JSON.
    let err = parse_document(&fixture("scheduled-events-document-template.txt")).unwrap_err();
    assert!(matches!(err, ParseError::NotJson(_)));
}

#[test]
fn integers_as_strings_are_accepted() {
    let body = br#"{"DocumentIncarnation":"7","Events":[{"EventId":"a","EventType":"Preempt",
        "EventStatus":"Scheduled","Resources":["vm"],"NotBefore":"Mon, 11 Apr 2022 22:26:58 GMT",
        "DurationInSeconds":"-1"}]}"#;
    let parsed = parse_document(body).unwrap();
    assert_eq!(parsed.document.incarnation, 7);
    assert_eq!(parsed.document.events[0].duration, None);
    assert!(parsed.skipped.is_empty());
}

#[test]
fn unknown_types_and_fields_are_skipped_not_fatal() {
    let body = br#"{"DocumentIncarnation":3,"SomethingNew":true,"Events":[
        {"EventId":"x","EventType":"Hibernate","EventStatus":"Scheduled","Resources":["vm"],"NotBefore":""},
        {"EventId":"y","EventType":"Preempt","EventStatus":"Scheduled","Resources":["vm"],
         "NotBefore":"Mon, 11 Apr 2022 22:26:58 GMT","Shiny":{"a":1}},
        {"EventType":"Preempt"},
        42
    ]}"#;
    let parsed = parse_document(body).unwrap();
    assert_eq!(parsed.document.events.len(), 1);
    assert_eq!(parsed.document.events[0].id.as_str(), "y");
    assert_eq!(parsed.skipped.len(), 3, "{:?}", parsed.skipped);
    assert!(parsed.skipped[0].reason.contains("Hibernate"));
}

#[test]
fn time_formats_other_than_rfc1123_are_understood() {
    let expected = Some(Timestamp::from_unix_secs(1_649_716_018));
    for s in [
        "Mon, 11 Apr 2022 22:26:58 GMT",
        "Monday, 11-Apr-22 22:26:58 GMT",
        "Mon Apr 11 22:26:58 2022",
        "2022-04-11T22:26:58Z",
        "2022-04-11T23:26:58+01:00",
    ] {
        assert_eq!(parse_time(s), expected, "{s}");
    }
    assert_eq!(parse_time("next tuesday"), None);
}

#[test]
fn unparseable_not_before_is_treated_as_imminent_and_reported() {
    let body = br#"{"DocumentIncarnation":1,"Events":[{"EventId":"z","EventType":"Preempt",
        "EventStatus":"Scheduled","Resources":["vm"],"NotBefore":"soon"}]}"#;
    let parsed = parse_document(body).unwrap();
    assert_eq!(parsed.document.events[0].not_before, None);
    assert_eq!(parsed.skipped.len(), 1);
}

#[test]
fn lowercase_keys_and_unknown_status_are_tolerated() {
    let body = br#"{"documentincarnation":4,"events":[{"eventid":"q","eventtype":"preempt",
        "eventstatus":"Running","resources":["vm"],"notbefore":""}]}"#;
    let parsed = parse_document(body).unwrap();
    let e = &parsed.document.events[0];
    assert_eq!(e.event_type, EventType::Preempt);
    assert_eq!(e.status, EventStatus::Started);
}

#[test]
fn garbage_is_an_error() {
    assert!(matches!(
        parse_document(b"<html>"),
        Err(ParseError::NotJson(_))
    ));
    assert!(matches!(
        parse_document(b"{\"DocumentIncarnation\":1"),
        Err(ParseError::NotJson(_))
    ));
    assert_eq!(parse_document(b"[]"), Err(ParseError::NoEvents));
    assert_eq!(
        parse_document(b"{\"Events\":{}}"),
        Err(ParseError::NoEvents)
    );
}
