//! The HTTP facade over loopback: a client creates Spot VMs with LRO polling, sees an
//! eviction on the VM's own IMDS, sees start fail while capacity is out, and reads a bill that
//! adds up; throttling, faults and error shapes.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use spotkit_cloud::Clock;
use spotkit_core::Timestamp;
use spotkit_sim::cloud::http::{ScaledClock, SimServer};
use spotkit_sim::cloud::{Scenario, SpotCloud, VirtualClock};

const API: &str = "api-version=2025-04-01";
const VM1: &str =
    "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1";

struct Sim {
    base: String,
    clock: Arc<VirtualClock>,
    http: reqwest::Client,
    _server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Sim {
    async fn start(adjust: impl FnOnce(&mut Scenario)) -> Self {
        let mut scenario = Scenario::builtin_default();
        scenario.eviction.rate_scale = 0.0;
        adjust(&mut scenario);
        let start = Timestamp::from_unix_secs(1_767_225_600);
        let clock = Arc::new(VirtualClock::manual(start));
        let cloud = SpotCloud::new(scenario, 9, start, Path::new("/nonexistent")).unwrap();
        let scaled = Arc::new(ScaledClock::new(clock.clone(), start, 1.0));
        let (address, server) = SimServer::new(cloud, scaled)
            .spawn_on_loopback()
            .await
            .unwrap();
        Self {
            base: format!("http://{address}"),
            clock,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            _server: server,
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            return path.to_owned();
        }
        let separator = if path.contains('?') { '&' } else { '?' };
        if path.starts_with("/subscriptions") {
            format!("{}{path}{separator}{API}", self.base)
        } else {
            format!("{}{path}", self.base)
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth("anything-goes");
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = self.send(reqwest::Method::GET, path, None).await;
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    async fn imds(&self, vm: &str, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/vm/{vm}{path}", self.base))
            .header("Metadata", "true")
            .send()
            .await
            .unwrap()
    }

    fn advance(&self, seconds: u64) {
        self.clock.advance(Duration::from_secs(seconds));
    }
}

fn spot_body(policy: &str) -> Value {
    json!({
        "location": "eastus",
        "tags": { "spotkit-pool": "p1" },
        "properties": {
            "hardwareProfile": { "vmSize": "Standard_D4as_v5" },
            "storageProfile": {
                "imageReference": { "publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest" },
                "osDisk": { "createOption": "FromImage", "managedDisk": { "storageAccountType": "Standard_LRS" } }
            },
            "osProfile": { "computerName": "vm1", "adminUsername": "azureuser", "adminPassword": "secret" },
            "priority": "Spot",
            "evictionPolicy": policy,
            "billingProfile": { "maxPrice": -1 }
        }
    })
}

fn statuses(instance_view: &Value) -> Vec<String> {
    instance_view["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|status| status["code"].as_str().unwrap().to_owned())
        .collect()
}

async fn event(sim: &Sim, body: Value) -> Value {
    let response = sim
        .send(reqwest::Method::POST, "/_sim/events", Some(body))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

#[tokio::test]
async fn create_evict_start_fails_then_succeeds_and_the_bill_adds_up() {
    let sim = Sim::start(|_| {}).await;
    // Create: 201 + Azure-AsyncOperation + Retry-After; the password is never echoed.
    let created = sim
        .send(reqwest::Method::PUT, VM1, Some(spot_body("Deallocate")))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let headers = created.headers().clone();
    assert_eq!(headers["retry-after"], "1");
    assert!(headers.contains_key("x-ms-ratelimit-remaining-subscription-writes"));
    assert!(
        headers["x-ms-ratelimit-remaining-resource"]
            .to_str()
            .unwrap()
            .contains("PutVM")
    );
    let operation = headers["azure-asyncoperation"].to_str().unwrap().to_owned();
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["properties"]["provisioningState"], "Creating");
    assert_eq!(body["properties"]["priority"], "Spot");
    assert_eq!(body["properties"]["billingProfile"]["maxPrice"], -1.0);
    assert!(
        body["properties"]["osProfile"]
            .get("adminPassword")
            .is_none()
    );
    assert_eq!(sim.get_json(&operation).await["status"], "InProgress");
    sim.advance(30);
    let status = sim.get_json(&operation).await;
    assert_eq!(status["status"], "Succeeded");
    assert!(status["endTime"].is_string());
    let vm = sim.get_json(&format!("{VM1}?$expand=instanceView")).await;
    assert_eq!(vm["properties"]["provisioningState"], "Succeeded");
    assert!(statuses(&vm["properties"]["instanceView"]).contains(&"PowerState/running".to_owned()));

    // The VM's own IMDS knows who it is.
    let instance: Value = sim
        .imds("vm1", "/metadata/instance?api-version=2021-02-01")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(instance["compute"]["name"], "vm1");
    assert_eq!(instance["compute"]["vmSize"], "Standard_D4as_v5");
    assert_eq!(instance["compute"]["priority"], "Spot");
    assert_eq!(instance["compute"]["evictionPolicy"], "Deallocate");
    assert_eq!(instance["compute"]["vmId"], vm["properties"]["vmId"]);
    let token: Value = sim
        .imds("vm1", "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(token["resource"], "https://management.azure.com/");
    assert_eq!(token["token_type"], "Bearer");
    let no_audience = sim
        .imds(
            "vm1",
            "/metadata/identity/oauth2/token?api-version=2018-02-01",
        )
        .await;
    assert_eq!(no_audience.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        no_audience.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let no_header = sim
        .http
        .get(format!(
            "{}/vm/vm1/metadata/scheduledevents?api-version=2020-07-01",
            sim.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(no_header.status(), StatusCode::BAD_REQUEST);
    assert_eq!(token["expires_in"], "3599");

    // Capacity goes away: Preempt with 30 s notice on vm1's IMDS, then deallocated.
    let fired = event(
        &sim,
        json!({"kind": "capacity", "region": "eastus", "size": "Standard_D4as_v5", "capacity": 0}),
    )
    .await;
    assert!(fired.to_string().contains("eviction_noticed"));
    let document: Value = sim
        .imds("vm1", "/metadata/scheduledevents?api-version=2020-07-01")
        .await
        .json()
        .await
        .unwrap();
    let preempt = &document["Events"][0];
    assert_eq!(preempt["EventType"], "Preempt");
    assert_eq!(preempt["EventStatus"], "Scheduled");
    assert_eq!(preempt["Resources"], json!(["vm1"]));
    assert_eq!(
        preempt["NotBefore"],
        spotkit_sim::imds::http_date(sim.clock.now().plus(Duration::from_secs(30)))
    );
    sim.advance(30);
    let view = sim.get_json(&format!("{VM1}/instanceView")).await;
    assert!(
        statuses(&view).contains(&"PowerState/deallocated".to_owned()),
        "{view}"
    );

    // Start fails while capacity is out.
    let refused = sim
        .send(reqwest::Method::POST, &format!("{VM1}/start"), None)
        .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "SkuNotAvailable");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("eastus")
    );

    // Capacity returns: start is accepted (202 + Location), polled to completion.
    sim.advance(600);
    event(
        &sim,
        json!({"kind": "capacity", "region": "eastus", "size": "Standard_D4as_v5", "capacity": 5}),
    )
    .await;
    let accepted = sim
        .send(reqwest::Method::POST, &format!("{VM1}/start"), None)
        .await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let location = accepted.headers()["location"].to_str().unwrap().to_owned();
    assert!(accepted.headers().contains_key("azure-asyncoperation"));
    assert_eq!(
        sim.send(reqwest::Method::GET, &location, None)
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    sim.advance(20);
    assert_eq!(
        sim.send(reqwest::Method::GET, &location, None)
            .await
            .status(),
        StatusCode::OK
    );
    sim.advance(3600);

    // The bill: per VM and total, and they add up.
    let bill = sim.get_json("/_sim/bill").await;
    let lines = bill["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    let compute = line["compute_usd"].as_f64().unwrap();
    let disk = line["disk_usd"].as_f64().unwrap();
    assert!(compute > 0.0 && disk > 0.0);
    assert!((bill["total_usd"].as_f64().unwrap() - (compute + disk)).abs() < 1e-12);
    // Ran from 30 s until the eviction at 60 s, then from 680 s (start at 660 s + 20 s) to
    // 4280 s, at the eastus D4as_v5 spot price.
    let expected = 0.01892 * ((60.0 - 30.0) + (4280.0 - 680.0)) / 3600.0;
    assert!((compute - expected).abs() < 1e-9, "{compute} vs {expected}");
    // Disk billed the whole time from creation completion, deallocated or not.
    assert!((line["disk_seconds"].as_f64().unwrap() - (4280.0 - 30.0)).abs() < 1e-9);

    let log = sim.get_json("/_sim/log").await;
    assert!(
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|entry| entry["kind"] == "evicted")
    );
}

#[tokio::test]
async fn lists_return_instance_views_with_status_only_and_page_with_next_link() {
    let sim = Sim::start(|scenario| scenario.http.page_size = 1).await;
    for name in ["a1", "a2"] {
        let path = format!(
            "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/{name}"
        );
        assert_eq!(
            sim.send(reqwest::Method::PUT, &path, Some(spot_body("Delete")))
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    sim.advance(30);
    let first = sim
        .get_json("/subscriptions/s1/providers/Microsoft.Compute/virtualMachines?statusOnly=true")
        .await;
    assert_eq!(first["value"].as_array().unwrap().len(), 1);
    assert!(
        statuses(&first["value"][0]["properties"]["instanceView"])
            .contains(&"PowerState/running".to_owned())
    );
    let next = first["nextLink"].as_str().unwrap();
    assert!(next.contains("statusOnly=true"));
    let second = sim.get_json(next).await;
    assert_eq!(second["value"][0]["name"], "a2");
    assert!(second.get("nextLink").is_none());
    let group = sim
        .get_json(
            "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines",
        )
        .await;
    assert!(
        group["value"][0]["properties"]
            .get("instanceView")
            .is_none()
    );
    // Another subscription sees nothing.
    let other = sim
        .get_json("/subscriptions/s2/providers/Microsoft.Compute/virtualMachines")
        .await;
    assert_eq!(other["value"], json!([]));
    // Delete: 202 with Location; polled; the VM is gone, IMDS too; deleting again is 204.
    let path =
        "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/a1";
    let deleted = sim.send(reqwest::Method::DELETE, path, None).await;
    assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    sim.advance(10);
    assert_eq!(
        sim.send(reqwest::Method::GET, path, None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        sim.imds("a1", "/metadata/instance?api-version=1")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        sim.send(reqwest::Method::DELETE, path, None).await.status(),
        StatusCode::NO_CONTENT
    );
    // simulateEviction: 204, then a Preempt on that VM.
    let evict = "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/a2/simulateEviction";
    assert_eq!(
        sim.send(reqwest::Method::POST, evict, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let document: Value = sim
        .imds("a2", "/metadata/scheduledevents?api-version=2020-07-01")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(document["Events"][0]["EventType"], "Preempt");
}

#[tokio::test]
async fn errors_have_arm_shapes() {
    let sim = Sim::start(|_| {}).await;
    let missing = sim
        .http
        .get(format!("{}{VM1}", sim.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "MissingApiVersionParameter");
    let not_found = sim.send(reqwest::Method::GET, VM1, None).await;
    assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        not_found.json::<Value>().await.unwrap()["error"]["code"],
        "ResourceNotFound"
    );
    let mut unknown_size = spot_body("Delete");
    unknown_size["properties"]["hardwareProfile"]["vmSize"] = json!("Standard_Nope");
    let refused = sim
        .send(reqwest::Method::PUT, VM1, Some(unknown_size))
        .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["error"]["code"],
        "SkuNotAvailable"
    );
    let mut bad_zone = spot_body("Delete");
    bad_zone["zones"] = json!(["7"]);
    let refused = sim.send(reqwest::Method::PUT, VM1, Some(bad_zone)).await;
    assert_eq!(
        refused.json::<Value>().await.unwrap()["error"]["code"],
        "OverconstrainedAllocationRequest"
    );
    let mut low = spot_body("Delete");
    low["properties"]["billingProfile"]["maxPrice"] = json!(0.001);
    let refused = sim.send(reqwest::Method::PUT, VM1, Some(low)).await;
    assert_eq!(
        refused.json::<Value>().await.unwrap()["error"]["code"],
        "SpotPriceGreaterThanProvidedMaxPrice"
    );
    let garbage = sim.http.put(sim.url(VM1)).body("{").send().await.unwrap();
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        garbage.json::<Value>().await.unwrap()["error"]["code"],
        "InvalidRequestContent"
    );
    // Regular VMs: family quota (40 vCPUs of standardDSv5Family in eastus).
    for n in 0..10 {
        let body = json!({"location": "eastus", "properties": {"hardwareProfile": {"vmSize": "Standard_D4s_v5"}}});
        let path = format!(
            "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/r{n}"
        );
        assert_eq!(
            sim.send(reqwest::Method::PUT, &path, Some(body))
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let body = json!({"location": "eastus", "properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"}}});
    let refused = sim
        .send(
            reqwest::Method::PUT,
            "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/r10",
            Some(body),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "OperationNotAllowed");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("standardDSv5Family Cores quota")
    );
}

#[tokio::test]
async fn buckets_run_dry_into_429_with_headers_and_refill() {
    // ARM reads: 250 x 0.04 = 10 tokens, 1 per second back.
    let sim = Sim::start(|scenario| scenario.http.throttle_scale = 0.04).await;
    let list = "/subscriptions/s1/providers/Microsoft.Compute/virtualMachines";
    for remaining in (0..10).rev() {
        let response = sim.send(reqwest::Method::GET, list, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["x-ms-ratelimit-remaining-subscription-reads"],
            remaining.to_string().as_str()
        );
        assert!(
            response
                .headers()
                .contains_key("x-ms-ratelimit-remaining-resource")
        );
    }
    let throttled = sim.send(reqwest::Method::GET, list, None).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers()["retry-after"], "1");
    assert_eq!(
        throttled.headers()["x-ms-ratelimit-remaining-subscription-reads"],
        "0"
    );
    let body: Value = throttled.json().await.unwrap();
    assert_eq!(body["error"]["code"], "OperationNotAllowed");
    assert_eq!(body["error"]["details"][0]["code"], "TooManyRequests");
    assert_eq!(
        body["error"]["details"][0]["target"],
        "ARM-subscription-reads"
    );
    sim.advance(1);
    assert_eq!(
        sim.send(reqwest::Method::GET, list, None).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn injected_faults_answer_the_next_requests() {
    let sim = Sim::start(|_| {}).await;
    let fault = sim
        .send(
            reqwest::Method::POST,
            "/_sim/faults",
            Some(json!({"status": 500, "count": 2})),
        )
        .await;
    assert_eq!(fault.status(), StatusCode::CREATED);
    let list = "/subscriptions/s1/providers/Microsoft.Compute/virtualMachines";
    for _ in 0..2 {
        let response = sim.send(reqwest::Method::GET, list, None).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"]["code"],
            "InternalServerError"
        );
    }
    assert_eq!(
        sim.send(reqwest::Method::GET, list, None).await.status(),
        StatusCode::OK
    );
    sim.send(
        reqwest::Method::POST,
        "/_sim/faults",
        Some(json!({"status": 429})),
    )
    .await;
    let throttled = sim.send(reqwest::Method::GET, list, None).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers().contains_key("retry-after"));
    // Admin: time, speed, catalog.
    let time = sim.get_json("/_sim/time").await;
    assert_eq!(time["speed"], 1.0);
    let speed = sim
        .send(
            reqwest::Method::PUT,
            "/_sim/speed",
            Some(json!({"speed": 60})),
        )
        .await;
    assert_eq!(speed.json::<Value>().await.unwrap()["speed"], 60.0);
    let catalog = sim.get_json("/_sim/catalog").await;
    assert_eq!(catalog["offerings"].as_array().unwrap().len(), 12);
    assert_eq!(catalog["offerings"][0]["payg_linux"], 0.096);
}

#[tokio::test]
async fn the_catalog_facade_is_served_beside_compute_on_one_listener() {
    let sim = Sim::start(|_| {}).await;
    let prices: Value = sim
        .http
        .get(format!(
            "{}/api/retail/prices?api-version=2023-01-01-preview&$filter=armRegionName eq 'eastus'",
            sim.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = prices["Items"].as_array().unwrap();
    assert!(!items.is_empty(), "{prices}");
    assert!(items.iter().all(|i| i["armRegionName"] == "eastus"));
    let skus = sim
        .http
        .get(format!(
            "{}/subscriptions/s1/providers/Microsoft.Compute/skus?api-version=2021-07-01",
            sim.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(skus.status(), StatusCode::OK);
    let scores = sim
        .http
        .post(format!(
            "{}/subscriptions/s1/providers/Microsoft.Compute/locations/eastus/placementScores/spot/generate?api-version=2025-06-05",
            sim.base
        ))
        .json(&json!({"desiredLocations": ["eastus"], "desiredSizes": [{"sku": "Standard_D2s_v5"}], "desiredCount": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(scores.status(), StatusCode::OK);
    let scores: Value = scores.json().await.unwrap();
    assert_eq!(scores["placementScores"][0]["sku"], "Standard_D2s_v5");
    // The compute facade's operation-status route shares the `locations/{location}` segment.
    let missing = sim
        .http
        .get(format!(
            "{}/subscriptions/s1/providers/Microsoft.Compute/locations/eastus/operations/nope?api-version=2025-04-01",
            sim.base
        ))
        .send()
        .await
        .unwrap();
    assert_ne!(missing.status(), StatusCode::OK);
}
