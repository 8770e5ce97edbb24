//! The pure spot-cloud model: offerings with capacity and prices over time, VMs with their
//! lifecycle and per-VM IMDS, evictions, billing and an append-only event log.
//!
//! Nothing here reads a clock or does I/O (trace files are read once, at construction).
//! Every operation takes `now`, first replays everything due up to `now` in time order
//! ([`SpotCloud::advance_to`]), then acts. Random draws come from one seeded `SplitMix64` in a
//! fixed order, so the same scenario, seed and calls give bit-for-bit the same log.
//!
//! Time advances in two ways: instants where something is due (an operation completes, an
//! eviction's `NotBefore` arrives, a scripted event or price step fires, a correlated follower
//! is evicted) and a fixed tick (`scenario.tick`) at which capacity is enforced and stochastic
//! evictions are drawn. What a client sees does not depend on how often it looks.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use spotkit_cloud::CapacityErrorCode;
use spotkit_core::Timestamp;
use spotkit_core::advisor::PlacementScore;
use spotkit_core::backoff::SplitMix64;
use spotkit_core::compute::{
    EvictionPolicy, MaxPrice, OfferingId, PowerState, Priority, ProvisioningState, VmObservation,
    VmSpec,
};

use super::error::SimError;
use super::scenario::{
    CapacityDriverSpec, OfferingSpec, Scenario, ScenarioError, ScriptedEvent, ScriptedKind,
    SizeSpec,
};
use super::trace::CapacityTrace;
use crate::catalog::{CatalogSnapshot, OfferingInfo, QuotaInfo, RegionInfo, SizeInfo};
use crate::imds::{ImdsConfig, ImdsModel, ScheduleRequest};

/// The quota family name of the Spot vCPU quota.
pub const SPOT_QUOTA_FAMILY: &str = "LowPriorityCores";

/// 2026-01-01T00:00:00Z: where the deterministic mode starts unless the scenario says.
pub const DEFAULT_START_UNIX: i64 = 1_767_225_600;

/// Hours in a billing month (managed-disk prices are per month).
const HOURS_PER_MONTH: f64 = 730.0;

/// One VM's IMDS, shared with the HTTP facade that serves it.
pub type SharedImds = Arc<Mutex<ImdsModel>>;

type VmKey = (String, String);

fn key(resource_group: &str, name: &str) -> VmKey {
    (
        resource_group.to_ascii_lowercase(),
        name.to_ascii_lowercase(),
    )
}

/// Why a VM is being evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvictionReason {
    /// Capacity fell below the VMs running (trace, scripted capacity, reclaim).
    Capacity,
    /// Drawn at the band's hourly rate.
    Band,
    /// Followed another eviction of the same offering.
    Correlated,
    /// The spot price rose above the VM's max price.
    Price,
    /// Scripted or injected.
    Scripted,
    /// `simulateEviction`.
    Simulated,
    /// Evicted right after creation (`after_create_probability`).
    AfterCreate,
}

/// What kind of entry a [`LogEntry`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    /// A PUT was accepted.
    CreateAccepted,
    /// A create completed.
    Created,
    /// A request was refused (detail: the code).
    Refused,
    /// A start was accepted.
    StartAccepted,
    /// A start completed.
    Started,
    /// A deallocate was accepted.
    DeallocateAccepted,
    /// A VM is deallocated (by the user).
    Deallocated,
    /// A delete was accepted.
    DeleteAccepted,
    /// A VM is gone (by the user).
    Deleted,
    /// A Preempt was scheduled on the VM's IMDS.
    EvictionNoticed,
    /// The eviction happened (detail: deleted or deallocated).
    Evicted,
    /// An offering's spot capacity changed.
    CapacityChanged,
    /// An offering's spot price changed.
    PriceChanged,
    /// A scripted or injected event fired.
    Scripted,
}

/// One entry of the append-only event log, the deterministic mode's output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogEntry {
    /// When (simulated), Unix milliseconds.
    pub at_unix_ms: i64,
    /// What.
    pub kind: LogKind,
    /// The VM, if one.
    pub vm: Option<String>,
    /// The offering (`region/size`), if one.
    pub offering: Option<String>,
    /// Details.
    pub detail: String,
}

/// The kind of a long-running operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// PUT.
    Create,
    /// POST start.
    Start,
    /// POST deallocate.
    Deallocate,
    /// DELETE.
    Delete,
}

/// An operation's status, as `Azure-AsyncOperation` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum OpStatus {
    /// Running.
    InProgress,
    /// Done.
    Succeeded,
    /// Failed (see the error).
    Failed,
    /// Superseded (the VM was deleted or evicted meanwhile).
    Canceled,
}

impl OpStatus {
    /// ARM's spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            OpStatus::InProgress => "InProgress",
            OpStatus::Succeeded => "Succeeded",
            OpStatus::Failed => "Failed",
            OpStatus::Canceled => "Canceled",
        }
    }
}

/// A long-running operation.
#[derive(Clone, Debug, PartialEq)]
pub struct OpView {
    /// Operation id (GUID).
    pub id: String,
    /// What it does.
    pub kind: OpKind,
    /// On which VM.
    pub vm_name: String,
    /// The VM's region (status URLs are per location).
    pub region: String,
    /// Accepted at.
    pub started_at: Timestamp,
    /// Ends (or ended) at.
    pub completes_at: Timestamp,
    /// Status now.
    pub status: OpStatus,
    /// Why it failed or was canceled.
    pub error: Option<(String, String)>,
}

/// What a create-or-update request carries beyond the domain spec.
#[derive(Clone, Debug, PartialEq)]
pub struct CreateVm {
    /// The subscription in the request path.
    pub subscription: String,
    /// The VM.
    pub spec: VmSpec,
    /// Requested availability zone.
    pub zone: Option<String>,
    /// The request's `properties`, echoed back by GET (the facade's business; may be `Null`).
    pub properties: serde_json::Value,
}

/// The outcome of an accepted create-or-update.
#[derive(Clone, Debug)]
pub struct CreateOutcome {
    /// The VM as it is now.
    pub vm: VmView,
    /// Whether the VM was created (201) rather than updated (200).
    pub created: bool,
    /// The operation (None for an update that changes only tags).
    pub op: Option<OpView>,
}

/// A VM as the model holds it.
#[derive(Clone, Debug)]
pub struct VmView {
    /// Subscription.
    pub subscription: String,
    /// The spec it was created with (tags updated).
    pub spec: VmSpec,
    /// Zone, if any.
    pub zone: Option<String>,
    /// `vmId`.
    pub vm_id: String,
    /// Created at.
    pub created_at: Timestamp,
    /// Provisioning state.
    pub provisioning: ProvisioningState,
    /// Power state.
    pub power: PowerState,
    /// `NotBefore` of a pending eviction.
    pub eviction_not_before: Option<Timestamp>,
    /// OS disk size.
    pub os_disk_gib: u32,
    /// The request's `properties`.
    pub properties: serde_json::Value,
    /// How many times it was evicted.
    pub evictions: u32,
}

