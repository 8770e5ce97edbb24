//! Writes a sample report: a pool over 3 regions x 4 sizes through an eviction storm in eastus.
//!
//! `cargo run -p spotkit-report --example sample -- OUT_DIR` (default: the current directory).
//! The data is made up by a small deterministic model, so the page looks like a real run.

use std::path::PathBuf;
use std::time::Duration;

use spotkit_report::{
    Chart, EventKind, EventMarker, Notice, RunReport, Series, SummaryItem, Table, Verdict,
    write_report,
};

const REGIONS: [(&str, f64); 3] = [
    ("eastus", 1.0),
    ("westeurope", 1.1),
    ("southeastasia", 1.15),
];
const SIZES: [(&str, f64, f64); 4] = [
    // name, vCPUs, on-demand USD/hour in eastus
    ("D2s_v5", 2.0, 0.096),
    ("D4s_v5", 4.0, 0.192),
    ("D8s_v5", 8.0, 0.384),
    ("D16s_v5", 16.0, 0.768),
];
const STEP_S: f64 = 10.0;
const DURATION_S: f64 = 1800.0;

struct Pool {
    name: String,
    region: usize,
    size: usize,
    running: u32,
    evictions: u32,
    replacements: u32,
    vm_seconds: f64,
    spot_usd: f64,
}

/// A tiny deterministic generator so the sample is the same every time.
struct Lcg(u64);

