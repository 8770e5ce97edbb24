//! The capacity advisor's ranking: where spot VMs should run, for a workload's needs.
//!
//! Pure: offerings (size x region with prices, eviction band, placement score) and requirements
//! in, a ranked and explained list plus a diversified allocation out. The data clients (Retail
//! Prices, Resource SKUs, Resource Graph, Spot Placement Score) feed it; the orchestrator uses the
//! same ranking.
//!
//! # The cost model (docs/advisor.md has the derivation)
//! An eviction band gives an hourly eviction probability `p` (the band's midpoint; 25 % for
//! `20+`). Each eviction costs the workload `L = replacement + warmup + checkpoint_interval / 2`
//! of useful time: getting a new VM, warming it up, and redoing on average half a checkpoint
//! interval. The useful fraction of a paid hour is `u = 1 - p * L / 1h`, and the figure of merit
//! is the expected cost per useful vCPU-hour, `spot_price / (vcpus * u)`. An offering with no
//! band is treated as the worst band (unknown risk is not free). Assumptions: evictions are
//! independent across hours, a replacement starts right away, and a VM is paid while it warms up.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Azure's spot eviction-rate bands (percent chance of eviction within the next hour).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EvictionBand {
    /// 0-5 %.
    ZeroToFive,
    /// 5-10 %.
    FiveToTen,
    /// 10-15 %.
    TenToFifteen,
    /// 15-20 %.
    FifteenToTwenty,
    /// 20 % and more.
    TwentyPlus,
}

impl EvictionBand {
    /// The hourly eviction probability the model assumes: the band's midpoint, 25 % for `20+`.
    #[must_use]
    pub const fn hourly_rate(self) -> f64 {
        match self {
            EvictionBand::ZeroToFive => 0.025,
            EvictionBand::FiveToTen => 0.075,
            EvictionBand::TenToFifteen => 0.125,
            EvictionBand::FifteenToTwenty => 0.175,
            EvictionBand::TwentyPlus => 0.25,
        }
    }

    /// Parses the strings Resource Graph and the portal use: `0-5`, `5-10`, `10-15`, `15-20`,
    /// `20+`, with or without `%` and spaces.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let compact: String = s
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '%')
            .collect();
        match compact.as_str() {
            "0-5" => Some(EvictionBand::ZeroToFive),
            "5-10" => Some(EvictionBand::FiveToTen),
            "10-15" => Some(EvictionBand::TenToFifteen),
            "15-20" => Some(EvictionBand::FifteenToTwenty),
            "20+" | ">20" | "20-100" => Some(EvictionBand::TwentyPlus),
            _ => None,
        }
    }
}

impl fmt::Display for EvictionBand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EvictionBand::ZeroToFive => "0-5%",
            EvictionBand::FiveToTen => "5-10%",
            EvictionBand::TenToFifteen => "10-15%",
            EvictionBand::FifteenToTwenty => "15-20%",
            EvictionBand::TwentyPlus => "20+%",
        })
    }
}

/// Spot Placement Score: the likelihood a spot deployment of the asked count succeeds now.
///
/// Ordered from worst to best: a size that cannot be deployed at all, then no data, then
/// `Low` < `Medium` < `High`, so `score >= min` filters keep only real scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PlacementScore {
    /// `RestrictedSkuNotAvailable`: the size is restricted for the subscription there.
    RestrictedSkuNotAvailable,
    /// `DataNotFoundOrStale`: the service has no current estimate.
    DataNotFoundOrStale,
    /// Unlikely.
    Low,
    /// Possible.
    Medium,
    /// Likely.
    High,
}

impl PlacementScore {
    /// Parses the service's strings (any case, spaces ignored): `High`, `Medium`, `Low`,
    /// `DataNotFoundOrStale`, `RestrictedSkuNotAvailable`; anything else is `None`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let compact: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        match compact.as_str() {
            "high" => Some(PlacementScore::High),
            "medium" => Some(PlacementScore::Medium),
            "low" => Some(PlacementScore::Low),
            "datanotfoundorstale" | "datanotfound" => Some(PlacementScore::DataNotFoundOrStale),
            "restrictedskunotavailable" | "restrictedsku" => {
                Some(PlacementScore::RestrictedSkuNotAvailable)
            }
            _ => None,
        }
    }

    /// The service's spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            PlacementScore::RestrictedSkuNotAvailable => "RestrictedSkuNotAvailable",
            PlacementScore::DataNotFoundOrStale => "DataNotFoundOrStale",
            PlacementScore::Low => "Low",
            PlacementScore::Medium => "Medium",
            PlacementScore::High => "High",
        }
    }

    /// Whether this is an actual likelihood (`Low`, `Medium`, `High`).
    #[must_use]
    pub const fn is_scored(self) -> bool {
        matches!(
            self,
            PlacementScore::Low | PlacementScore::Medium | PlacementScore::High
        )
    }
}

