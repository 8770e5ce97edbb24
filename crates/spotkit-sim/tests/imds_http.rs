//! The IMDS emulator over real HTTP on 127.0.0.1, driven with reqwest.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use spotkit_cloud::{Clock, SystemClock};
use spotkit_core::Timestamp;
use spotkit_sim::imds::{
    EventStatus, EventType, Fault, FaultKind, ImdsConfig, ImdsEmulator, ScheduleRequest,
    spawn_on_loopback,
};
use tokio::task::JoinHandle;

const EVENTS: &str = "/metadata/scheduledevents?api-version=2020-07-01";
const INSTANCE: &str = "/metadata/instance?api-version=2021-02-01";

/// A clock that moves only when told to: lets HTTP tests cross `NotBefore` without waiting.
struct ManualClock {
    unix_millis: AtomicI64,
}

impl ManualClock {
    fn starting_at(at: Timestamp) -> Arc<Self> {
        Arc::new(Self {
            unix_millis: AtomicI64::new(at.unix_millis()),
        })
    }

    fn advance(&self, by: Duration) {
        let millis = i64::try_from(by.as_millis()).expect("small");
        self.unix_millis.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.unix_millis.load(Ordering::SeqCst))
    }

    fn sleep_until(&self, until: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            while self.now() < until {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    }
}

/// 2022-04-11T22:26:28Z.
const T0: Timestamp = Timestamp::from_unix_millis(1_649_715_988_000);

struct Harness {
    base: String,
    client: Client,
    emulator: ImdsEmulator,
    server: JoinHandle<std::io::Result<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn client() -> Client {
    // IMDS must never be reached through a proxy, and CI may set proxy variables.
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn start(clock: Arc<dyn Clock>) -> Harness {
    let emulator = ImdsEmulator::new(
        ImdsConfig {
            seed: 7,
            ..ImdsConfig::spot_vm("vm1")
        },
        clock,
    );
    let (address, server) = emulator
        .clone()
        .spawn_on_loopback()
        .await
        .expect("bind loopback");
    Harness {
        base: format!("http://{address}"),
        client: client(),
        emulator,
        server,
    }
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request as the agent sends it: with `Metadata: true`.
    fn metadata(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("Metadata", "true")
    }

    async fn get_document(&self) -> Value {
        let response = self
            .metadata(Method::GET, EVENTS)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("a JSON document")
    }

    async fn approve(&self, body: &str) -> reqwest::Response {
        self.metadata(Method::POST, EVENTS)
            .body(body.to_owned())
            .send()
            .await
            .expect("send")
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("send")
    }

    async fn fault(&self, body: Value) {
        let response = self.admin(Method::POST, "/admin/faults", Some(body)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    async fn status_of_get(&self) -> (StatusCode, String) {
        let response = self
            .metadata(Method::GET, EVENTS)
            .send()
            .await
            .expect("send");
        let status = response.status();
        (status, response.text().await.expect("body"))
    }
}

#[tokio::test]
async fn the_metadata_header_is_required_everywhere_under_metadata() {
    let h = start(Arc::new(SystemClock)).await;
    for path in [EVENTS, INSTANCE, "/metadata/unknown?api-version=2020-07-01"] {
        let response = h.client.get(h.url(path)).send().await.expect("send");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = response.json().await.expect("JSON error");
        assert_eq!(
            body,
            json!({ "error": "Bad request. Required metadata header not specified" })
        );
    }
    let wrong_value = h
        .client
        .get(h.url(EVENTS))
        .header("Metadata", "yes")
        .send()
        .await
        .expect("send");
    assert_eq!(wrong_value.status(), StatusCode::BAD_REQUEST);
    let post = h
        .client
        .post(h.url(EVENTS))
        .body(r#"{"StartRequests":[]}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(post.status(), StatusCode::BAD_REQUEST);

    assert_eq!(
        h.get_document().await,
        json!({ "DocumentIncarnation": 1, "Events": [] })
    );
    let unknown = h
        .metadata(Method::GET, "/metadata/unknown?api-version=2020-07-01")
        .send()
        .await
        .expect("send");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let elsewhere = h.client.get(h.url("/nothing")).send().await.expect("send");
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);

    let stats = h.emulator.stats();
    assert_eq!(stats.rejected_requests, 5);
    assert_eq!(stats.scheduled_events_gets, 3);
    assert_eq!(stats.scheduled_events_posts, 1);
    assert_eq!(stats.instance_gets, 1);
}

#[tokio::test]
async fn requests_with_x_forwarded_for_are_rejected() {
    let h = start(Arc::new(SystemClock)).await;
    let response = h
        .metadata(Method::GET, EVENTS)
        .header("X-Forwarded-For", "10.0.0.1")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("JSON error");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("X-Forwarded-For"))
    );
}

#[tokio::test]
async fn api_version_is_required() {
    let h = start(Arc::new(SystemClock)).await;
    for path in [
        "/metadata/scheduledevents",
        "/metadata/scheduledevents?api-version=",
        "/metadata/instance?format=json",
    ] {
        let response = h.metadata(Method::GET, path).send().await.expect("send");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = response.json().await.expect("JSON error");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("Bad request. api-version was not specified")),
            "{body}"
        );
        assert!(
            body["newest-versions"]
                .as_array()
                .is_some_and(|v| !v.is_empty())
        );
    }
    let response = h
        .metadata(Method::GET, "/metadata/scheduledevents")
        .send()
        .await
        .expect("send");
    let body: Value = response.json().await.expect("JSON error");
    assert_eq!(body["newest-versions"][0], "2020-07-01");
}

