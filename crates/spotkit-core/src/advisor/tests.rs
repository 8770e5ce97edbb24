use super::*;
use crate::backoff::SplitMix64;

fn offering(
    size: &str,
    region: &str,
    vcpus: u32,
    spot: f64,
    payg: f64,
    band: Option<EvictionBand>,
) -> Offering {
    Offering {
        size: size.into(),
        region: region.into(),
        os: Os::Linux,
        vcpus,
        memory_gib: f64::from(vcpus) * 4.0,
        spot_price: Some(spot),
        payg_price: Some(payg),
        band,
        placement: None,
        spot_capable: true,
    }
}

#[test]
fn bands_parse_tolerantly() {
    for (s, b) in [
        ("0-5", EvictionBand::ZeroToFive),
        ("0-5%", EvictionBand::ZeroToFive),
        (" 5 - 10 % ", EvictionBand::FiveToTen),
        ("10-15", EvictionBand::TenToFifteen),
        ("15-20%", EvictionBand::FifteenToTwenty),
        ("20+", EvictionBand::TwentyPlus),
        ("20+%", EvictionBand::TwentyPlus),
    ] {
        assert_eq!(EvictionBand::parse(s), Some(b), "{s:?}");
    }
    assert_eq!(EvictionBand::parse("high"), None);
    assert_eq!(
        PlacementScore::parse("DataNotFoundOrStale"),
        Some(PlacementScore::DataNotFoundOrStale)
    );
    assert_eq!(
        PlacementScore::parse("RestrictedSkuNotAvailable"),
        Some(PlacementScore::RestrictedSkuNotAvailable)
    );
    assert_eq!(
        PlacementScore::parse("Restricted SKU Not Available"),
        Some(PlacementScore::RestrictedSkuNotAvailable)
    );
    assert_eq!(PlacementScore::parse("excellent"), None);
    assert!(PlacementScore::DataNotFoundOrStale < PlacementScore::Low);
    assert!(!PlacementScore::DataNotFoundOrStale.is_scored());
    assert_eq!(PlacementScore::parse("HIGH"), Some(PlacementScore::High));
}

#[test]
fn a_cheaper_but_flaky_offering_can_lose_to_a_steadier_one() {
    // D4s_v5 eastus vs westus2 prices from shared/azure/prices-sample.md, bands invented.
    let flaky = offering(
        "Standard_D4s_v5",
        "eastus",
        4,
        0.02112,
        0.192,
        Some(EvictionBand::TwentyPlus),
    );
    let steady = offering(
        "Standard_D4s_v5",
        "westus2",
        4,
        0.02496,
        0.192,
        Some(EvictionBand::ZeroToFive),
    );
    // A one-hour warmup makes each eviction expensive: the steadier one wins despite its price.
    let req = Requirements {
        warmup: Duration::from_secs(3600),
        ..Requirements::default()
    };
    let advice = rank(&[flaky, steady], &req);
    assert_eq!(
        advice.ranked[0].offering.region, "westus2",
        "{:#?}",
        advice.ranked
    );
    // With a negligible warmup and replacement the cheaper one wins.
    let req = Requirements {
        warmup: Duration::ZERO,
        replacement: Duration::ZERO,
        checkpoint_interval: Duration::ZERO,
        ..Requirements::default()
    };
    let advice = rank(
        &[
            advice.ranked[0].offering.clone(),
            advice.ranked[1].offering.clone(),
        ],
        &req,
    );
    assert_eq!(advice.ranked[0].offering.region, "eastus");
}

#[test]
fn every_filter_counts_what_it_removed() {
    let mut windows = offering("Standard_D4s_v5", "eastus", 4, 0.05, 0.4, None);
    windows.os = Os::Windows;
    let mut no_spot = offering("Standard_B2s", "eastus", 2, 0.01, 0.04, None);
    no_spot.spot_price = None;
    let mut low = offering(
        "Standard_D8s_v5",
        "eastus",
        8,
        0.04,
        0.38,
        Some(EvictionBand::ZeroToFive),
    );
    low.placement = Some(PlacementScore::Low);
    let offerings = vec![
        offering("Standard_D4s_v5", "westeurope", 4, 0.04, 0.23, None),
        windows,
        offering("Standard_D2s_v5", "eastus", 2, 0.01, 0.096, None),
        offering("Standard_E2s_v5", "eastus", 4, 0.3, 0.2, None),
        no_spot,
        low,
        offering(
            "Standard_D16s_v5",
            "eastus",
            16,
            0.9,
            1.0,
            Some(EvictionBand::ZeroToFive),
        ),
    ];
    let req = Requirements {
        min_vcpus: 4,
        max_price: Some(0.5),
        regions: vec!["eastus".into()],
        min_placement: Some(PlacementScore::Medium),
        ..Requirements::default()
    };
    let advice = rank(&offerings, &req);
    assert!(advice.ranked.is_empty());
    let expect: BTreeMap<Exclusion, usize> = [
        (Exclusion::Region, 1),
        (Exclusion::Os, 1),
        (Exclusion::TooFewVcpus, 2),
        (Exclusion::AboveMaxPrice, 1),
        (Exclusion::PlacementTooLow, 2),
    ]
    .into_iter()
    .collect();
    assert_eq!(advice.excluded, expect);

    // Without the region, vCPU and placement filters, the rest show their own reasons.
    let advice = rank(&offerings[3..5], &Requirements::default());
    let expect: BTreeMap<Exclusion, usize> = [(Exclusion::NoSpot, 1), (Exclusion::NotWorthIt, 1)]
        .into_iter()
        .collect();
    assert_eq!(
        advice.excluded, expect,
        "spot dearer than pay-as-you-go is not worth it"
    );
}

