//! `spotkit advise`, the real binary: offline on a golden snapshot (golden output checked), and
//! live against the simulator's catalog facade (`spotkit_sim::catalog::http::catalog_router`)
//! on loopback, Retail Prices and ARM both pointed at it.
//!
//! `tests/golden/advise/snapshot.json` mixes the official examples with generated data: the
//! SKUs `Standard_A0` (not LowPriorityCapable) and `Standard_A1` in westus come from
//! `ListAvailableResourceSkus.json`; the zonal `Standard_D2_v2` scores in eastus/eastus2 (one
//! `DataNotFoundOrStale`) from `GenerateSpotPlacementScores.json`; prices of the D/E/F/B/NC sizes
//! are Table 1 of `shared/azure/prices-sample.md`; bands and the other scores are generated.
//! Regenerate the expected outputs with `SPOTKIT_UPDATE_GOLDEN=1`, then review the diff.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use spotkit_core::Timestamp;
use spotkit_core::advisor::{EvictionBand, PlacementScore};
use spotkit_sim::catalog::http::{CatalogProvider, catalog_router};
use spotkit_sim::catalog::{CatalogSnapshot, OfferingInfo, QuotaInfo, RegionInfo, SizeInfo};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/advise")
}

fn spotkit(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spotkit"));
    c.args(args)
        .env_remove("AZURE_SUBSCRIPTION_ID")
        .env_remove("SPOTKIT_ARM_TOKEN")
        .env("SPOTKIT_LOG", "warn");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("SPOTKIT_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with SPOTKIT_UPDATE_GOLDEN=1", path.display()));
    assert_eq!(
        actual, expected,
        "{name} changed; if intended, rerun with SPOTKIT_UPDATE_GOLDEN=1 and review the diff"
    );
}

fn offline(extra: &[&str]) -> Output {
    let snapshot = golden_dir().join("snapshot.json");
    let mut args = vec!["advise", "--snapshot", snapshot.to_str().unwrap()];
    args.extend_from_slice(extra);
    spotkit(&args, &[])
}

const ISSUE_FILTERS: &[&str] = &[
    "--min-vcpus",
    "4",
    "--min-memory-gib",
    "16",
    "--max-price",
    "0.25",
    "--count",
    "10",
];

#[test]
fn offline_table_explains_each_rank_and_the_allocation() {
    let out = offline(ISSUE_FILTERS);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    check_golden("table.txt", &stdout);
}

