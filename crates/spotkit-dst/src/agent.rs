//! The agent world: the real `AgentMachine` polling the real `ImdsModel`, whose rendered JSON
//! goes through the real Scheduled Events parser (`spotkit_azure::imds::parse_document`);
//! approvals are the real `StartRequests` body (`start_requests_body`) posted to the model, and
//! HTTP statuses map to poll failures through the real `EventSourceError::kind`.
//!
//! Faults: IMDS answers 410, 429, 500 or 404, garbage, truncated documents and slow answers
//! (past the agent's 2 s timeout, or within it), failed approvals, a clock skew of up to ±2 s
//! between the agent and IMDS, and a workload that drains after a random time or never (so
//! the agent must kill it). One `Preempt` is scheduled with 30 s, 20 s, 5 s or no notice,
//! sometimes after a `Freeze` the agent must not drain for. The run ends when the event has
//! started (the VM is gone) or the agent exited.

use std::time::Duration;

use spotkit_azure::imds::parse_document;
use spotkit_azure::imds::start_requests_body;
use spotkit_cloud::EventSourceError;
use spotkit_core::Timestamp;
use spotkit_core::agent::{Action, AgentMachine, AgentSettings, Input, PollFailure};
use spotkit_sim::imds::{
    EventType, Fault, FaultKind, ImdsConfig, ImdsModel, ScheduleRequest, ScheduledEventsReply,
};

use crate::harness::{Outcome, Simulation, World};

/// A Preempt with at least this much notice must be approved before its `NotBefore`.
pub const MIN_NOTICE: Duration = Duration::from_secs(20);

/// Failed IMDS answers during the notice up to which the deadline must still be met.
pub const MAX_FAULTS_FOR_DEADLINE: u32 = 3;

const VM: &str = "dst-vm";
/// The agent runner's per-poll timeouts (spotkit-agent's defaults).
const POLL_TIMEOUT: Duration = Duration::from_secs(2);
const FIRST_POLL_TIMEOUT: Duration = Duration::from_secs(130);

#[derive(Clone, Debug)]
enum Event {
    /// The agent's timer (its `next_wakeup`).
    Wake,
    /// A poll's answer.
    PollDone(Input),
    /// A slow IMDS answer: render the document now.
    PollLate,
    /// An approval's answer.
    ApprovalDone(Result<(), PollFailure>),
    /// The workload finished draining (or died of the kill).
    WorkloadDown,
    /// Schedule the Freeze.
    Freeze,
    /// Schedule the Preempt.
    Preempt,
    /// Queue an IMDS fault.
    Chaos,
    /// Stop: the VM is gone.
    End,
}

#[derive(Clone, Debug)]
struct Config {
    skew_ms: i64,
    notice: Duration,
    preempt_after: Duration,
    freeze: bool,
    /// `None`: the workload never stops by itself.
    drain_time: Option<Duration>,
    fault_every: Duration,
    approval_failure_rate: f64,
}

struct AgentWorld {
    sim: Simulation<Event>,
    config: Config,
    imds: ImdsModel,
    agent: AgentMachine,
    wake_at: Option<Timestamp>,
    exited: bool,
    poll_pending_first: bool,
    drain_started: Option<Timestamp>,
    workload_down: Option<Timestamp>,
    killed_at: Option<Timestamp>,
    preempt: Option<(String, Option<Timestamp>)>,
    /// Faulted IMDS answers (and failed approvals) while the Preempt was pending.
    faults_during_notice: u32,
    ended: bool,
}

