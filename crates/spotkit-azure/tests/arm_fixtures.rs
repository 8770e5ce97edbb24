//! Every official example body (fixtures/azure/{compute-vm,compute-skus,resource-graph,
//! spot-placement}) parses into the ARM wire types, and the VM PUT body we send uses only
//! properties the 2025-04-01 swagger defines.
//!
//! The two VirtualMachineScaleSet_* examples in compute-vm are not parsed: spotkit creates
//! standalone VMs only and has no scale-set wire types.

mod arm_support;

use std::collections::{BTreeMap, BTreeSet};

use arm_support::fixture;
use serde_json::Value;
use spotkit_azure::arm::client::ArmList;
use spotkit_azure::arm::compute::{AzureComputeOptions, InstanceView, VirtualMachine, vm_put_body};
use spotkit_azure::arm::graph::{QueryRequest, QueryRequestOptions, QueryResponse};
use spotkit_azure::arm::lro::AsyncOperationStatus;
use spotkit_azure::arm::placement::{
    SpotPlacementScoresInput, SpotPlacementScoresResponse, placement_batches,
};
use spotkit_azure::arm::skus::ResourceSku;
use spotkit_core::advisor::PlacementScore;
use spotkit_core::compute::{
    EvictionPolicy, MaxPrice, OfferingId, PowerState, Priority, ProvisioningState, VmSpec,
};

fn body(example: &Value, status: &str) -> Value {
    example["responses"][status]["body"].clone()
}

#[test]
fn vm_examples_parse_into_virtual_machine() {
    let get = fixture("compute-vm/VirtualMachine_Get.json");
    let vm: VirtualMachine = serde_json::from_value(body(&get, "200")).unwrap();
    let obs = vm.to_observation("x", "x");
    assert_eq!(obs.name, "myVM");
    assert_eq!(obs.resource_group, "myResourceGroup");
    assert_eq!(obs.offering.size, "Standard_DS3_v2");
    assert_eq!(obs.offering.region, "westus");
    assert_eq!(obs.provisioning, ProvisioningState::Succeeded);
    assert!(obs.created_at.is_some(), "timeCreated parses");

    let create = fixture("compute-vm/VirtualMachine_Create_WithSshAuthentication.json");
    let request: VirtualMachine =
        serde_json::from_value(create["parameters"]["parameters"].clone()).unwrap();
    let ssh = request
        .properties
        .os_profile
        .unwrap()
        .linux_configuration
        .unwrap();
    assert_eq!(ssh.disable_password_authentication, Some(true));
    assert_eq!(ssh.ssh.unwrap().public_keys.len(), 1);
    for status in ["200", "201"] {
        let vm: VirtualMachine = serde_json::from_value(body(&create, status)).unwrap();
        assert_eq!(
            vm.to_observation("", "").provisioning,
            ProvisioningState::Creating
        );
    }

    for (file, count) in [
        ("compute-vm/VirtualMachine_ListAll_MaximumSet_Gen.json", 2),
        ("compute-vm/VirtualMachine_ListAll_MinimumSet_Gen.json", 1),
    ] {
        let list: ArmList<VirtualMachine> =
            serde_json::from_value(body(&fixture(file), "200")).unwrap();
        assert!(list.value.len() >= count, "{file}");
    }
    let max: ArmList<VirtualMachine> = serde_json::from_value(body(
        &fixture("compute-vm/VirtualMachine_ListAll_MaximumSet_Gen.json"),
        "200",
    ))
    .unwrap();
    assert_eq!(max.next_link.as_deref(), Some("a"));
    let first = max.value[0].to_observation("", "");
    assert_eq!(first.priority, Priority::Regular);
    assert_eq!(first.eviction_policy, Some(EvictionPolicy::Deallocate));
    assert_eq!(first.max_price, Some(MaxPrice::UsdPerHour(26.0)));
}

#[test]
fn instance_view_example_gives_power_and_provisioning_state() {
    let example = fixture("compute-vm/VirtualMachine_Get_InstanceView.json");
    let view: InstanceView = serde_json::from_value(body(&example, "200")).unwrap();
    assert_eq!(view.power_state(), PowerState::Running);
    assert_eq!(
        view.provisioning_state(),
        Some(ProvisioningState::Succeeded)
    );
}

