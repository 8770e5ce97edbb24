//! The orchestrator core: keeps a pool of VMs at its target across evictions, by deciding which
//! VMs to create, start and delete. Pure: observations and operation results in, actions out.
//!
//! # Expected flow
//! 1. The runner lists the pool's VMs by tag (`spotkit-pool=<name>`) and feeds
//!    [`Input::Observed`]; agents' notices and health arrive as [`Input::Notice`] and
//!    [`Input::Heartbeat`]; each operation's end arrives as [`Input::OperationDone`].
//! 2. Each step derives the whole plan from the state (the reconciler is not told why it runs):
//!    the target is split into a regular baseline and spot (Spot Priority Mix's arithmetic),
//!    capacity is counted, and the shortfall is placed on the advisor's ranked candidates minus
//!    offerings that refused capacity lately (`unavailable_ttl`) and, when others remain,
//!    offerings that evicted lately (`eviction_block_ttl`), with at most `max_share` of the spot
//!    units in one offering.
//! 3. Actions are issued up to `max_concurrent_operations` at a time; the rest of the plan
//!    follows as operations end. The runner sleeps until [`PoolMachine::next_wakeup`] or the next
//!    input.
//!
//! # Guarantees
//! - A VM with a `Preempt`/`Terminate` notice, or seen deallocating, stops counting at once: in
//!   a Delete pool its replacement is created in parallel with its drain (Karpenter).
//! - An offering that just evicted is not the first choice for the replacement (SkyPilot's
//!   #10021 re-used the preempted region; this core must not).
//! - VM names are `{pool}-{ordinal}`, the lowest ordinal not in use, and a VM is a member
//!   because of its tags: a restarted machine that observes what an earlier one created adopts
//!   it, and one that does not yet see it picks the same name, so ARM's idempotent PUT makes no
//!   duplicate.
//! - Never more than target + `max_surge` units occupy the pool (running, starting, creating or
//!   waiting for a restart); VMs being evicted or deleted do not count. A vCPU target may be
//!   exceeded by less than one VM's vCPUs (whole VMs).
//! - The regular baseline is never deleted to make room; voluntary deletes (surplus, fallback
//!   give-back, unhealthy VMs) stay within `disruption_budget`.
//! - After a step, [`PoolMachine::next_wakeup`] is never in the past (tested), so runners
//!   cannot spin.

mod spec;
mod status;

pub mod fixture;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use crate::Timestamp;
use crate::backoff::SplitMix64;
use crate::compute::{
    EvictionPolicy, OfferingId, PowerState, Priority, ProvisioningState, VmObservation, VmSpec,
};
use crate::events::EventType;

pub use spec::{Baseline, BlockScope, Candidate, Limits, PoolSpec, Target, Template};
pub use status::{
    Condition, ConditionReason, EvictionRecord, LossSignal, OfferingCount, PendingOp, PoolStatus,
    RestartStatus,
};

/// Tag naming the pool a VM belongs to.
pub const TAG_POOL: &str = "spotkit-pool";
/// Tag holding the VM's ordinal in the pool (its name's suffix).
pub const TAG_SLOT: &str = "spotkit-slot";
/// Tag holding why the VM exists: `base` (regular baseline), `spot`, or `fallback` (regular in
/// place of spot).
pub const TAG_ROLE: &str = "spotkit-role";
/// Tag holding the capacity units (VMs or vCPUs) the VM counts for.
pub const TAG_UNITS: &str = "spotkit-units";

/// Identifies an operation the machine asked for, in [`Input::OperationDone`].
pub type OpId = u64;

/// Why an operation failed, as the core needs to know it (mirrors `spotkit_cloud::ComputeError`
/// without depending on it; the runner maps one onto the other).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpFailure {
    /// No capacity for the offering (`SkuNotAvailable`, `AllocationFailed`, price above max).
    Capacity,
    /// A quota would be exceeded; `region_wide` when it is a regional quota (Spot's
    /// `LowPriorityCores`, Total Regional Cores) rather than one size family's.
    Quota {
        /// Whether every size in the region is affected.
        region_wide: bool,
    },
    /// HTTP 429: hold this kind of operation for `retry_after`.
    Throttled {
        /// How long the cloud asked to wait.
        retry_after: Duration,
    },
    /// The VM (or its resource group) does not exist.
    NotFound,
    /// The operation conflicts with the VM's state: observe, then decide.
    Conflict,
    /// The request is invalid; retrying the same request will not help.
    Invalid {
        /// The cloud's explanation.
        message: String,
    },
    /// Credentials missing or refused.
    Unauthorized {
        /// What failed.
        message: String,
    },
    /// Transport error, 5xx, timeout, a failed long-running operation: retry with backoff.
    Transient {
        /// What happened.
        message: String,
    },
}

/// What happened, as the runner reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// Time passed.
    Tick,
    /// A full listing of the pool's VMs (VMs without the pool's tag are ignored).
    Observed(Vec<VmObservation>),
    /// Listing the pool's VMs failed; observe again after a backoff.
    ObserveFailed,
    /// An agent's notice (its `--notify-url` POST).
    Notice {
        /// The VM the event concerns.
        vm_name: String,
        /// The Scheduled Event's type.
        event_type: EventType,
        /// The event's `NotBefore`, if any.
        not_before: Option<Timestamp>,
        /// When the agent saw it.
        observed_at: Timestamp,
    },
    /// An agent's health report.
    Heartbeat {
        /// The VM.
        vm_name: String,
        /// Whether its workload is healthy.
        healthy: bool,
    },
    /// Another pool (or the advisor) learned that an offering refuses capacity: skip it until
    /// `until`, as if this pool had been refused (Karpenter's cache is shared by all pools).
    OfferingUnavailable {
        /// Where.
        offering: OfferingId,
        /// For which priority.
        priority: Priority,
        /// Until when.
        until: Timestamp,
    },
    /// An operation ended. A create returns the VM as observed after it, when the cloud said.
    OperationDone {
        /// Which.
        op: OpId,
        /// How.
        result: Result<Option<VmObservation>, OpFailure>,
    },
}

