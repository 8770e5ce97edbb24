//! The advisor's data calls against a scripted ARM fake: Resource SKUs paging, Resource Graph
//! `$skipToken` paging and quota headers, eviction bands, spot prices, placement batching and
//! caching.

mod arm_support;

use std::time::Duration;

use arm_support::{Answer, VirtualClock, client, fixture, serve};
use spotkit_azure::arm::{
    list_vm_skus, spot_eviction_rates, spot_placement_scores, spot_price_history,
};
use spotkit_core::advisor::{EvictionBand, PlacementScore};

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

#[tokio::test]
async fn vm_skus_follow_next_link_and_keep_virtual_machines_only() {
    let example = fixture("compute-skus/ListAvailableResourceSkus.json");
    let skus = example["responses"]["200"]["body"]["value"].clone();
    let fake = serve(move |base, req, i| {
        let mut page = serde_json::json!({ "value": [skus[i].clone()] });
        if i == 0 {
            page["nextLink"] = format!("{base}/subscriptions/s/providers/Microsoft.Compute/skus?api-version=2021-07-01&$skiptoken=p2").into();
        } else {
            // A disk SKU is skipped.
            page["value"].as_array_mut().unwrap().push(serde_json::json!({"resourceType":"disks","name":"Premium_LRS"}));
        }
        assert!(req.uri.contains("api-version=2021-07-01"));
        Answer::json(200, page.to_string())
    })
    .await;
    let arm = client(&fake, VirtualClock::new());
    let skus = list_vm_skus(&arm, "s", Some("westus")).await.unwrap();
    assert_eq!(skus.len(), 2);
    assert_eq!(skus[0].name, "Standard_A0");
    let first = &fake.seen()[0];
    assert!(
        first.uri.starts_with(
            "/subscriptions/s/providers/Microsoft.Compute/skus?api-version=2021-07-01&$filter="
        ),
        "{}",
        first.uri
    );
    assert!(
        first.uri.contains("location%20eq%20%27westus%27"),
        "{}",
        first.uri
    );
}

