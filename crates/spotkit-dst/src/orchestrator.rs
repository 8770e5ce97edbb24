//! The orchestrator world: the real `PoolMachine` against the real `SpotCloud` model, through a
//! fault-injecting ARM double.
//!
//! The double performs each action on the model and maps the model's refusals through the real
//! seams (`SimError::to_compute_error`, then `spotkit_orchestrator::op_failure`), as
//! `SimCompute` and `PoolRunner` do. On top it injects, during the safety phase: 429 with
//! `retry_after`, 5xx, capacity and quota refusals (the request had no effect), failed
//! long-running operations and lost replies (the request took effect, the orchestrator sees an
//! error), failed listings and lost agent notices. The harness also injects evictions with 30 s,
//! 5 s and no notice, several at one instant (correlated), capacity outages, price spikes above
//! the pool's max price, and orchestrator crashes at any step (the machine is dropped, a fresh
//! one with the same spec starts and must adopt what exists). The liveness phase turns every
//! fault off and restores capacity and prices; the pool must be back at its target within
//! [`RESTORE_BOUND`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use spotkit_cloud::ComputeError;
use spotkit_core::Timestamp;
use spotkit_core::compute::{EvictionPolicy, MaxPrice, OfferingId, PowerState, Priority};
use spotkit_core::compute::{ProvisioningState, VmObservation};
use spotkit_core::events::EventType;
use spotkit_core::orchestrator::{
    Action, Candidate, Input, Limits, OpFailure, OpId, PoolMachine, PoolSpec, TAG_POOL, TAG_SLOT,
    Target,
};
use spotkit_orchestrator::op_failure;
use spotkit_sim::cloud::{
    CreateVm, OpStatus, SIM_SUBSCRIPTION, Scenario, ScriptedEvent, ScriptedKind, SpotCloud, VmView,
};

use crate::harness::{Outcome, Simulation, World};

/// How long after the faults stop the pool must be back at its target.
pub const RESTORE_BOUND: Duration = Duration::from_secs(15 * 60);

const POOL: &str = "dst";
const RESOURCE_GROUP: &str = "rg-dst";
const REGIONS: [&str; 2] = ["eastus", "westus2"];
const SIZES: [(&str, u32, f64); 2] = [("Standard_D2s_v5", 2, 0.096), ("Standard_D4s_v5", 4, 0.192)];
/// Spot price as a share of pay-as-you-go, per region (so offerings rank differently).
const SPOT_RATIO: [f64; 2] = [0.11, 0.13];

/// The world's knobs, drawn from the seed.
#[derive(Clone, Debug)]
struct Config {
    target: u32,
    limits: Limits,
    policy: EvictionPolicy,
    max_price: MaxPrice,
    /// Nominal spot capacity of every offering.
    capacity: u32,
    safety: Duration,
    liveness: Duration,
    /// Probability that a request meets an injected fault.
    fault_rate: f64,
    /// Mean time between harness events (evictions, outages, crashes) in the safety phase.
    chaos_every: Duration,
}

fn draw_config(sim: &mut Simulation<Event>) -> Config {
    let rng = &mut sim.rng;
    let target = u32::try_from(rng.between(1, 6)).unwrap_or(1);
    let policy = if rng.chance(0.25) {
        EvictionPolicy::Deallocate
    } else {
        EvictionPolicy::Delete
    };
    let max_price = if rng.chance(0.3) {
        // 1.5x the dearest spot price: price spikes to 2x go above it.
        MaxPrice::UsdPerHour(0.192 * 0.13 * 1.5)
    } else {
        MaxPrice::CappedAtPayAsYouGo
    };
    Config {
        target,
        limits: Limits {
            max_surge: u32::try_from(rng.between(0, 2)).unwrap_or(0),
            max_concurrent_operations: u32::try_from(rng.between(1, 6)).unwrap_or(1),
            disruption_budget: 1,
        },
        policy,
        max_price,
        capacity: target + u32::try_from(rng.between(0, 3)).unwrap_or(0),
        safety: rng.duration(Duration::from_secs(10 * 60), Duration::from_secs(25 * 60)),
        liveness: RESTORE_BOUND + Duration::from_secs(5 * 60),
        fault_rate: [0.0, 0.1, 0.3, 0.6][usize::try_from(rng.below(4)).unwrap_or(0)],
        chaos_every: rng.duration(Duration::from_secs(30), Duration::from_secs(180)),
    }
}

