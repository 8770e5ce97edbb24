//! The worker world: two workers, each the real `WorkerMachine`, against an in-memory queue
//! (visibility timeouts and pop receipts in virtual time, dequeue counts) and an in-memory
//! object store (create-only writes; a checkpoint's read-check-write happens at one instant).
//!
//! The runtime's ledger and fencing logic lives in the async runner (`spotkit_worker::run`);
//! this world does not drive that runtime. It performs the machine's actions with the runner's
//! protocol, step for step, using spotkit-worker's own pure pieces: `ledger_key`,
//! `checkpoint_key`, `encode_checkpoint`/`decode_checkpoint` and `checkpoint_write_allowed`
//! (the fence rule, extracted from the runner's `save_fenced` so both use one function). The
//! effect is committed with a create-only ledger write, then the message deleted.
//!
//! Faults in the safety phase: a worker killed at any step (its state dropped; what it held
//! reappears when the lease lapses) and restarted, a worker paused past its lease (a stale
//! worker that resumes and tries to write a checkpoint), storage outages (queue and store fail
//! for a while), duplicate deliveries (a message delivered twice at once, as Azure Queue may).
//! The liveness phase has no faults; at its end every message must have its effect.

use std::collections::BTreeMap;
use std::time::Duration;

use spotkit_core::Timestamp;
use spotkit_core::backoff::Backoff;
use spotkit_core::worker::{Held, Outcome as HandlerOutcome, WorkerAction, WorkerInput};
use spotkit_core::worker::{WorkerMachine, WorkerSettings};
use spotkit_worker::{
    checkpoint_key, checkpoint_write_allowed, decode_checkpoint, encode_checkpoint, ledger_key,
};

use crate::harness::{Outcome, Simulation, World};

const WORKERS: usize = 2;

#[derive(Clone, Debug)]
enum Event {
    Wake {
        w: usize,
        generation: u32,
    },
    Input {
        w: usize,
        generation: u32,
        input: WorkerInput,
    },
    /// A handler finished a step of its work: checkpoint, then go on or finish.
    HandlerStep {
        w: usize,
        generation: u32,
        id: String,
        step: u32,
        /// The attempt's fence: the dequeue count of the delivery it started from.
        fence: u32,
    },
    Chaos,
    Restart {
        w: usize,
    },
    OutageEnds,
    LivenessStarts,
}

#[derive(Clone, Debug)]
struct Message {
    key: String,
    visible_at: Timestamp,
    dequeue_count: u32,
    receipt: u64,
    deleted: bool,
    /// Steps of work the handler needs.
    steps: u32,
}

#[derive(Clone, Debug)]
struct StoredObject {
    body: Vec<u8>,
}

struct WorkerProcess {
    machine: WorkerMachine,
    generation: u32,
    alive: bool,
    /// The pop receipt of each held message, and its fence (dequeue count).
    receipts: BTreeMap<String, (u64, u32)>,
    paused_until: Option<Timestamp>,
    wake_at: Option<Timestamp>,
}

struct WorkerWorld {
    sim: Simulation<Event>,
    settings: WorkerSettings,
    queue: BTreeMap<String, Message>,
    store: BTreeMap<String, StoredObject>,
    next_receipt: u64,
    workers: Vec<WorkerProcess>,
    outage: bool,
    faults_on: bool,
    ledger_writes: BTreeMap<String, u32>,
    poisoned: BTreeMap<String, String>,
    /// Highest fence stored per checkpoint key, to check it never goes down.
    checkpoint_fences: BTreeMap<String, u32>,
}