fn graph_page(rows: &str, skip_token: Option<&str>) -> String {
    let token = skip_token.map_or(String::new(), |t| format!(r#","$skipToken":"{t}""#));
    format!(
        r#"{{"totalRecords":5,"count":2,"resultTruncated":"false","facets":[],"data":[{rows}]{token}}}"#
    )
}

#[tokio::test]
async fn eviction_rates_page_with_skip_tokens_and_skip_bad_bands() {
    let fake = serve(|_, req, i| {
        let body = req.json();
        assert_eq!(body["options"]["resultFormat"], "objectArray");
        assert_eq!(body["subscriptions"][0], "sub-1");
        let answer = match i {
            0 => {
                assert!(body["options"].get("$skipToken").is_none());
                graph_page(r#"{"skuName":"standard_d2s_v4","location":"eastus","spotEvictionRate":"0-5"},{"skuName":"standard_d2s_v4","location":"westus","spotEvictionRate":"5-10%"}"#, Some("tok-2"))
            }
            1 => {
                assert_eq!(body["options"]["$skipToken"], "tok-2");
                graph_page(r#"{"skuName":"standard_d4s_v4","location":"eastus","spotEvictionRate":"20+"},{"skuName":"standard_d4s_v4","location":"westus","spotEvictionRate":"unknown"}"#, Some("tok-3"))
            }
            _ => {
                assert_eq!(body["options"]["$skipToken"], "tok-3");
                graph_page(r#"{"skuName":"standard_d8s_v4","location":"eastus","spotEvictionRate":"15 - 20 %"}"#, None)
            }
        };
        // The per-user quota is spent after the first page: the next one waits for the reset.
        let remaining = if i == 0 { "0" } else { "10" };
        Answer::json(200, answer)
            .header("x-ms-user-quota-remaining", remaining)
            .header("x-ms-user-quota-resets-after", "00:00:03")
    })
    .await;
    let clock = VirtualClock::new();
    let arm = client(&fake, clock.clone());
    let rows = spot_eviction_rates(
        &arm,
        &strings(&["sub-1"]),
        &strings(&["Standard_D2s_v4", "Standard_D4s_v4", "Standard_D8s_v4"]),
        &strings(&["eastus", "westus"]),
    )
    .await
    .unwrap();
    let bands: Vec<_> = rows
        .iter()
        .map(|r| (r.sku.as_str(), r.location.as_str(), r.band))
        .collect();
    assert_eq!(
        bands,
        vec![
            ("standard_d2s_v4", "eastus", EvictionBand::ZeroToFive),
            ("standard_d2s_v4", "westus", EvictionBand::FiveToTen),
            ("standard_d4s_v4", "eastus", EvictionBand::TwentyPlus),
            ("standard_d8s_v4", "eastus", EvictionBand::FifteenToTwenty),
        ],
        "the unparseable band is skipped"
    );
    assert_eq!(fake.seen().len(), 3);
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(3)]);
    let query = fake.seen()[0].json()["query"].as_str().unwrap().to_string();
    assert!(
        query.contains("where type =~ 'microsoft.compute/skuspotevictionrate/location'"),
        "{query}"
    );
    assert!(
        query.contains("sku.name in~ ('standard_d2s_v4', 'standard_d4s_v4', 'standard_d8s_v4')"),
        "{query}"
    );
    assert_eq!(
        fake.seen()[0].uri,
        "/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01"
    );
}

#[tokio::test]
async fn spot_prices_parse_and_rows_without_a_price_are_skipped() {
    let fake = serve(|_, _, _| {
        Answer::json(200, graph_page(r#"{"skuName":"standard_d2s_v4","osType":"Linux","location":"eastus","latestSpotPriceUSD":0.0192},{"skuName":"standard_d4s_v4","osType":"Linux","location":"eastus","latestSpotPriceUSD":null}"#, None))
    })
    .await;
    let arm = client(&fake, VirtualClock::new());
    let rows = spot_price_history(
        &arm,
        &strings(&["s"]),
        &strings(&["Standard_D2s_v4", "Standard_D4s_v4"]),
        &strings(&["eastus"]),
        "linux",
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].os, "Linux");
    assert!((rows[0].latest_usd - 0.0192).abs() < 1e-12);
    let query = fake.seen()[0].json()["query"].as_str().unwrap().to_string();
    assert!(query.contains("properties.osType =~ 'linux'"), "{query}");
    // Nothing asked, nothing sent.
    assert!(
        spot_price_history(&arm, &[], &[], &strings(&["eastus"]), "linux")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn placement_scores_are_batched_by_8_regions_and_5_sizes_and_cached() {
    let fake = serve(|_, req, _| {
        let input = req.json();
        let regions = input["desiredLocations"].as_array().unwrap().clone();
        let sizes = input["desiredSizes"].as_array().unwrap().clone();
        assert!(regions.len() <= 8 && sizes.len() <= 5, "{input}");
        let first_region = regions[0].as_str().unwrap();
        assert!(req.path().ends_with(&format!("/locations/{first_region}/placementScores/spot/generate")), "{}", req.uri);
        assert!(req.uri.ends_with("api-version=2025-06-05"));
        let mut scores = Vec::new();
        for r in &regions {
            for s in &sizes {
                let score = if r == "region-9" { "RestrictedSkuNotAvailable" } else { "High" };
                scores.push(serde_json::json!({"sku": s["sku"], "region": r, "score": score, "isQuotaAvailable": true}));
            }
        }
        Answer::json(200, serde_json::json!({"desiredLocations": regions, "desiredSizes": sizes, "desiredCount": input["desiredCount"], "availabilityZones": false, "placementScores": scores}).to_string())
    })
    .await;
    let clock = VirtualClock::new();
    let arm = client(&fake, clock.clone());
    let regions: Vec<String> = (0..10).map(|i| format!("region-{i}")).collect();
    let sizes: Vec<String> = (0..7).map(|i| format!("Standard_S{i}")).collect();
    let rows = spot_placement_scores(&arm, "s", &sizes, &regions, 10, false)
        .await
        .unwrap();
    assert_eq!(rows.len(), 70);
    // ceil(10/8) x ceil(7/5) = 4 calls.
    assert_eq!(fake.seen().len(), 4);
    assert!(rows.iter().all(|r| r.zone.is_none() && r.quota_available));
    assert_eq!(
        rows.iter()
            .filter(|r| r.score == PlacementScore::RestrictedSkuNotAvailable)
            .count(),
        7
    );
    // The same ask within the TTL is served from the cache...
    clock.advance(Duration::from_secs(19 * 60));
    let again = spot_placement_scores(&arm, "s", &sizes, &regions, 10, false)
        .await
        .unwrap();
    assert_eq!(again, rows);
    assert_eq!(fake.seen().len(), 4);
    // ...another count is another request...
    spot_placement_scores(&arm, "s", &sizes[..1], &regions[..1], 3, false)
        .await
        .unwrap();
    assert_eq!(fake.seen().len(), 5);
    // ...and after 20 minutes the answers are fetched again.
    clock.advance(Duration::from_secs(2 * 60));
    spot_placement_scores(&arm, "s", &sizes, &regions, 10, false)
        .await
        .unwrap();
    assert_eq!(fake.seen().len(), 9);
}

#[tokio::test]
async fn placement_429s_are_waited_out() {
    let fake = serve(|_, _, i| {
        if i == 0 {
            Answer::json(
                429,
                r#"{"error":{"code":"TooManyRequests","message":"slow down"}}"#,
            )
            .header("retry-after", "30")
        } else {
            let example = fixture("spot-placement/GenerateSpotPlacementScores.json");
            Answer::json(200, example["responses"]["200"]["body"].to_string())
        }
    })
    .await;
    let clock = VirtualClock::new();
    let arm = client(&fake, clock.clone());
    let rows = spot_placement_scores(
        &arm,
        "s",
        &strings(&["Standard_D2_v2"]),
        &strings(&["eastus", "eastus2"]),
        1,
        true,
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0].zone.as_deref(), Some("1"));
    assert_eq!(rows[3].score, PlacementScore::DataNotFoundOrStale);
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(30)]);
}