/// Operating system of the meter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Os {
    /// Linux meters.
    Linux,
    /// Windows meters (license included).
    Windows,
}

/// One VM size in one region, with what is known about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Offering {
    /// ARM size name, e.g. `Standard_D4s_v5`.
    pub size: String,
    /// ARM region name, e.g. `eastus`.
    pub region: String,
    /// Meter OS.
    pub os: Os,
    /// vCPUs.
    pub vcpus: u32,
    /// Memory in GiB.
    pub memory_gib: f64,
    /// Spot price, USD per hour; `None` when there is no spot meter (e.g. B-series v1).
    pub spot_price: Option<f64>,
    /// Pay-as-you-go price, USD per hour.
    pub payg_price: Option<f64>,
    /// Eviction-rate band, if Resource Graph has one.
    pub band: Option<EvictionBand>,
    /// Placement score for the asked count, if fetched.
    pub placement: Option<PlacementScore>,
    /// Whether the size can run as spot here (SKU `LowPriorityCapable` and no restriction).
    pub spot_capable: bool,
}

/// What the workload needs and can tolerate.
#[derive(Clone, Debug, PartialEq)]
pub struct Requirements {
    /// Least vCPUs per VM.
    pub min_vcpus: u32,
    /// Least memory per VM, GiB.
    pub min_memory_gib: f64,
    /// Highest spot price accepted, USD per hour per VM (`None`: up to pay-as-you-go).
    pub max_price: Option<f64>,
    /// Regions to consider (empty: all offered).
    pub regions: Vec<String>,
    /// Meter OS.
    pub os: Os,
    /// Least placement score accepted (`None`: any, unknown included).
    pub min_placement: Option<PlacementScore>,
    /// Time to get a replacement VM running after an eviction.
    pub replacement: Duration,
    /// Time from a running VM to useful work (install, warm caches, load checkpoints).
    pub warmup: Duration,
    /// How often the workload checkpoints; half of it is redone after an eviction on average.
    pub checkpoint_interval: Duration,
}

impl Default for Requirements {
    fn default() -> Self {
        Self {
            min_vcpus: 1,
            min_memory_gib: 0.0,
            max_price: None,
            regions: Vec::new(),
            os: Os::Linux,
            min_placement: None,
            replacement: Duration::from_secs(180),
            warmup: Duration::from_secs(120),
            checkpoint_interval: Duration::from_secs(600),
        }
    }
}

/// Why an offering was left out; counted per reason so "nothing matches" can say which filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Exclusion {
    /// Not in the requested regions.
    Region,
    /// Other OS.
    Os,
    /// Fewer vCPUs than asked.
    TooFewVcpus,
    /// Less memory than asked.
    TooLittleMemory,
    /// No spot meter, not spot-capable, or restricted for the subscription.
    NoSpot,
    /// Spot price above the max price.
    AboveMaxPrice,
    /// Placement score below the minimum (or unknown when a minimum is set).
    PlacementTooLow,
    /// Evicted so often that no useful work is expected, or not cheaper than pay-as-you-go.
    NotWorthIt,
}

impl Exclusion {
    /// Words for the explanation.
    #[must_use]
    pub const fn describe(self) -> &'static str {
        match self {
            Exclusion::Region => "not in the requested regions",
            Exclusion::Os => "other operating system",
            Exclusion::TooFewVcpus => "too few vCPUs",
            Exclusion::TooLittleMemory => "too little memory",
            Exclusion::NoSpot => "no spot offer (no meter, not spot-capable, or restricted)",
            Exclusion::AboveMaxPrice => "spot price above --max-price",
            Exclusion::PlacementTooLow => "placement score below the minimum",
            Exclusion::NotWorthIt => "expected cost not below pay-as-you-go",
        }
    }
}

/// A ranked offering with the figures that explain its rank.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranked {
    /// The offering.
    pub offering: Offering,
    /// Expected fraction of paid time that is useful work.
    pub useful_fraction: f64,
    /// Expected cost per useful vCPU-hour, USD: the figure of merit.
    pub cost_per_useful_vcpu_hour: f64,
    /// The same for pay-as-you-go (no evictions), if its price is known.
    pub payg_per_vcpu_hour: Option<f64>,
}

/// The advisor's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Advice {
    /// Candidates, best first.
    pub ranked: Vec<Ranked>,
    /// How many offerings each filter removed.
    pub excluded: BTreeMap<Exclusion, usize>,
}

