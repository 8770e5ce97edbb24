//! `ArmClient` and `AzureCompute` against a scripted ARM fake on 127.0.0.1: long-running
//! operations, throttling, error classification, paging, and that tokens stay secret.

mod arm_support;

use std::sync::Arc;
use std::time::Duration;

use arm_support::{Answer, Seen, TOKEN, VirtualClock, client, fixture, serve};
use spotkit_azure::arm::{
    ArmClient, ArmClientOptions, ArmError, AzureCompute, AzureComputeOptions, LroOptions,
    OperationClass, StaticToken, wait_for_operation,
};
use spotkit_cloud::{CapacityErrorCode, ComputeCloud, ComputeError};
use spotkit_core::compute::{
    EvictionPolicy, MaxPrice, OfferingId, PowerState, Priority, ProvisioningState, VmSpec,
};

const SUB: &str = "00000000-0000-0000-0000-000000000001";

fn vm_json(name: &str, power: &str, tags: &str) -> String {
    format!(
        r#"{{"id":"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/{name}",
            "name":"{name}","location":"eastus","tags":{tags},
            "properties":{{"hardwareProfile":{{"vmSize":"Standard_D2s_v5"}},"priority":"Spot","evictionPolicy":"Deallocate",
            "billingProfile":{{"maxPrice":-1}},"provisioningState":"Succeeded","timeCreated":"2026-12-01T10:00:00.123+00:00",
            "instanceView":{{"statuses":[{{"code":"ProvisioningState/succeeded","level":"Info"}},{{"code":"PowerState/{power}","level":"Info","displayStatus":"VM {power}"}}]}}}}}}"#
    )
}

fn spec(name: &str) -> VmSpec {
    VmSpec {
        name: name.into(),
        resource_group: "rg1".into(),
        offering: OfferingId::new("Standard_D2s_v5", "eastus"),
        priority: Priority::Spot,
        eviction_policy: Some(EvictionPolicy::Deallocate),
        max_price: Some(MaxPrice::CappedAtPayAsYouGo),
        image: "Canonical:ubuntu-24_04-lts:server:latest".into(),
        user_data: None,
        user_assigned_identities: Vec::new(),
        tags: [("pool".to_string(), "a".to_string())].into(),
    }
}

fn compute(client: Arc<ArmClient>) -> AzureCompute {
    AzureCompute::new(
        client,
        SUB,
        AzureComputeOptions {
            lro: LroOptions {
                poll_interval: Duration::from_secs(3),
                ..LroOptions::default()
            },
            ..AzureComputeOptions::default()
        },
    )
}