/// Something the runner must do, then report with [`Input::OperationDone`] (or
/// [`Input::Observed`] for `Observe`).
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create (PUT) this VM and wait for the operation.
    Create {
        /// Report with this id.
        op: OpId,
        /// The VM.
        spec: VmSpec,
    },
    /// Start this deallocated VM.
    Start {
        /// Report with this id.
        op: OpId,
        /// Resource group.
        resource_group: String,
        /// VM name.
        name: String,
    },
    /// Delete this VM (and its disks).
    Delete {
        /// Report with this id.
        op: OpId,
        /// Resource group.
        resource_group: String,
        /// VM name.
        name: String,
    },
    /// List the pool's VMs (by tag) and feed [`Input::Observed`] or [`Input::ObserveFailed`].
    Observe,
}

/// The kinds of operation ARM throttles separately (Put VM, Update VM, Delete VM buckets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpClass {
    /// Create (PUT).
    Create,
    /// Start (an Update VM operation).
    Start,
    /// Delete.
    Delete,
}

/// Why a VM exists in the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Part of the regular baseline.
    Base,
    /// Spot.
    Spot,
    /// Regular in place of spot (on-demand fallback), given back when spot returns.
    Fallback,
}

impl Role {
    /// The `spotkit-role` tag value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Base => "base",
            Self::Spot => "spot",
            Self::Fallback => "fallback",
        }
    }
}

#[derive(Clone, Debug)]
struct InFlight {
    class: OpClass,
    vm: String,
    voluntary: bool,
    started_at: Timestamp,
    /// For creates: what was asked (to mark the offering on failure).
    offering: OfferingId,
    priority: Priority,
}

#[derive(Clone, Copy, Debug)]
struct NoticeState {
    expires_at: Timestamp,
}

#[derive(Clone, Copy, Debug)]
struct Restart {
    since: Timestamp,
    attempts: u32,
    next_at: Timestamp,
}

#[derive(Clone, Copy, Debug, Default)]
struct Hold {
    until: Option<Timestamp>,
    failures: u32,
}

#[derive(Clone, Copy, Debug)]
struct ObserveState {
    in_flight: bool,
    next_at: Timestamp,
    failures: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Counts for the target; `running` when it is serving.
    Live { running: bool },
    /// Going away by the cloud's hand (eviction under way): does not count.
    Evicting,
    /// Deallocate pool: evicted and waiting to be started again; occupies its place.
    Restarting,
    /// Stopped, failed or given up on: delete it (not a disruption: it serves nothing).
    Cleanup,
    /// Reported unhealthy too long: replace it, delete it within the disruption budget.
    Unhealthy,
    /// Being deleted.
    Going,
}

#[derive(Clone, Debug)]
struct PlannedCreate {
    candidate: usize,
    priority: Priority,
    role: Role,
    replaces_loss: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct PlanSummary {
    creates: u32,
    starts: u32,
    deletes: u32,
    unplaced_units: u32,
}

/// Records kept for status, oldest dropped first.
const MAX_EVICTION_RECORDS: usize = 1000;

/// The orchestrator's decision core for one pool.
#[derive(Clone, Debug)]
pub struct PoolMachine {
    spec: PoolSpec,
    /// Candidate offerings with lower-case names (ARM compares case-insensitively).
    keys: Vec<OfferingId>,
    vcpus_by_size: BTreeMap<String, u32>,
    rng: SplitMix64,
    now: Timestamp,
    next_op: OpId,
    observed_once: bool,
    vms: BTreeMap<String, VmObservation>,
    ops: BTreeMap<OpId, InFlight>,
    ops_by_vm: BTreeMap<String, OpId>,
    created_recently: BTreeMap<String, Timestamp>,
    /// Creates that failed in a way that may have taken effect (a lost reply, a failed
    /// long-running operation): believed to exist until a listing says, never an eviction.
    unconfirmed_creates: BTreeSet<String>,
    our_deletes: BTreeMap<String, Timestamp>,
    name_cooldown: BTreeMap<String, Timestamp>,
    notices: BTreeMap<String, NoticeState>,
    unhealthy_since: BTreeMap<String, Timestamp>,
    restarts: BTreeMap<String, Restart>,
    /// Deallocate VMs whose restart timed out: deleted and replaced, never started again.
    given_up: BTreeSet<String>,
    unavailable: BTreeMap<(OfferingId, Priority), Timestamp>,
    invalid: BTreeSet<(OfferingId, Priority)>,
    blocks: BTreeMap<(String, Option<String>), Timestamp>,
    holds: BTreeMap<OpClass, Hold>,
    observe: ObserveState,
    evictions: BTreeMap<u64, EvictionRecord>,
    next_eviction: u64,
    evicted_vms: BTreeMap<String, u64>,
    awaiting_replacement: VecDeque<u64>,
    replacing: BTreeMap<String, u64>,
    conditions: BTreeMap<ConditionReason, Condition>,
    last_plan: PlanSummary,
}

fn lower(o: &OfferingId) -> OfferingId {
    OfferingId::new(o.size.to_ascii_lowercase(), o.region.to_ascii_lowercase())
}

fn is_stopped(power: PowerState) -> bool {
    matches!(power, PowerState::Deallocated | PowerState::Stopped)
}

fn is_stopping(power: PowerState) -> bool {
    matches!(power, PowerState::Deallocating | PowerState::Stopping)
}

fn is_loss_event(t: EventType) -> bool {
    matches!(t, EventType::Preempt | EventType::Terminate)
}

impl PoolMachine {
    /// A machine for `spec` starting at `now`; `seed` fixes the backoff jitter. It asks to
    /// observe first and creates nothing before its first observation.
    #[must_use]
    pub fn new(spec: PoolSpec, now: Timestamp, seed: u64) -> Self {
        let mut m = Self {
            keys: Vec::new(),
            vcpus_by_size: BTreeMap::new(),
            spec,
            rng: SplitMix64::new(seed),
            now,
            next_op: 1,
            observed_once: false,
            vms: BTreeMap::new(),
            ops: BTreeMap::new(),
            ops_by_vm: BTreeMap::new(),
            created_recently: BTreeMap::new(),
            unconfirmed_creates: BTreeSet::new(),
            our_deletes: BTreeMap::new(),
            name_cooldown: BTreeMap::new(),
            notices: BTreeMap::new(),
            unhealthy_since: BTreeMap::new(),
            restarts: BTreeMap::new(),
            given_up: BTreeSet::new(),
            unavailable: BTreeMap::new(),
            invalid: BTreeSet::new(),
            blocks: BTreeMap::new(),
            holds: BTreeMap::new(),
            observe: ObserveState {
                in_flight: false,
                next_at: now,
                failures: 0,
            },
            evictions: BTreeMap::new(),
            next_eviction: 1,
            evicted_vms: BTreeMap::new(),
            awaiting_replacement: VecDeque::new(),
            replacing: BTreeMap::new(),
            conditions: BTreeMap::new(),
            last_plan: PlanSummary::default(),
        };
        m.index_candidates();
        m
    }

