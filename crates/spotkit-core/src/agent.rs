//! The agent core: when to poll, which events matter, when to drain, kill and approve.
//!
//! # Expected flow
//! 1. Warmup: the machine asks for ready checks (if configured) until one passes; meanwhile it polls.
//! 2. Serving: it asks for a Scheduled Events poll every `poll_interval`, and after failures backs
//!    off exponentially with jitter (capped), reporting a health change once per change of state.
//! 3. An event that names this VM is acted on exactly once, however many documents repeat it:
//!    `Preempt`/`Terminate` (by default) notify the orchestrator and start a drain with a deadline of
//!    `NotBefore - safety_margin` (or `now + default_notice - safety_margin` when `NotBefore` is empty
//!    or the event already Started); `Freeze`/`Reboot`/`Redeploy` run a hook and keep the workload.
//! 4. Draining: when the workload is down, the machine asks for the drain events to be approved; if
//!    the deadline comes first it asks for the workload to be killed, then approves.
//! 5. Done: after approval (retried with backoff until a bound), the machine asks the runner to exit.
//!
//! # Guarantees
//! - Never more than one poll in flight, and polls are at least `poll_interval` apart.
//! - The workload always gets at least `min_drain` between the drain signal and a kill.
//! - An event id is approved at most once per successful approval, and only once the workload is down.
//! - The machine reads no clock: every input carries `now`, and [`AgentMachine::next_wakeup`] says
//!   when it next needs a [`Input::Tick`].

use std::collections::BTreeMap;
use std::time::Duration;

use crate::Timestamp;
use crate::backoff::{Backoff, SplitMix64};
use crate::events::{EventId, EventStatus, EventType, EventsDocument, ScheduledEvent};

/// What the agent does when an event concerns this VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reaction {
    /// Gracefully shut the workload down before the deadline, then approve the event.
    Drain,
    /// Run the per-event hook (if any) and keep the workload running.
    Hook,
    /// Log it and do nothing else.
    Ignore,
}

impl Reaction {
    /// The name used in configuration files.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Reaction::Drain => "drain",
            Reaction::Hook => "hook",
            Reaction::Ignore => "ignore",
        }
    }
}

/// The reaction per event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reactions {
    /// For `Freeze`.
    pub freeze: Reaction,
    /// For `Reboot`.
    pub reboot: Reaction,
    /// For `Redeploy`.
    pub redeploy: Reaction,
    /// For `Preempt`.
    pub preempt: Reaction,
    /// For `Terminate`.
    pub terminate: Reaction,
}

impl Default for Reactions {
    /// Eviction and deletion drain; a seconds-long freeze or a reboot must not kill an hour of work.
    fn default() -> Self {
        Self {
            freeze: Reaction::Hook,
            reboot: Reaction::Hook,
            redeploy: Reaction::Hook,
            preempt: Reaction::Drain,
            terminate: Reaction::Drain,
        }
    }
}

impl Reactions {
    /// The reaction to `t`.
    #[must_use]
    pub const fn for_type(&self, t: EventType) -> Reaction {
        match t {
            EventType::Freeze => self.freeze,
            EventType::Reboot => self.reboot,
            EventType::Redeploy => self.redeploy,
            EventType::Preempt => self.preempt,
            EventType::Terminate => self.terminate,
        }
    }

    /// Sets the reaction to `t`.
    pub fn set(&mut self, t: EventType, r: Reaction) {
        match t {
            EventType::Freeze => self.freeze = r,
            EventType::Reboot => self.reboot = r,
            EventType::Redeploy => self.redeploy = r,
            EventType::Preempt => self.preempt = r,
            EventType::Terminate => self.terminate = r,
        }
    }
}

