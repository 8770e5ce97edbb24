//! `spotkit advise`: where should spot VMs for this workload run? Fetches prices, sizes, eviction
//! bands and placement scores (or reads a snapshot), ranks with `spotkit_core::advisor`, and
//! explains the ranking, the allocation of `--count` VMs, and what each filter excluded.
//! `spotkit advise snapshot --out FILE` records the fetched data for offline runs (`--snapshot`).
//!
//! Exit codes: 0 with at least one candidate; 1 when nothing matches (the explanation is printed)
//! or a fetch fails; 2 for bad flags.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use serde_json::json;
use spotkit_azure::advisor_data::{
    AdvisorSnapshot, AdvisorSource, ArmAdvisorApi, ArmData, FetchRequest, FileCache, LiveSource,
    assemble_offerings, read_snapshot, write_snapshot,
};
use spotkit_azure::arm::{
    ArmClient, ArmClientOptions, CredentialChoice, EntraCredential, StaticToken, TokenProvider,
};
use spotkit_azure::prices::{DEFAULT_PRICES_URL, RetailPricesClient, RetryPolicy, os_serde};
use spotkit_cloud::{Clock, SystemClock};
use spotkit_core::advisor::{
    Advice, Allocation, Exclusion, Os, PlacementScore, Requirements, allocate, rank,
};

use crate::Failure;

/// The public ARM endpoint.
pub const DEFAULT_ARM_URL: &str = "https://management.azure.com";

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = false)]
pub struct AdviseArgs {
    #[command(flatten)]
    pub common: AdviseFlags,
    #[command(subcommand)]
    pub action: Option<AdviseAction>,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdviseAction {
    /// Fetch everything the ranking needs and write it to FILE (for `--snapshot FILE`).
    Snapshot {
        /// Where to write the snapshot (JSON).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct AdviseFlags {
    /// Least vCPUs per VM.
    #[arg(long, global = true, default_value_t = 1)]
    pub min_vcpus: u32,
    /// Least memory per VM, GiB.
    #[arg(long, global = true, default_value_t = 0.0)]
    pub min_memory_gib: f64,
    /// Highest spot price accepted per VM, USD/hour (default: up to pay-as-you-go).
    #[arg(long, global = true)]
    pub max_price: Option<f64>,
    /// Regions to consider, comma-separated ARM names (e.g. eastus,westus2). With --snapshot:
    /// defaults to the snapshot's regions.
    #[arg(long, global = true, value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Meter OS.
    #[arg(long, global = true, default_value = "linux", value_parser = ["linux", "windows"])]
    pub os: String,
    /// Pool size to allocate (also the placement-score count).
    #[arg(long, global = true, default_value_t = 1)]
    pub count: u32,
    /// Least placement score accepted (unknown scores then fail).
    #[arg(long, global = true, value_parser = ["high", "medium", "low"])]
    pub min_placement: Option<String>,
    /// Output format.
    #[arg(long, global = true, default_value = "table", value_parser = ["table", "json"])]
    pub output: String,
    /// Subscription for Resource SKUs, Resource Graph and Spot Placement Score.
    #[arg(long, global = true, env = "AZURE_SUBSCRIPTION_ID")]
    pub subscription: Option<String>,
    /// ARM endpoint (a simulator on loopback in tests).
    #[arg(long, global = true, env = "SPOTKIT_ARM_URL", default_value = DEFAULT_ARM_URL)]
    pub arm_url: String,
    /// Retail Prices endpoint.
    #[arg(long, global = true, env = "SPOTKIT_PRICES_URL", default_value = DEFAULT_PRICES_URL)]
    pub prices_url: String,
    /// How to get an ARM token.
    #[arg(long, global = true, default_value = "auto",
          value_parser = ["auto", "cli", "managed-identity", "workload-identity", "client-secret"])]
    pub credential: String,
    /// Read all data from this snapshot instead of fetching (offline).
    #[arg(long, global = true)]
    pub snapshot: Option<PathBuf>,
    /// Time from a running VM to useful work.
    #[arg(long, global = true, default_value = "2m", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Time to get a replacement VM running after an eviction.
    #[arg(long, global = true, default_value = "3m", value_parser = humantime::parse_duration)]
    pub replacement: Duration,
    /// How often the workload checkpoints (half of it is redone after an eviction).
    #[arg(long, global = true, default_value = "10m", value_parser = humantime::parse_duration)]
    pub checkpoint_interval: Duration,
    /// Largest share of the pool on one (size, region), 0-1.
    #[arg(long, global = true, default_value_t = 0.5)]
    pub share_cap: f64,
    /// Cache directory [default: $XDG_CACHE_HOME/spotkit].
    #[arg(long, global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Fetch everything afresh (and do not write the cache).
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Placement scores for at most this many sizes (the cheapest per vCPU).
    #[arg(long, global = true, default_value_t = 20)]
    pub placement_sizes: usize,
}

