//! The worker core: how many messages to hold, when to receive, renew, retry, poison, release and
//! exit. At-least-once delivery; the runner makes effects idempotent with the ledger.
//!
//! # Expected flow
//! 1. Warmup: nothing is received until [`WorkerInput::Ready`].
//! 2. Receiving: while fewer than `concurrency + prefetch` messages are held, ask for a receive
//!    (one at a time). An empty or failed receive backs off (capped, jittered).
//! 3. Each delivery: a dequeue count above `max_dequeue` is poisoned at once (moved aside with the
//!    reason); otherwise it waits in the prefetch buffer and starts when a handler slot is free.
//! 4. Leases: every held message is renewed when its visibility is within `renew_margin` of
//!    lapsing, whether it is running or waiting, so nothing is redelivered while held.
//! 5. Outcomes: done -> complete (commit the effect, then delete); retry-later or failed -> back
//!    on the queue after a backoff that grows with the dequeue count; lease lost -> forget it.
//! 6. Shutdown (SIGTERM or an in-process cancel, with a deadline): stop receiving at once, release
//!    the prefetched messages (visible again immediately, so other workers take them), let running
//!    handlers finish until `deadline - checkpoint_grace`, then interrupt them (they checkpoint and
//!    stop), release what they leave, and exit when nothing is held.
//!
//! # Guarantees
//! - Never more than `concurrency` handlers at once and `concurrency + prefetch` messages held.
//! - Never more than one receive in flight; nothing received after shutdown begins.
//! - A message whose lease was lost is never completed by this worker.
//! - Time is an argument; the machine reads no clock.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::Timestamp;
use crate::backoff::{Backoff, SplitMix64};

/// What the worker core needs to know up front.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Handlers running at once.
    pub concurrency: u32,
    /// Messages held beyond the running ones (small: held messages are invisible to others).
    pub prefetch: u32,
    /// Visibility timeout asked for on receive and on each renewal.
    pub lease: Duration,
    /// Renew when a lease has less than this left.
    pub renew_margin: Duration,
    /// Receives above this count are poison.
    pub max_dequeue: u32,
    /// Spacing of receives after an empty or failed one.
    pub idle_backoff: Backoff,
    /// Delay before a retried message is visible again, by dequeue count.
    pub retry_backoff: Backoff,
    /// Time before the shutdown deadline at which running handlers are interrupted.
    pub checkpoint_grace: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: 4,
            prefetch: 2,
            lease: Duration::from_secs(60),
            renew_margin: Duration::from_secs(20),
            max_dequeue: 5,
            idle_backoff: Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_secs(2),
            },
            retry_backoff: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(60),
            },
            checkpoint_grace: Duration::from_secs(5),
        }
    }
}

/// A received message, as far as scheduling is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The queue's message id.
    pub id: String,
    /// Receives so far, this one included.
    pub dequeue_count: u32,
    /// When the lease lapses unless renewed.
    pub visible_at: Timestamp,
}

/// How a handler attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Success: commit the effect and delete the message.
    Done,
    /// The handler asked to be retried later (documented exit code).
    RetryLater,
    /// The attempt failed (any other exit, a crash, a malformed message it rejected).
    Failed,
    /// Stopped by shutdown after (possibly) checkpointing: release for another worker now.
    Interrupted,
    /// The effect was already committed by an earlier attempt: just delete the message.
    AlreadyCommitted,
}

/// What happened, as the runner reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerInput {
    /// Time passed.
    Tick,
    /// The warmup gate passed.
    Ready,
    /// A receive returned these messages.
    Received(Vec<Held>),
    /// A receive failed (transient: the runner logs why).
    ReceiveFailed,
    /// A handler attempt ended.
    Finished {
        /// The message.
        id: String,
        /// How.
        outcome: Outcome,
    },
    /// The message cannot be processed at all (a malformed envelope): poison it now rather than
    /// retrying something that can never succeed.
    Rejected {
        /// The message.
        id: String,
        /// Why, for the poison queue.
        reason: String,
    },
    /// A renewal succeeded.
    Renewed {
        /// The message.
        id: String,
        /// The new lapse time.
        visible_at: Timestamp,
    },
    /// A renewal failed; `lost` when the receipt was superseded (someone else holds it now).
    RenewFailed {
        /// The message.
        id: String,
        /// Whether the lease is gone for good.
        lost: bool,
    },
    /// The runner finished settling a message (deleted, retried, released, poisoned or forgotten):
    /// it no longer holds it.
    Settled {
        /// The message.
        id: String,
    },
    /// Shut down by `deadline`.
    Shutdown {
        /// When everything must be finished.
        deadline: Timestamp,
    },
}