impl Lcg {
    fn next_unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn main() {
    let out = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    let mut rng = Lcg(7);
    let mut pools: Vec<Pool> = (0..REGIONS.len())
        .flat_map(|region| (0..SIZES.len()).map(move |size| (region, size)))
        .map(|(region, size)| Pool {
            name: format!("{} / {} / spot", REGIONS[region].0, SIZES[size].0),
            region,
            size,
            running: 2,
            evictions: 0,
            replacements: 0,
            vm_seconds: 0.0,
            spot_usd: 0.0,
        })
        .collect();

    // The storm: every eastus VM goes between 10:00 and 14:00, a few more elsewhere later.
    let mut evictions: Vec<(f64, usize, Option<f64>)> = Vec::new();
    for (index, pool) in pools.iter().enumerate().filter(|(_, p)| p.region == 0) {
        for vm in 0..pool.running {
            let at = 600.0 + rng.next_unit() * 240.0;
            let notice = match (index + vm as usize) % 5 {
                0 => None,
                1 => Some(4.0 + rng.next_unit() * 5.0),
                _ => Some(30.0),
            };
            evictions.push((at, index, notice));
        }
    }
    evictions.push((1260.0, 6, Some(30.0)));
    evictions.push((1420.0, 11, Some(6.0)));
    evictions.sort_by(|a, b| a.0.total_cmp(&b.0));

    let mut events = Vec::new();
    // Replacements land 60-120 s after the eviction, same size, in a region that is not eastus.
    let mut replacements: Vec<(f64, usize)> = Vec::new();
    for (n, &(at, pool, notice)) in evictions.iter().enumerate() {
        let vm = format!("vm-{:04}", 100 + n);
        events.push(EventMarker::new(
            at,
            EventKind::Eviction {
                notice: Notice::classify(notice),
            },
            format!("{vm} {} evicted", pools[pool].name),
        ));
        let size = pools[pool].size;
        let region = if pools[pool].region == 0 {
            1 + n % 2
        } else {
            3 - pools[pool].region
        };
        replacements.push((
            at + 60.0 + rng.next_unit() * 60.0,
            region * SIZES.len() + size,
        ));
    }
    for &(at, pool) in &replacements {
        events.push(EventMarker::new(
            at,
            EventKind::Replacement,
            format!("replacement up in {}", pools[pool].name),
        ));
    }
    events.push(EventMarker::new(
        1500.0,
        EventKind::CapacityChange,
        "eastus spot capacity back; pool stays where it is (no rebalancing churn)",
    ));
    events.sort_by(|a, b| a.at.total_cmp(&b.at));

    let mut capacity: Vec<Vec<(f64, f64)>> = vec![Vec::new(); pools.len()];
    let (mut waiting, mut in_flight) = (Vec::new(), Vec::new());
    let (mut spot_rate, mut on_demand_rate) = (Vec::new(), Vec::new());
    let mut queue = 120.0_f64;
    let (mut lowest, mut below_target_s, mut queue_peak) = (u32::MAX, 0.0, 0.0_f64);
    let (mut next_eviction, mut next_replacement) = (0, 0);
    replacements.sort_by(|a, b| a.0.total_cmp(&b.0));

    let mut t = 0.0;
    while t <= DURATION_S {
        while next_eviction < evictions.len() && evictions[next_eviction].0 <= t {
            let pool = &mut pools[evictions[next_eviction].1];
            pool.running = pool.running.saturating_sub(1);
            pool.evictions += 1;
            next_eviction += 1;
        }
        while next_replacement < replacements.len() && replacements[next_replacement].0 <= t {
            let pool = &mut pools[replacements[next_replacement].1];
            pool.running += 1;
            pool.replacements += 1;
            next_replacement += 1;
        }
        let (mut vcpus, mut spot, mut on_demand, mut total) = (0.0, 0.0, 0.0, 0);
        for (index, pool) in pools.iter_mut().enumerate() {
            let (_, cores, price) = SIZES[pool.size];
            let od = price * REGIONS[pool.region].1 * f64::from(pool.running);
            let discount = 0.18 + 0.04 * ((t / 300.0 + index as f64).sin());
            vcpus += cores * f64::from(pool.running);
            spot += od * discount;
            on_demand += od;
            total += pool.running;
            pool.vm_seconds += f64::from(pool.running) * STEP_S;
            pool.spot_usd += od * discount * STEP_S / 3600.0;
            if capacity[index]
                .last()
                .is_none_or(|&(_, n)| n != f64::from(pool.running))
            {
                capacity[index].push((t, f64::from(pool.running)));
            }
        }
        let arrivals = 84.0
            + rng.next_unit() * 8.0
            + if (300.0..420.0).contains(&t) {
                20.0
            } else {
                0.0
            };
        let throughput = vcpus * 0.52;
        queue = (queue + arrivals - throughput).max(0.0);
        waiting.push((t, queue.round()));
        in_flight.push((t, throughput.min(queue + arrivals).round()));
        spot_rate.push((t, spot));
        on_demand_rate.push((t, on_demand));
        lowest = lowest.min(total);
        if total < 24 {
            below_target_s += STEP_S;
        }
        queue_peak = queue_peak.max(queue);
        t += STEP_S;
    }

    let spot_cost = Series::cumulative_from_hourly_rate("spot", &spot_rate, DURATION_S);
    let od_cost = Series::cumulative_from_hourly_rate("od", &on_demand_rate, DURATION_S);
    let spot_total = spot_cost.points.last().map_or(0.0, |p| p.1);
    let od_total = od_cost.points.last().map_or(0.0, |p| p.1);
    let duration = Duration::from_secs_f64(DURATION_S);

    let mut report = RunReport::new(
        "spotkit demo: eviction storm",
        "A 24-VM pool over 3 regions × 4 sizes runs a steady queue; at 10:00 every eastus VM is \
         evicted within four minutes, some with the 30 s notice, some with less, some with none. \
         spotkit drains what it can and replaces in westeurope and southeastasia.",
        "2026-12-02T04:00:00Z",
        duration,
    );
    let counted = |notice| {
        events
            .iter()
            .filter(|e| e.kind == EventKind::Eviction { notice })
            .count()
    };
    report.summary = vec![
        SummaryItem::new(
            "evictions",
            format!(
                "{} ({} short, {} no notice)",
                evictions.len(),
                counted(Notice::Short),
                counted(Notice::None)
            ),
        ),
        SummaryItem::judged(
            "lowest capacity",
            format!("{lowest} / 24 VMs"),
            Verdict::Bad,
        ),
        SummaryItem::judged(
            "time below target",
            format!(
                "{:.0} min {:.0} s",
                (below_target_s / 60.0).floor(),
                below_target_s % 60.0
            ),
            if below_target_s <= 300.0 {
                Verdict::Ok
            } else {
                Verdict::Bad
            },
        ),
        SummaryItem::new("peak queue depth", format!("{queue_peak:.0} messages")),
        SummaryItem::judged("messages lost", "0", Verdict::Ok),
        SummaryItem::judged(
            "cost vs all on-demand",
            format!(
                "${spot_total:.2} vs ${od_total:.2} (−{:.0}%)",
                100.0 * (1.0 - spot_total / od_total)
            ),
            Verdict::Ok,
        ),
    ];
    report.charts = vec![
        Chart::capacity_by_pool(
            pools
                .iter()
                .zip(capacity)
                .map(|(pool, points)| Series::new(&pool.name, points))
                .collect(),
        ),
        Chart::evictions_per_minute(&events, duration),
        Chart::queue_depth(vec![
            Series::new("waiting", waiting),
            Series::new("in flight", in_flight),
        ]),
        Chart::cumulative_cost(spot_cost.points, od_cost.points),
    ];
    report.tables = vec![Table {
        title: "Pools".into(),
        columns: [
            "pool",
            "evictions",
            "replacements in",
            "VM-hours",
            "spot cost",
        ]
        .map(String::from)
        .to_vec(),
        rows: pools
            .iter()
            .map(|pool| {
                vec![
                    pool.name.clone(),
                    pool.evictions.to_string(),
                    pool.replacements.to_string(),
                    format!("{:.2}", pool.vm_seconds / 3600.0),
                    format!("${:.3}", pool.spot_usd),
                ]
            })
            .collect(),
    }];
    report.events = events;

    match write_report(&out, &report) {
        Ok(path) => println!("{}", path.display()),
        Err(err) => {
            eprintln!("sample: error: {err}");
            std::process::exit(1);
        }
    }
}
