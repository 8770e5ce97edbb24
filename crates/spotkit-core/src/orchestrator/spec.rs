//! The pool spec as the orchestrator core sees it: already parsed and validated (the TOML file
//! format lives in `spotkit-orchestrator`), candidates already ranked by the advisor.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::advisor::EvictionBand;
use crate::backoff::Backoff;
use crate::compute::{EvictionPolicy, MaxPrice, OfferingId};

/// How big the pool should be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// This many VMs, whatever their size.
    Vms(u32),
    /// At least this many vCPUs in total. Rounded up to whole VMs, so the pool may hold up to one
    /// VM's worth of vCPUs more.
    Vcpus(u32),
}

impl Target {
    /// The number of capacity units asked for (VMs or vCPUs).
    #[must_use]
    pub const fn units(self) -> u32 {
        match self {
            Self::Vms(n) | Self::Vcpus(n) => n,
        }
    }
}

/// One place the pool may run, as the advisor ranked it.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// Size and region.
    pub offering: OfferingId,
    /// vCPUs of the size (the unit of `Target::Vcpus`).
    pub vcpus: u32,
    /// Whether the offering can run spot VMs (otherwise it only takes regular ones).
    pub spot_capable: bool,
    /// Spot price, USD per hour, if known (checked against a `MaxPrice::UsdPerHour` cap).
    pub spot_price: Option<f64>,
    /// Pay-as-you-go price, USD per hour, if known (orders regular placements).
    pub payg_price: Option<f64>,
    /// Eviction-rate band, if known (shown in status only).
    pub band: Option<EvictionBand>,
    /// Position in the advisor's ranking, 0 best. Spot placements follow it.
    pub rank: u32,
}

/// Regular-VM baseline, with Spot Priority Mix's arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Baseline {
    /// Units (VMs, or vCPUs for a vCPU target) that are always regular, filled first.
    pub base_regular_count: u32,
    /// Percentage (0-100) of the units above the base that are regular; the rest, and any
    /// rounding remainder, are spot.
    pub regular_percentage_above_base: u32,
}

impl Baseline {
    /// Splits `total` units into (regular, spot) as VMSS Spot Priority Mix does: the base first,
    /// then the percentage of the rest rounded down, so odd remainders go to spot
    /// (30 VMs, base 10, 50 % -> 20 regular, 10 spot).
    #[must_use]
    pub fn split(self, total: u32) -> (u32, u32) {
        let base = self.base_regular_count.min(total);
        let above = total - base;
        let pct = u64::from(self.regular_percentage_above_base.min(100));
        let regular_above = u32::try_from(u64::from(above) * pct / 100).unwrap_or(above);
        let regular = base + regular_above;
        (regular, total - regular)
    }
}

/// Where an eviction makes the pool look elsewhere for a while.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BlockScope {
    /// Avoid the size in the region that evicted (Karpenter's unavailable offering).
    #[default]
    Offering,
    /// Avoid every size in the region that evicted (SkyPilot's `EAGER_NEXT_REGION`).
    Region,
}

/// Rate and concurrency limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Units the pool may hold above the target while it replaces VMs it chose to replace
    /// (giving back on-demand fallback VMs, scale changes). Evicting VMs do not count.
    pub max_surge: u32,
    /// Cloud operations (create, start, delete) in flight at once.
    pub max_concurrent_operations: u32,
    /// VMs the pool deletes by choice (surplus, fallback give-back, unhealthy) at once.
    pub disruption_budget: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_surge: 1,
            max_concurrent_operations: 20,
            disruption_budget: 1,
        }
    }
}

/// What every VM of the pool is created from.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Template {
    /// Resource group the pool's VMs live in.
    pub resource_group: String,
    /// Image reference (`publisher:offer:sku:version` or an ARM id).
    pub image: String,
    /// Custom data / user data, base64, if any.
    pub user_data: Option<String>,
    /// ARM ids of user-assigned managed identities.
    pub user_assigned_identities: Vec<String>,
    /// Extra tags (the pool's own `spotkit-*` tags win over these).
    pub tags: BTreeMap<String, String>,
}

/// A pool, declaratively: what to run, where, and within which limits.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolSpec {
    /// Pool name: prefix of VM names and value of the `spotkit-pool` tag.
    pub name: String,
    /// How big.
    pub target: Target,
    /// Where, best first.
    pub candidates: Vec<Candidate>,
    /// What an eviction does to the pool's spot VMs.
    pub eviction_policy: EvictionPolicy,
    /// Spot price cap of the pool's spot VMs.
    pub max_price: MaxPrice,
    /// Regular baseline.
    pub baseline: Baseline,
    /// When no spot candidate can take a VM: create regular VMs instead, and give them back
    /// (within the disruption budget) once spot capacity returns.
    pub on_demand_fallback: bool,
    /// Deallocate pools: how long an evicted VM is restarted before it is deleted and
    /// redeployed elsewhere (Try & Restore's `restoreTimeout`).
    pub restart_timeout: Duration,
    /// Deallocate pools: spacing of restart attempts.
    pub restart_backoff: Backoff,
    /// Spacing of retries after transient failures and of observation retries.
    pub retry_backoff: Backoff,
    /// Limits.
    pub limits: Limits,
    /// VM template.
    pub template: Template,
    /// How long an offering that refused capacity (or quota) is skipped.
    pub unavailable_ttl: Duration,
    /// How long an offering (or region) that just evicted is avoided when others are available.
    pub eviction_block_ttl: Duration,
    /// What an eviction blocks.
    pub eviction_block_scope: BlockScope,
    /// Largest share of the pool's spot units in one offering, when more than one is available.
    pub max_share: f64,
    /// How long after a notice's `NotBefore` (or its arrival) a VM that is still running counts
    /// as live again (the event did not evict it).
    pub notice_grace: Duration,
    /// How long an agent may report unhealthy before its VM is replaced.
    pub unhealthy_grace: Duration,
    /// How often the pool's VMs are listed even when nothing happens.
    pub resync_interval: Duration,
    /// How long a VM this machine created is believed to exist though a listing omits it
    /// (listings can lag a completed create).
    pub list_lag_grace: Duration,
}

impl PoolSpec {
    /// A spec with the documented defaults (docs/pools.md) for everything but the essentials.
    #[must_use]
    pub fn new(name: impl Into<String>, target: Target, candidates: Vec<Candidate>) -> Self {
        Self {
            name: name.into(),
            target,
            candidates,
            eviction_policy: EvictionPolicy::Delete,
            max_price: MaxPrice::CappedAtPayAsYouGo,
            baseline: Baseline::default(),
            on_demand_fallback: false,
            restart_timeout: Duration::from_secs(3600),
            restart_backoff: Backoff {
                base: Duration::from_secs(30),
                max: Duration::from_secs(300),
            },
            retry_backoff: Backoff {
                base: Duration::from_secs(5),
                max: Duration::from_secs(120),
            },
            limits: Limits::default(),
            template: Template::default(),
            unavailable_ttl: Duration::from_secs(180),
            eviction_block_ttl: Duration::from_secs(1800),
            eviction_block_scope: BlockScope::Offering,
            max_share: 0.5,
            notice_grace: Duration::from_secs(600),
            unhealthy_grace: Duration::from_secs(300),
            resync_interval: Duration::from_secs(30),
            list_lag_grace: Duration::from_secs(30),
        }
    }

    /// Units one VM of `candidate` contributes to the target.
    #[must_use]
    pub fn units_of(&self, vcpus: u32) -> u32 {
        match self.target {
            Target::Vms(_) => 1,
            Target::Vcpus(_) => vcpus.max(1),
        }
    }
}