pub fn main(args: AdviseArgs) -> Result<u8, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::runtime)?;
    runtime.block_on(run(args))
}

fn requirements(f: &AdviseFlags, regions: Vec<String>) -> Result<Requirements, Failure> {
    if f.max_price.is_some_and(|p| !(p.is_finite() && p > 0.0)) {
        return Err(Failure::usage(anyhow!(
            "--max-price must be a positive USD/hour price"
        )));
    }
    if !(0.0..=1.0).contains(&f.share_cap) || f.share_cap == 0.0 {
        return Err(Failure::usage(anyhow!(
            "--share-cap must be in (0, 1], e.g. 0.5"
        )));
    }
    if f.count == 0 {
        return Err(Failure::usage(anyhow!("--count must be at least 1")));
    }
    Ok(Requirements {
        min_vcpus: f.min_vcpus,
        min_memory_gib: f.min_memory_gib,
        max_price: f.max_price,
        regions,
        os: os_serde::parse(&f.os).unwrap_or(Os::Linux),
        min_placement: f.min_placement.as_deref().and_then(PlacementScore::parse),
        replacement: f.replacement,
        warmup: f.warmup,
        checkpoint_interval: f.checkpoint_interval,
    })
}

async fn run(args: AdviseArgs) -> Result<u8, Failure> {
    let f = &args.common;
    let clock = SystemClock;
    let os = os_serde::parse(&f.os).unwrap_or(Os::Linux);
    let snapshot = match (&f.snapshot, &args.action) {
        (Some(path), None) => {
            let s = read_snapshot(path).map_err(Failure::usage)?;
            if s.os != os {
                return Err(Failure::usage(anyhow!(
                    "snapshot {} holds {} prices; run with --os {} or fetch a {} snapshot",
                    path.display(),
                    os_serde::name(s.os),
                    os_serde::name(s.os),
                    f.os
                )));
            }
            s
        }
        (Some(_), Some(_)) => {
            return Err(Failure::usage(anyhow!(
                "`advise snapshot` fetches data; it cannot read --snapshot"
            )));
        }
        (None, _) => fetch(f, os, clock.now()).await?,
    };
    if let Some(AdviseAction::Snapshot { out }) = &args.action {
        write_snapshot(out, &snapshot).map_err(Failure::runtime)?;
        eprintln!(
            "spotkit: wrote {} prices, {} sizes, {} bands, {} placement scores to {}",
            snapshot.prices.len(),
            snapshot.skus.len(),
            snapshot.eviction_rates.len(),
            snapshot.placement_scores.len(),
            out.display()
        );
        return Ok(0);
    }
    let regions = if f.regions.is_empty() {
        snapshot.regions.clone()
    } else {
        f.regions.clone()
    };
    let req = requirements(f, regions)?;
    let offerings = assemble_offerings(&snapshot);
    let advice = rank(&offerings, &req);
    let mut allocation = allocate(&advice, f.count, f.share_cap);
    if !snapshot.placement_scores.is_empty() && snapshot.desired_count != f.count {
        allocation.warnings.push(format!(
            "placement scores were fetched for {} VMs, not --count {}; fetch again for scores that fit",
            snapshot.desired_count, f.count
        ));
    }
    let text = match f.output.as_str() {
        "json" => {
            serde_json::to_string_pretty(&to_json(&snapshot, &req, f, &advice, &allocation))
                .map_err(Failure::runtime)?
                + "\n"
        }
        _ => render_table(&snapshot, &req, f, offerings.len(), &advice, &allocation),
    };
    print!("{text}");
    if advice.ranked.is_empty() {
        eprintln!("spotkit: error: no offering matches the filters (see the counts above)");
        return Ok(1);
    }
    Ok(0)
}

