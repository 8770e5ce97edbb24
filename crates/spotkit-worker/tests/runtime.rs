//! The worker runtime with in-process handlers on the embedded backends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use spotkit_cloud::{ObjectStore, Queue, SystemClock, WriteCondition};
use spotkit_core::backoff::Backoff;
use spotkit_core::worker::WorkerSettings;
use spotkit_embedded::{SqliteQueue, SqliteStore};
use spotkit_worker::{
    Handler, HandlerContext, HandlerResult, PoisonRecord, WorkerOptions, WorkerReport,
    encode_envelope, ledger_key, run,
};
use tokio::sync::watch;

struct Env {
    _dir: tempfile::TempDir,
    queue: Arc<SqliteQueue>,
    poison: Arc<SqliteQueue>,
    store: Arc<SqliteStore>,
}

async fn env() -> Env {
    env_with(false).await
}

/// With `split_store` the store lives in another file, so the queue cannot commit and delete in
/// one transaction and the runtime takes the put-then-delete path (as on Azure).
async fn env_with(split_store: bool) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let store_db = if split_store {
        dir.path().join("s.db")
    } else {
        db.clone()
    };
    let queue = SqliteQueue::open(
        &format!("sqlite:{}?name=jobs", db.display()),
        Arc::new(SystemClock),
    )
    .unwrap();
    let poison = queue.sibling("jobs-poison");
    let store = SqliteStore::open(&format!("sqlite:{}?name=effects", store_db.display())).unwrap();
    queue.create_if_missing().await.unwrap();
    poison.create_if_missing().await.unwrap();
    store.create_if_missing().await.unwrap();
    Env {
        _dir: dir,
        queue: Arc::new(queue),
        poison: Arc::new(poison),
        store: Arc::new(store),
    }
}

fn options(concurrency: u32, prefetch: u32) -> WorkerOptions {
    WorkerOptions {
        settings: WorkerSettings {
            concurrency,
            prefetch,
            lease: Duration::from_secs(3),
            renew_margin: Duration::from_secs(1),
            max_dequeue: 3,
            retry_backoff: Backoff {
                base: Duration::from_millis(20),
                max: Duration::from_millis(100),
            },
            checkpoint_grace: Duration::from_millis(600),
            ..WorkerSettings::default()
        },
        shutdown_budget: Duration::from_millis(1500),
        handle_signals: false,
        exit_when_empty: true,
        ..WorkerOptions::default()
    }
}

