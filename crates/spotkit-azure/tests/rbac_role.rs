//! The shipped custom role (`packaging/azure/spotkit-orchestrator-role.json`) grants every
//! permission the ARM client needs and nothing broader: the actions are derived from the
//! requests `AzureCompute` and the advisor data calls actually send (against the scripted fake),
//! plus what the VM body makes Compute do on the caller's behalf (NIC, disk, identity).

mod arm_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use arm_support::{Answer, Seen, VirtualClock, client, serve};
use spotkit_azure::arm::{
    AzureCompute, AzureComputeOptions, LroOptions, list_vm_skus, spot_eviction_rates,
    spot_placement_scores,
};
use spotkit_cloud::ComputeCloud;
use spotkit_core::compute::{EvictionPolicy, MaxPrice, OfferingId, Priority, VmSpec};

const SUB: &str = "00000000-0000-0000-0000-000000000001";

fn role() -> serde_json::Value {
    let path = format!(
        "{}/../../packaging/azure/spotkit-orchestrator-role.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The RBAC action ARM checks for one request, by the provider-operation naming rules:
/// `{namespace}/{type}[/{child type}…]/{read|write|delete}` or `…/{action}/action`.
fn rbac_action(seen: &Seen) -> String {
    let path = seen.path();
    // Two operations whose permission is not spelled like their path.
    if path.starts_with("/providers/Microsoft.ResourceGraph/resources") {
        return "Microsoft.ResourceGraph/resources/read".to_string();
    }
    if path.ends_with("/placementScores/spot/generate") {
        return "Microsoft.Compute/locations/placementScores/spot/generate/action".to_string();
    }
    let (_, provider_path) = path.rsplit_once("/providers/").expect("a provider path");
    let mut segments = provider_path.split('/');
    let namespace = segments.next().unwrap();
    let rest: Vec<&str> = segments.collect();
    let mut types = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        if seen.method == "POST" && i + 1 == rest.len() {
            // The last segment of a POST is the action itself.
            return format!("{namespace}/{}/{}/action", types.join("/"), rest[i]);
        }
        types.push(rest[i]);
        i += 2; // skip the resource name
    }
    let verb = match seen.method.as_str() {
        "GET" => "read",
        "PUT" | "PATCH" => "write",
        "DELETE" => "delete",
        other => panic!("no RBAC verb for {other} {path}"),
    };
    format!("{namespace}/{}/{verb}", types.join("/"))
}

fn vm_json(name: &str) -> String {
    format!(
        r#"{{"id":"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/{name}",
            "name":"{name}","location":"eastus","tags":{{"pool":"a"}},
            "properties":{{"hardwareProfile":{{"vmSize":"Standard_D2s_v5"}},"priority":"Spot","evictionPolicy":"Deallocate",
            "billingProfile":{{"maxPrice":-1}},"provisioningState":"Succeeded",
            "instanceView":{{"statuses":[{{"code":"PowerState/running","level":"Info"}}]}}}}}}"#
    )
}

