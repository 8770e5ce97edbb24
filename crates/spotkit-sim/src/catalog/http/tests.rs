//! The catalog facade over loopback: behaviour per API, and fidelity to the official examples
//! (fixtures/azure/, verbatim): the facade's answers use the same field names and JSON types.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use super::*;
use crate::catalog::{QuotaInfo, RegionInfo};

struct ManualClock(Mutex<Timestamp>);

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
    fn sleep_until(&self, _until: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

const AT: i64 = 1_795_000_000; // 2026-11-18

fn size(name: &str, family: &str, vcpus: u32, memory_gib: f64, spot: bool) -> SizeInfo {
    SizeInfo {
        name: name.into(),
        family: family.into(),
        vcpus,
        memory_gib,
        spot_capable: spot,
    }
}

#[allow(clippy::too_many_arguments)]
fn offer(
    size: &str,
    region: &str,
    payg: f64,
    spot: Option<f64>,
    band: Option<EvictionBand>,
    placement: PlacementScore,
    capacity: u32,
) -> OfferingInfo {
    OfferingInfo {
        size: size.into(),
        region: region.into(),
        payg_linux: payg,
        payg_windows: Some(payg * 1.8),
        spot_linux: spot,
        spot_windows: spot.map(|p| p * 1.8),
        spot_price_history: spot
            .map(|p| {
                vec![
                    (Timestamp::from_unix_secs(AT - 200 * 86_400), p * 0.7),
                    (Timestamp::from_unix_secs(AT - 30 * 86_400), p * 0.9),
                    (Timestamp::from_unix_secs(AT - 86_400), p),
                ]
            })
            .unwrap_or_default(),
        band,
        placement,
        spot_capacity_vms: capacity,
    }
}

pub(crate) fn sample_catalog() -> CatalogSnapshot {
    use EvictionBand::*;
    use PlacementScore::*;
    let zones = vec!["1".to_string(), "2".to_string(), "3".to_string()];
    CatalogSnapshot {
        at: Timestamp::from_unix_secs(AT),
        regions: vec![
            RegionInfo {
                name: "eastus".into(),
                display_name: "US East".into(),
                zones: zones.clone(),
            },
            RegionInfo {
                name: "westus2".into(),
                display_name: "US West 2".into(),
                zones,
            },
            RegionInfo {
                name: "westeurope".into(),
                display_name: "EU West".into(),
                zones: vec![],
            },
        ],
        sizes: vec![
            size("Standard_D2s_v5", "standardDSv5Family", 2, 8.0, true),
            size("Standard_D4s_v5", "standardDSv5Family", 4, 16.0, true),
            size("Standard_E4s_v5", "standardESv5Family", 4, 32.0, true),
            size("Standard_B2s", "standardBSFamily", 2, 4.0, false),
        ],
        offerings: vec![
            offer(
                "Standard_D2s_v5",
                "eastus",
                0.096,
                Some(0.01056),
                Some(ZeroToFive),
                High,
                400,
            ),
            offer(
                "Standard_D4s_v5",
                "eastus",
                0.192,
                Some(0.02112),
                Some(FiveToTen),
                High,
                40,
            ),
            offer(
                "Standard_D4s_v5",
                "westus2",
                0.192,
                Some(0.02496),
                Some(TenToFifteen),
                Medium,
                40,
            ),
            offer(
                "Standard_E4s_v5",
                "westus2",
                0.252,
                Some(0.03276),
                None,
                High,
                100,
            ),
            offer(
                "Standard_D4s_v5",
                "westeurope",
                0.23,
                Some(0.042504),
                Some(TwentyPlus),
                Low,
                5,
            ),
            offer("Standard_B2s", "eastus", 0.0416, None, None, Low, 0),
        ],
        quotas: vec![QuotaInfo {
            region: "westus2".into(),
            family: "LowPriorityCores".into(),
            limit_vcpus: 100,
            used_vcpus: 90,
        }],
    }
}

fn with_query(url: &str, query: &[(&str, &str)]) -> reqwest::Url {
    reqwest::Url::parse_with_params(url, query).unwrap()
}

struct Server {
    base: String,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
}

async fn start_with(tune: impl FnOnce(&mut CatalogHttpConfig)) -> Server {
    let clock = Arc::new(ManualClock(Mutex::new(Timestamp::from_unix_secs(AT))));
    let mut config = CatalogHttpConfig::new(clock.clone());
    tune(&mut config);
    let provider: CatalogProvider = Arc::new(sample_catalog);
    let app = catalog_router_with(provider, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        base,
        http: reqwest::Client::new(),
        clock,
    }
}

async fn start() -> Server {
    start_with(|_| {}).await
}

fn fixture(path: &str) -> Value {
    let full = format!("{}/../../fixtures/azure/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&full).unwrap()).unwrap()
}

/// Every field path (arrays collapsed to `[]`) with its JSON type.
fn shape(v: &Value) -> BTreeMap<String, &'static str> {
    fn walk(v: &Value, at: String, out: &mut BTreeMap<String, &'static str>) {
        let kind = match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(a) => {
                for x in a {
                    walk(x, format!("{at}[]"), out);
                }
                "array"
            }
            Value::Object(o) => {
                for (k, x) in o {
                    walk(x, format!("{at}.{k}"), out);
                }
                "object"
            }
        };
        out.insert(at, kind);
    }
    let mut out = BTreeMap::new();
    walk(v, String::new(), &mut out);
    out
}

