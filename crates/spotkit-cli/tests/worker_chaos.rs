//! Chaos: 1,000 messages, three `spotkit worker` processes SIGKILLed at random points and
//! restarted, one graceful shutdown (SIGTERM, as the agent sends on Preempt) in the middle.
//! Afterwards every message's effect exists exactly once, the queue is empty, and the poison
//! queue holds exactly the injected poison messages.
#![allow(clippy::disallowed_methods)] // the test bounds real elapsed time

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::spotkit;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use spotkit_cloud::{ObjectStore, Queue, SystemClock};
use spotkit_embedded::{SqliteQueue, SqliteStore};
use spotkit_worker::{PoisonRecord, encode_envelope, ledger_key};

const MESSAGES: usize = 1000;
const FAILING: usize = 10;
const MALFORMED: usize = 5;

/// A tiny seeded generator so a failing run can be replayed with SPOTKIT_CHAOS_SEED.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn start_worker(db: &Path, dir: &Path, n: usize) -> Child {
    let handler = format!(
        "body=$(cat); echo \"$SPOTKIT_IDEMPOTENCY_KEY\" >> {attempts}; \
         case \"$body\" in fail*) exit 1;; esac; sleep 0.02; printf 'effect:%s' \"$body\" > \"$SPOTKIT_RESULT_FILE\"",
        attempts = dir.join("attempts").display()
    );
    spotkit()
        .env("SPOTKIT_LOG", "warn")
        .args(["worker", "--queue"])
        .arg(format!("sqlite:{}?name=jobs", db.display()))
        .arg("--store")
        .arg(format!("sqlite:{}?name=effects", db.display()))
        .args([
            "--lease",
            "3s",
            "--max-dequeue",
            "3",
            "--concurrency",
            "4",
            "--prefetch",
            "2",
        ])
        .args(["--shutdown-budget", "3s", "--checkpoint-grace", "1s"])
        .arg("--scratch")
        .arg(dir)
        .args(["--", "sh", "-c", &handler])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("worker-{n}.log"))).unwrap())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_preempted_workers_lose_nothing_and_commit_each_effect_once() {
    let seed: u64 = std::env::var("SPOTKIT_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_126);
    eprintln!("chaos seed {seed} (replay: SPOTKIT_CHAOS_SEED={seed})");
    let mut rng = Lcg(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chaos.db");
    let queue = SqliteQueue::open(
        &format!("sqlite:{}?name=jobs", db.display()),
        Arc::new(SystemClock),
    )
    .unwrap();
    let poison = queue.sibling("jobs-poison");
    let store = SqliteStore::open(&format!("sqlite:{}?name=effects", db.display())).unwrap();
    queue.create_if_missing().await.unwrap();

    let mut expected_effects = BTreeSet::new();
    let mut expected_poison = BTreeSet::new();
    for i in 0..MESSAGES {
        if i < FAILING {
            let body = format!("fail-{i}");
            queue.send(body.as_bytes(), Duration::ZERO).await.unwrap();
            expected_poison.insert(body.into_bytes());
        } else if i < FAILING + MALFORMED {
            let body = format!("{{\"spotkit_envelope\":1,\"key\":\"bad-{i}\"}}");
            queue.send(body.as_bytes(), Duration::ZERO).await.unwrap();
            expected_poison.insert(body.into_bytes());
        } else if i % 2 == 0 {
            // Producer-chosen key, sent twice: the effect must still exist once.
            let key = format!("order-{i}");
            let body = format!("job-{i}");
            queue
                .send(&encode_envelope(&key, body.as_bytes()), Duration::ZERO)
                .await
                .unwrap();
            if i % 10 == 0 {
                queue
                    .send(&encode_envelope(&key, body.as_bytes()), Duration::ZERO)
                    .await
                    .unwrap();
            }
            expected_effects.insert((ledger_key(&key), format!("effect:{body}")));
        } else {
            let body = format!("job-{i}");
            queue.send(body.as_bytes(), Duration::ZERO).await.unwrap();
            expected_effects.insert((String::new(), format!("effect:{body}")));
        }
    }

    let mut workers: Vec<(Child, Instant)> = (0..3)
        .map(|n| (start_worker(&db, dir.path(), n), Instant::now()))
        .collect();
    let mut started = 3;
    let (mut kills, mut preempted) = (0, false);
    let begin = Instant::now();
    loop {
        assert!(
            begin.elapsed() < Duration::from_secs(150),
            "chaos run did not converge (seed {seed})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        if queue.approximate_len().await.unwrap() == 0 {
            break;
        }
        for (child, at) in &mut workers {
            // Restart a worker that exited on its own (it should not; the check keeps the run honest).
            if child.try_wait().unwrap().is_some() {
                *child = start_worker(&db, dir.path(), started);
                *at = Instant::now();
                started += 1;
            }
        }
        if begin.elapsed() < Duration::from_secs(12) && rng.next().is_multiple_of(4) {
            let (child, at) = &mut workers[usize::try_from(rng.next() % 3).unwrap()];
            kill(
                Pid::from_raw(i32::try_from(child.id()).unwrap()),
                Signal::SIGKILL,
            )
            .unwrap();
            let _ = child.wait();
            kills += 1;
            *child = start_worker(&db, dir.path(), started);
            *at = Instant::now();
            started += 1;
        }
        let (child, at) = &mut workers[0];
        if !preempted
            && begin.elapsed() > Duration::from_secs(3)
            && at.elapsed() > Duration::from_secs(1)
        {
            // A Preempt: the agent SIGTERMs the worker, which must finish inside its 3 s budget.
            preempted = true;
            kill(
                Pid::from_raw(i32::try_from(child.id()).unwrap()),
                Signal::SIGTERM,
            )
            .unwrap();
            let t = Instant::now();
            let status = loop {
                if let Some(s) = child.try_wait().unwrap() {
                    break s;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(6),
                    "graceful shutdown overran its budget"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            assert!(status.success(), "graceful shutdown exits 0, got {status}");
            *child = start_worker(&db, dir.path(), started);
            *at = Instant::now();
            started += 1;
        }
    }
    for (child, _) in &mut workers {
        let _ = kill(
            Pid::from_raw(i32::try_from(child.id()).unwrap()),
            Signal::SIGTERM,
        );
        let _ = child.wait();
    }
    eprintln!(
        "{kills} workers killed, {started} started, converged in {:?}",
        begin.elapsed()
    );
    assert!(kills >= 3, "the chaos actually happened");
    assert!(preempted);

    // Every effect exactly once, with the right content.
    let ledger = store.list("ledger/").await.unwrap();
    let mut committed = BTreeSet::new();
    for key in &ledger {
        let body = String::from_utf8(store.get(key).await.unwrap().unwrap().body).unwrap();
        assert!(
            committed.insert(body.clone()),
            "effect {body} committed twice"
        );
    }
    let expected: BTreeSet<String> = expected_effects.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(
        committed.len(),
        expected.len(),
        "one effect per distinct message"
    );
    assert_eq!(committed, expected, "no effect lost, none invented");
    for (key, effect) in expected_effects.iter().filter(|(k, _)| !k.is_empty()) {
        let got = store
            .get(key)
            .await
            .unwrap()
            .expect("producer key committed");
        assert_eq!(String::from_utf8(got.body).unwrap(), *effect);
    }

    assert_eq!(queue.approximate_len().await.unwrap(), 0, "queue empty");
    let mut poisoned = BTreeSet::new();
    let mut seen = 0;
    loop {
        let batch = poison.receive(32, Duration::from_secs(60)).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for d in batch {
            let record: PoisonRecord = serde_json::from_slice(&d.body).unwrap();
            poisoned.insert(record.body());
            seen += 1;
        }
    }
    assert_eq!(
        poisoned, expected_poison,
        "exactly the injected poison messages"
    );
    assert_eq!(seen, FAILING + MALFORMED, "each poisoned once");
    let attempts = std::fs::read_to_string(dir.path().join("attempts")).unwrap();
    eprintln!(
        "{} handler attempts for {} effects (kills and retries cause the difference)",
        attempts.lines().count(),
        committed.len()
    );
}
