//! The worker loop: observe, ask the core, act, sleep until the next wakeup.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use spotkit_cloud::{
    Clock, CommitError, Delivery, Lease, ObjectStore, Queue, QueueError, StoreError, WriteCondition,
};
use spotkit_core::backoff::Backoff;
use spotkit_core::worker::{
    Held, Outcome, WorkerAction, WorkerInput, WorkerMachine, WorkerSettings,
};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;

use crate::envelope::parse_envelope;
use crate::handler::{CheckpointError, Checkpointer, Handler, HandlerContext, HandlerResult};
use crate::records::{
    PoisonRecord, checkpoint_key, checkpoint_write_allowed, decode_checkpoint, encode_checkpoint,
    ledger_key,
};

/// How the worker runs.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// The core's settings (concurrency, prefetch, lease, dequeue limit...).
    pub settings: WorkerSettings,
    /// Time from SIGTERM (or a shutdown request) to the hard deadline.
    pub shutdown_budget: Duration,
    /// Warmup gate: a shell command that exits 0 once the worker may take work.
    pub ready_check: Option<String>,
    /// Whether SIGTERM/SIGINT start a shutdown (off in embedded tests).
    pub handle_signals: bool,
    /// Exit once the queue is empty and nothing is held (batch mode, benchmarks).
    pub exit_when_empty: bool,
    /// Seed for jitter.
    pub seed: u64,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            settings: WorkerSettings::default(),
            shutdown_budget: Duration::from_secs(20),
            ready_check: None,
            handle_signals: true,
            exit_when_empty: false,
            seed: 0,
        }
    }
}

/// What the worker did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Messages whose effect this worker committed and deleted.
    pub completed: u64,
    /// Messages found already committed (an earlier attempt crashed before deleting): deleted.
    pub already_committed: u64,
    /// Attempts put back for a later retry.
    pub retried: u64,
    /// Messages moved to the poison queue.
    pub poisoned: u64,
    /// Messages handed back at once (unstarted at shutdown, or interrupted).
    pub released: u64,
    /// Messages whose lease was lost while held.
    pub lost: u64,
}

/// Why the worker stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The queue is unusable (missing, credentials refused): retrying cannot help.
    #[error("queue unusable: {0}")]
    Queue(#[source] QueueError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
}

enum Event {
    Received(Result<Vec<Delivery>, QueueError>),
    Finished {
        id: String,
        outcome: TaskOutcome,
    },
    Renewed {
        id: String,
        result: Result<Lease, QueueError>,
    },
    Settled {
        id: String,
        counted: Counted,
    },
    Ready,
    Stop,
}

enum TaskOutcome {
    Outcome(Outcome),
    /// The effect was committed and the message deleted in one atomic step
    /// (`Queue::commit_and_delete`): `Done`, with nothing left to delete.
    CommittedAndDeleted,
    /// The atomic commit found the lease superseded: nothing was committed; someone else holds it.
    LeaseLost,
    Rejected(String),
}

#[derive(Clone, Copy)]
enum Counted {
    Completed,
    AlreadyCommitted,
    Retried,
    Poisoned,
    Released,
    Lost,
    Nothing,
}

struct HeldMessage {
    delivery: Delivery,
    lease: Arc<Mutex<Lease>>,
    task: Option<JoinHandle<()>>,
    interrupt: watch::Sender<bool>,
    already_committed: bool,
    /// Deleted together with its ledger entry: completing it needs no queue call.
    deleted: bool,
}

const RETRY: Backoff = Backoff {
    base: Duration::from_millis(100),
    max: Duration::from_secs(2),
};

fn retryable_queue(e: &QueueError) -> Option<Duration> {
    match e {
        QueueError::Throttled { retry_after } => Some(*retry_after),
        QueueError::Transient { .. } => Some(Duration::ZERO),
        _ => None,
    }
}

fn retryable_commit(e: &CommitError) -> Option<Duration> {
    match e {
        CommitError::Unsupported => None,
        CommitError::Store(e) => retryable_store(e),
        CommitError::Queue(e) => retryable_queue(e),
    }
}

fn retryable_store(e: &StoreError) -> Option<Duration> {
    match e {
        StoreError::Throttled { retry_after } => Some(*retry_after),
        StoreError::Transient { .. } => Some(Duration::ZERO),
        _ => None,
    }
}