async fn fetch(
    f: &AdviseFlags,
    os: Os,
    now: spotkit_core::Timestamp,
) -> Result<AdvisorSnapshot, Failure> {
    if f.regions.is_empty() {
        return Err(Failure::usage(anyhow!(
            "--regions is required (e.g. --regions eastus,westus2), or give --snapshot FILE"
        )));
    }
    let Some(subscription) = f.subscription.clone() else {
        return Err(Failure::usage(anyhow!(
            "--subscription (or AZURE_SUBSCRIPTION_ID) is required: VM sizes, eviction bands and placement scores come from ARM; or give --snapshot FILE"
        )));
    };
    let prices =
        RetailPricesClient::new(&f.prices_url, RetryPolicy::default()).map_err(Failure::usage)?;
    let cache = if f.no_cache {
        None
    } else {
        f.cache_dir
            .clone()
            .or_else(FileCache::default_dir)
            .map(FileCache::new)
    };
    let arm = connect_arm(&f.arm_url, &f.credential).map_err(Failure::usage)?;
    let source = LiveSource {
        prices,
        arm: Some((arm, subscription)),
        cache,
    };
    let request = FetchRequest {
        regions: f.regions.clone(),
        os,
        currency: None,
        desired_count: f.count,
        min_vcpus: f.min_vcpus,
        min_memory_gib: f.min_memory_gib,
        placement_sizes_max: f.placement_sizes,
    };
    source
        .fetch(&request, now)
        .await
        .context("fetching advisor data")
        .map_err(Failure::runtime)
}

fn exclusion_key(e: Exclusion) -> &'static str {
    match e {
        Exclusion::Region => "region",
        Exclusion::Os => "os",
        Exclusion::TooFewVcpus => "too_few_vcpus",
        Exclusion::TooLittleMemory => "too_little_memory",
        Exclusion::NoSpot => "no_spot",
        Exclusion::AboveMaxPrice => "above_max_price",
        Exclusion::PlacementTooLow => "placement_too_low",
        Exclusion::NotWorthIt => "not_worth_it",
    }
}

fn score_name(s: Option<PlacementScore>) -> &'static str {
    s.map_or("-", PlacementScore::as_str)
}

fn vms_at(allocation: &Allocation, index: usize) -> u32 {
    allocation
        .placements
        .iter()
        .find(|(i, _)| *i == index)
        .map_or(0, |(_, n)| *n)
}

fn savings(r: &spotkit_core::advisor::Ranked) -> Option<f64> {
    r.payg_per_vcpu_hour
        .map(|p| 1.0 - r.cost_per_useful_vcpu_hour / p)
}

fn to_json(
    snapshot: &AdvisorSnapshot,
    req: &Requirements,
    f: &AdviseFlags,
    advice: &Advice,
    allocation: &Allocation,
) -> serde_json::Value {
    let ranked: Vec<serde_json::Value> = advice
        .ranked
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let o = &r.offering;
            json!({
                "rank": i + 1,
                "size": o.size,
                "region": o.region,
                "os": os_serde::name(o.os),
                "vcpus": o.vcpus,
                "memory_gib": o.memory_gib,
                "spot_usd_per_hour": o.spot_price,
                "payg_usd_per_hour": o.payg_price,
                "eviction_band": o.band.map(|b| b.to_string()),
                "placement_score": o.placement.map(|s| score_name(Some(s))),
                "useful_fraction": r.useful_fraction,
                "cost_per_useful_vcpu_hour_usd": r.cost_per_useful_vcpu_hour,
                "payg_per_vcpu_hour_usd": r.payg_per_vcpu_hour,
                "savings_vs_payg": savings(r),
                "vms": vms_at(allocation, i),
            })
        })
        .collect();
    let excluded: serde_json::Map<String, serde_json::Value> = advice
        .excluded
        .iter()
        .map(|(e, n)| (exclusion_key(*e).to_string(), json!(n)))
        .collect();
    json!({
        "fetched_at": snapshot.fetched_at,
        "sources": snapshot.sources,
        "requirements": {
            "min_vcpus": req.min_vcpus,
            "min_memory_gib": req.min_memory_gib,
            "max_price_usd_per_hour": req.max_price,
            "regions": req.regions,
            "os": os_serde::name(req.os),
            "count": f.count,
            "share_cap": f.share_cap,
            "warmup_s": req.warmup.as_secs(),
            "replacement_s": req.replacement.as_secs(),
            "checkpoint_interval_s": req.checkpoint_interval.as_secs(),
        },
        "ranked": ranked,
        "allocation": allocation.placements.iter().map(|(i, n)| {
            let o = &advice.ranked[*i].offering;
            json!({"size": o.size, "region": o.region, "vms": n})
        }).collect::<Vec<_>>(),
        "warnings": allocation.warnings,
        "excluded": excluded,
    })
}

