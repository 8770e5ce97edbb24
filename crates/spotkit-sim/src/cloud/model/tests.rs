use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use spotkit_cloud::CapacityErrorCode;
use spotkit_core::Timestamp;
use spotkit_core::compute::{EvictionPolicy, MaxPrice, OfferingId, PowerState, Priority, VmSpec};

use super::*;
use crate::cloud::Scenario;

const START: i64 = 1_767_225_600;

fn at(seconds: u64) -> Timestamp {
    Timestamp::from_unix_secs(START).plus(Duration::from_secs(seconds))
}

fn scenario(extra: &str) -> Scenario {
    let text = format!(
        r#"
name = "unit"
tick = "10s"
[vm]
create = "30s"
start = "20s"
deallocate = "15s"
delete = "10s"
os_disk_gib = 100
disk_usd_per_gib_month = 0.073
[eviction]
notices = [{{ notice = "30s", weight = 1.0 }}]
correlation = 0.0
[[regions]]
name = "eastus"
zones = ["1", "2"]
[[sizes]]
name = "Standard_D2s_v5"
family = "standardDSv5Family"
vcpus = 2
memory_gib = 8
[[offerings]]
region = "eastus"
size = "Standard_D2s_v5"
payg = 0.096
spot = 0.01056
capacity = 2
driver = {{ kind = "steady" }}
{extra}
"#
    );
    Scenario::from_toml(&text, "unit test").unwrap()
}

fn cloud(extra: &str) -> SpotCloud {
    SpotCloud::new(scenario(extra), 7, at(0), Path::new("/nonexistent")).unwrap()
}

fn spot(name: &str, policy: EvictionPolicy) -> CreateVm {
    CreateVm {
        subscription: "sub".to_owned(),
        spec: VmSpec {
            name: name.to_owned(),
            resource_group: "rg".to_owned(),
            offering: OfferingId::new("Standard_D2s_v5", "eastus"),
            priority: Priority::Spot,
            eviction_policy: Some(policy),
            max_price: Some(MaxPrice::CappedAtPayAsYouGo),
            image: "Canonical:ubuntu-24_04-lts:server:latest".to_owned(),
            user_data: None,
            user_assigned_identities: Vec::new(),
            tags: BTreeMap::new(),
        },
        zone: None,
        properties: serde_json::Value::Null,
    }
}

fn running(cloud: &mut SpotCloud, name: &str, policy: EvictionPolicy, now: Timestamp) {
    let outcome = cloud.create_or_update(spot(name, policy), now).unwrap();
    assert!(outcome.created);
    let op = outcome.op.unwrap();
    assert_eq!(op.status, OpStatus::InProgress);
    assert_eq!(op.completes_at, op.started_at.plus(Duration::from_secs(30)));
    assert!(op.started_at >= now);
    assert_eq!(
        cloud.get("rg", name, op.completes_at).unwrap().power,
        PowerState::Running
    );
}

fn imds_events(cloud: &SpotCloud, name: &str, now: Timestamp) -> serde_json::Value {
    let imds = cloud.imds("rg", name).unwrap();
    let json = imds.lock().unwrap().document_json(now);
    serde_json::from_str(&json).unwrap()
}

fn capacity_event(at: &str, capacity: u32, extra: &str) -> String {
    format!(
        "[[events]]\nat = \"{at}\"\nkind = \"capacity\"\nregion = \"eastus\"\ncapacity = {capacity}\n{extra}\n"
    )
}