/// Everything the agent core needs to know up front.
#[derive(Clone, Debug)]
pub struct AgentSettings {
    /// This VM's name as it appears in events' `Resources` (IMDS `compute.name`).
    pub vm_name: String,
    /// Time between successful polls.
    pub poll_interval: Duration,
    /// Spacing of polls after failures.
    pub poll_backoff: Backoff,
    /// What to do per event type.
    pub reactions: Reactions,
    /// Assumed notice when `NotBefore` is empty (event already Started): Azure's minimum for Preempt.
    pub default_notice: Duration,
    /// Taken off the platform's deadline so the kill, the approval and the flush fit before it.
    pub safety_margin: Duration,
    /// The least time the workload gets between the drain signal and a kill, even when the notice has
    /// already run out (late observation, clock skew).
    pub min_drain: Duration,
    /// How long the workload gets when the agent itself is asked to stop (SIGTERM from systemd).
    pub stop_grace: Duration,
    /// Whether a ready check gates readiness; without one the agent is ready at once.
    pub ready_check: bool,
    /// Time between ready checks during warmup.
    pub ready_check_interval: Duration,
    /// Whether to approve drained events (`StartRequests`) so Azure proceeds without waiting.
    pub approve_events: bool,
    /// How long after the drain deadline approval attempts continue before the agent gives up.
    pub approval_retry_window: Duration,
    /// Report health to the orchestrator this often (`None`: never). A change of health is
    /// reported at once.
    pub heartbeat_interval: Option<Duration>,
}

impl AgentSettings {
    /// Defaults for a VM called `vm_name`: 1 s polling, 5 s safety margin, 30 s default notice.
    #[must_use]
    pub fn new(vm_name: impl Into<String>) -> Self {
        Self {
            vm_name: vm_name.into(),
            poll_interval: Duration::from_secs(1),
            poll_backoff: Backoff {
                base: Duration::from_millis(500),
                max: Duration::from_secs(4),
            },
            reactions: Reactions::default(),
            default_notice: Duration::from_secs(30),
            safety_margin: Duration::from_secs(5),
            min_drain: Duration::from_secs(1),
            stop_grace: Duration::from_secs(20),
            ready_check: false,
            ready_check_interval: Duration::from_secs(1),
            approve_events: true,
            approval_retry_window: Duration::from_secs(10),
            heartbeat_interval: None,
        }
    }
}

/// Why a poll (or an approval) failed, as far as the core cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollFailure {
    /// HTTP 429: too many requests.
    Throttled,
    /// HTTP 410: IMDS is updating; "retry after some time for a max of 70 seconds".
    Gone,
    /// HTTP 404: normal on a VM whose IMDS is still starting or being updated.
    NotFound,
    /// HTTP 5xx.
    ServerError(u16),
    /// Any other unexpected status.
    UnexpectedStatus(u16),
    /// No answer within the per-request timeout.
    Timeout,
    /// Connection refused or reset.
    Unreachable,
    /// An answer that is not a Scheduled Events document.
    Malformed,
}

/// Whether polling currently works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollHealth {
    /// The last poll succeeded.
    Healthy,
    /// The last `consecutive` polls failed, the last one this way.
    Failing {
        /// The latest failure.
        failure: PollFailure,
        /// How many polls in a row failed.
        consecutive: u32,
    },
}

/// What the agent tells the orchestrator the moment it sees an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// This VM.
    pub vm_name: String,
    /// The event.
    pub event_id: EventId,
    /// Its type.
    pub event_type: EventType,
    /// `NotBefore`, if IMDS gave one.
    pub not_before: Option<Timestamp>,
    /// When the agent saw the event.
    pub observed_at: Timestamp,
    /// When the agent will have killed the workload at the latest (drains only).
    pub drain_deadline: Option<Timestamp>,
}

/// Why the workload is being drained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DrainReason {
    /// A scheduled event that concerns this VM.
    Event(ScheduledEvent),
    /// The agent itself was asked to stop (SIGTERM/SIGINT to the agent).
    AgentStop,
}

/// Why the agent is finishing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// The supervised workload exited by itself; the agent exits with its status.
    WorkloadExited,
    /// The workload was drained for these events and they were approved (or approval is off).
    Drained {
        /// The events that were drained for.
        events: Vec<EventId>,
        /// Whether approval reached IMDS.
        approved: bool,
    },
    /// The agent was asked to stop and the workload is down.
    Stopped,
}

/// An event the core chose not to act on, reported once per event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IgnoreReason {
    /// Its `Resources` do not name this VM.
    OtherVm,
    /// The configured reaction for its type is `ignore`.
    Policy,
}