fn money(p: Option<f64>) -> String {
    p.map_or_else(|| "-".to_string(), |p| format!("{p:.5}"))
}

fn render_table(
    snapshot: &AdvisorSnapshot,
    req: &Requirements,
    f: &AdviseFlags,
    candidates: usize,
    advice: &Advice,
    allocation: &Allocation,
) -> String {
    let mut out = String::new();
    let loss = req.replacement + req.warmup + req.checkpoint_interval / 2;
    let _ = writeln!(
        out,
        "Data fetched {} from {}{}.",
        snapshot.fetched_at,
        snapshot.sources.prices_url,
        snapshot
            .sources
            .arm_url
            .as_deref()
            .map(|a| format!(" and {a}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "Each eviction costs {} of useful time (replacement {} + warmup {} + half the checkpoint interval {}).",
        humantime::format_duration(loss),
        humantime::format_duration(req.replacement),
        humantime::format_duration(req.warmup),
        humantime::format_duration(req.checkpoint_interval),
    );
    let _ = writeln!(out);
    if advice.ranked.is_empty() {
        let _ = writeln!(
            out,
            "No offering matches: {candidates} candidate (size, region) pairs, excluded by"
        );
        write_exclusions(&mut out, advice);
        let _ = writeln!(
            out,
            "Loosen the filter that removed the most (e.g. --max-price, --min-vcpus, --regions)."
        );
        return out;
    }
    let header = [
        "rank",
        "size",
        "region",
        "vCPU",
        "GiB",
        "spot $/h",
        "payg $/h",
        "band",
        "score",
        "useful",
        "$/useful vCPU-h",
        "vs payg",
        "VMs",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| (*s).to_string()).collect()];
    for (i, r) in advice.ranked.iter().enumerate() {
        let o = &r.offering;
        rows.push(vec![
            (i + 1).to_string(),
            o.size.clone(),
            o.region.clone(),
            o.vcpus.to_string(),
            format!("{:.1}", o.memory_gib),
            money(o.spot_price),
            money(o.payg_price),
            o.band
                .map_or_else(|| "unknown".to_string(), |b| b.to_string()),
            score_name(o.placement).to_string(),
            format!("{:.1}%", r.useful_fraction * 100.0),
            format!("{:.6}", r.cost_per_useful_vcpu_hour),
            savings(r).map_or_else(|| "-".to_string(), |s| format!("-{:.0}%", s * 100.0)),
            match vms_at(allocation, i) {
                0 => String::new(),
                n => n.to_string(),
            },
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                // Names left, figures right.
                if (1..=2).contains(&c) || (7..=8).contains(&c) {
                    format!("{cell:<w$}", w = widths[c])
                } else {
                    format!("{cell:>w$}", w = widths[c])
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Ranked by expected cost per useful vCPU-hour = spot $/h / (vCPUs x useful), where useful = 1 - hourly eviction rate (band midpoint; unknown = 20+%) x eviction cost; then placement score, band, name."
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Allocation of {} VMs (at most {:.0}% on one size and region):",
        f.count,
        f.share_cap * 100.0
    );
    for (i, n) in &allocation.placements {
        let o = &advice.ranked[*i].offering;
        let _ = writeln!(out, "  {n} x {} in {}", o.size, o.region);
    }
    for w in &allocation.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    if !advice.excluded.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Excluded, of {candidates} candidates:");
        write_exclusions(&mut out, advice);
    }
    out
}

fn write_exclusions(out: &mut String, advice: &Advice) {
    for (e, n) in &advice.excluded {
        let _ = writeln!(out, "  {n:>6}  {}", e.describe());
    }
}

/// The ARM side: a static bearer token from `SPOTKIT_ARM_TOKEN` (the simulator, or
/// `az account get-access-token` output), else the chosen Entra ID credential.
fn connect_arm(url: &str, credential: &str) -> anyhow::Result<Arc<dyn ArmAdvisorApi>> {
    let tokens: Arc<dyn TokenProvider> = match std::env::var("SPOTKIT_ARM_TOKEN") {
        Ok(t) if !t.trim().is_empty() => Arc::new(StaticToken::new(t.trim())),
        _ => {
            let choice = CredentialChoice::parse(credential)?;
            Arc::new(EntraCredential::from_environment(choice)?)
        }
    };
    let client = ArmClient::new(url, tokens, ArmClientOptions::default())
        .with_context(|| format!("--arm-url {url}"))?;
    Ok(Arc::new(ArmData::new(Arc::new(client))))
}
