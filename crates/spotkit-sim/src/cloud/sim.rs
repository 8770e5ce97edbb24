//! The deterministic mode: the model driven in-process on a virtual clock, with no sockets.
//!
//! - [`VirtualClock`]: a `spotkit_cloud::Clock` whose time moves only when told
//!   ([`VirtualClock::manual`]) or jumps to whatever a sleeper waits for
//!   ([`VirtualClock::auto_advance`], discrete-event style, for one driver at a time).
//! - [`SimCompute`]: `spotkit_cloud::ComputeCloud` straight on the model, so the orchestrator
//!   runs against the simulator without HTTP; long-running operations wait on the clock.
//! - [`DeterministicSim`]: the model, a virtual clock and a headless run of the scenario's
//!   `[[fleet]]` ([`DeterministicSim::run_fleet`]) whose event log is the reproducible output.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;
use spotkit_cloud::{Clock, ComputeCloud, ComputeError};
use spotkit_core::Timestamp;
use spotkit_core::compute::{
    EvictionPolicy, MaxPrice, OfferingId, PowerState, Priority, VmObservation, VmSpec,
};
use tokio::sync::watch;

use super::model::{Bill, CreateVm, DEFAULT_START_UNIX, LogEntry, OpStatus, OpView, SpotCloud};
use super::scenario::{Scenario, ScenarioError};

/// The subscription id the in-process mode uses.
pub const SIM_SUBSCRIPTION: &str = "00000000-0000-4000-8000-00000000c10d";

/// A clock for simulations.
#[derive(Debug)]
pub struct VirtualClock {
    now: watch::Sender<Timestamp>,
    auto_advance: bool,
}

impl VirtualClock {
    /// Time moves only with [`VirtualClock::advance`] / [`VirtualClock::set`]; sleepers wake
    /// when it passes their deadline.
    #[must_use]
    pub fn manual(start: Timestamp) -> Self {
        Self {
            now: watch::Sender::new(start),
            auto_advance: false,
        }
    }

    /// A sleep moves time to its deadline at once: one driver runs as fast as it can.
    #[must_use]
    pub fn auto_advance(start: Timestamp) -> Self {
        Self {
            now: watch::Sender::new(start),
            auto_advance: true,
        }
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.now.send_modify(|now| *now = now.plus(by));
    }

    /// Moves time to `to` (never back).
    pub fn set(&self, to: Timestamp) {
        self.now.send_if_modified(|now| {
            if *now < to {
                *now = to;
                true
            } else {
                false
            }
        });
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        *self.now.borrow()
    }

    fn sleep_until(&self, until: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        if self.auto_advance {
            self.set(until);
            return Box::pin(std::future::ready(()));
        }
        let mut receiver = self.now.subscribe();
        Box::pin(async move {
            while *receiver.borrow_and_update() < until {
                if receiver.changed().await.is_err() {
                    break;
                }
            }
        })
    }
}

fn lock(cloud: &Mutex<SpotCloud>) -> MutexGuard<'_, SpotCloud> {
    cloud.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `ComputeCloud` on the in-process model.
#[derive(Clone)]
pub struct SimCompute {
    cloud: Arc<Mutex<SpotCloud>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SimCompute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCompute").finish_non_exhaustive()
    }
}

impl SimCompute {
    /// Over `cloud`, reading time from `clock`.
    #[must_use]
    pub fn new(cloud: Arc<Mutex<SpotCloud>>, clock: Arc<dyn Clock>) -> Self {
        Self { cloud, clock }
    }

    async fn wait(&self, op: OpView) -> Result<(), ComputeError> {
        let mut op = op;
        loop {
            match op.status {
                OpStatus::Succeeded => return Ok(()),
                OpStatus::Failed | OpStatus::Canceled => {
                    let (code, message) = op.error.unwrap_or_else(|| {
                        (
                            "Canceled".to_owned(),
                            "the operation was canceled".to_owned(),
                        )
                    });
                    return Err(ComputeError::OperationFailed {
                        name: op.vm_name,
                        code,
                        message,
                    });
                }
                OpStatus::InProgress => {
                    self.clock.sleep_until(op.completes_at).await;
                    let now = self.clock.now();
                    let id = op.id.clone();
                    op = lock(&self.cloud).operation(&id, now).ok_or_else(|| {
                        ComputeError::Transient {
                            detail: format!("operation {id} vanished"),
                        }
                    })?;
                }
            }
        }
    }

