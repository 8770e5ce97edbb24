use std::time::Duration;

use serde_json::Value;
use spotkit_core::Timestamp;

use super::*;

/// 2022-04-11T22:26:28Z: 30 s before the official example's NotBefore.
const T0: Timestamp = Timestamp::from_unix_millis(1_649_715_988_000);

fn at(seconds_after_t0: u64) -> Timestamp {
    T0.plus(Duration::from_secs(seconds_after_t0))
}

fn model() -> ImdsModel {
    ImdsModel::new(ImdsConfig {
        seed: 42,
        ..ImdsConfig::spot_vm("WestNO_0")
    })
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("valid JSON")
}

fn approval_body(ids: &[&str]) -> Vec<u8> {
    let requests: Vec<Value> = ids
        .iter()
        .map(|id| serde_json::json!({ "EventId": id }))
        .collect();
    serde_json::json!({ "StartRequests": requests })
        .to_string()
        .into_bytes()
}

#[test]
fn starts_empty_at_incarnation_one_like_the_official_example() {
    let mut model = model();
    assert_eq!(
        json(&model.document_json(T0)),
        serde_json::json!({ "DocumentIncarnation": 1, "Events": [] })
    );
}

#[test]
fn documents_have_the_official_keys_in_the_official_order() {
    let mut model = model();
    let request = ScheduleRequest::new(EventType::Freeze)
        .with_notice(Duration::from_secs(30))
        .with_resources(vec!["WestNO_0".into(), "WestNO_1".into()])
        .with_duration_seconds(5);
    let id = model.schedule(request, T0);
    let text = model.document_json(T0);
    let expected = format!(
        concat!(
            r#"{{"DocumentIncarnation":2,"Events":[{{"EventId":"{}","EventStatus":"Scheduled","#,
            r#""EventType":"Freeze","ResourceType":"VirtualMachine","Resources":["WestNO_0","WestNO_1"],"#,
            r#""NotBefore":"Mon, 11 Apr 2022 22:26:58 GMT","#,
            r#""Description":"Virtual machine is being paused because of a memory-preserving Live Migration operation.","#,
            r#""EventSource":"Platform","DurationInSeconds":5}}]}}"#
        ),
        id
    );
    assert_eq!(text, expected);
}

#[test]
fn scheduled_event_starts_at_not_before_then_disappears_lazily() {
    let mut model = model();
    let request =
        ScheduleRequest::preempt(Duration::from_secs(30)).with_started_for(Duration::from_secs(15));
    let id = model.schedule(request, T0);

    let before = model.snapshot(at(29));
    assert_eq!(before.incarnation, 2);
    let event = before.event(id.as_str()).expect("scheduled");
    assert_eq!(event.status, EventStatus::Scheduled);
    assert_eq!(event.not_before, Some(at(30)));
    assert_eq!(event.resources, vec!["WestNO_0".to_owned()]);
    assert_eq!(event.duration_seconds, -1);

    let started = model.snapshot(at(30));
    assert_eq!(started.incarnation, 3);
    let event = started.event(id.as_str()).expect("started");
    assert_eq!(event.status, EventStatus::Started);
    assert_eq!(event.not_before, None);
    let wire = json(&model.document_json(at(30)));
    assert_eq!(wire["Events"][0]["NotBefore"], "");
    assert_eq!(wire["Events"][0]["EventId"], id.as_str());

    assert_eq!(model.snapshot(at(44)).events.len(), 1);
    let gone = model.snapshot(at(45));
    assert_eq!(gone.incarnation, 4);
    assert!(gone.events.is_empty());
    assert_eq!(model.snapshot(at(1_000)).incarnation, 4);
}

#[test]
fn a_late_first_read_sees_the_same_incarnation_as_frequent_reads() {
    let request =
        ScheduleRequest::preempt(Duration::from_secs(30)).with_started_for(Duration::from_secs(15));
    let mut polled = model();
    polled.schedule(request.clone(), T0);
    for second in 0..100 {
        polled.snapshot(at(second));
    }
    let mut unpolled = model();
    unpolled.schedule(request, T0);
    assert_eq!(unpolled.snapshot(at(100)), polled.snapshot(at(100)));
    assert_eq!(unpolled.snapshot(at(100)).incarnation, 4);
}

