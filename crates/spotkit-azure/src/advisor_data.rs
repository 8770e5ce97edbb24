//! The advisor's data: everything fetched from Azure (or the simulator) for one `spotkit advise`,
//! kept as an [`AdvisorSnapshot`] and turned into the ranking's [`Offering`]s by
//! [`assemble_offerings`].
//!
//! Sources sit behind [`AdvisorSource`]: [`LiveSource`] asks the Retail Prices API and, through an
//! [`ArmAdvisorApi`], Resource SKUs, Resource Graph `SpotResources` and Spot Placement Score;
//! a snapshot file replays a recorded fetch offline. Each live answer can be kept in a
//! [`FileCache`] (one JSON file per endpoint + query) for its own time to live: prices and SKUs
//! change rarely (24 h), eviction bands and placement scores are point-in-time hints (20 min;
//! Microsoft asks to cache placement scores 15-30 min).
//!
//! Joins are case-insensitive on size and region (Resource Graph lower-cases size names).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use spotkit_core::Timestamp;
use spotkit_core::advisor::{EvictionBand, Offering, Os, PlacementScore};

use crate::prices::{PriceKind, PriceQuery, PriceRow, PricesError, RetailPricesClient, os_serde};

/// The snapshot format's version; readers refuse others.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Time to live of cached prices and SKUs.
pub const PRICES_TTL: Duration = Duration::from_secs(24 * 3600);
/// Time to live of cached eviction bands and placement scores.
pub const SPOT_SIGNALS_TTL: Duration = Duration::from_secs(20 * 60);

/// A boxed future, for the object-safe source traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One VM size as Resource SKUs describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkuRecord {
    /// ARM size name.
    pub name: String,
    /// SKU family (quota is per family).
    pub family: String,
    /// `vCPUs` capability.
    pub vcpus: u32,
    /// `MemoryGB` capability (GiB).
    pub memory_gib: f64,
    /// `LowPriorityCapable` capability: whether Spot is supported.
    pub low_priority_capable: bool,
    /// Regions the size is listed in.
    pub locations: Vec<String>,
    /// Regions where a `Location` restriction forbids it for this subscription.
    pub restricted_locations: Vec<String>,
}

/// One eviction-rate band from Resource Graph, as written there (e.g. `0-5`, `20+%`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvictionRecord {
    /// Size name (any case).
    pub sku: String,
    /// Region.
    pub location: String,
    /// The band string; parsed tolerantly by [`EvictionBand::parse`].
    pub band: String,
}

/// One Spot Placement Score answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlacementRecord {
    /// Size name.
    pub sku: String,
    /// Region.
    pub region: String,
    /// Availability zone, for zonal answers.
    pub zone: Option<String>,
    /// `High`, `Medium`, `Low`, `DataNotFoundOrStale`, `RestrictedSkuNotAvailable`.
    pub score: String,
    /// `isQuotaAvailable`.
    pub quota_available: bool,
}

/// Where a snapshot's data came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSources {
    /// Retail Prices base URL.
    pub prices_url: String,
    /// ARM base URL, if ARM data was fetched.
    pub arm_url: Option<String>,
    /// Subscription the ARM data is for.
    pub subscription: Option<String>,
}

/// Everything one advise run fetched; serde JSON, versioned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdvisorSnapshot {
    /// [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// When the data was fetched, Unix milliseconds.
    pub fetched_at_unix_ms: i64,
    /// The same, RFC 3339, for people.
    pub fetched_at: String,
    /// Endpoints.
    pub sources: SnapshotSources,
    /// Regions asked for.
    pub regions: Vec<String>,
    /// OS the prices are for.
    #[serde(with = "os_serde")]
    pub os: Os,
    /// VM count the placement scores are for.
    pub desired_count: u32,
    /// Prices (spot and pay-as-you-go) for `os`.
    pub prices: Vec<PriceRow>,
    /// Sizes.
    pub skus: Vec<SkuRecord>,
    /// Bands.
    pub eviction_rates: Vec<EvictionRecord>,
    /// Placement scores.
    pub placement_scores: Vec<PlacementRecord>,
}