#[tokio::test]
async fn the_role_grants_every_action_the_arm_client_uses_and_no_wildcards() {
    let fake = serve(|base, req, _| {
        let op = format!("{base}/subscriptions/{SUB}/providers/Microsoft.Compute/locations/eastus/operations/op1?api-version=2025-04-01");
        match (req.method.as_str(), req.path()) {
            (_, p) if p.ends_with("/operations/op1") => Answer::json(200, r#"{"status":"Succeeded"}"#),
            ("PUT", _) => Answer::json(201, vm_json("vm1")).header("azure-asyncoperation", op),
            ("POST", p) if p.ends_with("/placementScores/spot/generate") => Answer::json(200, r#"{"placementScores":[]}"#),
            ("POST", p) if p.starts_with("/providers/Microsoft.ResourceGraph") => Answer::json(200, r#"{"totalRecords":0,"count":0,"resultTruncated":"false","data":[]}"#),
            ("POST", _) => Answer::empty(202).header("azure-asyncoperation", op),
            ("DELETE", _) => Answer::empty(202).header("azure-asyncoperation", op),
            ("GET", p) if p.ends_with("/skus") => Answer::json(200, r#"{"value":[]}"#),
            ("GET", p) if p.ends_with("/virtualMachines") => Answer::json(200, format!(r#"{{"value":[{}]}}"#, vm_json("vm1"))),
            ("GET", _) => Answer::json(200, vm_json("vm1")),
            _ => Answer::json(404, r#"{"error":{"code":"NotFound","message":"no route"}}"#),
        }
    })
    .await;
    let arm = client(&fake, VirtualClock::new());
    let compute = AzureCompute::new(
        Arc::clone(&arm),
        SUB,
        AzureComputeOptions {
            subnet_ids: [(
                "eastus".to_string(),
                format!("/subscriptions/{SUB}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/subnets/s"),
            )]
            .into(),
            ssh_public_key: Some("ssh-ed25519 AAAA test".into()),
            lro: LroOptions {
                poll_interval: Duration::from_secs(1),
                ..LroOptions::default()
            },
            ..AzureComputeOptions::default()
        },
    );
    let spec = VmSpec {
        name: "vm1".into(),
        resource_group: "rg1".into(),
        offering: OfferingId::new("Standard_D2s_v5", "eastus"),
        priority: Priority::Spot,
        eviction_policy: Some(EvictionPolicy::Deallocate),
        max_price: Some(MaxPrice::CappedAtPayAsYouGo),
        image: "Canonical:ubuntu-24_04-lts:server:latest".into(),
        user_data: None,
        user_assigned_identities: vec![format!(
            "/subscriptions/{SUB}/resourceGroups/id/providers/Microsoft.ManagedIdentity/userAssignedIdentities/worker"
        )],
        tags: [("pool".to_string(), "a".to_string())].into(),
    };
    compute.create_vm(&spec).await.unwrap();
    compute.get_vm("rg1", "vm1").await.unwrap();
    compute.list_vms(Some(("pool", "a"))).await.unwrap();
    compute.start_vm("rg1", "vm1").await.unwrap();
    compute.deallocate_vm("rg1", "vm1").await.unwrap();
    compute.simulate_eviction("rg1", "vm1").await.unwrap();
    compute.delete_vm("rg1", "vm1").await.unwrap();
    list_vm_skus(&arm, SUB, Some("eastus")).await.unwrap();
    let sizes = vec!["Standard_D2s_v5".to_string()];
    let regions = vec!["eastus".to_string()];
    spot_eviction_rates(&arm, &[SUB.to_string()], &sizes, &regions)
        .await
        .unwrap();
    spot_placement_scores(&arm, SUB, &sizes, &regions, 1, false)
        .await
        .unwrap();

    let seen = fake.seen();
    let mut needed: BTreeSet<String> = seen.iter().map(rbac_action).collect();
    // What the PUT body makes Compute create or use with the caller's permissions.
    let put = seen.iter().find(|s| s.method == "PUT").expect("a VM PUT");
    let body = put.json();
    let profile = &body["properties"];
    if profile["networkProfile"]["networkInterfaceConfigurations"].is_array() {
        needed.extend(
            [
                "Microsoft.Network/networkInterfaces/read",
                "Microsoft.Network/networkInterfaces/write",
                "Microsoft.Network/networkInterfaces/delete",
                "Microsoft.Network/networkInterfaces/join/action",
                "Microsoft.Network/virtualNetworks/subnets/join/action",
            ]
            .map(String::from),
        );
    }
    if profile["storageProfile"]["osDisk"]["managedDisk"].is_object() {
        needed.extend(
            [
                "Microsoft.Compute/disks/read",
                "Microsoft.Compute/disks/write",
                "Microsoft.Compute/disks/delete",
            ]
            .map(String::from),
        );
    }
    if body["identity"]["userAssignedIdentities"].is_object() {
        needed.insert("Microsoft.ManagedIdentity/userAssignedIdentities/assign/action".into());
    }
    assert!(
        needed.len() >= 15,
        "the fake saw too little to prove anything: {needed:?}"
    );

    let role = role();
    let granted: BTreeSet<String> = strings(&role["Actions"]).into_iter().collect();
    let missing: Vec<_> = needed.difference(&granted).collect();
    assert!(missing.is_empty(), "the role lacks {missing:?}");
    // Least privilege: every grant is used or documented as used (instanceView/read covers
    // `GET …/instanceView`, which Azure lists separately from the VM read).
    let unused: Vec<_> = granted
        .difference(&needed)
        .filter(|a| *a != "Microsoft.Compute/virtualMachines/instanceView/read")
        .collect();
    assert!(
        unused.is_empty(),
        "the role grants {unused:?}, which nothing uses"
    );
}

#[test]
fn the_role_is_a_valid_custom_role_without_wildcards() {
    let role = role();
    for key in [
        "Name",
        "IsCustom",
        "Description",
        "Actions",
        "NotActions",
        "DataActions",
        "AssignableScopes",
    ] {
        assert!(role.get(key).is_some(), "the role definition lacks {key}");
    }
    assert_eq!(role["IsCustom"], true);
    let actions = strings(&role["Actions"]);
    assert!(!actions.is_empty());
    for a in actions.iter().chain(&strings(&role["DataActions"])) {
        assert!(!a.contains('*'), "wildcard action {a}");
        assert!(
            a.ends_with("/read")
                || a.ends_with("/write")
                || a.ends_with("/delete")
                || a.ends_with("/action"),
            "{a} is not a provider operation"
        );
    }
    assert!(
        strings(&role["DataActions"]).is_empty(),
        "the orchestrator needs no data actions"
    );
    assert!(!strings(&role["AssignableScopes"]).is_empty());
    let doc = std::fs::read_to_string(format!(
        "{}/../../docs/security.md",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for a in &actions {
        assert!(
            doc.contains(a.as_str()),
            "docs/security.md does not explain {a}"
        );
    }
}