#[test]
fn incarnation_moves_by_one_per_change_and_never_on_reads() {
    let mut model = model();
    assert_eq!(model.snapshot(T0).incarnation, 1);
    assert_eq!(model.snapshot(T0).incarnation, 1);
    let a = model.schedule(ScheduleRequest::preempt(Duration::from_secs(60)), T0);
    assert_eq!(model.snapshot(T0).incarnation, 2);
    let b = model.schedule(
        ScheduleRequest::new(EventType::Reboot).with_notice(Duration::from_secs(60)),
        T0,
    );
    assert_eq!(model.snapshot(T0).incarnation, 3);
    // Both reach NotBefore at the same instant: one change.
    assert_eq!(model.snapshot(at(60)).incarnation, 4);
    // Approving already started events changes nothing.
    model
        .approve(&approval_body(&[a.as_str(), b.as_str()]), at(61))
        .expect("known ids");
    // Settings do not change the events either.
    model.set_settings(DocumentSettings {
        numbers_as_strings: true,
        extra_fields: true,
    });
    assert_eq!(model.snapshot(at(61)).incarnation, 4);
    // Preempt lasts 15 s Started, Reboot 30 s: two separate removals.
    assert_eq!(model.snapshot(at(75)).incarnation, 5);
    assert_eq!(model.snapshot(at(90)).incarnation, 6);
    assert!(model.snapshot(at(90)).events.is_empty());
}

#[test]
fn an_event_without_notice_is_created_started() {
    let mut model = model();
    let id = model.schedule(ScheduleRequest::new(EventType::Preempt), T0);
    let snapshot = model.snapshot(T0);
    assert_eq!(snapshot.incarnation, 2);
    let event = snapshot.event(id.as_str()).expect("present");
    assert_eq!(event.status, EventStatus::Started);
    assert_eq!(event.not_before, None);
    let zero_notice = model.schedule(
        ScheduleRequest::new(EventType::Freeze).with_notice(Duration::ZERO),
        T0,
    );
    let snapshot = model.snapshot(T0);
    assert_eq!(
        snapshot.event(zero_notice.as_str()).map(|e| e.status),
        Some(EventStatus::Started)
    );
    // Preempt's default Started time is 15 s.
    assert!(model.snapshot(at(15)).event(id.as_str()).is_none());
}

#[test]
fn not_before_is_rounded_up_to_a_whole_second() {
    let now = T0.plus(Duration::from_millis(250));
    let request = ScheduleRequest::preempt(Duration::from_secs(30));
    assert_eq!(request.not_before(now), Some(at(31)));
    assert_eq!(request.not_before(T0), Some(at(30)));
    assert_eq!(
        ScheduleRequest::new(EventType::Preempt).not_before(T0),
        None
    );
}

#[test]
fn approval_starts_the_event_now_and_keeps_its_id() {
    let mut model = model();
    let id = model.schedule(
        ScheduleRequest::preempt(Duration::from_secs(30)).with_started_for(Duration::from_secs(10)),
        T0,
    );
    let lower_case = id.as_str().to_ascii_lowercase();
    let approved = model
        .approve(&approval_body(&[&lower_case]), at(5))
        .expect("known id");
    assert_eq!(approved, vec![id.clone()]);
    let snapshot = model.snapshot(at(5));
    assert_eq!(snapshot.incarnation, 3);
    let event = snapshot.event(id.as_str()).expect("still listed");
    assert_eq!(event.id, id);
    assert_eq!(event.status, EventStatus::Started);
    assert_eq!(event.not_before, None);
    // Started at the approval, so it disappears 10 s after it, not after NotBefore.
    assert!(model.snapshot(at(15)).events.is_empty());
    assert_eq!(model.snapshot(at(15)).incarnation, 4);

    let log = model.approvals();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].event_ids, vec![lower_case]);
    assert_eq!(log[0].at, at(5));
    assert!(log[0].accepted);
}

#[test]
fn approving_a_started_event_again_is_accepted() {
    let mut model = model();
    let id = model.schedule(ScheduleRequest::preempt(Duration::from_secs(30)), T0);
    let body = approval_body(&[id.as_str()]);
    model.approve(&body, at(1)).expect("first approval");
    model.approve(&body, at(2)).expect("second approval");
    assert_eq!(model.snapshot(at(2)).incarnation, 3);
    assert_eq!(model.approvals().len(), 2);
}