    fn index_candidates(&mut self) {
        self.keys = self
            .spec
            .candidates
            .iter()
            .map(|c| lower(&c.offering))
            .collect();
        self.vcpus_by_size = self
            .spec
            .candidates
            .iter()
            .map(|c| (c.offering.size.to_ascii_lowercase(), c.vcpus))
            .collect();
    }

    /// The spec in force.
    #[must_use]
    pub fn spec(&self) -> &PoolSpec {
        &self.spec
    }

    /// Replaces the spec (a changed pool file); caches and records are kept, the next step plans
    /// against the new spec.
    pub fn update_spec(&mut self, spec: PoolSpec) {
        self.spec = spec;
        self.index_candidates();
    }

    /// When the runner must deliver the next [`Input::Tick`] at the latest. Never at or before
    /// the time of the last step: what is due now was acted on, or waits for an input.
    #[must_use]
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        let now = self.now;
        let mut wake: Option<Timestamp> = None;
        let mut consider = |t: Timestamp| {
            if t > now {
                wake = Some(wake.map_or(t, |w| w.min(t)));
            }
        };
        if !self.observe.in_flight {
            consider(self.observe.next_at);
        }
        for hold in self.holds.values() {
            if let Some(t) = hold.until {
                consider(t);
            }
        }
        for (name, r) in &self.restarts {
            if !self.ops_by_vm.contains_key(name) {
                consider(r.next_at);
            }
            consider(r.since.plus(self.spec.restart_timeout));
        }
        for t in self.unavailable.values() {
            consider(*t);
        }
        for t in self.blocks.values() {
            consider(*t);
        }
        for n in self.notices.values() {
            consider(n.expires_at);
        }
        for t in self.unhealthy_since.values() {
            consider(t.plus(self.spec.unhealthy_grace));
        }
        for t in self
            .created_recently
            .values()
            .chain(self.our_deletes.values())
            .chain(self.name_cooldown.values())
        {
            consider(*t);
        }
        wake
    }

    /// Feeds one input at time `now` and returns what to do, in order.
    #[must_use]
    pub fn handle(&mut self, input: Input, now: Timestamp) -> Vec<Action> {
        self.now = now;
        self.expire(now);
        match input {
            Input::Tick => {}
            Input::Observed(list) => self.on_observed(list, now),
            Input::ObserveFailed => {
                self.observe.in_flight = false;
                self.observe.failures = self.observe.failures.saturating_add(1);
                let delay = self
                    .spec
                    .retry_backoff
                    .delay(self.observe.failures, self.rng.next_u64());
                self.observe.next_at = now.plus(delay);
                self.set_condition(
                    ConditionReason::ObserveFailing,
                    format!(
                        "listing the pool's VMs failed {} times in a row; retrying in {}s",
                        self.observe.failures,
                        delay.as_secs()
                    ),
                    now,
                );
            }
            Input::Notice {
                vm_name,
                event_type,
                not_before,
                observed_at,
            } => self.on_notice(vm_name, event_type, not_before, observed_at, now),
            Input::Heartbeat { vm_name, healthy } => {
                if healthy {
                    self.unhealthy_since.remove(&vm_name);
                } else if self.vms.contains_key(&vm_name) {
                    self.unhealthy_since.entry(vm_name).or_insert(now);
                }
            }
            Input::OfferingUnavailable {
                offering,
                priority,
                until,
            } => {
                if until > now {
                    let entry = self
                        .unavailable
                        .entry((lower(&offering), priority))
                        .or_insert(until);
                    *entry = (*entry).max(until);
                }
            }
            Input::OperationDone { op, result } => self.on_done(op, result, now),
        }
        self.expire(now);
        self.step(now)
    }

    // ---- inputs ----

    fn member(&self, vm: &VmObservation) -> bool {
        vm.tags.get(TAG_POOL).is_some_and(|p| *p == self.spec.name)
    }

    fn on_observed(&mut self, list: Vec<VmObservation>, now: Timestamp) {
        self.observed_once = true;
        self.observe.in_flight = false;
        self.observe.failures = 0;
        self.observe.next_at = now.plus(self.spec.resync_interval);
        self.conditions.remove(&ConditionReason::ObserveFailing);
        let mut fresh: BTreeMap<String, VmObservation> = list
            .into_iter()
            .filter(|vm| self.member(vm))
            .map(|vm| (vm.name.clone(), vm))
            .collect();
        for name in fresh.keys() {
            // Listed: the create took effect after all.
            self.unconfirmed_creates.remove(name);
        }
        let old = std::mem::take(&mut self.vms);
        for (name, vm) in old {
            if fresh.contains_key(&name) {
                continue;
            }
            let creating = self
                .ops_by_vm
                .get(&name)
                .is_some_and(|op| self.ops[op].class == OpClass::Create);
            if creating || self.created_recently.contains_key(&name) {
                // A listing can lag a create; believe our own create a while longer.
                fresh.insert(name, vm);
                continue;
            }
            let ours = self.our_deletes.remove(&name).is_some()
                || self
                    .ops_by_vm
                    .get(&name)
                    .is_some_and(|op| self.ops[op].class == OpClass::Delete);
            let never_made = self.unconfirmed_creates.remove(&name);
            if never_made && let Some(id) = self.replacing.remove(&name) {
                // The replacement was never made: the loss waits for another one.
                if let Some(rec) = self.evictions.get_mut(&id) {
                    rec.replacement = None;
                }
                self.awaiting_replacement.push_front(id);
            }
            if !ours
                && !never_made
                && vm.priority == Priority::Spot
                && !self.evicted_vms.contains_key(&name)
            {
                self.record_eviction(&vm, LossSignal::Vanished, now);
            }
            self.forget_vm(&name);
        }
        self.vms = fresh;
        let names: Vec<String> = self.vms.keys().cloned().collect();
        for name in names {
            self.created_recently.remove(&name);
            self.after_observation(&name, now);
        }
    }

