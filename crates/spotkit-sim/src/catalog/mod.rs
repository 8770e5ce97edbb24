//! What the simulated cloud sells, at one instant: regions, VM sizes, prices, eviction-rate bands,
//! placement scores and quotas. The model produces a [`CatalogSnapshot`] for `now`; the catalog
//! facade serves it under Azure's own APIs (Retail Prices, Resource SKUs, Resource Graph
//! `SpotResources`, Spot Placement Score), so the advisor runs against the simulator unchanged.

pub mod http;

use spotkit_core::Timestamp;
use spotkit_core::advisor::{EvictionBand, PlacementScore};

/// The whole catalog at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogSnapshot {
    /// When this snapshot describes.
    pub at: Timestamp,
    /// Regions, in scenario order.
    pub regions: Vec<RegionInfo>,
    /// VM sizes, in scenario order.
    pub sizes: Vec<SizeInfo>,
    /// One entry per (size, region) the scenario offers.
    pub offerings: Vec<OfferingInfo>,
    /// vCPU quotas per (region, family).
    pub quotas: Vec<QuotaInfo>,
}

/// A region.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionInfo {
    /// ARM name, e.g. `eastus`.
    pub name: String,
    /// The Retail Prices `location`, e.g. `US East`.
    pub display_name: String,
    /// Availability zones, e.g. `["1", "2", "3"]` (may be empty).
    pub zones: Vec<String>,
}

/// A VM size.
#[derive(Clone, Debug, PartialEq)]
pub struct SizeInfo {
    /// ARM name, e.g. `Standard_D4s_v5`.
    pub name: String,
    /// Resource SKU family, e.g. `standardDSv5Family` (quota is per family).
    pub family: String,
    /// vCPUs.
    pub vcpus: u32,
    /// Memory in GiB.
    pub memory_gib: f64,
    /// Whether Spot is supported for this size (`LowPriorityCapable`; false for B-series v1).
    pub spot_capable: bool,
}

/// One size in one region: prices now and their history, the band, the placement score.
#[derive(Clone, Debug, PartialEq)]
pub struct OfferingInfo {
    /// ARM size name.
    pub size: String,
    /// ARM region name.
    pub region: String,
    /// Linux pay-as-you-go USD/hour.
    pub payg_linux: f64,
    /// Windows pay-as-you-go USD/hour (Linux price plus the licence), if offered.
    pub payg_windows: Option<f64>,
    /// Linux spot USD/hour now; `None` when the size has no spot meter here.
    pub spot_linux: Option<f64>,
    /// Windows spot USD/hour now, if offered.
    pub spot_windows: Option<f64>,
    /// Linux spot price changes, oldest first: (effective from, USD/hour). The last entry is the
    /// current price. Resource Graph serves the last 90 days of it, newest first.
    pub spot_price_history: Vec<(Timestamp, f64)>,
    /// The eviction-rate band Resource Graph reports now (trailing window).
    pub band: Option<EvictionBand>,
    /// What Spot Placement Score answers for a typical request now.
    pub placement: PlacementScore,
    /// Spot capacity (VMs of this size) currently obtainable, for placement-score answers that
    /// depend on the desired count.
    pub spot_capacity_vms: u32,
}

/// A vCPU quota.
#[derive(Clone, Debug, PartialEq)]
pub struct QuotaInfo {
    /// ARM region name.
    pub region: String,
    /// SKU family (`LowPriorityCores` for the Spot quota, which spans families).
    pub family: String,
    /// vCPUs allowed.
    pub limit_vcpus: u32,
    /// vCPUs in use now.
    pub used_vcpus: u32,
}