impl VmView {
    /// The ARM id.
    #[must_use]
    pub fn arm_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/{}",
            self.subscription, self.spec.resource_group, self.spec.name
        )
    }

    /// As the orchestrator observes it.
    #[must_use]
    pub fn observation(&self) -> VmObservation {
        VmObservation {
            name: self.spec.name.clone(),
            resource_group: self.spec.resource_group.clone(),
            id: self.arm_id(),
            offering: self.spec.offering.clone(),
            priority: self.spec.priority,
            eviction_policy: self.spec.eviction_policy,
            max_price: self.spec.max_price,
            provisioning: self.provisioning,
            power: self.power,
            tags: self.spec.tags.clone(),
            created_at: Some(self.created_at),
        }
    }
}

/// One VM's charges.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BillLine {
    /// VM name.
    pub vm: String,
    /// Resource group.
    pub resource_group: String,
    /// `vmId` (a recreated VM of the same name is a new line).
    pub vm_id: String,
    /// `region/size`.
    pub offering: String,
    /// `Spot` or `Regular`.
    pub priority: String,
    /// Compute charges, USD.
    pub compute_usd: f64,
    /// Disk charges, USD.
    pub disk_usd: f64,
    /// Seconds of compute billed.
    pub compute_seconds: f64,
    /// Seconds of disk billed.
    pub disk_seconds: f64,
    /// Compute intervals: (USD/hour, milliseconds), consecutive intervals at one rate merged.
    pub compute_segments: Vec<(f64, u64)>,
    /// Disk USD/hour while the VM exists.
    pub disk_usd_per_hour: f64,
    /// Whether the VM is gone.
    pub deleted: bool,
}

/// The bill at one instant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bill {
    /// When, Unix milliseconds.
    pub at_unix_ms: i64,
    /// One line per VM ever created, in creation order.
    pub lines: Vec<BillLine>,
    /// Sum of compute.
    pub compute_usd: f64,
    /// Sum of disks.
    pub disk_usd: f64,
    /// Everything.
    pub total_usd: f64,
}

#[derive(Clone, Debug)]
struct PendingEviction {
    not_before: Timestamp,
}

#[derive(Debug)]
struct VmRecord {
    view: VmView,
    offering: usize,
    allocated: bool,
    eviction: Option<PendingEviction>,
    op: Option<usize>,
    imds: SharedImds,
    bill: usize,
}

#[derive(Debug)]
struct Ledger {
    line: BillLine,
    compute_ms: u64,
    disk_ms: u64,
    last_accrued: Timestamp,
}

#[derive(Debug)]
struct Operation {
    view: OpView,
    vm: VmKey,
}

#[derive(Debug)]
struct OfferingState {
    id: OfferingId,
    size: SizeSpec,
    spec: OfferingSpec,
    trace: Option<CapacityTrace>,
    capacity_override: Option<(u32, Option<Timestamp>)>,
    reclaimed: Vec<(Timestamp, u32)>,
    prices: Vec<(Timestamp, f64)>,
    /// The latest price change already in the log (scripted changes log themselves).
    price_logged_at: Timestamp,
    last_logged_capacity: Option<u32>,
}

/// The simulated cloud.
#[derive(Debug)]
pub struct SpotCloud {
    scenario: Scenario,
    start: Timestamp,
    now: Timestamp,
    next_tick: Timestamp,
    rng: SplitMix64,
    offerings: Vec<OfferingState>,
    vms: BTreeMap<VmKey, VmRecord>,
    ops: Vec<Operation>,
    followers: Vec<(Timestamp, VmKey)>,
    script: Vec<ScriptedEvent>,
    script_next: usize,
    ledgers: Vec<Ledger>,
    log: Vec<LogEntry>,
}

fn lock_imds(imds: &SharedImds) -> std::sync::MutexGuard<'_, ImdsModel> {
    imds.lock().unwrap_or_else(PoisonError::into_inner)
}

fn guid(rng: &mut SplitMix64) -> String {
    uuid::Uuid::from_u64_pair(rng.next_u64(), rng.next_u64()).to_string()
}

fn uniform(rng: &mut SplitMix64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let value = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    value
}

fn millis_between(later: Timestamp, earlier: Timestamp) -> u64 {
    u64::try_from(later.since(earlier).as_millis()).unwrap_or(u64::MAX)
}

impl SpotCloud {
    /// A cloud for `scenario` starting at `start`, drawing from `seed`. Trace paths are
    /// relative to `traces_dir`.
    ///
    /// # Errors
    /// If a trace cannot be loaded.
    pub fn new(
        scenario: Scenario,
        seed: u64,
        start: Timestamp,
        traces_dir: &Path,
    ) -> Result<Self, ScenarioError> {
        let mut offerings = Vec::with_capacity(scenario.offerings.len());
        for spec in &scenario.offerings {
            let size = scenario
                .size(&spec.size)
                .cloned()
                .ok_or_else(|| ScenarioError::Invalid(format!("unknown size {}", spec.size)))?;
            let trace = match &spec.driver {
                CapacityDriverSpec::Trace {
                    file,
                    polarity,
                    capacity_scale,
                    start_offset,
                } => Some(CapacityTrace::load(
                    traces_dir,
                    file,
                    *polarity,
                    *capacity_scale,
                    start_offset.unwrap_or_default(),
                )?),
                CapacityDriverSpec::Band | CapacityDriverSpec::Steady => None,
            };
            let base_spot = spec
                .spot
                .unwrap_or_else(|| spec.payg * spec.spot_ratio.unwrap_or(1.0));
            let mut prices = vec![(start, base_spot)];
            let mut steps = spec.price_steps.clone();
            steps.sort_by_key(|step| step.at);
            prices.extend(steps.iter().map(|step| (start.plus(step.at), step.spot)));
            offerings.push(OfferingState {
                id: OfferingId::new(size.name.clone(), spec.region.clone()),
                size,
                spec: spec.clone(),
                trace,
                capacity_override: None,
                reclaimed: Vec::new(),
                prices,
                price_logged_at: start,
                last_logged_capacity: None,
            });
        }
        let mut script = scenario.events.clone();
        script.sort_by_key(|event| event.at);
        let tick = scenario.tick;
        let mut cloud = Self {
            scenario,
            start,
            now: start,
            next_tick: start.plus(tick),
            rng: SplitMix64::new(seed),
            offerings,
            vms: BTreeMap::new(),
            ops: Vec::new(),
            followers: Vec::new(),
            script,
            script_next: 0,
            ledgers: Vec::new(),
            log: Vec::new(),
        };
        for index in 0..cloud.offerings.len() {
            cloud.log_capacity(index, start);
        }
        Ok(cloud)
    }

    /// The scenario.
    #[must_use]
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The simulated start.
    #[must_use]
    pub fn start_time(&self) -> Timestamp {
        self.start
    }

    /// How far the model has been advanced.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The event log so far.
    #[must_use]
    pub fn log(&self) -> &[LogEntry] {
        &self.log
    }

    // ----- time -----