/// What went wrong getting or reading advisor data.
#[derive(Debug, thiserror::Error)]
pub enum AdvisorDataError {
    /// The Retail Prices API failed.
    #[error("fetching prices failed")]
    Prices(#[from] PricesError),
    /// An ARM data source failed.
    #[error("fetching {what} from ARM failed: {message}")]
    Arm {
        /// Which data (Resource SKUs, eviction rates, placement scores).
        what: &'static str,
        /// The client's error, rendered.
        message: String,
    },
    /// A snapshot file could not be read or written.
    #[error("snapshot {path}: {source}")]
    SnapshotIo {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A snapshot file is not valid JSON of this format.
    #[error(
        "snapshot {path} is not an advisor snapshot: {source}; write one with `spotkit advise snapshot --out FILE`"
    )]
    SnapshotParse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A snapshot of another format version.
    #[error(
        "snapshot {path} has format version {found}; this spotkit reads version {SNAPSHOT_VERSION}: fetch a new one"
    )]
    SnapshotVersion {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
}

/// What to fetch.
#[derive(Clone, Debug, PartialEq)]
pub struct FetchRequest {
    /// Regions.
    pub regions: Vec<String>,
    /// Meter OS.
    pub os: Os,
    /// `currencyCode` for prices (`None`: USD). The ranking compares USD figures.
    pub currency: Option<String>,
    /// VM count for placement scores.
    pub desired_count: u32,
    /// Sizes smaller than this are not asked about in Resource Graph or Spot Placement Score.
    pub min_vcpus: u32,
    /// Likewise for memory, GiB.
    pub min_memory_gib: f64,
    /// At most this many sizes (the cheapest spot per vCPU) get placement scores: each call
    /// covers 5 sizes x 8 regions and counts against the ARM read quota.
    pub placement_sizes_max: usize,
}

/// A source of advisor data.
pub trait AdvisorSource: Send + Sync {
    /// Fetches everything for `request`; `now` stamps the snapshot and ages the cache.
    fn fetch<'a>(
        &'a self,
        request: &'a FetchRequest,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<AdvisorSnapshot, AdvisorDataError>>;
}

/// The ARM side of the advisor's data (Resource SKUs, Resource Graph, Spot Placement Score),
/// implemented over `arm::ArmClient`; a trait so the advisor does not depend on how.
pub trait ArmAdvisorApi: Send + Sync {
    /// ARM base URL, for the snapshot and cache keys.
    fn base_url(&self) -> String;
    /// Resource SKUs of the subscription (virtual machines only).
    fn skus<'a>(
        &'a self,
        subscription: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SkuRecord>, AdvisorDataError>>;
    /// Eviction bands for the sizes in the regions.
    fn eviction_rates<'a>(
        &'a self,
        subscription: &'a str,
        sizes: &'a [String],
        regions: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<EvictionRecord>, AdvisorDataError>>;
    /// Placement scores for `desired_count` VMs of each size in each region (regional).
    fn placement_scores<'a>(
        &'a self,
        subscription: &'a str,
        sizes: &'a [String],
        regions: &'a [String],
        desired_count: u32,
    ) -> BoxFuture<'a, Result<Vec<PlacementRecord>, AdvisorDataError>>;
}