/// Runs one seed; returns the outcome and, when `keep_trace`, every trace line.
#[must_use]
pub fn run(seed: u64, keep_trace: bool) -> (Outcome, Vec<String>) {
    let mut sim: Simulation<Event> = Simulation::new(seed, keep_trace);
    let lease = sim
        .rng
        .duration(Duration::from_secs(6), Duration::from_secs(20));
    let settings = WorkerSettings {
        concurrency: u32::try_from(sim.rng.between(1, 3)).unwrap_or(1),
        prefetch: u32::try_from(sim.rng.between(0, 2)).unwrap_or(0),
        lease,
        renew_margin: lease / 3,
        max_dequeue: 8,
        idle_backoff: Backoff {
            base: Duration::from_millis(200),
            max: Duration::from_secs(2),
        },
        retry_backoff: Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(5),
        },
        checkpoint_grace: Duration::from_secs(2),
    };
    let messages = sim.rng.between(3, 12);
    let mut queue = BTreeMap::new();
    for i in 0..messages {
        let steps = u32::try_from(sim.rng.between(1, 4)).unwrap_or(1);
        queue.insert(
            format!("m{i:03}"),
            Message {
                key: format!("order-{i}"),
                visible_at: sim.now(),
                dequeue_count: 0,
                receipt: 0,
                deleted: false,
                steps,
            },
        );
    }
    let safety = sim
        .rng
        .duration(Duration::from_secs(30), Duration::from_secs(120));
    sim.trace.record(
        sim.now(),
        format!("settings {settings:?} messages {messages}"),
    );
    let workers = (0..WORKERS)
        .map(|w| WorkerProcess {
            machine: WorkerMachine::new(settings.clone(), sim.now(), seed ^ w as u64),
            generation: 0,
            alive: true,
            receipts: BTreeMap::new(),
            paused_until: None,
            wake_at: None,
        })
        .collect();
    let mut world = WorkerWorld {
        sim,
        settings,
        queue,
        store: BTreeMap::new(),
        next_receipt: 1,
        workers,
        outage: false,
        faults_on: true,
        ledger_writes: BTreeMap::new(),
        poisoned: BTreeMap::new(),
        checkpoint_fences: BTreeMap::new(),
    };
    for w in 0..WORKERS {
        world.feed(w, WorkerInput::Ready);
    }
    world.sim.schedule_in(safety, Event::LivenessStarts);
    let first = world
        .sim
        .rng
        .duration(Duration::from_secs(1), Duration::from_secs(10));
    world.sim.schedule_in(first, Event::Chaos);
    let end = world.sim.now().plus(safety).plus(Duration::from_secs(600));
    while let Some(event) = world.sim.next_event(end) {
        world.step(event);
        if world.sim.failed() || (!world.faults_on && world.all_done()) {
            break;
        }
    }
    if !world.sim.failed() {
        world.final_checks();
    }
    let all = world
        .sim
        .trace
        .all()
        .map(<[String]>::to_vec)
        .unwrap_or_default();
    (world.sim.finish(World::Worker), all)
}

impl WorkerWorld {
    fn all_done(&self) -> bool {
        self.queue.values().all(|m| m.deleted)
    }

    fn latency(&mut self) -> Duration {
        self.sim
            .rng
            .duration(Duration::from_millis(1), Duration::from_millis(80))
    }

    fn current(&self, w: usize, generation: u32) -> bool {
        self.workers[w].alive && self.workers[w].generation == generation
    }

    fn step(&mut self, event: Event) {
        let now = self.sim.now();
        // A paused worker does nothing until it resumes: its events wait.
        let paused = |world: &Self, w: usize| {
            world.workers[w]
                .paused_until
                .is_some_and(|until| until > now)
        };
        match event {
            Event::Wake { w, generation } => {
                if self.current(w, generation) {
                    if paused(self, w) {
                        let until = self.workers[w].paused_until.unwrap_or(now);
                        self.sim.schedule(until, Event::Wake { w, generation });
                        return;
                    }
                    self.workers[w].wake_at = None;
                    self.feed(w, WorkerInput::Tick);
                }
            }
            Event::Input {
                w,
                generation,
                input,
            } => {
                if self.current(w, generation) {
                    if paused(self, w) {
                        let until = self.workers[w].paused_until.unwrap_or(now);
                        self.sim.schedule(
                            until,
                            Event::Input {
                                w,
                                generation,
                                input,
                            },
                        );
                        return;
                    }
                    self.feed(w, input);
                }
            }
            Event::HandlerStep {
                w,
                generation,
                id,
                step,
                fence,
            } => {
                if self.current(w, generation) {
                    if paused(self, w) {
                        let until = self.workers[w].paused_until.unwrap_or(now);
                        self.sim.schedule(
                            until,
                            Event::HandlerStep {
                                w,
                                generation,
                                id,
                                step,
                                fence,
                            },
                        );
                        return;
                    }
                    self.handler_step(w, generation, &id, step, fence);
                }
            }
            Event::Chaos => {
                if self.faults_on {
                    self.chaos();
                    let gap = self
                        .sim
                        .rng
                        .duration(Duration::from_secs(2), Duration::from_secs(20));
                    self.sim.schedule_in(gap, Event::Chaos);
                }
            }
            Event::Restart { w } => {
                let generation = self.workers[w].generation + 1;
                self.sim.trace.record(
                    now,
                    format!("worker {w} restarts (generation {generation})"),
                );
                self.workers[w] = WorkerProcess {
                    machine: WorkerMachine::new(
                        self.settings.clone(),
                        now,
                        self.sim.seed() ^ (u64::from(generation) << 8) ^ w as u64,
                    ),
                    generation,
                    alive: true,
                    receipts: BTreeMap::new(),
                    paused_until: None,
                    wake_at: None,
                };
                self.feed(w, WorkerInput::Ready);
            }
            Event::OutageEnds => {
                self.outage = false;
                self.sim.trace.record(now, "storage back");
            }
            Event::LivenessStarts => {
                self.faults_on = false;
                self.outage = false;
                self.sim.trace.record(now, "liveness phase: faults off");
                for w in 0..WORKERS {
                    if !self.workers[w].alive {
                        self.sim.schedule(now, Event::Restart { w });
                    }
                }
            }
        }
    }