/// Ranks `offerings` for `req`: filters, then orders by expected cost per useful vCPU-hour, with
/// placement score, band, size and region as tiebreakers (so the order is total and stable).
#[must_use]
pub fn rank(offerings: &[Offering], req: &Requirements) -> Advice {
    let mut excluded: BTreeMap<Exclusion, usize> = BTreeMap::new();
    let mut ranked = Vec::new();
    let loss_hours =
        (req.replacement + req.warmup + req.checkpoint_interval / 2).as_secs_f64() / 3600.0;
    for o in offerings {
        let reason = if !req.regions.is_empty()
            && !req
                .regions
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&o.region))
        {
            Some(Exclusion::Region)
        } else if o.os != req.os {
            Some(Exclusion::Os)
        } else if o.vcpus < req.min_vcpus || o.vcpus == 0 {
            Some(Exclusion::TooFewVcpus)
        } else if o.memory_gib < req.min_memory_gib {
            Some(Exclusion::TooLittleMemory)
        } else if !o.spot_capable || o.spot_price.is_none_or(|p| !(p.is_finite() && p > 0.0)) {
            Some(Exclusion::NoSpot)
        } else if req
            .max_price
            .is_some_and(|m| o.spot_price.is_some_and(|p| p > m))
        {
            Some(Exclusion::AboveMaxPrice)
        } else if req
            .min_placement
            .is_some_and(|min| o.placement.is_none_or(|s| s < min))
        {
            Some(Exclusion::PlacementTooLow)
        } else {
            None
        };
        if let Some(r) = reason {
            *excluded.entry(r).or_default() += 1;
            continue;
        }
        let price = o.spot_price.unwrap_or(f64::INFINITY);
        let p = o.band.unwrap_or(EvictionBand::TwentyPlus).hourly_rate();
        let useful = 1.0 - p * loss_hours;
        let vcpus = f64::from(o.vcpus);
        let payg = o
            .payg_price
            .filter(|p| p.is_finite() && *p > 0.0)
            .map(|p| p / vcpus);
        let cost = if useful > 0.0 {
            price / (vcpus * useful)
        } else {
            f64::INFINITY
        };
        if !cost.is_finite() || payg.is_some_and(|payg| cost >= payg) {
            *excluded.entry(Exclusion::NotWorthIt).or_default() += 1;
            continue;
        }
        ranked.push(Ranked {
            offering: o.clone(),
            useful_fraction: useful,
            cost_per_useful_vcpu_hour: cost,
            payg_per_vcpu_hour: payg,
        });
    }
    ranked.sort_by(|a, b| {
        a.cost_per_useful_vcpu_hour
            .total_cmp(&b.cost_per_useful_vcpu_hour)
            .then_with(|| b.offering.placement.cmp(&a.offering.placement))
            .then_with(|| a.offering.band.cmp(&b.offering.band))
            .then_with(|| a.offering.size.cmp(&b.offering.size))
            .then_with(|| a.offering.region.cmp(&b.offering.region))
    });
    Advice { ranked, excluded }
}

/// Fewer candidate offerings than this and a pool has little room to move after an eviction
/// (Karpenter requires 15 instance types before a spot-to-spot consolidation).
pub const FLEXIBILITY_FLOOR: usize = 15;

/// How `count` VMs spread over the ranked offerings.
#[derive(Clone, Debug, PartialEq)]
pub struct Allocation {
    /// (index into `ranked`, VMs there), best first.
    pub placements: Vec<(usize, u32)>,
    /// What the user should know (too few candidates, count not met).
    pub warnings: Vec<String>,
}

/// Spreads `count` VMs over `advice.ranked`, at most `share_cap` of the pool (rounded up, and
/// below the whole pool whenever `count >= 2`) on any one (size, region).
#[must_use]
pub fn allocate(advice: &Advice, count: u32, share_cap: f64) -> Allocation {
    let mut warnings = Vec::new();
    let candidates = advice.ranked.len();
    if candidates < FLEXIBILITY_FLOOR {
        warnings.push(format!(
            "only {candidates} candidate offerings (fewer than {FLEXIBILITY_FLOOR}): replacements after an eviction have little choice; add sizes or regions"
        ));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // bounded by count
    let mut cap = ((f64::from(count) * share_cap.clamp(0.0, 1.0)).ceil() as u32).max(1);
    if count >= 2 {
        // Never the whole pool in one (size, region): one eviction wave would take all of it.
        cap = cap.min(count - 1);
    }
    let mut placements = Vec::new();
    let mut left = count;
    for (i, _) in advice.ranked.iter().enumerate() {
        if left == 0 {
            break;
        }
        let here = left.min(cap);
        placements.push((i, here));
        left -= here;
    }
    if left > 0 {
        warnings.push(format!(
            "{left} of {count} VMs could not be placed within a share cap of {cap} per offering; widen the filters or raise the cap"
        ));
    }
    Allocation {
        placements,
        warnings,
    }
}

#[cfg(test)]
mod tests;
