use std::sync::Mutex;

use super::*;

fn price(sku: &str, region: &str, os: Os, kind: PriceKind, p: f64) -> PriceRow {
    PriceRow {
        sku: sku.into(),
        region: region.into(),
        os,
        kind,
        price_per_hour: p,
        currency: "USD".into(),
        effective_start: "2026-11-01T00:00:00Z".into(),
    }
}

fn sku(
    name: &str,
    vcpus: u32,
    mem: f64,
    spot: bool,
    locations: &[&str],
    restricted: &[&str],
) -> SkuRecord {
    SkuRecord {
        name: name.into(),
        family: "standardDSv5Family".into(),
        vcpus,
        memory_gib: mem,
        low_priority_capable: spot,
        locations: locations.iter().map(|s| (*s).to_string()).collect(),
        restricted_locations: restricted.iter().map(|s| (*s).to_string()).collect(),
    }
}

fn snapshot() -> AdvisorSnapshot {
    use PriceKind::*;
    AdvisorSnapshot {
        version: SNAPSHOT_VERSION,
        fetched_at_unix_ms: 0,
        fetched_at: rfc3339(Timestamp::from_unix_millis(0)),
        sources: SnapshotSources::default(),
        regions: vec!["eastus".into(), "WestUS2".into()],
        os: Os::Linux,
        desired_count: 10,
        prices: vec![
            price("Standard_D4s_v5", "eastus", Os::Linux, Spot, 0.02),
            price("Standard_D4s_v5", "eastus", Os::Linux, PayAsYouGo, 0.19),
            price("Standard_D4s_v5", "eastus", Os::Windows, Spot, 0.05),
            price("standard_d4s_v5", "westus2", Os::Linux, Spot, 0.025),
            price("Standard_D4s_v5", "westus2", Os::Linux, PayAsYouGo, 0.19),
            price("Standard_B2s", "eastus", Os::Linux, PayAsYouGo, 0.04),
            price("Standard_E4s_v5", "eastus", Os::Linux, Spot, 0.03),
            price("Standard_Unknown", "eastus", Os::Linux, Spot, 0.001),
        ],
        skus: vec![
            sku(
                "Standard_D4s_v5",
                4,
                16.0,
                true,
                &["eastus", "westus2", "northeurope"],
                &[],
            ),
            sku("Standard_B2s", 2, 4.0, false, &["eastus"], &[]),
            sku(
                "Standard_E4s_v5",
                4,
                32.0,
                true,
                &["eastus", "westus2"],
                &["westus2"],
            ),
        ],
        eviction_rates: vec![
            EvictionRecord {
                sku: "standard_d4s_v5".into(),
                location: "EastUS".into(),
                band: "0-5".into(),
            },
            EvictionRecord {
                sku: "standard_d4s_v5".into(),
                location: "westus2".into(),
                band: "10-15 %".into(),
            },
            EvictionRecord {
                sku: "standard_e4s_v5".into(),
                location: "eastus".into(),
                band: "garbage".into(),
            },
        ],
        placement_scores: vec![
            PlacementRecord {
                sku: "Standard_D4s_v5".into(),
                region: "eastus".into(),
                zone: Some("1".into()),
                score: "Low".into(),
                quota_available: true,
            },
            PlacementRecord {
                sku: "Standard_D4s_v5".into(),
                region: "eastus".into(),
                zone: Some("2".into()),
                score: "High".into(),
                quota_available: true,
            },
            PlacementRecord {
                sku: "Standard_E4s_v5".into(),
                region: "eastus".into(),
                zone: None,
                score: "RestrictedSkuNotAvailable".into(),
                quota_available: true,
            },
        ],
    }
}

#[test]
fn offerings_join_prices_skus_bands_and_scores_case_insensitively() {
    let offerings = assemble_offerings(&snapshot());
    let names: Vec<(String, String)> = offerings
        .iter()
        .map(|o| (o.size.clone(), o.region.clone()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("Standard_B2s".into(), "eastus".into()),
            ("Standard_D4s_v5".into(), "eastus".into()),
            ("Standard_D4s_v5".into(), "westus2".into()),
            ("Standard_E4s_v5".into(), "eastus".into()),
            ("Standard_E4s_v5".into(), "westus2".into()),
        ],
        "requested regions only; sizes without a SKU record are left out"
    );
    let d4_east = &offerings[1];
    assert_eq!(
        d4_east.spot_price,
        Some(0.02),
        "the Linux price, not the Windows one"
    );
    assert_eq!(d4_east.payg_price, Some(0.19));
    assert_eq!(d4_east.band, Some(EvictionBand::ZeroToFive));
    assert_eq!(d4_east.placement, Some(PlacementScore::High), "best zone");
    assert!(d4_east.spot_capable);
    let d4_west = &offerings[2];
    assert_eq!(d4_west.spot_price, Some(0.025));
    assert_eq!(d4_west.band, Some(EvictionBand::TenToFifteen));
    assert_eq!(d4_west.placement, None);
    assert!(
        !offerings[0].spot_capable && offerings[0].spot_price.is_none(),
        "B2s: not LowPriorityCapable"
    );
    assert!(
        !offerings[3].spot_capable,
        "RestrictedSkuNotAvailable from placement"
    );
    assert_eq!(offerings[3].band, None, "an unparsable band is unknown");
    assert!(!offerings[4].spot_capable, "restricted in westus2");
}

#[test]
fn offerings_feed_the_ranking_and_its_exclusion_counters_say_why() {
    use spotkit_core::advisor::{Exclusion, Requirements, rank};
    let advice = rank(
        &assemble_offerings(&snapshot()),
        &Requirements {
            min_vcpus: 4,
            ..Requirements::default()
        },
    );
    assert_eq!(advice.ranked.len(), 2);
    assert_eq!(advice.excluded.get(&Exclusion::TooFewVcpus), Some(&1));
    assert_eq!(advice.excluded.get(&Exclusion::NoSpot), Some(&2));
}