    /// The next instant at which something is due (at the latest the next tick).
    #[must_use]
    pub fn next_due(&self) -> Timestamp {
        let mut due = self.next_tick;
        let mut consider = |at: Timestamp| {
            if at < due {
                due = at;
            }
        };
        for op in &self.ops {
            if op.view.status == OpStatus::InProgress {
                consider(op.view.completes_at);
            }
        }
        for record in self.vms.values() {
            if let Some(eviction) = &record.eviction {
                consider(eviction.not_before);
            }
        }
        for (at, _) in &self.followers {
            consider(*at);
        }
        if let Some(event) = self.script.get(self.script_next) {
            consider(self.start.plus(event.at));
        }
        for offering in &self.offerings {
            if let Some((at, _)) = offering.prices.iter().find(|(at, _)| *at > self.now) {
                consider(*at);
            }
        }
        due.max(self.now)
    }

    /// Replays everything due up to `now`, in time order. Earlier times than the model's are
    /// ignored (time never goes back).
    pub fn advance_to(&mut self, now: Timestamp) {
        loop {
            let due = self.next_due();
            if due > now {
                break;
            }
            self.process_instant(due);
        }
        if now > self.now {
            self.accrue_all(now);
            self.now = now;
        }
    }

    fn process_instant(&mut self, t: Timestamp) {
        self.accrue_all(t);
        self.now = t;
        // Operations completing now, in acceptance order.
        for index in 0..self.ops.len() {
            let op = &self.ops[index];
            if op.view.status == OpStatus::InProgress && op.view.completes_at <= t {
                self.complete_op(index, t);
            }
        }
        // Evictions whose NotBefore arrived.
        let due: Vec<VmKey> = self
            .vms
            .iter()
            .filter(|(_, record)| {
                record
                    .eviction
                    .as_ref()
                    .is_some_and(|eviction| eviction.not_before <= t)
            })
            .map(|(key, _)| key.clone())
            .collect();
        for vm in due {
            self.apply_eviction(&vm, t);
        }
        // Scripted events.
        while let Some(event) = self.script.get(self.script_next) {
            if self.start.plus(event.at) > t {
                break;
            }
            let event = event.clone();
            self.script_next += 1;
            self.fire(&event, t);
        }
        // Correlated followers.
        let mut followers = std::mem::take(&mut self.followers);
        followers.sort();
        let (now_due, later): (Vec<_>, Vec<_>) =
            followers.into_iter().partition(|(at, _)| *at <= t);
        self.followers = later;
        for (_, vm) in now_due {
            if self.evictable(&vm) {
                let notice = self.draw_notice();
                let offering = self.vms[&vm].offering;
                self.offerings[offering]
                    .reclaimed
                    .push((t.plus(self.scenario.eviction.reclaim), 1));
                self.begin_eviction(&vm, t, notice, EvictionReason::Correlated);
            }
        }
        // Price steps of the scenario taking effect now.
        for index in 0..self.offerings.len() {
            let offering = &self.offerings[index];
            if let Some((at, price)) = offering.prices.iter().rev().find(|(at, _)| *at <= t)
                && *at > offering.price_logged_at
            {
                let price = *price;
                self.offerings[index].price_logged_at = t;
                self.log_entry(
                    t,
                    LogKind::PriceChanged,
                    None,
                    Some(index),
                    format!("spot price now {price} USD/h"),
                );
            }
        }
        self.evict_above_max_price(t);
        if self.next_tick <= t {
            for index in 0..self.offerings.len() {
                self.enforce_capacity(index, t);
            }
            self.draw_band_evictions(t);
            self.next_tick = self.next_tick.plus(self.scenario.tick);
        }
    }

    // ----- capacity and prices -----

    /// Spot VMs of offering `index` obtainable at `t` in total.
    fn spot_capacity(&self, index: usize, t: Timestamp) -> u32 {
        let offering = &self.offerings[index];
        let base = match offering.capacity_override {
            Some((capacity, until)) if until.is_none_or(|until| t < until) => capacity,
            _ => match &offering.trace {
                Some(trace) => trace.capacity_at(t.since(self.start)),
                None => offering.spec.capacity,
            },
        };
        let reclaimed: u32 = offering
            .reclaimed
            .iter()
            .filter(|(until, _)| t < *until)
            .map(|(_, count)| count)
            .sum();
        base.saturating_sub(reclaimed)
    }

    fn spot_price(&self, index: usize, t: Timestamp) -> f64 {
        let prices = &self.offerings[index].prices;
        prices
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .map_or(prices[0].1, |(_, price)| *price)
    }

    fn allocated(&self, index: usize, priority: Priority) -> (u32, u32) {
        let mut allocated = 0;
        let mut leaving = 0;
        for record in self.vms.values() {
            if record.offering == index && record.view.spec.priority == priority && record.allocated
            {
                allocated += 1;
                if record.eviction.is_some() {
                    leaving += 1;
                }
            }
        }
        (allocated, leaving)
    }

    fn offering_index(&self, offering: &OfferingId) -> Option<usize> {
        self.offerings.iter().position(|state| {
            state.id.size.eq_ignore_ascii_case(&offering.size)
                && state.id.region.eq_ignore_ascii_case(&offering.region)
        })
    }

    fn log_capacity(&mut self, index: usize, t: Timestamp) {
        let capacity = self.spot_capacity(index, t);
        if self.offerings[index].last_logged_capacity != Some(capacity) {
            self.offerings[index].last_logged_capacity = Some(capacity);
            self.log_entry(
                t,
                LogKind::CapacityChanged,
                None,
                Some(index),
                format!("spot capacity {capacity} VMs"),
            );
        }
    }

    /// Evicts running Spot VMs beyond the offering's capacity.
    fn enforce_capacity(&mut self, index: usize, t: Timestamp) {
        self.log_capacity(index, t);
        let capacity = self.spot_capacity(index, t);
        let (allocated, leaving) = self.allocated(index, Priority::Spot);
        let staying = allocated - leaving;
        if staying <= capacity {
            return;
        }
        let mut candidates = self.running_spot(index);
        let excess = (staying - capacity) as usize;
        for _ in 0..excess.min(candidates.len()) {
            let pick = usize::try_from(self.rng.next_u64() % candidates.len() as u64).unwrap_or(0);
            let vm = candidates.swap_remove(pick);
            let notice = self.draw_notice();
            self.begin_eviction(&vm, t, notice, EvictionReason::Capacity);
        }
    }

    fn running_spot(&self, index: usize) -> Vec<VmKey> {
        self.vms
            .iter()
            .filter(|(_, record)| {
                record.offering == index
                    && record.view.spec.priority == Priority::Spot
                    && record.allocated
                    && record.view.power == PowerState::Running
                    && record.eviction.is_none()
            })
            .map(|(key, _)| key.clone())
            .collect()
    }

    fn evictable(&self, vm: &VmKey) -> bool {
        self.vms.get(vm).is_some_and(|record| {
            record.view.spec.priority == Priority::Spot
                && record.allocated
                && record.view.power == PowerState::Running
                && record.eviction.is_none()
        })
    }

