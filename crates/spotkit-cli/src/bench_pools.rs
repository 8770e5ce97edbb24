//! `spotkit bench pools`: a pool of K VMs over the real traces, five policies side by side.
//!
//! # The fleet model (and why not the full simulator)
//! The traces span 2 to 45 days; driving `SpotCloud` over ARM-shaped requests for every policy
//! and every trace set would spend the run in request plumbing the policies never look at. This
//! benchmark therefore uses a small fleet model that reuses the simulator's trace loader
//! ([`spotkit_sim::cloud::CapacityTrace`]) and nothing else:
//! - time advances in steps of [`STEP`]; each offering (one trace file) has a spot capacity per
//!   step read from its trace (0/1 files scaled to K VMs when available, count files as counts);
//! - when an offering's capacity falls below the spot VMs placed there, the newest are evicted;
//!   for the orchestrator a Preempt notice arrives one step ([`STEP`], Azure's 30 s) before;
//! - a spot create succeeds only if the offering has free capacity at that moment, otherwise it
//!   fails with a capacity error after [`FAIL_LATENCY`]; on-demand creates always succeed;
//! - a VM is billed from its create (or start) until it is gone and serves once
//!   [`PROVISION_TIME`] after its create or start; deletes take [`DELETE_TIME`], billed;
//! - lost work: a VM checkpoints every [`CHECKPOINT_EVERY`] of running time, so an eviction
//!   loses the running time since its last checkpoint.
//!
//! Policy (d) is the orchestrator's own decision core, [`spotkit_core::orchestrator::PoolMachine`],
//! fed observations, notices and operation results from this fleet; its Create/Start/Delete
//! actions are applied to the fleet.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use spotkit_core::Timestamp;
use spotkit_core::compute::{
    EvictionPolicy, MaxPrice, OfferingId, PowerState, Priority, ProvisioningState, VmObservation,
};
use spotkit_core::events::EventType;
use spotkit_core::orchestrator::{
    Action, Candidate, Input, OpFailure, PoolMachine, PoolSpec, Target,
};
use spotkit_sim::cloud::CapacityTrace;

use crate::bench_deadline::Output;
use crate::bench_traces::{self, OneMeans};

/// Model step, seconds (also the eviction notice the orchestrator gets).
pub const STEP: u64 = 30;
/// Create or start to serving, seconds.
pub const PROVISION_TIME: u64 = 120;
/// A refused spot create reports after this, seconds.
pub const FAIL_LATENCY: u64 = 30;
/// Delete duration, seconds (billed).
pub const DELETE_TIME: u64 = 30;
/// Running time between checkpoints, seconds.
pub const CHECKPOINT_EVERY: u64 = 600;