#[test]
fn malformed_or_unknown_approvals_are_refused_and_logged() {
    let mut model = model();
    let id = model.schedule(ScheduleRequest::preempt(Duration::from_secs(30)), T0);
    let cases: Vec<(Vec<u8>, ApprovalError)> = vec![
        (b"not json".to_vec(), ApprovalError::NotJson(String::new())),
        (b"{}".to_vec(), ApprovalError::NoStartRequests),
        (
            br#"{"StartRequests":[]}"#.to_vec(),
            ApprovalError::EmptyStartRequests,
        ),
        (
            br#"{"StartRequests":[{"eventid":"x"}]}"#.to_vec(),
            ApprovalError::MissingEventId { index: 0 },
        ),
        (
            approval_body(&[id.as_str(), "00000000-0000-0000-0000-000000000000"]),
            ApprovalError::UnknownEventId("00000000-0000-0000-0000-000000000000".into()),
        ),
    ];
    for (body, expected) in cases {
        let error = model.approve(&body, at(1)).expect_err("refused");
        match (&error, &expected) {
            (ApprovalError::NotJson(_), ApprovalError::NotJson(_)) => {}
            _ => assert_eq!(error, expected),
        }
    }
    // Nothing started, even though the last body also named a real event.
    let snapshot = model.snapshot(at(1));
    assert_eq!(snapshot.incarnation, 2);
    assert_eq!(
        snapshot.event(id.as_str()).map(|e| e.status),
        Some(EventStatus::Scheduled)
    );
    let log = model.approvals();
    assert_eq!(log.len(), 5);
    assert!(
        log.iter()
            .all(|record| !record.accepted && record.error.is_some())
    );
    assert_eq!(log[4].event_ids.len(), 2);
    assert_eq!(log[0].body, "not json");
}

#[test]
fn an_event_that_disappeared_can_no_longer_be_approved() {
    let mut model = model();
    let id = model.schedule(ScheduleRequest::new(EventType::Preempt), T0);
    let error = model
        .approve(&approval_body(&[id.as_str()]), at(60))
        .expect_err("gone");
    assert_eq!(error, ApprovalError::UnknownEventId(id.to_string()));
}

#[test]
fn cancel_removes_only_scheduled_events() {
    let mut model = model();
    let scheduled = model.schedule(ScheduleRequest::preempt(Duration::from_secs(30)), T0);
    let started = model.schedule(ScheduleRequest::new(EventType::Freeze), T0);
    assert_eq!(
        model.cancel(started.as_str(), at(1)),
        Err(EventError::AlreadyStarted(started.to_string()))
    );
    model.cancel(scheduled.as_str(), at(1)).expect("scheduled");
    let snapshot = model.snapshot(at(1));
    assert_eq!(snapshot.incarnation, 4);
    assert!(snapshot.event(scheduled.as_str()).is_none());
    assert_eq!(
        model.cancel(scheduled.as_str(), at(1)),
        Err(EventError::NotFound(scheduled.to_string()))
    );
}

#[test]
fn force_start_starts_a_scheduled_event_once() {
    let mut model = model();
    let id = model.schedule(ScheduleRequest::preempt(Duration::from_secs(30)), T0);
    model.force_start(id.as_str(), at(2)).expect("known");
    model.force_start(id.as_str(), at(3)).expect("still known");
    let snapshot = model.snapshot(at(3));
    assert_eq!(snapshot.incarnation, 3);
    assert_eq!(
        snapshot.event(id.as_str()).map(|e| e.status),
        Some(EventStatus::Started)
    );
    assert!(model.approvals().is_empty());
    assert_eq!(
        model.force_start("nope", at(3)),
        Err(EventError::NotFound("nope".into()))
    );
}

#[test]
fn ids_are_deterministic_for_a_seed() {
    let ids = |seed: u64| -> Vec<EventId> {
        let mut model = ImdsModel::new(ImdsConfig {
            seed,
            ..ImdsConfig::default()
        });
        (0..3)
            .map(|_| model.schedule(ScheduleRequest::new(EventType::Freeze), T0))
            .collect()
    };
    assert_eq!(ids(1), ids(1));
    assert_ne!(ids(1), ids(2));
    let three = ids(1);
    assert_ne!(three[0], three[1]);
    assert!(
        three
            .iter()
            .all(|id| id.as_str() == id.as_str().to_ascii_uppercase())
    );
}

