//! The deterministic mode: same seed and scenario give the same event log, bit for bit; the
//! `ComputeCloud` seam works on virtual time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use spotkit_cloud::{CapacityErrorCode, Clock, ComputeCloud, ComputeError};
use spotkit_core::compute::{EvictionPolicy, MaxPrice, OfferingId, PowerState, Priority, VmSpec};
use spotkit_sim::cloud::{DeterministicSim, LogKind, Scenario, VirtualClock};

fn traces_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces")
}

fn run(seed: u64) -> String {
    let mut scenario = Scenario::builtin_default();
    // Busier than the default so a few hours show every kind of entry.
    scenario.eviction.rate_scale = 4.0;
    let sim = DeterministicSim::new(scenario, seed, &traces_dir()).unwrap();
    let report = sim.run_fleet(Duration::from_secs(6 * 3600));
    serde_json::to_string(&(&report.log, &report.bill)).unwrap()
}

#[test]
fn same_seed_same_scenario_gives_the_same_event_log_bit_for_bit() {
    let first = run(42);
    let second = run(42);
    assert_eq!(first, second);
    assert!(
        first.contains("\"evicted\""),
        "the run should see evictions"
    );
    assert_ne!(first, run(43), "another seed gives another history");
}

#[test]
fn storm_scenario_parses_and_runs() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/storm.toml");
    let scenario = Scenario::from_file(&path).unwrap();
    let sim = DeterministicSim::new(scenario, 1, &traces_dir()).unwrap();
    let report = sim.run_fleet(Duration::from_secs(3 * 3600));
    assert!(
        report.counts.get("evicted").copied().unwrap_or(0) >= 5,
        "{:?}",
        report.counts
    );
    assert!(
        report.counts.get("refused").copied().unwrap_or(0) >= 1,
        "{:?}",
        report.counts
    );
}

#[test]
fn the_demo_scenario_is_3_regions_by_4_sizes_without_stochastic_evictions() {
    let scenario = Scenario::from_toml(spotkit_sim::cloud::DEMO_SCENARIO_TOML, "demo").unwrap();
    assert_eq!(scenario.regions.len(), 3);
    assert_eq!(scenario.sizes.len(), 4);
    assert_eq!(scenario.offerings.len(), 12);
    // The demo scripts its storm against the offerings its pool occupies; nothing else evicts.
    let sim = DeterministicSim::new(scenario, 7, &traces_dir()).unwrap();
    let report = sim.run_fleet(Duration::from_secs(3600));
    assert_eq!(
        report.counts.get("evicted").copied().unwrap_or(0),
        0,
        "{:?}",
        report.counts
    );
}

#[test]
fn traces_scenario_loads_real_traces() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/traces.toml");
    if !traces_dir().exists() {
        eprintln!("skipping: no traces at {}", traces_dir().display());
        return;
    }
    let scenario = Scenario::from_file(&path).unwrap();
    let sim = DeterministicSim::new(scenario, 1, &traces_dir()).unwrap();
    let report = sim.run_fleet(Duration::from_secs(24 * 3600));
    assert!(
        report.counts.get("capacity_changed").copied().unwrap_or(0) > 3,
        "{:?}",
        report.counts
    );
}

fn spot_vm(name: &str) -> VmSpec {
    VmSpec {
        name: name.to_owned(),
        resource_group: "rg".to_owned(),
        offering: OfferingId::new("Standard_D2s_v5", "eastus"),
        priority: Priority::Spot,
        eviction_policy: Some(EvictionPolicy::Deallocate),
        max_price: Some(MaxPrice::CappedAtPayAsYouGo),
        image: "Canonical:ubuntu-24_04-lts:server:latest".to_owned(),
        user_data: None,
        user_assigned_identities: Vec::new(),
        tags: [("pool".to_owned(), "p1".to_owned())].into(),
    }
}

#[tokio::test]
async fn compute_cloud_seam_runs_on_virtual_time() {
    let mut scenario = Scenario::builtin_default();
    scenario.eviction.rate_scale = 0.0;
    let sim = DeterministicSim::new(scenario, 5, &traces_dir()).unwrap();
    let clock = sim.clock();
    let compute = sim.compute();
    // A driver task moves time while the seam waits for the create to finish.
    let ticker = {
        let clock = Arc::clone(&clock);
        tokio::spawn(async move {
            for _ in 0..10_000 {
                clock.advance(Duration::from_secs(1));
                tokio::task::yield_now().await;
            }
        })
    };
    let start = clock.now();
    let vm = compute.create_vm(&spot_vm("w1")).await.unwrap();
    assert_eq!(vm.power, PowerState::Running);
    assert!(clock.now().since(start) >= Duration::from_secs(30));
    let listed = compute.list_vms(Some(("pool", "p1"))).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        compute
            .list_vms(Some(("pool", "other")))
            .await
            .unwrap()
            .is_empty()
    );
    compute.simulate_eviction("rg", "w1").await.unwrap();
    compute.deallocate_vm("rg", "w1").await.unwrap_or(());
    ticker.await.unwrap();
    assert!(matches!(
        compute.get_vm("rg", "nope").await,
        Err(ComputeError::NotFound { .. })
    ));
    let log = sim.cloud().lock().unwrap().log().to_vec();
    assert!(log.iter().any(|entry| entry.kind == LogKind::Created));
}

#[tokio::test]
async fn auto_advancing_clock_runs_a_driver_without_waiting() {
    let mut scenario = Scenario::builtin_default();
    scenario.eviction.rate_scale = 0.0;
    scenario.offerings[0].capacity = 1;
    let sim = DeterministicSim::new(scenario, 5, &traces_dir()).unwrap();
    let clock = Arc::new(VirtualClock::auto_advance(sim.clock().now()));
    let compute = spotkit_sim::cloud::SimCompute::new(sim.cloud(), clock.clone());
    compute.create_vm(&spot_vm("a")).await.unwrap();
    let error = compute.create_vm(&spot_vm("b")).await.unwrap_err();
    assert!(matches!(
        error,
        ComputeError::Capacity {
            code: CapacityErrorCode::SkuNotAvailable,
            ..
        }
    ));
    compute.delete_vm("rg", "a").await.unwrap();
    compute.delete_vm("rg", "a").await.unwrap();
    compute.create_vm(&spot_vm("b")).await.unwrap();
}