    /// What an observation of `name` (from a listing or an operation's answer) tells.
    fn after_observation(&mut self, name: &str, now: Timestamp) {
        let Some(vm) = self.vms.get(name) else {
            return;
        };
        let ours = self.our_deletes.contains_key(name)
            || self
                .ops_by_vm
                .get(name)
                .is_some_and(|op| self.ops[op].class == OpClass::Delete);
        let stopping = is_stopping(vm.power) || is_stopped(vm.power);
        let deleting = vm.provisioning == ProvisioningState::Deleting;
        let running = vm.power == PowerState::Running;
        let spot = vm.priority == Priority::Spot;
        if stopping {
            // The event happened: the notice has served its purpose.
            self.notices.remove(name);
        }
        if spot && !ours && (stopping || deleting) && !self.evicted_vms.contains_key(name) {
            let vm = vm.clone();
            self.record_eviction(&vm, LossSignal::StateChange, now);
        } else if spot
            && !ours
            && self.notices.contains_key(name)
            && !self.evicted_vms.contains_key(name)
        {
            let vm = vm.clone();
            self.record_eviction(&vm, LossSignal::Notice, now);
        }
        if running && !self.notices.contains_key(name) {
            if let Some(id) = self.evicted_vms.remove(name) {
                // Back in service (a restarted Deallocate VM, or a notice that did not evict).
                if let Some(rec) = self.evictions.get_mut(&id)
                    && rec.replacement.is_none()
                {
                    rec.replacement = Some(name.to_string());
                    rec.replaced_at = Some(now);
                    self.awaiting_replacement.retain(|x| *x != id);
                }
            }
            if let Some(id) = self.replacing.remove(name)
                && let Some(rec) = self.evictions.get_mut(&id)
            {
                rec.replaced_at = Some(now);
            }
            self.restarts.remove(name);
        }
    }

    fn on_notice(
        &mut self,
        vm_name: String,
        event_type: EventType,
        not_before: Option<Timestamp>,
        observed_at: Timestamp,
        now: Timestamp,
    ) {
        if !is_loss_event(event_type) {
            return;
        }
        let from = not_before.unwrap_or(observed_at).max(observed_at).max(now);
        self.notices.insert(
            vm_name.clone(),
            NoticeState {
                expires_at: from.plus(self.spec.notice_grace),
            },
        );
        self.after_observation(&vm_name, now);
    }

    fn record_eviction(&mut self, vm: &VmObservation, via: LossSignal, now: Timestamp) {
        let id = self.next_eviction;
        self.next_eviction += 1;
        let offering = lower(&vm.offering);
        let key = match self.spec.eviction_block_scope {
            BlockScope::Offering => (offering.region.clone(), Some(offering.size.clone())),
            BlockScope::Region => (offering.region.clone(), None),
        };
        self.blocks
            .insert(key, now.plus(self.spec.eviction_block_ttl));
        self.evictions.insert(
            id,
            EvictionRecord {
                vm: vm.name.clone(),
                offering,
                seen_at: now,
                via,
                replacement: None,
                replaced_at: None,
            },
        );
        self.evicted_vms.insert(vm.name.clone(), id);
        if self.spec.eviction_policy == EvictionPolicy::Delete {
            self.awaiting_replacement.push_back(id);
        }
        while self.evictions.len() > MAX_EVICTION_RECORDS {
            self.evictions.pop_first();
        }
    }

    fn forget_vm(&mut self, name: &str) {
        self.notices.remove(name);
        self.unhealthy_since.remove(name);
        self.restarts.remove(name);
        self.given_up.remove(name);
        self.evicted_vms.remove(name);
        self.created_recently.remove(name);
        self.unconfirmed_creates.remove(name);
    }

    fn hold_class(&mut self, class: OpClass, now: Timestamp, retry_after: Option<Duration>) {
        let failures = {
            let hold = self.holds.entry(class).or_default();
            hold.failures = hold.failures.saturating_add(1);
            hold.failures
        };
        let delay = retry_after
            .unwrap_or_else(|| self.spec.retry_backoff.delay(failures, self.rng.next_u64()));
        let until = now.plus(delay);
        let hold = self.holds.entry(class).or_default();
        hold.until = Some(hold.until.map_or(until, |u| u.max(until)));
    }

    fn succeeded(&mut self, class: OpClass) {
        self.holds.remove(&class);
        self.conditions.remove(&ConditionReason::Unauthorized);
    }

    fn mark_unavailable(&mut self, offering: &OfferingId, priority: Priority, region_wide: bool) {
        let until = self.now.plus(self.spec.unavailable_ttl);
        let key = lower(offering);
        if region_wide {
            for k in &self.keys {
                if k.region == key.region {
                    self.unavailable.insert((k.clone(), priority), until);
                }
            }
        }
        self.unavailable.insert((key, priority), until);
    }