    fn draw_band_evictions(&mut self, t: Timestamp) {
        let tick_hours = self.scenario.tick.as_secs_f64() / 3600.0;
        for index in 0..self.offerings.len() {
            let offering = &self.offerings[index];
            let Some(band) = offering.spec.band else {
                continue;
            };
            if !matches!(offering.spec.driver, CapacityDriverSpec::Band) {
                continue;
            }
            let rate = (band.hourly_rate() * self.scenario.eviction.rate_scale).clamp(0.0, 1.0);
            if rate <= 0.0 {
                continue;
            }
            let per_tick = 1.0 - (1.0 - rate).powf(tick_hours);
            let candidates = self.running_spot(index);
            for vm in &candidates {
                if !self.evictable(vm) || uniform(&mut self.rng) >= per_tick {
                    continue;
                }
                let notice = self.draw_notice();
                self.offerings[index]
                    .reclaimed
                    .push((t.plus(self.scenario.eviction.reclaim), 1));
                self.begin_eviction(vm, t, notice, EvictionReason::Band);
                let correlation = self.scenario.eviction.correlation;
                let window = self.scenario.eviction.correlation_window;
                for other in &candidates {
                    if other == vm
                        || !self.evictable(other)
                        || self.followers.iter().any(|(_, follower)| follower == other)
                    {
                        continue;
                    }
                    if uniform(&mut self.rng) < correlation {
                        let delay = window.mul_f64(uniform(&mut self.rng));
                        self.followers.push((t.plus(delay), other.clone()));
                    }
                }
            }
        }
    }

    fn evict_above_max_price(&mut self, t: Timestamp) {
        let victims: Vec<VmKey> = self
            .vms
            .iter()
            .filter(|(_, record)| {
                record.allocated
                    && record.eviction.is_none()
                    && record.view.power == PowerState::Running
                    && matches!(record.view.spec.max_price, Some(MaxPrice::UsdPerHour(max))
                        if self.spot_price(record.offering, t) > max)
            })
            .map(|(key, _)| key.clone())
            .collect();
        for vm in victims {
            let notice = self.draw_notice();
            self.begin_eviction(&vm, t, notice, EvictionReason::Price);
        }
    }

    fn draw_notice(&mut self) -> Duration {
        let notices = &self.scenario.eviction.notices;
        let total: f64 = notices.iter().map(|notice| notice.weight.max(0.0)).sum();
        if notices.is_empty() || total <= 0.0 {
            return Duration::from_secs(30);
        }
        let mut point = uniform(&mut self.rng) * total;
        for notice in notices {
            point -= notice.weight.max(0.0);
            if point < 0.0 {
                return notice.notice;
            }
        }
        notices[notices.len() - 1].notice
    }

    // ----- evictions -----

    fn begin_eviction(
        &mut self,
        vm: &VmKey,
        t: Timestamp,
        notice: Duration,
        reason: EvictionReason,
    ) {
        let Some(record) = self.vms.get_mut(vm) else {
            return;
        };
        let request = ScheduleRequest::preempt(notice);
        let not_before = request.not_before(t).unwrap_or(t);
        lock_imds(&record.imds).schedule(request, t);
        record.eviction = Some(PendingEviction { not_before });
        record.view.eviction_not_before = Some(not_before);
        let name = record.view.spec.name.clone();
        let offering = record.offering;
        let policy = record
            .view
            .spec
            .eviction_policy
            .unwrap_or(EvictionPolicy::Deallocate);
        self.log_entry(
            t,
            LogKind::EvictionNoticed,
            Some(name),
            Some(offering),
            format!(
                "reason {reason:?}, notice {}, policy {policy:?}, not_before {}",
                humantime::format_duration(notice),
                not_before.unix_millis()
            ),
        );
    }

    fn apply_eviction(&mut self, vm: &VmKey, t: Timestamp) {
        let Some(record) = self.vms.get_mut(vm) else {
            return;
        };
        record.eviction = None;
        record.view.eviction_not_before = None;
        if !record.allocated {
            return;
        }
        if let Some(op) = record.op
            && self.ops[op].view.kind == OpKind::Delete
        {
            // The user is deleting it anyway: the eviction only makes that happen sooner.
            self.ops[op].view.completes_at = t;
            self.complete_op(op, t);
            return;
        }
        if let Some(op) = record.op.take() {
            let op = &mut self.ops[op].view;
            op.status = OpStatus::Canceled;
            op.completes_at = t;
            op.error = Some((
                "OperationPreempted".to_owned(),
                "The operation was preempted by a Spot eviction.".to_owned(),
            ));
        }
        record.view.evictions += 1;
        let name = record.view.spec.name.clone();
        let offering = record.offering;
        match record
            .view
            .spec
            .eviction_policy
            .unwrap_or(EvictionPolicy::Deallocate)
        {
            EvictionPolicy::Delete => {
                self.remove_vm(vm);
                self.log_entry(
                    t,
                    LogKind::Evicted,
                    Some(name),
                    Some(offering),
                    "deleted".to_owned(),
                );
            }
            EvictionPolicy::Deallocate => {
                record.allocated = false;
                record.view.power = PowerState::Deallocated;
                record.view.provisioning = ProvisioningState::Succeeded;
                self.log_entry(
                    t,
                    LogKind::Evicted,
                    Some(name),
                    Some(offering),
                    "deallocated".to_owned(),
                );
            }
        }
    }

    fn remove_vm(&mut self, vm: &VmKey) {
        if let Some(record) = self.vms.remove(vm) {
            self.ledgers[record.bill].line.deleted = true;
            if let Some(op) = record.op {
                let op = &mut self.ops[op].view;
                if op.status == OpStatus::InProgress {
                    op.status = OpStatus::Canceled;
                    op.completes_at = self.now;
                }
            }
        }
    }

    fn fire(&mut self, event: &ScriptedEvent, t: Timestamp) {
        let selected: Vec<usize> = (0..self.offerings.len())
            .filter(|index| {
                let id = &self.offerings[*index].id;
                event
                    .region
                    .as_ref()
                    .is_none_or(|region| region.eq_ignore_ascii_case(&id.region))
                    && event
                        .size
                        .as_ref()
                        .is_none_or(|size| size.eq_ignore_ascii_case(&id.size))
            })
            .collect();
        self.log_entry(
            t,
            LogKind::Scripted,
            None,
            None,
            format!(
                "{:?} on {} offering(s){}",
                event.kind,
                selected.len(),
                event
                    .region
                    .as_ref()
                    .map(|region| format!(" in {region}"))
                    .unwrap_or_default()
            ),
        );
        match event.kind {
            ScriptedKind::Evict => {
                let mut candidates: Vec<VmKey> = selected
                    .iter()
                    .flat_map(|index| self.running_spot(*index))
                    .collect();
                let count = event
                    .count
                    .map_or(candidates.len(), |count| count as usize)
                    .min(candidates.len());
                for _ in 0..count {
                    let pick =
                        usize::try_from(self.rng.next_u64() % candidates.len() as u64).unwrap_or(0);
                    let vm = candidates.swap_remove(pick);
                    let notice = event.notice.unwrap_or_else(|| self.draw_notice());
                    self.begin_eviction(&vm, t, notice, EvictionReason::Scripted);
                }
            }
            ScriptedKind::Capacity => {
                let capacity = event.capacity.unwrap_or(0);
                for index in selected {
                    self.offerings[index].capacity_override =
                        Some((capacity, event.duration.map(|duration| t.plus(duration))));
                    self.enforce_capacity(index, t);
                }
            }
            ScriptedKind::Price => {
                let price = event.spot.unwrap_or(0.0);
                for index in selected {
                    let prices = &mut self.offerings[index].prices;
                    // Replaces the price from now until the next scheduled step.
                    prices.retain(|(at, _)| *at != t);
                    let position = prices.partition_point(|(at, _)| *at < t);
                    prices.insert(position, (t, price));
                    self.offerings[index].price_logged_at = t;
                    self.log_entry(
                        t,
                        LogKind::PriceChanged,
                        None,
                        Some(index),
                        format!("spot price now {price} USD/h"),
                    );
                }
                self.evict_above_max_price(t);
            }
        }
    }