    fn chaos(&mut self) {
        let now = self.sim.now();
        let w = usize::try_from(self.sim.rng.below(WORKERS as u64)).unwrap_or(0);
        match self.sim.rng.below(4) {
            0 if self.workers[w].alive => {
                self.sim.trace.record(now, format!("kill worker {w}"));
                self.workers[w].alive = false;
                let back = self
                    .sim
                    .rng
                    .duration(Duration::from_millis(100), Duration::from_secs(5));
                self.sim.schedule_in(back, Event::Restart { w });
            }
            1 => {
                let pause = self.settings.lease
                    + self
                        .sim
                        .rng
                        .duration(Duration::ZERO, self.settings.lease * 2);
                self.sim
                    .trace
                    .record(now, format!("pause worker {w} for {pause:?}"));
                self.workers[w].paused_until = Some(now.plus(pause));
            }
            2 if !self.outage => {
                let d = self
                    .sim
                    .rng
                    .duration(Duration::from_millis(500), Duration::from_secs(8));
                self.sim.trace.record(now, format!("storage outage {d:?}"));
                self.outage = true;
                self.sim.schedule_in(d, Event::OutageEnds);
            }
            _ => {}
        }
    }

    fn feed(&mut self, w: usize, input: WorkerInput) {
        let now = self.sim.now();
        let actions = self.workers[w].machine.handle(input, now);
        for action in actions {
            self.perform(w, action);
        }
        if let Some(wake) = self.workers[w].machine.next_wakeup()
            && self.workers[w].wake_at.is_none_or(|t| wake < t)
        {
            self.workers[w].wake_at = Some(wake);
            let generation = self.workers[w].generation;
            self.sim.schedule(wake, Event::Wake { w, generation });
        }
    }

    fn reply(&mut self, w: usize, input: WorkerInput) {
        let delay = self.latency();
        let generation = self.workers[w].generation;
        self.sim.schedule_in(
            delay,
            Event::Input {
                w,
                generation,
                input,
            },
        );
    }

