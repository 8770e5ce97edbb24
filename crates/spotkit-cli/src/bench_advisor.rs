//! `spotkit bench advisor`: the ranking of a large catalogue (default 1,000 sizes x 60 regions,
//! deterministic from a seed), next to two baselines measured in the same run on the same data:
//! cloning the offering list, and cloning it plus a plain sort by spot price. The join of a
//! snapshot into offerings (`assemble_offerings`) is measured too.
#![allow(clippy::disallowed_methods)] // a benchmark measures real time: that is its job

use std::time::{Duration, Instant};

use spotkit_azure::advisor_data::{
    AdvisorSnapshot, EvictionRecord, PlacementRecord, SNAPSHOT_VERSION, SkuRecord, SnapshotSources,
    assemble_offerings,
};
use spotkit_azure::prices::{PriceKind, PriceRow};
use spotkit_core::advisor::{Offering, Os, Requirements, allocate, rank};
use spotkit_core::backoff::SplitMix64;

#[derive(Debug, clap::Args)]
pub struct AdvisorBench {
    /// VM sizes in the catalogue.
    #[arg(long, default_value_t = 1000)]
    sizes: usize,
    /// Regions in the catalogue.
    #[arg(long, default_value_t = 60)]
    regions: usize,
    /// Timed repetitions of each measurement (the median is reported).
    #[arg(long, default_value_t = 30)]
    iterations: usize,
    /// Seed of the generated catalogue.
    #[arg(long, default_value_t = 5)]
    seed: u64,
}

fn unit(rng: &mut SplitMix64) -> f64 {
    #[allow(clippy::cast_precision_loss)] // 53 bits are plenty for a price
    let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    x
}

/// A snapshot with every size in every region, prices, bands and some placement scores.
fn generate(sizes: usize, regions: usize, seed: u64) -> AdvisorSnapshot {
    let mut rng = SplitMix64::new(seed);
    let region_names: Vec<String> = (0..regions).map(|r| format!("region{r:02}")).collect();
    let bands = ["0-5", "5-10", "10-15", "15-20", "20+"];
    let mut snap = AdvisorSnapshot {
        version: SNAPSHOT_VERSION,
        fetched_at_unix_ms: 0,
        fetched_at: "1970-01-01T00:00:00Z".into(),
        sources: SnapshotSources::default(),
        regions: region_names.clone(),
        os: Os::Linux,
        desired_count: 10,
        prices: Vec::with_capacity(sizes * regions * 2),
        skus: Vec::with_capacity(sizes),
        eviction_rates: Vec::with_capacity(sizes * regions),
        placement_scores: Vec::new(),
    };
    for s in 0..sizes {
        let vcpus = [2u32, 4, 8, 16, 32, 64][s % 6];
        let name = format!("Standard_G{s}s_v9");
        snap.skus.push(SkuRecord {
            name: name.clone(),
            family: format!("standardG{}Family", s % 40),
            vcpus,
            memory_gib: f64::from(vcpus) * [2.0, 4.0, 8.0][s % 3],
            low_priority_capable: s % 50 != 0,
            locations: region_names.clone(),
            restricted_locations: Vec::new(),
        });
        for region in &region_names {
            let payg = f64::from(vcpus) * (0.04 + 0.03 * unit(&mut rng));
            let row = |kind, p| PriceRow {
                sku: name.clone(),
                region: region.clone(),
                os: Os::Linux,
                kind,
                price_per_hour: p,
                currency: "USD".into(),
                effective_start: "2026-11-01T00:00:00Z".into(),
            };
            snap.prices.push(row(PriceKind::PayAsYouGo, payg));
            snap.prices
                .push(row(PriceKind::Spot, payg * (0.1 + 0.3 * unit(&mut rng))));
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0..6
            let b = (unit(&mut rng) * 6.0) as usize;
            if let Some(band) = bands.get(b) {
                snap.eviction_rates.push(EvictionRecord {
                    sku: name.to_ascii_lowercase(),
                    location: region.clone(),
                    band: (*band).to_string(),
                });
            }
            if s % 10 == 0 {
                snap.placement_scores.push(PlacementRecord {
                    sku: name.clone(),
                    region: region.clone(),
                    zone: None,
                    score: ["High", "Medium", "Low"][s % 3].to_string(),
                    quota_available: true,
                });
            }
        }
    }
    snap
}

