//! `spotkit bench worker` and `spotkit bench drain`: worker throughput against a bare
//! receive/delete loop on the same queue in the same run, and drain time at shutdown.
#![allow(clippy::disallowed_methods)] // a benchmark measures real time: that is its job
#![allow(clippy::cast_precision_loss)] // counts and nanoseconds shown as f64

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use spotkit_cloud::{Clock, ObjectStore, Queue, SystemClock};
use spotkit_core::worker::WorkerSettings;
use spotkit_worker::{Handler, HandlerContext, HandlerResult, ProcessHandler, WorkerOptions};

use crate::backends::{AnyQueue, AnyStore, open_queue, open_store};

#[derive(Debug, clap::Args)]
pub struct WorkerBench {
    /// Queue URL [default: a fresh SQLite file]; Azure/Azurite URLs need credentials as for
    /// `spotkit worker` (e.g. AZURE_STORAGE_CONNECTION_STRING).
    #[arg(long)]
    queue: Option<String>,
    /// Store URL [default: the same SQLite file].
    #[arg(long)]
    store: Option<String>,
    /// Messages per run.
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    /// Worker concurrency (the bare loop deletes a batch concurrently too).
    #[arg(long, default_value_t = 8)]
    concurrency: u32,
    /// Alternating rounds of bare loop and worker.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
}

#[derive(Debug, clap::Args)]
pub struct DrainBench {
    /// Handlers in flight when the shutdown comes (several values, comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    handlers: Vec<u32>,
}

struct NoOp;

impl Handler for NoOp {
    async fn handle(&self, _ctx: HandlerContext) -> HandlerResult {
        HandlerResult::Done { effect: Vec::new() }
    }
}

async fn fill(queue: &AnyQueue, n: usize) -> anyhow::Result<()> {
    let body = vec![b'x'; 256];
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (q, b) = (queue.clone(), body.clone());
        sends.spawn(async move { q.send(&b, Duration::ZERO).await });
        while sends.len() >= 16 {
            sends.join_next().await.context("send task")???;
        }
    }
    while let Some(r) = sends.join_next().await {
        r??;
    }
    Ok(())
}

/// What a user writes by hand: receive a batch of 32, delete each (concurrently), repeat.
async fn bare_loop(queue: &AnyQueue, n: usize) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let batch = queue.receive(32, Duration::from_secs(60)).await?;
        if batch.is_empty() {
            bail!("bare loop: queue empty after {done} of {n}");
        }
        let mut deletes = tokio::task::JoinSet::new();
        for d in batch {
            let q = queue.clone();
            deletes.spawn(async move { q.delete(&d.lease).await });
        }
        while let Some(r) = deletes.join_next().await {
            r??;
            done += 1;
        }
    }
    Ok(start.elapsed())
}

async fn worker_run<H: Handler>(
    queue: &AnyQueue,
    poison: &AnyQueue,
    store: &AnyStore,
    handler: H,
    concurrency: u32,
    n: usize,
) -> anyhow::Result<Duration> {
    let options = WorkerOptions {
        settings: WorkerSettings {
            concurrency,
            prefetch: concurrency.min(32),
            ..WorkerSettings::default()
        },
        handle_signals: false,
        exit_when_empty: true,
        ..WorkerOptions::default()
    };
    let (_keep, stop) = tokio::sync::watch::channel(false);
    let start = Instant::now();
    let report = spotkit_worker::run(
        options,
        Arc::new(queue.clone()),
        Arc::new(poison.clone()),
        Arc::new(store.clone()),
        Arc::new(handler),
        Arc::new(SystemClock),
        stop,
    )
    .await?;
    let elapsed = start.elapsed();
    if usize::try_from(report.completed).unwrap_or(0) != n {
        bail!("worker completed {} of {n}: {report:?}", report.completed);
    }
    Ok(elapsed)
}