    #[allow(clippy::too_many_lines)] // one match over the machine's closed set of actions
    fn perform(&mut self, w: usize, action: WorkerAction) {
        let now = self.sim.now();
        self.sim
            .trace
            .record(now, format!("worker {w}: {action:?}"));
        match action {
            WorkerAction::Receive { max, visibility } => {
                if self.outage {
                    self.reply(w, WorkerInput::ReceiveFailed);
                    return;
                }
                let ids: Vec<String> = self
                    .queue
                    .iter()
                    .filter(|(_, m)| !m.deleted && m.visible_at <= now)
                    .take(max as usize)
                    .map(|(id, _)| id.clone())
                    .collect();
                let mut held = Vec::new();
                for id in ids {
                    let receipt = self.next_receipt;
                    self.next_receipt += 1;
                    let m = self.queue.get_mut(&id).expect("listed above");
                    m.dequeue_count += 1;
                    m.receipt = receipt;
                    m.visible_at = now.plus(visibility);
                    self.workers[w]
                        .receipts
                        .insert(id.clone(), (receipt, m.dequeue_count));
                    held.push(Held {
                        id: id.clone(),
                        dequeue_count: m.dequeue_count,
                        visible_at: m.visible_at,
                    });
                }
                // A duplicate delivery: the same message twice in one batch (at-least-once).
                if self.faults_on
                    && let Some(first) = held.first().cloned()
                    && self.sim.rng.chance(0.05)
                {
                    held.push(first);
                }
                self.sim.trace.record(
                    now,
                    format!(
                        "worker {w} received {:?}",
                        held.iter()
                            .map(|h| format!("{}#{}", h.id, h.dequeue_count))
                            .collect::<Vec<_>>()
                    ),
                );
                self.reply(w, WorkerInput::Received(held));
            }
            WorkerAction::Start { id } => self.start_handler(w, &id),
            WorkerAction::Renew { id, visibility } => {
                let input = match self.check_receipt(w, &id) {
                    Err(lost) => WorkerInput::RenewFailed { id, lost },
                    Ok(()) => {
                        let m = self.queue.get_mut(&id).expect("checked");
                        m.visible_at = now.plus(visibility);
                        WorkerInput::Renewed {
                            id,
                            visible_at: m.visible_at,
                        }
                    }
                };
                self.reply(w, input);
            }
            WorkerAction::Complete { id } => {
                // Commit the effect (create-only ledger write), then delete the message.
                let key = self.queue[&id].key.clone();
                if !self.outage {
                    let ledger = ledger_key(&key);
                    if !self.store.contains_key(&ledger) {
                        self.put(&ledger, format!("effect of {id}").into_bytes());
                        *self.ledger_writes.entry(key.clone()).or_default() += 1;
                        NoEffectTwice::check(&mut self.sim, &key, self.ledger_writes[&key]);
                    }
                    if self.check_receipt(w, &id).is_ok() {
                        self.queue.get_mut(&id).expect("exists").deleted = true;
                        self.sim.trace.record(now, format!("deleted {id}"));
                    }
                }
                self.workers[w].receipts.remove(&id);
                self.reply(w, WorkerInput::Settled { id });
            }
            WorkerAction::Retry { id, delay } => {
                if self.check_receipt(w, &id).is_ok() {
                    self.queue.get_mut(&id).expect("checked").visible_at = now.plus(delay);
                }
                self.workers[w].receipts.remove(&id);
                self.reply(w, WorkerInput::Settled { id });
            }
            WorkerAction::Release { id } => {
                if self.check_receipt(w, &id).is_ok() {
                    self.queue.get_mut(&id).expect("checked").visible_at = now;
                }
                self.workers[w].receipts.remove(&id);
                self.reply(w, WorkerInput::Settled { id });
            }
            WorkerAction::Poison { id, reason } => {
                if self.check_receipt(w, &id).is_ok() {
                    self.queue.get_mut(&id).expect("checked").deleted = true;
                    let key = self.queue[&id].key.clone();
                    self.poisoned.insert(key, reason);
                }
                self.workers[w].receipts.remove(&id);
                self.reply(w, WorkerInput::Settled { id });
            }
            WorkerAction::Forget { id } => {
                self.workers[w].receipts.remove(&id);
                self.reply(w, WorkerInput::Settled { id });
            }
            WorkerAction::Interrupt { id } | WorkerAction::Kill { id } => {
                self.reply(
                    w,
                    WorkerInput::Finished {
                        id,
                        outcome: HandlerOutcome::Interrupted,
                    },
                );
            }
            WorkerAction::Exit => self.workers[w].alive = false,
        }
    }

    /// `Err(lost)`: the store is out (`false`) or someone else received it since (`true`).
    fn check_receipt(&self, w: usize, id: &str) -> Result<(), bool> {
        if self.outage {
            return Err(false);
        }
        let Some((receipt, _)) = self.workers[w].receipts.get(id) else {
            return Err(true);
        };
        match self.queue.get(id) {
            Some(m) if !m.deleted && m.receipt == *receipt => Ok(()),
            _ => Err(true),
        }
    }

    fn put(&mut self, key: &str, body: Vec<u8>) {
        // One instant: the read-check-write of save_fenced (its ETag condition) cannot race.
        self.store.insert(key.to_owned(), StoredObject { body });
    }

    fn start_handler(&mut self, w: usize, id: &str) {
        let key = self.queue[id].key.clone();
        if self.outage {
            // The runner cannot read the ledger: it retries the message later.
            self.reply(
                w,
                WorkerInput::Finished {
                    id: id.to_owned(),
                    outcome: HandlerOutcome::RetryLater,
                },
            );
            return;
        }
        if self.store.contains_key(&ledger_key(&key)) {
            self.reply(
                w,
                WorkerInput::Finished {
                    id: id.to_owned(),
                    outcome: HandlerOutcome::AlreadyCommitted,
                },
            );
            return;
        }
        // Resume from the checkpoint, whoever wrote it.
        let done = self
            .store
            .get(&checkpoint_key(&key))
            .and_then(|o| decode_checkpoint(&o.body))
            .and_then(|(_, data)| String::from_utf8(data).ok()?.parse::<u32>().ok())
            .unwrap_or(0);
        let delay = self
            .sim
            .rng
            .duration(Duration::from_millis(200), self.settings.lease);
        let generation = self.workers[w].generation;
        let fence = self.workers[w]
            .receipts
            .get(id)
            .map_or(self.queue[id].dequeue_count, |(_, fence)| *fence);
        self.sim.schedule_in(
            delay,
            Event::HandlerStep {
                w,
                generation,
                id: id.to_owned(),
                step: done + 1,
                fence,
            },
        );
    }