#[test]
fn snapshots_round_trip_and_other_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    write_snapshot(&path, &snapshot()).unwrap();
    assert_eq!(read_snapshot(&path).unwrap(), snapshot());
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["version"] = 99.into();
    std::fs::write(&path, v.to_string()).unwrap();
    let err = read_snapshot(&path).unwrap_err();
    assert!(
        matches!(err, AdvisorDataError::SnapshotVersion { found: 99, .. }),
        "{err}"
    );
    std::fs::write(&path, "{").unwrap();
    assert!(matches!(
        read_snapshot(&path).unwrap_err(),
        AdvisorDataError::SnapshotParse { .. }
    ));
}

#[test]
fn cache_entries_expire_after_their_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(dir.path().join("spotkit"));
    let t0 = Timestamp::from_unix_secs(1_000_000);
    cache.put("k", &vec![1, 2, 3], t0);
    let ttl = Duration::from_secs(1200);
    assert_eq!(
        cache.get::<Vec<i32>>("k", ttl, t0.plus(Duration::from_secs(1199))),
        Some(vec![1, 2, 3])
    );
    assert_eq!(
        cache.get::<Vec<i32>>("k", ttl, t0.plus(Duration::from_secs(1200))),
        None
    );
    assert_eq!(
        cache.get::<Vec<i32>>("k", ttl, t0.minus(Duration::from_secs(1))),
        None,
        "from the future"
    );
    assert_eq!(cache.get::<Vec<i32>>("other", ttl, t0), None);
}

/// An ARM side that records its calls.
#[derive(Default)]
struct FakeArm {
    calls: Mutex<Vec<String>>,
}

impl ArmAdvisorApi for FakeArm {
    fn base_url(&self) -> String {
        "http://arm.invalid".into()
    }
    fn skus<'a>(
        &'a self,
        subscription: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SkuRecord>, AdvisorDataError>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("skus {subscription}"));
        Box::pin(async {
            Ok(vec![
                sku("Standard_D4s_v5", 4, 16.0, true, &["eastus"], &[]),
                sku("Standard_D2s_v5", 2, 8.0, true, &["eastus"], &[]),
            ])
        })
    }
    fn eviction_rates<'a>(
        &'a self,
        _s: &'a str,
        sizes: &'a [String],
        regions: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<EvictionRecord>, AdvisorDataError>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("evictions {sizes:?} {regions:?}"));
        Box::pin(async { Ok(vec![]) })
    }
    fn placement_scores<'a>(
        &'a self,
        _s: &'a str,
        sizes: &'a [String],
        _r: &'a [String],
        count: u32,
    ) -> BoxFuture<'a, Result<Vec<PlacementRecord>, AdvisorDataError>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("placement {sizes:?} {count}"));
        Box::pin(async { Ok(vec![]) })
    }
}

async fn prices_server() -> String {
    use axum::Json;
    use serde_json::json;
    let app = axum::Router::new().route(
        "/api/retail/prices",
        axum::routing::get(|| async {
            Json(json!({"BillingCurrency": "USD", "CustomerEntityId": "Default", "CustomerEntityType": "Retail", "Count": 1, "NextPageLink": null,
                "Items": [{"currencyCode": "USD", "retailPrice": 0.02, "unitPrice": 0.02, "armRegionName": "eastus", "effectiveStartDate": "2026-11-01T00:00:00Z",
                    "meterName": "D4s v5 Spot", "skuName": "D4s v5 Spot", "productName": "Virtual Machines DSv5 Series", "unitOfMeasure": "1 Hour", "type": "Consumption", "armSkuName": "Standard_D4s_v5"}]}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test]
async fn live_source_asks_only_about_big_enough_sizes_and_reuses_its_cache() {
    let base = prices_server().await;
    let dir = tempfile::tempdir().unwrap();
    let arm = Arc::new(FakeArm::default());
    let source = LiveSource {
        prices: RetailPricesClient::new(&base, crate::prices::RetryPolicy::default()).unwrap(),
        arm: Some((arm.clone(), "sub-1".into())),
        cache: Some(FileCache::new(dir.path().to_path_buf())),
    };
    let request = FetchRequest {
        regions: vec!["eastus".into()],
        os: Os::Linux,
        currency: None,
        desired_count: 3,
        min_vcpus: 4,
        min_memory_gib: 0.0,
        placement_sizes_max: 20,
    };
    let now = Timestamp::from_unix_secs(1_800_000_000);
    let snap = source.fetch(&request, now).await.unwrap();
    assert_eq!(snap.prices.len(), 1);
    assert_eq!(snap.skus.len(), 2);
    assert_eq!(snap.sources.prices_url, base);
    assert_eq!(snap.sources.subscription.as_deref(), Some("sub-1"));
    assert_eq!(
        arm.calls.lock().unwrap().clone(),
        vec![
            "skus sub-1".to_string(),
            r#"evictions ["Standard_D4s_v5"] ["eastus"]"#.to_string(),
            r#"placement ["Standard_D4s_v5"] 3"#.to_string(),
        ]
    );
    let again = source
        .fetch(&request, now.plus(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(again.skus, snap.skus);
    assert_eq!(
        arm.calls.lock().unwrap().len(),
        3,
        "a minute later everything is cached"
    );
    source
        .fetch(&request, now.plus(Duration::from_secs(21 * 60)))
        .await
        .unwrap();
    let calls = arm.calls.lock().unwrap().clone();
    assert_eq!(
        calls.len(),
        5,
        "after 21 min bands and scores are fetched again, SKUs not: {calls:?}"
    );
}