/// Something the runner must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerAction {
    /// Receive up to `max` messages with this visibility timeout.
    Receive {
        /// How many.
        max: u32,
        /// Lease length.
        visibility: Duration,
    },
    /// Run the handler on this held message.
    Start {
        /// The message.
        id: String,
    },
    /// Extend the lease.
    Renew {
        /// The message.
        id: String,
        /// New visibility from now.
        visibility: Duration,
    },
    /// Commit the effect (idempotency ledger) and delete the message; report `Settled`.
    Complete {
        /// The message.
        id: String,
    },
    /// Put the message back, visible after `delay`; report `Settled`.
    Retry {
        /// The message.
        id: String,
        /// Delay before it is visible again.
        delay: Duration,
    },
    /// Move the message to the poison queue with `reason`, then delete it; report `Settled`.
    Poison {
        /// The message.
        id: String,
        /// Why.
        reason: String,
    },
    /// Make the message visible again at once (unstarted or interrupted work); report `Settled`.
    Release {
        /// The message.
        id: String,
    },
    /// Ask the running handler to checkpoint and stop (SIGTERM / cancellation); it reports
    /// `Finished` with `Interrupted` (or any outcome it reaches first).
    Interrupt {
        /// The message.
        id: String,
    },
    /// Kill the handler now; it missed the shutdown deadline.
    Kill {
        /// The message.
        id: String,
    },
    /// The lease is lost: stop the handler without committing and drop local state; report
    /// `Settled`.
    Forget {
        /// The message.
        id: String,
    },
    /// Nothing is held and shutdown is complete (or asked): exit.
    Exit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Waiting,
    Running,
    Settling,
}

#[derive(Clone, Debug)]
struct Slot {
    dequeue_count: u32,
    visible_at: Timestamp,
    renewing: bool,
    renew_retry_at: Option<Timestamp>,
    stage: Stage,
    interrupted: bool,
    killed: bool,
}

/// The worker's decision core.
#[derive(Clone, Debug)]
pub struct WorkerMachine {
    settings: WorkerSettings,
    ready: bool,
    receiving: bool,
    next_receive_at: Timestamp,
    empty_receives: u32,
    slots: BTreeMap<String, Slot>,
    waiting: VecDeque<String>,
    shutdown: Option<Timestamp>,
    exited: bool,
    rng: SplitMix64,
}

impl WorkerMachine {
    /// A machine starting at `now`; `seed` fixes jitter.
    #[must_use]
    pub fn new(settings: WorkerSettings, now: Timestamp, seed: u64) -> Self {
        Self {
            settings,
            ready: false,
            receiving: false,
            next_receive_at: now,
            empty_receives: 0,
            slots: BTreeMap::new(),
            waiting: VecDeque::new(),
            shutdown: None,
            exited: false,
            rng: SplitMix64::new(seed),
        }
    }

    /// Messages held (waiting, running or settling).
    #[must_use]
    pub fn held(&self) -> usize {
        self.slots.len()
    }

    /// Handlers running.
    #[must_use]
    pub fn running(&self) -> usize {
        self.slots
            .values()
            .filter(|s| s.stage == Stage::Running)
            .count()
    }