    fn handler_step(&mut self, w: usize, generation: u32, id: &str, step: u32, fence: u32) {
        // The handler runs to its end whatever happened to the lease meanwhile (the runner
        // only stops it on Forget/Kill); its attempt keeps the fence it started with.
        let (key, steps) = (self.queue[id].key.clone(), self.queue[id].steps);
        // The fenced checkpoint write, as the runner's save_fenced does it.
        let cp = checkpoint_key(&key);
        let finished = step >= steps;
        let outcome = if self.outage {
            Some(HandlerOutcome::RetryLater)
        } else if checkpoint_write_allowed(self.store.get(&cp).map(|o| o.body.as_slice()), fence) {
            self.put(&cp, encode_checkpoint(fence, step.to_string().as_bytes()));
            StaleWorkerNeverOverwritesNewerCheckpoint::check(
                &mut self.sim,
                &mut self.checkpoint_fences,
                &cp,
                fence,
            );
            if finished {
                Some(if self.sim.rng.chance(0.85) {
                    HandlerOutcome::Done
                } else if self.sim.rng.chance(0.5) {
                    HandlerOutcome::RetryLater
                } else {
                    HandlerOutcome::Failed
                })
            } else {
                None
            }
        } else {
            // Superseded: a later attempt owns the message; stop without committing.
            self.sim.trace.record(
                self.sim.now(),
                format!("worker {w}: checkpoint of {id} superseded"),
            );
            Some(HandlerOutcome::Failed)
        };
        match outcome {
            Some(outcome) => self.reply(
                w,
                WorkerInput::Finished {
                    id: id.to_owned(),
                    outcome,
                },
            ),
            None => {
                let delay = self
                    .sim
                    .rng
                    .duration(Duration::from_millis(200), self.settings.lease);
                self.sim.schedule_in(
                    delay,
                    Event::HandlerStep {
                        w,
                        generation,
                        id: id.to_owned(),
                        step: step + 1,
                        fence,
                    },
                );
            }
        }
    }

    fn final_checks(&mut self) {
        NoMessageLost::check(&mut self.sim, &self.queue, &self.store, &self.poisoned);
    }
}

/// At the end of the liveness phase every message is deleted and its effect is in the ledger,
/// or it was poisoned with a reason (moved aside, not lost).
pub struct NoMessageLost;

impl NoMessageLost {
    /// The checker's name.
    pub const NAME: &'static str = "NoMessageLost";

    fn check(
        sim: &mut Simulation<Event>,
        queue: &BTreeMap<String, Message>,
        store: &BTreeMap<String, StoredObject>,
        poisoned: &BTreeMap<String, String>,
    ) {
        for (id, m) in queue {
            let effect = store.contains_key(&ledger_key(&m.key));
            let poison = poisoned.contains_key(&m.key);
            if !m.deleted || !(effect || poison) {
                sim.violate(
                    Self::NAME,
                    format!(
                        "message {id} ({}): deleted={}, effect committed={effect}, poisoned={poison}",
                        m.key, m.deleted
                    ),
                );
                return;
            }
        }
    }
}

/// The create-only ledger is written at most once per idempotency key: the effect is applied
/// once, however many times the message was delivered.
pub struct NoEffectTwice;

impl NoEffectTwice {
    /// The checker's name.
    pub const NAME: &'static str = "NoEffectTwice";

    fn check(sim: &mut Simulation<Event>, key: &str, writes: u32) {
        if writes > 1 {
            sim.violate(
                Self::NAME,
                format!("the effect of {key} was committed {writes} times"),
            );
        }
    }
}

/// The fence stored in a checkpoint never goes down: an attempt that lost its lease (a lower
/// dequeue count) never replaces a checkpoint written by a later attempt.
pub struct StaleWorkerNeverOverwritesNewerCheckpoint;

impl StaleWorkerNeverOverwritesNewerCheckpoint {
    /// The checker's name.
    pub const NAME: &'static str = "StaleWorkerNeverOverwritesNewerCheckpoint";

    fn check(
        sim: &mut Simulation<Event>,
        fences: &mut BTreeMap<String, u32>,
        key: &str,
        fence: u32,
    ) {
        let highest = fences.entry(key.to_owned()).or_insert(fence);
        if fence < *highest {
            sim.violate(
                Self::NAME,
                format!("{key}: fence {fence} overwrote a checkpoint of fence {highest}"),
            );
        }
        *highest = (*highest).max(fence);
    }
}