#[test]
fn eviction_notice_shows_preempt_on_that_vm_then_delete_removes_it() {
    let mut cloud = cloud("");
    running(&mut cloud, "a", EvictionPolicy::Delete, at(0));
    running(&mut cloud, "b", EvictionPolicy::Delete, at(0));
    cloud.simulate_eviction("rg", "a", at(100)).unwrap();
    let document = imds_events(&cloud, "a", at(101));
    let event = &document["Events"][0];
    assert_eq!(event["EventType"], "Preempt");
    assert_eq!(event["EventStatus"], "Scheduled");
    assert_eq!(event["Resources"], serde_json::json!(["a"]));
    assert_eq!(event["NotBefore"], crate::imds::http_date(at(130)));
    assert_eq!(
        imds_events(&cloud, "b", at(101))["Events"],
        serde_json::json!([])
    );
    assert_eq!(
        cloud.get("rg", "a", at(129)).unwrap().power,
        PowerState::Running
    );
    assert!(matches!(
        cloud.get("rg", "a", at(130)),
        Err(SimError::NotFound { .. })
    ));
    assert!(cloud.get("rg", "b", at(130)).is_ok());
    let evicted = cloud
        .log()
        .iter()
        .find(|entry| entry.kind == LogKind::Evicted)
        .unwrap();
    assert_eq!(evicted.at_unix_ms, at(130).unix_millis());
    assert_eq!(evicted.detail, "deleted");
}

#[test]
fn deallocate_eviction_keeps_the_vm_and_start_fails_until_capacity_returns() {
    let mut cloud = cloud(&capacity_event("2m", 0, "for = \"10m\""));
    running(&mut cloud, "a", EvictionPolicy::Deallocate, at(0));
    // Capacity drops to 0 at 120 s: Preempt with 30 s notice, deallocated at 150 s.
    let document = imds_events(&cloud, "a", at(0));
    assert_eq!(document["Events"], serde_json::json!([]));
    cloud.advance_to(at(121));
    assert_eq!(
        imds_events(&cloud, "a", at(121))["Events"][0]["EventType"],
        "Preempt"
    );
    let vm = cloud.get("rg", "a", at(150)).unwrap();
    assert_eq!(vm.power, PowerState::Deallocated);
    assert_eq!(vm.evictions, 1);
    let refused = cloud.start("rg", "a", at(200)).unwrap_err();
    assert!(matches!(
        refused,
        SimError::Capacity {
            code: CapacityErrorCode::SkuNotAvailable,
            ..
        }
    ));
    assert_eq!(refused.http_status(), 409);
    assert_eq!(refused.arm_code(), "SkuNotAvailable");
    // Capacity returns at 12 min.
    assert!(cloud.start("rg", "a", at(719)).is_err());
    let op = cloud.start("rg", "a", at(720)).unwrap();
    assert_eq!(
        cloud.get("rg", "a", op.completes_at).unwrap().power,
        PowerState::Running
    );
}

#[test]
fn create_fails_with_sku_not_available_when_spot_capacity_is_used_up() {
    let mut cloud = cloud("");
    running(&mut cloud, "a", EvictionPolicy::Delete, at(0));
    cloud
        .create_or_update(spot("b", EvictionPolicy::Delete), at(1))
        .unwrap();
    let error = cloud
        .create_or_update(spot("c", EvictionPolicy::Delete), at(2))
        .unwrap_err();
    assert_eq!(error.arm_code(), "SkuNotAvailable");
    let refused = cloud
        .log()
        .iter()
        .filter(|entry| entry.kind == LogKind::Refused)
        .count();
    assert_eq!(refused, 1);
}

#[test]
fn price_above_max_price_evicts_with_notice_and_refuses_new_vms() {
    let extra = "[[events]]\nat = \"5m\"\nkind = \"price\"\nspot = 0.05\n";
    let mut cloud = cloud(extra);
    let mut capped = spot("capped", EvictionPolicy::Delete);
    capped.spec.max_price = Some(MaxPrice::UsdPerHour(0.02));
    cloud.create_or_update(capped, at(0)).unwrap();
    running(&mut cloud, "payg-capped", EvictionPolicy::Delete, at(0));
    cloud.advance_to(at(300));
    let noticed: Vec<_> = cloud
        .log()
        .iter()
        .filter(|entry| entry.kind == LogKind::EvictionNoticed)
        .collect();
    assert_eq!(noticed.len(), 1);
    assert_eq!(noticed[0].vm.as_deref(), Some("capped"));
    assert!(noticed[0].detail.contains("Price"));
    assert!(cloud.get("rg", "capped", at(330)).is_err());
    assert!(cloud.get("rg", "payg-capped", at(330)).is_ok());
    let mut low = spot("low", EvictionPolicy::Delete);
    low.spec.max_price = Some(MaxPrice::UsdPerHour(0.01));
    let error = cloud.create_or_update(low, at(400)).unwrap_err();
    assert_eq!(error.arm_code(), "SpotPriceGreaterThanProvidedMaxPrice");
}