#[derive(Debug, clap::Args)]
pub struct PoolsBench {
    /// Folder of spot-traces files (skypilot-org/spot-traces layout).
    #[arg(long, default_value = "../shared/traces", env = "SPOTKIT_TRACES_DIR")]
    pub traces_dir: PathBuf,
    /// VMs in the pool.
    #[arg(long, default_value_t = 8)]
    pub vms: u32,
    /// How the 0/1 files read.
    #[arg(long, value_enum, default_value_t = OneMeans::Unavailable)]
    pub one_means: OneMeans,
    /// Policy (d): how long an offering that refused capacity is skipped (the pool file's
    /// `unavailable_ttl`); default: the orchestrator's own default.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub unavailable_ttl: Option<Duration>,
    /// Only trace sets whose name contains this.
    #[arg(long)]
    pub only: Option<String>,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

struct Offer {
    label: String,
    /// The Azure region (the offering id's region also carries the source zone).
    region: &'static str,
    offering: OfferingId,
    vcpus: u32,
    payg: f64,
    spot: f64,
    trace: CapacityTrace,
}

impl Offer {
    fn capacity(&self, t: u64) -> u32 {
        self.trace.capacity_at(Duration::from_secs(t))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VmState {
    /// Billed, serving from `ready_at`.
    Up { ready_at: u64 },
    /// Deallocated: not billed, not serving.
    Down,
    /// Being deleted: billed until `gone_at`.
    Going { gone_at: u64 },
}

#[derive(Clone, Debug)]
struct Vm {
    offer: usize,
    spot: bool,
    state: VmState,
    created_at: u64,
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
struct Metrics {
    policy: &'static str,
    availability: f64,
    cost_usd: f64,
    cost_vs_on_demand: f64,
    cost_vs_lower_bound: f64,
    evictions: u32,
    lost_work_vm_hours: f64,
    replacements: u32,
    #[serde(skip)]
    live_vm_secs: f64,
    #[serde(skip)]
    creates: u32,
}

/// The simulated fleet shared by all policies.
struct Fleet<'a> {
    offers: &'a [Offer],
    k: u32,
    vms: BTreeMap<String, Vm>,
    metrics: Metrics,
}

impl<'a> Fleet<'a> {
    fn new(offers: &'a [Offer], k: u32, policy: &'static str) -> Self {
        Self {
            offers,
            k,
            vms: BTreeMap::new(),
            metrics: Metrics {
                policy,
                ..Metrics::default()
            },
        }
    }

    fn spot_placed(&self, offer: usize) -> u32 {
        let n = self
            .vms
            .values()
            .filter(|vm| vm.spot && vm.offer == offer && matches!(vm.state, VmState::Up { .. }))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn has_room(&self, offer: usize, t: u64) -> bool {
        self.spot_placed(offer) < self.offers[offer].capacity(t)
    }

    /// Creates (or starts) a VM; false if spot capacity refuses it.
    fn launch(&mut self, name: &str, offer: usize, spot: bool, t: u64) -> bool {
        if spot && !self.has_room(offer, t) {
            return false;
        }
        self.metrics.creates += 1;
        let vm = self.vms.entry(name.to_owned()).or_insert_with(|| Vm {
            offer,
            spot,
            state: VmState::Down,
            created_at: t,
            tags: BTreeMap::new(),
        });
        vm.offer = offer;
        vm.spot = spot;
        vm.state = VmState::Up {
            ready_at: t + PROVISION_TIME,
        };
        true
    }

    /// Spot VMs over their offering's capacity at `t`, newest first.
    fn over_capacity(&self, t: u64) -> Vec<String> {
        let mut out = Vec::new();
        for (index, offer) in self.offers.iter().enumerate() {
            let cap = offer.capacity(t);
            let mut placed: Vec<(&String, &Vm)> = self
                .vms
                .iter()
                .filter(|(_, vm)| {
                    vm.spot && vm.offer == index && matches!(vm.state, VmState::Up { .. })
                })
                .collect();
            let excess = placed.len().saturating_sub(cap as usize);
            placed.sort_by_key(|(name, vm)| (std::cmp::Reverse(vm.created_at), (*name).clone()));
            out.extend(
                placed
                    .into_iter()
                    .take(excess)
                    .map(|(name, _)| name.clone()),
            );
        }
        out
    }

    /// Evicts `name`: counts the eviction and the work lost since its last checkpoint.
    fn evict(&mut self, name: &str, t: u64, deallocate: bool) {
        let Some(vm) = self.vms.get_mut(name) else {
            return;
        };
        if let VmState::Up { ready_at } = vm.state {
            self.metrics.evictions += 1;
            if t > ready_at {
                #[allow(clippy::cast_precision_loss)]
                let lost = ((t - ready_at) % CHECKPOINT_EVERY) as f64;
                self.metrics.lost_work_vm_hours += lost / 3600.0;
            }
        }
        if deallocate {
            vm.state = VmState::Down;
        } else {
            self.vms.remove(name);
        }
    }

    /// Bills and counts service for `[t, t + STEP)`.
    fn account(&mut self, t: u64) {
        let mut live = 0_u32;
        self.vms
            .retain(|_, vm| !matches!(vm.state, VmState::Going { gone_at } if gone_at <= t));
        for vm in self.vms.values() {
            let offer = &self.offers[vm.offer];
            let price = if vm.spot { offer.spot } else { offer.payg };
            match vm.state {
                VmState::Up { ready_at } => {
                    #[allow(clippy::cast_precision_loss)]
                    let step = STEP as f64;
                    self.metrics.cost_usd += price * step / 3600.0;
                    if ready_at <= t {
                        live += 1;
                    }
                }
                VmState::Going { .. } => {
                    #[allow(clippy::cast_precision_loss)]
                    let step = STEP as f64;
                    self.metrics.cost_usd += price * step / 3600.0;
                }
                VmState::Down => {}
            }
        }
        #[allow(clippy::cast_precision_loss)]
        let step = STEP as f64;
        self.metrics.live_vm_secs += f64::from(live.min(self.k)) * step;
    }

    fn finish(mut self, duration: u64) -> Metrics {
        #[allow(clippy::cast_precision_loss)]
        let total = f64::from(self.k) * duration as f64;
        self.metrics.availability = self.metrics.live_vm_secs / total;
        self.metrics.replacements = self.metrics.creates.saturating_sub(self.k);
        self.metrics
    }
}

fn steps(duration: u64) -> impl Iterator<Item = u64> {
    (0..duration / STEP).map(|i| i * STEP)
}

/// Offers by spot price, cheapest first (ties by label).
fn by_spot_price(offers: &[Offer]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..offers.len()).collect();
    order.sort_by(|a, b| {
        offers[*a]
            .spot
            .total_cmp(&offers[*b].spot)
            .then_with(|| offers[*a].label.cmp(&offers[*b].label))
    });
    order
}

fn cheapest_payg(offers: &[Offer]) -> usize {
    (0..offers.len())
        .min_by(|a, b| offers[*a].payg.total_cmp(&offers[*b].payg))
        .unwrap_or(0)
}

/// (a) K on-demand VMs in the cheapest PAYG offering.
fn all_on_demand(offers: &[Offer], k: u32, duration: u64) -> Metrics {
    let mut fleet = Fleet::new(offers, k, "a: all on-demand");
    let offer = cheapest_payg(offers);
    for i in 0..k {
        fleet.launch(&format!("od-{i}"), offer, false, 0);
    }
    for t in steps(duration) {
        fleet.account(t);
    }
    fleet.finish(duration)
}

/// (b) One offering (the cheapest spot one), Deallocate: an evicted VM waits, deallocated, and
/// is started again as soon as the offering has capacity.
fn one_offering_deallocate(offers: &[Offer], k: u32, duration: u64) -> Metrics {
    let mut fleet = Fleet::new(offers, k, "b: one offering, deallocate");
    let offer = by_spot_price(offers)[0];
    let names: Vec<String> = (0..k).map(|i| format!("vm-{i}")).collect();
    for t in steps(duration) {
        for name in fleet.over_capacity(t) {
            fleet.evict(&name, t, true);
        }
        for name in &names {
            let waiting = fleet
                .vms
                .get(name)
                .is_none_or(|vm| vm.state == VmState::Down);
            if waiting {
                fleet.launch(name, offer, true, t);
            }
        }
        fleet.account(t);
    }
    fleet.finish(duration)
}

/// (c) SkyPilot's EAGER_NEXT_REGION, per VM: offerings in a fixed order, cheapest spot first;
/// after a preemption, the regions after the one that preempted come first and that region is
/// tried last (not blocked). Spot only; a VM that finds no capacity retries every step.
fn eager_next_region(offers: &[Offer], k: u32, duration: u64) -> Metrics {
    let mut fleet = Fleet::new(offers, k, "c: eager next region");
    let order = by_spot_price(offers);
    let mut regions: Vec<&str> = Vec::new();
    for index in &order {
        let region = offers[*index].region;
        if !regions.contains(&region) {
            regions.push(region);
        }
    }
    // Per VM: the region that last preempted it, if any.
    let mut preempted_in: Vec<Option<usize>> = vec![None; k as usize];
    let names: Vec<String> = (0..k).map(|i| format!("vm-{i}")).collect();
    for t in steps(duration) {
        for name in fleet.over_capacity(t) {
            if let Some(vm) = fleet.vms.get(&name) {
                let region = offers[vm.offer].region;
                let slot: usize = name[3..].parse().unwrap_or(0);
                preempted_in[slot] = regions.iter().position(|r| *r == region);
            }
            fleet.evict(&name, t, false);
        }
        for (slot, name) in names.iter().enumerate() {
            if fleet.vms.contains_key(name) {
                continue;
            }
            let start = preempted_in[slot].map_or(0, |r| r + 1);
            let region_order = (0..regions.len()).map(|i| regions[(start + i) % regions.len()]);
            let attempt: Vec<usize> = region_order
                .flat_map(|region| {
                    order
                        .iter()
                        .copied()
                        .filter(move |i| offers[*i].region == region)
                })
                .collect();
            for offer in attempt {
                if fleet.launch(name, offer, true, t) {
                    break;
                }
            }
        }
        fleet.account(t);
    }
    fleet.finish(duration)
}

/// (e) Per step, the cheapest obtainable capacity for K VMs: spot where there is room, cheapest
/// first, on-demand for the rest; no provisioning, no overheads, always K VMs.
fn lower_bound(offers: &[Offer], k: u32, duration: u64) -> Metrics {
    let mut metrics = Metrics {
        policy: "e: omniscient lower bound",
        availability: 1.0,
        ..Metrics::default()
    };
    let order = by_spot_price(offers);
    let payg = offers[cheapest_payg(offers)].payg;
    #[allow(clippy::cast_precision_loss)]
    let step_hours = STEP as f64 / 3600.0;
    for t in steps(duration) {
        let mut left = k;
        for index in &order {
            let take = offers[*index].capacity(t).min(left);
            left -= take;
            metrics.cost_usd += f64::from(take) * offers[*index].spot.min(payg) * step_hours;
        }
        metrics.cost_usd += f64::from(left) * payg * step_hours;
    }
    metrics
}

/// (d) The orchestrator's core: a Delete pool with on-demand fallback over every offering,
/// ranked by spot price, with the documented defaults (max share 0.5, 30 min eviction block,
/// 3 min unavailable TTL).
fn orchestrator(
    offers: &[Offer],
    k: u32,
    duration: u64,
    unavailable_ttl: Option<Duration>,
) -> Metrics {
    let mut fleet = Fleet::new(offers, k, "d: spotkit orchestrator");
    let order = by_spot_price(offers);
    let candidates: Vec<Candidate> = order
        .iter()
        .enumerate()
        .map(|(rank, index)| Candidate {
            offering: offers[*index].offering.clone(),
            vcpus: offers[*index].vcpus,
            spot_capable: true,
            spot_price: Some(offers[*index].spot),
            payg_price: Some(offers[*index].payg),
            band: None,
            rank: u32::try_from(rank).unwrap_or(u32::MAX),
        })
        .collect();
    let mut spec = PoolSpec::new("bench", Target::Vms(k), candidates);
    spec.on_demand_fallback = true;
    if let Some(ttl) = unavailable_ttl {
        spec.unavailable_ttl = ttl;
    }
    spec.eviction_policy = EvictionPolicy::Delete;
    spec.template.resource_group = "rg-bench".to_owned();
    spec.template.image = "Canonical:ubuntu-24_04-lts:server:latest".to_owned();
    let at = |t: u64| Timestamp::from_unix_secs(i64::try_from(t).unwrap_or(i64::MAX));
    let mut machine = PoolMachine::new(spec, at(0), 1);
    let find_offer = |offering: &OfferingId| {
        offers.iter().position(|o| {
            o.offering.size.eq_ignore_ascii_case(&offering.size)
                && o.offering.region.eq_ignore_ascii_case(&offering.region)
        })
    };
    // Operations in flight: (done at, op, result).
    let mut pending: Vec<(u64, u64, Result<Option<VmObservation>, OpFailure>)> = Vec::new();
    let mut noticed: BTreeMap<String, u64> = BTreeMap::new();
    let observe = |fleet: &Fleet, t: u64| -> Vec<VmObservation> {
        fleet
            .vms
            .iter()
            .filter(|(_, vm)| !matches!(vm.state, VmState::Going { .. }))
            .map(|(name, vm)| observation(name, vm, offers, t))
            .collect()
    };
    for t in steps(duration) {
        // Evictions whose notice went out a step ago.
        let due: Vec<String> = noticed
            .iter()
            .filter(|(_, at_t)| **at_t <= t)
            .map(|(name, _)| name.clone())
            .collect();
        for name in due {
            noticed.remove(&name);
            fleet.evict(&name, t, false);
        }
        // Anything over capacity now without a notice goes at once (a create raced a drop).
        for name in fleet.over_capacity(t) {
            fleet.evict(&name, t, false);
        }
        let mut inputs: Vec<Input> = Vec::new();
        // Notices for the VMs the next step's capacity will evict.
        let mut ahead = Fleet {
            offers,
            k,
            vms: fleet
                .vms
                .iter()
                .filter(|(name, _)| !noticed.contains_key(*name))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
            metrics: Metrics::default(),
        };
        for name in ahead.over_capacity(t + STEP) {
            ahead.vms.remove(&name);
            noticed.insert(name.clone(), t + STEP);
            inputs.push(Input::Notice {
                vm_name: name,
                event_type: EventType::Preempt,
                not_before: Some(at(t + STEP)),
                observed_at: at(t),
            });
        }
        let (done, still): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|(done_at, _, _)| *done_at <= t);
        pending = still;
        for (_, op, result) in done {
            // A create that succeeded but whose VM was evicted meanwhile reports it gone.
            inputs.push(Input::OperationDone { op, result });
        }
        inputs.push(Input::Tick);
        while let Some(input) = inputs.pop() {
            let actions = machine.handle(input, at(t));
            for action in actions {
                match action {
                    Action::Observe => inputs.push(Input::Observed(observe(&fleet, t))),
                    Action::Create { op, spec } => {
                        let offer = find_offer(&spec.offering);
                        let spot = spec.priority == Priority::Spot;
                        let launched = offer.is_some_and(|o| fleet.launch(&spec.name, o, spot, t));
                        if launched {
                            if let Some(vm) = fleet.vms.get_mut(&spec.name) {
                                vm.tags.clone_from(&spec.tags);
                            }
                            let vm = &fleet.vms[&spec.name];
                            let mut seen = observation(&spec.name, vm, offers, t + PROVISION_TIME);
                            seen.power = PowerState::Running;
                            pending.push((t + PROVISION_TIME, op, Ok(Some(seen))));
                        } else {
                            pending.push((t + FAIL_LATENCY, op, Err(OpFailure::Capacity)));
                        }
                    }
                    Action::Start { op, name, .. } => {
                        let result = match fleet.vms.get(&name).map(|vm| (vm.offer, vm.spot)) {
                            Some((offer, spot)) if fleet.launch(&name, offer, spot, t) => Ok(None),
                            Some(_) => Err(OpFailure::Capacity),
                            None => Err(OpFailure::NotFound),
                        };
                        pending.push((t + PROVISION_TIME, op, result));
                    }
                    Action::Delete { op, name, .. } => {
                        let result = match fleet.vms.get_mut(&name) {
                            Some(vm) => {
                                vm.state = VmState::Going {
                                    gone_at: t + DELETE_TIME,
                                };
                                Ok(None)
                            }
                            None => Err(OpFailure::NotFound),
                        };
                        noticed.remove(&name);
                        pending.push((t + DELETE_TIME, op, result));
                    }
                }
            }
        }
        fleet.account(t);
    }
    fleet.finish(duration)
}

fn observation(name: &str, vm: &Vm, offers: &[Offer], t: u64) -> VmObservation {
    let (provisioning, power) = match vm.state {
        VmState::Up { ready_at } if ready_at <= t => {
            (ProvisioningState::Succeeded, PowerState::Running)
        }
        VmState::Up { .. } => (ProvisioningState::Creating, PowerState::Starting),
        VmState::Down => (ProvisioningState::Succeeded, PowerState::Deallocated),
        VmState::Going { .. } => (ProvisioningState::Deleting, PowerState::Stopping),
    };
    VmObservation {
        name: name.to_owned(),
        resource_group: "rg-bench".to_owned(),
        id: format!(
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-bench/providers/Microsoft.Compute/virtualMachines/{name}"
        ),
        offering: offers[vm.offer].offering.clone(),
        priority: if vm.spot {
            Priority::Spot
        } else {
            Priority::Regular
        },
        eviction_policy: vm.spot.then_some(EvictionPolicy::Delete),
        max_price: vm.spot.then_some(MaxPrice::CappedAtPayAsYouGo),
        provisioning,
        power,
        tags: vm.tags.clone(),
        created_at: Some(Timestamp::from_unix_secs(
            i64::try_from(vm.created_at).unwrap_or(i64::MAX),
        )),
    }
}

fn vcpus_of(size: &str) -> u32 {
    match size {
        "Standard_NC6s_v3" => 6,
        "Standard_NC24s_v3" => 24,
        "Standard_NC4as_T4_v3" => 4,
        "Standard_NC64as_T4_v3" | "Standard_E64s_v5" => 64,
        "Standard_F72s_v2" => 72,
        _ => 1,
    }
}

#[derive(Debug, serde::Serialize)]
struct GroupReport {
    trace_set: String,
    instance_type: String,
    offerings: Vec<String>,
    days: f64,
    lower_bound_vs_on_demand: f64,
    policies: Vec<Metrics>,
    verdict: Verdict,
}

#[derive(Debug, serde::Serialize)]
struct Verdict {
    availability_999: bool,
    within_110_of_lower_bound: bool,
    /// (b)'s cost topped up with on-demand VM-hours to (d)'s availability.
    b_at_d_availability_usd: f64,
    /// (c)'s likewise.
    c_at_d_availability_usd: f64,
    cheaper_than_b_at_equal_or_better_availability: bool,
    cheaper_than_c_at_equal_or_better_availability: bool,
}

pub fn bench_pools(args: &PoolsBench) -> anyhow::Result<u8> {
    if args.vms == 0 {
        bail!("--vms must be at least 1");
    }
    let k = args.vms;
    let mut reports = Vec::new();
    let sets = bench_traces::discover(&args.traces_dir)?;
    for set in &sets {
        if args
            .only
            .as_ref()
            .is_some_and(|only| !set.name.contains(only.as_str()))
        {
            continue;
        }
        let mut types: Vec<&str> = set.files.iter().map(|f| f.instance_type.as_str()).collect();
        types.sort_unstable();
        types.dedup();
        for instance_type in types {
            let mut offers = Vec::new();
            for file in set
                .files
                .iter()
                .filter(|f| f.instance_type == instance_type)
            {
                let trace =
                    bench_traces::load(&args.traces_dir, file, args.one_means, k, Duration::ZERO)?;
                offers.push(Offer {
                    label: format!("{} -> {}", file.relative, file.offering.label()),
                    region: file.offering.region,
                    offering: OfferingId::new(
                        file.offering.size.clone(),
                        format!("{}-{}", file.offering.region, file.offering.source_zone),
                    ),
                    vcpus: vcpus_of(&file.offering.size),
                    payg: file.offering.payg_per_hour,
                    spot: file.offering.spot_per_hour,
                    trace,
                });
            }
            let duration = offers
                .iter()
                .map(|o| o.trace.span().as_secs())
                .min()
                .unwrap_or(0);
            if duration < STEP {
                continue;
            }
            let mut policies = vec![
                all_on_demand(&offers, k, duration),
                one_offering_deallocate(&offers, k, duration),
                eager_next_region(&offers, k, duration),
                orchestrator(&offers, k, duration, args.unavailable_ttl),
                lower_bound(&offers, k, duration),
            ];
            let (od, lb) = (policies[0].cost_usd, policies[4].cost_usd);
            for p in &mut policies {
                p.cost_vs_on_demand = p.cost_usd / od;
                p.cost_vs_lower_bound = p.cost_usd / lb;
            }
            let d = &policies[3];
            let payg = offers[cheapest_payg(&offers)].payg;
            #[allow(clippy::cast_precision_loss)]
            let vm_hours = f64::from(k) * duration as f64 / 3600.0;
            // (b) and (c) at (d)'s availability: their cost plus on-demand VM-hours for the gap.
            let at_equal = |other: &Metrics| {
                other.cost_usd + (d.availability - other.availability).max(0.0) * vm_hours * payg
            };
            let beats = |other: &Metrics| {
                d.availability >= other.availability && d.cost_usd < at_equal(other)
            };
            let verdict = Verdict {
                availability_999: d.availability >= 0.999,
                within_110_of_lower_bound: d.cost_usd <= 1.10 * lb,
                b_at_d_availability_usd: at_equal(&policies[1]),
                c_at_d_availability_usd: at_equal(&policies[2]),
                cheaper_than_b_at_equal_or_better_availability: beats(&policies[1]),
                cheaper_than_c_at_equal_or_better_availability: beats(&policies[2]),
            };
            #[allow(clippy::cast_precision_loss)]
            let days = duration as f64 / 86_400.0;
            reports.push(GroupReport {
                trace_set: set.name.clone(),
                instance_type: instance_type.to_owned(),
                offerings: offers
                    .iter()
                    .map(|o| format!("{}  {:.4} / {:.4}", o.label, o.payg, o.spot))
                    .collect(),
                days,
                lower_bound_vs_on_demand: lb / od,
                policies,
                verdict,
            });
        }
    }
    if reports.is_empty() {
        bail!("no trace set matched under {}", args.traces_dir.display());
    }
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&reports)?),
        Output::Table => print_table(&reports, k, args.one_means, args.unavailable_ttl),
    }
    Ok(0)
}

