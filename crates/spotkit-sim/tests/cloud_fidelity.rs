//! Fidelity: the official ARM compute examples (fixtures/azure/compute-vm, copied verbatim)
//! parse with the facade's wire types, and the facade's GET / instanceView / list answers have
//! the examples' shape and validate against the 2025-04-01 swagger definitions
//! (fixtures/azure/compute-swagger).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use spotkit_core::Timestamp;
use spotkit_sim::cloud::http::{ScaledClock, SimServer, parse_put};
use spotkit_sim::cloud::wire::{InstanceView, VirtualMachine, VirtualMachineListResult};
use spotkit_sim::cloud::{Scenario, SpotCloud, VirtualClock};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/azure")
}

fn example(name: &str) -> Value {
    let path = fixtures().join("compute-vm").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Numbers compare as f64 (ARM writes `26`, a round trip through f64 writes `26.0`).
fn normalize(value: &Value) -> Value {
    match value {
        Value::Number(number) => json!(number.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        other => other.clone(),
    }
}

#[test]
fn official_examples_parse_with_the_wire_types_and_round_trip() {
    let get = example("VirtualMachine_Get.json")["responses"]["200"]["body"].clone();
    let vm: VirtualMachine = serde_json::from_value(get.clone()).unwrap();
    assert_eq!(
        vm.properties
            .as_ref()
            .unwrap()
            .hardware_profile
            .as_ref()
            .unwrap()
            .vm_size
            .as_deref(),
        Some("Standard_DS3_v2")
    );
    assert_eq!(
        normalize(&serde_json::to_value(&vm).unwrap()),
        normalize(&get)
    );

    let view = example("VirtualMachine_Get_InstanceView.json")["responses"]["200"]["body"].clone();
    let parsed: InstanceView = serde_json::from_value(view.clone()).unwrap();
    assert_eq!(
        parsed.statuses[1].code.as_deref(),
        Some("PowerState/running")
    );
    assert_eq!(
        normalize(&serde_json::to_value(&parsed).unwrap()),
        normalize(&view)
    );

    for name in [
        "VirtualMachine_ListAll_MaximumSet_Gen.json",
        "VirtualMachine_ListAll_MinimumSet_Gen.json",
    ] {
        let body = example(name)["responses"]["200"]["body"].clone();
        let list: VirtualMachineListResult = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(list.value.len(), 2, "{name}");
        assert_eq!(
            normalize(&serde_json::to_value(&list).unwrap()),
            normalize(&body),
            "{name}"
        );
    }
    let max = example("VirtualMachine_ListAll_MaximumSet_Gen.json");
    let list: VirtualMachineListResult =
        serde_json::from_value(max["responses"]["200"]["body"].clone()).unwrap();
    let properties = list.value[0].properties.as_ref().unwrap();
    assert_eq!(properties.priority.as_deref(), Some("Regular"));
    assert_eq!(properties.eviction_policy.as_deref(), Some("Deallocate"));
    assert_eq!(
        properties.billing_profile.as_ref().unwrap().max_price,
        Some(26.0)
    );

    let create = example("VirtualMachine_Create_WithSshAuthentication.json");
    let request = serde_json::to_vec(&create["parameters"]["parameters"]).unwrap();
    let parsed = parse_put("sub", "myResourceGroup", "myVM", &request).unwrap();
    assert_eq!(parsed.spec.offering.size, "Standard_D1_v2");
    assert_eq!(parsed.spec.offering.region, "westus");
    assert_eq!(
        parsed.spec.image,
        "{image_publisher}:{image_offer}:{image_sku}:latest"
    );
    for status in ["200", "201"] {
        let body = create["responses"][status]["body"].clone();
        let vm: VirtualMachine = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(
            normalize(&serde_json::to_value(&vm).unwrap()),
            normalize(&body)
        );
    }
    // The LRO examples: the statuses and headers the facade answers with.
    assert!(
        example("VirtualMachine_SimulateEviction.json")["responses"]
            .get("204")
            .is_some()
    );
    assert!(
        example("VirtualMachine_Start_MaximumSet_Gen.json")["responses"]["202"]["headers"]
            .get("location")
            .is_some()
    );
    assert!(
        example("VirtualMachine_Deallocate_MaximumSet_Gen.json")["responses"]["202"]["headers"]
            .get("location")
            .is_some()
    );
    let delete = example("VirtualMachine_Delete_Force.json");
    assert!(
        delete["responses"]["202"]["headers"]["Location"]
            .as_str()
            .unwrap()
            .contains("monitor=true")
    );
}

// ----- swagger validation -----

struct Swagger {
    files: HashMap<String, Value>,
}

impl Swagger {
    fn load() -> Self {
        let mut files = HashMap::new();
        for name in ["virtualMachine.json", "computeRPCommon.json"] {
            let path = fixtures().join("compute-swagger").join(name);
            files.insert(
                name.to_owned(),
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap(),
            );
        }
        Self { files }
    }

    /// `None` for references outside the two files (common-types `Resource`).
    fn resolve(&self, file: &str, reference: &str) -> Option<(String, Value)> {
        let (target, pointer) = reference.split_once('#')?;
        let target = match target {
            "" => file.to_owned(),
            other => other.trim_start_matches("./").to_owned(),
        };
        let schema = self.files.get(&target)?.pointer(pointer)?.clone();
        Some((target, schema))
    }

    /// The properties a schema allows (own, allOf, resolved refs) and its additionalProperties.
    fn properties(&self, file: &str, schema: &Value, out: &mut BTreeMap<String, (String, Value)>) {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            match self.resolve(file, reference) {
                Some((file, schema)) => self.properties(&file, &schema, out),
                None => {
                    // common-types Resource / TrackedResource.
                    for key in ["id", "name", "type", "location"] {
                        out.insert(key.to_owned(), (file.to_owned(), json!({"type": "string"})));
                    }
                    out.insert(
                        "tags".to_owned(),
                        (
                            file.to_owned(),
                            json!({"type": "object", "additionalProperties": {"type": "string"}}),
                        ),
                    );
                    out.insert(
                        "systemData".to_owned(),
                        (file.to_owned(), json!({"type": "object"})),
                    );
                }
            }
            return;
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (key, value) in properties {
                out.insert(key.clone(), (file.to_owned(), value.clone()));
            }
        }
        for part in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.properties(file, part, out);
        }
    }

    fn validate(
        &self,
        file: &str,
        schema: &Value,
        value: &Value,
        path: &str,
        errors: &mut Vec<String>,
    ) {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            if let Some((file, schema)) = self.resolve(file, reference) {
                self.validate(&file, &schema, value, path, errors);
            }
            return;
        }
        let expected = schema.get("type").and_then(Value::as_str);
        let ok = match (expected, value) {
            (None, _) => true,
            (Some("string"), Value::String(_)) | (Some("boolean"), Value::Bool(_)) => true,
            (Some("integer"), Value::Number(number)) => number.is_i64() || number.is_u64(),
            (Some("number"), Value::Number(_)) => true,
            (Some("array"), Value::Array(_)) | (Some("object"), Value::Object(_)) => true,
            _ => false,
        };
        if !ok {
            errors.push(format!("{path}: expected {expected:?}, got {value}"));
            return;
        }
        // `x-ms-enum.modelAsString: true` marks an extensible enum (vmSize lists only old sizes).
        let extensible = schema.pointer("/x-ms-enum/modelAsString") == Some(&Value::Bool(true));
        if let (Some(allowed), Value::String(text)) =
            (schema.get("enum").and_then(Value::as_array), value)
            && !extensible
            && !allowed.iter().any(|item| {
                item.as_str()
                    .is_some_and(|item| item.eq_ignore_ascii_case(text))
            })
        {
            errors.push(format!("{path}: {text} is not one of {allowed:?}"));
        }
        match value {
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (index, item) in items.iter().enumerate() {
                        self.validate(file, item_schema, item, &format!("{path}[{index}]"), errors);
                    }
                }
            }
            Value::Object(map) => {
                let mut allowed = BTreeMap::new();
                self.properties(file, schema, &mut allowed);
                let additional = schema.get("additionalProperties");
                for (key, item) in map {
                    let child = format!("{path}.{key}");
                    match (allowed.get(key), additional) {
                        (Some((file, schema)), _) => {
                            self.validate(file, schema, item, &child, errors)
                        }
                        (None, Some(schema)) if schema.is_object() => {
                            self.validate(file, schema, item, &child, errors)
                        }
                        (None, _) if allowed.is_empty() => {}
                        (None, _) => errors.push(format!("{child}: not in the swagger definition")),
                    }
                }
            }
            _ => {}
        }
    }

    fn check(&self, definition: &str, value: &Value) {
        let schema = json!({ "$ref": format!("#/definitions/{definition}") });
        let mut errors = Vec::new();
        self.validate(
            "virtualMachine.json",
            &schema,
            value,
            definition,
            &mut errors,
        );
        assert!(
            errors.is_empty(),
            "{definition} does not validate:\n{}",
            errors.join("\n")
        );
    }
}

