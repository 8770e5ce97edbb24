//! Scenario files: what the simulated cloud offers and what happens to it, as TOML.
//!
//! Every key has a default (see `SIMULATOR.md`), so a scenario states only what it changes.
//! Durations are written as humantime strings (`"30s"`, `"10m"`, `"1h 30m"`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use spotkit_core::advisor::EvictionBand;

/// The built-in default scenario (`scenarios/default.toml`).
pub const DEFAULT_SCENARIO_TOML: &str = include_str!("../../scenarios/default.toml");

/// The scenario of `spotkit demo` (`scenarios/demo.toml`): the default's offerings with
/// seconds-long VM operations and no stochastic evictions (the demo scripts its storm).
pub const DEMO_SCENARIO_TOML: &str = include_str!("../../scenarios/demo.toml");

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not parse or has unknown keys.
    #[error("scenario {origin} is not valid: {message}")]
    Parse {
        /// File name or `built-in`.
        origin: String,
        /// The TOML error, with its line.
        message: String,
    },
    /// The scenario is self-contradictory (an offering names an unknown size, ...).
    #[error("scenario is inconsistent: {0}")]
    Invalid(String),
    /// A capacity trace could not be loaded.
    #[error(
        "cannot load capacity trace {path}: {message} (traces are read from ../shared/traces relative to the repository root; pass --traces-dir or fix the path)"
    )]
    Trace {
        /// The resolved path.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|error| {
        serde::de::Error::custom(format!("`{text}` is not a duration like \"30s\": {error}"))
    })
}

fn optional_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    duration(deserializer).map(Some)
}

fn band<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<EvictionBand>, D::Error> {
    let text = String::deserialize(deserializer)?;
    EvictionBand::parse(&text).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "`{text}` is not an eviction band (0-5, 5-10, 10-15, 15-20, 20+)"
        ))
    })
}

/// A whole scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A name for logs.
    #[serde(default = "default_name")]
    pub name: String,
    /// Seed of every random draw (overridden by `--seed`).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Simulated start, Unix seconds. `None`: the deterministic mode starts at
    /// 2026-01-01T00:00:00Z, `sim serve` at the real time it starts.
    #[serde(default)]
    pub start_unix: Option<i64>,
    /// The model's step: capacity is enforced and stochastic evictions drawn every tick.
    #[serde(default = "default_tick", deserialize_with = "duration")]
    pub tick: Duration,
    /// VM operation timings and disks.
    #[serde(default)]
    pub vm: VmSettings,
    /// Stochastic eviction behaviour.
    #[serde(default)]
    pub eviction: EvictionSettings,
    /// HTTP facade settings.
    #[serde(default)]
    pub http: HttpSettings,
    /// Regions.
    #[serde(default)]
    pub regions: Vec<RegionSpec>,
    /// VM sizes.
    #[serde(default)]
    pub sizes: Vec<SizeSpec>,
    /// (size, region) pairs on sale.
    #[serde(default)]
    pub offerings: Vec<OfferingSpec>,
    /// vCPU quotas.
    #[serde(default)]
    pub quotas: Vec<QuotaSpec>,
    /// Scripted events.
    #[serde(default)]
    pub events: Vec<ScriptedEvent>,
    /// VMs the headless run (`spotkit sim run`) creates and keeps up (a naive baseline).
    #[serde(default)]
    pub fleet: Vec<FleetSpec>,
}

fn default_name() -> String {
    "unnamed".to_owned()
}
const fn default_seed() -> u64 {
    1
}
const fn default_tick() -> Duration {
    Duration::from_secs(10)
}

/// Operation timings and disks.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VmSettings {
    /// How long a create takes (PUT to `Succeeded`).
    #[serde(deserialize_with = "duration")]
    pub create: Duration,
    /// How long a start takes.
    #[serde(deserialize_with = "duration")]
    pub start: Duration,
    /// How long a deallocate takes.
    #[serde(deserialize_with = "duration")]
    pub deallocate: Duration,
    /// How long a delete takes.
    #[serde(deserialize_with = "duration")]
    pub delete: Duration,
    /// OS disk size of every VM, GiB.
    pub os_disk_gib: u32,
    /// Managed disk price, USD per GiB-month (730 h), billed while the VM exists.
    pub disk_usd_per_gib_month: f64,
}