/// Reads a snapshot file, checking its version.
///
/// # Errors
/// Unreadable, unparsable, or another version.
pub fn read_snapshot(path: &Path) -> Result<AdvisorSnapshot, AdvisorDataError> {
    let text = std::fs::read_to_string(path).map_err(|source| AdvisorDataError::SnapshotIo {
        path: path.to_path_buf(),
        source,
    })?;
    #[derive(Deserialize)]
    struct VersionOnly {
        version: u32,
    }
    let v: VersionOnly =
        serde_json::from_str(&text).map_err(|source| AdvisorDataError::SnapshotParse {
            path: path.to_path_buf(),
            source,
        })?;
    if v.version != SNAPSHOT_VERSION {
        return Err(AdvisorDataError::SnapshotVersion {
            path: path.to_path_buf(),
            found: v.version,
        });
    }
    serde_json::from_str(&text).map_err(|source| AdvisorDataError::SnapshotParse {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a snapshot file (pretty JSON).
///
/// # Errors
/// The file cannot be written.
pub fn write_snapshot(path: &Path, snapshot: &AdvisorSnapshot) -> Result<(), AdvisorDataError> {
    let mut text = serde_json::to_string_pretty(snapshot).map_err(|source| {
        AdvisorDataError::SnapshotParse {
            path: path.to_path_buf(),
            source,
        }
    })?;
    text.push('\n');
    std::fs::write(path, text).map_err(|source| AdvisorDataError::SnapshotIo {
        path: path.to_path_buf(),
        source,
    })
}

fn key(a: &str, b: &str) -> (String, String) {
    (a.to_ascii_lowercase(), b.to_ascii_lowercase())
}

/// The offerings of `snapshot`: one per (size, region) the SKU list has in a requested region,
/// for the snapshot's OS. A size is not spot-capable there when it is not `LowPriorityCapable`,
/// is restricted in the region, or Spot Placement Score says `RestrictedSkuNotAvailable`; with
/// no spot meter its spot price is `None`. Either way the ranking counts it under "no spot
/// offer". Sizes with prices but no SKU record have no known vCPUs or memory and are left out.
/// A zonal placement answer counts as its best zone. Sorted by size, then region.
#[must_use]
pub fn assemble_offerings(snapshot: &AdvisorSnapshot) -> Vec<Offering> {
    // Hash maps for lookups only: the output order comes from the final sort, not from them.
    let os = snapshot.os;
    let mut spot: HashMap<(String, String), f64> = HashMap::new();
    let mut payg: HashMap<(String, String), f64> = HashMap::new();
    for p in snapshot.prices.iter().filter(|p| p.os == os) {
        let map = match p.kind {
            PriceKind::Spot => &mut spot,
            PriceKind::PayAsYouGo => &mut payg,
        };
        map.insert(key(&p.sku, &p.region), p.price_per_hour);
    }
    let bands: HashMap<(String, String), EvictionBand> = snapshot
        .eviction_rates
        .iter()
        .filter_map(|e| Some((key(&e.sku, &e.location), EvictionBand::parse(&e.band)?)))
        .collect();
    let mut placement: HashMap<(String, String), PlacementScore> = HashMap::new();
    let mut restricted_by_score: HashSet<(String, String)> = HashSet::new();
    for s in &snapshot.placement_scores {
        let k = key(&s.sku, &s.region);
        if s.score.eq_ignore_ascii_case("RestrictedSkuNotAvailable") {
            restricted_by_score.insert(k.clone());
        }
        if let Some(score) = PlacementScore::parse(&s.score) {
            let e = placement.entry(k).or_insert(score);
            *e = (*e).max(score);
        }
    }
    let wanted: BTreeSet<String> = snapshot
        .regions
        .iter()
        .map(|r| r.to_ascii_lowercase())
        .collect();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for sku in &snapshot.skus {
        for region in &sku.locations {
            let k = key(&sku.name, region);
            if (!wanted.is_empty() && !wanted.contains(&k.1)) || !seen.insert(k.clone()) {
                continue;
            }
            let restricted = sku
                .restricted_locations
                .iter()
                .any(|r| r.eq_ignore_ascii_case(region))
                || restricted_by_score.contains(&k);
            out.push(Offering {
                size: sku.name.clone(),
                region: region.to_ascii_lowercase(),
                os,
                vcpus: sku.vcpus,
                memory_gib: sku.memory_gib,
                spot_price: spot.get(&k).copied(),
                payg_price: payg.get(&k).copied(),
                band: bands.get(&k).copied(),
                placement: placement.get(&k).copied(),
                spot_capable: sku.low_priority_capable && !restricted,
            });
        }
    }
    out.sort_by(|a, b| a.size.cmp(&b.size).then_with(|| a.region.cmp(&b.region)));
    out
}

/// A directory of cached answers, one JSON file per key, each with the time it was stored.
#[derive(Clone, Debug)]
pub struct FileCache {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct CacheEntry<T> {
    key: String,
    stored_at_unix_ms: i64,
    value: T,
}

impl FileCache {
    /// A cache in `dir` (created on first write).
    #[must_use]
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// `$XDG_CACHE_HOME/spotkit`, else `$HOME/.cache/spotkit`.
    #[must_use]
    pub fn default_dir() -> Option<PathBuf> {
        std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache"))
            })
            .map(|d| d.join("spotkit"))
    }

    fn path(&self, key: &str) -> PathBuf {
        let digest = Sha256::digest(key.as_bytes());
        let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("advisor-{name}.json"))
    }

    /// The value stored under `key` if it is younger than `ttl` at `now`.
    #[must_use]
    pub fn get<T: DeserializeOwned>(&self, key: &str, ttl: Duration, now: Timestamp) -> Option<T> {
        let text = std::fs::read_to_string(self.path(key)).ok()?;
        let entry: CacheEntry<T> = serde_json::from_str(&text).ok()?;
        let stored = Timestamp::from_unix_millis(entry.stored_at_unix_ms);
        // A file from the future (clock moved back) is stale, not eternal.
        (entry.key == key && stored <= now && now.since(stored) < ttl).then_some(entry.value)
    }

    /// Stores `value` under `key`. A cache that cannot be written is logged, not fatal.
    pub fn put<T: Serialize>(&self, key: &str, value: &T, now: Timestamp) {
        let entry = CacheEntry {
            key: key.to_string(),
            stored_at_unix_ms: now.unix_millis(),
            value,
        };
        let result = std::fs::create_dir_all(&self.dir).and_then(|()| {
            let text = serde_json::to_string(&entry).map_err(std::io::Error::other)?;
            let path = self.path(key);
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text)?;
            std::fs::rename(tmp, path)
        });
        if let Err(e) = result {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot write the advisor cache; continuing without it");
        }
    }
}

