//! Hooks-only mode, drain and notify callbacks, the warmup gate and the health endpoints.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use common::*;
use serde_json::Value;

const VM: &str = "spot-vm-7";

#[derive(Clone, Default)]
struct Received {
    notices: Arc<Mutex<Vec<(String, i64, Value)>>>,
}

/// A local HTTP server that records JSON POSTs to /notify and answers /drain after 700 ms.
async fn callback_server() -> (String, Received) {
    let received = Received::default();
    let app = axum::Router::new()
        .route(
            "/notify",
            post(
                |State(r): State<Received>, Json(v): Json<Value>| async move {
                    r.notices
                        .lock()
                        .unwrap()
                        .push(("notify".into(), unix_ms_now(), v));
                },
            ),
        )
        .route(
            "/drain",
            post(
                |State(r): State<Received>, Json(v): Json<Value>| async move {
                    tokio::time::sleep(Duration::from_millis(700)).await;
                    r.notices
                        .lock()
                        .unwrap()
                        .push(("drain".into(), unix_ms_now(), v));
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_only_mode_notifies_at_once_waits_for_drain_hook_and_callback_then_approves() {
    let emulator = Emulator::start(VM);
    let (server, received) = callback_server().await;
    let dir = tempfile::tempdir().unwrap();
    let hook_file = dir.path().join("hook");
    let hook = format!(
        "sleep 1; echo \"$SPOTKIT_EVENT_TYPE $SPOTKIT_DEADLINE_UNIX_MS\" > {}",
        hook_file.display()
    );
    let notify = format!("{server}/notify");
    let drain = format!("{server}/drain");
    let mut agent = Agent::spawn_in(
        dir,
        &emulator,
        &[
            "--vm-name",
            VM,
            "--on-preempt",
            &hook,
            "--notify-url",
            &notify,
            "--drain-url",
            &drain,
        ],
        None,
        &[],
    );
    eventually("a first poll", Duration::from_secs(10), async || {
        (emulator.scheduled_event_gets().await > 0).then_some(())
    })
    .await;
    let scheduled_at = unix_ms_now();
    let (event_id, not_before) = emulator.preempt(VM, 30).await;
    let status = agent.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(exit_code(status), 0, "log:\n{}", agent.log());

    let hook_out = agent.file("hook");
    assert!(
        hook_out.starts_with("Preempt "),
        "drain hook ran: {hook_out:?}"
    );
    let deadline: i64 = hook_out.trim().split(' ').nth(1).unwrap().parse().unwrap();
    assert_eq!(
        deadline,
        not_before.unwrap() - 5000,
        "NotBefore - default 5s margin"
    );

    let notices = received.notices.lock().unwrap().clone();
    let notify = notices
        .iter()
        .find(|n| n.0 == "notify")
        .expect("orchestrator notified");
    assert!(
        notify.1 - scheduled_at < 1000,
        "notified within a poll: {} ms",
        notify.1 - scheduled_at
    );
    assert_eq!(notify.2["vm_name"], VM);
    assert_eq!(notify.2["event_id"], event_id.as_str());
    assert_eq!(notify.2["event_type"], "Preempt");
    assert!(notify.2["not_before"].as_str().unwrap().ends_with('Z'));
    assert!(notify.2["drain_deadline"].is_string());
    let drained = notices
        .iter()
        .find(|n| n.0 == "drain")
        .expect("drain callback called");

    let approvals = emulator.approvals().await;
    assert_eq!(approvals.len(), 1);
    let approved_at = approvals[0]["at_unix_ms"].as_i64().unwrap();
    assert!(
        approved_at >= drained.1,
        "approved after the drain callback answered"
    );
    assert!(
        approved_at - scheduled_at >= 1000,
        "and after the 1 s drain hook"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warmup_gate_holds_readyz_until_the_check_passes_and_metrics_count_polls() {
    let emulator = Emulator::start(VM);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let ready_file = dir.path().join("ready");
    let check = format!("test -e {}", ready_file.display());
    let workload = polite_workload(dir.path(), 0);
    let mut agent = Agent::spawn_in(
        dir,
        &emulator,
        &[
            "--vm-name",
            VM,
            "--listen",
            &listen,
            "--ready-check",
            &check,
        ],
        Some(workload),
        &[],
    );
    agent.wait_started(&emulator).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{listen}");
    let get = async |path: &str| {
        let r = http.get(format!("{base}{path}")).send().await.ok()?;
        Some((r.status().as_u16(), r.text().await.ok()?))
    };
    let (code, _) = eventually("healthz", Duration::from_secs(5), async || {
        get("/healthz").await
    })
    .await;
    assert_eq!(code, 200);
    let (code, body) = get("/readyz").await.unwrap();
    assert_eq!((code, body.trim()), (503, "warming up"));
    std::fs::write(&ready_file, "").unwrap();
    eventually("readyz to pass", Duration::from_secs(5), async || {
        get("/readyz").await.filter(|(c, _)| *c == 200)
    })
    .await;
    let (_, metrics) = get("/metrics").await.unwrap();
    let polls: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("spotkit_agent_polls_total "))
        .expect("polls counter")
        .parse()
        .unwrap();
    assert!(polls >= 1.0, "{metrics}");
    assert!(metrics.contains("spotkit_agent_ready 1"), "{metrics}");

    emulator.preempt(VM, 30).await;
    agent.wait_exit(Duration::from_secs(10)).await;
}
