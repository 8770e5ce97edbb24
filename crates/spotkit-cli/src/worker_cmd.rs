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
use crate::config::{self, ConfigError, LoadedFile, Setting, Sourced};

/// Processes a queue with a handler command (contract: docs/worker.md). Each option also reads
/// `SPOTKIT_<NAME>` and the `[worker]` table of the config file; flags win over the environment,
/// which wins over the file.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// TOML config file (table [worker]); see docs/worker.md.
    #[arg(long, env = "SPOTKIT_CONFIG")]
    config: Option<PathBuf>,
    /// The work queue: sqlite:PATH?name=NAME, or an Azure Queue Storage URL.
    #[arg(long, env = "SPOTKIT_QUEUE")]
    queue: Option<String>,
    /// Checkpoints and the idempotency ledger: sqlite:PATH?name=NAME, or an Azure Blob container URL.
    #[arg(long, env = "SPOTKIT_STORE")]
    store: Option<String>,
    /// Where poison messages go [default: the work queue's name + "-poison"].
    #[arg(long, env = "SPOTKIT_POISON_QUEUE")]
    poison_queue: Option<String>,
    /// Handlers running at once, 1..256 [default: 4].
    #[arg(long, env = "SPOTKIT_CONCURRENCY")]
    concurrency: Option<String>,
    /// Messages held beyond the running ones, 0..32 [default: 2].
    #[arg(long, env = "SPOTKIT_PREFETCH")]
    prefetch: Option<String>,
    /// Visibility timeout per receive and renewal, 2s..7 days [default: 60s].
    #[arg(long, env = "SPOTKIT_LEASE")]
    lease: Option<String>,
    /// Deliveries before a message is poison, 1..1000 [default: 5].
    #[arg(long, env = "SPOTKIT_MAX_DEQUEUE")]
    max_dequeue: Option<String>,
    /// Time from SIGTERM to the hard deadline; keep it inside the agent's drain deadline [default: 20s].
    #[arg(long, env = "SPOTKIT_SHUTDOWN_BUDGET")]
    shutdown_budget: Option<String>,
    /// Handlers get SIGTERM this long before the deadline, to checkpoint [default: 5s].
    #[arg(long, env = "SPOTKIT_CHECKPOINT_GRACE")]
    checkpoint_grace: Option<String>,
    /// Warmup gate: receive nothing until this shell command exits 0.
    #[arg(long, env = "SPOTKIT_READY_CHECK")]
    ready_check: Option<String>,
    /// Exit once the queue is empty and nothing is held (batch mode).
    #[arg(long)]
    exit_when_empty: bool,
    /// Directory for per-message files [default: the system temp dir].
    #[arg(long, env = "SPOTKIT_SCRATCH")]
    scratch: Option<String>,
    /// The handler command; message body on stdin (see docs/worker.md).
    #[arg(last = true, required = true)]
    handler: Vec<String>,
}

macro_rules! setting {
    ($m:expr, $id:literal, $flag:literal, $env:literal) => {
        Setting {
            matches: $m,
            table: "worker",
            id: $id,
            flag: $flag,
            env: $env,
        }
    };
}

struct Resolved {
    /// `log_format` from the file (the global flag/env wins over it).
    log_format: Option<String>,
    queue: String,
    store: String,
    poison_queue: Option<String>,
    settings: WorkerSettings,
    shutdown_budget: Duration,
    ready_check: Option<String>,
    scratch: PathBuf,
}

fn required(
    s: Option<Sourced>,
    flag: &'static str,
    env: &'static str,
    key: &'static str,
) -> Result<String, ConfigError> {
    s.map(|s| s.value)
        .ok_or(ConfigError::Missing { flag, env, key })
}

