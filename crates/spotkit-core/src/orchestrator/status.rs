//! What a pool looks like right now, as a plain value (`spotkit status` prints it; metrics read
//! it).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Class, OpClass, PoolMachine};
use crate::Timestamp;
use crate::compute::{OfferingId, Priority};

/// How a loss was first seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LossSignal {
    /// The VM's agent posted a `Preempt` (or `Terminate`) notice.
    Notice,
    /// A listing showed it deallocating, stopped or being deleted.
    StateChange,
    /// A listing no longer showed it.
    Vanished,
}

/// One eviction and its replacement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvictionRecord {
    /// The evicted VM.
    pub vm: String,
    /// Where it ran (lower case).
    pub offering: OfferingId,
    /// When the loss was seen.
    pub seen_at: Timestamp,
    /// How.
    pub via: LossSignal,
    /// The VM that replaces it (itself, for a restarted Deallocate VM), once chosen.
    pub replacement: Option<String>,
    /// When the replacement was seen running.
    pub replaced_at: Option<Timestamp>,
}

impl EvictionRecord {
    /// From the loss being seen to its replacement running.
    #[must_use]
    pub fn time_to_replace(&self) -> Option<Duration> {
        self.replaced_at.map(|t| t.since(self.seen_at))
    }
}

/// Why the pool needs attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConditionReason {
    /// Some of the target cannot be placed on any candidate.
    Unplaceable,
    /// The cloud rejected a request as invalid (or a resource group is missing).
    InvalidRequest,
    /// The cloud refused the credentials.
    Unauthorized,
    /// Operations are held after HTTP 429.
    Throttled,
    /// Listing the pool's VMs keeps failing.
    ObserveFailing,
}

/// A condition with its explanation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// Which.
    pub reason: ConditionReason,
    /// What happened and what to do.
    pub message: String,
    /// Since when.
    pub since: Timestamp,
}

/// VMs of one offering.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OfferingCount {
    /// Regular VMs occupying the pool there.
    pub regular: u32,
    /// Spot VMs occupying the pool there.
    pub spot: u32,
}

/// An operation in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingOp {
    /// Its id.
    pub op: u64,
    /// What kind.
    pub class: OpClass,
    /// On which VM.
    pub vm: String,
    /// Since when.
    pub since: Timestamp,
}

/// A Deallocate VM being restarted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartStatus {
    /// The VM.
    pub vm: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Next attempt.
    pub next_at: Timestamp,
    /// When it is deleted and redeployed elsewhere instead.
    pub gives_up_at: Timestamp,
}

/// The pool at a glance. Units are VMs, or vCPUs for a vCPU target.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolStatus {
    /// Pool name.
    pub name: String,
    /// Target units.
    pub desired: u32,
    /// Of which regular (baseline arithmetic).
    pub desired_regular: u32,
    /// Of which spot.
    pub desired_spot: u32,
    /// Units counted for the target (running, starting or being created).
    pub live: u32,
    /// Units running.
    pub running: u32,
    /// Units occupying the pool (live, and Deallocate VMs waiting for a restart).
    pub occupying: u32,
    /// Regular VMs occupying the pool.
    pub regular_vms: u32,
    /// Spot VMs occupying the pool.
    pub spot_vms: u32,
    /// Regular VMs standing in for spot (on-demand fallback).
    pub fallback_vms: u32,
    /// Occupying VMs per offering.
    pub by_offering: BTreeMap<OfferingId, OfferingCount>,
    /// VMs being evicted (notice seen or deallocating) and not yet gone.
    pub evicting_vms: u32,
    /// Creates planned by the last step, issued or waiting for a free slot.
    pub planned_creates: u32,
    /// Starts planned by the last step.
    pub planned_starts: u32,
    /// Deletes planned by the last step.
    pub planned_deletes: u32,
    /// Units the last step could not place anywhere.
    pub unplaced: u32,
    /// Operations in flight.
    pub pending: Vec<PendingOp>,
    /// Offerings refusing capacity or quota, with the priority and when they are tried again.
    pub unavailable: Vec<(OfferingId, Priority, Timestamp)>,
    /// Regions (with a size, or all sizes) avoided after an eviction, and until when.
    pub blocked: Vec<(String, Option<String>, Timestamp)>,
    /// Deallocate VMs being restarted.
    pub restarting: Vec<RestartStatus>,
    /// Recent evictions, oldest first, with their replacements.
    pub evictions: Vec<EvictionRecord>,
    /// What needs attention.
    pub conditions: Vec<Condition>,
}

impl PoolStatus {
    /// Time-to-replace of the evictions whose replacement runs, oldest first.
    #[must_use]
    pub fn times_to_replace(&self) -> Vec<Duration> {
        self.evictions
            .iter()
            .filter_map(EvictionRecord::time_to_replace)
            .collect()
    }
}

impl PoolMachine {
    /// The pool's status as of the last step.
    #[must_use]
    pub fn status(&self) -> PoolStatus {
        let now = self.now;
        let total = self.spec.target.units();
        let (desired_regular, desired_spot) = self.spec.baseline.split(total);
        let mut s = PoolStatus {
            name: self.spec.name.clone(),
            desired: total,
            desired_regular,
            desired_spot,
            live: 0,
            running: 0,
            occupying: 0,
            regular_vms: 0,
            spot_vms: 0,
            fallback_vms: 0,
            by_offering: BTreeMap::new(),
            evicting_vms: 0,
            planned_creates: self.last_plan.creates,
            planned_starts: self.last_plan.starts,
            planned_deletes: self.last_plan.deletes,
            unplaced: self.last_plan.unplaced_units,
            pending: self
                .ops
                .iter()
                .map(|(op, f)| PendingOp {
                    op: *op,
                    class: f.class,
                    vm: f.vm.clone(),
                    since: f.started_at,
                })
                .collect(),
            unavailable: self
                .unavailable
                .iter()
                .map(|((o, p), t)| (o.clone(), *p, *t))
                .collect(),
            blocked: self
                .blocks
                .iter()
                .map(|((r, s), t)| (r.clone(), s.clone(), *t))
                .collect(),
            restarting: self
                .restarts
                .iter()
                .map(|(vm, r)| RestartStatus {
                    vm: vm.clone(),
                    attempts: r.attempts,
                    next_at: r.next_at,
                    gives_up_at: r.since.plus(self.spec.restart_timeout),
                })
                .collect(),
            evictions: self.evictions.values().cloned().collect(),
            conditions: self.conditions.values().cloned().collect(),
        };
        for (name, vm) in &self.vms {
            let class = self.classify(name, vm, now);
            let u = self.units(vm);
            match class {
                Class::Live { running } => {
                    s.live += u;
                    if running {
                        s.running += u;
                    }
                }
                Class::Evicting => s.evicting_vms += 1,
                _ => {}
            }
            if matches!(class, Class::Live { .. } | Class::Restarting) {
                s.occupying += u;
                let entry = s.by_offering.entry(super::lower(&vm.offering)).or_default();
                match vm.priority {
                    Priority::Regular => {
                        s.regular_vms += 1;
                        entry.regular += 1;
                        if vm.tags.get(super::TAG_ROLE).map(String::as_str) == Some("fallback") {
                            s.fallback_vms += 1;
                        }
                    }
                    Priority::Spot => {
                        s.spot_vms += 1;
                        entry.spot += 1;
                    }
                }
            }
        }
        s
    }
}