/// Runs one seed; returns the outcome and, when `keep_trace`, every trace line.
#[must_use]
pub fn run(seed: u64, keep_trace: bool) -> (Outcome, Vec<String>) {
    let mut sim: Simulation<Event> = Simulation::new(seed, keep_trace);
    let rng = &mut sim.rng;
    let skew = i64::try_from(rng.between(0, 4000)).unwrap_or(0) - 2000;
    let config = Config {
        skew_ms: skew,
        notice: *rng.pick(&[
            Duration::from_secs(30),
            Duration::from_secs(30),
            Duration::from_secs(20),
            Duration::from_secs(5),
            Duration::ZERO,
        ]),
        preempt_after: rng.duration(Duration::from_secs(3), Duration::from_secs(60)),
        freeze: rng.chance(0.3),
        drain_time: if rng.chance(0.2) {
            None
        } else {
            Some(rng.duration(Duration::ZERO, Duration::from_secs(40)))
        },
        fault_every: rng.duration(Duration::from_secs(2), Duration::from_secs(30)),
        approval_failure_rate: *rng.pick(&[0.0, 0.1, 0.3]),
    };
    sim.trace.record(sim.now(), format!("config {config:?}"));
    let mut imds_config = ImdsConfig::spot_vm(VM);
    imds_config.seed = seed;
    let mut settings = AgentSettings::new(VM);
    settings.min_drain = Duration::from_secs(1);
    let agent_now = skewed(sim.now(), config.skew_ms);
    let mut world = AgentWorld {
        agent: AgentMachine::new(settings, agent_now, seed),
        imds: ImdsModel::new(imds_config),
        wake_at: None,
        exited: false,
        poll_pending_first: false,
        drain_started: None,
        workload_down: None,
        killed_at: None,
        preempt: None,
        faults_during_notice: 0,
        ended: false,
        config,
        sim,
    };
    world.start();
    let end = world.sim.now().plus(Duration::from_secs(600));
    while !world.ended
        && !world.exited
        && let Some(event) = world.sim.next_event(end)
    {
        world.step(event);
        if world.sim.failed() {
            break;
        }
    }
    world.final_checks();
    let all = world
        .sim
        .trace
        .all()
        .map(<[String]>::to_vec)
        .unwrap_or_default();
    (world.sim.finish(World::Agent), all)
}

fn skewed(t: Timestamp, skew_ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(t.unix_millis() + skew_ms)
}

fn status_failure(status: u16) -> PollFailure {
    EventSourceError::Status {
        url: "http://169.254.169.254/metadata/scheduledevents".to_owned(),
        status,
        body: String::new(),
    }
    .kind()
}

impl AgentWorld {
    fn agent_now(&self) -> Timestamp {
        skewed(self.sim.now(), self.config.skew_ms)
    }

    fn start(&mut self) {
        let actions = self.agent.handle(Input::Tick, self.agent_now());
        self.perform(actions);
        if self.config.freeze {
            let at = self.config.preempt_after / 2;
            self.sim.schedule_in(at, Event::Freeze);
        }
        self.sim
            .schedule_in(self.config.preempt_after, Event::Preempt);
        self.sim.schedule_in(self.config.fault_every, Event::Chaos);
    }

    fn step(&mut self, event: Event) {
        let now = self.sim.now();
        match event {
            Event::Wake => {
                self.wake_at = None;
                self.feed(Input::Tick);
            }
            Event::PollDone(input) => {
                self.sim
                    .trace
                    .record(now, format!("poll -> {}", brief(&input)));
                self.feed(input);
            }
            Event::PollLate => {
                let body = self.imds.document_json(now);
                let input = self.parse(&body);
                self.sim
                    .trace
                    .record(now, format!("slow poll -> {}", brief(&input)));
                self.feed(input);
            }
            Event::ApprovalDone(result) => {
                self.sim
                    .trace
                    .record(now, format!("approval -> {result:?}"));
                self.feed(Input::ApprovalSent(result));
            }
            Event::WorkloadDown => {
                if self.workload_down.is_none() {
                    self.workload_down = Some(now);
                    self.sim.trace.record(now, "workload down");
                    self.feed(Input::WorkloadDown);
                }
            }
            Event::Freeze => {
                let id = self.imds.schedule(
                    ScheduleRequest::new(EventType::Freeze).with_notice(Duration::from_secs(15)),
                    now,
                );
                self.sim.trace.record(now, format!("freeze {id:?}"));
            }
            Event::Preempt => {
                let request = ScheduleRequest::preempt(self.config.notice);
                let not_before = request.not_before(now);
                let id = self.imds.schedule(request, now);
                self.sim
                    .trace
                    .record(now, format!("preempt {id:?} not_before={not_before:?}"));
                self.preempt = Some((id.as_str().to_owned(), not_before));
                // The VM is gone once the eviction happens: at NotBefore, or at once.
                let gone = not_before.unwrap_or(now).plus(Duration::from_secs(2));
                self.sim.schedule(gone, Event::End);
            }
            Event::Chaos => {
                let kind = match self.sim.rng.below(7) {
                    0 => FaultKind::Status(410),
                    1 => FaultKind::Status(429),
                    2 => FaultKind::Status(500),
                    3 => FaultKind::Status(404),
                    4 => FaultKind::Garbage,
                    5 => FaultKind::Truncated,
                    _ => FaultKind::Slow(
                        self.sim
                            .rng
                            .duration(Duration::from_millis(200), Duration::from_secs(4)),
                    ),
                };
                let count = u32::try_from(self.sim.rng.between(1, 2)).unwrap_or(1);
                self.sim
                    .trace
                    .record(now, format!("fault {kind:?} x{count}"));
                self.imds.push_fault(Fault::times(kind, count));
                let gap = self
                    .sim
                    .rng
                    .duration(self.config.fault_every, self.config.fault_every * 2);
                self.sim.schedule_in(gap, Event::Chaos);
            }
            Event::End => {
                self.ended = true;
                self.sim.trace.record(now, "the VM is gone");
            }
        }
    }