/// Every key present in both has the same JSON type; `required` keys of the example must be
/// present in ours.
fn same_shape(ours: &Value, theirs: &Value, path: &str, errors: &mut Vec<String>) {
    let kind = |value: &Value| match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if theirs.is_null() {
        return;
    }
    if kind(ours) != kind(theirs) {
        errors.push(format!(
            "{path}: ours is {}, the example's {}",
            kind(ours),
            kind(theirs)
        ));
        return;
    }
    match (ours, theirs) {
        (Value::Object(ours), Value::Object(theirs)) => {
            for (key, value) in ours {
                if let Some(example) = theirs.get(key) {
                    same_shape(value, example, &format!("{path}.{key}"), errors);
                }
            }
        }
        (Value::Array(ours), Value::Array(theirs)) => {
            if let (Some(ours), Some(theirs)) = (ours.first(), theirs.first()) {
                same_shape(ours, theirs, &format!("{path}[0]"), errors);
            }
        }
        _ => {}
    }
}

fn assert_same_shape(ours: &Value, theirs: &Value, required: &[&str]) {
    let mut errors = Vec::new();
    same_shape(ours, theirs, "", &mut errors);
    for pointer in required {
        if ours.pointer(pointer).is_none() {
            errors.push(format!("{pointer} missing (the example has it)"));
        }
        assert!(
            theirs.pointer(pointer).is_some(),
            "the example has no {pointer}"
        );
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

const VM: &str = "/subscriptions/s1/resourceGroups/myResourceGroup/providers/Microsoft.Compute/virtualMachines/myVM";

#[tokio::test]
async fn facade_answers_have_the_examples_shape_and_validate_against_the_swagger() {
    let mut scenario = Scenario::builtin_default();
    scenario.eviction.rate_scale = 0.0;
    let start = Timestamp::from_unix_secs(1_767_225_600);
    let clock = Arc::new(VirtualClock::manual(start));
    let cloud = SpotCloud::new(scenario, 1, start, Path::new("/nonexistent")).unwrap();
    let scaled = Arc::new(ScaledClock::new(clock.clone(), start, 1.0));
    let (address, _server) = SimServer::new(cloud, scaled)
        .spawn_on_loopback()
        .await
        .unwrap();
    let base = format!("http://{address}");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    // The official create request, made a Spot VM of a size and region the scenario sells.
    let mut body =
        example("VirtualMachine_Create_WithSshAuthentication.json")["parameters"]["parameters"]
            .clone();
    body["location"] = json!("eastus");
    body["tags"] = json!({ "myTag1": "tagValue1" });
    body["properties"]["hardwareProfile"]["vmSize"] = json!("Standard_D2s_v5");
    body["properties"]["priority"] = json!("Spot");
    body["properties"]["evictionPolicy"] = json!("Deallocate");
    body["properties"]["billingProfile"] = json!({ "maxPrice": -1 });
    body["properties"]["userData"] = json!("RXhhbXBsZSBVc2VyRGF0YQ==");
    let created = http
        .put(format!("{base}{VM}?api-version=2025-04-01"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let swagger = Swagger::load();
    swagger.check("VirtualMachine", &created);
    let create_example =
        example("VirtualMachine_Create_WithSshAuthentication.json")["responses"]["201"]["body"]
            .clone();
    assert_same_shape(
        &created,
        &create_example,
        &[
            "/id",
            "/type",
            "/properties/provisioningState",
            "/properties/vmId",
        ],
    );
    clock.advance(std::time::Duration::from_secs(60));

    let get = |path: String| {
        let http = http.clone();
        async move {
            http.get(path)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let vm = get(format!(
        "{base}{VM}?api-version=2025-04-01&$expand=userData"
    ))
    .await;
    swagger.check("VirtualMachine", &vm);
    let get_example = example("VirtualMachine_Get.json")["responses"]["200"]["body"].clone();
    assert_same_shape(
        &vm,
        &get_example,
        &[
            "/name",
            "/id",
            "/type",
            "/location",
            "/tags",
            "/properties/vmId",
            "/properties/hardwareProfile/vmSize",
            "/properties/storageProfile/imageReference",
            "/properties/storageProfile/osDisk/osType",
            "/properties/storageProfile/osDisk/name",
            "/properties/storageProfile/osDisk/createOption",
            "/properties/storageProfile/osDisk/managedDisk/id",
            "/properties/storageProfile/osDisk/diskSizeGB",
            "/properties/osProfile/computerName",
            "/properties/networkProfile/networkInterfaces",
            "/properties/userData",
            "/properties/provisioningState",
            "/properties/timeCreated",
        ],
    );

    let view = get(format!("{base}{VM}/instanceView?api-version=2025-04-01")).await;
    swagger.check("VirtualMachineInstanceView", &view);
    let view_example =
        example("VirtualMachine_Get_InstanceView.json")["responses"]["200"]["body"].clone();
    assert_same_shape(
        &view,
        &view_example,
        &[
            "/computerName",
            "/osName",
            "/hyperVGeneration",
            "/disks/0/name",
            "/disks/0/statuses/0/code",
            "/statuses/0/code",
            "/statuses/0/level",
            "/statuses/0/displayStatus",
            "/statuses/0/time",
            "/statuses/1/code",
        ],
    );
    assert_eq!(view["statuses"][1]["displayStatus"], "VM running");

    let list = get(format!("{base}/subscriptions/s1/providers/Microsoft.Compute/virtualMachines?api-version=2025-04-01&statusOnly=true")).await;
    swagger.check("VirtualMachineListResult", &list);
    let list_example =
        example("VirtualMachine_ListAll_MaximumSet_Gen.json")["responses"]["200"]["body"].clone();
    assert_same_shape(
        &list,
        &list_example,
        &[
            "/value/0/id",
            "/value/0/location",
            "/value/0/properties/priority",
            "/value/0/properties/evictionPolicy",
            "/value/0/properties/billingProfile/maxPrice",
            "/value/0/properties/timeCreated",
        ],
    );
    let minimum =
        example("VirtualMachine_ListAll_MinimumSet_Gen.json")["responses"]["200"]["body"].clone();
    assert_same_shape(&list, &minimum, &["/value/0/id", "/value/0/location"]);
}

#[test]
fn the_validator_catches_unknown_fields_wrong_types_and_bad_enums() {
    let swagger = Swagger::load();
    let schema = json!({ "$ref": "#/definitions/VirtualMachine" });
    let bad = json!({
        "location": "eastus",
        "bogus": 1,
        "properties": { "vmId": 7, "instanceView": { "statuses": [{ "level": "Loud" }] } }
    });
    let mut errors = Vec::new();
    swagger.validate("virtualMachine.json", &schema, &bad, "vm", &mut errors);
    let text = errors.join("\n");
    assert!(
        text.contains("vm.bogus: not in the swagger definition"),
        "{text}"
    );
    assert!(
        text.contains("vm.properties.vmId: expected Some(\"string\")"),
        "{text}"
    );
    assert!(text.contains("statuses[0].level: Loud"), "{text}");
    let mut mismatches = Vec::new();
    same_shape(
        &json!({"a": "1", "b": [{"c": true}]}),
        &json!({"a": 1, "b": [{"c": "x"}]}),
        "",
        &mut mismatches,
    );
    assert_eq!(mismatches.len(), 2, "{mismatches:?}");
}