#[test]
fn allocation_never_puts_the_whole_pool_in_one_offering() {
    let offerings: Vec<Offering> = (0..3)
        .map(|i| {
            offering(
                &format!("Standard_D{}s_v5", 4 + i),
                "eastus",
                4,
                0.02 + f64::from(i) * 0.001,
                0.2,
                Some(EvictionBand::ZeroToFive),
            )
        })
        .collect();
    let advice = rank(&offerings, &Requirements::default());
    let a = allocate(&advice, 10, 1.0);
    assert_eq!(
        a.placements,
        vec![(0, 9), (1, 1)],
        "at most count - 1 in one place"
    );
    let a = allocate(&advice, 10, 0.4);
    assert_eq!(a.placements, vec![(0, 4), (1, 4), (2, 2)]);
    assert!(a.warnings.iter().any(|w| w.contains("fewer than 15")));
    let a = allocate(&advice, 20, 0.2);
    assert!(
        a.warnings
            .iter()
            .any(|w| w.contains("8 of 20 VMs could not be placed")),
        "{:?}",
        a.warnings
    );
    let one = rank(&offerings[..1], &Requirements::default());
    assert_eq!(allocate(&one, 1, 0.5).placements, vec![(0, 1)]);
}

fn random_offerings(rng: &mut SplitMix64, n: usize, regions: &[&str]) -> Vec<Offering> {
    let bands = [
        None,
        Some(EvictionBand::ZeroToFive),
        Some(EvictionBand::FiveToTen),
        Some(EvictionBand::TenToFifteen),
        Some(EvictionBand::FifteenToTwenty),
        Some(EvictionBand::TwentyPlus),
    ];
    (0..n)
        .map(|i| {
            let vcpus = 1u32 << (rng.next_u64() % 6);
            #[allow(clippy::cast_precision_loss)]
            let payg = f64::from(vcpus) * (0.03 + (rng.next_u64() % 100) as f64 / 1000.0);
            #[allow(clippy::cast_precision_loss)]
            let spot = payg * (0.08 + (rng.next_u64() % 60) as f64 / 100.0);
            let region = regions[usize::try_from(rng.next_u64() % regions.len() as u64).unwrap()];
            let mut o = offering(
                &format!("size-{i}"),
                region,
                vcpus,
                spot,
                payg,
                bands[usize::try_from(rng.next_u64() % 6).unwrap()],
            );
            o.placement = [
                None,
                Some(PlacementScore::Low),
                Some(PlacementScore::Medium),
                Some(PlacementScore::High),
            ][usize::try_from(rng.next_u64() % 4).unwrap()];
            o
        })
        .collect()
}

#[test]
fn raising_the_max_price_never_removes_a_candidate() {
    let mut rng = SplitMix64::new(11);
    for case in 0..200 {
        let offerings = random_offerings(&mut rng, 40, &["eastus", "westus2", "westeurope"]);
        #[allow(clippy::cast_precision_loss)]
        let low = (rng.next_u64() % 500) as f64 / 1000.0;
        let high = low + (rng.next_u64() % 500) as f64 / 1000.0;
        let mut req = Requirements {
            min_vcpus: 1 + u32::try_from(rng.next_u64() % 8).unwrap(),
            max_price: Some(low),
            ..Requirements::default()
        };
        let before: Vec<String> = rank(&offerings, &req)
            .ranked
            .iter()
            .map(|r| r.offering.size.clone())
            .collect();
        req.max_price = Some(high);
        let after: Vec<String> = rank(&offerings, &req)
            .ranked
            .iter()
            .map(|r| r.offering.size.clone())
            .collect();
        for s in &before {
            assert!(
                after.contains(s),
                "case {case}: {s} dropped when max price rose {low} -> {high}"
            );
        }
    }
}

#[test]
fn adding_a_region_never_worsens_the_best_expected_cost() {
    let mut rng = SplitMix64::new(12);
    for case in 0..200 {
        let offerings = random_offerings(
            &mut rng,
            60,
            &["eastus", "westus2", "westeurope", "northeurope"],
        );
        let mut req = Requirements {
            regions: vec!["eastus".into(), "westus2".into()],
            ..Requirements::default()
        };
        let best = |req: &Requirements| {
            rank(&offerings, req)
                .ranked
                .first()
                .map(|r| r.cost_per_useful_vcpu_hour)
        };
        let before = best(&req);
        req.regions.push("westeurope".into());
        let after = best(&req);
        match (before, after) {
            (Some(b), Some(a)) => assert!(a <= b, "case {case}: best cost rose {b} -> {a}"),
            (Some(_), None) => panic!("case {case}: adding a region removed every candidate"),
            _ => {}
        }
    }
}

#[test]
fn ranking_is_deterministic_and_total() {
    let mut rng = SplitMix64::new(13);
    let offerings = random_offerings(&mut rng, 300, &["eastus", "westus2"]);
    let a = rank(&offerings, &Requirements::default());
    let mut reversed = offerings.clone();
    reversed.reverse();
    let b = rank(&reversed, &Requirements::default());
    assert_eq!(a, b, "input order must not change the answer");
}