async fn cached<T, F>(
    cache: Option<&FileCache>,
    key: String,
    ttl: Duration,
    now: Timestamp,
    fetch: impl FnOnce() -> F,
) -> Result<T, AdvisorDataError>
where
    T: Serialize + DeserializeOwned,
    F: Future<Output = Result<T, AdvisorDataError>>,
{
    if let Some(hit) = cache.and_then(|c| c.get::<T>(&key, ttl, now)) {
        tracing::debug!(key, "advisor cache hit");
        return Ok(hit);
    }
    let value = fetch().await?;
    if let Some(c) = cache {
        c.put(&key, &value, now);
    }
    Ok(value)
}

/// Fetches from the Retail Prices API and, when given, ARM.
pub struct LiveSource {
    /// The prices client.
    pub prices: RetailPricesClient,
    /// The ARM data, if a subscription is configured.
    pub arm: Option<(Arc<dyn ArmAdvisorApi>, String)>,
    /// The cache, if enabled.
    pub cache: Option<FileCache>,
}

fn join(v: &[String]) -> String {
    let mut v: Vec<String> = v.iter().map(|s| s.to_ascii_lowercase()).collect();
    v.sort();
    v.join(",")
}

impl AdvisorSource for LiveSource {
    fn fetch<'a>(
        &'a self,
        request: &'a FetchRequest,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<AdvisorSnapshot, AdvisorDataError>> {
        Box::pin(async move {
            let cache = self.cache.as_ref();
            let os = request.os;
            let mut prices: Vec<PriceRow> = Vec::new();
            for region in &request.regions {
                let query = PriceQuery {
                    regions: vec![region.clone()],
                    sizes: Vec::new(),
                    currency: request.currency.clone(),
                };
                let key = format!(
                    "prices|{}|{}|{}",
                    self.prices.base_url(),
                    region.to_ascii_lowercase(),
                    request.currency.as_deref().unwrap_or("USD")
                );
                let rows: Vec<PriceRow> = cached(cache, key, PRICES_TTL, now, || async {
                    Ok(self.prices.vm_prices(&query).await?)
                })
                .await?;
                prices.extend(rows.into_iter().filter(|r| r.os == os));
            }
            let mut snapshot = AdvisorSnapshot {
                version: SNAPSHOT_VERSION,
                fetched_at_unix_ms: now.unix_millis(),
                fetched_at: rfc3339(now),
                sources: SnapshotSources {
                    prices_url: self.prices.base_url().to_string(),
                    arm_url: None,
                    subscription: None,
                },
                regions: request.regions.clone(),
                os,
                desired_count: request.desired_count,
                prices,
                skus: Vec::new(),
                eviction_rates: Vec::new(),
                placement_scores: Vec::new(),
            };
            let Some((arm, subscription)) = &self.arm else {
                return Ok(snapshot);
            };
            let base = arm.base_url();
            snapshot.sources.arm_url = Some(base.clone());
            snapshot.sources.subscription = Some(subscription.clone());
            let skus: Vec<SkuRecord> = cached(
                cache,
                format!("skus|{base}|{subscription}"),
                PRICES_TTL,
                now,
                || arm.skus(subscription),
            )
            .await?;
            let wanted: BTreeSet<String> = request
                .regions
                .iter()
                .map(|r| r.to_ascii_lowercase())
                .collect();
            let candidates: Vec<&SkuRecord> = skus
                .iter()
                .filter(|s| {
                    s.vcpus >= request.min_vcpus
                        && s.memory_gib >= request.min_memory_gib
                        && s.low_priority_capable
                        && s.locations
                            .iter()
                            .any(|l| wanted.contains(&l.to_ascii_lowercase()))
                })
                .collect();
            let sizes: Vec<String> = candidates.iter().map(|s| s.name.clone()).collect();
            snapshot.skus = skus.clone();
            if sizes.is_empty() {
                return Ok(snapshot);
            }
            snapshot.eviction_rates = cached(
                cache,
                format!(
                    "evictions|{base}|{subscription}|{}|{}",
                    join(&sizes),
                    join(&request.regions)
                ),
                SPOT_SIGNALS_TTL,
                now,
                || arm.eviction_rates(subscription, &sizes, &request.regions),
            )
            .await?;
            // Placement scores for the cheapest spot offers per vCPU only: the call budget.
            let mut by_price: Vec<(f64, String)> = candidates
                .iter()
                .filter_map(|s| {
                    let best = snapshot
                        .prices
                        .iter()
                        .filter(|p| {
                            p.kind == PriceKind::Spot && p.sku.eq_ignore_ascii_case(&s.name)
                        })
                        .map(|p| p.price_per_hour)
                        .min_by(f64::total_cmp)?;
                    Some((best / f64::from(s.vcpus.max(1)), s.name.clone()))
                })
                .collect();
            by_price.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            let scored: Vec<String> = by_price
                .into_iter()
                .take(request.placement_sizes_max)
                .map(|(_, n)| n)
                .collect();
            if !scored.is_empty() {
                snapshot.placement_scores = cached(
                    cache,
                    format!(
                        "placement|{base}|{subscription}|{}|{}|{}",
                        join(&scored),
                        join(&request.regions),
                        request.desired_count
                    ),
                    SPOT_SIGNALS_TTL,
                    now,
                    || {
                        arm.placement_scores(
                            subscription,
                            &scored,
                            &request.regions,
                            request.desired_count,
                        )
                    },
                )
                .await?;
            }
            Ok(snapshot)
        })
    }
}