fn scenario(config: &Config) -> Scenario {
    let mut toml = String::from(
        "name = \"dst\"\ntick = \"10s\"\n[vm]\ncreate = \"30s\"\nstart = \"20s\"\ndeallocate = \"15s\"\ndelete = \"10s\"\n\
         [eviction]\nnotices = [{notice=\"30s\",weight=0.5},{notice=\"5s\",weight=0.3},{notice=\"0s\",weight=0.2}]\n\
         correlation = 0.5\ncorrelation_window = \"2m\"\nreclaim = \"2m\"\nrate_scale = 0.0\n",
    );
    for region in REGIONS {
        toml.push_str(&format!("[[regions]]\nname = \"{region}\"\n"));
    }
    for (size, vcpus, _) in SIZES {
        toml.push_str(&format!(
            "[[sizes]]\nname = \"{size}\"\nfamily = \"standardDSv5Family\"\nvcpus = {vcpus}\nmemory_gib = {}\n",
            vcpus * 4
        ));
    }
    for (r, region) in REGIONS.iter().enumerate() {
        for (size, _, payg) in SIZES {
            toml.push_str(&format!(
                "[[offerings]]\nregion = \"{region}\"\nsize = \"{size}\"\npayg = {payg}\nspot = {}\ncapacity = {}\ndriver = {{kind=\"steady\"}}\n",
                payg * SPOT_RATIO[r],
                config.capacity
            ));
        }
    }
    Scenario::from_toml(&toml, "dst").expect("the DST scenario is valid")
}

fn candidates() -> Vec<Candidate> {
    let mut out = Vec::new();
    for (r, region) in REGIONS.iter().enumerate() {
        for (size, vcpus, payg) in SIZES {
            out.push(Candidate {
                offering: OfferingId::new(size, *region),
                vcpus,
                spot_capable: true,
                spot_price: Some(payg * SPOT_RATIO[r]),
                payg_price: Some(payg),
                band: None,
                rank: 0,
            });
        }
    }
    out.sort_by(|a, b| a.spot_price.partial_cmp(&b.spot_price).expect("finite"));
    for (rank, c) in out.iter_mut().enumerate() {
        c.rank = u32::try_from(rank).unwrap_or(u32::MAX);
    }
    out
}

fn pool_spec(config: &Config) -> PoolSpec {
    let mut spec = PoolSpec::new(POOL, Target::Vms(config.target), candidates());
    spec.eviction_policy = config.policy;
    spec.max_price = config.max_price;
    spec.limits = config.limits;
    spec.template.resource_group = RESOURCE_GROUP.to_owned();
    spec.template.image = "Canonical:ubuntu-24_04-lts:server:latest".to_owned();
    spec
}

/// What the event queue holds.
#[derive(Clone, Debug)]
enum Event {
    /// Deliver `Tick` to machine generation `gen`.
    Tick { generation: u32 },
    /// An operation's reply reaches the machine (dropped if it crashed since).
    Reply {
        generation: u32,
        op: OpId,
        result: Result<Option<VmObservation>, OpFailure>,
    },
    /// A long-running operation of the model is due: poll it and reply.
    LroDue {
        generation: u32,
        op: OpId,
        lro: String,
        rg: String,
        name: String,
        /// Report this instead of the real result (a failed LRO or a lost reply).
        injected: Option<ComputeError>,
    },
    /// A listing reaches the machine.
    ListReply { generation: u32 },
    /// The cloud has something due (operation end, eviction, price step).
    CloudDue,
    /// A harness fault: eviction, outage, price spike or crash.
    Chaos,
    /// Faults stop; capacity and prices come back.
    LivenessStarts,
    /// The bounded restore check.
    RestoreDeadline,
}