#[test]
fn spot_quota_refuses_with_operation_not_allowed_naming_low_priority_cores() {
    let extra = "[[quotas]]\nregion = \"eastus\"\nfamily = \"LowPriorityCores\"\nlimit = 3\n";
    let mut cloud = cloud(extra);
    running(&mut cloud, "a", EvictionPolicy::Delete, at(0));
    let error = cloud
        .create_or_update(spot("b", EvictionPolicy::Delete), at(40))
        .unwrap_err();
    assert_eq!(error.arm_code(), "OperationNotAllowed");
    assert_eq!(error.http_status(), 409);
    assert!(error.to_string().contains("LowPriorityCores"));
    assert!(matches!(
        error.to_compute_error(),
        spotkit_cloud::ComputeError::QuotaExceeded { .. }
    ));
}

#[test]
fn a_capacity_drop_evicts_several_vms_at_the_same_instant() {
    let mut cloud = cloud(&capacity_event("1m", 0, ""));
    running(&mut cloud, "a", EvictionPolicy::Delete, at(0));
    running(&mut cloud, "b", EvictionPolicy::Delete, at(0));
    cloud.advance_to(at(120));
    let evicted: Vec<_> = cloud
        .log()
        .iter()
        .filter(|entry| entry.kind == LogKind::Evicted)
        .map(|entry| entry.at_unix_ms)
        .collect();
    // b finished creating at 60 s, when capacity dropped: both go at 60 + 30 s.
    assert_eq!(evicted, vec![at(90).unix_millis(), at(90).unix_millis()]);
    assert!(cloud.list(None, at(120)).is_empty());
}

#[test]
fn eviction_right_after_creation_is_possible() {
    let extra = "";
    let mut scenario = scenario(extra);
    scenario.eviction.after_create_probability = 1.0;
    let mut cloud = SpotCloud::new(scenario, 1, at(0), Path::new("/x")).unwrap();
    cloud
        .create_or_update(spot("a", EvictionPolicy::Delete), at(0))
        .unwrap();
    cloud.advance_to(at(30));
    let document = imds_events(&cloud, "a", at(30));
    assert_eq!(document["Events"][0]["EventType"], "Preempt");
    assert!(cloud.get("rg", "a", at(60)).is_err());
}

#[test]
fn bill_adds_up_to_per_second_prices_including_deallocated_disks() {
    let extra = "[[events]]\nat = \"1h\"\nkind = \"price\"\nspot = 0.02\n";
    let mut cloud = cloud(extra);
    running(&mut cloud, "a", EvictionPolicy::Deallocate, at(0));
    // Running from 30 s; price 0.01056 until 3600 s, then 0.02; deallocated at 7200 + 15 s.
    let op = cloud.deallocate("rg", "a", at(7200)).unwrap();
    assert_eq!(op.completes_at, at(7215));
    let bill = cloud.bill(at(10_800));
    let line = &bill.lines[0];
    let expected_compute = 0.01056 * (3600.0 - 30.0) / 3600.0 + 0.02 * (7215.0 - 3600.0) / 3600.0;
    assert!(
        (line.compute_usd - expected_compute).abs() < 1e-12,
        "{line:?}"
    );
    let disk_per_hour = 100.0 * 0.073 / 730.0;
    let expected_disk = disk_per_hour * (10_800.0 - 30.0) / 3600.0;
    assert!((line.disk_usd - expected_disk).abs() < 1e-12);
    assert!((line.compute_seconds - (7215.0 - 30.0)).abs() < 1e-9);
    assert!((bill.total_usd - (expected_compute + expected_disk)).abs() < 1e-12);
    // Reading the bill often does not change it.
    let mut polled = cloud_with_polled_bill(extra);
    assert_eq!(
        polled.bill(at(10_800)).total_usd.to_bits(),
        bill.total_usd.to_bits()
    );
}