fn resolve(args: &WorkerArgs, m: &clap::ArgMatches) -> Result<Resolved, ConfigError> {
    let loaded = match &args.config {
        Some(path) => LoadedFile::load(path)?,
        None => LoadedFile::default(),
    };
    let f = &loaded.config.worker;
    let num = |n: Option<u32>| n.map(|n| n.to_string());
    let pick = |s: Setting<'_>, cli: &Option<String>, file: Option<String>| {
        s.pick(cli.as_ref(), file.as_ref(), &loaded)
    };
    let queue = required(
        pick(
            setting!(m, "queue", "--queue", "SPOTKIT_QUEUE"),
            &args.queue,
            f.queue.clone(),
        ),
        "--queue",
        "SPOTKIT_QUEUE",
        "worker.queue",
    )?;
    let store = required(
        pick(
            setting!(m, "store", "--store", "SPOTKIT_STORE"),
            &args.store,
            f.store.clone(),
        ),
        "--store",
        "SPOTKIT_STORE",
        "worker.store",
    )?;
    let poison_queue = pick(
        setting!(m, "poison_queue", "--poison-queue", "SPOTKIT_POISON_QUEUE"),
        &args.poison_queue,
        f.poison_queue.clone(),
    )
    .map(|s| s.value);
    let mut settings = WorkerSettings::default();
    if let Some(v) = pick(
        setting!(m, "concurrency", "--concurrency", "SPOTKIT_CONCURRENCY"),
        &args.concurrency,
        num(f.concurrency),
    ) {
        settings.concurrency = config::number(&v, 1, 256, "handlers running at once")?;
    }
    if let Some(v) = pick(
        setting!(m, "prefetch", "--prefetch", "SPOTKIT_PREFETCH"),
        &args.prefetch,
        num(f.prefetch),
    ) {
        settings.prefetch = config::number(
            &v,
            0,
            32,
            "held messages are invisible to other workers; keep it small",
        )?;
    }
    if let Some(v) = pick(
        setting!(m, "max_dequeue", "--max-dequeue", "SPOTKIT_MAX_DEQUEUE"),
        &args.max_dequeue,
        num(f.max_dequeue),
    ) {
        settings.max_dequeue = config::number(&v, 1, 1000, "deliveries before poison")?;
    }
    let s = Duration::from_secs;
    if let Some(v) = pick(
        setting!(m, "lease", "--lease", "SPOTKIT_LEASE"),
        &args.lease,
        f.lease.clone(),
    ) {
        settings.lease = config::duration(
            &v,
            s(2),
            s(7 * 24 * 3600),
            "Azure's visibility timeout range, with headroom for renewals",
        )?;
    }
    settings.renew_margin = settings.lease / 3;
    let mut shutdown_budget = s(20);
    if let Some(v) = pick(
        setting!(
            m,
            "shutdown_budget",
            "--shutdown-budget",
            "SPOTKIT_SHUTDOWN_BUDGET"
        ),
        &args.shutdown_budget,
        f.shutdown_budget.clone(),
    ) {
        shutdown_budget = config::duration(
            &v,
            Duration::from_millis(100),
            s(3600),
            "SIGTERM to hard deadline",
        )?;
    }
    if let Some(v) = pick(
        setting!(
            m,
            "checkpoint_grace",
            "--checkpoint-grace",
            "SPOTKIT_CHECKPOINT_GRACE"
        ),
        &args.checkpoint_grace,
        f.checkpoint_grace.clone(),
    ) {
        let grace = config::duration(
            &v,
            Duration::ZERO,
            s(3600),
            "time handlers get to checkpoint",
        )?;
        if grace >= shutdown_budget {
            return Err(ConfigError::Invalid {
                origin: v.origin,
                value: v.value,
                problem: format!(
                    "not shorter than the shutdown budget of {}",
                    humantime::format_duration(shutdown_budget)
                ),
                fix: "make the grace shorter than --shutdown-budget".into(),
            });
        }
        settings.checkpoint_grace = grace;
    } else if settings.checkpoint_grace >= shutdown_budget {
        settings.checkpoint_grace = shutdown_budget / 4;
    }
    let ready_check = pick(
        setting!(m, "ready_check", "--ready-check", "SPOTKIT_READY_CHECK"),
        &args.ready_check,
        f.ready_check.clone(),
    )
    .map(|s| s.value);
    let scratch = pick(
        setting!(m, "scratch", "--scratch", "SPOTKIT_SCRATCH"),
        &args.scratch,
        f.scratch.clone(),
    )
    .map_or_else(std::env::temp_dir, |s| PathBuf::from(s.value));
    Ok(Resolved {
        log_format: f.log_format.clone(),
        queue,
        store,
        poison_queue,
        settings,
        shutdown_budget,
        ready_check,
        scratch,
    })
}

pub fn main(
    args: WorkerArgs,
    matches: &clap::ArgMatches,
    log_format: Option<&str>,
) -> Result<u8, Failure> {
    let resolved = resolve(&args, matches).map_err(Failure::usage)?;
    crate::logging::init(log_format.or(resolved.log_format.as_deref()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let queue = open_queue(&resolved.queue, clock.clone()).map_err(Failure::usage)?;
    let poison_url = match &resolved.poison_queue {
        Some(u) => u.clone(),
        None => poison_url(&resolved.queue).map_err(Failure::usage)?,
    };
    let poison = open_queue(&poison_url, clock.clone()).map_err(Failure::usage)?;
    let store = open_store(&resolved.store, clock.clone()).map_err(Failure::usage)?;
    let scratch = resolved.scratch.clone();
    let options = WorkerOptions {
        settings: resolved.settings.clone(),
        shutdown_budget: resolved.shutdown_budget,
        ready_check: resolved.ready_check.clone(),
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