    #[allow(clippy::too_many_lines)] // one match over (class, outcome), clearer in one place
    fn on_done(
        &mut self,
        op: OpId,
        result: Result<Option<VmObservation>, OpFailure>,
        now: Timestamp,
    ) {
        let Some(f) = self.ops.remove(&op) else {
            return;
        };
        self.ops_by_vm.remove(&f.vm);
        match (f.class, result) {
            (OpClass::Create, Ok(obs)) => {
                self.succeeded(OpClass::Create);
                self.created_recently
                    .insert(f.vm.clone(), now.plus(self.spec.list_lag_grace));
                if let Some(obs) = obs.filter(|o| o.name == f.vm) {
                    self.vms.insert(f.vm.clone(), obs);
                }
                self.after_observation(&f.vm, now);
            }
            (OpClass::Create, Err(OpFailure::Transient { .. })) => {
                // The PUT may have taken effect (a lost reply, a failed long-running operation
                // that left the VM): forgetting it would create its twin under the next free
                // name. Believe it exists until a listing (asked for now) says.
                self.hold_class(OpClass::Create, now, None);
                self.created_recently
                    .insert(f.vm.clone(), now.plus(self.spec.list_lag_grace));
                self.unconfirmed_creates.insert(f.vm.clone());
                self.observe.next_at = now;
            }
            (OpClass::Create, Err(e)) => {
                self.vms.remove(&f.vm);
                if let Some(id) = self.replacing.remove(&f.vm) {
                    if let Some(rec) = self.evictions.get_mut(&id) {
                        rec.replacement = None;
                    }
                    self.awaiting_replacement.push_front(id);
                }
                match e {
                    OpFailure::Capacity => {
                        self.mark_unavailable(&f.offering, f.priority, false);
                    }
                    OpFailure::Quota { region_wide } => {
                        self.mark_unavailable(&f.offering, f.priority, region_wide);
                    }
                    OpFailure::Throttled { retry_after } => {
                        self.hold_class(OpClass::Create, now, Some(retry_after));
                        self.throttled(OpClass::Create, retry_after, now);
                    }
                    OpFailure::Invalid { message } => {
                        self.invalid.insert((lower(&f.offering), f.priority));
                        self.set_condition(
                            ConditionReason::InvalidRequest,
                            format!(
                                "creating {} in {} was rejected as invalid: {message}; that offering is no longer used, fix the pool spec",
                                f.vm, f.offering
                            ),
                            now,
                        );
                    }
                    OpFailure::Unauthorized { message } => self.unauthorized(&message, now),
                    OpFailure::Conflict => {
                        self.name_cooldown.insert(
                            f.vm.clone(),
                            now.plus(self.spec.retry_backoff.max.max(self.spec.list_lag_grace)),
                        );
                        self.observe.next_at = now;
                    }
                    OpFailure::NotFound => {
                        self.hold_class(OpClass::Create, now, None);
                        self.set_condition(
                            ConditionReason::InvalidRequest,
                            format!(
                                "creating {} failed: resource group {} not found; create it or fix template.resource_group",
                                f.vm, self.spec.template.resource_group
                            ),
                            now,
                        );
                    }
                    // Handled by the arm above: the create may have taken effect.
                    OpFailure::Transient { .. } => {}
                }
            }
            (OpClass::Start, Ok(_)) => {
                self.succeeded(OpClass::Start);
                if let Some(vm) = self.vms.get_mut(&f.vm) {
                    vm.power = PowerState::Starting;
                    vm.provisioning = ProvisioningState::Updating;
                }
                self.restarts.remove(&f.vm);
                self.observe.next_at = now;
            }
            (OpClass::Start, Err(e)) => {
                let backoff = self.spec.restart_backoff;
                let random = self.rng.next_u64();
                let retry_base = self.spec.retry_backoff.base;
                let restart = self.restarts.entry(f.vm.clone()).or_insert(Restart {
                    since: now,
                    attempts: 0,
                    next_at: now,
                });
                match e {
                    OpFailure::Capacity | OpFailure::Quota { .. } => {
                        restart.attempts = restart.attempts.saturating_add(1);
                        restart.next_at = now.plus(backoff.delay(restart.attempts, random));
                        let region_wide = matches!(e, OpFailure::Quota { region_wide: true });
                        self.mark_unavailable(&f.offering, f.priority, region_wide);
                    }
                    OpFailure::Throttled { retry_after } => {
                        self.hold_class(OpClass::Start, now, Some(retry_after));
                        self.throttled(OpClass::Start, retry_after, now);
                    }
                    OpFailure::Conflict | OpFailure::NotFound => {
                        restart.next_at = now.plus(retry_base);
                        self.observe.next_at = now;
                    }
                    OpFailure::Invalid { message } => {
                        restart.next_at = now.plus(backoff.max);
                        self.set_condition(
                            ConditionReason::InvalidRequest,
                            format!("starting {} was rejected as invalid: {message}", f.vm),
                            now,
                        );
                    }
                    OpFailure::Unauthorized { message } => self.unauthorized(&message, now),
                    OpFailure::Transient { .. } => {
                        restart.attempts = restart.attempts.saturating_add(1);
                        restart.next_at = now.plus(backoff.delay(restart.attempts, random));
                    }
                }
            }
            (OpClass::Delete, Ok(_) | Err(OpFailure::NotFound)) => {
                self.succeeded(OpClass::Delete);
                self.vms.remove(&f.vm);
                self.our_deletes.insert(
                    f.vm.clone(),
                    now.plus(self.spec.resync_interval.saturating_mul(4)),
                );
                self.forget_vm(&f.vm);
            }
            (OpClass::Delete, Err(e)) => match e {
                OpFailure::Throttled { retry_after } => {
                    self.hold_class(OpClass::Delete, now, Some(retry_after));
                    self.throttled(OpClass::Delete, retry_after, now);
                }
                OpFailure::Conflict => {
                    self.hold_class(OpClass::Delete, now, None);
                    self.observe.next_at = now;
                }
                OpFailure::Unauthorized { message } => self.unauthorized(&message, now),
                OpFailure::Invalid { message } => {
                    self.hold_class(OpClass::Delete, now, Some(self.spec.retry_backoff.max));
                    self.set_condition(
                        ConditionReason::InvalidRequest,
                        format!("deleting {} was rejected: {message}", f.vm),
                        now,
                    );
                }
                _ => self.hold_class(OpClass::Delete, now, None),
            },
        }
    }

    fn throttled(&mut self, class: OpClass, retry_after: Duration, now: Timestamp) {
        self.set_condition(
            ConditionReason::Throttled,
            format!(
                "{class:?} operations throttled by the cloud; holding them for {}s",
                retry_after.as_secs()
            ),
            now,
        );
    }

    fn unauthorized(&mut self, message: &str, now: Timestamp) {
        for class in [OpClass::Create, OpClass::Start, OpClass::Delete] {
            self.hold_class(class, now, Some(self.spec.retry_backoff.max));
        }
        self.set_condition(
            ConditionReason::Unauthorized,
            format!(
                "the cloud refused the credentials ({message}); fix the credential or its role assignment (Virtual Machine Contributor on the resource group)"
            ),
            now,
        );
    }

    fn set_condition(&mut self, reason: ConditionReason, message: String, now: Timestamp) {
        let since = self.conditions.get(&reason).map_or(now, |c| c.since);
        self.conditions.insert(
            reason,
            Condition {
                reason,
                message,
                since,
            },
        );
    }

    fn expire(&mut self, now: Timestamp) {
        self.unavailable.retain(|_, t| *t > now);
        self.blocks.retain(|_, t| *t > now);
        self.notices.retain(|_, n| n.expires_at > now);
        self.created_recently.retain(|_, t| *t > now);
        self.our_deletes.retain(|_, t| *t > now);
        self.name_cooldown.retain(|_, t| *t > now);
        for hold in self.holds.values_mut() {
            if hold.until.is_some_and(|t| t <= now) {
                hold.until = None;
            }
        }
        if self.holds.values().all(|h| h.until.is_none()) {
            self.conditions.remove(&ConditionReason::Throttled);
        }
    }

    // ---- classification and counting ----