    fn feed(&mut self, input: Input) {
        let actions = self.agent.handle(input, self.agent_now());
        self.perform(actions);
    }

    fn parse(&self, body: &str) -> Input {
        match parse_document(body.as_bytes()) {
            Ok(parsed) => Input::EventsPolled(parsed.document),
            Err(_) => Input::PollFailed(PollFailure::Malformed),
        }
    }

    fn perform(&mut self, actions: Vec<Action>) {
        let now = self.sim.now();
        for action in actions {
            match action {
                Action::Poll { first } => self.poll(first),
                Action::StartDrain { deadline, .. } => {
                    self.sim.trace.record(
                        now,
                        format!("start drain, deadline {}", deadline.unix_millis()),
                    );
                    self.drain_started = Some(now);
                    if let Some(d) = self.config.drain_time {
                        self.sim.schedule_in(d, Event::WorkloadDown);
                    }
                }
                Action::KillWorkload => {
                    self.sim.trace.record(now, "kill workload");
                    self.killed_at = Some(now);
                    KillNotBeforeMinDrain::check(
                        &mut self.sim,
                        self.drain_started,
                        self.agent.settings().min_drain,
                        self.config.skew_ms,
                    );
                    let delay = self
                        .sim
                        .rng
                        .duration(Duration::from_millis(1), Duration::from_millis(200));
                    self.sim.schedule_in(delay, Event::WorkloadDown);
                }
                Action::Approve(ids) => {
                    self.sim.trace.record(now, format!("approve {ids:?}"));
                    NeverApprovesBeforeWorkloadDown::check(&mut self.sim, self.workload_down);
                    let result = if self.sim.rng.chance(self.config.approval_failure_rate) {
                        self.faults_during_notice += 1;
                        Err(status_failure(500))
                    } else {
                        let body = start_requests_body(&ids);
                        self.imds
                            .post_scheduled_events(body.as_bytes(), now)
                            .map(|_| ())
                            .map_err(|_| status_failure(400))
                    };
                    let delay = self
                        .sim
                        .rng
                        .duration(Duration::from_millis(1), Duration::from_millis(50));
                    self.sim.schedule_in(delay, Event::ApprovalDone(result));
                }
                Action::Exit(reason) => {
                    self.sim.trace.record(now, format!("exit {reason:?}"));
                    self.exited = true;
                }
                other => self.sim.trace.record(now, format!("{other:?}")),
            }
        }
        if let Some(wake) = self.agent.next_wakeup() {
            let true_wake = skewed(wake, -self.config.skew_ms);
            if self.wake_at.is_none_or(|t| true_wake < t) {
                self.wake_at = Some(true_wake);
                self.sim.schedule(true_wake, Event::Wake);
            }
        }
    }