/// Something the runner must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// GET the Scheduled Events document. `first` until one poll has succeeded: IMDS documents that
    /// the first call after boot may take up to two minutes, so the runner allows a longer timeout.
    Poll {
        /// No poll has succeeded yet.
        first: bool,
    },
    /// Run the warmup ready check and report [`Input::ReadyCheck`].
    RunReadyCheck,
    /// The agent became ready (warmup gate passed).
    BecameReady,
    /// Polling health changed (reported once per change, not once per poll).
    HealthChanged(PollHealth),
    /// A new document incarnation was seen.
    IncarnationChanged {
        /// The previous incarnation, if any document was seen before.
        from: Option<u64>,
        /// The new one.
        to: u64,
    },
    /// An event concerning this VM was seen for the first time.
    EventSeen(ScheduledEvent),
    /// An event will not be acted on.
    EventIgnored {
        /// The event.
        event: ScheduledEvent,
        /// Why.
        reason: IgnoreReason,
    },
    /// POST a notice to the orchestrator (fire and forget).
    Notify(Notice),
    /// POST a heartbeat to the orchestrator (fire and forget): `healthy` is the ready gate
    /// passed and no drain begun.
    Heartbeat {
        /// The verdict.
        healthy: bool,
    },
    /// Run the hook for a non-draining event; the workload keeps running.
    RunHook(ScheduledEvent),
    /// Tell the workload to stop (SIGTERM, drain hook, HTTP callback) and report
    /// [`Input::WorkloadDown`] when it is down.
    StartDrain {
        /// Why.
        reason: DrainReason,
        /// When the workload will be killed if it is not down.
        deadline: Timestamp,
    },
    /// The drain deadline moved earlier (a second drain event with less notice).
    DeadlineMoved(Timestamp),
    /// Kill the workload now (SIGKILL); it missed its deadline.
    KillWorkload,
    /// POST `StartRequests` for these events and report [`Input::ApprovalSent`].
    Approve(Vec<EventId>),
    /// The drain ended; for metrics.
    DrainFinished {
        /// From drain start to workload down.
        elapsed: Duration,
        /// Whether the workload had to be killed.
        killed: bool,
    },
    /// Stop the agent.
    Exit(ExitReason),
}

/// What happened, as the runner reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Nothing happened; time passed (the runner woke at [`AgentMachine::next_wakeup`]).
    Tick,
    /// A poll returned this document.
    EventsPolled(EventsDocument),
    /// A poll failed.
    PollFailed(PollFailure),
    /// The ready check finished.
    ReadyCheck {
        /// Whether it passed.
        passed: bool,
    },
    /// The workload (supervised process, drain hook, callback) is down, or the supervised process
    /// exited by itself.
    WorkloadDown,
    /// An approval request finished.
    ApprovalSent(Result<(), PollFailure>),
    /// The agent was asked to stop (SIGTERM/SIGINT).
    StopRequested,
}

#[derive(Clone, Debug)]
struct Poller {
    next_at: Timestamp,
    in_flight: bool,
    consecutive_failures: u32,
    succeeded_once: bool,
    health: PollHealth,
}

#[derive(Clone, Debug)]
struct Warmup {
    ready: bool,
    next_check_at: Timestamp,
    in_flight: bool,
}

#[derive(Clone, Debug)]
enum Phase {
    Running,
    Draining {
        events: Vec<EventId>,
        started_at: Timestamp,
        deadline: Timestamp,
        kill_sent: bool,
    },
    Approving {
        events: Vec<EventId>,
        in_flight: bool,
        attempts: u32,
        next_attempt_at: Timestamp,
        give_up_at: Timestamp,
    },
    Done,
}

/// The agent's decision core. See the module docs for the flow and guarantees.
#[derive(Clone, Debug)]
pub struct AgentMachine {
    settings: AgentSettings,
    poller: Poller,
    warmup: Warmup,
    phase: Phase,
    incarnation: Option<u64>,
    /// Event ids already acted on (or deliberately ignored), with when they were first seen.
    seen: BTreeMap<EventId, Timestamp>,
    rng: SplitMix64,
    /// When the next heartbeat is due, and the health it last reported.
    heartbeat: (Timestamp, Option<bool>),
}

/// How long an event id is remembered after it left the document (bounds memory; events never
/// come back once gone).
const FORGET_AFTER: Duration = Duration::from_secs(3600);