impl Default for VmSettings {
    fn default() -> Self {
        Self {
            create: Duration::from_secs(30),
            start: Duration::from_secs(20),
            deallocate: Duration::from_secs(15),
            delete: Duration::from_secs(10),
            os_disk_gib: 30,
            disk_usd_per_gib_month: 0.05,
        }
    }
}

/// One notice length and its weight in the notice distribution.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeWeight {
    /// Time from the Preempt event to the eviction (`"0s"` = none, the event starts at once).
    #[serde(deserialize_with = "duration")]
    pub notice: Duration,
    /// Relative weight.
    pub weight: f64,
}

/// Stochastic eviction behaviour.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvictionSettings {
    /// Notice lengths of platform evictions and their weights.
    pub notices: Vec<NoticeWeight>,
    /// Probability that each other running VM of the same offering follows a stochastic eviction.
    pub correlation: f64,
    /// Followers are evicted within this window after the first.
    #[serde(deserialize_with = "duration")]
    pub correlation_window: Duration,
    /// A stochastic eviction takes its VM's capacity away for this long.
    #[serde(deserialize_with = "duration")]
    pub reclaim: Duration,
    /// Probability that a new Spot VM is evicted as soon as it is running.
    pub after_create_probability: f64,
    /// Notice of an eviction asked for with `simulateEviction`.
    #[serde(deserialize_with = "duration")]
    pub simulate_notice: Duration,
    /// Multiplies every band's hourly rate (0 turns stochastic evictions off).
    pub rate_scale: f64,
}

impl Default for EvictionSettings {
    fn default() -> Self {
        Self {
            notices: vec![
                NoticeWeight {
                    notice: Duration::from_secs(30),
                    weight: 0.9,
                },
                NoticeWeight {
                    notice: Duration::from_secs(5),
                    weight: 0.07,
                },
                NoticeWeight {
                    notice: Duration::ZERO,
                    weight: 0.03,
                },
            ],
            correlation: 0.3,
            correlation_window: Duration::from_secs(180),
            reclaim: Duration::from_secs(600),
            after_create_probability: 0.0,
            simulate_notice: Duration::from_secs(30),
            rate_scale: 1.0,
        }
    }
}

/// HTTP facade settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// VMs per page of a list; more give a `nextLink`.
    pub page_size: usize,
    /// Multiplies every throttling bucket (size and refill); 0.01 provokes 429 storms.
    pub throttle_scale: f64,
    /// `Retry-After` of long-running operations, seconds.
    pub retry_after_seconds: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            page_size: 50,
            throttle_scale: 1.0,
            retry_after_seconds: 1,
        }
    }
}

/// A region.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    /// ARM name, e.g. `eastus`.
    pub name: String,
    /// Retail Prices location, e.g. `US East`.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Availability zones.
    #[serde(default)]
    pub zones: Vec<String>,
}

/// A VM size.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeSpec {
    /// ARM name, e.g. `Standard_D4s_v5`.
    pub name: String,
    /// Quota family, e.g. `standardDSv5Family`.
    pub family: String,
    /// vCPUs.
    pub vcpus: u32,
    /// Memory, GiB.
    pub memory_gib: f64,
    /// Whether Spot is offered for it.
    #[serde(default = "yes")]
    pub spot_capable: bool,
}

const fn yes() -> bool {
    true
}

/// A price change of an offering's spot meter.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceStep {
    /// Since the simulated start.
    #[serde(deserialize_with = "duration")]
    pub at: Duration,
    /// New Linux spot price, USD/hour.
    pub spot: f64,
}