/// The orchestrator world's state.
struct WorldState {
    sim: Simulation<Event>,
    config: Config,
    spec: PoolSpec,
    cloud: SpotCloud,
    machine: PoolMachine,
    generation: u32,
    /// Tick already queued for the current generation.
    tick_at: Option<Timestamp>,
    faults_on: bool,
    liveness_at: Timestamp,
    notified: BTreeSet<String>,
    checkers: Checkers,
    /// Base spot price per offering (restored in the liveness phase).
    base_prices: Vec<(OfferingId, f64)>,
}

/// Runs one seed; returns the outcome and, when `keep_trace`, every trace line.
#[must_use]
pub fn run(seed: u64, keep_trace: bool) -> (Outcome, Vec<String>) {
    let mut sim = Simulation::new(seed, keep_trace);
    let config = draw_config(&mut sim);
    let spec = pool_spec(&config);
    let cloud = SpotCloud::new(
        scenario(&config),
        seed,
        sim.now(),
        std::path::Path::new("."),
    )
    .expect("steady scenario loads no trace");
    let machine = PoolMachine::new(spec.clone(), sim.now(), seed);
    sim.trace.record(sim.now(), format!("config {config:?}"));
    let liveness_at = sim.now().plus(config.safety);
    let base_prices = candidates()
        .into_iter()
        .map(|c| (c.offering, c.spot_price.unwrap_or_default()))
        .collect();
    let mut world = WorldState {
        checkers: Checkers::new(&config, liveness_at),
        sim,
        spec,
        cloud,
        machine,
        generation: 0,
        tick_at: None,
        faults_on: true,
        liveness_at,
        notified: BTreeSet::new(),
        base_prices,
        config,
    };
    world.start();
    let end = world.liveness_at.plus(world.config.liveness);
    while let Some(event) = world.sim.next_event(end) {
        world.step(event);
        if world.sim.failed() {
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
    (world.sim.finish(World::Orchestrator), all)
}

impl WorldState {
    fn start(&mut self) {
        let now = self.sim.now();
        let actions = self.machine.handle(Input::Tick, now);
        self.perform(actions);
        self.sim.schedule(self.cloud.next_due(), Event::CloudDue);
        let first = self
            .sim
            .rng
            .duration(Duration::ZERO, self.config.chaos_every);
        self.sim.schedule_in(first, Event::Chaos);
        self.sim.schedule(self.liveness_at, Event::LivenessStarts);
        self.sim
            .schedule(self.liveness_at.plus(RESTORE_BOUND), Event::RestoreDeadline);
    }

    fn step(&mut self, event: Event) {
        let now = self.sim.now();
        match event {
            Event::Tick { generation } => {
                if generation == self.generation {
                    self.tick_at = None;
                    self.feed(Input::Tick);
                }
            }
            Event::Reply {
                generation,
                op,
                result,
            } => {
                if generation == self.generation {
                    self.sim
                        .trace
                        .record(now, format!("reply op={op} {result:?}"));
                    self.feed(Input::OperationDone { op, result });
                }
            }
            Event::LroDue {
                generation,
                op,
                lro,
                rg,
                name,
                injected,
            } => self.lro_due(generation, op, &lro, &rg, &name, injected),
            Event::ListReply { generation } => {
                if generation == self.generation {
                    self.list_reply();
                }
            }
            Event::CloudDue => {
                self.cloud.advance_to(now);
                self.agents_poll();
                let next = self
                    .cloud
                    .next_due()
                    .max(now.plus(Duration::from_millis(1)));
                self.sim.schedule(next, Event::CloudDue);
            }
            Event::Chaos => {
                if self.faults_on {
                    self.chaos();
                    self.agents_poll();
                    let gap = self
                        .sim
                        .rng
                        .duration(Duration::from_secs(1), self.config.chaos_every * 2);
                    self.sim.schedule_in(gap, Event::Chaos);
                }
            }
            Event::LivenessStarts => self.liveness_starts(),
            Event::RestoreDeadline => self
                .checkers
                .restore_deadline(&mut self.sim, &mut self.cloud),
        }
        self.check();
    }

    fn feed(&mut self, input: Input) {
        let now = self.sim.now();
        let actions = self.machine.handle(input, now);
        self.perform(actions);
    }

    fn schedule_tick(&mut self) {
        let now = self.sim.now();
        if let Some(wake) = self.machine.next_wakeup() {
            if wake <= now {
                self.sim.violate(
                    "WakeupNotInPast",
                    format!(
                        "next_wakeup {} ms is not after the step at {} ms",
                        wake.unix_millis(),
                        now.unix_millis()
                    ),
                );
            }
            if self.tick_at.is_none_or(|t| wake < t) {
                self.tick_at = Some(wake);
                self.sim.schedule(
                    wake,
                    Event::Tick {
                        generation: self.generation,
                    },
                );
            }
        }
    }

    fn latency(&mut self) -> Duration {
        self.sim
            .rng
            .duration(Duration::from_millis(50), Duration::from_millis(1500))
    }

    /// An injected refusal with no effect, or `None`.
    fn refusal(&mut self, offering: Option<&OfferingId>) -> Option<ComputeError> {
        if !self.faults_on || !self.sim.rng.chance(self.config.fault_rate * 0.5) {
            return None;
        }
        let offering = offering
            .cloned()
            .unwrap_or_else(|| OfferingId::new("Standard_D2s_v5", "eastus"));
        Some(match self.sim.rng.below(5) {
            0 => ComputeError::Throttled {
                retry_after: self
                    .sim
                    .rng
                    .duration(Duration::from_secs(1), Duration::from_secs(30)),
            },
            1 => ComputeError::Transient {
                detail: "HTTP 503 from ARM (injected)".to_owned(),
            },
            2 => ComputeError::Capacity {
                offering,
                code: spotkit_cloud::CapacityErrorCode::AllocationFailed,
                message: "Allocation failed (injected)".to_owned(),
            },
            3 => ComputeError::QuotaExceeded {
                offering,
                message: if self.sim.rng.chance(0.5) {
                    "Operation could not be completed as it results in exceeding approved LowPriorityCores quota (injected)".to_owned()
                } else {
                    "Operation could not be completed as it results in exceeding approved standardDSv5Family Cores quota (injected)".to_owned()
                },
            },
            _ => ComputeError::Transient {
                detail: "HTTP 500 InternalServerError (injected)".to_owned(),
            },
        })
    }

    /// An error to report although the request took effect, or `None`.
    fn lost_reply(&mut self, name: &str) -> Option<ComputeError> {
        if !self.faults_on || !self.sim.rng.chance(self.config.fault_rate * 0.3) {
            return None;
        }
        Some(if self.sim.rng.chance(0.5) {
            ComputeError::OperationFailed {
                name: name.to_owned(),
                code: "InternalExecutionError".to_owned(),
                message: "The long-running operation failed (injected)".to_owned(),
            }
        } else {
            ComputeError::Transient {
                detail: "connection reset after the request was sent (injected lost reply)"
                    .to_owned(),
            }
        })
    }

    fn reply_later(&mut self, op: OpId, result: Result<Option<VmObservation>, OpFailure>) {
        let delay = self.latency();
        self.sim.schedule_in(
            delay,
            Event::Reply {
                generation: self.generation,
                op,
                result,
            },
        );
    }

    fn perform(&mut self, actions: Vec<Action>) {
        let now = self.sim.now();
        for action in actions {
            match action {
                Action::Observe => {
                    self.sim.trace.record(now, "observe");
                    let delay = self.latency();
                    self.sim.schedule_in(
                        delay,
                        Event::ListReply {
                            generation: self.generation,
                        },
                    );
                }
                Action::Create { op, spec } => {
                    self.sim.trace.record(
                        now,
                        format!(
                            "create op={op} {} {}/{} {:?}",
                            spec.name, spec.offering.region, spec.offering.size, spec.priority
                        ),
                    );
                    if let Some(e) = self.refusal(Some(&spec.offering)) {
                        self.reply_later(op, Err(op_failure(&e)));
                        continue;
                    }
                    let (rg, name) = (spec.resource_group.clone(), spec.name.clone());
                    let request = CreateVm {
                        subscription: SIM_SUBSCRIPTION.to_owned(),
                        spec,
                        zone: None,
                        properties: serde_json::Value::Null,
                    };
                    match self.cloud.create_or_update(request, now) {
                        Err(e) => self.reply_later(op, Err(op_failure(&e.to_compute_error()))),
                        Ok(outcome) => match outcome.op {
                            None => {
                                let obs = outcome.vm.observation();
                                self.reply_later(op, Ok(Some(obs)));
                            }
                            Some(lro) => {
                                let injected = self.lost_reply(&name);
                                self.sim.schedule(
                                    lro.completes_at,
                                    Event::LroDue {
                                        generation: self.generation,
                                        op,
                                        lro: lro.id,
                                        rg,
                                        name,
                                        injected,
                                    },
                                );
                            }
                        },
                    }
                }
                Action::Start {
                    op,
                    resource_group,
                    name,
                } => {
                    self.sim.trace.record(now, format!("start op={op} {name}"));
                    if let Some(e) = self.refusal(None) {
                        self.reply_later(op, Err(op_failure(&e)));
                        continue;
                    }
                    match self.cloud.start(&resource_group, &name, now) {
                        Err(e) => self.reply_later(op, Err(op_failure(&e.to_compute_error()))),
                        Ok(lro) => {
                            let injected = self.lost_reply(&name);
                            self.sim.schedule(
                                lro.completes_at,
                                Event::LroDue {
                                    generation: self.generation,
                                    op,
                                    lro: lro.id,
                                    rg: resource_group,
                                    name,
                                    injected,
                                },
                            );
                        }
                    }
                }
                Action::Delete {
                    op,
                    resource_group,
                    name,
                } => {
                    self.sim.trace.record(now, format!("delete op={op} {name}"));
                    if let Some(e) = self.refusal(None) {
                        self.reply_later(op, Err(op_failure(&e)));
                        continue;
                    }
                    match self.cloud.delete(&resource_group, &name, now) {
                        Err(e) => self.reply_later(op, Err(op_failure(&e.to_compute_error()))),
                        Ok(None) => self.reply_later(op, Ok(None)),
                        Ok(Some(lro)) => {
                            let injected = self.lost_reply(&name);
                            self.sim.schedule(
                                lro.completes_at,
                                Event::LroDue {
                                    generation: self.generation,
                                    op,
                                    lro: lro.id,
                                    rg: resource_group,
                                    name,
                                    injected,
                                },
                            );
                        }
                    }
                }
            }
        }
        self.schedule_tick();
    }

    fn lro_due(
        &mut self,
        generation: u32,
        op: OpId,
        lro: &str,
        rg: &str,
        name: &str,
        injected: Option<ComputeError>,
    ) {
        let now = self.sim.now();
        let Some(view) = self.cloud.operation(lro, now) else {
            self.reply_later(
                op,
                Err(op_failure(&ComputeError::Transient {
                    detail: format!("operation {lro} vanished"),
                })),
            );
            return;
        };
        if view.status == OpStatus::InProgress {
            self.sim.schedule(
                view.completes_at.max(now.plus(Duration::from_millis(1))),
                Event::LroDue {
                    generation,
                    op,
                    lro: lro.to_owned(),
                    rg: rg.to_owned(),
                    name: name.to_owned(),
                    injected,
                },
            );
            return;
        }
        if generation != self.generation {
            return;
        }
        let result = if let Some(e) = injected {
            Err(op_failure(&e))
        } else {
            match view.status {
                OpStatus::Succeeded => match view.kind {
                    spotkit_sim::cloud::OpKind::Create => match self.cloud.get(rg, name, now) {
                        Ok(vm) => Ok(Some(vm.observation())),
                        Err(e) => Err(op_failure(&e.to_compute_error())),
                    },
                    _ => Ok(None),
                },
                _ => {
                    let (code, message) = view
                        .error
                        .clone()
                        .unwrap_or_else(|| ("Canceled".to_owned(), "canceled".to_owned()));
                    Err(op_failure(&ComputeError::OperationFailed {
                        name: name.to_owned(),
                        code,
                        message,
                    }))
                }
            }
        };
        self.sim
            .trace
            .record(now, format!("reply op={op} {result:?}"));
        self.feed(Input::OperationDone { op, result });
    }

    fn list_reply(&mut self) {
        let now = self.sim.now();
        if self.faults_on && self.sim.rng.chance(self.config.fault_rate * 0.3) {
            self.sim.trace.record(now, "list failed (injected)");
            self.feed(Input::ObserveFailed);
            return;
        }
        let list: Vec<VmObservation> = self
            .cloud
            .list(None, now)
            .into_iter()
            .filter(|vm| vm.spec.tags.get(TAG_POOL).is_some_and(|p| p == POOL))
            .map(|vm| vm.observation())
            .collect();
        self.sim.trace.record(
            now,
            format!(
                "listed {}",
                list.iter()
                    .map(|vm| format!("{}:{:?}/{:?}", vm.name, vm.provisioning, vm.power))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        );
        self.feed(Input::Observed(list));
    }

    /// Each VM's agent sees its Preempt on IMDS and posts a notice (sometimes lost). Run when
    /// the cloud changes (its due instants and the harness's chaos), not on a timer, which
    /// keeps seeds cheap: the notice arrives within one model tick of the eviction's start.
    fn agents_poll(&mut self) {
        let now = self.sim.now();
        let pending: Vec<(String, Timestamp)> = self
            .cloud
            .list(Some(RESOURCE_GROUP), now)
            .into_iter()
            .filter_map(|vm| vm.eviction_not_before.map(|nb| (vm.spec.name, nb)))
            .collect();
        for (name, not_before) in pending {
            let key = format!("{name}@{}", not_before.unix_millis());
            if self.notified.contains(&key) {
                continue;
            }
            self.notified.insert(key);
            if self.faults_on && self.sim.rng.chance(self.config.fault_rate * 0.3) {
                self.sim.trace.record(now, format!("notice lost {name}"));
                continue;
            }
            self.sim.trace.record(now, format!("notice {name}"));
            self.feed(Input::Notice {
                vm_name: name,
                event_type: EventType::Preempt,
                not_before: Some(not_before),
                observed_at: now,
            });
        }
    }

    fn chaos(&mut self) {
        let now = self.sim.now();
        let offering = *self.sim.rng.pick(&[0usize, 1, 2, 3]);
        let region = REGIONS[offering / 2].to_owned();
        let size = SIZES[offering % 2].0.to_owned();
        let mut event = ScriptedEvent {
            at: Duration::ZERO,
            kind: ScriptedKind::Evict,
            region: Some(region),
            size: Some(size),
            count: None,
            notice: None,
            capacity: None,
            duration: None,
            spot: None,
        };
        match self.sim.rng.below(10) {
            0..=3 => {
                // One eviction, or a correlated burst at one instant.
                event.count = Some(if self.sim.rng.chance(0.3) { 3 } else { 1 });
                event.notice = Some(*self.sim.rng.pick(&[
                    Duration::from_secs(30),
                    Duration::from_secs(5),
                    Duration::ZERO,
                ]));
            }
            4 => {
                // A region-wide burst.
                event.size = None;
                event.count = Some(2);
            }
            5..=6 => {
                event.kind = ScriptedKind::Capacity;
                event.capacity = Some(u32::try_from(self.sim.rng.below(2)).unwrap_or(0));
                event.duration = Some(
                    self.sim
                        .rng
                        .duration(Duration::from_secs(30), Duration::from_secs(600)),
                );
            }
            7 => {
                event.kind = ScriptedKind::Price;
                let base = self.base_prices[offering].1;
                event.spot = Some(base * 2.0);
            }
            _ => {
                self.crash();
                return;
            }
        }
        self.sim.trace.record(
            now,
            format!(
                "chaos {:?} {:?}/{:?} count={:?} notice={:?} cap={:?} for={:?} spot={:?}",
                event.kind,
                event.region,
                event.size,
                event.count,
                event.notice,
                event.capacity,
                event.duration,
                event.spot
            ),
        );
        self.cloud.inject(&event, now);
    }

    fn crash(&mut self) {
        let now = self.sim.now();
        self.generation += 1;
        self.tick_at = None;
        self.sim.trace.record(
            now,
            format!("orchestrator crash -> generation {}", self.generation),
        );
        self.machine = PoolMachine::new(
            self.spec.clone(),
            now,
            self.sim.seed() ^ u64::from(self.generation),
        );
        let actions = self.machine.handle(Input::Tick, now);
        self.perform(actions);
    }

    fn liveness_starts(&mut self) {
        let now = self.sim.now();
        self.faults_on = false;
        self.sim.trace.record(now, "liveness phase: faults off");
        for (r, region) in REGIONS.iter().enumerate() {
            for (s, (size, _, _)) in SIZES.iter().enumerate() {
                let restore = |kind| ScriptedEvent {
                    at: Duration::ZERO,
                    kind,
                    region: Some((*region).to_owned()),
                    size: Some((*size).to_owned()),
                    count: None,
                    notice: None,
                    capacity: Some(self.config.capacity),
                    duration: None,
                    spot: Some(self.base_prices[r * 2 + s].1),
                };
                self.cloud.inject(&restore(ScriptedKind::Capacity), now);
                self.cloud.inject(&restore(ScriptedKind::Price), now);
            }
        }
    }

    fn check(&mut self) {
        let now = self.sim.now();
        let views = self.cloud.list(Some(RESOURCE_GROUP), now);
        let pool: Vec<&VmView> = views
            .iter()
            .filter(|vm| vm.spec.tags.get(TAG_POOL).is_some_and(|p| p == POOL))
            .collect();
        NoDuplicateVm::check(&mut self.sim, &self.machine, &pool);
        NeverAboveTargetPlusSurge::check(&mut self.sim, &self.config, &pool);
        if let MaxPrice::UsdPerHour(_) = self.config.max_price {
            NoVmAboveMaxPrice::check(&mut self.sim, &mut self.cloud, &pool);
        }
        self.checkers
            .restored
            .observe(now, running(&pool), self.config.target);
    }

    fn final_checks(&mut self) {
        let now = self.sim.now();
        let views = self.cloud.list(Some(RESOURCE_GROUP), now);
        let pool: Vec<&VmView> = views
            .iter()
            .filter(|vm| vm.spec.tags.get(TAG_POOL).is_some_and(|p| p == POOL))
            .collect();
        let n = running(&pool);
        if n != self.config.target {
            self.sim.violate(
                CapacityRestoredWithin::NAME,
                format!(
                    "{n} VMs run at the end of the liveness phase, target {}",
                    self.config.target
                ),
            );
        }
    }
}

/// VMs that serve: running, provisioned, not being evicted.
fn running(pool: &[&VmView]) -> u32 {
    let n = pool
        .iter()
        .filter(|vm| {
            vm.power == PowerState::Running
                && vm.provisioning == ProvisioningState::Succeeded
                && vm.eviction_not_before.is_none()
        })
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Whether a VM occupies a place in the pool: created or creating, not leaving.
fn occupies(vm: &VmView) -> bool {
    vm.provisioning != ProvisioningState::Deleting
        && vm.eviction_not_before.is_none()
        && matches!(
            vm.power,
            PowerState::Running | PowerState::Starting | PowerState::Unknown
        )
}

/// No two VMs of the pool hold one slot, every VM's name is its slot's name, and a machine
/// that started after a crash never makes a VM beside one that exists for the same slot.
pub struct NoDuplicateVm;

impl NoDuplicateVm {
    /// The checker's name.
    pub const NAME: &'static str = "NoDuplicateVm";

    fn check(sim: &mut Simulation<Event>, machine: &PoolMachine, pool: &[&VmView]) {
        let mut slots: BTreeMap<&str, &str> = BTreeMap::new();
        for vm in pool {
            let Some(slot) = vm.spec.tags.get(TAG_SLOT) else {
                sim.violate(
                    Self::NAME,
                    format!("{} has no {TAG_SLOT} tag", vm.spec.name),
                );
                return;
            };
            if let Some(other) = slots.insert(slot, &vm.spec.name) {
                sim.violate(
                    Self::NAME,
                    format!("{other} and {} both hold slot {slot}", vm.spec.name),
                );
                return;
            }
            let expected = slot.parse::<u32>().map(|s| machine.vm_name(s));
            if expected.as_deref() != Ok(vm.spec.name.as_str()) {
                sim.violate(
                    Self::NAME,
                    format!(
                        "{} holds slot {slot}, whose name is {expected:?}",
                        vm.spec.name
                    ),
                );
                return;
            }
        }
    }
}

/// Never more than target + `max_surge` VMs occupy the pool (running, starting or creating;
/// VMs being evicted or deleted do not count).
pub struct NeverAboveTargetPlusSurge;

impl NeverAboveTargetPlusSurge {
    /// The checker's name.
    pub const NAME: &'static str = "NeverAboveTargetPlusSurge";

    fn check(sim: &mut Simulation<Event>, config: &Config, pool: &[&VmView]) {
        let occupying: Vec<&str> = pool
            .iter()
            .filter(|vm| occupies(vm))
            .map(|vm| vm.spec.name.as_str())
            .collect();
        let limit = config.target + config.limits.max_surge;
        if occupying.len() > limit as usize {
            sim.violate(
                Self::NAME,
                format!(
                    "{} VMs occupy the pool ({}), target {} + surge {}",
                    occupying.len(),
                    occupying.join(","),
                    config.target,
                    config.limits.max_surge
                ),
            );
        }
    }
}

/// No Spot VM runs while the spot price is above its max price, unless its eviction is
/// already announced (the notice period).
pub struct NoVmAboveMaxPrice;

impl NoVmAboveMaxPrice {
    /// The checker's name.
    pub const NAME: &'static str = "NoVmAboveMaxPrice";

    fn check(sim: &mut Simulation<Event>, cloud: &mut SpotCloud, pool: &[&VmView]) {
        let now = sim.now();
        let mut catalog = None;
        for vm in pool {
            let Some(MaxPrice::UsdPerHour(max)) = vm.spec.max_price else {
                continue;
            };
            if vm.spec.priority != Priority::Spot
                || vm.power != PowerState::Running
                || vm.eviction_not_before.is_some()
            {
                continue;
            }
            let snapshot = catalog.get_or_insert_with(|| cloud.catalog(now));
            let price = snapshot
                .offerings
                .iter()
                .find(|o| {
                    o.size.eq_ignore_ascii_case(&vm.spec.offering.size)
                        && o.region.eq_ignore_ascii_case(&vm.spec.offering.region)
                })
                .and_then(|o| o.spot_linux);
            if let Some(price) = price
                && price > max
            {
                sim.violate(
                    Self::NAME,
                    format!(
                        "{} runs at spot {price} above its max price {max} with no eviction pending",
                        vm.spec.name
                    ),
                );
                return;
            }
        }
    }
}

/// Once faults stop, the pool is back at its target within the bound and stays there.
pub struct CapacityRestoredWithin {
    bound: Duration,
    liveness_at: Timestamp,
    first_restored: Option<Timestamp>,
}

impl CapacityRestoredWithin {
    /// The checker's name.
    pub const NAME: &'static str = "CapacityRestoredWithin";

    fn observe(&mut self, now: Timestamp, running: u32, target: u32) {
        if now >= self.liveness_at && self.first_restored.is_none() && running >= target {
            self.first_restored = Some(now);
        }
    }
}

struct Checkers {
    restored: CapacityRestoredWithin,
}

impl Checkers {
    fn new(_config: &Config, liveness_at: Timestamp) -> Self {
        Self {
            restored: CapacityRestoredWithin {
                bound: RESTORE_BOUND,
                liveness_at,
                first_restored: None,
            },
        }
    }

    fn restore_deadline(&mut self, sim: &mut Simulation<Event>, _cloud: &mut SpotCloud) {
        if self.restored.first_restored.is_none() {
            sim.violate(
                CapacityRestoredWithin::NAME,
                format!(
                    "the pool was not back at its target within {:?} after faults stopped",
                    self.restored.bound
                ),
            );
        }
    }
}
