//! Pool files: one TOML file per pool, declarative and idempotent (applying the same file twice
//! changes nothing). Every key and its default is documented in docs/pools.md; examples live in
//! examples/pools/.
//!
//! Candidates are either listed (`[[candidates]] size = … region = …`, ranked in file order) or
//! found by the advisor (`[advisor]` filters): the caller passes a function that ranks offerings
//! for [`Requirements`] (the advisor's data clients and [`advisor::rank`]), so this module does no
//! I/O beyond reading the file.
//!
//! Errors name the key, the bad value, what is wrong and how to fix it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use spotkit_core::advisor::{self, Advice, Os, Requirements};
use spotkit_core::backoff::Backoff;
use spotkit_core::compute::{EvictionPolicy, MaxPrice, OfferingId};
use spotkit_core::orchestrator::{
    Baseline, BlockScope, Candidate, Limits, PoolSpec, Target, Template,
};

/// Largest pool a file may ask for (VMs or vCPUs); beyond it ARM's write budget makes the
/// pool's repair too slow to be useful.
pub const MAX_TARGET: u32 = 1_000_000;

/// Why a pool file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The file could not be read.
    #[error("cannot read pool file {}: {source}; check the path", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, or a key of the wrong type or unknown.
    #[error("pool file {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// A value failed validation.
    #[error("pool file {}: key {key} = {value}: {problem}; {fix}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Dotted key, e.g. `limits.max_surge`.
        key: String,
        /// The value as written.
        value: String,
        /// What is wrong.
        problem: String,
        /// How to fix it.
        fix: String,
    },
    /// A required key is missing.
    #[error("pool file {}: key {key} is required; {fix}", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
        /// Dotted key.
        key: String,
        /// How to fix it.
        fix: String,
    },
    /// Two keys contradict each other.
    #[error("pool file {}: {first} and {second} cannot both be set; {fix}", path.display())]
    Conflict {
        /// The file.
        path: PathBuf,
        /// One key.
        first: String,
        /// The other.
        second: String,
        /// What to do.
        fix: String,
    },
    /// The advisor found no offering for the filters.
    #[error("pool file {}: no offering matches the [advisor] filters ({excluded}); widen min_vcpus, min_memory_gib, max_price or regions, or list [[candidates]]", path.display())]
    NoCandidates {
        /// The file.
        path: PathBuf,
        /// How many offerings each filter removed.
        excluded: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolFile {
    name: Option<String>,
    resource_group: Option<String>,
    eviction_policy: Option<String>,
    max_price: Option<f64>,
    on_demand_fallback: Option<bool>,
    restart_timeout: Option<String>,
    target: Option<TargetFile>,
    baseline: Option<BaselineFile>,
    candidates: Option<Vec<CandidateFile>>,
    advisor: Option<AdvisorFile>,
    template: Option<TemplateFile>,
    limits: Option<LimitsFile>,
    placement: Option<PlacementFile>,
    timing: Option<TimingFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFile {
    vms: Option<i64>,
    vcpus: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineFile {
    base_regular_count: Option<i64>,
    regular_percentage_above_base: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CandidateFile {
    size: String,
    region: String,
    vcpus: Option<i64>,
    spot: Option<bool>,
    spot_price: Option<f64>,
    payg_price: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvisorFile {
    min_vcpus: Option<i64>,
    min_memory_gib: Option<f64>,
    max_price: Option<f64>,
    regions: Option<Vec<String>>,
    os: Option<String>,
    max_candidates: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    image: Option<String>,
    user_data: Option<String>,
    identities: Option<Vec<String>>,
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    max_surge: Option<i64>,
    max_concurrent_operations: Option<i64>,
    disruption_budget: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlacementFile {
    unavailable_ttl: Option<String>,
    eviction_block_ttl: Option<String>,
    eviction_block_scope: Option<String>,
    max_share: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimingFile {
    restart_backoff_base: Option<String>,
    restart_backoff_max: Option<String>,
    retry_backoff_base: Option<String>,
    retry_backoff_max: Option<String>,
    notice_grace: Option<String>,
    unhealthy_grace: Option<String>,
    resync_interval: Option<String>,
    list_lag_grace: Option<String>,
}

/// Reads and validates the pool file at `path`. `rank` answers the `[advisor]` filters with the
/// advisor's ranking; it is not called for explicit `[[candidates]]`.
///
/// # Errors
/// [`PoolError`] naming the file, the key, the value and the fix.
pub fn load_pool(
    path: &Path,
    rank: impl FnOnce(&Requirements) -> Advice,
) -> Result<PoolSpec, PoolError> {
    let text = std::fs::read_to_string(path).map_err(|source| PoolError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_pool(&text, path, rank)
}

struct Ctx<'a> {
    path: &'a Path,
}

impl Ctx<'_> {
    fn invalid(
        &self,
        key: &str,
        value: impl fmt::Debug,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> PoolError {
        PoolError::Invalid {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            value: format!("{value:?}"),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    fn missing(&self, key: &str, fix: impl Into<String>) -> PoolError {
        PoolError::Missing {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            fix: fix.into(),
        }
    }

    fn count(
        &self,
        key: &str,
        v: Option<i64>,
        min: u32,
        max: u32,
        default: u32,
    ) -> Result<u32, PoolError> {
        let Some(v) = v else {
            return Ok(default);
        };
        u32::try_from(v)
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                self.invalid(
                    key,
                    v,
                    format!("must be a whole number from {min} to {max}"),
                    "choose a value in that range",
                )
            })
    }

    fn duration(
        &self,
        key: &str,
        v: Option<&String>,
        min: Duration,
        max: Duration,
        default: Duration,
    ) -> Result<Duration, PoolError> {
        let Some(v) = v else {
            return Ok(default);
        };
        let d = humantime::parse_duration(v.trim()).map_err(|e| {
            self.invalid(
                key,
                v,
                format!("not a duration ({e})"),
                "write it like 30s, 3m or 1h",
            )
        })?;
        if d < min || d > max {
            return Err(self.invalid(
                key,
                v,
                format!(
                    "must be between {} and {}",
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ),
                "choose a value in that range",
            ));
        }
        Ok(d)
    }
}

fn valid_price(p: f64) -> bool {
    p.is_finite() && p > 0.0 && (p * 100_000.0 - (p * 100_000.0).round()).abs() < 1e-6
}

/// Parses and validates pool-file `text` (from `path`, named in errors). See [`load_pool`].
///
/// # Errors
/// [`PoolError`] naming the file, the key, the value and the fix.
#[allow(clippy::too_many_lines)] // one key after another, in file order
pub fn parse_pool(
    text: &str,
    path: &Path,
    rank: impl FnOnce(&Requirements) -> Advice,
) -> Result<PoolSpec, PoolError> {
    let cx = Ctx { path };
    let file: PoolFile = toml::from_str(text).map_err(|e| PoolError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim().to_string(),
    })?;

    let name = file
        .name
        .ok_or_else(|| cx.missing("name", "name the pool, e.g. name = \"batch\""))?;
    let name_ok = !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !name_ok {
        return Err(cx.invalid(
            "name",
            &name,
            "must be 1-40 characters of a-z, 0-9 and '-', starting with a letter and not ending with '-' (VM names are <name>-<ordinal>)",
            "rename the pool",
        ));
    }
    let resource_group = file.resource_group.ok_or_else(|| {
        cx.missing(
            "resource_group",
            "give the resource group the pool's VMs live in, e.g. resource_group = \"rg-batch\"",
        )
    })?;
    if resource_group.trim().is_empty() || resource_group.len() > 90 {
        return Err(cx.invalid(
            "resource_group",
            &resource_group,
            "must be 1-90 characters",
            "use the resource group's ARM name",
        ));
    }

    let eviction_policy = match file.eviction_policy.as_deref().map(str::to_ascii_lowercase) {
        None => EvictionPolicy::Delete,
        Some(p) if p == "delete" => EvictionPolicy::Delete,
        Some(p) if p == "deallocate" => EvictionPolicy::Deallocate,
        Some(p) => {
            return Err(cx.invalid(
                "eviction_policy",
                p,
                "unknown eviction policy",
                "write \"delete\" (replace elsewhere; the flexible choice) or \"deallocate\" (restart in place)",
            ));
        }
    };
    let max_price = match file.max_price {
        None => MaxPrice::CappedAtPayAsYouGo,
        Some(p) if (p + 1.0).abs() < f64::EPSILON => MaxPrice::CappedAtPayAsYouGo,
        Some(p) if valid_price(p) => MaxPrice::UsdPerHour(p),
        Some(p) => {
            return Err(cx.invalid(
                "max_price",
                p,
                "must be -1 (never evicted for price, capped at pay-as-you-go) or a positive USD/hour price with at most 5 decimals",
                "write -1 or a price such as 0.05",
            ));
        }
    };

    let target_file = file.target.ok_or_else(|| {
        cx.missing(
            "target",
            "add [target] with vms = <count> or vcpus = <count>",
        )
    })?;
    let target = match (target_file.vms, target_file.vcpus) {
        (Some(n), None) => Target::Vms(cx.count("target.vms", Some(n), 0, MAX_TARGET, 0)?),
        (None, Some(n)) => Target::Vcpus(cx.count("target.vcpus", Some(n), 0, MAX_TARGET, 0)?),
        (Some(_), Some(_)) => {
            return Err(PoolError::Conflict {
                path: path.to_path_buf(),
                first: "target.vms".to_string(),
                second: "target.vcpus".to_string(),
                fix: "keep one: a VM count or a vCPU count".to_string(),
            });
        }
        (None, None) => {
            return Err(cx.missing(
                "target.vms",
                "set target.vms = <count> or target.vcpus = <count>",
            ));
        }
    };

    let baseline_file = file.baseline.unwrap_or_default();
    let baseline = Baseline {
        base_regular_count: cx.count(
            "baseline.base_regular_count",
            baseline_file.base_regular_count,
            0,
            MAX_TARGET,
            0,
        )?,
        regular_percentage_above_base: cx.count(
            "baseline.regular_percentage_above_base",
            baseline_file.regular_percentage_above_base,
            0,
            100,
            0,
        )?,
    };

    let candidates = match (file.candidates, file.advisor) {
        (Some(_), Some(_)) => {
            return Err(PoolError::Conflict {
                path: path.to_path_buf(),
                first: "[[candidates]]".to_string(),
                second: "[advisor]".to_string(),
                fix: "list the candidates yourself or let the advisor find them, not both"
                    .to_string(),
            });
        }
        (None, None) => {
            return Err(cx.missing(
                "candidates",
                "list [[candidates]] with size and region, or add [advisor] filters (min_vcpus, min_memory_gib, max_price, regions, os)",
            ));
        }
        (Some(list), None) => explicit_candidates(&cx, list, target)?,
        (None, Some(filters)) => advised_candidates(&cx, &filters, max_price, rank)?,
    };

    let template_file = file.template.unwrap_or_default();
    let image = template_file.image.ok_or_else(|| {
        cx.missing(
            "template.image",
            "give an image, e.g. image = \"Canonical:ubuntu-24_04-lts:server:latest\" or an image ARM id",
        )
    })?;
    if image.trim().is_empty() {
        return Err(cx.invalid(
            "template.image",
            &image,
            "is empty",
            "give an image reference",
        ));
    }
    let user_data = match template_file.user_data {
        None => None,
        Some(text) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
            // ARM's limit on userData is 64 KiB, base64 encoded.
            if encoded.len() > 65_535 {
                return Err(cx.invalid(
                    "template.user_data",
                    format!("{} bytes", text.len()),
                    "is above ARM's 64 KiB userData limit once base64 encoded",
                    "move the bulk into the image or a VM application package",
                ));
            }
            Some(encoded)
        }
    };
    let identities = template_file.identities.unwrap_or_default();
    for (i, id) in identities.iter().enumerate() {
        if !id
            .to_ascii_lowercase()
            .contains("/providers/microsoft.managedidentity/userassignedidentities/")
        {
            return Err(cx.invalid(
                &format!("template.identities[{i}]"),
                id,
                "is not the ARM id of a user-assigned managed identity",
                "write /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>",
            ));
        }
    }
    let tags = template_file.tags.unwrap_or_default();
    for key in tags.keys() {
        if key.starts_with("spotkit-") {
            return Err(cx.invalid(
                &format!("template.tags.{key}"),
                key,
                "tags starting with spotkit- belong to the orchestrator (pool membership, slots)",
                "rename the tag",
            ));
        }
    }

    let limits_file = file.limits.unwrap_or_default();
    let defaults = Limits::default();
    let limits = Limits {
        max_surge: cx.count(
            "limits.max_surge",
            limits_file.max_surge,
            0,
            MAX_TARGET,
            defaults.max_surge,
        )?,
        max_concurrent_operations: cx.count(
            "limits.max_concurrent_operations",
            limits_file.max_concurrent_operations,
            1,
            500,
            defaults.max_concurrent_operations,
        )?,
        disruption_budget: cx.count(
            "limits.disruption_budget",
            limits_file.disruption_budget,
            0,
            MAX_TARGET,
            defaults.disruption_budget,
        )?,
    };
    let on_demand_fallback = file.on_demand_fallback.unwrap_or(false);
    if on_demand_fallback && (limits.max_surge == 0 || limits.disruption_budget == 0) {
        return Err(cx.invalid(
            "on_demand_fallback",
            true,
            "fallback VMs are given back by creating spot first (needs limits.max_surge >= 1) and then deleting them (needs limits.disruption_budget >= 1)",
            "raise limits.max_surge and limits.disruption_budget to at least 1, or turn the fallback off",
        ));
    }

    let mut spec = PoolSpec::new(name, target, candidates);
    spec.eviction_policy = eviction_policy;
    spec.max_price = max_price;
    spec.baseline = baseline;
    spec.on_demand_fallback = on_demand_fallback;
    spec.limits = limits;
    spec.template = Template {
        resource_group,
        image,
        user_data,
        user_assigned_identities: identities,
        tags,
    };
    let minute = Duration::from_secs(60);
    let day = Duration::from_secs(86_400);
    spec.restart_timeout = cx.duration(
        "restart_timeout",
        file.restart_timeout.as_ref(),
        minute,
        7 * day,
        spec.restart_timeout,
    )?;
    if file.restart_timeout.is_some() && eviction_policy == EvictionPolicy::Delete {
        return Err(cx.invalid(
            "restart_timeout",
            file.restart_timeout.unwrap_or_default(),
            "applies only to eviction_policy = \"deallocate\" (a Delete pool never restarts)",
            "remove it, or set eviction_policy = \"deallocate\"",
        ));
    }

    let placement = file.placement.unwrap_or_default();
    let second = Duration::from_secs(1);
    spec.unavailable_ttl = cx.duration(
        "placement.unavailable_ttl",
        placement.unavailable_ttl.as_ref(),
        second,
        day,
        spec.unavailable_ttl,
    )?;
    spec.eviction_block_ttl = cx.duration(
        "placement.eviction_block_ttl",
        placement.eviction_block_ttl.as_ref(),
        Duration::ZERO,
        7 * day,
        spec.eviction_block_ttl,
    )?;
    spec.eviction_block_scope = match placement.eviction_block_scope.as_deref() {
        None | Some("offering") => BlockScope::Offering,
        Some("region") => BlockScope::Region,
        Some(other) => {
            return Err(cx.invalid(
                "placement.eviction_block_scope",
                other,
                "unknown scope",
                "write \"offering\" (avoid the size in that region) or \"region\" (avoid the whole region)",
            ));
        }
    };
    if let Some(share) = placement.max_share {
        if !(share > 0.0 && share <= 1.0) {
            return Err(cx.invalid(
                "placement.max_share",
                share,
                "must be above 0 and at most 1 (a fraction of the pool's spot capacity)",
                "write e.g. 0.5 for at most half the pool in one offering",
            ));
        }
        spec.max_share = share;
    }

    let timing = file.timing.unwrap_or_default();
    let hour = Duration::from_secs(3600);
    let restart_base = cx.duration(
        "timing.restart_backoff_base",
        timing.restart_backoff_base.as_ref(),
        second,
        hour,
        spec.restart_backoff.base,
    )?;
    let restart_max = cx.duration(
        "timing.restart_backoff_max",
        timing.restart_backoff_max.as_ref(),
        restart_base,
        day,
        spec.restart_backoff.max.max(restart_base),
    )?;
    spec.restart_backoff = Backoff {
        base: restart_base,
        max: restart_max,
    };
    let retry_base = cx.duration(
        "timing.retry_backoff_base",
        timing.retry_backoff_base.as_ref(),
        Duration::from_millis(100),
        hour,
        spec.retry_backoff.base,
    )?;
    let retry_max = cx.duration(
        "timing.retry_backoff_max",
        timing.retry_backoff_max.as_ref(),
        retry_base,
        day,
        spec.retry_backoff.max.max(retry_base),
    )?;
    spec.retry_backoff = Backoff {
        base: retry_base,
        max: retry_max,
    };
    spec.notice_grace = cx.duration(
        "timing.notice_grace",
        timing.notice_grace.as_ref(),
        minute,
        day,
        spec.notice_grace,
    )?;
    spec.unhealthy_grace = cx.duration(
        "timing.unhealthy_grace",
        timing.unhealthy_grace.as_ref(),
        Duration::from_secs(10),
        day,
        spec.unhealthy_grace,
    )?;
    spec.resync_interval = cx.duration(
        "timing.resync_interval",
        timing.resync_interval.as_ref(),
        Duration::from_secs(5),
        hour,
        spec.resync_interval,
    )?;
    spec.list_lag_grace = cx.duration(
        "timing.list_lag_grace",
        timing.list_lag_grace.as_ref(),
        Duration::ZERO,
        Duration::from_secs(600),
        spec.list_lag_grace,
    )?;
    Ok(spec)
}

fn explicit_candidates(
    cx: &Ctx<'_>,
    list: Vec<CandidateFile>,
    target: Target,
) -> Result<Vec<Candidate>, PoolError> {
    if list.is_empty() {
        return Err(cx.missing(
            "candidates",
            "list at least one [[candidates]] with size and region",
        ));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, c) in list.into_iter().enumerate() {
        let key = |k: &str| format!("candidates[{i}].{k}");
        if c.size.trim().is_empty() || !c.size.contains('_') {
            return Err(cx.invalid(
                &key("size"),
                &c.size,
                "is not an ARM VM size name",
                "write it as ARM does, e.g. Standard_D4s_v5",
            ));
        }
        if c.region.trim().is_empty() || c.region.contains(' ') {
            return Err(cx.invalid(
                &key("region"),
                &c.region,
                "is not an ARM region name",
                "write it as ARM does, e.g. eastus or westeurope",
            ));
        }
        let id = OfferingId::new(c.size.trim(), c.region.trim());
        if !seen.insert((id.size.to_ascii_lowercase(), id.region.to_ascii_lowercase())) {
            return Err(cx.invalid(
                &key("size"),
                format!("{} in {}", id.size, id.region),
                "is listed twice",
                "remove the duplicate",
            ));
        }
        let vcpus = match (c.vcpus, target) {
            (None, Target::Vcpus(_)) => {
                return Err(cx.missing(
                    &key("vcpus"),
                    "a vCPU target needs every candidate's vCPU count, e.g. vcpus = 4",
                ));
            }
            (None, Target::Vms(_)) => 1,
            (Some(v), _) => cx.count(&key("vcpus"), Some(v), 1, 1024, 1)?,
        };
        for (k, p) in [("spot_price", c.spot_price), ("payg_price", c.payg_price)] {
            if let Some(p) = p
                && !(p.is_finite() && p > 0.0)
            {
                return Err(cx.invalid(
                    &key(k),
                    p,
                    "must be a positive USD/hour price",
                    "write the price per hour, or leave it out",
                ));
            }
        }
        out.push(Candidate {
            offering: id,
            vcpus,
            spot_capable: c.spot.unwrap_or(true),
            spot_price: c.spot_price,
            payg_price: c.payg_price,
            band: None,
            rank: u32::try_from(i).unwrap_or(u32::MAX),
        });
    }
    Ok(out)
}

fn advised_candidates(
    cx: &Ctx<'_>,
    filters: &AdvisorFile,
    max_price: MaxPrice,
    rank: impl FnOnce(&Requirements) -> Advice,
) -> Result<Vec<Candidate>, PoolError> {
    let mut req = Requirements {
        min_vcpus: cx.count("advisor.min_vcpus", filters.min_vcpus, 1, 1024, 1)?,
        ..Requirements::default()
    };
    if let Some(m) = filters.min_memory_gib {
        if !(m.is_finite() && m >= 0.0) {
            return Err(cx.invalid(
                "advisor.min_memory_gib",
                m,
                "must be a non-negative number of GiB",
                "write e.g. 16",
            ));
        }
        req.min_memory_gib = m;
    }
    req.max_price = match (filters.max_price, max_price) {
        (Some(p), _) if !valid_price(p) => {
            return Err(cx.invalid(
                "advisor.max_price",
                p,
                "must be a positive USD/hour price with at most 5 decimals",
                "write e.g. 0.05",
            ));
        }
        (Some(p), _) => Some(p),
        (None, MaxPrice::UsdPerHour(p)) => Some(p),
        (None, MaxPrice::CappedAtPayAsYouGo) => None,
    };
    req.regions = filters.regions.clone().unwrap_or_default();
    req.os = match filters
        .os
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("linux") => Os::Linux,
        Some("windows") => Os::Windows,
        Some(other) => {
            return Err(cx.invalid(
                "advisor.os",
                other,
                "unknown operating system",
                "write \"linux\" or \"windows\"",
            ));
        }
    };
    let max_candidates = cx.count("advisor.max_candidates", filters.max_candidates, 1, 500, 20)?;
    let advice = rank(&req);
    if advice.ranked.is_empty() {
        let excluded = advice
            .excluded
            .iter()
            .map(|(reason, n)| format!("{n} {}", reason.describe()))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(PoolError::NoCandidates {
            path: cx.path.to_path_buf(),
            excluded: if excluded.is_empty() {
                "the advisor returned no offerings at all".to_string()
            } else {
                excluded
            },
        });
    }
    Ok(advice
        .ranked
        .iter()
        .take(max_candidates as usize)
        .enumerate()
        .map(|(i, r)| Candidate {
            offering: OfferingId::new(&r.offering.size, &r.offering.region),
            vcpus: r.offering.vcpus,
            spot_capable: r.offering.spot_capable,
            spot_price: r.offering.spot_price,
            payg_price: r.offering.payg_price,
            band: r.offering.band,
            rank: u32::try_from(i).unwrap_or(u32::MAX),
        })
        .collect())
}

/// The advisor's ranking over a fixed catalog, for callers that hold offerings already (tests,
/// the simulator, a cached catalog): `|req| advisor::rank(offerings, req)`.
pub fn rank_catalog(offerings: &[advisor::Offering]) -> impl FnOnce(&Requirements) -> Advice + '_ {
    move |req| advisor::rank(offerings, req)
}

#[cfg(test)]
mod tests;