fn spawn_worker<H: Handler>(
    env: &Env,
    options: WorkerOptions,
    handler: Arc<H>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Result<WorkerReport, spotkit_worker::WorkerError>> {
    let (queue, poison, store) = (env.queue.clone(), env.poison.clone(), env.store.clone());
    tokio::spawn(async move {
        run(
            options,
            queue,
            poison,
            store,
            handler,
            Arc::new(SystemClock),
            stop,
        )
        .await
    })
}

async fn run_worker<H: Handler>(
    env: &Env,
    options: WorkerOptions,
    handler: Arc<H>,
    stop: watch::Receiver<bool>,
) -> WorkerReport {
    run(
        options,
        env.queue.clone(),
        env.poison.clone(),
        env.store.clone(),
        handler,
        Arc::new(SystemClock),
        stop,
    )
    .await
    .unwrap()
}

/// Counts calls and commits the body as the effect.
#[derive(Default)]
struct Echo {
    calls: AtomicU32,
}

impl Handler for Echo {
    async fn handle(&self, ctx: HandlerContext) -> HandlerResult {
        self.calls.fetch_add(1, Ordering::SeqCst);
        HandlerResult::Done { effect: ctx.body }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_processed_and_its_effect_committed_once() {
    every_message_once(env().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_processed_once_when_the_store_is_in_another_file() {
    every_message_once(env_with(true).await).await;
}

async fn every_message_once(env: Env) {
    for i in 0..50 {
        env.queue
            .send(format!("m{i}").as_bytes(), Duration::ZERO)
            .await
            .unwrap();
    }
    let handler = Arc::new(Echo::default());
    let (_tx, stop) = watch::channel(false);
    let report = run_worker(&env, options(4, 2), handler.clone(), stop).await;
    assert_eq!(report.completed, 50, "{report:?}");
    assert_eq!(handler.calls.load(Ordering::SeqCst), 50);
    assert_eq!(env.store.list("ledger/").await.unwrap().len(), 50);
    assert_eq!(env.queue.approximate_len().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_effect_was_committed_is_deleted_without_running_again() {
    let env = env().await;
    env.store
        .put(
            &ledger_key("order-7"),
            b"done earlier",
            WriteCondition::IfAbsent,
        )
        .await
        .unwrap();
    env.queue
        .send(&encode_envelope("order-7", b"pay"), Duration::ZERO)
        .await
        .unwrap();
    env.queue
        .send(&encode_envelope("order-8", b"pay"), Duration::ZERO)
        .await
        .unwrap();
    let handler = Arc::new(Echo::default());
    let (_tx, stop) = watch::channel(false);
    let report = run_worker(&env, options(1, 0), handler.clone(), stop).await;
    assert_eq!(
        (report.completed, report.already_committed),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(
        handler.calls.load(Ordering::SeqCst),
        1,
        "the committed one never ran again"
    );
    assert_eq!(
        env.store
            .get(&ledger_key("order-7"))
            .await
            .unwrap()
            .unwrap()
            .body,
        b"done earlier",
        "the first effect stands"
    );
    assert_eq!(env.queue.approximate_len().await.unwrap(), 0);
}

/// Fails every attempt on bodies starting with "bad".
struct Picky;

impl Handler for Picky {
    async fn handle(&self, ctx: HandlerContext) -> HandlerResult {
        if ctx.body.starts_with(b"bad") {
            HandlerResult::Failed {
                reason: "bad input".into(),
                checkpoint: None,
            }
        } else {
            HandlerResult::Done { effect: vec![] }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeatedly_failing_and_malformed_messages_end_on_the_poison_queue_with_reasons() {
    let env = env().await;
    env.queue.send(b"good", Duration::ZERO).await.unwrap();
    env.queue.send(b"bad-1", Duration::ZERO).await.unwrap();
    env.queue
        .send(
            br#"{"spotkit_envelope":1,"key":"k","body_b64":"!!"}"#,
            Duration::ZERO,
        )
        .await
        .unwrap();
    let (_tx, stop) = watch::channel(false);
    let mut opts = options(2, 1);
    // Keep going through the retry delays instead of exiting on the first empty receive.
    opts.exit_when_empty = false;
    let worker = spawn_worker(&env, opts, Arc::new(Picky), stop);
    for _ in 0..100 {
        if env.poison.approximate_len().await.unwrap() == 2
            && env.queue.approximate_len().await.unwrap() == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    _tx.send(true).unwrap();
    let report = worker.await.unwrap().unwrap();
    assert_eq!((report.completed, report.poisoned), (1, 2), "{report:?}");
    let mut reasons: Vec<PoisonRecord> = env
        .poison
        .peek(32)
        .await
        .unwrap()
        .iter()
        .map(|m| serde_json::from_slice(&m.body).unwrap())
        .collect();
    reasons.sort_by(|a, b| a.reason.cmp(&b.reason));
    assert!(
        reasons[0].reason.contains("dequeued 4 times"),
        "{reasons:?}"
    );
    assert_eq!(reasons[0].body(), b"bad-1");
    assert!(
        reasons[1].reason.contains("malformed spotkit envelope"),
        "{reasons:?}"
    );
}

/// Works 60 steps of 50 ms (3 s, longer than the shutdown budget), checkpointing its step; stops when interrupted. Records what it resumed from.
#[derive(Default)]
struct Stepper {
    resumed_from: std::sync::Mutex<Vec<Option<u32>>>,
}

impl Handler for Stepper {
    async fn handle(&self, mut ctx: HandlerContext) -> HandlerResult {
        let start = ctx
            .checkpoint
            .as_ref()
            .map(|c| String::from_utf8_lossy(c).parse::<u32>().unwrap());
        self.resumed_from.lock().unwrap().push(start);
        let mut step = start.unwrap_or(0);
        loop {
            if step >= 60 {
                return HandlerResult::Done {
                    effect: step.to_string().into_bytes(),
                };
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(50)) => step += 1,
                () = ctx.interrupted() => {
                    return HandlerResult::RetryLater { checkpoint: Some(step.to_string().into_bytes()) };
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_unstarted_work_at_once_and_the_next_worker_resumes_from_the_checkpoint()
{
    let env = env().await;
    for i in 0..3 {
        env.queue
            .send(format!("job-{i}").as_bytes(), Duration::ZERO)
            .await
            .unwrap();
    }
    let first = Arc::new(Stepper::default());
    let (tx, stop) = watch::channel(false);
    let worker = spawn_worker(&env, options(1, 2), first.clone(), stop);
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.send(true).unwrap();
    // Unstarted messages are visible to others right away, long before the lease would lapse.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        env.queue.peek(32).await.unwrap().len(),
        2,
        "prefetched messages released at once"
    );
    let report = worker.await.unwrap().unwrap();
    assert_eq!(
        report.released, 3,
        "two unstarted and one interrupted: {report:?}"
    );
    assert_eq!(report.completed, 0);
    assert_eq!(
        env.queue.peek(32).await.unwrap().len(),
        3,
        "nothing lost, all visible now"
    );

    let second = Arc::new(Stepper::default());
    let (_tx, stop) = watch::channel(false);
    let report = run_worker(&env, options(3, 0), second.clone(), stop).await;
    assert_eq!(report.completed, 3, "{report:?}");
    let resumed = second.resumed_from.lock().unwrap().clone();
    assert_eq!(
        resumed.iter().filter(|r| r.is_some()).count(),
        1,
        "one resumed: {resumed:?}"
    );
    let from = resumed.iter().flatten().next().unwrap();
    assert!(*from >= 10, "resumed from step {from}, not from scratch");
    assert!(
        env.store.list("checkpoints/").await.unwrap().is_empty(),
        "checkpoints cleaned after commit"
    );
}

/// Takes longer than a lease.
struct Slow;

impl Handler for Slow {
    async fn handle(&self, _ctx: HandlerContext) -> HandlerResult {
        tokio::time::sleep(Duration::from_millis(4500)).await;
        HandlerResult::Done { effect: vec![] }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_renewed_while_a_handler_outlives_its_lease() {
    let env = env().await;
    env.queue.send(b"long", Duration::ZERO).await.unwrap();
    let (_tx, stop) = watch::channel(false);
    let worker = spawn_worker(&env, options(1, 0), Arc::new(Slow), stop);
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            env.queue
                .receive(1, Duration::from_secs(30))
                .await
                .unwrap()
                .is_empty(),
            "a held message must never become visible to another worker"
        );
    }
    let report = worker.await.unwrap().unwrap();
    assert_eq!((report.completed, report.lost), (1, 0), "{report:?}");
}

/// Panics on every message.
struct Panicky;

impl Handler for Panicky {
    async fn handle(&self, ctx: HandlerContext) -> HandlerResult {
        assert!(ctx.body.is_empty(), "handler bug on {}", ctx.message_id);
        HandlerResult::Done { effect: vec![] }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_failed_attempt_not_a_stuck_worker() {
    let env = env().await;
    env.queue.send(b"boom", Duration::ZERO).await.unwrap();
    let (tx, stop) = watch::channel(false);
    let mut opts = options(1, 0);
    opts.exit_when_empty = false;
    let worker = spawn_worker(&env, opts, Arc::new(Panicky), stop);
    for _ in 0..100 {
        if env.poison.approximate_len().await.unwrap() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tx.send(true).unwrap();
    let report = worker.await.unwrap().unwrap();
    assert_eq!(report.poisoned, 1, "retried, then poisoned: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_received_until_the_warmup_check_passes() {
    let env = env().await;
    env.queue.send(b"early", Duration::ZERO).await.unwrap();
    let gate = env._dir.path().join("warm");
    let mut opts = options(1, 0);
    opts.ready_check = Some(format!("test -e {}", gate.display()));
    let handler = Arc::new(Echo::default());
    let (_tx, stop) = watch::channel(false);
    let worker = spawn_worker(&env, opts, handler.clone(), stop);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        handler.calls.load(Ordering::SeqCst),
        0,
        "no work before warmup"
    );
    assert_eq!(
        env.queue.peek(32).await.unwrap().len(),
        1,
        "not even received (leased)"
    );
    std::fs::write(&gate, "").unwrap();
    let report = worker.await.unwrap().unwrap();
    assert_eq!(report.completed, 1);
}