    fn observe(&self, resource_group: &str, name: &str) -> Result<VmObservation, ComputeError> {
        let now = self.clock.now();
        lock(&self.cloud)
            .get(resource_group, name, now)
            .map(|vm| vm.observation())
            .map_err(|error| error.to_compute_error())
    }
}

impl ComputeCloud for SimCompute {
    async fn create_vm(&self, spec: &VmSpec) -> Result<VmObservation, ComputeError> {
        let now = self.clock.now();
        let outcome = lock(&self.cloud)
            .create_or_update(
                CreateVm {
                    subscription: SIM_SUBSCRIPTION.to_owned(),
                    spec: spec.clone(),
                    zone: None,
                    properties: serde_json::Value::Null,
                },
                now,
            )
            .map_err(|error| error.to_compute_error())?;
        if let Some(op) = outcome.op {
            self.wait(op).await?;
        }
        self.observe(&spec.resource_group, &spec.name)
    }

    async fn get_vm(
        &self,
        resource_group: &str,
        name: &str,
    ) -> Result<VmObservation, ComputeError> {
        self.observe(resource_group, name)
    }

    async fn list_vms(
        &self,
        tag_filter: Option<(&str, &str)>,
    ) -> Result<Vec<VmObservation>, ComputeError> {
        let now = self.clock.now();
        Ok(lock(&self.cloud)
            .list(None, now)
            .into_iter()
            .filter(|vm| {
                tag_filter.is_none_or(|(key, value)| {
                    vm.spec.tags.get(key).is_some_and(|found| found == value)
                })
            })
            .map(|vm| vm.observation())
            .collect())
    }

    async fn start_vm(&self, resource_group: &str, name: &str) -> Result<(), ComputeError> {
        let now = self.clock.now();
        let op = lock(&self.cloud)
            .start(resource_group, name, now)
            .map_err(|error| error.to_compute_error())?;
        self.wait(op).await
    }

    async fn deallocate_vm(&self, resource_group: &str, name: &str) -> Result<(), ComputeError> {
        let now = self.clock.now();
        let op = lock(&self.cloud)
            .deallocate(resource_group, name, now)
            .map_err(|error| error.to_compute_error())?;
        self.wait(op).await
    }

    async fn delete_vm(&self, resource_group: &str, name: &str) -> Result<(), ComputeError> {
        let now = self.clock.now();
        let op = lock(&self.cloud)
            .delete(resource_group, name, now)
            .map_err(|error| error.to_compute_error())?;
        match op {
            Some(op) => self.wait(op).await,
            None => Ok(()),
        }
    }

    async fn simulate_eviction(
        &self,
        resource_group: &str,
        name: &str,
    ) -> Result<(), ComputeError> {
        let now = self.clock.now();
        lock(&self.cloud)
            .simulate_eviction(resource_group, name, now)
            .map_err(|error| error.to_compute_error())
    }
}

/// What a headless run produced.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Simulated start, Unix ms.
    pub start_unix_ms: i64,
    /// Simulated end, Unix ms.
    pub end_unix_ms: i64,
    /// Log entries per kind.
    pub counts: BTreeMap<String, usize>,
    /// The whole log.
    pub log: Vec<LogEntry>,
    /// The bill at the end.
    pub bill: Bill,
}

/// The model on a virtual clock.
#[derive(Debug)]
pub struct DeterministicSim {
    cloud: Arc<Mutex<SpotCloud>>,
    clock: Arc<VirtualClock>,
    seed: u64,
}

/// The image the headless fleet uses.
const FLEET_IMAGE: &str = "Canonical:ubuntu-24_04-lts:server:latest";

impl DeterministicSim {
    /// A simulation of `scenario` from `seed`, starting at the scenario's `start_unix` or
    /// 2026-01-01T00:00:00Z, on a manual clock.
    ///
    /// # Errors
    /// If a trace cannot be loaded.
    pub fn new(scenario: Scenario, seed: u64, traces_dir: &Path) -> Result<Self, ScenarioError> {
        let start = Timestamp::from_unix_secs(scenario.start_unix.unwrap_or(DEFAULT_START_UNIX));
        let cloud = SpotCloud::new(scenario, seed, start, traces_dir)?;
        Ok(Self {
            cloud: Arc::new(Mutex::new(cloud)),
            clock: Arc::new(VirtualClock::manual(start)),
            seed,
        })
    }

