//! The reconcile runner against an in-memory compute cloud with scripted failures, in paused
//! tokio time (virtual: sleeps advance the clock at once).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spotkit_cloud::{CapacityErrorCode, Clock, ComputeCloud, ComputeError};
use spotkit_core::Timestamp;
use spotkit_core::compute::{OfferingId, PowerState, ProvisioningState, VmObservation, VmSpec};
use spotkit_core::events::EventType;
use spotkit_core::orchestrator::{Candidate, PoolMachine, PoolSpec, TAG_POOL, Target};
use spotkit_orchestrator::{AgentReport, PoolRunner};
use tokio::sync::{mpsc, oneshot};

/// Wall-clock time that follows tokio's (paused) clock.
struct TokioClock {
    base: Timestamp,
    start: tokio::time::Instant,
}

impl TokioClock {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            base: Timestamp::from_unix_secs(1_700_000_000),
            #[allow(clippy::disallowed_methods)] // paused tokio time is the test's virtual clock
            start: tokio::time::Instant::now(),
        })
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        #[allow(clippy::disallowed_methods)] // paused tokio time is the test's virtual clock
        let elapsed = tokio::time::Instant::now() - self.start;
        self.base.plus(elapsed)
    }

    fn sleep_until(&self, until: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let wait = until.since(self.now());
        Box::pin(tokio::time::sleep(wait))
    }
}

#[derive(Default)]
struct State {
    vms: BTreeMap<String, VmObservation>,
    no_capacity: BTreeSet<String>,
    creates: Vec<(String, OfferingId)>,
    failed_creates: Vec<OfferingId>,
    lists: usize,
    throttle_next_create: Option<Duration>,
}

/// An in-memory ARM: creates take 20 s, capacity errors are scripted per region.
#[derive(Default)]
struct FakeCloud {
    state: Mutex<State>,
}

impl FakeCloud {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

impl ComputeCloud for FakeCloud {
    async fn create_vm(&self, spec: &VmSpec) -> Result<VmObservation, ComputeError> {
        tokio::time::sleep(Duration::from_secs(20)).await;
        let mut s = self.state();
        if let Some(retry_after) = s.throttle_next_create.take() {
            return Err(ComputeError::Throttled { retry_after });
        }
        if s.no_capacity.contains(&spec.offering.region) {
            s.failed_creates.push(spec.offering.clone());
            return Err(ComputeError::Capacity {
                offering: spec.offering.clone(),
                code: CapacityErrorCode::SkuNotAvailable,
                message: "The requested VM size is currently not available".to_string(),
            });
        }
        s.creates.push((spec.name.clone(), spec.offering.clone()));
        let vm = VmObservation {
            name: spec.name.clone(),
            resource_group: spec.resource_group.clone(),
            id: format!("/rg/{}/vm/{}", spec.resource_group, spec.name),
            offering: spec.offering.clone(),
            priority: spec.priority,
            eviction_policy: spec.eviction_policy,
            max_price: spec.max_price,
            provisioning: ProvisioningState::Succeeded,
            power: PowerState::Running,
            tags: spec.tags.clone(),
            created_at: None,
        };
        s.vms.insert(spec.name.clone(), vm.clone());
        Ok(vm)
    }

    async fn get_vm(&self, _rg: &str, name: &str) -> Result<VmObservation, ComputeError> {
        self.state()
            .vms
            .get(name)
            .cloned()
            .ok_or_else(|| ComputeError::NotFound {
                name: name.to_string(),
            })
    }

    async fn list_vms(
        &self,
        tag_filter: Option<(&str, &str)>,
    ) -> Result<Vec<VmObservation>, ComputeError> {
        let mut s = self.state();
        s.lists += 1;
        Ok(s.vms
            .values()
            .filter(|vm| tag_filter.is_none_or(|(k, v)| vm.tags.get(k).is_some_and(|x| x == v)))
            .cloned()
            .collect())
    }

    async fn start_vm(&self, _rg: &str, name: &str) -> Result<(), ComputeError> {
        let mut s = self.state();
        let vm = s.vms.get_mut(name).ok_or_else(|| ComputeError::NotFound {
            name: name.to_string(),
        })?;
        vm.power = PowerState::Running;
        Ok(())
    }

    async fn deallocate_vm(&self, _rg: &str, name: &str) -> Result<(), ComputeError> {
        let mut s = self.state();
        if let Some(vm) = s.vms.get_mut(name) {
            vm.power = PowerState::Deallocated;
        }
        Ok(())
    }

    async fn delete_vm(&self, _rg: &str, name: &str) -> Result<(), ComputeError> {
        tokio::time::sleep(Duration::from_secs(5)).await;
        self.state().vms.remove(name);
        Ok(())
    }