/// One size in one region.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferingSpec {
    /// ARM size name.
    pub size: String,
    /// ARM region name.
    pub region: String,
    /// Linux pay-as-you-go USD/hour.
    pub payg: f64,
    /// Linux spot USD/hour; absent: `payg * spot_ratio`.
    #[serde(default)]
    pub spot: Option<f64>,
    /// Spot price as a fraction of pay-as-you-go when `spot` is absent.
    #[serde(default)]
    pub spot_ratio: Option<f64>,
    /// Windows pay-as-you-go, if sold.
    #[serde(default)]
    pub payg_windows: Option<f64>,
    /// Windows spot, if sold.
    #[serde(default)]
    pub spot_windows: Option<f64>,
    /// Eviction-rate band: drives the stochastic evictions and what Resource Graph reports.
    #[serde(default, deserialize_with = "band")]
    pub band: Option<EvictionBand>,
    /// Spot VMs of this offering that can run at once (nominal).
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    /// Regular VMs that can run at once; absent = unlimited.
    #[serde(default)]
    pub regular_capacity: Option<u32>,
    /// Where the spot capacity over time comes from.
    #[serde(default)]
    pub driver: CapacityDriverSpec,
    /// Spot price changes.
    #[serde(default)]
    pub price_steps: Vec<PriceStep>,
}

const fn default_capacity() -> u32 {
    50
}

/// How a trace file's values read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TracePolarity {
    /// 0/1, 1 = no spot capacity (the paper's reading of the AWS 1-node files).
    OneIsUnavailable,
    /// 0/1, 1 = spot capacity available.
    OneIsAvailable,
    /// Count of obtainable instances (16-node, 4-node files).
    Count,
}

/// Where spot capacity over time comes from.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum CapacityDriverSpec {
    /// Constant nominal capacity, stochastic evictions at the band's hourly rate.
    #[default]
    Band,
    /// Constant nominal capacity, no stochastic evictions (scripted events only).
    Steady,
    /// Capacity from a real trace file; no stochastic evictions beyond what the trace does.
    Trace {
        /// Path relative to the traces directory, e.g.
        /// `availability/1-node/aws-02-15-2023/us-east-1a_v100_1.json`.
        file: String,
        /// How the values read.
        #[serde(default = "default_polarity")]
        polarity: TracePolarity,
        /// VMs per "available" tick (0/1 files) or per counted instance (count files).
        #[serde(default = "default_capacity_scale")]
        capacity_scale: u32,
        /// Where in the trace the simulated start falls.
        #[serde(default, deserialize_with = "optional_duration")]
        start_offset: Option<Duration>,
    },
}

const fn default_polarity() -> TracePolarity {
    TracePolarity::OneIsUnavailable
}
const fn default_capacity_scale() -> u32 {
    1
}

/// A vCPU quota.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSpec {
    /// ARM region name.
    pub region: String,
    /// Family (`standardDSv5Family`) or `LowPriorityCores` (all Spot VMs of the region).
    pub family: String,
    /// vCPUs allowed.
    pub limit: u32,
}

/// What a scripted event does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptedKind {
    /// Evict `count` running Spot VMs of the selected offerings with `notice`.
    Evict,
    /// Set the spot capacity of the selected offerings to `capacity` (for `duration`, or until
    /// the next capacity event).
    Capacity,
    /// Set the spot price of the selected offerings to `spot`.
    Price,
}

/// A scripted event. `region` and `size` select offerings; absent = all.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedEvent {
    /// Since the simulated start (humantime).
    #[serde(deserialize_with = "duration", serialize_with = "serialize_duration")]
    pub at: Duration,
    /// What happens.
    pub kind: ScriptedKind,
    /// Region selector.
    #[serde(default)]
    pub region: Option<String>,
    /// Size selector.
    #[serde(default)]
    pub size: Option<String>,
    /// `evict`: how many VMs (absent = all).
    #[serde(default)]
    pub count: Option<u32>,
    /// `evict`: notice (absent = drawn from the notice distribution).
    #[serde(
        default,
        deserialize_with = "optional_duration",
        serialize_with = "serialize_optional_duration"
    )]
    pub notice: Option<Duration>,
    /// `capacity`: the new capacity.
    #[serde(default)]
    pub capacity: Option<u32>,
    /// `capacity`: how long it lasts (absent = until changed).
    #[serde(
        default,
        rename = "for",
        deserialize_with = "optional_duration",
        serialize_with = "serialize_optional_duration"
    )]
    pub duration: Option<Duration>,
    /// `price`: the new spot price.
    #[serde(default)]
    pub spot: Option<f64>,
}