/// [`ArmAdvisorApi`] over the `arm` clients: Resource SKUs, Resource Graph `SpotResources` and
/// Spot Placement Score (regional scores; batched 8 regions x 5 sizes by the client).
pub struct ArmData {
    client: Arc<crate::arm::ArmClient>,
}

impl ArmData {
    /// Wraps a client.
    #[must_use]
    pub fn new(client: Arc<crate::arm::ArmClient>) -> Self {
        Self { client }
    }
}

fn arm_failure(what: &'static str) -> impl FnOnce(crate::arm::ArmError) -> AdvisorDataError {
    move |e| AdvisorDataError::Arm {
        what,
        message: e.to_string(),
    }
}

impl ArmAdvisorApi for ArmData {
    fn base_url(&self) -> String {
        self.client
            .base_url()
            .as_str()
            .trim_end_matches('/')
            .to_string()
    }

    fn skus<'a>(
        &'a self,
        subscription: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SkuRecord>, AdvisorDataError>> {
        Box::pin(async move {
            let skus = crate::arm::list_vm_skus(&self.client, subscription, None)
                .await
                .map_err(arm_failure("Resource SKUs"))?;
            Ok(skus
                .into_iter()
                .map(|s| SkuRecord {
                    name: s.name,
                    family: s.family,
                    vcpus: s.vcpus,
                    memory_gib: s.memory_gib,
                    low_priority_capable: s.low_priority_capable,
                    locations: s.locations,
                    restricted_locations: s.restricted_locations.into_iter().collect(),
                })
                .collect())
        })
    }

    fn eviction_rates<'a>(
        &'a self,
        subscription: &'a str,
        sizes: &'a [String],
        regions: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<EvictionRecord>, AdvisorDataError>> {
        Box::pin(async move {
            let subs = [subscription.to_string()];
            let rows = crate::arm::spot_eviction_rates(&self.client, &subs, sizes, regions)
                .await
                .map_err(arm_failure("eviction rates (Resource Graph SpotResources)"))?;
            Ok(rows
                .into_iter()
                .map(|r| EvictionRecord {
                    sku: r.sku,
                    location: r.location,
                    band: r.band.to_string(),
                })
                .collect())
        })
    }

    fn placement_scores<'a>(
        &'a self,
        subscription: &'a str,
        sizes: &'a [String],
        regions: &'a [String],
        desired_count: u32,
    ) -> BoxFuture<'a, Result<Vec<PlacementRecord>, AdvisorDataError>> {
        Box::pin(async move {
            let rows = crate::arm::spot_placement_scores(
                &self.client,
                subscription,
                sizes,
                regions,
                desired_count,
                false,
            )
            .await
            .map_err(arm_failure("Spot Placement Scores"))?;
            Ok(rows
                .into_iter()
                .map(|r| PlacementRecord {
                    sku: r.sku,
                    region: r.region,
                    zone: r.zone,
                    score: r.score.as_str().to_string(),
                    quota_available: r.quota_available,
                })
                .collect())
        })
    }
}

/// `2026-12-02T04:00:00Z`.
#[must_use]
pub fn rfc3339(at: Timestamp) -> String {
    let secs = at.unix_millis().div_euclid(1000);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("@{secs}"))
}

#[cfg(test)]
mod tests;