fn cloud_with_polled_bill(extra: &str) -> SpotCloud {
    let mut cloud = cloud(extra);
    running(&mut cloud, "a", EvictionPolicy::Deallocate, at(0));
    for second in (40..7200).step_by(37) {
        let _ = cloud.bill(at(second));
    }
    cloud.deallocate("rg", "a", at(7200)).unwrap();
    cloud
}

#[test]
fn band_evictions_follow_the_hourly_rate() {
    let mut scenario = scenario("");
    scenario.offerings[0].capacity = 1000;
    scenario.offerings[0].driver = crate::cloud::CapacityDriverSpec::Band;
    scenario.offerings[0].band = Some(spotkit_core::advisor::EvictionBand::TwentyPlus);
    scenario.eviction.reclaim = Duration::ZERO;
    let mut cloud = SpotCloud::new(scenario, 3, at(0), Path::new("/x")).unwrap();
    for n in 0..400 {
        cloud
            .create_or_update(spot(&format!("vm{n}"), EvictionPolicy::Deallocate), at(0))
            .unwrap();
    }
    cloud.advance_to(at(30 + 3600));
    let evicted = cloud
        .log()
        .iter()
        .filter(|entry| entry.kind == LogKind::EvictionNoticed)
        .count();
    // 25 % per hour of 400 VMs: 100 expected; 5 standard deviations is about +-43.
    assert!((57..=143).contains(&evicted), "{evicted} evictions");
}

#[test]
fn correlated_evictions_follow_within_the_window() {
    let mut scenario = scenario("");
    scenario.offerings[0].capacity = 100;
    scenario.offerings[0].driver = crate::cloud::CapacityDriverSpec::Band;
    scenario.offerings[0].band = Some(spotkit_core::advisor::EvictionBand::ZeroToFive);
    scenario.eviction.correlation = 1.0;
    scenario.eviction.correlation_window = Duration::from_secs(180);
    scenario.eviction.reclaim = Duration::ZERO;
    let mut cloud = SpotCloud::new(scenario, 11, at(0), Path::new("/x")).unwrap();
    for n in 0..20 {
        cloud
            .create_or_update(spot(&format!("vm{n}"), EvictionPolicy::Deallocate), at(0))
            .unwrap();
    }
    cloud.advance_to(at(12 * 3600));
    let noticed: Vec<i64> = cloud
        .log()
        .iter()
        .filter(|entry| entry.kind == LogKind::EvictionNoticed)
        .map(|entry| entry.at_unix_ms)
        .collect();
    assert_eq!(noticed.len(), 20, "everyone follows the first");
    assert!(noticed[19] - noticed[0] <= 180_000 + 10_000);
}

