//! The agent supervising the worker: a Preempt drains the worker inside the notice, in-flight
//! handlers checkpoint, nothing is lost, and the next worker resumes from the checkpoints.
#![allow(clippy::disallowed_methods)] // the test bounds real elapsed time

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use spotkit_cloud::{ObjectStore, Queue, SystemClock};
use spotkit_embedded::{SqliteQueue, SqliteStore};

const VM: &str = "spot-worker-vm";

/// Counts to 100 in steps of $STEP_SECONDS, checkpointing on SIGTERM; resumes from a checkpoint.
const HANDLER: &str = r#"
i=$(cat "$SPOTKIT_CHECKPOINT_FILE" 2>/dev/null || echo 0); from=$i
trap 'echo $i > "$SPOTKIT_CHECKPOINT_FILE.tmp"; mv "$SPOTKIT_CHECKPOINT_FILE.tmp" "$SPOTKIT_CHECKPOINT_FILE"; exit 75' TERM
while [ $i -lt 100 ]; do sleep $STEP_SECONDS; i=$((i+1)); done
echo "done from $from" > "$SPOTKIT_RESULT_FILE"
"#;

fn worker_args(db: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "worker".into(),
        "--queue".into(),
        format!("sqlite:{}?name=jobs", db.display()),
        "--store".into(),
        format!("sqlite:{}?name=effects", db.display()),
        "--concurrency".into(),
        "2".into(),
        "--prefetch".into(),
        "2".into(),
        "--shutdown-budget".into(),
        "3s".into(),
        "--checkpoint-grace".into(),
        "1s".into(),
    ];
    v.extend(extra.iter().map(|s| (*s).to_string()));
    v.extend(["--".into(), "sh".into(), "-c".into(), HANDLER.into()]);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preempt_drains_the_worker_checkpoints_in_flight_work_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("work.db");
    let queue = SqliteQueue::open(
        &format!("sqlite:{}?name=jobs", db.display()),
        Arc::new(SystemClock),
    )
    .unwrap();
    let store = SqliteStore::open(&format!("sqlite:{}?name=effects", db.display())).unwrap();
    queue.create_if_missing().await.unwrap();
    for i in 0..8 {
        queue
            .send(format!("job-{i}").as_bytes(), Duration::ZERO)
            .await
            .unwrap();
    }

    let emulator = Emulator::start(VM);
    let log = dir.path().join("agent.log");
    let spotkit_bin = env!("CARGO_BIN_EXE_spotkit");
    let mut agent = spotkit()
        .args([
            "agent",
            "--imds-url",
            &emulator.url,
            "--vm-name",
            VM,
            "--poll-interval",
            "250ms",
            "--safety-margin",
            "2s",
            "--",
        ])
        .arg(spotkit_bin)
        .args(worker_args(&db, &[]))
        .env("STEP_SECONDS", "0.1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Two handlers running, two prefetched, four waiting in the queue.
    eventually(
        "the worker to take four messages",
        Duration::from_secs(15),
        async || (queue.peek(32).await.unwrap().len() == 4).then_some(()),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (_, not_before) = emulator.preempt(VM, 10).await;
    let not_before = not_before.unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = agent.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "agent did not finish; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "worker exits 0 after a graceful drain; log:\n{log_text}"
    );
    let approvals = emulator.approvals().await;
    assert_eq!(approvals.len(), 1, "approved once the worker was down");
    assert!(
        approvals[0]["at_unix_ms"].as_i64().unwrap() < not_before,
        "before NotBefore"
    );

    // Nothing lost: every message is either committed or back on the queue, visible now.
    let committed = store.list("ledger/").await.unwrap().len();
    let visible = queue.peek(32).await.unwrap().len();
    assert_eq!(
        committed + visible,
        8,
        "committed {committed} + visible {visible}"
    );
    assert_eq!(queue.approximate_len().await.unwrap(), 8 - committed as u64);
    let checkpoints = store.list("checkpoints/").await.unwrap().len();
    assert_eq!(
        checkpoints, 2,
        "both in-flight handlers checkpointed; log:\n{log_text}"
    );

    // The next VM's worker resumes the two from their checkpoints and finishes everything.
    let out = spotkit()
        .args(worker_args(&db, &["--exit-when-empty"]))
        .env("STEP_SECONDS", "0.001")
        .env("SPOTKIT_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(queue.approximate_len().await.unwrap(), 0);
    let mut resumed = 0;
    for key in store.list("ledger/").await.unwrap() {
        let effect = String::from_utf8(store.get(&key).await.unwrap().unwrap().body).unwrap();
        if !effect.trim().ends_with("from 0") {
            resumed += 1;
        }
    }
    assert_eq!(store.list("ledger/").await.unwrap().len(), 8);
    assert_eq!(resumed, 2, "two effects resumed from a checkpoint");
}