    fn units(&self, vm: &VmObservation) -> u32 {
        match self.spec.target {
            Target::Vms(_) => 1,
            Target::Vcpus(_) => vm
                .tags
                .get(TAG_UNITS)
                .and_then(|u| u.parse().ok())
                .or_else(|| {
                    self.vcpus_by_size
                        .get(&vm.offering.size.to_ascii_lowercase())
                        .copied()
                })
                .unwrap_or(1)
                .max(1),
        }
    }

    fn classify(&self, name: &str, vm: &VmObservation, now: Timestamp) -> Class {
        let op = self.ops_by_vm.get(name).map(|op| self.ops[op].class);
        if op == Some(OpClass::Delete)
            || self.our_deletes.contains_key(name)
            || vm.provisioning == ProvisioningState::Deleting
        {
            return Class::Going;
        }
        let deallocate_pool = self.spec.eviction_policy == EvictionPolicy::Deallocate;
        let timed_out = self.given_up.contains(name)
            || self
                .restarts
                .get(name)
                .is_some_and(|r| r.since.plus(self.spec.restart_timeout) <= now);
        if op == Some(OpClass::Start) {
            return Class::Restarting;
        }
        if is_stopped(vm.power) {
            return if deallocate_pool && !timed_out {
                Class::Restarting
            } else {
                Class::Cleanup
            };
        }
        if is_stopping(vm.power) || self.notices.contains_key(name) {
            return if deallocate_pool && !timed_out {
                Class::Restarting
            } else {
                Class::Evicting
            };
        }
        if vm.provisioning == ProvisioningState::Failed && vm.power != PowerState::Running {
            return Class::Cleanup;
        }
        let running = vm.power == PowerState::Running;
        if running
            && self
                .unhealthy_since
                .get(name)
                .is_some_and(|t| t.plus(self.spec.unhealthy_grace) <= now)
        {
            return Class::Unhealthy;
        }
        Class::Live { running }
    }

    fn candidate_usable(&self, i: usize, priority: Priority, now: Timestamp) -> bool {
        let key = &self.keys[i];
        let c = &self.spec.candidates[i];
        if self.invalid.contains(&(key.clone(), priority)) {
            return false;
        }
        if self
            .unavailable
            .get(&(key.clone(), priority))
            .is_some_and(|t| *t > now)
        {
            return false;
        }
        match priority {
            Priority::Regular => true,
            Priority::Spot => {
                c.spot_capable
                    && match (c.spot_price, self.spec.max_price) {
                        (Some(p), crate::compute::MaxPrice::UsdPerHour(max)) => p <= max,
                        _ => true,
                    }
            }
        }
    }

    fn blocked(&self, i: usize) -> bool {
        let key = &self.keys[i];
        self.blocks.contains_key(&(key.region.clone(), None))
            || self
                .blocks
                .contains_key(&(key.region.clone(), Some(key.size.clone())))
    }