    /// Whether shutdown has begun.
    #[must_use]
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    /// When the runner must deliver the next `Tick` at the latest.
    #[must_use]
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        if self.exited {
            return None;
        }
        let mut wake: Option<Timestamp> = None;
        let mut consider = |t: Timestamp| wake = Some(wake.map_or(t, |w| w.min(t)));
        if self.may_receive() {
            consider(self.next_receive_at);
        }
        for slot in self.slots.values() {
            if slot.stage != Stage::Settling {
                if let Some(t) = slot.renew_retry_at {
                    consider(t);
                } else if !slot.renewing {
                    consider(slot.visible_at.minus(self.settings.renew_margin));
                }
            }
        }
        if let Some(deadline) = self.shutdown {
            // Only wake for steps still to take, or a passed deadline would spin the runner.
            let running = self.slots.values().filter(|s| s.stage == Stage::Running);
            for slot in running {
                if !slot.interrupted {
                    consider(deadline.minus(self.settings.checkpoint_grace));
                }
                if !slot.killed {
                    consider(deadline);
                }
            }
        }
        wake
    }

    fn capacity(&self) -> usize {
        (self.settings.concurrency + self.settings.prefetch) as usize
    }

    fn may_receive(&self) -> bool {
        let room = self.capacity().saturating_sub(self.slots.len());
        // Receive in batches: wait until half the capacity is free unless nothing is waiting to
        // start. Fewer, larger receives cost fewer queue transactions (and fewer billed requests
        // on Azure) without ever leaving a handler slot idle.
        let worth_it = self.waiting.is_empty() || room * 2 >= self.capacity();
        self.ready && self.shutdown.is_none() && !self.receiving && room > 0 && worth_it
    }

    /// Feeds one input at `now`; returns what to do, in order.
    #[must_use]
    pub fn handle(&mut self, input: WorkerInput, now: Timestamp) -> Vec<WorkerAction> {
        let mut out = Vec::new();
        if self.exited {
            return out;
        }
        match input {
            WorkerInput::Tick => {}
            WorkerInput::Ready => self.ready = true,
            WorkerInput::Received(messages) => self.on_received(messages, now, &mut out),
            WorkerInput::ReceiveFailed => {
                self.receiving = false;
                self.empty_receives = self.empty_receives.saturating_add(1);
                self.next_receive_at = now.plus(
                    self.settings
                        .idle_backoff
                        .delay(self.empty_receives, self.rng.next_u64()),
                );
            }
            WorkerInput::Finished { id, outcome } => self.on_finished(&id, outcome, &mut out),
            WorkerInput::Rejected { id, reason } => {
                if let Some(slot) = self.slots.get_mut(&id)
                    && slot.stage == Stage::Running
                {
                    slot.stage = Stage::Settling;
                    out.push(WorkerAction::Poison { id, reason });
                }
            }
            WorkerInput::Renewed { id, visible_at } => {
                if let Some(slot) = self.slots.get_mut(&id) {
                    slot.renewing = false;
                    slot.renew_retry_at = None;
                    slot.visible_at = visible_at;
                }
            }
            WorkerInput::RenewFailed { id, lost } => {
                if let Some(slot) = self.slots.get_mut(&id) {
                    slot.renewing = false;
                    if lost {
                        slot.stage = Stage::Settling;
                        self.waiting.retain(|w| w != &id);
                        out.push(WorkerAction::Forget { id });
                    } else {
                        slot.renew_retry_at = Some(now.plus(Duration::from_millis(500)));
                    }
                }
            }
            WorkerInput::Settled { id } => {
                self.slots.remove(&id);
                self.waiting.retain(|w| w != &id);
            }
            WorkerInput::Shutdown { deadline } => self.on_shutdown(deadline, now, &mut out),
        }
        self.on_time(now, &mut out);
        out
    }

    fn on_received(&mut self, messages: Vec<Held>, now: Timestamp, out: &mut Vec<WorkerAction>) {
        self.receiving = false;
        if messages.is_empty() {
            self.empty_receives = self.empty_receives.saturating_add(1);
            self.next_receive_at = now.plus(
                self.settings
                    .idle_backoff
                    .delay(self.empty_receives, self.rng.next_u64()),
            );
        } else {
            self.empty_receives = 0;
            self.next_receive_at = now;
        }
        for m in messages {
            if self.slots.contains_key(&m.id) {
                // The queue handed us a message we already hold (our lease lapsed and we
                // re-received it): the old receipt is dead, keep the newer one's schedule.
                continue;
            }
            let poison = m.dequeue_count > self.settings.max_dequeue;
            self.slots.insert(
                m.id.clone(),
                Slot {
                    dequeue_count: m.dequeue_count,
                    visible_at: m.visible_at,
                    renewing: false,
                    renew_retry_at: None,
                    stage: if poison {
                        Stage::Settling
                    } else {
                        Stage::Waiting
                    },
                    interrupted: false,
                    killed: false,
                },
            );
            if poison {
                out.push(WorkerAction::Poison {
                    reason: format!(
                        "dequeued {} times, above the limit of {}; the handler kept failing",
                        m.dequeue_count, self.settings.max_dequeue
                    ),
                    id: m.id,
                });
            } else if self.shutdown.is_some() {
                // A receive that raced the shutdown: hand it straight back.
                if let Some(slot) = self.slots.get_mut(&m.id) {
                    slot.stage = Stage::Settling;
                }
                out.push(WorkerAction::Release { id: m.id });
            } else {
                self.waiting.push_back(m.id);
            }
        }
    }

    fn on_finished(&mut self, id: &str, outcome: Outcome, out: &mut Vec<WorkerAction>) {
        let Some(slot) = self.slots.get_mut(id) else {
            return;
        };
        if slot.stage != Stage::Running {
            return;
        }
        slot.stage = Stage::Settling;
        let id = id.to_string();
        match outcome {
            Outcome::Done | Outcome::AlreadyCommitted => out.push(WorkerAction::Complete { id }),
            Outcome::Interrupted => out.push(WorkerAction::Release { id }),
            Outcome::RetryLater | Outcome::Failed => {
                let delay = self
                    .settings
                    .retry_backoff
                    .delay(slot.dequeue_count, self.rng.next_u64());
                out.push(WorkerAction::Retry { id, delay });
            }
        }
    }

    fn on_shutdown(&mut self, deadline: Timestamp, now: Timestamp, out: &mut Vec<WorkerAction>) {
        let deadline = match self.shutdown {
            Some(existing) => existing.min(deadline),
            None => deadline,
        };
        self.shutdown = Some(deadline.max(now));
        for id in std::mem::take(&mut self.waiting) {
            if let Some(slot) = self.slots.get_mut(&id) {
                slot.stage = Stage::Settling;
                out.push(WorkerAction::Release { id });
            }
        }
    }

    fn on_time(&mut self, now: Timestamp, out: &mut Vec<WorkerAction>) {
        // Start waiting messages while slots are free.
        if self.ready && self.shutdown.is_none() {
            while self.running() < self.settings.concurrency as usize {
                let Some(id) = self.waiting.pop_front() else {
                    break;
                };
                if let Some(slot) = self.slots.get_mut(&id) {
                    slot.stage = Stage::Running;
                    out.push(WorkerAction::Start { id });
                }
            }
        }
        // Renew leases close to lapsing.
        let renew_at_margin = self.settings.renew_margin;
        for (id, slot) in &mut self.slots {
            if slot.stage == Stage::Settling || slot.renewing {
                continue;
            }
            let due = match slot.renew_retry_at {
                Some(t) => now >= t,
                None => now >= slot.visible_at.minus(renew_at_margin),
            };
            if due {
                slot.renewing = true;
                slot.renew_retry_at = None;
                out.push(WorkerAction::Renew {
                    id: id.clone(),
                    visibility: self.settings.lease,
                });
            }
        }
        // Shutdown: interrupt at deadline - grace, kill at the deadline, exit when empty.
        if let Some(deadline) = self.shutdown {
            let interrupt_at = deadline.minus(self.settings.checkpoint_grace);
            for (id, slot) in &mut self.slots {
                if slot.stage != Stage::Running {
                    continue;
                }
                if now >= interrupt_at && !slot.interrupted {
                    slot.interrupted = true;
                    out.push(WorkerAction::Interrupt { id: id.clone() });
                }
                if now >= deadline && !slot.killed {
                    slot.killed = true;
                    out.push(WorkerAction::Kill { id: id.clone() });
                }
            }
            if self.slots.is_empty() {
                self.exited = true;
                out.push(WorkerAction::Exit);
                return;
            }
        }
        if self.may_receive() && now >= self.next_receive_at {
            self.receiving = true;
            let room = self.capacity() - self.slots.len();
            out.push(WorkerAction::Receive {
                max: u32::try_from(room).unwrap_or(32).clamp(1, 32),
                visibility: self.settings.lease,
            });
        }
    }
}

#[cfg(test)]
mod tests;