/// Ours uses only official paths (plus `extras`), with the official types.
fn assert_same_shape(ours: &Value, official: &Value, extras: &[&str]) {
    let ours = shape(ours);
    let official = shape(official);
    for (path, kind) in &ours {
        if extras.iter().any(|e| path.starts_with(e)) {
            continue;
        }
        // `nextLink` is null in the example and a string on non-last pages: both are ARM's.
        if path.ends_with("nextLink") || path.ends_with("NextPageLink") {
            continue;
        }
        match official.get(path) {
            Some(k) => assert_eq!(k, kind, "{path}: official {k}, facade {kind}"),
            None => panic!("{path} ({kind}) is not in the official example"),
        }
    }
}

async fn prices(s: &Server, query: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = s
        .http
        .get(with_query(&format!("{}/api/retail/prices", s.base), query))
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    (status, resp.json().await.unwrap())
}

/// Follows NextPageLink like a client.
async fn all_prices(s: &Server, filter: &str) -> (Vec<Value>, usize) {
    let (status, mut page) = prices(
        s,
        &[("api-version", "2023-01-01-preview"), ("$filter", filter)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut items = Vec::new();
    let mut pages = 1;
    loop {
        items.extend(page["Items"].as_array().unwrap().iter().cloned());
        assert_eq!(
            page["Count"].as_u64().unwrap() as usize,
            page["Items"].as_array().unwrap().len()
        );
        match page["NextPageLink"].as_str() {
            Some(next) if !next.is_empty() => {
                assert!(next.starts_with(&s.base), "absolute link: {next}");
                page = s.http.get(next).send().await.unwrap().json().await.unwrap();
                pages += 1;
            }
            _ => break,
        }
    }
    (items, pages)
}

#[tokio::test]
async fn prices_page_through_next_page_link_and_filter_case_sensitively() {
    let s = start_with(|c| c.prices_page_size = 3).await;
    let filter = "serviceName eq 'Virtual Machines' and armRegionName eq 'eastus' and priceType eq 'Consumption'";
    let (items, pages) = all_prices(&s, filter).await;
    // eastus: D2s_v5 and D4s_v5 x (Linux, Windows) x (PAYG, Spot) + B2s PAYG (Linux, Windows).
    assert_eq!(items.len(), 10);
    assert_eq!(pages, 4);
    let ids: BTreeSet<&str> = items
        .iter()
        .map(|i| i["meterId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 10, "no item twice across pages");
    assert!(
        items
            .iter()
            .all(|i| i["armRegionName"] == "eastus" && i["location"] == "US East")
    );

    let (lower, _) = all_prices(&s, "serviceName eq 'virtual machines'").await;
    assert!(lower.is_empty(), "filter values are case-sensitive");

    let (spot, _) = all_prices(
        &s,
        "armRegionName eq 'eastus' and armSkuName eq 'Standard_D4s_v5' and contains(skuName, 'Spot')",
    )
    .await;
    let mut products: Vec<(&str, &str, f64)> = spot
        .iter()
        .map(|i| {
            (
                i["skuName"].as_str().unwrap(),
                i["productName"].as_str().unwrap(),
                i["retailPrice"].as_f64().unwrap(),
            )
        })
        .collect();
    products.sort_by(|a, b| a.1.cmp(b.1));
    assert_eq!(
        products,
        vec![
            ("D4s v5 Spot", "Virtual Machines DSv5 Series", 0.02112),
            (
                "D4s v5 Spot",
                "Virtual Machines DSv5 Series Windows",
                0.038016
            ),
        ]
    );
}

#[tokio::test]
async fn prices_in_another_currency_and_bad_filters() {
    let s = start().await;
    let (status, page) = prices(
        &s,
        &[
            ("currencyCode", "'EUR'"),
            (
                "$filter",
                "armSkuName eq 'Standard_D2s_v5' and meterName eq 'D2s v5'",
            ),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["BillingCurrency"], "EUR");
    assert_eq!(
        page["Items"].as_array().unwrap().len(),
        2,
        "Linux and Windows"
    );
    assert!(
        page["Items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["currencyCode"] == "EUR")
    );

    let (status, body) = prices(&s, &[("$filter", "vcpus eq '4'")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.to_string().contains("not a filterable field"),
        "{body}"
    );
    let (status, _) = prices(&s, &[("$filter", "armSkuName gt 'x'")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn price_items_have_the_official_fields_and_types() {
    let s = start().await;
    let (_, page) = prices(&s, &[("$filter", "armRegionName eq 'westeurope'")]).await;
    let official = fixture("retail-prices/retail-prices-sample-item-devtestconsumption-spot.json");
    let official_keys: BTreeSet<String> = official.as_object().unwrap().keys().cloned().collect();
    for item in page["Items"].as_array().unwrap() {
        let keys: BTreeSet<String> = item.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, official_keys);
        assert_same_shape(item, &official, &[]);
        assert_eq!(item["type"], "Consumption");
    }
    let envelope = json!({"BillingCurrency": "USD", "CustomerEntityId": "Default", "CustomerEntityType": "Retail", "Items": [], "NextPageLink": null, "Count": 0});
    let ours: BTreeSet<String> = page.as_object().unwrap().keys().cloned().collect();
    let theirs: BTreeSet<String> = envelope.as_object().unwrap().keys().cloned().collect();
    assert_eq!(ours, theirs);
}

async fn skus(s: &Server, filter: Option<&str>) -> Value {
    let mut q = vec![("api-version", "2021-07-01")];
    if let Some(f) = filter {
        q.push(("$filter", f));
    }
    s.http
        .get(with_query(
            &format!(
                "{}/subscriptions/sub-1/providers/Microsoft.Compute/skus",
                s.base
            ),
            &q,
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn skus_have_the_official_shape_with_low_priority_and_restrictions() {
    let s = start().await;
    let body = skus(&s, Some("location eq 'westeurope'")).await;
    let official = fixture("compute-skus/ListAvailableResourceSkusForARegion.json");
    assert_same_shape(
        &body,
        &official["responses"]["200"]["body"],
        &[".value[].restrictions"],
    );
    let entries = body["value"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "every size, once for the region");
    let by_name: BTreeMap<&str, &Value> = entries
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e))
        .collect();
    let cap = |e: &Value, n: &str| -> String {
        e["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap()["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(cap(by_name["Standard_E4s_v5"], "MemoryGB"), "32");
    assert_eq!(cap(by_name["Standard_E4s_v5"], "vCPUs"), "4");
    assert_eq!(cap(by_name["Standard_B2s"], "LowPriorityCapable"), "False");
    assert_eq!(by_name["Standard_D4s_v5"]["restrictions"], json!([]));
    let restricted = &by_name["Standard_D2s_v5"]["restrictions"][0];
    assert_eq!(restricted["type"], "Location");
    assert_eq!(restricted["reasonCode"], "NotAvailableForSubscription");
    assert_eq!(restricted["values"], json!(["westeurope"]));
}

#[tokio::test]
async fn skus_page_with_next_link() {
    let s = start_with(|c| c.skus_page_size = 5).await;
    let mut page = skus(&s, None).await;
    let mut names = Vec::new();
    loop {
        for e in page["value"].as_array().unwrap() {
            names.push(format!(
                "{}@{}",
                e["name"].as_str().unwrap(),
                e["locations"][0].as_str().unwrap()
            ));
        }
        match page["nextLink"].as_str() {
            Some(next) => page = s.http.get(next).send().await.unwrap().json().await.unwrap(),
            None => break,
        }
    }
    assert_eq!(names.len(), 12, "4 sizes x 3 regions: {names:?}");
    assert_eq!(names.iter().collect::<BTreeSet<_>>().len(), 12);
}

async fn graph(s: &Server, body: Value) -> reqwest::Response {
    s.http
        .post(format!(
            "{}/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01",
            s.base
        ))
        .json(&body)
        .send()
        .await
        .unwrap()
}

const EVICTION_QUERY: &str = "SpotResources
| where type =~ 'microsoft.compute/skuspotevictionrate/location'
| where sku.name in~ ('standard_d4s_v5', 'standard_d2s_v5')
| where location in~ ('eastus', 'westus2', 'westeurope')
| project skuName = tostring(sku.name), location, spotEvictionRate = tostring(properties.evictionRate)
| order by skuName asc, location asc";

const PRICE_QUERY: &str = "SpotResources
| where type =~ 'microsoft.compute/skuspotpricehistory/ostype/location'
| where sku.name in~ ('standard_d4s_v5', 'standard_d2s_v5')
| where properties.osType =~ 'linux'
| where location in~ ('eastus', 'westus2')
| project skuName = tostring(sku.name), osType = tostring(properties.osType), location,
          latestSpotPriceUSD = todouble(properties.spotPrices[0].priceUSD)
| order by latestSpotPriceUSD asc";

#[tokio::test]
async fn resource_graph_answers_the_official_spot_queries() {
    let s = start().await;
    let resp = graph(&s, json!({"subscriptions": ["sub-1"], "query": EVICTION_QUERY, "options": {"resultFormat": "objectArray"}})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-ms-user-quota-remaining"], "14");
    assert_eq!(resp.headers()["x-ms-user-quota-resets-after"], "00:00:05");
    let body: Value = resp.json().await.unwrap();
    assert_same_shape(
        &json!({"totalRecords": body["totalRecords"], "count": body["count"], "resultTruncated": body["resultTruncated"], "facets": body["facets"]}),
        &fixture("resource-graph/ResourcesBasicQuery.json")["responses"]["200"]["body"],
        &[],
    );
    assert_eq!(body["resultTruncated"], "false");
    let rows: Vec<(String, String, String)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["skuName"].as_str().unwrap().into(),
                r["location"].as_str().unwrap().into(),
                r["spotEvictionRate"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("standard_d2s_v5".into(), "eastus".into(), "0-5".into()),
            ("standard_d4s_v5".into(), "eastus".into(), "5-10".into()),
            ("standard_d4s_v5".into(), "westeurope".into(), "20+".into()),
            ("standard_d4s_v5".into(), "westus2".into(), "10-15".into()),
        ]
    );

    let body: Value = graph(
        &s,
        json!({"query": PRICE_QUERY, "options": {"resultFormat": "objectArray"}}),
    )
    .await
    .json()
    .await
    .unwrap();
    let prices: Vec<f64> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["latestSpotPriceUSD"].as_f64().unwrap())
        .collect();
    assert_eq!(
        prices,
        vec![0.01056, 0.02112, 0.02496],
        "newest price first in spotPrices, ordered asc"
    );
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["osType"] == "Linux")
    );
}

#[tokio::test]
async fn resource_graph_pages_with_skip_token_and_rejects_unknown_queries() {
    let s = start().await;
    let first: Value = graph(
        &s,
        json!({"query": EVICTION_QUERY, "options": {"$top": 3, "resultFormat": "objectArray"}}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_same_shape(
        &first,
        &fixture("resource-graph/ResourcesFirstPageQuery.json")["responses"]["200"]["body"],
        &[".data[]"],
    );
    assert_eq!(first["count"], 3);
    assert_eq!(first["totalRecords"], 4);
    let token = first["$skipToken"].as_str().unwrap();
    let second: Value = graph(&s, json!({"query": EVICTION_QUERY, "options": {"$top": 3, "$skipToken": token, "resultFormat": "objectArray"}})).await.json().await.unwrap();
    assert_eq!(second["count"], 1);
    assert!(second.get("$skipToken").is_none());
    assert_eq!(second["data"][0]["location"], "westus2");

    let bad = graph(
        &s,
        json!({"query": "SpotResources | summarize count() by location"}),
    )
    .await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BadRequest");
    assert!(
        body["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("summarize")
    );
    let other_table = graph(&s, json!({"query": "Resources | project id"})).await;
    assert_eq!(other_table.status(), 400);
}

#[tokio::test]
async fn resource_graph_throttles_past_the_user_quota_until_the_window_resets() {
    let s = start_with(|c| c.graph_quota = 2).await;
    let q = json!({"query": EVICTION_QUERY});
    assert_eq!(graph(&s, q.clone()).await.status(), 200);
    let second = graph(&s, q.clone()).await;
    assert_eq!(second.headers()["x-ms-user-quota-remaining"], "0");
    let third = graph(&s, q.clone()).await;
    assert_eq!(third.status(), 429);
    assert_eq!(third.headers()["retry-after"], "5");
    *s.clock.0.lock().unwrap() = Timestamp::from_unix_secs(AT + 6);
    assert_eq!(graph(&s, q).await.status(), 200);
}

async fn placement(s: &Server, body: &Value) -> reqwest::Response {
    s.http
        .post(format!(
            "{}/subscriptions/sub-1/providers/Microsoft.Compute/locations/eastus/placementScores/spot/generate?api-version=2025-06-05",
            s.base
        ))
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn placement_scores_answer_the_official_request_in_the_official_shape() {
    let s = start().await;
    let official = fixture("spot-placement/GenerateSpotPlacementScores.json");
    let request = &official["parameters"]["spotPlacementScoresInput"];
    let resp = placement(&s, request).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let expected = &official["responses"]["200"]["body"];
    assert_same_shape(&body, expected, &[]);
    assert_eq!(
        shape(&body).keys().collect::<Vec<_>>(),
        shape(expected).keys().collect::<Vec<_>>()
    );
    // Standard_D2_v2 is not in this catalogue: no data; per zone in eastus (3 zones), one
    // regional row for eastus2, which the catalogue does not know.
    assert_eq!(body["placementScores"].as_array().unwrap().len(), 4);
    assert!(
        body["placementScores"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["score"] == "DataNotFoundOrStale")
    );
}

#[tokio::test]
async fn placement_scores_follow_capacity_quota_and_spot_support() {
    let s = start().await;
    let ask = |count: u32| json!({"desiredLocations": ["eastus", "westus2", "westeurope"], "desiredSizes": [{"sku": "Standard_D4s_v5"}, {"sku": "Standard_B2s"}], "desiredCount": count, "availabilityZones": false});
    let body: Value = placement(&s, &ask(5)).await.json().await.unwrap();
    let score = |b: &Value, sku: &str, region: &str| -> (String, bool) {
        let p = b["placementScores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["sku"] == sku && p["region"] == region)
            .unwrap();
        assert!(p.get("availabilityZone").is_none());
        (
            p["score"].as_str().unwrap().into(),
            p["isQuotaAvailable"].as_bool().unwrap(),
        )
    };
    assert_eq!(
        score(&body, "Standard_D4s_v5", "eastus"),
        ("High".into(), true)
    );
    assert_eq!(
        score(&body, "Standard_D4s_v5", "westus2"),
        ("Medium".into(), false),
        "10 free spot vCPUs < 5 x 4"
    );
    assert_eq!(
        score(&body, "Standard_D4s_v5", "westeurope"),
        ("Low".into(), true)
    );
    assert_eq!(
        score(&body, "Standard_B2s", "eastus").0,
        "RestrictedSkuNotAvailable"
    );
    let more: Value = placement(&s, &ask(30)).await.json().await.unwrap();
    assert_eq!(
        score(&more, "Standard_D4s_v5", "eastus").0,
        "Medium",
        "30 of 40 obtainable"
    );

    let nine: Vec<String> = (0..9).map(|i| format!("region{i}")).collect();
    let resp = placement(&s, &json!({"desiredLocations": nine, "desiredSizes": [{"sku": "Standard_D4s_v5"}], "desiredCount": 1})).await;
    assert_eq!(resp.status(), 400);
    let sizes: Vec<Value> = (0..6)
        .map(|i| json!({"sku": format!("Standard_X{i}")}))
        .collect();
    let resp = placement(
        &s,
        &json!({"desiredLocations": ["eastus"], "desiredSizes": sizes, "desiredCount": 1}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most")
            || body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("between 1 and 5")
    );
}

#[test]
fn rfc3339_formats_utc() {
    assert_eq!(
        rfc3339(Timestamp::from_unix_secs(0)),
        "1970-01-01T00:00:00Z"
    );
    assert_eq!(
        rfc3339(Timestamp::from_unix_secs(1_596_240_000)),
        "2020-08-01T00:00:00Z"
    );
    assert_eq!(
        rfc3339(Timestamp::from_unix_secs(951_782_400 + 3661)),
        "2000-02-29T01:01:01Z"
    );
}