#[test]
fn action_examples_have_the_documented_lro_shapes() {
    let start = fixture("compute-vm/VirtualMachine_Start_MaximumSet_Gen.json");
    assert!(start["responses"]["202"]["headers"]["location"].is_string());
    let dealloc = fixture("compute-vm/VirtualMachine_Deallocate_MaximumSet_Gen.json");
    assert!(dealloc["responses"]["202"]["headers"]["location"].is_string());
    let delete = fixture("compute-vm/VirtualMachine_Delete_Force.json");
    let location = delete["responses"]["202"]["headers"]["Location"]
        .as_str()
        .unwrap();
    assert!(location.starts_with("https://management.azure.com/"));
    let evict = fixture("compute-vm/VirtualMachine_SimulateEviction.json");
    assert!(evict["responses"]["204"].is_object());
    // The Azure-AsyncOperation body shape (async-operations doc) parses too.
    let op: AsyncOperationStatus = serde_json::from_str(
        r#"{"id":"x","name":"op","status":"Failed","startTime":"2026-12-02T00:00:00Z","error":{"code":"AllocationFailed","message":"no capacity"}}"#,
    )
    .unwrap();
    assert_eq!(op.error.unwrap().code, "AllocationFailed");
}

#[test]
fn sku_examples_parse_into_vm_skus() {
    for file in [
        "compute-skus/ListAvailableResourceSkus.json",
        "compute-skus/ListAvailableResourceSkusForARegion.json",
    ] {
        let list: ArmList<ResourceSku> =
            serde_json::from_value(body(&fixture(file), "200")).unwrap();
        assert_eq!(list.value.len(), 2, "{file}");
        assert_eq!(list.next_link, None);
        let sku = list.value[0].to_vm_sku();
        assert_eq!(sku.vcpus, 1);
        assert!((sku.memory_gib - 0.75).abs() < 1e-9);
        assert!(!sku.low_priority_capable);
        assert_eq!(sku.locations, vec!["westus".to_string()]);
        assert_eq!(sku.zones_by_location["westus"], vec!["1", "2"]);
        assert!(sku.restricted_locations.is_empty());
    }
}

#[test]
fn sku_restrictions_take_regions_away() {
    // No official example has restrictions; this body follows skus.json's ResourceSkuRestrictions.
    let sku: ResourceSku = serde_json::from_str(
        r#"{"resourceType":"virtualMachines","name":"Standard_D2s_v5","family":"standardDSv5Family",
            "locations":["EastUS","westeurope","northeurope"],
            "locationInfo":[{"location":"EastUS","zones":["1","2","3"]},{"location":"westeurope","zones":["1","2","3"]},{"location":"northeurope","zones":["1","2"]}],
            "capabilities":[{"name":"vCPUs","value":"2"},{"name":"MemoryGB","value":"8"},{"name":"LowPriorityCapable","value":"True"}],
            "restrictions":[
              {"type":"Location","values":["EastUS"],"restrictionInfo":{"locations":["EastUS"]},"reasonCode":"NotAvailableForSubscription"},
              {"type":"Zone","values":["westeurope"],"restrictionInfo":{"locations":["westeurope"],"zones":["1"]},"reasonCode":"NotAvailableForSubscription"},
              {"type":"Zone","values":["northeurope"],"restrictionInfo":{"locations":["northeurope"],"zones":["1","2"]},"reasonCode":"NotAvailableForSubscription"}]}"#,
    )
    .unwrap();
    let vm = sku.to_vm_sku();
    assert!(vm.low_priority_capable);
    assert_eq!(vm.vcpus, 2);
    assert_eq!(
        vm.restricted_locations,
        BTreeSet::from(["eastus".to_string(), "northeurope".to_string()]),
        "one zone of westeurope left, so it stays"
    );
}

#[test]
fn placement_example_round_trips() {
    let example = fixture("spot-placement/GenerateSpotPlacementScores.json");
    let input: SpotPlacementScoresInput =
        serde_json::from_value(example["parameters"]["spotPlacementScoresInput"].clone()).unwrap();
    let ours = placement_batches(
        &["Standard_D2_v2".into()],
        &["eastus".into(), "eastus2".into()],
        1,
        true,
    );
    assert_eq!(ours, vec![input.clone()]);
    assert_eq!(
        serde_json::to_value(&input).unwrap(),
        example["parameters"]["spotPlacementScoresInput"]
    );
    let answer: SpotPlacementScoresResponse =
        serde_json::from_value(body(&example, "200")).unwrap();
    assert_eq!(answer.placement_scores.len(), 6);
    let scores: Vec<_> = answer
        .placement_scores
        .iter()
        .map(|s| PlacementScore::parse(&s.score))
        .collect();
    assert!(scores.iter().all(Option::is_some));
    assert_eq!(scores[3], Some(PlacementScore::DataNotFoundOrStale));
}