fn yes(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn print_table(
    reports: &[GroupReport],
    k: u32,
    one_means: OneMeans,
    unavailable_ttl: Option<Duration>,
) {
    println!(
        "bench pools: K = {k} VMs, step {STEP} s, provisioning {PROVISION_TIME} s, notice {STEP} s \
         (orchestrator only), checkpoint every {CHECKPOINT_EVERY} s, 0/1 files read 1 = {one_means:?} \
         and scaled to K VMs when available"
    );
    println!(
        "(d) = spotkit_core::orchestrator::PoolMachine, Delete pool with on-demand fallback, \
         defaults except unavailable_ttl = {}",
        unavailable_ttl.map_or_else(
            || "the default (180 s)".to_owned(),
            |ttl| humantime::format_duration(ttl).to_string()
        )
    );
    println!(
        "availability = VM-seconds serving (at most K) / (K x duration); cost/a, cost/e = cost relative to (a), (e)"
    );
    for r in reports {
        println!();
        println!(
            "{} [{}]: {:.1} days, {} offerings; lower bound = {:.3} x on-demand",
            r.trace_set,
            r.instance_type,
            r.days,
            r.offerings.len(),
            r.lower_bound_vs_on_demand
        );
        for o in &r.offerings {
            println!("    {o}");
        }
        println!(
            "  {:<30} {:>9} {:>11} {:>7} {:>7} {:>9} {:>9} {:>8}",
            "policy",
            "avail %",
            "cost USD",
            "cost/a",
            "cost/e",
            "evictions",
            "lost VMh",
            "replaced"
        );
        for p in &r.policies {
            println!(
                "  {:<30} {:>9.3} {:>11.2} {:>7.3} {:>7.3} {:>9} {:>9.2} {:>8}",
                p.policy,
                p.availability * 100.0,
                p.cost_usd,
                p.cost_vs_on_demand,
                p.cost_vs_lower_bound,
                p.evictions,
                p.lost_work_vm_hours,
                p.replacements
            );
        }
        println!(
            "  (b), (c) topped up with on-demand to (d)'s availability: {:.2} / {:.2} USD",
            r.verdict.b_at_d_availability_usd, r.verdict.c_at_d_availability_usd
        );
        println!(
            "  goals for (d): availability >= 99.9 %: {}; cost <= 1.10 x (e): {}; cheaper than (b) at equal availability: {}; cheaper than (c) at equal availability: {}",
            yes(r.verdict.availability_999),
            yes(r.verdict.within_110_of_lower_bound),
            yes(r.verdict.cheaper_than_b_at_equal_or_better_availability),
            yes(r.verdict.cheaper_than_c_at_equal_or_better_availability)
        );
    }
}