/// CPU time of this thread (`/proc/thread-self/schedstat`, first field, ns): unlike wall time
/// it does not grow when other processes share the cores.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Median wall time and median CPU time of `f` over `iterations` runs.
fn median_of(
    iterations: usize,
    mut f: impl FnMut() -> usize,
) -> (Duration, Option<Duration>, usize) {
    let mut wall = Vec::with_capacity(iterations);
    let mut cpu = Vec::with_capacity(iterations);
    let mut keep = 0;
    for _ in 0..iterations.max(1) {
        let cpu_start = thread_cpu();
        let start = Instant::now();
        keep = std::hint::black_box(f());
        wall.push(start.elapsed());
        if let (Some(a), Some(b)) = (cpu_start, thread_cpu()) {
            cpu.push(b.saturating_sub(a));
        }
    }
    wall.sort();
    cpu.sort();
    let cpu_median = (cpu.len() == wall.len()).then(|| cpu[cpu.len() / 2]);
    (wall[wall.len() / 2], cpu_median, keep)
}

fn line(label: &str, (wall, cpu, _): (Duration, Option<Duration>, usize)) -> String {
    format!(
        "  {label:<40} wall {:>8.2} ms   cpu {:>8}",
        ms(wall),
        cpu.map_or_else(|| "n/a".to_string(), |c| format!("{:.2} ms", ms(c)))
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn bench_advisor(args: &AdvisorBench) -> anyhow::Result<u8> {
    let snapshot = generate(args.sizes, args.regions, args.seed);
    let offerings: Vec<Offering> = assemble_offerings(&snapshot);
    let req = Requirements {
        min_vcpus: 4,
        min_memory_gib: 16.0,
        max_price: Some(1.0),
        min_placement: None,
        ..Requirements::default()
    };
    let clone = median_of(args.iterations, || offerings.clone().len());
    let sort = median_of(args.iterations, || {
        let mut v = offerings.clone();
        v.sort_by(|a, b| {
            a.spot_price
                .unwrap_or(f64::INFINITY)
                .total_cmp(&b.spot_price.unwrap_or(f64::INFINITY))
        });
        v.len()
    });
    let ranking = median_of(args.iterations, || {
        let advice = rank(&offerings, &req);
        let allocation = allocate(&advice, 100, 0.2);
        advice.ranked.len() + allocation.placements.len()
    });
    let assemble = median_of(args.iterations.min(10), || {
        assemble_offerings(&snapshot).len()
    });
    let ratio = |a: (Duration, Option<Duration>, usize), b: (Duration, Option<Duration>, usize)| {
        let (x, y) = match (a.1, b.1) {
            (Some(x), Some(y)) => (x, y),
            _ => (a.0, b.0),
        };
        x.as_secs_f64() / y.as_secs_f64().max(1e-9)
    };
    println!(
        "advisor ranking: {} sizes x {} regions = {} offerings ({} ranked), medians of {} runs",
        args.sizes,
        args.regions,
        offerings.len(),
        rank(&offerings, &req).ranked.len(),
        args.iterations
    );
    println!("{}", line("baseline: clone the offerings", clone));
    println!("{}", line("baseline: clone + sort by spot price", sort));
    println!("{}", line("rank + allocate (100 VMs)", ranking));
    println!(
        "  rank + allocate / (clone + sort) = {:.2} (CPU time when available)",
        ratio(ranking, sort)
    );
    println!(
        "{}",
        line("assemble_offerings (join the snapshot)", assemble)
    );
    println!(
        "  snapshot: {} prices, {} bands, {} placement scores, {} SKUs",
        snapshot.prices.len(),
        snapshot.eviction_rates.len(),
        snapshot.placement_scores.len(),
        snapshot.skus.len()
    );
    Ok(0)
}