/// Runs `op` up to `attempts` times while it fails with a retryable error.
async fn with_retries<T, E, F, Fut>(
    attempts: u32,
    retryable: fn(&E) -> Option<Duration>,
    mut op: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => match retryable(&e) {
                Some(hint) if attempt < attempts => {
                    let delay = RETRY.delay(attempt, rand::random()).max(hint);
                    tracing::debug!(attempt, ?delay, "retrying after: {e}");
                    tokio::time::sleep(delay).await;
                }
                _ => return Err(e),
            },
        }
    }
}

/// Runs the worker until it is shut down (signal, `shutdown` turning true, or an empty queue in
/// `exit_when_empty` mode) and everything held is settled.
///
/// # Errors
/// When the queue is unusable (missing queue, refused credentials) or signals cannot be installed.
#[allow(clippy::too_many_lines)] // one loop dispatching a closed set of actions reads best whole
pub async fn run<Q, S, H>(
    options: WorkerOptions,
    queue: Arc<Q>,
    poison: Arc<Q>,
    store: Arc<S>,
    handler: Arc<H>,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<WorkerReport, WorkerError>
where
    Q: Queue,
    S: ObjectStore,
    H: Handler,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let (mut sigterm, mut sigint) = if options.handle_signals {
        (
            Some(signal(SignalKind::terminate()).map_err(WorkerError::Signals)?),
            Some(signal(SignalKind::interrupt()).map_err(WorkerError::Signals)?),
        )
    } else {
        (None, None)
    };
    let mut machine = WorkerMachine::new(options.settings.clone(), clock.now(), options.seed);
    let mut held: HashMap<String, HeldMessage> = HashMap::new();
    let mut report = WorkerReport::default();
    let mut receive_error_logged = false;
    let mut pending: Vec<WorkerInput> = vec![WorkerInput::Tick];

    match options.ready_check.clone() {
        None => pending.push(WorkerInput::Ready),
        Some(script) => {
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    let ok = tokio::process::Command::new("sh")
                        .arg("-c")
                        .arg(&script)
                        .status()
                        .await
                        .is_ok_and(|s| s.success());
                    if ok {
                        let _ = tx.send(Event::Ready);
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        }
    }

    loop {
        for input in pending.drain(..) {
            tracing::trace!(?input, "worker input");
            let now = clock.now();
            for action in machine.handle(input, now) {
                tracing::trace!(?action, "worker action");
                match action {
                    WorkerAction::Exit => {
                        tracing::info!(?report, "worker finished");
                        return Ok(report);
                    }
                    WorkerAction::Receive { max, visibility } => {
                        let (queue, tx) = (queue.clone(), tx.clone());
                        tokio::spawn(async move {
                            let r = queue.receive(max, visibility).await;
                            let _ = tx.send(Event::Received(r));
                        });
                    }
                    WorkerAction::Start { id } => {
                        let Some(m) = held.get_mut(&id) else { continue };
                        if m.already_committed {
                            let _ = tx.send(Event::Finished {
                                id,
                                outcome: TaskOutcome::Outcome(Outcome::AlreadyCommitted),
                            });
                            continue;
                        }
                        let (store, handler, tx2) = (store.clone(), handler.clone(), tx.clone());
                        let (queue, lease) = (queue.clone(), m.lease.clone());
                        let delivery = m.delivery.clone();
                        let interrupt = m.interrupt.subscribe();
                        m.task = Some(tokio::spawn(async move {
                            // A panicking handler is a failed attempt, not a slot that never
                            // frees: the panic is caught at this task's poll (no second task
                            // per message); aborting this task (kill at the deadline, lost
                            // lease) drops the attempt with it.
                            let outcome = match catch_unwind(process_message(
                                queue, store, handler, delivery, lease, interrupt,
                            ))
                            .await
                            {
                                Ok(outcome) => outcome,
                                Err(panic) => {
                                    tracing::error!(message_id = %id, "handler attempt crashed: {}", panic_message(panic.as_ref()));
                                    TaskOutcome::Outcome(Outcome::Failed)
                                }
                            };
                            let _ = tx2.send(Event::Finished { id, outcome });
                        }));
                    }
                    WorkerAction::Renew { id, visibility } => {
                        let Some(m) = held.get(&id) else { continue };
                        let (queue, tx, lease) = (queue.clone(), tx.clone(), m.lease.clone());
                        tokio::spawn(async move {
                            let mut lease = lease.lock().await;
                            let result = queue.set_visibility(&lease, visibility).await;
                            if let Ok(new) = &result {
                                *lease = new.clone();
                            }
                            let _ = tx.send(Event::Renewed { id, result });
                        });
                    }
                    WorkerAction::Complete { id } => {
                        let Some(m) = held.get(&id) else { continue };
                        if m.deleted {
                            let _ = tx.send(Event::Settled {
                                id,
                                counted: Counted::Completed,
                            });
                            continue;
                        }
                        let counted = if m.already_committed {
                            Counted::AlreadyCommitted
                        } else {
                            Counted::Completed
                        };
                        settle(&queue, &tx, id, m.lease.clone(), counted, SettleOp::Delete);
                    }
                    WorkerAction::Retry { id, delay } => {
                        let Some(m) = held.get(&id) else { continue };
                        settle(
                            &queue,
                            &tx,
                            id,
                            m.lease.clone(),
                            Counted::Retried,
                            SettleOp::Visibility(delay),
                        );
                    }
                    WorkerAction::Release { id } => {
                        let Some(m) = held.get(&id) else { continue };
                        settle(
                            &queue,
                            &tx,
                            id,
                            m.lease.clone(),
                            Counted::Released,
                            SettleOp::Visibility(Duration::ZERO),
                        );
                    }
                    WorkerAction::Poison { id, reason } => {
                        let Some(m) = held.get(&id) else { continue };
                        tracing::warn!(message_id = %id, %reason, "moving message to the poison queue");
                        let record = PoisonRecord::new(
                            &reason,
                            &id,
                            m.delivery.dequeue_count,
                            &m.delivery.body,
                        );
                        let body = serde_json::to_vec(&record).unwrap_or_default();
                        let (queue, poison, tx, lease) =
                            (queue.clone(), poison.clone(), tx.clone(), m.lease.clone());
                        tokio::spawn(async move {
                            let sent = with_retries(5, retryable_queue, || {
                                poison.send(&body, Duration::ZERO)
                            })
                            .await;
                            let counted = match sent {
                                Ok(_) => {
                                    let lease = lease.lock().await;
                                    if let Err(e) =
                                        with_retries(5, retryable_queue, || queue.delete(&lease))
                                            .await
                                    {
                                        // The poison copy exists; the original comes back and is
                                        // poisoned again: a duplicate on the poison queue, never a loss.
                                        tracing::warn!(message_id = %id, "poisoned but not deleted: {e}");
                                    }
                                    Counted::Poisoned
                                }
                                Err(e) => {
                                    tracing::error!(message_id = %id, "cannot write to the poison queue ({e}); the message stays on its queue");
                                    Counted::Nothing
                                }
                            };
                            let _ = tx.send(Event::Settled { id, counted });
                        });
                    }
                    WorkerAction::Interrupt { id } => {
                        if let Some(m) = held.get(&id) {
                            tracing::info!(message_id = %id, "shutdown deadline near: asking the handler to checkpoint and stop");
                            let _ = m.interrupt.send(true);
                        }
                    }
                    WorkerAction::Kill { id } => {
                        if let Some(m) = held.get_mut(&id)
                            && let Some(task) = m.task.take()
                        {
                            tracing::warn!(message_id = %id, "handler missed the shutdown deadline; killing it");
                            task.abort();
                            let _ = tx.send(Event::Finished {
                                id,
                                outcome: TaskOutcome::Outcome(Outcome::Interrupted),
                            });
                        }
                    }
                    WorkerAction::Forget { id } => {
                        if let Some(m) = held.get_mut(&id) {
                            tracing::warn!(message_id = %id, "lease lost; dropping the message without committing");
                            if let Some(task) = m.task.take() {
                                task.abort();
                            }
                            let _ = tx.send(Event::Settled {
                                id,
                                counted: Counted::Lost,
                            });
                        }
                    }
                }
            }
        }

        let wake = machine.next_wakeup();
        let sleep = async {
            match wake {
                Some(t) => clock.sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let event = tokio::select! {
            Some(e) = rx.recv() => Some(e),
            () = sleep => None,
            Some(()) = recv_signal(&mut sigterm) => Some(Event::Stop),
            Some(()) = recv_signal(&mut sigint) => Some(Event::Stop),
            () = stop_requested(&mut shutdown), if !machine.is_shutting_down() => Some(Event::Stop),
        };
        let Some(event) = event else {
            pending.push(WorkerInput::Tick);
            continue;
        };
        match event {
            Event::Ready => {
                tracing::info!("warmup gate passed; receiving");
                pending.push(WorkerInput::Ready);
            }
            Event::Stop => {
                let deadline = clock.now().plus(options.shutdown_budget);
                tracing::info!(budget = ?options.shutdown_budget, held = machine.held(), "shutting down: no new work, releasing unstarted messages");
                pending.push(WorkerInput::Shutdown { deadline });
            }
            Event::Received(Ok(deliveries)) => {
                receive_error_logged = false;
                let empty = deliveries.is_empty();
                let mut batch = Vec::with_capacity(deliveries.len());
                for d in deliveries {
                    let id = d.lease.message_id.0.clone();
                    batch.push(Held {
                        id: id.clone(),
                        dequeue_count: d.dequeue_count,
                        visible_at: d.lease.visible_at,
                    });
                    let (interrupt, _) = watch::channel(false);
                    held.entry(id).or_insert_with(|| HeldMessage {
                        lease: Arc::new(Mutex::new(d.lease.clone())),
                        delivery: d,
                        task: None,
                        interrupt,
                        already_committed: false,
                        deleted: false,
                    });
                }
                pending.push(WorkerInput::Received(batch));
                if empty
                    && options.exit_when_empty
                    && machine.held() == 0
                    && !machine.is_shutting_down()
                {
                    pending.push(WorkerInput::Shutdown {
                        deadline: clock.now().plus(options.shutdown_budget),
                    });
                }
            }
            Event::Received(Err(e)) => {
                match &e {
                    QueueError::QueueNotFound { .. } | QueueError::Unauthorized { .. } => {
                        return Err(WorkerError::Queue(e));
                    }
                    _ => {
                        if !receive_error_logged {
                            tracing::warn!("receive failed ({e}); backing off, will keep trying");
                            receive_error_logged = true;
                        }
                    }
                }
                pending.push(WorkerInput::ReceiveFailed);
            }
            Event::Finished { id, outcome } => {
                if let Some(m) = held.get_mut(&id) {
                    m.task = None;
                }
                pending.push(match outcome {
                    TaskOutcome::CommittedAndDeleted => {
                        if let Some(m) = held.get_mut(&id) {
                            m.deleted = true;
                        }
                        WorkerInput::Finished {
                            id,
                            outcome: Outcome::Done,
                        }
                    }
                    // The same as a renewal finding the receipt superseded: drop it, commit nothing.
                    TaskOutcome::LeaseLost => WorkerInput::RenewFailed { id, lost: true },
                    TaskOutcome::Outcome(outcome) => {
                        if outcome == Outcome::AlreadyCommitted
                            && let Some(m) = held.get_mut(&id)
                        {
                            m.already_committed = true;
                        }
                        WorkerInput::Finished { id, outcome }
                    }
                    TaskOutcome::Rejected(reason) => WorkerInput::Rejected { id, reason },
                });
            }
            Event::Renewed { id, result } => pending.push(match result {
                Ok(lease) => WorkerInput::Renewed {
                    id,
                    visible_at: lease.visible_at,
                },
                Err(QueueError::LeaseLost { .. }) => WorkerInput::RenewFailed { id, lost: true },
                Err(e) => {
                    tracing::warn!(message_id = %id, "lease renewal failed ({e}); retrying");
                    WorkerInput::RenewFailed { id, lost: false }
                }
            }),
            Event::Settled { id, counted } => {
                match counted {
                    Counted::Completed => report.completed += 1,
                    Counted::AlreadyCommitted => report.already_committed += 1,
                    Counted::Retried => report.retried += 1,
                    Counted::Poisoned => report.poisoned += 1,
                    Counted::Released => report.released += 1,
                    Counted::Lost => report.lost += 1,
                    Counted::Nothing => {}
                }
                held.remove(&id);
                pending.push(WorkerInput::Settled { id });
            }
        }
    }
}

/// Runs `fut`, turning a panic in any of its polls into `Err` with the panic's payload. The
/// future is never polled again after a panic.
async fn catch_unwind<F: Future>(fut: F) -> Result<F::Output, Box<dyn std::any::Any + Send>> {
    let mut fut = Box::pin(fut);
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    })
    .await
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic")
}

#[derive(Clone, Copy)]
enum SettleOp {
    Delete,
    Visibility(Duration),
}

fn settle<Q: Queue>(
    queue: &Arc<Q>,
    tx: &mpsc::UnboundedSender<Event>,
    id: String,
    lease: Arc<Mutex<Lease>>,
    counted: Counted,
    op: SettleOp,
) {
    let (queue, tx) = (queue.clone(), tx.clone());
    tokio::spawn(async move {
        let lease = lease.lock().await;
        let result = match op {
            SettleOp::Delete => with_retries(5, retryable_queue, || queue.delete(&lease)).await,
            SettleOp::Visibility(d) => {
                with_retries(5, retryable_queue, || queue.set_visibility(&lease, d))
                    .await
                    .map(|_| ())
            }
        };
        let counted = match result {
            Ok(()) => counted,
            // Someone else holds or finished it; for a delete after commit that is fine, for a
            // release it means another worker already has it.
            Err(QueueError::LeaseLost { .. }) => counted,
            Err(e) => {
                // The lease lapses by itself and the message comes back: nothing is lost.
                tracing::warn!(message_id = %id, "could not settle the message ({e}); it will reappear when its lease lapses");
                Counted::Nothing
            }
        };
        let _ = tx.send(Event::Settled { id, counted });
    });
}

/// Completes when `flag` turns true (never, if its sender is gone).
async fn stop_requested(flag: &mut watch::Receiver<bool>) {
    if flag.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn recv_signal(s: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Saves `data` as the checkpoint for `key` unless a later attempt (higher fence) saved one.
async fn save_fenced<S: ObjectStore>(
    store: &S,
    key: &str,
    fence: u32,
    data: &[u8],
) -> Result<(), CheckpointError> {
    let record = encode_checkpoint(fence, data);
    for _ in 0..8 {
        let current = with_retries(5, retryable_store, || store.get(key))
            .await
            .map_err(|e| CheckpointError::Store(e.to_string()))?;
        let condition = match current {
            None => WriteCondition::IfAbsent,
            Some(obj) => {
                if !checkpoint_write_allowed(Some(&obj.body), fence) {
                    return Err(CheckpointError::Superseded);
                }
                WriteCondition::IfMatch(obj.etag)
            }
        };
        match with_retries(5, retryable_store, || {
            store.put(key, &record, condition.clone())
        })
        .await
        {
            Ok(_) => return Ok(()),
            // Someone wrote between our read and write: read again and re-check the fence.
            Err(StoreError::ConditionFailed { .. }) => {}
            Err(e) => return Err(CheckpointError::Store(e.to_string())),
        }
    }
    Err(CheckpointError::Store(format!(
        "checkpoint {key} kept changing under us"
    )))
}

async fn process_message<Q: Queue, S: ObjectStore, H: Handler>(
    queue: Arc<Q>,
    store: Arc<S>,
    handler: Arc<H>,
    delivery: Delivery,
    lease: Arc<Mutex<Lease>>,
    interrupt: watch::Receiver<bool>,
) -> TaskOutcome {
    let id = delivery.lease.message_id.0.clone();
    let envelope = match parse_envelope(&id, &delivery.body) {
        Ok(e) => e,
        Err(e) => return TaskOutcome::Rejected(e.to_string()),
    };
    let ledger = ledger_key(&envelope.key);
    // On a message's first delivery, keyed by its own (unique) id, no attempt can have committed an
    // effect or saved a checkpoint yet: skip both reads. Producer keys are always checked, since
    // another message may carry the same key.
    let first_sight = delivery.dequeue_count == 1 && envelope.key == id;
    let ledger_read = if first_sight {
        Ok(None)
    } else {
        with_retries(5, retryable_store, || store.get(&ledger)).await
    };
    match ledger_read {
        Ok(Some(_)) => {
            tracing::info!(message_id = %id, key = %envelope.key, "effect already committed by an earlier attempt; deleting");
            return TaskOutcome::Outcome(Outcome::AlreadyCommitted);
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(message_id = %id, "cannot read the idempotency ledger ({e}); retrying later");
            return TaskOutcome::Outcome(Outcome::Failed);
        }
    }
    let cp_key = checkpoint_key(&envelope.key);
    let checkpoint_read = if first_sight {
        Ok(None)
    } else {
        with_retries(5, retryable_store, || store.get(&cp_key)).await
    };
    let mut checkpoint_exists;
    let checkpoint = match checkpoint_read {
        Ok(obj) => {
            checkpoint_exists = obj.is_some();
            obj.and_then(|o| decode_checkpoint(&o.body))
                .map(|(_, data)| data)
        }
        Err(e) => {
            tracing::warn!(message_id = %id, "cannot read the checkpoint ({e}); retrying later");
            return TaskOutcome::Outcome(Outcome::Failed);
        }
    };
    let fence = delivery.dequeue_count;
    let (cp_tx, mut cp_rx) = mpsc::channel(4);
    let ctx = HandlerContext {
        message_id: id.clone(),
        dequeue_count: delivery.dequeue_count,
        idempotency_key: envelope.key.clone(),
        body: envelope.body,
        checkpoint,
        checkpointer: Checkpointer { tx: cp_tx },
        interrupt: interrupt.clone(),
    };
    let attempt = handler.handle(ctx);
    tokio::pin!(attempt);
    let result = loop {
        tokio::select! {
            r = &mut attempt => break r,
            Some((data, done)) = cp_rx.recv() => {
                checkpoint_exists = true;
                let r = save_fenced(store.as_ref(), &cp_key, fence, &data).await;
                let _ = done.send(r);
            }
        }
    };
    let interrupted = *interrupt.borrow();
    let (outcome, checkpoint) = match result {
        HandlerResult::Done { effect } => {
            // Where queue and store share a transaction, commit the effect and delete the message
            // as one atomic step (one durable write, not two). The lease lock keeps a renewal from
            // superseding the receipt in between; a receipt superseded anyway fails the whole step.
            let atomic = {
                let lease = lease.lock().await;
                with_retries(5, retryable_commit, || {
                    queue.commit_and_delete(store.as_ref(), &ledger, &effect, &lease)
                })
                .await
            };
            let committed = match atomic {
                Ok(_) => Ok(TaskOutcome::CommittedAndDeleted),
                Err(CommitError::Unsupported) => with_retries(5, retryable_store, || {
                    store.put(&ledger, &effect, WriteCondition::IfAbsent)
                })
                .await
                .map(|_| TaskOutcome::Outcome(Outcome::Done)),
                Err(CommitError::Store(e)) => Err(e),
                Err(CommitError::Queue(QueueError::LeaseLost { .. })) => {
                    tracing::info!(message_id = %id, "lease lost before the commit; nothing committed");
                    return TaskOutcome::LeaseLost;
                }
                Err(CommitError::Queue(e)) => {
                    tracing::warn!(message_id = %id, "cannot commit the effect ({e}); retrying later");
                    return TaskOutcome::Outcome(Outcome::Failed);
                }
            };
            return match committed {
                Ok(outcome) => {
                    // Progress is moot once the effect is committed.
                    if checkpoint_exists {
                        let _ = store.delete(&cp_key).await;
                    }
                    outcome
                }
                Err(StoreError::ConditionFailed { .. }) => {
                    tracing::info!(message_id = %id, "another attempt committed this effect first; ours is dropped");
                    TaskOutcome::Outcome(Outcome::AlreadyCommitted)
                }
                Err(e) => {
                    tracing::warn!(message_id = %id, "cannot commit the effect ({e}); retrying later");
                    TaskOutcome::Outcome(Outcome::Failed)
                }
            };
        }
        HandlerResult::RetryLater { checkpoint } => (Outcome::RetryLater, checkpoint),
        HandlerResult::Failed { reason, checkpoint } => {
            if !interrupted {
                tracing::warn!(message_id = %id, "handler attempt failed: {reason}");
            }
            (Outcome::Failed, checkpoint)
        }
    };
    if let Some(data) = checkpoint
        && let Err(e) = save_fenced(store.as_ref(), &cp_key, fence, &data).await
    {
        tracing::warn!(message_id = %id, "final checkpoint not saved: {e}");
    }
    TaskOutcome::Outcome(if interrupted {
        Outcome::Interrupted
    } else {
        outcome
    })
}