#[test]
fn trace_driver_maps_the_file_with_its_polarity() {
    let traces = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces");
    let file = "availability/1-node/aws-02-15-2023/us-east-1a_v100_1.json";
    if !traces.join(file).exists() {
        eprintln!("skipping: {} not present", traces.display());
        return;
    }
    let extra = "";
    let mut scenario = scenario(extra);
    scenario.offerings[0].driver = crate::cloud::CapacityDriverSpec::Trace {
        file: file.to_owned(),
        polarity: crate::cloud::TracePolarity::OneIsUnavailable,
        capacity_scale: 3,
        start_offset: None,
    };
    let trace = crate::cloud::CapacityTrace::load(
        &traces,
        file,
        crate::cloud::TracePolarity::OneIsUnavailable,
        3,
        Duration::ZERO,
    )
    .unwrap();
    let mut cloud = SpotCloud::new(scenario, 1, at(0), &traces).unwrap();
    // 1 = unavailable: capacity is 3 while the file says 0, 0 once it says 1, 195 s per value.
    assert_eq!(trace.gap_seconds, 195);
    let first_out = trace.values.iter().position(|value| *value == 1).unwrap();
    let back = first_out
        + trace.values[first_out..]
            .iter()
            .position(|value| *value == 0)
            .unwrap();
    let seconds = |index: usize| 195 * index as u64;
    assert_eq!(trace.values[0], 0);
    assert_eq!(cloud.catalog(at(0)).offerings[0].spot_capacity_vms, 3);
    assert_eq!(
        cloud.catalog(at(seconds(first_out) - 1)).offerings[0].spot_capacity_vms,
        3
    );
    assert_eq!(
        cloud.catalog(at(seconds(first_out))).offerings[0].spot_capacity_vms,
        0
    );
    assert_eq!(
        cloud.catalog(at(seconds(back))).offerings[0].spot_capacity_vms,
        3
    );
}

#[test]
fn catalog_reports_prices_quota_use_and_capacity_now() {
    let extra = "[[quotas]]\nregion = \"eastus\"\nfamily = \"LowPriorityCores\"\nlimit = 10\n[[events]]\nat = \"1h\"\nkind = \"price\"\nspot = 0.02\n";
    let mut cloud = cloud(extra);
    running(&mut cloud, "a", EvictionPolicy::Delete, at(0));
    let snapshot = cloud.catalog(at(4000));
    let offering = &snapshot.offerings[0];
    assert_eq!(offering.spot_linux, Some(0.02));
    assert_eq!(
        offering.spot_price_history,
        vec![(at(0), 0.01056), (at(3600), 0.02)]
    );
    assert_eq!(offering.spot_capacity_vms, 1);
    assert_eq!(snapshot.quotas[0].used_vcpus, 2);
}

#[test]
fn an_eviction_landing_during_a_delete_completes_the_delete() {
    let mut cloud = cloud("");
    running(&mut cloud, "a", EvictionPolicy::Deallocate, at(0));
    cloud.simulate_eviction("rg", "a", at(40)).unwrap();
    let op = cloud.delete("rg", "a", at(65)).unwrap().unwrap();
    // NotBefore 70 s comes before the delete's 75 s: the delete ends at 70 s, Succeeded.
    cloud.advance_to(at(70));
    assert!(cloud.get("rg", "a", at(70)).is_err());
    let op = cloud.operation(&op.id, at(70)).unwrap();
    assert_eq!(op.status, OpStatus::Succeeded);
    assert_eq!(op.completes_at, at(70));
}

#[test]
fn each_price_change_is_logged_once() {
    let mut scenario = scenario("[[events]]\nat = \"1h\"\nkind = \"price\"\nspot = 0.02\n");
    scenario.offerings[0].price_steps = vec![crate::cloud::PriceStep {
        at: Duration::from_secs(7200),
        spot: 0.03,
    }];
    let mut cloud = SpotCloud::new(scenario, 1, at(0), Path::new("/x")).unwrap();
    cloud.advance_to(at(3 * 3600));
    let changes: Vec<_> = cloud
        .log()
        .iter()
        .filter(|entry| entry.kind == LogKind::PriceChanged)
        .map(|entry| entry.at_unix_ms)
        .collect();
    assert_eq!(
        changes,
        vec![at(3600).unix_millis(), at(7200).unix_millis()]
    );
    assert_eq!(
        cloud.catalog(at(3 * 3600)).offerings[0].spot_linux,
        Some(0.03)
    );
}