#[test]
fn offline_json_has_the_ranking_allocation_and_exclusions() {
    let mut args = ISSUE_FILTERS.to_vec();
    args.extend(["--output", "json", "--regions", "eastus,westus2"]);
    let out = offline(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["ranked"][0]["rank"], 1);
    let vms: u64 = v["allocation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["vms"].as_u64().unwrap())
        .sum();
    assert_eq!(vms, 10);
    assert!(
        v["excluded"]["region"].as_u64().unwrap() > 0,
        "eastus2 and westus left out"
    );
    check_golden("table.json", &stdout);
}

#[test]
fn when_nothing_matches_each_filter_says_how_many_it_excluded() {
    let out = offline(&["--min-vcpus", "4", "--max-price", "0.01"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("No offering matches"), "{stdout}");
    assert!(stdout.contains("spot price above --max-price"), "{stdout}");
    check_golden("nothing-matches.txt", &stdout);
}

#[test]
fn a_long_warmup_moves_flaky_offerings_down() {
    let rank_of = |warmup: &str, size: &str, region: &str| -> usize {
        let mut args = ISSUE_FILTERS.to_vec();
        args.extend(["--output", "json", "--warmup", warmup]);
        let out = offline(&args);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["ranked"]
            .as_array()
            .unwrap()
            .iter()
            .position(|r| r["size"] == size && r["region"] == region)
            .unwrap()
    };
    // F8s_v2 in eastus is cheap but in the 15-20 % band.
    assert!(
        rank_of("1h", "Standard_F8s_v2", "eastus") > rank_of("1m", "Standard_F8s_v2", "eastus")
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = spotkit(&["advise", "--min-vcpus", "4"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--regions"));
    let out = spotkit(&["advise", "--regions", "eastus"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--subscription"));
    let out = offline(&["--share-cap", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let out = offline(&["--os", "windows"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a Linux snapshot cannot answer for Windows"
    );
}

fn size(name: &str, family: &str, vcpus: u32, memory_gib: f64, spot: bool) -> SizeInfo {
    SizeInfo {
        name: name.into(),
        family: family.into(),
        vcpus,
        memory_gib,
        spot_capable: spot,
    }
}

fn offer(
    size: &str,
    region: &str,
    payg: f64,
    spot: Option<f64>,
    band: Option<EvictionBand>,
    placement: PlacementScore,
) -> OfferingInfo {
    OfferingInfo {
        size: size.into(),
        region: region.into(),
        payg_linux: payg,
        payg_windows: Some(payg * 1.9),
        spot_linux: spot,
        spot_windows: spot.map(|p| p * 1.9),
        spot_price_history: spot
            .map(|p| vec![(Timestamp::from_unix_secs(1_790_000_000), p)])
            .unwrap_or_default(),
        band,
        placement,
        spot_capacity_vms: 200,
    }
}

/// A generated catalogue: 4 regions, 10 sizes, most offered everywhere.
fn generated_catalog() -> CatalogSnapshot {
    let regions = ["eastus", "eastus2", "westus2", "northeurope"];
    let bands = [
        EvictionBand::ZeroToFive,
        EvictionBand::FiveToTen,
        EvictionBand::TenToFifteen,
        EvictionBand::FifteenToTwenty,
        EvictionBand::TwentyPlus,
    ];
    let scores = [
        PlacementScore::High,
        PlacementScore::Medium,
        PlacementScore::Low,
    ];
    let mut sizes = Vec::new();
    let mut offerings = Vec::new();
    for (i, vcpus) in [2u32, 4, 8, 16, 32].into_iter().enumerate() {
        for (fam, mem_per_vcpu, price_per_vcpu) in [("DSv5", 4.0, 0.048), ("ESv5", 8.0, 0.063)] {
            let name = format!("Standard_{}{}s_v5", &fam[..1], vcpus);
            sizes.push(size(
                &name,
                &format!("standard{fam}Family"),
                vcpus,
                f64::from(vcpus) * mem_per_vcpu,
                true,
            ));
            for (j, region) in regions.iter().enumerate() {
                if (i + j) % 7 == 6 {
                    continue;
                }
                let payg = price_per_vcpu * f64::from(vcpus) * (1.0 + 0.05 * j as f64);
                let spot = payg * (0.11 + 0.02 * ((i * 3 + j) % 4) as f64);
                offerings.push(offer(
                    &name,
                    region,
                    payg,
                    Some(spot),
                    Some(bands[(i + 2 * j) % 5]),
                    scores[(i + j) % 3],
                ));
            }
        }
    }
    sizes.push(size("Standard_B2s", "standardBSFamily", 2, 4.0, false));
    offerings.push(offer(
        "Standard_B2s",
        "eastus",
        0.0416,
        None,
        None,
        PlacementScore::Low,
    ));
    CatalogSnapshot {
        at: Timestamp::from_unix_secs(1_795_000_000),
        regions: regions
            .iter()
            .map(|r| RegionInfo {
                name: (*r).into(),
                display_name: r.to_uppercase(),
                zones: vec!["1".into(), "2".into(), "3".into()],
            })
            .collect(),
        sizes,
        offerings,
        quotas: vec![QuotaInfo {
            region: "eastus".into(),
            family: "LowPriorityCores".into(),
            limit_vcpus: 1000,
            used_vcpus: 0,
        }],
    }
}

fn start_catalog() -> (String, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let base = rt.block_on(async {
        let provider: CatalogProvider = Arc::new(generated_catalog);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, catalog_router(provider))
                .await
                .unwrap()
        });
        base
    });
    (base, rt)
}

#[test]
fn live_against_the_simulated_catalog_and_snapshot_round_trip() {
    let (base, _rt) = start_catalog();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let common = [
        "--prices-url",
        &base,
        "--arm-url",
        &base,
        "--subscription",
        "sub-1",
        "--regions",
        "eastus,eastus2,westus2",
        "--min-vcpus",
        "4",
        "--min-memory-gib",
        "16",
        "--count",
        "6",
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    let envs = [("SPOTKIT_ARM_TOKEN", "sim-token")];
    let mut args = vec!["advise"];
    args.extend_from_slice(&common);
    args.extend(["--output", "json"]);
    let out = spotkit(&args, &envs);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ranked = live["ranked"].as_array().unwrap();
    assert!(ranked.len() >= 15, "{} candidates", ranked.len());
    assert!(
        ranked
            .iter()
            .all(|r| r["vcpus"].as_u64().unwrap() >= 4 && r["region"] != "northeurope")
    );
    assert!(
        ranked.iter().all(|r| r["eviction_band"].is_string()),
        "bands came through Resource Graph"
    );
    assert!(
        ranked.iter().any(|r| r["placement_score"].is_string()),
        "placement scores came through"
    );
    assert_eq!(live["sources"]["prices_url"], base.as_str());
    assert!(
        std::fs::read_dir(&cache).unwrap().count() >= 4,
        "prices x3, SKUs, bands, scores cached"
    );

    // The same data through a snapshot gives the same ranking offline.
    let file = dir.path().join("snap.json");
    let mut args = vec!["advise", "snapshot", "--out", file.to_str().unwrap()];
    args.extend_from_slice(&common);
    let out = spotkit(&args, &envs);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = spotkit(
        &[
            "advise",
            "--snapshot",
            file.to_str().unwrap(),
            "--min-vcpus",
            "4",
            "--min-memory-gib",
            "16",
            "--count",
            "6",
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let offline: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(offline["ranked"], live["ranked"]);
    assert_eq!(offline["allocation"], live["allocation"]);
}