    /// The best spot candidate for one more VM, given the spot units already in each offering.
    fn pick_spot(
        &self,
        load: &BTreeMap<OfferingId, u32>,
        spot_units: u32,
        now: Timestamp,
    ) -> Option<usize> {
        let usable: Vec<usize> = (0..self.keys.len())
            .filter(|&i| self.candidate_usable(i, Priority::Spot, now))
            .collect();
        if usable.is_empty() {
            return None;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // bounded by units
        let cap =
            ((f64::from(spot_units) * self.spec.max_share.clamp(0.0, 1.0)).ceil() as u32).max(1);
        let distinct = usable.len() > 1;
        usable.into_iter().min_by_key(|&i| {
            let here = load.get(&self.keys[i]).copied().unwrap_or(0);
            let u = self.spec.units_of(self.spec.candidates[i].vcpus);
            let over = distinct && here + u > cap;
            // Unblocked before blocked; within the cap before over it; then rank (or, over the
            // cap, the least loaded).
            (
                self.blocked(i),
                over,
                if over { here } else { 0 },
                self.spec.candidates[i].rank,
                i,
            )
        })
    }

    fn pick_regular(&self, now: Timestamp) -> Option<usize> {
        (0..self.keys.len())
            .filter(|&i| self.candidate_usable(i, Priority::Regular, now))
            .min_by(|&a, &b| {
                let ca = &self.spec.candidates[a];
                let cb = &self.spec.candidates[b];
                let pa = ca.payg_price.unwrap_or(f64::INFINITY) / f64::from(ca.vcpus.max(1));
                let pb = cb.payg_price.unwrap_or(f64::INFINITY) / f64::from(cb.vcpus.max(1));
                pa.total_cmp(&pb)
                    .then(ca.rank.cmp(&cb.rank))
                    .then(a.cmp(&b))
            })
    }

    // ---- the step ----

    #[allow(clippy::too_many_lines)] // the plan reads best top to bottom
    fn step(&mut self, now: Timestamp) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.observe.in_flight && self.observe.next_at <= now {
            self.observe.in_flight = true;
            out.push(Action::Observe);
        }
        if !self.observed_once {
            return out;
        }
        let total = self.spec.target.units();
        let (want_regular, want_spot) = self.spec.baseline.split(total);

        // Classify and count.
        let mut occ_regular = 0u32;
        let mut occ_spot = 0u32;
        let mut running_total = 0u32;
        let mut load: BTreeMap<OfferingId, u32> = BTreeMap::new();
        let mut cleanup = Vec::new();
        let mut unhealthy = Vec::new();
        let mut to_start = Vec::new();
        let mut new_restarts = Vec::new();
        let mut given_up = Vec::new();
        let mut regular_running_vms = Vec::new();
        let mut spot_running_vms = Vec::new();
        for (name, vm) in &self.vms {
            let class = self.classify(name, vm, now);
            let u = self.units(vm);
            let occupies = matches!(class, Class::Live { .. } | Class::Restarting);
            if occupies {
                match vm.priority {
                    Priority::Regular => occ_regular += u,
                    Priority::Spot => {
                        occ_spot += u;
                        *load.entry(lower(&vm.offering)).or_default() += u;
                    }
                }
            }
            match class {
                Class::Live { running: true } => {
                    running_total += u;
                    match vm.priority {
                        Priority::Regular => regular_running_vms.push(name.clone()),
                        Priority::Spot => spot_running_vms.push(name.clone()),
                    }
                }
                Class::Cleanup => {
                    if self.restarts.contains_key(name) {
                        given_up.push(name.clone());
                    }
                    cleanup.push(name.clone());
                }
                Class::Unhealthy => unhealthy.push(name.clone()),
                Class::Restarting => {
                    if !self.restarts.contains_key(name) {
                        let since = self
                            .evicted_vms
                            .get(name)
                            .and_then(|id| self.evictions.get(id))
                            .map_or(now, |r| r.seen_at);
                        new_restarts.push((name.clone(), since));
                    }
                    if is_stopped(vm.power) && !self.ops_by_vm.contains_key(name) {
                        to_start.push(name.clone());
                    }
                }
                _ => {}
            }
        }
        for (name, since) in new_restarts {
            self.restarts.insert(
                name,
                Restart {
                    since,
                    attempts: 0,
                    next_at: now,
                },
            );
        }
        for name in given_up {
            self.give_up_restart(&name, now);
        }
        to_start.retain(|n| self.restarts.get(n).is_none_or(|r| r.next_at <= now));

        // Plan creates.
        let mut creates: Vec<PlannedCreate> = Vec::new();
        let mut unplaced = 0u32;
        let mut regular_missing = want_regular.saturating_sub(occ_regular);
        while regular_missing > 0 {
            let Some(i) = self.pick_regular(now) else {
                unplaced += regular_missing;
                break;
            };
            let u = self.spec.units_of(self.spec.candidates[i].vcpus);
            creates.push(PlannedCreate {
                candidate: i,
                priority: Priority::Regular,
                role: Role::Base,
                replaces_loss: false,
            });
            occ_regular += u;
            regular_missing = regular_missing.saturating_sub(u);
        }
        let mut missing = total.saturating_sub(occ_regular + occ_spot);
        while missing > 0 {
            let pick = self.pick_spot(&load, want_spot, now);
            let (i, priority, role) = match pick {
                Some(i) => (i, Priority::Spot, Role::Spot),
                None if self.spec.on_demand_fallback => match self.pick_regular(now) {
                    Some(i) => (i, Priority::Regular, Role::Fallback),
                    None => {
                        unplaced += missing;
                        break;
                    }
                },
                None => {
                    unplaced += missing;
                    break;
                }
            };
            let u = self.spec.units_of(self.spec.candidates[i].vcpus);
            if priority == Priority::Spot {
                *load.entry(self.keys[i].clone()).or_default() += u;
                occ_spot += u;
            } else {
                occ_regular += u;
            }
            creates.push(PlannedCreate {
                candidate: i,
                priority,
                role,
                replaces_loss: true,
            });
            missing = missing.saturating_sub(u);
        }
        // Give back fallback VMs: make spot replacements within the surge, delete the regular
        // ones once those run (below, as surplus).
        let mut excess_regular = occ_regular.saturating_sub(want_regular);
        let mut spot_short = want_spot.saturating_sub(occ_spot);
        let mut headroom =
            (total + self.spec.limits.max_surge).saturating_sub(occ_regular + occ_spot);
        while excess_regular > 0 && spot_short > 0 {
            let Some(i) = self.pick_spot(&load, want_spot, now) else {
                break;
            };
            let u = self.spec.units_of(self.spec.candidates[i].vcpus);
            if u > headroom {
                break;
            }
            headroom -= u;
            *load.entry(self.keys[i].clone()).or_default() += u;
            excess_regular = excess_regular.saturating_sub(u);
            spot_short = spot_short.saturating_sub(u);
            creates.push(PlannedCreate {
                candidate: i,
                priority: Priority::Spot,
                role: Role::Spot,
                replaces_loss: false,
            });
        }
        if unplaced > 0 {
            self.set_condition(
                ConditionReason::Unplaceable,
                format!(
                    "{unplaced} units cannot be placed: every candidate is unavailable (capacity, quota or invalid){}; widen the candidates{}",
                    if self.spec.on_demand_fallback { " for spot and regular" } else { "" },
                    if self.spec.on_demand_fallback { "" } else { " or enable on_demand_fallback" }
                ),
                now,
            );
        } else {
            self.conditions.remove(&ConditionReason::Unplaceable);
        }

        // Plan voluntary deletes: surplus of running units, fallback regular VMs first, never
        // below the regular baseline.
        let mut voluntary: Vec<String> = unhealthy;
        let mut surplus = running_total.saturating_sub(total);
        if surplus > 0 {
            let mut regular_victims = regular_running_vms;
            regular_victims.sort_by(|a, b| {
                let fa = self.vms[a].tags.get(TAG_ROLE).map(String::as_str) == Some("fallback");
                let fb = self.vms[b].tags.get(TAG_ROLE).map(String::as_str) == Some("fallback");
                fb.cmp(&fa).then(b.cmp(a))
            });
            let mut spot_victims = spot_running_vms;
            let rank_of = |name: &String| {
                let key = lower(&self.vms[name].offering);
                self.keys
                    .iter()
                    .position(|k| *k == key)
                    .map_or(u32::MAX, |i| self.spec.candidates[i].rank)
            };
            spot_victims.sort_by(|a, b| rank_of(b).cmp(&rank_of(a)).then(b.cmp(a)));
            for name in regular_victims.into_iter().chain(spot_victims) {
                let vm = &self.vms[&name];
                let u = self.units(vm);
                if u > surplus {
                    continue;
                }
                if vm.priority == Priority::Regular {
                    if occ_regular.saturating_sub(u) < want_regular {
                        continue;
                    }
                    occ_regular -= u;
                }
                surplus -= u;
                voluntary.push(name);
                if surplus == 0 {
                    break;
                }
            }
        }

        self.last_plan = PlanSummary {
            creates: u32::try_from(creates.len()).unwrap_or(u32::MAX)
                + self.in_flight(OpClass::Create),
            starts: u32::try_from(to_start.len()).unwrap_or(u32::MAX)
                + self.in_flight(OpClass::Start),
            deletes: u32::try_from(cleanup.len() + voluntary.len()).unwrap_or(u32::MAX)
                + self.in_flight(OpClass::Delete),
            unplaced_units: unplaced,
        };

        // Issue, most urgent first, within the concurrency bound and the class holds.
        let limit = self.spec.limits.max_concurrent_operations.max(1) as usize;
        for name in cleanup {
            if self.ops.len() >= limit {
                break;
            }
            if self.ops_by_vm.contains_key(&name) || self.held(OpClass::Delete, now) {
                continue;
            }
            out.push(self.issue_delete(&name, false, now));
        }
        for name in to_start {
            if self.ops.len() >= limit || self.held(OpClass::Start, now) {
                break;
            }
            out.push(self.issue_start(&name, now));
        }
        if !creates.is_empty() && !self.held(OpClass::Create, now) && self.ops.len() < limit {
            let mut free = self.free_ordinals();
            for p in creates {
                if self.ops.len() >= limit {
                    break;
                }
                let ordinal = free.next_free();
                out.push(self.issue_create(&p, ordinal, now));
            }
        }
        let budget = self.spec.limits.disruption_budget as usize;
        for name in voluntary {
            let disrupting = self.ops.values().filter(|f| f.voluntary).count();
            if self.ops.len() >= limit || disrupting >= budget || self.held(OpClass::Delete, now) {
                break;
            }
            if self.ops_by_vm.contains_key(&name) {
                continue;
            }
            out.push(self.issue_delete(&name, true, now));
        }
        out
    }

