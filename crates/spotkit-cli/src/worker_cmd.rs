//! `spotkit worker`: the interruptible queue worker around a handler command.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use spotkit_cloud::{Clock, ObjectStore, Queue, SystemClock};
use spotkit_core::worker::WorkerSettings;
use spotkit_worker::{ProcessHandler, WorkerOptions};
use tokio::signal::unix::{SignalKind, signal};

use crate::Failure;
use crate::backends::{open_queue, open_store, poison_url};

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e}; write it like 30s, 500ms or 2m"))
}

/// Processes a queue with a handler command (contract: docs/worker.md).
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The work queue: sqlite:PATH?name=NAME, or an Azure Queue Storage URL.
    #[arg(long, env = "SPOTKIT_QUEUE")]
    queue: String,
    /// Checkpoints and the idempotency ledger: sqlite:PATH?name=NAME, or an Azure Blob container URL.
    #[arg(long, env = "SPOTKIT_STORE")]
    store: String,
    /// Where poison messages go [default: the work queue's name + "-poison"].
    #[arg(long, env = "SPOTKIT_POISON_QUEUE")]
    poison_queue: Option<String>,
    /// Handlers running at once.
    #[arg(long, env = "SPOTKIT_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    concurrency: u32,
    /// Messages held beyond the running ones.
    #[arg(long, env = "SPOTKIT_PREFETCH", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=32))]
    prefetch: u32,
    /// Visibility timeout per receive and renewal.
    #[arg(long, env = "SPOTKIT_LEASE", default_value = "60s", value_parser = duration)]
    lease: Duration,
    /// Receives above this count move the message to the poison queue.
    #[arg(long, env = "SPOTKIT_MAX_DEQUEUE", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_dequeue: u32,
    /// Time from SIGTERM to the hard deadline (keep it inside the agent's drain deadline).
    #[arg(long, env = "SPOTKIT_SHUTDOWN_BUDGET", default_value = "20s", value_parser = duration)]
    shutdown_budget: Duration,
    /// Handlers get SIGTERM this long before the deadline, to checkpoint.
    #[arg(long, env = "SPOTKIT_CHECKPOINT_GRACE", default_value = "5s", value_parser = duration)]
    checkpoint_grace: Duration,
    /// Warmup gate: receive nothing until this shell command exits 0.
    #[arg(long, env = "SPOTKIT_READY_CHECK")]
    ready_check: Option<String>,
    /// Exit once the queue is empty and nothing is held (batch mode).
    #[arg(long)]
    exit_when_empty: bool,
    /// Directory for per-message files [default: the system temp dir].
    #[arg(long, env = "SPOTKIT_SCRATCH")]
    scratch: Option<PathBuf>,
    /// The handler command; message body on stdin (see docs/worker.md).
    #[arg(last = true, required = true)]
    handler: Vec<String>,
}

pub fn main(args: WorkerArgs) -> Result<u8, Failure> {
    if args.lease < Duration::from_secs(2) || args.lease > Duration::from_secs(7 * 24 * 3600) {
        return Err(Failure::usage(anyhow::anyhow!(
            "--lease {}: must be between 2s and 7 days (Azure's visibility timeout range; renewals need headroom)",
            humantime::format_duration(args.lease)
        )));
    }
    if args.checkpoint_grace >= args.shutdown_budget {
        return Err(Failure::usage(anyhow::anyhow!(
            "--checkpoint-grace {} must be shorter than --shutdown-budget {}",
            humantime::format_duration(args.checkpoint_grace),
            humantime::format_duration(args.shutdown_budget)
        )));
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let queue = open_queue(&args.queue, clock.clone()).map_err(Failure::usage)?;
    let poison_url = match &args.poison_queue {
        Some(u) => u.clone(),
        None => poison_url(&args.queue).map_err(Failure::usage)?,
    };
    let poison = open_queue(&poison_url, clock.clone()).map_err(Failure::usage)?;
    let store = open_store(&args.store, clock.clone()).map_err(Failure::usage)?;
    let scratch = args.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let settings = WorkerSettings {
        concurrency: args.concurrency,
        prefetch: args.prefetch,
        lease: args.lease,
        renew_margin: args.lease / 3,
        max_dequeue: args.max_dequeue,
        checkpoint_grace: args.checkpoint_grace,
        ..WorkerSettings::default()
    };
    let options = WorkerOptions {
        settings,
        shutdown_budget: args.shutdown_budget,
        ready_check: args.ready_check.clone(),
        handle_signals: false,
        exit_when_empty: args.exit_when_empty,
        seed: u64::from(std::process::id()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Failure::runtime)?;
    runtime.block_on(async move {
        // Listen for SIGTERM/SIGINT before anything slow (queue creation, first receive): the agent
        // may stop a worker moments after starting it, and an uncaught SIGTERM would skip the drain.
        let (stop_tx, shutdown) = tokio::sync::watch::channel(false);
        let mut term = signal(SignalKind::terminate()).map_err(Failure::runtime)?;
        let mut int = signal(SignalKind::interrupt()).map_err(Failure::runtime)?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            let _ = stop_tx.send(true);
        });
        queue
            .create_if_missing()
            .await
            .context("cannot create the work queue")
            .map_err(Failure::runtime)?;
        poison
            .create_if_missing()
            .await
            .context("cannot create the poison queue")
            .map_err(Failure::runtime)?;
        store
            .create_if_missing()
            .await
            .context("cannot create the store")
            .map_err(Failure::runtime)?;
        let handler = ProcessHandler::new(args.handler.clone(), scratch);
        let report = spotkit_worker::run(
            options,
            Arc::new(queue),
            Arc::new(poison),
            Arc::new(store),
            Arc::new(handler),
            clock,
            shutdown,
        )
        .await
        .map_err(Failure::runtime)?;
        println!(
            "completed {} already_committed {} retried {} poisoned {} released {} lost {}",
            report.completed,
            report.already_committed,
            report.retried,
            report.poisoned,
            report.released,
            report.lost
        );
        Ok(0)
    })
}