#[tokio::test]
async fn a_preempt_is_announced_approved_and_logged() {
    let h = start(Arc::new(SystemClock)).await;
    let created = h
        .admin(
            Method::POST,
            "/admin/events",
            Some(json!({ "type": "Preempt", "notice_seconds": 30, "started_for_seconds": 15 })),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.expect("JSON");
    let id = created["event_id"].as_str().expect("id").to_owned();
    assert_eq!(created["event_status"], "Scheduled");
    assert!(
        created["not_before"]
            .as_str()
            .is_some_and(|t| t.ends_with(" GMT"))
    );

    let document = h.get_document().await;
    assert_eq!(document["DocumentIncarnation"], 2);
    let event = &document["Events"][0];
    assert_eq!(event["EventId"], id.as_str());
    assert_eq!(event["EventStatus"], "Scheduled");
    assert_eq!(event["EventType"], "Preempt");
    assert_eq!(event["ResourceType"], "VirtualMachine");
    assert_eq!(event["Resources"], json!(["vm1"]));
    assert_eq!(event["NotBefore"], created["not_before"]);
    assert_eq!(event["EventSource"], "Platform");
    assert_eq!(event["DurationInSeconds"], -1);

    // The documented sample approves with a lower-case id.
    let body = json!({ "StartRequests": [{ "EventId": id.to_ascii_lowercase() }] }).to_string();
    assert_eq!(h.approve(&body).await.status(), StatusCode::OK);
    assert_eq!(h.approve(&body).await.status(), StatusCode::OK);

    let document = h.get_document().await;
    assert_eq!(document["DocumentIncarnation"], 3);
    assert_eq!(document["Events"][0]["EventId"], id.as_str());
    assert_eq!(document["Events"][0]["EventStatus"], "Started");
    assert_eq!(document["Events"][0]["NotBefore"], "");

    for bad in [
        "not json",
        r#"{"StartRequests":[{"EventId":"00000000-0000-0000-0000-000000000000"}]}"#,
        r#"{"Requests":[]}"#,
    ] {
        let response = h.approve(bad).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        let error: Value = response.json().await.expect("JSON error");
        assert!(error["error"].is_string());
    }

    let approvals: Value = h
        .admin(Method::GET, "/admin/approvals", None)
        .await
        .json()
        .await
        .expect("JSON");
    let approvals = approvals.as_array().expect("a list");
    assert_eq!(approvals.len(), 5);
    assert_eq!(approvals[0]["event_ids"], json!([id.to_ascii_lowercase()]));
    assert_eq!(approvals[0]["body"], body.as_str());
    assert_eq!(approvals[0]["accepted"], true);
    assert!(approvals[0]["at_unix_ms"].as_i64().is_some_and(|ms| ms > 0));
    assert_eq!(approvals[4]["accepted"], false);
    assert_eq!(h.emulator.approvals().len(), 5);
    assert_eq!(h.emulator.stats().scheduled_events_posts, 5);
}

#[tokio::test]
async fn events_start_and_expire_as_the_clock_moves() {
    let clock = ManualClock::starting_at(T0);
    let h = start(clock.clone()).await;
    let id = h.emulator.schedule(
        ScheduleRequest::new(EventType::Freeze)
            .with_notice(Duration::from_secs(30))
            .with_resources(vec!["WestNO_0".into(), "WestNO_1".into()])
            .with_duration_seconds(5),
    );
    let document = h.get_document().await;
    assert_eq!(
        document,
        json!({
            "DocumentIncarnation": 2,
            "Events": [{
                "EventId": id.as_str(),
                "EventStatus": "Scheduled",
                "EventType": "Freeze",
                "ResourceType": "VirtualMachine",
                "Resources": ["WestNO_0", "WestNO_1"],
                "NotBefore": "Mon, 11 Apr 2022 22:26:58 GMT",
                "Description": "Virtual machine is being paused because of a memory-preserving Live Migration operation.",
                "EventSource": "Platform",
                "DurationInSeconds": 5,
            }],
        })
    );
    clock.advance(Duration::from_secs(30));
    let document = h.get_document().await;
    assert_eq!(document["DocumentIncarnation"], 3);
    assert_eq!(document["Events"][0]["EventStatus"], "Started");
    assert_eq!(document["Events"][0]["NotBefore"], "");
    // A Freeze with DurationInSeconds 5 stays Started for 5 s by default.
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        h.get_document().await,
        json!({ "DocumentIncarnation": 4, "Events": [] })
    );
    let stats = h.emulator.stats();
    let expected_times = vec![
        T0,
        T0.plus(Duration::from_secs(30)),
        T0.plus(Duration::from_secs(35)),
    ];
    assert_eq!(stats.recent_get_times, expected_times);
}