    /// A Deallocate VM given up on is redeployed elsewhere: its loss now awaits a new VM, and
    /// its offering is avoided like one that just evicted.
    fn give_up_restart(&mut self, name: &str, now: Timestamp) {
        if self.restarts.remove(name).is_none() {
            return;
        }
        self.given_up.insert(name.to_string());
        if let Some(id) = self.evicted_vms.remove(name) {
            self.awaiting_replacement.push_back(id);
        }
        let key = lower(&self.vms[name].offering);
        self.blocks.insert(
            (key.region, Some(key.size)),
            now.plus(self.spec.eviction_block_ttl),
        );
    }

    fn in_flight(&self, class: OpClass) -> u32 {
        u32::try_from(self.ops.values().filter(|f| f.class == class).count()).unwrap_or(u32::MAX)
    }

    fn held(&self, class: OpClass, now: Timestamp) -> bool {
        self.holds
            .get(&class)
            .and_then(|h| h.until)
            .is_some_and(|t| t > now)
    }

    fn ordinal_of(&self, name: &str) -> Option<u32> {
        name.strip_prefix(self.spec.name.as_str())?
            .strip_prefix('-')?
            .parse()
            .ok()
    }

    fn free_ordinals(&self) -> FreeOrdinals {
        let used: BTreeSet<u32> = self
            .vms
            .keys()
            .chain(self.our_deletes.keys())
            .chain(self.name_cooldown.keys())
            .chain(self.ops_by_vm.keys())
            .filter_map(|n| self.ordinal_of(n))
            .collect();
        FreeOrdinals { used, next: 0 }
    }

    /// The name of the VM in slot `ordinal`.
    #[must_use]
    pub fn vm_name(&self, ordinal: u32) -> String {
        format!("{}-{ordinal:04}", self.spec.name)
    }

    fn new_op(&mut self, class: OpClass, vm: &str, voluntary: bool, now: Timestamp) -> OpId {
        let op = self.next_op;
        self.next_op += 1;
        let (offering, priority) = self
            .vms
            .get(vm)
            .map_or((OfferingId::new("", ""), Priority::Spot), |v| {
                (v.offering.clone(), v.priority)
            });
        self.ops.insert(
            op,
            InFlight {
                class,
                vm: vm.to_string(),
                voluntary,
                started_at: now,
                offering,
                priority,
            },
        );
        self.ops_by_vm.insert(vm.to_string(), op);
        op
    }

    fn issue_delete(&mut self, name: &str, voluntary: bool, now: Timestamp) -> Action {
        let op = self.new_op(OpClass::Delete, name, voluntary, now);
        self.restarts.remove(name);
        Action::Delete {
            op,
            resource_group: self.vms[name].resource_group.clone(),
            name: name.to_string(),
        }
    }

    fn issue_start(&mut self, name: &str, now: Timestamp) -> Action {
        let op = self.new_op(OpClass::Start, name, false, now);
        Action::Start {
            op,
            resource_group: self.vms[name].resource_group.clone(),
            name: name.to_string(),
        }
    }

    fn issue_create(&mut self, p: &PlannedCreate, ordinal: u32, now: Timestamp) -> Action {
        let c = self.spec.candidates[p.candidate].clone();
        let name = self.vm_name(ordinal);
        let units = self.spec.units_of(c.vcpus);
        let mut tags = self.spec.template.tags.clone();
        tags.insert(TAG_POOL.to_string(), self.spec.name.clone());
        tags.insert(TAG_SLOT.to_string(), ordinal.to_string());
        tags.insert(TAG_ROLE.to_string(), p.role.as_str().to_string());
        tags.insert(TAG_UNITS.to_string(), units.to_string());
        let spot = p.priority == Priority::Spot;
        let spec = VmSpec {
            name: name.clone(),
            resource_group: self.spec.template.resource_group.clone(),
            offering: c.offering.clone(),
            priority: p.priority,
            eviction_policy: spot.then_some(self.spec.eviction_policy),
            max_price: spot.then_some(self.spec.max_price),
            image: self.spec.template.image.clone(),
            user_data: self.spec.template.user_data.clone(),
            user_assigned_identities: self.spec.template.user_assigned_identities.clone(),
            tags: tags.clone(),
        };
        // Until a listing shows it, the VM is what we asked for, being created.
        self.vms.insert(
            name.clone(),
            VmObservation {
                name: name.clone(),
                resource_group: spec.resource_group.clone(),
                id: String::new(),
                offering: c.offering,
                priority: p.priority,
                eviction_policy: spec.eviction_policy,
                max_price: spec.max_price,
                provisioning: ProvisioningState::Creating,
                power: PowerState::Unknown,
                tags,
                created_at: None,
            },
        );
        let op = self.new_op(OpClass::Create, &name, false, now);
        if p.replaces_loss {
            while let Some(id) = self.awaiting_replacement.pop_front() {
                if let Some(rec) = self.evictions.get_mut(&id) {
                    rec.replacement = Some(name.clone());
                    self.replacing.insert(name.clone(), id);
                    break;
                }
            }
        }
        Action::Create { op, spec }
    }
}

struct FreeOrdinals {
    used: BTreeSet<u32>,
    next: u32,
}

impl FreeOrdinals {
    fn next_free(&mut self) -> u32 {
        while self.used.contains(&self.next) {
            self.next += 1;
        }
        let n = self.next;
        self.used.insert(n);
        n
    }
}

#[cfg(test)]
mod tests;