#[test]
fn resource_graph_examples_parse() {
    for file in [
        "resource-graph/ResourcesBasicQuery.json",
        "resource-graph/ResourcesFilterQuery.json",
        "resource-graph/ResourcesFirstPageQuery.json",
        "resource-graph/ResourcesNextPageQuery.json",
    ] {
        let example = fixture(file);
        let answer: QueryResponse = serde_json::from_value(body(&example, "200")).unwrap();
        assert!(!answer.truncated(), "{file}");
        assert!(answer.data.is_array(), "{file}");
        assert_eq!(answer.count as usize, answer.data.as_array().unwrap().len());
    }
    let next: QueryResponse = serde_json::from_value(body(
        &fixture("resource-graph/ResourcesNextPageQuery.json"),
        "200",
    ))
    .unwrap();
    assert!(next.skip_token.is_some());
    // Our request uses only QueryRequest / QueryRequestOptions properties of the swagger.
    let swagger = fixture("resource-graph/resourcegraph.json");
    let subs = vec!["cfbbd179-59d2-4052-aa06-9270a38aa9d6".to_string()];
    let ours = serde_json::to_value(QueryRequest {
        subscriptions: &subs,
        query: "Resources",
        options: QueryRequestOptions {
            result_format: "objectArray",
            skip_token: Some("t".into()),
        },
    })
    .unwrap();
    let defs = &swagger["definitions"];
    for key in ours.as_object().unwrap().keys() {
        assert!(
            defs["QueryRequest"]["properties"].get(key).is_some(),
            "{key}"
        );
    }
    for key in ours["options"].as_object().unwrap().keys() {
        assert!(
            defs["QueryRequestOptions"]["properties"].get(key).is_some(),
            "{key}"
        );
    }
    let formats = &defs["QueryRequestOptions"]["properties"]["resultFormat"]["enum"];
    assert!(
        formats
            .as_array()
            .unwrap()
            .contains(&Value::from("objectArray"))
    );
}

/// Swagger definitions of both compute files, with `allOf` folded in.
struct Swagger {
    defs: BTreeMap<String, Value>,
}

/// Properties of the common-types `Resource` / `SubResource` / `UserAssignedIdentities`, which
/// live outside the two copied files.
const EXTERNAL: &[(&str, &[&str])] = &[
    ("Resource", &["id", "name", "type", "location", "tags"]),
    ("SubResource", &["id"]),
];

impl Swagger {
    fn load() -> Self {
        let mut defs = BTreeMap::new();
        for f in [
            "compute-swagger/computeRPCommon.json",
            "compute-swagger/virtualMachine.json",
        ] {
            for (k, v) in fixture(f)["definitions"].as_object().unwrap() {
                defs.insert(k.clone(), v.clone());
            }
        }
        Self { defs }
    }

    /// Checks every key of `value` against the schema `schema`, recursively; returns the paths of
    /// unknown keys.
    fn check(&self, schema: &Value, value: &Value, path: &str, unknown: &mut Vec<String>) {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap();
            if r.contains("common-types") {
                if name == "UserAssignedIdentities" {
                    // A map from identity id to an object of read-only ids.
                    for (k, v) in value.as_object().unwrap() {
                        assert!(k.starts_with("/subscriptions/"), "{path}.{k}");
                        assert!(v.as_object().unwrap().is_empty(), "{path}.{k} sent as {{}}");
                    }
                    return;
                }
                let allowed = EXTERNAL.iter().find(|(n, _)| *n == name).map(|(_, p)| *p);
                let allowed = allowed.unwrap_or_else(|| panic!("unmodelled external ref {r}"));
                for k in value.as_object().unwrap().keys() {
                    if !allowed.contains(&k.as_str()) {
                        unknown.push(format!("{path}.{k}"));
                    }
                }
                return;
            }
            let def = self
                .defs
                .get(name)
                .unwrap_or_else(|| panic!("missing {name}"));
            return self.check(def, value, path, unknown);
        }
        match value {
            Value::Object(map) => {
                let mut props = serde_json::Map::new();
                let mut external: Vec<&str> = Vec::new();
                self.collect_properties(schema, &mut props, &mut external);
                for (k, v) in map {
                    if let Some(s) = props.get(k) {
                        self.check(s, v, &format!("{path}.{k}"), unknown);
                    } else if external.iter().any(|e| {
                        EXTERNAL
                            .iter()
                            .any(|(n, ps)| n == e && ps.contains(&k.as_str()))
                    }) {
                        // A common-types property (location, tags...).
                    } else if schema.get("additionalProperties").is_some() {
                    } else {
                        unknown.push(format!("{path}.{k}"));
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, v) in items.iter().enumerate() {
                        self.check(item_schema, v, &format!("{path}[{i}]"), unknown);
                    }
                }
            }
            Value::String(s) => {
                let extensible = schema["x-ms-enum"]["modelAsString"] == Value::Bool(true);
                if let Some(values) = schema.get("enum").and_then(Value::as_array)
                    && !extensible
                {
                    assert!(
                        values.contains(&Value::from(s.as_str())),
                        "{path}: {s} not in {values:?}"
                    );
                }
            }
            _ => {}
        }
    }

    fn collect_properties<'a>(
        &'a self,
        schema: &'a Value,
        into: &mut serde_json::Map<String, Value>,
        external: &mut Vec<&'a str>,
    ) {
        if let Some(p) = schema.get("properties").and_then(Value::as_object) {
            for (k, v) in p {
                into.insert(k.clone(), v.clone());
            }
        }
        for parent in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = parent["$ref"].as_str().unwrap_or_default();
            let name = r.rsplit('/').next().unwrap();
            if r.contains("common-types") {
                external.push(name);
            } else if let Some(def) = self.defs.get(name) {
                self.collect_properties(def, into, external);
            }
        }
    }
}