#[tokio::test]
async fn status_faults_apply_for_their_count() {
    let h = start(Arc::new(SystemClock)).await;
    h.fault(json!({ "kind": "status", "status": 500, "count": 2 }))
        .await;
    h.fault(json!({ "kind": "status", "status": 429, "count": 1 }))
        .await;
    h.fault(json!({ "kind": "status", "status": 410, "count": 1 }))
        .await;
    h.fault(json!({ "kind": "status", "status": 404, "count": 1 }))
        .await;
    for expected in [500, 500, 429, 410, 404, 200] {
        let (status, body) = h.status_of_get().await;
        assert_eq!(status.as_u16(), expected);
        let body: Value = serde_json::from_str(&body).expect("JSON either way");
        if expected != 200 {
            assert!(body["error"].is_string());
        }
    }
    assert_eq!(h.emulator.stats().faulted_responses, 5);
}

#[tokio::test]
async fn garbage_and_truncated_faults_answer_200_with_unparseable_bodies() {
    let h = start(Arc::new(SystemClock)).await;
    h.emulator
        .schedule(ScheduleRequest::preempt(Duration::from_secs(60)));
    h.fault(json!({ "kind": "garbage", "count": 2 })).await;
    h.fault(json!({ "kind": "truncated" })).await;
    for _ in 0..2 {
        let (status, body) = h.status_of_get().await;
        assert_eq!(status, StatusCode::OK);
        assert!(serde_json::from_str::<Value>(&body).is_err());
        assert!(body.contains("<html>"));
    }
    // `truncated` has no count: it lasts until the faults are cleared.
    for _ in 0..3 {
        let (status, body) = h.status_of_get().await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.starts_with(r#"{"DocumentIncarnation":2"#));
        assert!(serde_json::from_str::<Value>(&body).is_err());
    }
    let pending: Value = h
        .admin(Method::GET, "/admin/faults", None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(pending, json!([{ "kind": "truncated", "count": null }]));
    let cleared = h.admin(Method::DELETE, "/admin/faults", None).await;
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    assert_eq!(h.get_document().await["DocumentIncarnation"], 2);
}

#[tokio::test]
async fn slow_faults_delay_the_answer_once() {
    let h = start(Arc::new(SystemClock)).await;
    h.fault(json!({ "kind": "slow", "delay_ms": 300, "count": 1 }))
        .await;
    let clock = SystemClock;
    let started = clock.now();
    assert_eq!(h.get_document().await["DocumentIncarnation"], 1);
    assert!(clock.now().since(started) >= Duration::from_millis(300));
    let started = clock.now();
    h.get_document().await;
    assert!(clock.now().since(started) < Duration::from_millis(300));
}

#[tokio::test]
async fn slow_faults_wait_on_the_emulator_clock() {
    let clock = ManualClock::starting_at(T0);
    let h = start(clock.clone()).await;
    h.emulator
        .push_fault(Fault::times(FaultKind::Slow(Duration::from_secs(3)), 1));
    let request = h.metadata(Method::GET, EVENTS).send();
    let pending = tokio::spawn(request);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending.is_finished());
    // The event appears during the delay, so the late answer shows it.
    h.emulator
        .schedule(ScheduleRequest::preempt(Duration::from_secs(30)));
    clock.advance(Duration::from_secs(3));
    let response = pending.await.expect("task").expect("send");
    let document: Value = response.json().await.expect("JSON");
    assert_eq!(document["DocumentIncarnation"], 2);
}

#[tokio::test]
async fn settings_switch_numbers_to_strings_and_add_unknown_fields() {
    let h = start(Arc::new(SystemClock)).await;
    h.emulator
        .schedule(ScheduleRequest::preempt(Duration::from_secs(30)).with_duration_seconds(0));
    let response = h
        .admin(
            Method::PUT,
            "/admin/settings",
            Some(json!({ "numbers_as_strings": true })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let settings: Value = response.json().await.expect("JSON");
    assert_eq!(
        settings,
        json!({ "numbers_as_strings": true, "extra_fields": false })
    );
    let document = h.get_document().await;
    assert_eq!(document["DocumentIncarnation"], "2");
    assert_eq!(document["Events"][0]["DurationInSeconds"], "0");
    assert!(document["Events"][0].get("EmulatorUnknownField").is_none());

    h.admin(
        Method::PUT,
        "/admin/settings",
        Some(json!({ "extra_fields": true, "numbers_as_strings": false })),
    )
    .await;
    let document = h.get_document().await;
    assert_eq!(document["DocumentIncarnation"], 2);
    assert!(document["Events"][0]["EmulatorUnknownField"].is_object());
    assert!(h.emulator.settings().extra_fields);
}

#[tokio::test]
async fn admin_endpoints_cancel_start_and_report() {
    let h = start(Arc::new(SystemClock)).await;
    let create = |body: Value| h.admin(Method::POST, "/admin/events", Some(body));
    let scheduled: Value = create(json!({
        "type": "Reboot",
        "notice_seconds": 900,
        "resources": ["vm1", "vm2"],
        "description": "planned maintenance",
        "event_source": "User",
        "duration_seconds": 60,
    }))
    .await
    .json()
    .await
    .expect("JSON");
    let immediate: Value = create(json!({ "type": "Hibernate" }))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(immediate["event_status"], "Started");
    assert_eq!(immediate["not_before"], "");
    let scheduled_id = scheduled["event_id"].as_str().expect("id").to_owned();
    let immediate_id = immediate["event_id"].as_str().expect("id").to_owned();

    let document: Value = h
        .admin(Method::GET, "/admin/events", None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(document["DocumentIncarnation"], 3);
    assert_eq!(document["Events"][0]["EventSource"], "User");
    assert_eq!(document["Events"][0]["Description"], "planned maintenance");
    assert_eq!(document["Events"][0]["Resources"], json!(["vm1", "vm2"]));
    assert_eq!(document["Events"][0]["DurationInSeconds"], 60);
    assert_eq!(document["Events"][1]["EventType"], "Hibernate");

    let path = |id: &str| format!("/admin/events/{id}");
    let conflict = h.admin(Method::DELETE, &path(&immediate_id), None).await;
    assert_eq!(conflict.status(), StatusCode::CONFLICT);
    let started = h
        .admin(
            Method::POST,
            &format!("{}/start", path(&scheduled_id)),
            None,
        )
        .await;
    assert_eq!(started.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        h.emulator.snapshot().event(&scheduled_id).map(|e| e.status),
        Some(EventStatus::Started)
    );

    let another: Value = create(json!({ "type": "Redeploy", "notice_seconds": 600 }))
        .await
        .json()
        .await
        .expect("JSON");
    let another_id = another["event_id"].as_str().expect("id");
    let cancelled = h.admin(Method::DELETE, &path(another_id), None).await;
    assert_eq!(cancelled.status(), StatusCode::NO_CONTENT);
    let again = h.admin(Method::DELETE, &path(another_id), None).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let missing = h
        .admin(Method::POST, "/admin/events/nope/start", None)
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    // Admin reads are neither counted nor faulted.
    assert_eq!(h.emulator.stats().scheduled_events_gets, 0);
    // created, created, started, created, cancelled.
    assert_eq!(h.emulator.snapshot().incarnation, 6);

    h.get_document().await;
    h.get_document().await;
    let stats: Value = h
        .admin(Method::GET, "/admin/stats", None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(stats["scheduled_events_gets"], 2);
    assert_eq!(
        stats["recent_get_times_unix_ms"].as_array().map(Vec::len),
        Some(2)
    );
    let reset = h.admin(Method::DELETE, "/admin/stats", None).await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_eq!(h.emulator.stats().scheduled_events_gets, 0);
}

#[tokio::test]
async fn admin_refuses_bad_bodies() {
    let h = start(Arc::new(SystemClock)).await;
    for (path, body) in [
        ("/admin/events", json!({ "typ": "Preempt" })),
        (
            "/admin/events",
            json!({ "type": "Preempt", "notice_seconds": -1 }),
        ),
        (
            "/admin/events",
            json!({ "type": "Preempt", "event_source": "Azure" }),
        ),
        ("/admin/faults", json!({ "kind": "status", "status": 200 })),
        ("/admin/faults", json!({ "kind": "garbage", "count": 0 })),
        ("/admin/faults", json!({ "kind": "slow" })),
        ("/admin/faults", json!({ "kind": "explode" })),
        ("/admin/faults", json!({ "kind": "garbage", "cout": 2 })),
    ] {
        let response = h.admin(Method::POST, path, Some(body.clone())).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error: Value = response.json().await.expect("JSON error");
        assert!(error["error"].is_string(), "{body}");
    }
    let response = h
        .admin(
            Method::PUT,
            "/admin/settings",
            Some(json!({ "numbers": true })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(h.emulator.pending_faults().is_empty());
    assert_eq!(h.emulator.snapshot().incarnation, 1);
}

#[tokio::test]
async fn instance_metadata_describes_the_vm() {
    let h = start(Arc::new(SystemClock)).await;
    let response = h
        .metadata(Method::GET, INSTANCE)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.expect("JSON");
    let compute = &document["compute"];
    let config = ImdsConfig::spot_vm("vm1");
    assert_eq!(compute["name"], "vm1");
    assert_eq!(compute["location"], config.location.as_str());
    assert_eq!(compute["vmSize"], config.vm_size.as_str());
    assert_eq!(compute["vmId"], config.vm_id.as_str());
    assert_eq!(
        compute["resourceGroupName"],
        config.resource_group_name.as_str()
    );
    assert_eq!(compute["subscriptionId"], config.subscription_id.as_str());
    assert_eq!(compute["priority"], "Spot");
    assert_eq!(compute["evictionPolicy"], "Delete");
    assert_eq!(compute["osType"], "Linux");
    assert_eq!(compute["resourceId"], config.resource_id().as_str());
    assert!(
        document["network"]["interface"][0]["ipv4"]["ipAddress"][0]["privateIpAddress"].is_string()
    );
    assert_eq!(h.emulator.stats().instance_gets, 1);
}

#[tokio::test]
async fn the_convenience_spawn_serves_on_loopback() {
    let (address, server) = spawn_on_loopback(ImdsConfig::default())
        .await
        .expect("bind");
    assert!(address.ip().is_loopback());
    let response = client()
        .get(format!("http://{address}{EVENTS}"))
        .header("Metadata", "true")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    server.abort();
}
