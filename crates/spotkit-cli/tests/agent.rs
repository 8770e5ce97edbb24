//! The real `spotkit agent` binary against the real `spotkit imds-emulator`, on loopback.

mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use serde_json::json;

const VM: &str = "spot-vm-1";

fn term_time(workload_file: &str) -> i64 {
    workload_file
        .lines()
        .find_map(|l| l.strip_prefix("term "))
        .unwrap_or_else(|| panic!("workload never got SIGTERM: {workload_file:?}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn preempt_with_30s_notice_drains_approves_and_exits_with_the_workload_code() {
    let emulator = Emulator::start(VM);
    let dir = tempfile::tempdir().unwrap();
    let workload = polite_workload(dir.path(), 3);
    // A proxy that would swallow every request: IMDS must be reached directly anyway.
    let mut agent = Agent::spawn_in(
        dir,
        &emulator,
        &["--vm-name", VM],
        Some(workload),
        &[
            ("HTTP_PROXY", "http://127.0.0.1:9"),
            ("http_proxy", "http://127.0.0.1:9"),
        ],
    );
    agent.wait_started(&emulator).await;

    let scheduled_at = unix_ms_now();
    let (event_id, not_before) = emulator.preempt(VM, 30).await;
    let not_before = not_before.expect("a Scheduled event has NotBefore");
    let status = agent.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(
        exit_code(status),
        3,
        "the workload's exit code; log:\n{}",
        agent.log()
    );

    let term_at = term_time(&agent.file("workload"));
    assert!(
        term_at - scheduled_at < 1000,
        "SIGTERM within one 250ms poll plus slack, took {} ms",
        term_at - scheduled_at
    );
    let approvals = emulator.approvals().await;
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    let body: serde_json::Value =
        serde_json::from_str(approvals[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({"StartRequests": [{"EventId": event_id}]}));
    let approved_at = approvals[0]["at_unix_ms"].as_i64().unwrap();
    assert!(
        approved_at >= term_at,
        "approved only once the workload was down"
    );
    assert!(approved_at < not_before, "approved well before NotBefore");
}

#[tokio::test]
async fn workload_that_ignores_sigterm_is_killed_before_a_5s_deadline_then_approved() {
    let emulator = Emulator::start(VM);
    let dir = tempfile::tempdir().unwrap();
    let workload = stubborn_workload(dir.path());
    let mut agent = Agent::spawn_in(
        dir,
        &emulator,
        &["--vm-name", VM, "--safety-margin", "1s"],
        Some(workload),
        &[],
    );
    agent.wait_started(&emulator).await;

    let (event_id, not_before) = emulator.preempt(VM, 5).await;
    let not_before = not_before.unwrap();
    let status = agent.wait_exit(Duration::from_secs(10)).await;
    let exited_at = unix_ms_now();
    assert_eq!(exit_code(status), 137, "SIGKILLed; log:\n{}", agent.log());
    assert!(
        exited_at < not_before,
        "killed before NotBefore ({} ms early)",
        not_before - exited_at
    );
    assert!(
        exited_at > not_before - 2500,
        "but not long before the deadline of NotBefore - 1s ({} ms early)",
        not_before - exited_at
    );
    let approvals = emulator.approvals().await;
    assert_eq!(approvals.len(), 1);
    assert!(approvals[0]["event_ids"].to_string().contains(&event_id));
    assert!(approvals[0]["at_unix_ms"].as_i64().unwrap() < not_before);
    assert!(agent.log().contains("killing it"));
}

#[tokio::test]
async fn started_event_with_empty_not_before_is_drained_at_once() {
    let emulator = Emulator::start(VM);
    let dir = tempfile::tempdir().unwrap();
    let workload = polite_workload(dir.path(), 0);
    let mut agent = Agent::spawn_in(dir, &emulator, &["--vm-name", VM], Some(workload), &[]);
    agent.wait_started(&emulator).await;
    let (event_id, not_before) = emulator.preempt(VM, 0).await;
    assert_eq!(not_before, None, "created Started, NotBefore empty");
    let status = agent.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(exit_code(status), 0, "log:\n{}", agent.log());
    let approvals = emulator.approvals().await;
    assert_eq!(approvals.len(), 1);
    assert!(approvals[0]["event_ids"].to_string().contains(&event_id));
}

#[tokio::test]
async fn freeze_runs_the_hook_once_and_never_stops_the_workload() {
    let emulator = Emulator::start(VM);
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks");
    let hook = format!(
        "echo \"$SPOTKIT_EVENT_TYPE $SPOTKIT_EVENT_ID $SPOTKIT_VM_NAME\" >> {}",
        hooks.display()
    );
    let workload = polite_workload(dir.path(), 0);
    let mut agent = Agent::spawn_in(
        dir,
        &emulator,
        &["--vm-name", VM, "--on-event", &hook],
        Some(workload),
        &[],
    );
    agent.wait_started(&emulator).await;
    // Scheduled for 2 s, then Started for 1 s, then gone: three incarnations of one event.
    let (freeze_id, _) = emulator
        .schedule(json!({"type": "Freeze", "notice_seconds": 2, "resources": [VM], "duration_seconds": 5, "started_for_seconds": 1}))
        .await;
    // Incarnation changes that do not change our event.
    emulator
        .schedule(json!({"type": "Reboot", "notice_seconds": 900, "resources": ["another-vm"]}))
        .await;
    tokio::time::sleep(Duration::from_millis(4000)).await;
    let before = emulator.scheduled_event_gets().await;
    assert!(before >= 10, "kept polling: {before}");
    assert!(
        agent.is_running(),
        "a Freeze must not stop the agent; log:\n{}",
        agent.log()
    );
    assert!(!agent.file("workload").contains("term"), "nor the workload");
    let hook_lines = std::fs::read_to_string(&hooks).unwrap_or_default();
    assert_eq!(
        hook_lines.lines().collect::<Vec<_>>(),
        vec![format!("Freeze {freeze_id} {VM}")],
        "the hook ran exactly once"
    );
    assert!(
        emulator.approvals().await.is_empty(),
        "Freeze is not approved"
    );

    // Stopping the agent itself drains the workload without approving anything.
    agent.signal(Signal::SIGTERM);
    let status = agent.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(exit_code(status), 0);
    assert!(agent.file("workload").contains("term"));
    assert!(emulator.approvals().await.is_empty());
}

#[tokio::test]
async fn preempt_for_another_vm_is_ignored() {
    let emulator = Emulator::start(VM);
    let dir = tempfile::tempdir().unwrap();
    let workload = polite_workload(dir.path(), 0);
    let mut agent = Agent::spawn_in(dir, &emulator, &["--vm-name", VM], Some(workload), &[]);
    agent.wait_started(&emulator).await;
    emulator
        .schedule(json!({"type": "Preempt", "notice_seconds": 30, "resources": ["spot-vm-2", "spot-vm-3"]}))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(agent.is_running());
    assert!(!agent.file("workload").contains("term"));
    assert!(emulator.approvals().await.is_empty());
    let log = agent.log();
    assert_eq!(
        log.matches("ignoring scheduled event").count(),
        1,
        "logged once, not once per poll:\n{log}"
    );
}

#[tokio::test]
async fn faults_are_survived_logged_once_per_change_and_a_later_preempt_still_drains() {
    let emulator = Emulator::start(VM);
    let dir = tempfile::tempdir().unwrap();
    let workload = polite_workload(dir.path(), 0);
    let mut agent = Agent::spawn_in(
        dir,
        &emulator,
        &["--vm-name", VM, "--poll-timeout", "500ms"],
        Some(workload),
        &[],
    );
    agent.wait_started(&emulator).await;
    for fault in [
        json!({"kind": "status", "status": 500, "count": 2}),
        json!({"kind": "status", "status": 429, "count": 1}),
        json!({"kind": "garbage", "count": 1}),
        json!({"kind": "truncated", "count": 1}),
        json!({"kind": "slow", "delay_ms": 1500, "count": 1}),
    ] {
        emulator.fault(fault).await;
    }
    let log_path = agent.path("agent.log");
    eventually(
        "recovery from the faults",
        Duration::from_secs(30),
        async || {
            std::fs::read_to_string(&log_path)
                .ok()
                .filter(|l| l.contains("answering again"))
        },
    )
    .await;
    assert!(agent.is_running(), "faults never stop the agent");
    assert!(!agent.file("workload").contains("term"), "nor the workload");
    let log = agent.log();
    let failing = log.matches("scheduled events poll failing").count();
    assert_eq!(
        failing, 4,
        "one line per change of failure kind (500, 429, malformed twice, timeout):\n{log}"
    );
    for kind in ["ServerError(500)", "Throttled", "Malformed", "Timeout"] {
        assert!(log.contains(kind), "{kind} reported:\n{log}");
    }

    let (event_id, _) = emulator.preempt(VM, 30).await;
    let status = agent.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(exit_code(status), 0);
    assert!(
        emulator.approvals().await[0]["event_ids"]
            .to_string()
            .contains(&event_id)
    );
}

#[tokio::test]
async fn integers_as_strings_and_unknown_fields_and_types_are_tolerated() {
    let emulator = Emulator::start(VM);
    emulator
        .settings(json!({"numbers_as_strings": true, "extra_fields": true}))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let workload = polite_workload(dir.path(), 0);
    let mut agent = Agent::spawn_in(dir, &emulator, &["--vm-name", VM], Some(workload), &[]);
    agent.wait_started(&emulator).await;
    emulator
        .schedule(json!({"type": "Hibernate", "notice_seconds": 60, "resources": [VM]}))
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(agent.is_running());
    let (event_id, _) = emulator.preempt(VM, 30).await;
    let status = agent.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(exit_code(status), 0, "log:\n{}", agent.log());
    assert!(
        emulator.approvals().await[0]["event_ids"]
            .to_string()
            .contains(&event_id)
    );
    let log = agent.log();
    assert_eq!(
        log.matches("Hibernate").count(),
        1,
        "unknown type logged once:\n{log}"
    );
}

#[tokio::test]
async fn vm_name_comes_from_instance_metadata_when_not_given() {
    let emulator = Emulator::start(VM);
    let dir = tempfile::tempdir().unwrap();
    let workload = polite_workload(dir.path(), 0);
    let mut agent = Agent::spawn_in(dir, &emulator, &[], Some(workload), &[]);
    agent.wait_started(&emulator).await;
    emulator.preempt(VM, 30).await;
    let status = agent.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(exit_code(status), 0, "log:\n{}", agent.log());
    assert!(agent.log().contains(VM));
    assert_eq!(emulator.approvals().await.len(), 1);
}

#[tokio::test]
async fn polling_stays_under_the_imds_rate_limit_and_near_the_interval() {
    let emulator = Emulator::start(VM);
    let dir = tempfile::tempdir().unwrap();
    let workload = polite_workload(dir.path(), 0);
    let mut agent = Agent::spawn_in(dir, &emulator, &["--vm-name", VM], Some(workload), &[]);
    agent.wait_started(&emulator).await;
    let before = emulator.scheduled_event_gets().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let polls = emulator.scheduled_event_gets().await - before;
    // 250 ms interval: about 12 in 3 s; IMDS allows 15 (5/s).
    assert!(
        (6..=13).contains(&polls),
        "{polls} polls in 3 s: at most 4.8/s, and not stalled"
    );
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(10)).await;
}
