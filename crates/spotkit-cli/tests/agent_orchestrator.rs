//! `spotkit agent` reporting to the orchestrator's real endpoint (`notice_router`): heartbeats
//! while healthy, the Preempt notice the moment it is seen, and an unhealthy heartbeat at once
//! when the drain starts.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use spotkit_cloud::SystemClock;
use spotkit_core::Timestamp;
use spotkit_core::events::EventType;
use spotkit_core::orchestrator::{PoolMachine, PoolSpec, Target};
use spotkit_orchestrator::{
    AgentReport, EndpointToken, StatusView, notice_router, require_bearer_token,
};
use tokio::sync::{mpsc, watch};

const VM: &str = "pool-0003";

async fn next(rx: &mut mpsc::Receiver<AgentReport>, what: &str) -> AgentReport {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_posts_heartbeats_and_its_notice_to_the_orchestrator() {
    let emulator = Emulator::start(VM);
    let spec = PoolSpec::new("pool", Target::Vms(1), vec![]);
    let now = Timestamp::from_unix_secs(1_767_225_600);
    let machine = PoolMachine::new(spec.clone(), now, 1);
    let (_status_tx, status) =
        watch::channel(StatusView::build(&spec, &machine.status(), &[], now));
    let (tx, mut rx) = mpsc::channel(64);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = notice_router(tx, status, Arc::new(SystemClock));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let notify = format!("{base}/notice");
    let heartbeat = format!("{base}/heartbeat");
    let mut agent = Agent::spawn(
        &emulator,
        &[
            "--vm-name",
            VM,
            "--notify-url",
            &notify,
            "--heartbeat-url",
            &heartbeat,
            "--heartbeat-interval",
            "1s",
            "--on-preempt",
            "true",
        ],
        None,
    );
    for _ in 0..2 {
        assert_eq!(
            next(&mut rx, "a healthy heartbeat").await,
            AgentReport::Heartbeat {
                vm_name: VM.into(),
                healthy: true
            }
        );
    }
    let (_event_id, not_before) = emulator.preempt(VM, 30).await;
    let mut saw_notice = false;
    let mut saw_unhealthy = false;
    while !(saw_notice && saw_unhealthy) {
        match next(&mut rx, "the notice and an unhealthy heartbeat").await {
            AgentReport::Notice {
                vm_name,
                event_type,
                not_before: nb,
                ..
            } => {
                assert_eq!((vm_name.as_str(), event_type), (VM, EventType::Preempt));
                assert_eq!(nb.map(Timestamp::unix_millis), not_before);
                saw_notice = true;
            }
            AgentReport::Heartbeat { healthy, .. } => saw_unhealthy |= !healthy,
        }
    }
    let _ = agent.wait_exit(Duration::from_secs(10)).await;
}

/// The endpoint with a token (`spotkit orchestrate --token-file`): an agent given the same token
/// file gets its heartbeats and notice through; one with another token is refused (401, logged
/// by the agent without the token) and nothing reaches the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_endpoint_token_only_an_agent_holding_it_is_heard() {
    let emulator = Emulator::start(VM);
    let spec = PoolSpec::new("pool", Target::Vms(1), vec![]);
    let now = Timestamp::from_unix_secs(1_767_225_600);
    let machine = PoolMachine::new(spec.clone(), now, 1);
    let (_status_tx, status) =
        watch::channel(StatusView::build(&spec, &machine.status(), &[], now));
    let (tx, mut rx) = mpsc::channel(64);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    const TOKEN: &str = "c0ffee-0123456789-endpoint-token";
    let app = require_bearer_token(
        notice_router(tx, status, Arc::new(SystemClock)),
        EndpointToken::new(TOKEN).unwrap(),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let heartbeat = format!("{base}/heartbeat");
    let notify = format!("{base}/notice");

    let spawn = |token: &str| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, format!("{token}\n")).unwrap();
        let file = file.to_str().unwrap().to_string();
        Agent::spawn_in(
            dir,
            &emulator,
            &[
                "--vm-name",
                VM,
                "--notify-url",
                &notify,
                "--heartbeat-url",
                &heartbeat,
                "--heartbeat-interval",
                "1s",
                "--orchestrator-token-file",
                &file,
                "--on-preempt",
                "true",
            ],
            None,
            &[],
        )
    };

    let mut stranger = spawn("not-the-token-but-long-enough");
    let log = eventually(
        "the agent to log its refused heartbeat",
        Duration::from_secs(10),
        async || {
            let log = stranger.log();
            log.contains("heartbeat refused").then_some(log)
        },
    )
    .await;
    assert!(log.contains("401"), "{log}");
    assert!(
        !log.contains("not-the-token"),
        "the agent logged its token: {log}"
    );
    assert!(
        rx.try_recv().is_err(),
        "a refused heartbeat reached the pool"
    );
    stranger.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = stranger.wait_exit(Duration::from_secs(5)).await;

    let mut agent = spawn(TOKEN);
    assert_eq!(
        next(&mut rx, "a healthy heartbeat").await,
        AgentReport::Heartbeat {
            vm_name: VM.into(),
            healthy: true
        }
    );
    emulator.preempt(VM, 30).await;
    loop {
        if let AgentReport::Notice { event_type, .. } = next(&mut rx, "the notice").await {
            assert_eq!(event_type, EventType::Preempt);
            break;
        }
    }
    assert!(!agent.log().contains(TOKEN), "the agent logged its token");
    let _ = agent.wait_exit(Duration::from_secs(10)).await;
}