    fn poll(&mut self, first: bool) {
        let now = self.sim.now();
        self.poll_pending_first = first;
        let timeout = if first {
            FIRST_POLL_TIMEOUT
        } else {
            POLL_TIMEOUT
        };
        let latency = self
            .sim
            .rng
            .duration(Duration::from_millis(1), Duration::from_millis(30));
        let reply = self.imds.get_scheduled_events(now);
        if self.preempt.is_some() && !matches!(reply, ScheduledEventsReply::Document(_)) {
            self.faults_during_notice += 1;
        }
        match reply {
            ScheduledEventsReply::Document(body) | ScheduledEventsReply::Truncated(body) => {
                let input = self.parse(&body);
                self.sim.schedule_in(latency, Event::PollDone(input));
            }
            ScheduledEventsReply::Garbage(body) => {
                let input = self.parse(&body);
                self.sim.schedule_in(latency, Event::PollDone(input));
            }
            ScheduledEventsReply::Status { status, .. } => {
                let input = Input::PollFailed(status_failure(status));
                self.sim.schedule_in(latency, Event::PollDone(input));
            }
            ScheduledEventsReply::Delayed(delay) => {
                if delay > timeout {
                    self.sim.schedule_in(
                        timeout,
                        Event::PollDone(Input::PollFailed(PollFailure::Timeout)),
                    );
                } else {
                    self.sim.schedule_in(delay, Event::PollLate);
                }
            }
        }
    }

    fn final_checks(&mut self) {
        PreemptApprovedBeforeNotBefore::check(
            &mut self.sim,
            &self.imds,
            self.preempt.as_ref(),
            self.config.notice,
            self.faults_during_notice,
        );
    }
}

fn brief(input: &Input) -> String {
    match input {
        Input::EventsPolled(doc) => format!(
            "incarnation {} events {:?}",
            doc.incarnation,
            doc.events
                .iter()
                .map(|e| format!("{}:{:?}:{:?}", e.id.as_str(), e.event_type, e.status))
                .collect::<Vec<_>>()
        ),
        other => format!("{other:?}"),
    }
}

/// A Preempt whose notice was at least [`MIN_NOTICE`] is approved (accepted by IMDS) before
/// its `NotBefore`: the workload drained in time, or was killed at the deadline. Checked when
/// at most [`MAX_FAULTS_FOR_DEADLINE`] IMDS answers or approvals failed during the notice:
/// an IMDS that keeps failing can hide the event for as long as it likes.
pub struct PreemptApprovedBeforeNotBefore;

impl PreemptApprovedBeforeNotBefore {
    /// The checker's name.
    pub const NAME: &'static str = "PreemptApprovedBeforeNotBefore";

    fn check(
        sim: &mut Simulation<Event>,
        imds: &ImdsModel,
        preempt: Option<&(String, Option<Timestamp>)>,
        notice: Duration,
        faults: u32,
    ) {
        let Some((id, Some(not_before))) = preempt else {
            return;
        };
        if notice < MIN_NOTICE || faults > MAX_FAULTS_FOR_DEADLINE {
            return;
        }
        let approved = imds
            .approvals()
            .iter()
            .filter(|a| a.accepted && a.event_ids.iter().any(|e| e.eq_ignore_ascii_case(id)))
            .map(|a| a.at)
            .min();
        match approved {
            Some(at) if at < *not_before => {}
            other => sim.violate(
                Self::NAME,
                format!(
                    "Preempt {id} with {notice:?} notice: approved at {:?}, NotBefore {} ms",
                    other.map(Timestamp::unix_millis),
                    not_before.unix_millis()
                ),
            ),
        }
    }
}

/// The agent never approves an event while the workload may still run.
pub struct NeverApprovesBeforeWorkloadDown;

impl NeverApprovesBeforeWorkloadDown {
    /// The checker's name.
    pub const NAME: &'static str = "NeverApprovesBeforeWorkloadDown";

    fn check(sim: &mut Simulation<Event>, workload_down: Option<Timestamp>) {
        if workload_down.is_none() {
            sim.violate(
                Self::NAME,
                "the agent approved while the workload was still running".to_owned(),
            );
        }
    }
}

/// The workload gets at least `min_drain` between the drain signal and a kill.
pub struct KillNotBeforeMinDrain;

impl KillNotBeforeMinDrain {
    /// The checker's name.
    pub const NAME: &'static str = "KillNotBeforeMinDrain";

    fn check(
        sim: &mut Simulation<Event>,
        drain_started: Option<Timestamp>,
        min_drain: Duration,
        _skew_ms: i64,
    ) {
        let now = sim.now();
        match drain_started {
            None => sim.violate(Self::NAME, "killed without a drain signal".to_owned()),
            Some(at) if now.since(at) < min_drain => sim.violate(
                Self::NAME,
                format!(
                    "killed {:?} after the drain signal, min_drain {min_drain:?}",
                    now.since(at)
                ),
            ),
            Some(_) => {}
        }
    }
}