fn serialize_duration<S: serde::Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*value).to_string())
}

fn serialize_optional_duration<S: serde::Serializer>(
    value: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serialize_duration(value, s),
        None => s.serialize_none(),
    }
}

/// VMs the headless run keeps up.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSpec {
    /// VM names are `{prefix}-{n}`.
    pub prefix: String,
    /// Region.
    pub region: String,
    /// Size.
    pub size: String,
    /// How many.
    pub count: u32,
    /// `Spot` (default) or `Regular`.
    #[serde(default = "default_priority")]
    pub priority: String,
    /// `Delete` (default) or `Deallocate`.
    #[serde(default = "default_eviction_policy")]
    pub eviction_policy: String,
    /// `billingProfile.maxPrice`; -1 = capped at pay-as-you-go.
    #[serde(default = "default_max_price")]
    pub max_price: f64,
    /// Recreate (Delete) or restart (Deallocate) evicted VMs at every tick.
    #[serde(default = "yes")]
    pub replace: bool,
}

fn default_priority() -> String {
    "Spot".to_owned()
}
fn default_eviction_policy() -> String {
    "Delete".to_owned()
}
const fn default_max_price() -> f64 {
    -1.0
}

impl Scenario {
    /// Parses scenario TOML; `origin` names it in errors.
    ///
    /// # Errors
    /// If it does not parse or is inconsistent.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|error| ScenarioError::Parse {
            origin: origin.to_owned(),
            message: error.to_string(),
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Reads and parses a scenario file.
    ///
    /// # Errors
    /// If it cannot be read, does not parse or is inconsistent.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// The built-in default scenario.
    #[must_use]
    pub fn builtin_default() -> Self {
        // The embedded file is tested to parse, so this cannot fail in a released binary.
        Self::from_toml(DEFAULT_SCENARIO_TOML, "built-in default")
            .unwrap_or_else(|error| panic!("the built-in scenario is broken: {error}"))
    }

    /// The size named `name` (case-insensitive).
    #[must_use]
    pub fn size(&self, name: &str) -> Option<&SizeSpec> {
        self.sizes
            .iter()
            .find(|size| size.name.eq_ignore_ascii_case(name))
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        for offering in &self.offerings {
            if self.size(&offering.size).is_none() {
                return Err(ScenarioError::Invalid(format!(
                    "offering {}/{} names a size that [[sizes]] does not define",
                    offering.region, offering.size
                )));
            }
            if !self
                .regions
                .iter()
                .any(|region| region.name.eq_ignore_ascii_case(&offering.region))
            {
                return Err(ScenarioError::Invalid(format!(
                    "offering {}/{} names a region that [[regions]] does not define",
                    offering.region, offering.size
                )));
            }
            if offering.spot.is_none() && offering.spot_ratio.is_none() {
                return Err(ScenarioError::Invalid(format!(
                    "offering {}/{} needs `spot` (USD/hour) or `spot_ratio`",
                    offering.region, offering.size
                )));
            }
        }
        for event in &self.events {
            let missing = match event.kind {
                ScriptedKind::Capacity if event.capacity.is_none() => Some("capacity"),
                ScriptedKind::Price if event.spot.is_none() => Some("spot"),
                _ => None,
            };
            if let Some(key) = missing {
                return Err(ScenarioError::Invalid(format!(
                    "the {:?} event at {} needs `{key}`",
                    event.kind,
                    humantime::format_duration(event.at)
                )));
            }
        }
        for fleet in &self.fleet {
            if !self.offerings.iter().any(|offering| {
                offering.size.eq_ignore_ascii_case(&fleet.size)
                    && offering.region.eq_ignore_ascii_case(&fleet.region)
            }) {
                return Err(ScenarioError::Invalid(format!(
                    "fleet {} asks for {}/{}, which no offering sells",
                    fleet.prefix, fleet.region, fleet.size
                )));
            }
        }
        if self.tick.is_zero() {
            return Err(ScenarioError::Invalid("`tick` must be positive".to_owned()));
        }
        Ok(())
    }
}