#[tokio::test]
async fn create_polls_azure_async_operation_then_reads_the_vm() {
    let fake = serve(|base, req, _| match (req.method.as_str(), req.path()) {
        ("PUT", p) if p.ends_with("/virtualMachines/vm1") => Answer::json(201, vm_json("vm1", "starting", "{}"))
            .header("azure-asyncoperation", format!("{base}/subscriptions/{SUB}/providers/Microsoft.Compute/locations/eastus/operations/op1?api-version=2025-04-01"))
            .header("retry-after", "10"),
        ("GET", p) if p.ends_with("/operations/op1") => {
            // InProgress twice, then done.
            static POLLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = POLLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n < 2 {
                Answer::json(200, r#"{"status":"InProgress","name":"op1"}"#).header("retry-after", "7")
            } else {
                Answer::json(200, r#"{"status":"Succeeded","name":"op1"}"#)
            }
        }
        ("GET", p) if p.ends_with("/virtualMachines/vm1") => Answer::json(200, vm_json("vm1", "running", r#"{"pool":"a"}"#)),
        _ => Answer::json(404, r#"{"error":{"code":"NotFound","message":"no route"}}"#),
    })
    .await;
    let clock = VirtualClock::new();
    let azure = compute(client(&fake, clock.clone()));
    let vm = azure.create_vm(&spec("vm1")).await.unwrap();
    assert_eq!(vm.power, PowerState::Running);
    assert_eq!(vm.provisioning, ProvisioningState::Succeeded);
    assert_eq!(vm.priority, Priority::Spot);
    assert_eq!(vm.max_price, Some(MaxPrice::CappedAtPayAsYouGo));
    assert_eq!(vm.resource_group, "rg1");
    assert!(vm.created_at.is_some());
    // Retry-After of the PUT (10 s), then of each InProgress poll (7 s).
    assert_eq!(
        clock.sleeps(),
        vec![
            Duration::from_secs(10),
            Duration::from_secs(7),
            Duration::from_secs(7)
        ]
    );
    let seen = fake.seen();
    assert_eq!(seen.len(), 5);
    assert!(
        seen.iter()
            .all(|s| s.authorization == format!("Bearer {TOKEN}"))
    );
    let put = &seen[0];
    assert!(put.uri.contains("api-version=2025-04-01"), "{}", put.uri);
    let body = put.json();
    assert_eq!(body["properties"]["priority"], "Spot");
    assert_eq!(body["properties"]["billingProfile"]["maxPrice"], -1.0);
    assert_eq!(body["tags"]["pool"], "a");
    assert!(
        seen[4].uri.contains("$expand=instanceView"),
        "{}",
        seen[4].uri
    );
}

#[tokio::test]
async fn start_polls_location_with_retry_after_until_it_stops_answering_202() {
    let fake = serve(|base, req, i| match (req.method.as_str(), req.path()) {
        ("POST", p) if p.ends_with("/vm1/start") => Answer::empty(202)
            .header("location", format!("{base}/subscriptions/{SUB}/providers/Microsoft.Compute/locations/eastus/operations/op2?monitor=true&api-version=2025-04-01"))
            .header("retry-after", "4"),
        ("GET", p) if p.ends_with("/operations/op2") && i < 3 => Answer::empty(202).header("retry-after", "6"),
        ("GET", p) if p.ends_with("/operations/op2") => Answer::empty(200),
        _ => Answer::json(500, "{}"),
    })
    .await;
    let clock = VirtualClock::new();
    compute(client(&fake, clock.clone()))
        .start_vm("rg1", "vm1")
        .await
        .unwrap();
    assert_eq!(
        clock.sleeps(),
        vec![
            Duration::from_secs(4),
            Duration::from_secs(6),
            Duration::from_secs(6)
        ]
    );
    assert_eq!(fake.seen().len(), 4);
}

#[tokio::test]
async fn a_failed_operation_with_allocation_failed_is_capacity() {
    let fake = serve(|base, req, _| match req.method.as_str() {
        "PUT" => Answer::json(201, "{}").header("azure-asyncoperation", format!("{base}/op")),
        _ => Answer::json(200, r#"{"status":"Failed","error":{"code":"AllocationFailed","message":"Allocation failed. We do not have sufficient capacity for the requested VM size in this region."}}"#),
    })
    .await;
    let err = compute(client(&fake, VirtualClock::new()))
        .create_vm(&spec("vm1"))
        .await
        .unwrap_err();
    match err {
        ComputeError::Capacity { offering, code, .. } => {
            assert_eq!(code, CapacityErrorCode::AllocationFailed);
            assert_eq!(offering, OfferingId::new("Standard_D2s_v5", "eastus"));
        }
        other => panic!("expected Capacity, got {other:?}"),
    }
}

#[tokio::test]
async fn capacity_codes_map_to_their_capacity_error_codes() {
    let cases = [
        (
            409,
            r#"{"error":{"code":"SkuNotAvailable","message":"The requested tier for resource '…' is currently not available in location 'eastus' for subscription '…'"}}"#,
            CapacityErrorCode::SkuNotAvailable,
        ),
        (
            409,
            r#"{"error":{"code":"AllocationFailed","message":"Allocation failed."}}"#,
            CapacityErrorCode::AllocationFailed,
        ),
        (
            409,
            r#"{"error":{"code":"ZonalAllocationFailed","message":"Allocation failed in zone 1."}}"#,
            CapacityErrorCode::ZonalAllocationFailed,
        ),
        (
            409,
            r#"{"error":{"code":"OverconstrainedAllocationRequest","message":"Allocation failed. VM(s) with the following constraints cannot be allocated"}}"#,
            CapacityErrorCode::OverconstrainedAllocationRequest,
        ),
        (
            400,
            r#"{"error":{"code":"InvalidParameter","message":"outer","details":[{"code":"OverconstrainedZonalAllocationRequest","message":"inner"}]}}"#,
            CapacityErrorCode::OverconstrainedAllocationRequest,
        ),
        (
            409,
            r#"{"error":{"code":"DeploymentFailed","message":"outer","details":[{"code":"SpotPriceGreaterThanProvidedMaxPrice","message":"the spot price is above 0.01"}]}}"#,
            CapacityErrorCode::SpotPriceAboveMaxPrice,
        ),
    ];
    for (status, body, expected) in cases {
        let body = body.to_string();
        let fake = serve(move |_, _, _| Answer::json(status, body.clone())).await;
        let err = compute(client(&fake, VirtualClock::new()))
            .create_vm(&spec("vm1"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ComputeError::Capacity { code, .. } if *code == expected),
            "{expected:?}: got {err:?}"
        );
        assert_eq!(
            fake.seen().len(),
            1,
            "{expected:?}: capacity is not retried"
        );
    }
}

#[tokio::test]
async fn quota_operation_not_allowed_is_quota_exceeded() {
    let fake = serve(|_, _, _| Answer::json(403, r#"{"error":{"code":"OperationNotAllowed","message":"Operation could not be completed as it results in exceeding approved LowPriorityCores quota. Additional details - Deployment Model: Resource Manager, Location: eastus, Current Limit: 10, Current Usage: 8, Additional Required: 4, (Minimum) New Limit Required: 12."}}"#)).await;
    let err = compute(client(&fake, VirtualClock::new()))
        .create_vm(&spec("vm1"))
        .await
        .unwrap_err();
    match err {
        ComputeError::QuotaExceeded { message, offering } => {
            assert!(message.contains("LowPriorityCores"));
            assert_eq!(offering.region, "eastus");
        }
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
}

#[tokio::test]
async fn the_compute_429_example_is_throttling_not_quota() {
    // FACTS.md section 5, the troubleshooting doc's example (body without the error wrapper).
    let fake = serve(|_, _, _| {
        Answer::json(429, r#"{"code":"OperationNotAllowed","message":"The server rejected the request because too many requests have been received for this subscription.","details":[{"code":"TooManyRequests","target":"HighCostGet30Min","message":"{\"operationGroup\":\"HighCostGet30Min\",\"startTime\":\"2018-06-29T19:54:21.0914017+00:00\",\"endTime\":\"2018-06-29T20:14:21.0914017+00:00\",\"allowedRequestCount\":800,\"measuredRequestCount\":1238}"}]}"#)
            .header("retry-after", "1200")
            .header("x-ms-ratelimit-remaining-resource", "Microsoft.Compute/HighCostGet30Min;0")
    })
    .await;
    let clock = VirtualClock::new();
    let err = compute(client(&fake, clock.clone()))
        .list_vms(None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ComputeError::Throttled { retry_after } if retry_after == Duration::from_secs(1200)),
        "{err:?}"
    );
    // 1200 s is beyond max_retry_after: handed to the caller at once, no sleeping here.
    assert_eq!(fake.seen().len(), 1);
    assert!(clock.sleeps().is_empty());
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_then_succeeds() {
    let fake = serve(|_, _, i| {
        if i == 0 {
            Answer::json(
                429,
                r#"{"error":{"code":"TooManyRequests","message":"slow down"}}"#,
            )
            .header("retry-after", "17")
        } else {
            Answer::json(200, vm_json("vm1", "running", "{}"))
        }
    })
    .await;
    let clock = VirtualClock::new();
    let vm = compute(client(&fake, clock.clone()))
        .get_vm("rg1", "vm1")
        .await
        .unwrap();
    assert_eq!(vm.power, PowerState::Running);
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(17)]);
}

#[tokio::test]
async fn list_vms_follows_three_pages_and_filters_tags_client_side() {
    let fake = serve(|base, req, _| {
        let page = if req.uri.contains("page=2") { 2 } else if req.uri.contains("page=3") { 3 } else { 1 };
        let (vms, next) = match page {
            1 => (vec![vm_json("a1", "running", r#"{"Pool":"a"}"#), vm_json("b1", "running", r#"{"pool":"b"}"#)], Some(2)),
            2 => (vec![vm_json("a2", "deallocated", r#"{"pool":"a"}"#)], Some(3)),
            _ => (vec![vm_json("a3", "deallocating", r#"{"pool":"a"}"#)], None),
        };
        let next = next.map_or("null".to_string(), |n| format!("\"{base}/subscriptions/{SUB}/providers/Microsoft.Compute/virtualMachines?api-version=2025-04-01&statusOnly=true&page={n}\""));
        Answer::json(200, format!(r#"{{"value":[{}],"nextLink":{next}}}"#, vms.join(",")))
    })
    .await;
    let azure = compute(client(&fake, VirtualClock::new()));
    let all = azure.list_vms(None).await.unwrap();
    assert_eq!(all.len(), 4);
    let pool_a = azure.list_vms(Some(("pool", "a"))).await.unwrap();
    let names: Vec<_> = pool_a.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["a1", "a2", "a3"],
        "tag names compare case-insensitively"
    );
    assert_eq!(pool_a[1].power, PowerState::Deallocated);
    assert_eq!(pool_a[2].power, PowerState::Deallocating);
    let first = &fake.seen()[0];
    assert_eq!(
        first.uri,
        format!(
            "/subscriptions/{SUB}/providers/Microsoft.Compute/virtualMachines?api-version=2025-04-01&statusOnly=true"
        )
    );
    assert_eq!(fake.seen().len(), 6);
}

#[tokio::test]
async fn a_status_only_list_without_models_is_merged_with_the_models() {
    let fake = serve(|_, req, _| {
        let id = format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1");
        if req.uri.contains("statusOnly=true") {
            Answer::json(200, format!(r#"{{"value":[{{"id":"{id}","name":"vm1","location":"eastus","properties":{{"instanceView":{{"statuses":[{{"code":"PowerState/stopped"}}]}}}}}}]}}"#))
        } else {
            Answer::json(200, format!(r#"{{"value":[{}]}}"#, vm_json("vm1", "running", r#"{"pool":"a"}"#)))
        }
    })
    .await;
    let vms = compute(client(&fake, VirtualClock::new()))
        .list_vms(Some(("pool", "a")))
        .await
        .unwrap();
    assert_eq!(vms.len(), 1);
    assert_eq!(vms[0].offering.size, "Standard_D2s_v5");
    assert_eq!(
        vms[0].power,
        PowerState::Stopped,
        "the status-only view wins"
    );
}

#[tokio::test]
async fn delete_of_a_missing_vm_is_ok_and_simulate_eviction_is_a_204() {
    let fake = serve(|_, req, _| match req.method.as_str() {
        "DELETE" => Answer::json(404, r#"{"error":{"code":"ResourceNotFound","message":"The Resource 'Microsoft.Compute/virtualMachines/gone' under resource group 'rg1' was not found."}}"#),
        "POST" if req.path().ends_with("/simulateEviction") => Answer::empty(204),
        _ => Answer::json(404, r#"{"error":{"code":"ResourceNotFound","message":"no"}}"#),
    })
    .await;
    let azure = compute(client(&fake, VirtualClock::new()));
    azure.delete_vm("rg1", "gone").await.unwrap();
    azure.simulate_eviction("rg1", "vm1").await.unwrap();
    assert!(matches!(
        azure.get_vm("rg1", "gone").await,
        Err(ComputeError::NotFound { name }) if name == "gone"
    ));
    let evict = &fake.seen()[1];
    assert_eq!(
        evict.uri,
        format!(
            "/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1/simulateEviction?api-version=2025-04-01"
        )
    );
}

#[tokio::test]
async fn a_conflict_and_an_invalid_request_are_told_apart() {
    let fake = serve(|_, req, _| match req.method.as_str() {
        "POST" => Answer::json(409, r#"{"error":{"code":"OperationNotAllowed","message":"Operation 'start' is not allowed since the VM is marked for deletion."}}"#),
        _ => Answer::json(400, r#"{"error":{"code":"InvalidParameter","message":"The value of parameter imageReference.sku is invalid.","target":"imageReference.sku"}}"#),
    })
    .await;
    let azure = compute(client(&fake, VirtualClock::new()));
    assert!(matches!(
        azure.start_vm("rg1", "vm1").await,
        Err(ComputeError::Conflict { .. })
    ));
    match azure.create_vm(&spec("vm1")).await {
        Err(ComputeError::Invalid { code, .. }) => assert_eq!(code, "InvalidParameter"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn server_errors_are_retried_for_reads_but_not_for_plain_posts() {
    let fake = serve(|_, req, i| {
        if req.method == "GET" && i == 2 {
            Answer::json(200, vm_json("vm1", "running", "{}"))
        } else {
            Answer::json(
                503,
                r#"{"error":{"code":"ServiceUnavailable","message":"try later"}}"#,
            )
        }
    })
    .await;
    let clock = VirtualClock::new();
    let arm = client(&fake, clock.clone());
    compute(arm.clone()).get_vm("rg1", "vm1").await.unwrap();
    assert_eq!(fake.seen().len(), 3);
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 2);
    assert!(
        sleeps[0] >= Duration::from_millis(250) && sleeps[0] <= Duration::from_millis(500),
        "{sleeps:?}"
    );
    assert!(
        sleeps[1] >= Duration::from_millis(500) && sleeps[1] <= Duration::from_secs(1),
        "{sleeps:?}"
    );
    let err = arm
        .post_json::<_, serde_json::Value>(
            "/some/action?api-version=1",
            &serde_json::json!({}),
            OperationClass::Arm,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ArmError::Http { status: 503, .. }), "{err:?}");
    assert_eq!(fake.seen().len(), 4, "a plain POST is sent once");
}

#[tokio::test]
async fn status_urls_on_another_host_are_refused_and_never_contacted() {
    let other = serve(|_, _, _| Answer::json(200, r#"{"status":"Succeeded"}"#)).await;
    let other_base = other.base.clone();
    let fake = serve(move |_, _, _| {
        Answer::json(201, "{}").header("azure-asyncoperation", format!("{other_base}/op"))
    })
    .await;
    let err = compute(client(&fake, VirtualClock::new()))
        .create_vm(&spec("vm1"))
        .await
        .unwrap_err();
    assert!(matches!(err, ComputeError::Invalid { .. }), "{err:?}");
    assert!(
        other.seen().is_empty(),
        "the token must not travel to another host"
    );
}

#[tokio::test]
async fn long_status_urls_are_followed() {
    let token: String = "x".repeat(5_000);
    let fake = serve(move |base, req, _| {
        if req.method == "DELETE" {
            Answer::empty(202).header("location", format!("{base}/subscriptions/{SUB}/providers/Microsoft.Compute/locations/eastus/operations/o?monitor=true&t={token}"))
        } else {
            assert!(req.uri.len() > 5_000);
            Answer::empty(204)
        }
    })
    .await;
    compute(client(&fake, VirtualClock::new()))
        .delete_vm("rg1", "vm1")
        .await
        .unwrap();
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test]
async fn an_operation_that_never_ends_times_out_on_the_clock() {
    let fake = serve(|base, req, _| match req.method.as_str() {
        "POST" => Answer::empty(202).header("location", format!("{base}/op")),
        _ => Answer::empty(202).header("retry-after", "30"),
    })
    .await;
    let clock = VirtualClock::new();
    let arm = client(&fake, clock.clone());
    let r = arm
        .post_empty("/x/deallocate?api-version=1", OperationClass::Arm)
        .await
        .unwrap();
    let options = LroOptions {
        timeout: Duration::from_secs(100),
        ..LroOptions::default()
    };
    let err = wait_for_operation(&arm, r.status, &r.headers, &OperationClass::Arm, &options)
        .await
        .unwrap_err();
    assert!(matches!(err, ArmError::OperationTimeout { .. }), "{err:?}");
    // 5 s (no Retry-After on the POST), then 30 s each: 95 s, and the next wait would pass 100 s.
    let s = Duration::from_secs;
    assert_eq!(clock.sleeps(), vec![s(5), s(30), s(30), s(30)]);
}

#[tokio::test]
async fn tokens_never_show_in_debug_output_or_errors() {
    let fake = serve(|_, _, _| Answer::json(401, r#"{"error":{"code":"InvalidAuthenticationToken","message":"The access token is invalid."}}"#)).await;
    let arm = client(&fake, VirtualClock::new());
    let err = arm
        .get_json::<serde_json::Value>("/x?api-version=1", OperationClass::Arm)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ArmError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(fake.seen().len(), 2, "one retry with a fresh token");
    let mapped = compute(arm.clone()).get_vm("rg1", "vm1").await.unwrap_err();
    for shown in [
        format!("{err} {err:?}"),
        format!("{mapped} {mapped:?}"),
        format!("{arm:?}"),
        format!("{:?}", StaticToken::new(TOKEN)),
        format!("{:?}", ArmClientOptions::default()),
    ] {
        assert!(!shown.contains(TOKEN), "{shown}");
    }
    let seen: Vec<Seen> = fake.seen();
    assert!(
        seen.iter().all(|s| s.authorization.ends_with(TOKEN)),
        "but it is sent"
    );
}

#[tokio::test]
async fn plain_http_is_refused_off_loopback() {
    let token = Arc::new(StaticToken::new(TOKEN));
    assert!(matches!(
        ArmClient::new(
            "http://management.example.com",
            token.clone(),
            ArmClientOptions::default()
        ),
        Err(ArmError::Config { .. })
    ));
    ArmClient::new(
        "https://management.azure.com",
        token.clone(),
        ArmClientOptions::default(),
    )
    .unwrap();
    ArmClient::new("http://127.0.0.1:1", token, ArmClientOptions::default()).unwrap();
}

#[test]
fn the_deallocate_example_location_is_on_the_arm_host() {
    // The Delete_Force example's absolute Location (on management.azure.com) is followed by a
    // client for https://management.azure.com; the Start example's (foo.com) would be refused.
    let arm = ArmClient::new(
        "https://management.azure.com",
        Arc::new(StaticToken::new(TOKEN)),
        ArmClientOptions::default(),
    )
    .unwrap();
    let delete = fixture("compute-vm/VirtualMachine_Delete_Force.json");
    arm.resolve(
        delete["responses"]["202"]["headers"]["Location"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let start = fixture("compute-vm/VirtualMachine_Start_MaximumSet_Gen.json");
    assert!(matches!(
        arm.resolve(
            start["responses"]["202"]["headers"]["location"]
                .as_str()
                .unwrap()
        ),
        Err(ArmError::UntrustedUrl { .. })
    ));
}

#[tokio::test]
async fn the_client_paces_itself_under_the_per_vm_compute_bucket() {
    use spotkit_azure::arm::ComputeOperation;
    let fake = serve(|_, _, _| Answer::json(200, "{}")).await;
    let clock = VirtualClock::new();
    let arm = client(&fake, clock.clone());
    let class = OperationClass::compute(ComputeOperation::UpdateVm, Some("eastus"), Some("/vm/a"));
    // Update VM: 12 per VM at once, then 4 per minute (FACTS.md section 5).
    for _ in 0..14 {
        arm.post_empty("/vm/a/start?api-version=1", class.clone())
            .await
            .unwrap();
    }
    assert_eq!(fake.seen().len(), 14);
    assert_eq!(
        clock.sleeps(),
        vec![Duration::from_secs(15), Duration::from_secs(15)]
    );
    // The service's own count lowers the estimate: remaining 0 on the subscription's writes.
    let fake = serve(|_, _, _| {
        Answer::json(200, "{}").header("x-ms-ratelimit-remaining-subscription-writes", "0")
    })
    .await;
    let clock = VirtualClock::new();
    let arm = client(&fake, clock.clone());
    for _ in 0..3 {
        arm.post_empty("/x/action?api-version=1", OperationClass::Arm)
            .await
            .unwrap();
    }
    // Writes refill at 10 per second: 100 ms between requests once the count is 0.
    assert_eq!(
        clock.sleeps(),
        vec![Duration::from_millis(100), Duration::from_millis(100)]
    );
}

#[tokio::test]
async fn a_next_link_to_another_host_is_refused() {
    let fake = serve(|_, _, _| {
        Answer::json(
            200,
            r#"{"value":[],"nextLink":"https://evil.example.com/page2"}"#,
        )
    })
    .await;
    let err = compute(client(&fake, VirtualClock::new()))
        .list_vms(None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ComputeError::Invalid { ref message, .. } if message.contains("evil.example.com")),
        "{err:?}"
    );
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn slow_answers_time_out_per_request_and_are_retried() {
    let fake = serve(|_, _, i| {
        let answer = Answer::json(200, vm_json("vm1", "running", "{}"));
        if i < 2 {
            answer.after(Duration::from_secs(3))
        } else {
            answer
        }
    })
    .await;
    let clock = VirtualClock::new();
    let arm = Arc::new(
        ArmClient::new(
            &fake.base,
            Arc::new(StaticToken::new(TOKEN)),
            ArmClientOptions {
                clock: clock.clone(),
                request_timeout: Duration::from_millis(200),
                ..ArmClientOptions::default()
            },
        )
        .unwrap(),
    );
    let vm = compute(arm.clone()).get_vm("rg1", "vm1").await.unwrap();
    assert_eq!(vm.name, "vm1");
    assert_eq!(fake.seen().len(), 3);
    // With no retries left, the timeout is the error (and a transient one for the seam).
    let fake = serve(|_, _, _| Answer::json(200, "{}").after(Duration::from_secs(3))).await;
    let arm = ArmClient::new(
        &fake.base,
        Arc::new(StaticToken::new(TOKEN)),
        ArmClientOptions {
            clock: VirtualClock::new(),
            request_timeout: Duration::from_millis(100),
            max_retries: 1,
            ..ArmClientOptions::default()
        },
    )
    .unwrap();
    let err = arm
        .get_json::<serde_json::Value>("/x?api-version=1", OperationClass::Arm)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ArmError::Timeout { after } if after == Duration::from_millis(100)),
        "{err:?}"
    );
    assert!(err.is_retryable());
}