#[test]
fn unknown_event_types_are_kept_as_given() {
    let mut model = model();
    model.schedule(
        ScheduleRequest::new(EventType::from_name("Hibernate"))
            .with_notice(Duration::from_secs(10))
            .with_description("future"),
        T0,
    );
    assert_eq!(EventType::from_name("preempt"), EventType::Preempt);
    let wire = json(&model.document_json(T0));
    assert_eq!(wire["Events"][0]["EventType"], "Hibernate");
    assert_eq!(wire["Events"][0]["Description"], "future");
}

#[test]
fn settings_switch_numbers_to_strings_and_add_an_unknown_field() {
    let mut model = model();
    model.schedule(
        ScheduleRequest::new(EventType::Freeze)
            .with_notice(Duration::from_secs(30))
            .with_duration_seconds(5)
            .with_event_source(EventSource::User),
        T0,
    );
    model.set_settings(DocumentSettings {
        numbers_as_strings: true,
        extra_fields: true,
    });
    let wire = json(&model.document_json(T0));
    assert_eq!(wire["DocumentIncarnation"], "2");
    assert_eq!(wire["Events"][0]["DurationInSeconds"], "5");
    assert_eq!(wire["Events"][0]["EventSource"], "User");
    assert!(wire["Events"][0][crate::imds::UNKNOWN_FIELD_NAME].is_object());
}

#[test]
fn replies_follow_the_fault_queue_and_count_requests() {
    let mut model = model();
    model.push_fault(Fault::times(FaultKind::Status(429), 1));
    model.push_fault(Fault::times(FaultKind::Truncated, 1));
    model.push_fault(Fault::times(FaultKind::Garbage, 1));
    model.push_fault(Fault::times(FaultKind::Slow(Duration::from_millis(5)), 1));
    match model.get_scheduled_events(at(1)) {
        ScheduledEventsReply::Status { status, body } => {
            assert_eq!(status, 429);
            assert!(json(&body)["error"].is_string());
        }
        other => panic!("expected a status fault, got {other:?}"),
    }
    match model.get_scheduled_events(at(2)) {
        ScheduledEventsReply::Truncated(body) => {
            assert!(!body.is_empty());
            assert!(serde_json::from_str::<Value>(&body).is_err());
        }
        other => panic!("expected a truncated document, got {other:?}"),
    }
    assert_eq!(
        model.get_scheduled_events(at(3)),
        ScheduledEventsReply::Garbage(GARBAGE_BODY.to_owned())
    );
    assert_eq!(
        model.get_scheduled_events(at(4)),
        ScheduledEventsReply::Delayed(Duration::from_millis(5))
    );
    assert!(matches!(
        model.get_scheduled_events(at(5)),
        ScheduledEventsReply::Document(_)
    ));
    model
        .post_scheduled_events(b"{}", at(5))
        .expect_err("malformed");
    model.get_instance();
    model.record_rejected(MetadataRequest::InstanceGet, at(6));
    let stats = model.stats();
    assert_eq!(stats.scheduled_events_gets, 5);
    assert_eq!(stats.faulted_responses, 4);
    assert_eq!(stats.scheduled_events_posts, 1);
    assert_eq!(stats.instance_gets, 2);
    assert_eq!(stats.rejected_requests, 1);
    assert_eq!(stats.recent_get_times, (1..=5).map(at).collect::<Vec<_>>());
    model.reset_stats();
    assert_eq!(model.stats(), RequestStats::default());
}

#[test]
fn instance_metadata_carries_the_config() {
    let model = model();
    let doc = model.instance_metadata();
    let compute = &doc["compute"];
    assert_eq!(compute["name"], "WestNO_0");
    assert_eq!(compute["priority"], "Spot");
    assert_eq!(compute["evictionPolicy"], "Delete");
    assert_eq!(compute["osType"], "Linux");
    assert!(
        compute["resourceId"]
            .as_str()
            .is_some_and(|id| id.ends_with("/virtualMachines/WestNO_0"))
    );
    assert!(doc["network"]["interface"].is_array());
}

#[test]
fn next_change_at_tells_a_simulator_when_to_look_again() {
    let mut model = model();
    assert_eq!(model.next_change_at(), None);
    model.schedule(
        ScheduleRequest::preempt(Duration::from_secs(30)).with_started_for(Duration::from_secs(15)),
        T0,
    );
    assert_eq!(model.next_change_at(), Some(at(30)));
    model.snapshot(at(30));
    assert_eq!(model.next_change_at(), Some(at(45)));
}