    /// The shared model.
    #[must_use]
    pub fn cloud(&self) -> Arc<Mutex<SpotCloud>> {
        Arc::clone(&self.cloud)
    }

    /// The virtual clock.
    #[must_use]
    pub fn clock(&self) -> Arc<VirtualClock> {
        Arc::clone(&self.clock)
    }

    /// `ComputeCloud` on this simulation, on its clock.
    #[must_use]
    pub fn compute(&self) -> SimCompute {
        SimCompute::new(Arc::clone(&self.cloud), self.clock.clone())
    }

    /// Moves the clock and the model to `start + elapsed`.
    pub fn advance_to_elapsed(&self, elapsed: Duration) {
        let mut cloud = lock(&self.cloud);
        let at = cloud.start_time().plus(elapsed);
        self.clock.set(at);
        cloud.advance_to(at);
    }

    /// Runs the scenario's `[[fleet]]` for `duration`: creates the VMs at the start and, at
    /// every tick, recreates the deleted ones and restarts the deallocated ones (a naive
    /// baseline that retries in place). Returns the log and the bill.
    pub fn run_fleet(&self, duration: Duration) -> RunReport {
        let mut cloud = lock(&self.cloud);
        let start = cloud.start_time();
        let end = start.plus(duration);
        let tick = cloud.scenario().tick;
        let fleet = cloud.scenario().fleet.clone();
        let mut t = cloud.now();
        let mut first = true;
        loop {
            cloud.advance_to(t);
            for pool in &fleet {
                if !first && !pool.replace {
                    continue;
                }
                for n in 0..pool.count {
                    let name = format!("{}-{n}", pool.prefix);
                    match cloud.get("fleet", &name, t) {
                        Ok(vm) if vm.power == PowerState::Deallocated => {
                            let _refused_is_logged = cloud.start("fleet", &name, t);
                        }
                        Ok(_) => {}
                        Err(_) => {
                            let spec = fleet_spec(pool, &name);
                            let _refused_is_logged = cloud.create_or_update(
                                CreateVm {
                                    subscription: SIM_SUBSCRIPTION.to_owned(),
                                    spec,
                                    zone: None,
                                    properties: serde_json::Value::Null,
                                },
                                t,
                            );
                        }
                    }
                }
            }
            first = false;
            if t >= end {
                break;
            }
            t = t.plus(tick).min(end);
        }
        self.clock.set(end);
        let bill = cloud.bill(end);
        let log = cloud.log().to_vec();
        let mut counts = BTreeMap::new();
        for entry in &log {
            let kind = serde_json::to_value(entry.kind)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default();
            *counts.entry(kind).or_insert(0) += 1;
        }
        RunReport {
            scenario: cloud.scenario().name.clone(),
            seed: self.seed,
            start_unix_ms: start.unix_millis(),
            end_unix_ms: end.unix_millis(),
            counts,
            log,
            bill,
        }
    }
}

fn fleet_spec(pool: &super::scenario::FleetSpec, name: &str) -> VmSpec {
    let priority = if pool.priority.eq_ignore_ascii_case("regular") {
        Priority::Regular
    } else {
        Priority::Spot
    };
    let spot = priority == Priority::Spot;
    VmSpec {
        name: name.to_owned(),
        resource_group: "fleet".to_owned(),
        offering: OfferingId::new(pool.size.clone(), pool.region.clone()),
        priority,
        eviction_policy: spot.then(|| {
            if pool.eviction_policy.eq_ignore_ascii_case("delete") {
                EvictionPolicy::Delete
            } else {
                EvictionPolicy::Deallocate
            }
        }),
        max_price: spot.then(|| MaxPrice::from_arm(pool.max_price)),
        image: FLEET_IMAGE.to_owned(),
        user_data: None,
        user_assigned_identities: Vec::new(),
        tags: BTreeMap::from([("spotkit-pool".to_owned(), pool.prefix.clone())]),
    }
}