    /// Fires `event` now (its `at` is ignored): the admin API's injection.
    pub fn inject(&mut self, event: &ScriptedEvent, now: Timestamp) {
        self.advance_to(now);
        let t = self.now;
        self.fire(event, t);
    }

    // ----- billing -----

    fn compute_rate(&self, record: &VmRecord, t: Timestamp) -> f64 {
        let billed = matches!(
            record.view.power,
            PowerState::Running
                | PowerState::Stopping
                | PowerState::Stopped
                | PowerState::Deallocating
        ) && record.allocated;
        if !billed {
            return 0.0;
        }
        let payg = self.offerings[record.offering].spec.payg;
        match record.view.spec.priority {
            Priority::Regular => payg,
            Priority::Spot => self.spot_price(record.offering, t).min(payg),
        }
    }

    fn accrue_all(&mut self, t: Timestamp) {
        let updates: Vec<(usize, f64, bool)> = self
            .vms
            .values()
            .map(|record| {
                let disk = record.view.provisioning != ProvisioningState::Creating;
                (record.bill, self.compute_rate(record, self.now), disk)
            })
            .collect();
        for (bill, rate, disk) in updates {
            let ledger = &mut self.ledgers[bill];
            let elapsed = millis_between(t, ledger.last_accrued);
            ledger.last_accrued = ledger.last_accrued.max(t);
            if elapsed == 0 {
                continue;
            }
            if rate > 0.0 {
                ledger.compute_ms += elapsed;
                match ledger.line.compute_segments.last_mut() {
                    Some((last_rate, millis)) if last_rate.to_bits() == rate.to_bits() => {
                        *millis += elapsed;
                    }
                    _ => ledger.line.compute_segments.push((rate, elapsed)),
                }
            }
            if disk {
                ledger.disk_ms += elapsed;
            }
        }
    }

    /// The bill at `now` (advancing the model first).
    pub fn bill(&mut self, now: Timestamp) -> Bill {
        self.advance_to(now);
        let lines: Vec<BillLine> = self
            .ledgers
            .iter()
            .map(|ledger| {
                let mut line = ledger.line.clone();
                line.compute_usd = line
                    .compute_segments
                    .iter()
                    .map(|(rate, millis)| rate * (*millis as f64) / 3_600_000.0)
                    .sum();
                line.disk_usd = line.disk_usd_per_hour * (ledger.disk_ms as f64) / 3_600_000.0;
                line.compute_seconds = ledger.compute_ms as f64 / 1000.0;
                line.disk_seconds = ledger.disk_ms as f64 / 1000.0;
                line
            })
            .collect();
        let compute_usd = lines.iter().map(|line| line.compute_usd).sum();
        let disk_usd = lines.iter().map(|line| line.disk_usd).sum();
        Bill {
            at_unix_ms: self.now.unix_millis(),
            lines,
            compute_usd,
            disk_usd,
            total_usd: compute_usd + disk_usd,
        }
    }

    // ----- operations -----

    fn new_op(&mut self, kind: OpKind, vm: &VmKey, t: Timestamp, takes: Duration) -> usize {
        let id = guid(&mut self.rng);
        let record = &self.vms[vm];
        let region = record.view.spec.offering.region.clone();
        let vm_name = record.view.spec.name.clone();
        let status = if takes.is_zero() {
            OpStatus::Succeeded
        } else {
            OpStatus::InProgress
        };
        self.ops.push(Operation {
            view: OpView {
                id,
                kind,
                vm_name,
                region,
                started_at: t,
                completes_at: t.plus(takes),
                status,
                error: None,
            },
            vm: vm.clone(),
        });
        let index = self.ops.len() - 1;
        if status == OpStatus::InProgress
            && let Some(record) = self.vms.get_mut(vm)
        {
            record.op = Some(index);
        }
        index
    }

    fn complete_op(&mut self, index: usize, t: Timestamp) {
        let kind = self.ops[index].view.kind;
        let vm = self.ops[index].vm.clone();
        self.ops[index].view.status = OpStatus::Succeeded;
        let Some(record) = self.vms.get_mut(&vm) else {
            return;
        };
        if record.op == Some(index) {
            record.op = None;
        }
        let name = record.view.spec.name.clone();
        let offering = record.offering;
        match kind {
            OpKind::Create | OpKind::Start => {
                record.view.provisioning = ProvisioningState::Succeeded;
                record.view.power = PowerState::Running;
                let (log_kind, spot) = (
                    if kind == OpKind::Create {
                        LogKind::Created
                    } else {
                        LogKind::Started
                    },
                    record.view.spec.priority == Priority::Spot,
                );
                self.log_entry(t, log_kind, Some(name), Some(offering), String::new());
                let probability = self.scenario.eviction.after_create_probability;
                if kind == OpKind::Create
                    && spot
                    && probability > 0.0
                    && uniform(&mut self.rng) < probability
                {
                    let notice = self.draw_notice();
                    self.begin_eviction(&vm, t, notice, EvictionReason::AfterCreate);
                }
            }
            OpKind::Deallocate => {
                record.view.provisioning = ProvisioningState::Succeeded;
                record.view.power = PowerState::Deallocated;
                record.allocated = false;
                record.eviction = None;
                record.view.eviction_not_before = None;
                self.log_entry(
                    t,
                    LogKind::Deallocated,
                    Some(name),
                    Some(offering),
                    String::new(),
                );
            }
            OpKind::Delete => {
                self.remove_vm(&vm);
                self.log_entry(
                    t,
                    LogKind::Deleted,
                    Some(name),
                    Some(offering),
                    String::new(),
                );
            }
        }
    }

    fn refuse(&mut self, t: Timestamp, name: &str, error: SimError) -> SimError {
        self.log_entry(
            t,
            LogKind::Refused,
            Some(name.to_owned()),
            None,
            format!("{}: {error}", error.arm_code()),
        );
        error
    }

    fn quota_check(&self, spec: &VmSpec, size: &SizeSpec) -> Result<(), SimError> {
        let region = &spec.offering.region;
        let family = match spec.priority {
            Priority::Spot => SPOT_QUOTA_FAMILY,
            Priority::Regular => size.family.as_str(),
        };
        let Some(quota) = self.scenario.quotas.iter().find(|quota| {
            quota.region.eq_ignore_ascii_case(region) && quota.family.eq_ignore_ascii_case(family)
        }) else {
            return Ok(());
        };
        let used = self.quota_used(region, family);
        if used + size.vcpus > quota.limit {
            let what = if family == SPOT_QUOTA_FAMILY {
                "LowPriorityCores".to_owned()
            } else {
                format!("{family} Cores")
            };
            return Err(SimError::Quota {
                offering: spec.offering.clone(),
                message: format!(
                    "Operation could not be completed as it results in exceeding approved {what} quota. Additional details - Deployment Model: Resource Manager, Location: {region}, Current Limit: {}, Current Usage: {used}, Additional Required: {}, (Minimum) New Limit Required: {}. Submit a request for Quota increase at https://aka.ms/ProdportalCRP/#blade/Microsoft_Azure_Capacity/UsageAndQuota.ReactView",
                    quota.limit,
                    size.vcpus,
                    used + size.vcpus
                ),
            });
        }
        Ok(())
    }