    async fn simulate_eviction(&self, _rg: &str, name: &str) -> Result<(), ComputeError> {
        self.state().vms.remove(name);
        Ok(())
    }
}

fn spec() -> PoolSpec {
    let cands = ["r0", "r1", "r2"]
        .iter()
        .enumerate()
        .map(|(i, r)| Candidate {
            offering: OfferingId::new("Standard_D4s_v5", *r),
            vcpus: 4,
            spot_capable: true,
            spot_price: Some(0.03),
            payg_price: Some(0.2),
            band: None,
            rank: u32::try_from(i).unwrap(),
        })
        .collect();
    let mut s = PoolSpec::new("jobs", Target::Vms(4), cands);
    s.template.resource_group = "rg".to_string();
    s.template.image = "Canonical:ubuntu-24_04-lts:server:latest".to_string();
    s.limits.max_concurrent_operations = 2;
    s
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(start_paused = true)]
async fn fills_the_pool_around_capacity_errors_and_replaces_an_evicted_vm_at_its_notice() {
    let cloud = Arc::new(FakeCloud::default());
    cloud.state().no_capacity.insert("r0".to_string());
    let clock = TokioClock::new();
    let machine = PoolMachine::new(spec(), clock.now(), 9);
    let (reports_tx, reports) = mpsc::channel(16);
    let runner = PoolRunner::new(Arc::clone(&cloud), Arc::clone(&clock), machine, reports);
    let status = runner.status();
    let (stop_tx, stop) = oneshot::channel::<()>();
    let task = tokio::spawn(runner.run(async {
        let _ = stop.await;
    }));

    wait_for("the pool at its target", || status.borrow().running == 4).await;
    {
        let s = cloud.state();
        assert_eq!(s.vms.len(), 4);
        assert!(
            s.failed_creates.iter().any(|o| o.region == "r0"),
            "r0 was tried and refused"
        );
        assert!(s.vms.values().all(|vm| vm.offering.region != "r0"));
        assert!(s.vms.values().all(|vm| vm.tags[TAG_POOL] == "jobs"));
    }
    let st = status.borrow().clone();
    assert!(st.unavailable.iter().any(|(o, _, _)| o.region == "r0"));

    // An agent posts a Preempt notice; the replacement is created while the VM still drains.
    let victim = cloud.state().vms.keys().next().unwrap().clone();
    let creates_before = cloud.state().creates.len();
    reports_tx
        .send(AgentReport::Notice {
            vm_name: victim.clone(),
            event_type: EventType::Preempt,
            not_before: Some(clock.now().plus(Duration::from_secs(30))),
            observed_at: clock.now(),
        })
        .await
        .unwrap();
    wait_for("a replacement", || {
        cloud.state().creates.len() > creates_before
    })
    .await;
    assert!(cloud.state().vms.contains_key(&victim), "still draining");
    // Then Azure evicts it.
    cloud.state().vms.remove(&victim);
    wait_for("the replacement running", || {
        let s = status.borrow();
        s.running == 4 && s.times_to_replace().len() == 1
    })
    .await;
    let st = status.borrow().clone();
    assert_eq!(st.evictions.len(), 1);
    assert_eq!(st.evictions[0].vm, victim);
    // The create takes 20 s of (virtual) time: replaced within a few seconds of that.
    let ttr = st.times_to_replace()[0];
    assert!(
        ttr >= Duration::from_secs(20) && ttr < Duration::from_secs(40),
        "{ttr:?}"
    );

    stop_tx.send(()).unwrap();
    let machine = task.await.unwrap();
    assert_eq!(machine.status().pending.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_throttled_create_is_retried_after_retry_after() {
    let cloud = Arc::new(FakeCloud::default());
    cloud.state().throttle_next_create = Some(Duration::from_secs(60));
    let clock = TokioClock::new();
    let mut s = spec();
    s.target = Target::Vms(1);
    let start = clock.now();
    let machine = PoolMachine::new(s, start, 9);
    let (_reports_tx, reports) = mpsc::channel(1);
    let runner = PoolRunner::new(Arc::clone(&cloud), Arc::clone(&clock), machine, reports);
    let status = runner.status();
    let (stop_tx, stop) = oneshot::channel::<()>();
    let task = tokio::spawn(runner.run(async {
        let _ = stop.await;
    }));
    wait_for("the VM", || status.borrow().running == 1).await;
    // 20 s (throttled create) + 60 s hold + 20 s (create).
    let took = clock.now().since(start);
    assert!(took >= Duration::from_secs(100), "{took:?}");
    assert!(took < Duration::from_secs(110), "{took:?}");
    assert!(cloud.state().lists >= 1);
    stop_tx.send(()).unwrap();
    let _ = task.await.unwrap();
}