#[test]
fn the_vm_put_body_uses_only_swagger_properties() {
    let swagger = Swagger::load();
    let spec = VmSpec {
        name: "spotkit-pool-a-0001".into(),
        resource_group: "rg".into(),
        offering: OfferingId::new("Standard_D2s_v5", "eastus"),
        priority: Priority::Spot,
        eviction_policy: Some(EvictionPolicy::Delete),
        max_price: Some(MaxPrice::UsdPerHour(0.05)),
        image: "Canonical:ubuntu-24_04-lts:server:latest".into(),
        user_data: Some("I2Nsb3VkLWNvbmZpZw==".into()),
        user_assigned_identities: vec![
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/worker".into(),
        ],
        tags: BTreeMap::from([("spotkit-pool".to_string(), "a".to_string())]),
    };
    let options = AzureComputeOptions {
        ssh_public_key: Some("ssh-ed25519 AAAA test".into()),
        subnet_ids: BTreeMap::from([(
            "eastus".to_string(),
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/default".to_string(),
        )]),
        ..AzureComputeOptions::default()
    };
    let body = serde_json::to_value(vm_put_body(&spec, &options).unwrap()).unwrap();
    let mut unknown = Vec::new();
    swagger.check(
        &swagger.defs["VirtualMachine"],
        &body,
        "VirtualMachine",
        &mut unknown,
    );
    assert!(
        unknown.is_empty(),
        "not in the swagger: {unknown:?}\n{body:#}"
    );
    // The Spot fields and the rest are actually there.
    let p = &body["properties"];
    assert_eq!(p["priority"], "Spot");
    assert_eq!(p["evictionPolicy"], "Delete");
    assert_eq!(p["billingProfile"]["maxPrice"], 0.05);
    assert_eq!(p["hardwareProfile"]["vmSize"], "Standard_D2s_v5");
    assert_eq!(
        p["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"],
        true
    );
    assert_eq!(
        p["storageProfile"]["imageReference"]["offer"],
        "ubuntu-24_04-lts"
    );
    assert_eq!(body["identity"]["type"], "UserAssigned");
    assert_eq!(body["location"], "eastus");
    assert_eq!(body["tags"]["spotkit-pool"], "a");
    // The checker itself notices a property the swagger lacks.
    let mut wrong = body.clone();
    wrong["properties"]["spotPriority"] = Value::from("x");
    let mut unknown = Vec::new();
    swagger.check(
        &swagger.defs["VirtualMachine"],
        &wrong,
        "VirtualMachine",
        &mut unknown,
    );
    assert_eq!(unknown, vec!["VirtualMachine.properties.spotPriority"]);

    // A Regular VM carries no Spot fields.
    let regular = VmSpec {
        priority: Priority::Regular,
        ..spec
    };
    let body = serde_json::to_value(vm_put_body(&regular, &options).unwrap()).unwrap();
    assert_eq!(body["properties"]["priority"], "Regular");
    assert!(body["properties"].get("evictionPolicy").is_none());
    assert!(body["properties"].get("billingProfile").is_none());
}