impl AgentMachine {
    /// A machine starting at `now`. `seed` fixes the backoff jitter.
    #[must_use]
    pub fn new(settings: AgentSettings, now: Timestamp, seed: u64) -> Self {
        let ready = !settings.ready_check;
        Self {
            poller: Poller {
                next_at: now,
                in_flight: false,
                consecutive_failures: 0,
                succeeded_once: false,
                health: PollHealth::Healthy,
            },
            warmup: Warmup {
                ready,
                next_check_at: now,
                in_flight: false,
            },
            phase: Phase::Running,
            incarnation: None,
            seen: BTreeMap::new(),
            rng: SplitMix64::new(seed),
            heartbeat: (now, None),
            settings,
        }
    }

    /// The settings in force.
    #[must_use]
    pub fn settings(&self) -> &AgentSettings {
        &self.settings
    }

    /// Whether the warmup gate passed and no drain has begun (what `/readyz` reports).
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.warmup.ready && matches!(self.phase, Phase::Running)
    }

    /// Whether a drain or approval is under way or finished.
    #[must_use]
    pub fn is_shutting_down(&self) -> bool {
        !matches!(self.phase, Phase::Running)
    }

    /// The last document incarnation seen.
    #[must_use]
    pub fn incarnation(&self) -> Option<u64> {
        self.incarnation
    }

    /// When the runner must deliver the next [`Input::Tick`] at the latest; `None` once done.
    #[must_use]
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        if matches!(self.phase, Phase::Done) {
            return None;
        }
        let mut wake: Option<Timestamp> = None;
        let mut consider = |t: Timestamp| {
            wake = Some(wake.map_or(t, |w| w.min(t)));
        };
        if !self.poller.in_flight {
            consider(self.poller.next_at);
        }
        if self.settings.heartbeat_interval.is_some() {
            consider(self.heartbeat.0);
        }
        if !self.warmup.ready && !self.warmup.in_flight && matches!(self.phase, Phase::Running) {
            consider(self.warmup.next_check_at);
        }
        match &self.phase {
            Phase::Draining {
                deadline,
                kill_sent: false,
                ..
            } => consider(*deadline),
            Phase::Approving {
                in_flight: false,
                next_attempt_at,
                ..
            } => consider(*next_attempt_at),
            _ => {}
        }
        wake
    }

    /// Feeds one input at time `now` and returns what to do, in order.
    #[must_use]
    pub fn handle(&mut self, input: Input, now: Timestamp) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(self.phase, Phase::Done) {
            return out;
        }
        match input {
            Input::Tick => {}
            Input::EventsPolled(doc) => self.on_document(doc, now, &mut out),
            Input::PollFailed(failure) => self.on_poll_failed(failure, now, &mut out),
            Input::ReadyCheck { passed } => {
                self.warmup.in_flight = false;
                if passed && !self.warmup.ready {
                    self.warmup.ready = true;
                    if matches!(self.phase, Phase::Running) {
                        out.push(Action::BecameReady);
                    }
                } else if !passed {
                    self.warmup.next_check_at = now.plus(self.settings.ready_check_interval);
                }
            }
            Input::WorkloadDown => self.on_workload_down(now, &mut out),
            Input::ApprovalSent(result) => self.on_approval(result, now, &mut out),
            Input::StopRequested => self.on_stop_requested(now, &mut out),
        }
        self.on_time(now, &mut out);
        out
    }

    fn on_time(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        if matches!(self.phase, Phase::Done) {
            return;
        }
        if let Some(interval) = self.settings.heartbeat_interval {
            let healthy = self.is_ready();
            let (due, last) = self.heartbeat;
            if now >= due || last != Some(healthy) {
                out.push(Action::Heartbeat { healthy });
                self.heartbeat = (
                    now.plus(interval.max(Duration::from_millis(100))),
                    Some(healthy),
                );
            }
        }
        if let Phase::Draining {
            deadline,
            kill_sent,
            ..
        } = &mut self.phase
            && !*kill_sent
            && now >= *deadline
        {
            *kill_sent = true;
            out.push(Action::KillWorkload);
        }
        if let Phase::Approving {
            events,
            in_flight,
            next_attempt_at,
            ..
        } = &mut self.phase
            && !*in_flight
            && now >= *next_attempt_at
        {
            *in_flight = true;
            out.push(Action::Approve(events.clone()));
        }
        if !self.warmup.ready
            && !self.warmup.in_flight
            && matches!(self.phase, Phase::Running)
            && now >= self.warmup.next_check_at
        {
            self.warmup.in_flight = true;
            out.push(Action::RunReadyCheck);
        }
        if !self.poller.in_flight && now >= self.poller.next_at {
            self.poller.in_flight = true;
            out.push(Action::Poll {
                first: !self.poller.succeeded_once,
            });
        }
    }

    fn on_poll_failed(&mut self, failure: PollFailure, now: Timestamp, out: &mut Vec<Action>) {
        self.poller.in_flight = false;
        self.poller.consecutive_failures = self.poller.consecutive_failures.saturating_add(1);
        let delay = self
            .settings
            .poll_backoff
            .delay(self.poller.consecutive_failures, self.rng.next_u64())
            .max(self.settings.poll_interval);
        self.poller.next_at = now.plus(delay);
        let kind_changed = match self.poller.health {
            PollHealth::Healthy => true,
            PollHealth::Failing { failure: prev, .. } => prev != failure,
        };
        self.poller.health = PollHealth::Failing {
            failure,
            consecutive: self.poller.consecutive_failures,
        };
        if kind_changed {
            out.push(Action::HealthChanged(self.poller.health));
        }
    }

    fn on_document(&mut self, doc: EventsDocument, now: Timestamp, out: &mut Vec<Action>) {
        self.poller.in_flight = false;
        self.poller.succeeded_once = true;
        self.poller.consecutive_failures = 0;
        self.poller.next_at = now.plus(self.settings.poll_interval);
        if self.poller.health != PollHealth::Healthy {
            self.poller.health = PollHealth::Healthy;
            out.push(Action::HealthChanged(PollHealth::Healthy));
        }
        if self.incarnation != Some(doc.incarnation) {
            out.push(Action::IncarnationChanged {
                from: self.incarnation,
                to: doc.incarnation,
            });
            self.incarnation = Some(doc.incarnation);
        }
        // Forget ids that left the document long ago, so memory stays bounded on a VM that lives
        // for months of Freeze events.
        let present: Vec<&EventId> = doc.events.iter().map(|e| &e.id).collect();
        self.seen.retain(|id, first_seen| {
            present.contains(&id) || now.since(*first_seen) < FORGET_AFTER
        });

        for event in doc.events {
            if self.seen.contains_key(&event.id) {
                continue;
            }
            self.seen.insert(event.id.clone(), now);
            if !event.concerns(&self.settings.vm_name) {
                out.push(Action::EventIgnored {
                    event,
                    reason: IgnoreReason::OtherVm,
                });
                continue;
            }
            let reaction = self.settings.reactions.for_type(event.event_type);
            if reaction == Reaction::Ignore {
                out.push(Action::EventIgnored {
                    event,
                    reason: IgnoreReason::Policy,
                });
                continue;
            }
            out.push(Action::EventSeen(event.clone()));
            match reaction {
                Reaction::Hook => {
                    out.push(Action::Notify(self.notice(&event, now, None)));
                    out.push(Action::RunHook(event));
                }
                Reaction::Drain => self.begin_event_drain(event, now, out),
                Reaction::Ignore => {}
            }
        }
    }

    fn drain_deadline(&self, event: &ScheduledEvent, now: Timestamp) -> Timestamp {
        let platform_deadline = match (event.status, event.not_before) {
            (EventStatus::Scheduled, Some(not_before)) => not_before,
            // Started, or NotBefore empty: the platform may act any moment; assume the documented
            // minimum notice counted from when we saw it.
            _ => now.plus(self.settings.default_notice),
        };
        platform_deadline
            .minus(self.settings.safety_margin)
            .max(now.plus(self.settings.min_drain))
    }

    fn begin_event_drain(&mut self, event: ScheduledEvent, now: Timestamp, out: &mut Vec<Action>) {
        let deadline = self.drain_deadline(&event, now);
        out.push(Action::Notify(self.notice(&event, now, Some(deadline))));
        match &mut self.phase {
            Phase::Running => {
                self.phase = Phase::Draining {
                    events: vec![event.id.clone()],
                    started_at: now,
                    deadline,
                    kill_sent: false,
                };
                out.push(Action::StartDrain {
                    reason: DrainReason::Event(event),
                    deadline,
                });
            }
            Phase::Draining {
                events,
                deadline: current,
                kill_sent,
                ..
            } => {
                events.push(event.id);
                if deadline < *current && !*kill_sent {
                    *current = deadline;
                    out.push(Action::DeadlineMoved(deadline));
                }
            }
            Phase::Approving {
                events,
                next_attempt_at,
                in_flight,
                ..
            } => {
                // The workload is already down: approve the newcomer with the next attempt.
                events.push(event.id);
                if !*in_flight {
                    *next_attempt_at = now;
                }
            }
            Phase::Done => {}
        }
    }

    fn notice(
        &self,
        event: &ScheduledEvent,
        now: Timestamp,
        deadline: Option<Timestamp>,
    ) -> Notice {
        Notice {
            vm_name: self.settings.vm_name.clone(),
            event_id: event.id.clone(),
            event_type: event.event_type,
            not_before: event.not_before,
            observed_at: now,
            drain_deadline: deadline,
        }
    }

    fn on_stop_requested(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        match &mut self.phase {
            Phase::Running => {
                let deadline = now.plus(self.settings.stop_grace);
                self.phase = Phase::Draining {
                    events: Vec::new(),
                    started_at: now,
                    deadline,
                    kill_sent: false,
                };
                out.push(Action::StartDrain {
                    reason: DrainReason::AgentStop,
                    deadline,
                });
            }
            // Asked twice: the operator insists, so stop waiting for the workload.
            Phase::Draining { kill_sent, .. } if !*kill_sent => {
                *kill_sent = true;
                out.push(Action::KillWorkload);
            }
            Phase::Draining { .. } | Phase::Approving { .. } | Phase::Done => {}
        }
    }

    fn on_workload_down(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        match &mut self.phase {
            Phase::Running => {
                self.phase = Phase::Done;
                out.push(Action::Exit(ExitReason::WorkloadExited));
            }
            Phase::Draining {
                events,
                started_at,
                deadline,
                kill_sent,
            } => {
                out.push(Action::DrainFinished {
                    elapsed: now.since(*started_at),
                    killed: *kill_sent,
                });
                let events = std::mem::take(events);
                if events.is_empty() {
                    self.phase = Phase::Done;
                    out.push(Action::Exit(ExitReason::Stopped));
                } else if !self.settings.approve_events {
                    self.phase = Phase::Done;
                    out.push(Action::Exit(ExitReason::Drained {
                        events,
                        approved: false,
                    }));
                } else {
                    let give_up_at = (*deadline)
                        .max(now)
                        .plus(self.settings.safety_margin)
                        .plus(self.settings.approval_retry_window);
                    self.phase = Phase::Approving {
                        events,
                        in_flight: false,
                        attempts: 0,
                        next_attempt_at: now,
                        give_up_at,
                    };
                }
            }
            Phase::Approving { .. } | Phase::Done => {}
        }
    }

    fn on_approval(
        &mut self,
        result: Result<(), PollFailure>,
        now: Timestamp,
        out: &mut Vec<Action>,
    ) {
        let Phase::Approving {
            events,
            in_flight,
            attempts,
            next_attempt_at,
            give_up_at,
        } = &mut self.phase
        else {
            return;
        };
        *in_flight = false;
        *attempts = attempts.saturating_add(1);
        match result {
            Ok(()) => {
                let events = std::mem::take(events);
                self.phase = Phase::Done;
                out.push(Action::Exit(ExitReason::Drained {
                    events,
                    approved: true,
                }));
            }
            Err(_) if now >= *give_up_at => {
                let events = std::mem::take(events);
                self.phase = Phase::Done;
                out.push(Action::Exit(ExitReason::Drained {
                    events,
                    approved: false,
                }));
            }
            Err(_) => {
                // Short, fixed-base backoff: the VM is going away; what matters is getting one
                // approval through, without exceeding IMDS's 5 requests/s.
                let delay = Backoff {
                    base: Duration::from_millis(250),
                    max: Duration::from_secs(2),
                }
                .delay(*attempts, self.rng.next_u64());
                *next_attempt_at = now.plus(delay);
            }
        }
    }
}

#[cfg(test)]
mod tests;