pub async fn bench_worker(args: &WorkerBench) -> anyhow::Result<u8> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.db");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let queue_url = args
        .queue
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}?name=bench", db.display()));
    let store_url = args
        .store
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}?name=bench-effects", db.display()));
    let queue = open_queue(&queue_url, clock.clone())?;
    let poison = open_queue(&crate::backends::poison_url(&queue_url)?, clock.clone())?;
    let store = open_store(&store_url, clock)?;
    queue.create_if_missing().await?;
    poison.create_if_missing().await?;
    store.create_if_missing().await?;
    if queue.approximate_len().await? != 0 {
        bail!("the benchmark queue must start empty");
    }
    let n = args.messages;
    println!(
        "spotkit bench worker: {n} messages of 256 B, {} rounds, worker concurrency {}, queue {}",
        args.rounds,
        args.concurrency,
        spotkit_azure::storage::redact_sas(&queue_url)
    );
    let (mut bare, mut worker, mut process) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for round in 0..args.rounds {
        fill(&queue, n).await?;
        bare += bare_loop(&queue, n).await?;
        fill(&queue, n).await?;
        worker += worker_run(&queue, &poison, &store, NoOp, args.concurrency, n).await?;
        let small = n / 4;
        fill(&queue, small).await?;
        let handler = ProcessHandler::new(vec!["true".into()], dir.path().to_path_buf());
        let t = worker_run(&queue, &poison, &store, handler, args.concurrency, small).await?;
        process += t * 4;
        eprintln!("  round {} done", round + 1);
    }
    let rate = |d: Duration| (n * args.rounds) as f64 / d.as_secs_f64();
    println!(
        "  bare receive/delete loop:          {:8.0} msg/s",
        rate(bare)
    );
    println!(
        "  worker, in-process no-op handler:  {:8.0} msg/s   ratio to bare {:.2} (goal >= 0.90)",
        rate(worker),
        rate(worker) / rate(bare)
    );
    println!(
        "  worker, process handler `true`:    {:8.0} msg/s   ratio to bare {:.2} (a process per message)",
        rate(process),
        rate(process) / rate(bare)
    );
    println!(
        "  (the worker also commits one idempotency-ledger object per message; the bare loop does not)"
    );
    Ok(0)
}

/// Waits for the interrupt, then saves a small checkpoint and asks to be retried.
struct Sleeper;

impl Handler for Sleeper {
    async fn handle(&self, mut ctx: HandlerContext) -> HandlerResult {
        ctx.interrupted().await;
        HandlerResult::RetryLater {
            checkpoint: Some(b"step 42".to_vec()),
        }
    }
}

pub async fn bench_drain(args: &DrainBench) -> anyhow::Result<u8> {
    println!(
        "spotkit bench drain: SIGTERM-equivalent shutdown with N handlers in flight (SQLite backends),"
    );
    println!(
        "budget 2 s, checkpoint grace 1.5 s: handlers are interrupted 0.5 s after the shutdown"
    );
    for &n in &args.handlers {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("drain.db");
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let queue = open_queue(
            &format!("sqlite:{}?name=drain", db.display()),
            clock.clone(),
        )?;
        let poison = open_queue(
            &format!("sqlite:{}?name=drain-poison", db.display()),
            clock.clone(),
        )?;
        let store = open_store(&format!("sqlite:{}?name=drain-store", db.display()), clock)?;
        queue.create_if_missing().await?;
        poison.create_if_missing().await?;
        store.create_if_missing().await?;
        let prefetch = n.min(32);
        fill(&queue, (n + prefetch) as usize).await?;
        let options = WorkerOptions {
            settings: WorkerSettings {
                concurrency: n,
                prefetch,
                checkpoint_grace: Duration::from_millis(1500),
                ..WorkerSettings::default()
            },
            shutdown_budget: Duration::from_secs(2),
            handle_signals: false,
            ..WorkerOptions::default()
        };
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn({
            let (q, p, s) = (
                Arc::new(queue.clone()),
                Arc::new(poison.clone()),
                Arc::new(store.clone()),
            );
            async move {
                spotkit_worker::run(
                    options,
                    q,
                    p,
                    s,
                    Arc::new(Sleeper),
                    Arc::new(SystemClock),
                    stop,
                )
                .await
            }
        });
        // Wait until every handler runs and the prefetch buffer is full.
        let start = Instant::now();
        while !queue.peek(32).await?.is_empty() {
            if start.elapsed() > Duration::from_secs(20) {
                bail!("worker never took all messages");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t0 = Instant::now();
        stop_tx.send(true)?;
        let mut released_at = None;
        while !worker.is_finished() {
            if released_at.is_none() && queue.peek(32).await?.len() >= prefetch as usize {
                released_at = Some(t0.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let drained = t0.elapsed();
        let report = worker.await??;
        let checkpoints = store.list("checkpoints/").await?.len();
        println!(
            "  {n:>3} in flight + {prefetch:>2} prefetched: prefetched released after {:>5.0} ms, exit after {:>5.0} ms (budget 2000 ms), {} released, {checkpoints} checkpoints saved",
            released_at.unwrap_or(drained).as_secs_f64() * 1000.0,
            drained.as_secs_f64() * 1000.0,
            report.released
        );
    }
    Ok(0)
}