    fn quota_used(&self, region: &str, family: &str) -> u32 {
        self.vms
            .values()
            .filter(|record| {
                let offering = &self.offerings[record.offering];
                offering.id.region.eq_ignore_ascii_case(region)
                    && if family == SPOT_QUOTA_FAMILY {
                        record.view.spec.priority == Priority::Spot
                    } else {
                        record.view.spec.priority == Priority::Regular
                            && offering.size.family.eq_ignore_ascii_case(family)
                    }
            })
            .map(|record| self.offerings[record.offering].size.vcpus)
            .sum()
    }

    /// Checks price and capacity for (re)allocating a VM of `spec` at `t`.
    fn allocation_check(
        &self,
        index: usize,
        spec: &VmSpec,
        zone: Option<&str>,
        t: Timestamp,
    ) -> Result<(), SimError> {
        let offering = &self.offerings[index];
        match spec.priority {
            Priority::Spot => {
                let price = self.spot_price(index, t);
                if let Some(MaxPrice::UsdPerHour(max)) = spec.max_price
                    && max < price
                {
                    return Err(SimError::Capacity {
                        code: CapacityErrorCode::SpotPriceAboveMaxPrice,
                        offering: spec.offering.clone(),
                        message: format!(
                            "Unable to perform operation '{}' since the provided maximum price '{max}' USD is lower than the current spot price '{price}' USD for Azure Spot VM size '{}' in region '{}'.",
                            spec.name, offering.id.size, offering.id.region
                        ),
                    });
                }
                let (allocated, _) = self.allocated(index, Priority::Spot);
                if allocated >= self.spot_capacity(index, t) {
                    return Err(SimError::Capacity {
                        code: CapacityErrorCode::SkuNotAvailable,
                        offering: spec.offering.clone(),
                        message: format!(
                            "The requested VM size for resource 'Following SKUs have failed for Capacity Restrictions: {}' is currently not available in location '{}'. Please try another size or deploy to a different location or different zone. See https://aka.ms/azureskunotavailable for details.",
                            offering.id.size, offering.id.region
                        ),
                    });
                }
            }
            Priority::Regular => {
                if let Some(limit) = offering.spec.regular_capacity {
                    let (allocated, _) = self.allocated(index, Priority::Regular);
                    if allocated >= limit {
                        let (code, message) = if zone.is_some() {
                            (
                                CapacityErrorCode::ZonalAllocationFailed,
                                "Allocation failed. We do not have sufficient capacity for the requested VM size in this zone. Read more about improving likelihood of allocation success at http://aka.ms/allocation-guidance",
                            )
                        } else {
                            (
                                CapacityErrorCode::AllocationFailed,
                                "Allocation failed. We do not have sufficient capacity for the requested VM size in this region. Read more about improving likelihood of allocation success at http://aka.ms/allocation-guidance",
                            )
                        };
                        return Err(SimError::Capacity {
                            code,
                            offering: spec.offering.clone(),
                            message: message.to_owned(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// ARM PUT: creates the VM, or updates its tags if it exists with the same offering,
    /// priority and eviction policy.
    ///
    /// # Errors
    /// Capacity (`SkuNotAvailable`, `AllocationFailed`, `ZonalAllocationFailed`,
    /// `OverconstrainedAllocationRequest`, `SpotPriceGreaterThanProvidedMaxPrice`), quota
    /// (`OperationNotAllowed`), invalid requests, conflicts.
    pub fn create_or_update(
        &mut self,
        request: CreateVm,
        now: Timestamp,
    ) -> Result<CreateOutcome, SimError> {
        self.advance_to(now);
        let t = self.now;
        let spec = request.spec;
        let vm = key(&spec.resource_group, &spec.name);
        if let Some(record) = self.vms.get_mut(&vm) {
            let existing = &record.view.spec;
            let changed = if !existing
                .offering
                .size
                .eq_ignore_ascii_case(&spec.offering.size)
            {
                Some("hardwareProfile.vmSize")
            } else if !existing
                .offering
                .region
                .eq_ignore_ascii_case(&spec.offering.region)
            {
                Some("location")
            } else if existing.priority != spec.priority {
                Some("priority")
            } else if existing.eviction_policy != spec.eviction_policy {
                Some("evictionPolicy")
            } else {
                None
            };
            if let Some(property) = changed {
                let error = SimError::Invalid {
                    code: "PropertyChangeNotAllowed".to_owned(),
                    message: format!("Changing property '{property}' is not allowed."),
                };
                return Err(self.refuse(t, &spec.name, error));
            }
            if existing.max_price != spec.max_price && record.allocated {
                let error = SimError::Conflict {
                    name: spec.name.clone(),
                    message: "Max price change is not allowed on allocated Spot VMs; deallocate the VM first (MaxPriceChangeNotAllowedForAllocatedVMs).".to_owned(),
                };
                return Err(self.refuse(t, &spec.name, error));
            }
            record.view.spec.tags = spec.tags;
            record.view.spec.max_price = spec.max_price;
            return Ok(CreateOutcome {
                vm: record.view.clone(),
                created: false,
                op: None,
            });
        }
        let Some(index) = self.offering_index(&spec.offering) else {
            let error = SimError::Capacity {
                code: CapacityErrorCode::SkuNotAvailable,
                offering: spec.offering.clone(),
                message: format!(
                    "The requested size for resource '{}' is currently not available in location '{}' zones '' for subscription '{}'. Please try another size or deploy to a different location or zones. See https://aka.ms/azureskunotavailable for details.",
                    spec.name, spec.offering.region, request.subscription
                ),
            };
            return Err(self.refuse(t, &spec.name, error));
        };
        let size = self.offerings[index].size.clone();
        if spec.priority == Priority::Spot && !size.spot_capable {
            let error = SimError::Invalid {
                code: "AzureSpotIsNotSupportedForThisVMSize".to_owned(),
                message: format!("Azure Spot is not supported for the VM size {}.", size.name),
            };
            return Err(self.refuse(t, &spec.name, error));
        }
        if let Some(zone) = &request.zone {
            let region = &self.offerings[index].id.region;
            let offers_zone =
                self.scenario.regions.iter().any(|spec| {
                    spec.name.eq_ignore_ascii_case(region) && spec.zones.contains(zone)
                });
            if !offers_zone {
                let error = SimError::Capacity {
                    code: CapacityErrorCode::OverconstrainedAllocationRequest,
                    offering: spec.offering.clone(),
                    message: format!(
                        "Allocation failed. VM(s) with the following constraints cannot be allocated, because the condition is too restrictive. Please remove some constraints and try again. Constraints applied are: Availability Zone {zone}, VM Size {}, Priority {:?}.",
                        size.name, spec.priority
                    ),
                };
                return Err(self.refuse(t, &spec.name, error));
            }
        }
        if let Err(error) = self.quota_check(&spec, &size) {
            return Err(self.refuse(t, &spec.name, error));
        }
        if let Err(error) = self.allocation_check(index, &spec, request.zone.as_deref(), t) {
            return Err(self.refuse(t, &spec.name, error));
        }
        let vm_id = guid(&mut self.rng);
        let imds_seed = self.rng.next_u64();
        let imds = ImdsConfig {
            vm_name: spec.name.clone(),
            location: self.offerings[index].id.region.clone(),
            vm_size: size.name.clone(),
            vm_id: vm_id.clone(),
            resource_group_name: spec.resource_group.clone(),
            subscription_id: request.subscription.clone(),
            priority: match spec.priority {
                Priority::Spot => "Spot",
                Priority::Regular => "Regular",
            }
            .to_owned(),
            eviction_policy: match (spec.priority, spec.eviction_policy) {
                (Priority::Regular, _) => String::new(),
                (Priority::Spot, Some(EvictionPolicy::Delete)) => "Delete".to_owned(),
                (Priority::Spot, _) => "Deallocate".to_owned(),
            },
            os_type: "Linux".to_owned(),
            seed: imds_seed,
        };
        let os_disk_gib = self.scenario.vm.os_disk_gib;
        let disk_rate =
            f64::from(os_disk_gib) * self.scenario.vm.disk_usd_per_gib_month / HOURS_PER_MONTH;
        self.ledgers.push(Ledger {
            line: BillLine {
                vm: spec.name.clone(),
                resource_group: spec.resource_group.clone(),
                vm_id: vm_id.clone(),
                offering: self.offerings[index].id.to_string(),
                priority: format!("{:?}", spec.priority),
                compute_usd: 0.0,
                disk_usd: 0.0,
                compute_seconds: 0.0,
                disk_seconds: 0.0,
                compute_segments: Vec::new(),
                disk_usd_per_hour: disk_rate,
                deleted: false,
            },
            compute_ms: 0,
            disk_ms: 0,
            last_accrued: t,
        });
        let name = spec.name.clone();
        let view = VmView {
            subscription: request.subscription,
            spec,
            zone: request.zone,
            vm_id,
            created_at: t,
            provisioning: ProvisioningState::Creating,
            power: PowerState::Starting,
            eviction_not_before: None,
            os_disk_gib,
            properties: request.properties,
            evictions: 0,
        };
        self.vms.insert(
            vm.clone(),
            VmRecord {
                view,
                offering: index,
                allocated: true,
                eviction: None,
                op: None,
                imds: Arc::new(Mutex::new(ImdsModel::new(imds))),
                bill: self.ledgers.len() - 1,
            },
        );
        let op = self.new_op(OpKind::Create, &vm, t, self.scenario.vm.create);
        self.log_entry(
            t,
            LogKind::CreateAccepted,
            Some(name),
            Some(index),
            String::new(),
        );
        Ok(CreateOutcome {
            vm: self.vms[&vm].view.clone(),
            created: true,
            op: Some(self.ops[op].view.clone()),
        })
    }

    fn record_for_op(
        &mut self,
        resource_group: &str,
        name: &str,
        what: &str,
        t: Timestamp,
    ) -> Result<VmKey, SimError> {
        let vm = key(resource_group, name);
        let Some(record) = self.vms.get(&vm) else {
            let error = SimError::NotFound {
                resource_group: resource_group.to_owned(),
                name: name.to_owned(),
            };
            return Err(self.refuse(t, name, error));
        };
        if let Some(op) = record.op {
            let running = self.ops[op].view.kind;
            let error = SimError::Conflict {
                name: name.to_owned(),
                message: format!(
                    "Operation '{what}' is not allowed on VM '{name}' since the VM is in the middle of another operation ({running:?}). Retry after it completes."
                ),
            };
            return Err(self.refuse(t, name, error));
        }
        Ok(vm)
    }

    /// ARM POST start.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` while another operation runs or an eviction is pending;
    /// `SkuNotAvailable` (Spot) or `AllocationFailed` (Regular) while capacity is out.
    pub fn start(
        &mut self,
        resource_group: &str,
        name: &str,
        now: Timestamp,
    ) -> Result<OpView, SimError> {
        self.advance_to(now);
        let t = self.now;
        let vm = self.record_for_op(resource_group, name, "start", t)?;
        let record = &self.vms[&vm];
        if record.eviction.is_some() {
            let error = SimError::Conflict {
                name: name.to_owned(),
                message: format!(
                    "Operation 'start' is not allowed on VM '{name}' since the VM is being evicted."
                ),
            };
            return Err(self.refuse(t, name, error));
        }
        if record.allocated {
            let op = self.new_op(OpKind::Start, &vm, t, Duration::ZERO);
            return Ok(self.ops[op].view.clone());
        }
        let (index, spec, zone) = (
            record.offering,
            record.view.spec.clone(),
            record.view.zone.clone(),
        );
        if let Err(error) = self.allocation_check(index, &spec, zone.as_deref(), t) {
            return Err(self.refuse(t, name, error));
        }
        let record = self.vms.get_mut(&vm).expect("checked above");
        record.allocated = true;
        record.view.power = PowerState::Starting;
        record.view.provisioning = ProvisioningState::Updating;
        let op = self.new_op(OpKind::Start, &vm, t, self.scenario.vm.start);
        self.log_entry(
            t,
            LogKind::StartAccepted,
            Some(spec.name),
            Some(index),
            String::new(),
        );
        Ok(self.ops[op].view.clone())
    }

    /// ARM POST deallocate.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` while another operation runs.
    pub fn deallocate(
        &mut self,
        resource_group: &str,
        name: &str,
        now: Timestamp,
    ) -> Result<OpView, SimError> {
        self.advance_to(now);
        let t = self.now;
        let vm = self.record_for_op(resource_group, name, "deallocate", t)?;
        let record = self.vms.get_mut(&vm).expect("checked above");
        if !record.allocated {
            let op = self.new_op(OpKind::Deallocate, &vm, t, Duration::ZERO);
            return Ok(self.ops[op].view.clone());
        }
        record.view.power = PowerState::Deallocating;
        record.view.provisioning = ProvisioningState::Updating;
        let index = record.offering;
        let op = self.new_op(OpKind::Deallocate, &vm, t, self.scenario.vm.deallocate);
        self.log_entry(
            t,
            LogKind::DeallocateAccepted,
            Some(name.to_owned()),
            Some(index),
            String::new(),
        );
        Ok(self.ops[op].view.clone())
    }

    /// ARM DELETE. `Ok(None)` when the VM does not exist (ARM answers 204).
    ///
    /// # Errors
    /// None today; the signature leaves room for conflicts.
    pub fn delete(
        &mut self,
        resource_group: &str,
        name: &str,
        now: Timestamp,
    ) -> Result<Option<OpView>, SimError> {
        self.advance_to(now);
        let t = self.now;
        let vm = key(resource_group, name);
        let Some(record) = self.vms.get_mut(&vm) else {
            return Ok(None);
        };
        if let Some(op) = record.op {
            let view = &self.ops[op].view;
            if view.kind == OpKind::Delete {
                return Ok(Some(view.clone()));
            }
            let view = &mut self.ops[op].view;
            view.status = OpStatus::Canceled;
            view.completes_at = t;
            view.error = Some((
                "OperationPreempted".to_owned(),
                "The operation was preempted by a delete.".to_owned(),
            ));
        }
        let record = self.vms.get_mut(&vm).expect("checked above");
        record.op = None;
        record.view.provisioning = ProvisioningState::Deleting;
        let index = record.offering;
        let op = self.new_op(OpKind::Delete, &vm, t, self.scenario.vm.delete);
        self.log_entry(
            t,
            LogKind::DeleteAccepted,
            Some(name.to_owned()),
            Some(index),
            String::new(),
        );
        Ok(Some(self.ops[op].view.clone()))
    }

    /// ARM POST simulateEviction: a Preempt with `simulate_notice`, then the eviction.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` for Regular VMs and VMs not running.
    pub fn simulate_eviction(
        &mut self,
        resource_group: &str,
        name: &str,
        now: Timestamp,
    ) -> Result<(), SimError> {
        self.advance_to(now);
        let t = self.now;
        let vm = key(resource_group, name);
        let Some(record) = self.vms.get(&vm) else {
            let error = SimError::NotFound {
                resource_group: resource_group.to_owned(),
                name: name.to_owned(),
            };
            return Err(self.refuse(t, name, error));
        };
        if record.eviction.is_some() {
            return Ok(());
        }
        if record.view.spec.priority != Priority::Spot {
            let error = SimError::Conflict {
                name: name.to_owned(),
                message: format!(
                    "Simulate eviction is only supported for Azure Spot VMs; VM '{name}' is not a Spot VM."
                ),
            };
            return Err(self.refuse(t, name, error));
        }
        if !record.allocated || record.view.power != PowerState::Running {
            let error = SimError::Conflict {
                name: name.to_owned(),
                message: format!(
                    "Simulate eviction is not allowed on VM '{name}' since it is not running."
                ),
            };
            return Err(self.refuse(t, name, error));
        }
        let notice = self.scenario.eviction.simulate_notice;
        self.begin_eviction(&vm, t, notice, EvictionReason::Simulated);
        Ok(())
    }

    // ----- reads -----

    /// One VM now.
    ///
    /// # Errors
    /// `NotFound`.
    pub fn get(
        &mut self,
        resource_group: &str,
        name: &str,
        now: Timestamp,
    ) -> Result<VmView, SimError> {
        self.advance_to(now);
        self.vms
            .get(&key(resource_group, name))
            .map(|record| record.view.clone())
            .ok_or_else(|| SimError::NotFound {
                resource_group: resource_group.to_owned(),
                name: name.to_owned(),
            })
    }

    /// Every VM (of `resource_group`, if given), ordered by resource group then name.
    pub fn list(&mut self, resource_group: Option<&str>, now: Timestamp) -> Vec<VmView> {
        self.advance_to(now);
        self.vms
            .iter()
            .filter(|((group, _), _)| {
                resource_group.is_none_or(|wanted| wanted.eq_ignore_ascii_case(group))
            })
            .map(|(_, record)| record.view.clone())
            .collect()
    }

    /// The operation with this id.
    pub fn operation(&mut self, id: &str, now: Timestamp) -> Option<OpView> {
        self.advance_to(now);
        self.ops
            .iter()
            .find(|op| op.view.id.eq_ignore_ascii_case(id))
            .map(|op| op.view.clone())
    }

    /// The IMDS of the VM `name` in `resource_group`.
    #[must_use]
    pub fn imds(&self, resource_group: &str, name: &str) -> Option<SharedImds> {
        self.vms
            .get(&key(resource_group, name))
            .map(|record| Arc::clone(&record.imds))
    }

    /// The IMDS of the VM called `name` in any resource group: `Err(n)` when `n != 1` match.
    ///
    /// # Errors
    /// The number of VMs with that name when it is not exactly one.
    pub fn imds_by_name(&self, name: &str) -> Result<SharedImds, usize> {
        let matches: Vec<&VmRecord> = self
            .vms
            .iter()
            .filter(|((_, vm), _)| vm.eq_ignore_ascii_case(name))
            .map(|(_, record)| record)
            .collect();
        match matches.as_slice() {
            [record] => Ok(Arc::clone(&record.imds)),
            other => Err(other.len()),
        }
    }

    /// What the cloud sells at `now`, for the catalog APIs.
    pub fn catalog(&mut self, now: Timestamp) -> CatalogSnapshot {
        self.advance_to(now);
        let t = self.now;
        let regions = self
            .scenario
            .regions
            .iter()
            .map(|region| RegionInfo {
                name: region.name.clone(),
                display_name: region
                    .display_name
                    .clone()
                    .unwrap_or_else(|| region.name.clone()),
                zones: region.zones.clone(),
            })
            .collect();
        let sizes = self
            .scenario
            .sizes
            .iter()
            .map(|size| SizeInfo {
                name: size.name.clone(),
                family: size.family.clone(),
                vcpus: size.vcpus,
                memory_gib: size.memory_gib,
                spot_capable: size.spot_capable,
            })
            .collect();
        let offerings = (0..self.offerings.len())
            .map(|index| {
                let state = &self.offerings[index];
                let capacity = self.spot_capacity(index, t);
                let (allocated, _) = self.allocated(index, Priority::Spot);
                let free = capacity.saturating_sub(allocated);
                let nominal = state.spec.capacity.max(1);
                let placement = if free == 0 {
                    PlacementScore::Low
                } else if free * 2 >= nominal {
                    PlacementScore::High
                } else {
                    PlacementScore::Medium
                };
                let history: Vec<(Timestamp, f64)> = state
                    .prices
                    .iter()
                    .filter(|(at, _)| *at <= t)
                    .copied()
                    .collect();
                OfferingInfo {
                    size: state.id.size.clone(),
                    region: state.id.region.clone(),
                    payg_linux: state.spec.payg,
                    payg_windows: state.spec.payg_windows,
                    spot_linux: state.size.spot_capable.then(|| self.spot_price(index, t)),
                    spot_windows: state.spec.spot_windows,
                    spot_price_history: history,
                    band: state.spec.band,
                    placement,
                    spot_capacity_vms: free,
                }
            })
            .collect();
        let quotas = self
            .scenario
            .quotas
            .iter()
            .map(|quota| QuotaInfo {
                region: quota.region.clone(),
                family: quota.family.clone(),
                limit_vcpus: quota.limit,
                used_vcpus: self.quota_used(&quota.region, &quota.family),
            })
            .collect();
        CatalogSnapshot {
            at: t,
            regions,
            sizes,
            offerings,
            quotas,
        }
    }

    fn log_entry(
        &mut self,
        t: Timestamp,
        kind: LogKind,
        vm: Option<String>,
        offering: Option<usize>,
        detail: String,
    ) {
        self.log.push(LogEntry {
            at_unix_ms: t.unix_millis(),
            kind,
            vm,
            offering: offering.map(|index| self.offerings[index].id.to_string()),
            detail,
        });
    }
}

#[cfg(test)]
mod tests;
