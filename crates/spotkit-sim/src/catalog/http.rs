//! The catalog facade: a [`CatalogSnapshot`] served under Azure's own paths and JSON shapes, so
//! the advisor's clients run against the simulator unchanged.
//!
//! | Azure API | path |
//! |---|---|
//! | Retail Prices | `GET /api/retail/prices?$filter=...&$skip=N&currencyCode='EUR'` |
//! | Resource SKUs | `GET /subscriptions/{sub}/providers/Microsoft.Compute/skus?api-version=2021-07-01[&$filter=location eq 'x']` |
//! | Resource Graph | `POST /providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01` (`SpotResources`) |
//! | Spot Placement Score | `POST /subscriptions/{sub}/providers/Microsoft.Compute/locations/{location}/placementScores/spot/generate?api-version=2025-06-05` |
//!
//! Start at [`catalog_router`]. The snapshot comes from a [`CatalogProvider`] called once per
//! request, so a model that moves with time is served as it is *now*. Shapes follow the official
//! examples in `fixtures/azure/` (the fidelity tests compare field names and JSON types).
//!
//! Modelled limits and behaviours: Retail Prices pages of [`CatalogHttpConfig::prices_page_size`]
//! with an absolute `NextPageLink` (null on the last page); SKU `nextLink` paging and a
//! `NotAvailableForSubscription` location restriction wherever a size is not offered; Resource
//! Graph `$top` / `$skipToken` paging, `resultTruncated` as a string and a per-client quota of
//! [`CatalogHttpConfig::graph_quota`] queries per window with the `x-ms-user-quota-*` headers
//! (then 429); placement requests of at most 8 regions and 5 sizes.

mod kql;
mod odata;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use spotkit_cloud::Clock;
use spotkit_core::Timestamp;
use spotkit_core::advisor::{EvictionBand, PlacementScore};

use super::{CatalogSnapshot, OfferingInfo, SizeInfo};

/// Produces the catalog as it is now; called once per request.
pub type CatalogProvider = Arc<dyn Fn() -> CatalogSnapshot + Send + Sync>;

/// Most regions and sizes one placement-score request may name (FACTS.md §4).
pub const PLACEMENT_MAX_REGIONS: usize = 8;
/// See [`PLACEMENT_MAX_REGIONS`].
pub const PLACEMENT_MAX_SIZES: usize = 5;

/// Paging and quota knobs of the facade.
#[derive(Clone)]
pub struct CatalogHttpConfig {
    /// Items per Retail Prices page (the real API has used 100 and 1,000).
    pub prices_page_size: usize,
    /// SKUs per Resource SKUs page.
    pub skus_page_size: usize,
    /// Rows per Resource Graph page when `$top` is absent (`$top` may ask for fewer, up to 1000).
    pub graph_page_size: usize,
    /// Resource Graph queries allowed per [`Self::graph_quota_window`].
    pub graph_quota: u32,
    /// The quota window.
    pub graph_quota_window: Duration,
    /// Time for the quota window.
    pub clock: Arc<dyn Clock>,
}

impl CatalogHttpConfig {
    /// Defaults: 100 prices, 1,000 SKUs and rows per page, 15 graph queries per 5 s.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            prices_page_size: 100,
            skus_page_size: 1000,
            graph_page_size: 1000,
            graph_quota: 15,
            graph_quota_window: Duration::from_secs(5),
            clock,
        }
    }
}

#[derive(Clone)]
struct Facade {
    provider: CatalogProvider,
    config: CatalogHttpConfig,
    graph_window: Arc<Mutex<(Timestamp, u32)>>,
}

/// The facade's routes, with default paging and quotas and the system clock. Mount it with
/// `Router::merge` beside other facades (its paths do not overlap the IMDS or compute ones).
pub fn catalog_router(provider: CatalogProvider) -> Router {
    catalog_router_with(
        provider,
        CatalogHttpConfig::new(Arc::new(spotkit_cloud::SystemClock)),
    )
}

/// The facade's routes with explicit paging, quotas and clock.
pub fn catalog_router_with(provider: CatalogProvider, config: CatalogHttpConfig) -> Router {
    let start = config.clock.now();
    Router::new()
        .route("/api/retail/prices", get(retail_prices))
        .route(
            "/subscriptions/{sub}/providers/Microsoft.Compute/skus",
            get(resource_skus),
        )
        .route(
            "/providers/Microsoft.ResourceGraph/resources",
            post(resource_graph),
        )
        .route(
            "/subscriptions/{sub}/providers/Microsoft.Compute/locations/{location}/placementScores/spot/generate",
            post(placement_scores),
        )
        .with_state(Facade {
            provider,
            config,
            graph_window: Arc::new(Mutex::new((start, 0))),
        })
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// `{"error": {"code", "message"}}`, ARM's error body.
fn arm_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message.into()}})),
    )
        .into_response()
}

/// Decoded query pairs, in order.
fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len()
                && hex(bytes[i + 1]).is_some()
                && hex(bytes[i + 2]).is_some() =>
            {
                out.push(hex(bytes[i + 1]).unwrap_or(0) * 16 + hex(bytes[i + 2]).unwrap_or(0));
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~$".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// `2026-12-02T04:00:00Z` for a timestamp (whole seconds, UTC).
#[must_use]
pub fn rfc3339(at: Timestamp) -> String {
    let secs = at.unix_millis().div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A stable GUID-shaped id from a name (meter ids must not change between requests).
fn stable_guid(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut g: u64 = 0x8422_2325_cbf2_9ce4;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        g = (g ^ u64::from(b))
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(7);
    }
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xffff,
        g >> 48,
        g & 0xffff_ffff_ffff
    )
}

fn size_info<'a>(snap: &'a CatalogSnapshot, size: &str) -> Option<&'a SizeInfo> {
    snap.sizes
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(size))
}

fn offering<'a>(snap: &'a CatalogSnapshot, size: &str, region: &str) -> Option<&'a OfferingInfo> {
    snap.offerings
        .iter()
        .find(|o| o.size.eq_ignore_ascii_case(size) && o.region.eq_ignore_ascii_case(region))
}

// ---------------------------------------------------------------------------------------------
// Retail Prices

/// Currencies the facade converts to, at fixed reference rates ("for your reference" only on
/// the real API too).
const CURRENCIES: &[(&str, f64)] = &[
    ("USD", 1.0),
    ("EUR", 0.92),
    ("GBP", 0.79),
    ("JPY", 150.0),
    ("CAD", 1.36),
    ("AUD", 1.52),
];

/// `Standard_D4s_v5` -> `D4s v5`, the meter's spelling.
fn meter_name(size: &str) -> String {
    size.strip_prefix("Standard_")
        .or_else(|| size.strip_prefix("Basic_"))
        .unwrap_or(size)
        .replace('_', " ")
}

/// `standardDSv5Family` -> `DSv5`.
fn series(family: &str) -> String {
    let f = family.strip_prefix("standard").unwrap_or(family);
    f.strip_suffix("Family").unwrap_or(f).replace('_', "-")
}

fn price_item(
    snap: &CatalogSnapshot,
    o: &OfferingInfo,
    windows: bool,
    spot: bool,
    usd: f64,
    (currency, rate): (&str, f64),
) -> Value {
    let size = size_info(snap, &o.size);
    let family = size.map_or_else(|| "standard".to_string(), |s| s.family.clone());
    let location = snap
        .regions
        .iter()
        .find(|r| r.name == o.region)
        .map_or_else(|| o.region.clone(), |r| r.display_name.clone());
    let meter = if spot {
        format!("{} Spot", meter_name(&o.size))
    } else {
        meter_name(&o.size)
    };
    let product = format!(
        "Virtual Machines {} Series{}",
        series(&family),
        if windows { " Windows" } else { "" }
    );
    let effective = if spot && !windows {
        o.spot_price_history.last().map_or(snap.at, |(t, _)| *t)
    } else {
        // Pay-as-you-go prices change rarely; the snapshot's first day of the month stands in.
        Timestamp::from_unix_secs(snap.at.unix_millis() / 1000 / 86_400 * 86_400)
    };
    let product_id = format!(
        "DZH318Z0{}",
        &stable_guid(&product)[..4].to_ascii_uppercase()
    );
    let price = (usd * rate * 1e6).round() / 1e6;
    json!({
        "currencyCode": currency,
        "tierMinimumUnits": 0.0,
        "retailPrice": price,
        "unitPrice": price,
        "armRegionName": o.region,
        "location": location,
        "effectiveStartDate": rfc3339(effective),
        "meterId": stable_guid(&format!("{}/{}/{meter}/{product}", o.size, o.region)),
        "meterName": meter,
        "productId": product_id,
        "skuId": format!("{product_id}/{}", &stable_guid(&meter)[..4].to_ascii_uppercase()),
        "productName": product,
        "skuName": meter,
        "serviceName": "Virtual Machines",
        "serviceId": "DZH313Z7MMC8",
        "serviceFamily": "Compute",
        "unitOfMeasure": "1 Hour",
        "type": "Consumption",
        "isPrimaryMeterRegion": true,
        "armSkuName": o.size,
    })
}

fn all_price_items(snap: &CatalogSnapshot, currency: (&str, f64)) -> Vec<Value> {
    let mut items = Vec::new();
    for o in &snap.offerings {
        items.push(price_item(snap, o, false, false, o.payg_linux, currency));
        if let Some(p) = o.spot_linux {
            items.push(price_item(snap, o, false, true, p, currency));
        }
        if let Some(p) = o.payg_windows {
            items.push(price_item(snap, o, true, false, p, currency));
        }
        if let Some(p) = o.spot_windows {
            items.push(price_item(snap, o, true, true, p, currency));
        }
    }
    items
}

/// The item field an OData filter key names; `priceType` filters the `type` field.
fn price_field(item: &Value, key: &str) -> Option<String> {
    let field = if key.eq_ignore_ascii_case("priceType") {
        "type"
    } else {
        key
    };
    item.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(field))
        .and_then(|(_, v)| match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
}

const PRICE_FILTER_FIELDS: &[&str] = &[
    "armRegionName",
    "location",
    "meterId",
    "meterName",
    "productid",
    "skuId",
    "productName",
    "skuName",
    "serviceName",
    "serviceId",
    "serviceFamily",
    "priceType",
    "armSkuName",
];

fn prices_error(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"Error": {"Code": "BadRequest", "Message": message}})),
    )
        .into_response()
}

fn filter_fields(f: &odata::Filter, out: &mut Vec<String>) {
    match f {
        odata::Filter::Eq(k, _) | odata::Filter::Contains(k, _) => out.push(k.clone()),
        odata::Filter::And(a, b) | odata::Filter::Or(a, b) => {
            filter_fields(a, out);
            filter_fields(b, out);
        }
    }
}

async fn retail_prices(
    State(f): State<Facade>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let pairs = query_pairs(raw.as_deref());
    let filter = match param(&pairs, "$filter") {
        None => None,
        Some(text) => match odata::parse(text) {
            Ok(filter) => {
                let mut fields = Vec::new();
                filter_fields(&filter, &mut fields);
                if let Some(bad) = fields.iter().find(|k| {
                    !PRICE_FILTER_FIELDS
                        .iter()
                        .any(|f| f.eq_ignore_ascii_case(k))
                }) {
                    return prices_error(format!(
                        "Invalid $filter: {bad} is not a filterable field ({})",
                        PRICE_FILTER_FIELDS.join(", ")
                    ));
                }
                Some(filter)
            }
            Err(e) => return prices_error(format!("Invalid $filter {text:?}: {e}")),
        },
    };
    let code = param(&pairs, "currencyCode")
        .map(|c| {
            c.trim_matches(|ch| ch == '\'' || ch == '"')
                .to_ascii_uppercase()
        })
        .unwrap_or_else(|| "USD".to_string());
    let Some(&(currency, rate)) = CURRENCIES.iter().find(|(c, _)| *c == code) else {
        return prices_error(format!(
            "currencyCode {code} is not supported by the simulator ({})",
            CURRENCIES
                .iter()
                .map(|(c, _)| *c)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let skip = match param(&pairs, "$skip").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return prices_error("$skip must be a non-negative integer".to_string()),
    };
    let snap = (f.provider)();
    let matching: Vec<Value> = all_price_items(&snap, (currency, rate))
        .into_iter()
        .filter(|item| {
            filter
                .as_ref()
                .is_none_or(|flt| flt.matches(&|k: &str| price_field(item, k)))
        })
        .collect();
    let page_size = f.config.prices_page_size.max(1);
    let page: Vec<Value> = matching
        .iter()
        .skip(skip)
        .take(page_size)
        .cloned()
        .collect();
    let next = if skip + page.len() < matching.len() {
        let mut next_pairs: Vec<(String, String)> =
            pairs.into_iter().filter(|(k, _)| k != "$skip").collect();
        next_pairs.push(("$skip".to_string(), (skip + page.len()).to_string()));
        Value::String(format!(
            "{}/api/retail/prices?{}",
            base_url(&headers),
            encode_pairs(&next_pairs)
        ))
    } else {
        Value::Null
    };
    axum::Json(json!({
        "BillingCurrency": currency,
        "CustomerEntityId": "Default",
        "CustomerEntityType": "Retail",
        "Items": page,
        "NextPageLink": next,
        "Count": page.len(),
    }))
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// Resource SKUs

fn capability(name: &str, value: impl ToString) -> Value {
    json!({"name": name, "value": value.to_string()})
}

fn sku_entry(snap: &CatalogSnapshot, size: &SizeInfo, region: &str) -> Value {
    let offered = offering(snap, &size.name, region).is_some();
    let zones: Vec<String> = snap
        .regions
        .iter()
        .find(|r| r.name == region)
        .map(|r| r.zones.clone())
        .unwrap_or_default();
    // Azure writes `0.75`, `16`: the shortest decimal, as a string.
    let memory = format!("{}", size.memory_gib);
    let restrictions = if offered {
        json!([])
    } else {
        // A size the scenario does not sell in this region is listed, restricted: what ARM
        // does for sizes a subscription may not deploy there.
        json!([{
            "type": "Location",
            "values": [region],
            "restrictionInfo": {"locations": [region], "zones": zones},
            "reasonCode": "NotAvailableForSubscription",
        }])
    };
    json!({
        "resourceType": "virtualMachines",
        "locations": [region],
        "capabilities": [
            capability("MaxResourceVolumeMB", u64::from(size.vcpus) * 8192),
            capability("OSVhdSizeMB", 1_047_552),
            capability("vCPUs", size.vcpus),
            capability("HyperVGenerations", "V1,V2"),
            capability("MemoryGB", memory),
            capability("MaxDataDiskCount", (size.vcpus * 2).max(2)),
            capability("LowPriorityCapable", if size.spot_capable { "True" } else { "False" }),
            capability("PremiumIO", "True"),
            capability("vCPUsAvailable", size.vcpus),
            capability("ACUs", 195),
            capability("vCPUsPerCore", if size.vcpus >= 2 { 2 } else { 1 }),
            capability("EphemeralOSDiskSupported", "True"),
            capability("AcceleratedNetworkingEnabled", "True"),
            capability("RdmaEnabled", "False"),
            capability("MaxNetworkInterfaces", (size.vcpus / 2).clamp(2, 8)),
        ],
        "locationInfo": [{"location": region, "zones": zones}],
        "name": size.name,
        "tier": "Standard",
        "size": size.name.strip_prefix("Standard_").unwrap_or(&size.name),
        "family": size.family,
        "restrictions": restrictions,
    })
}

async fn resource_skus(
    State(f): State<Facade>,
    Path(_sub): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let pairs = query_pairs(raw.as_deref());
    if param(&pairs, "api-version").is_none() {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    }
    let location = match param(&pairs, "$filter") {
        None => None,
        Some(text) => match odata::parse(text) {
            Ok(odata::Filter::Eq(k, v)) if k.eq_ignore_ascii_case("location") => Some(v),
            _ => {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidFilter",
                    format!("$filter {text:?}: only `location eq '<region>'` is supported"),
                );
            }
        },
    };
    let skip = param(&pairs, "$skiptoken")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(0);
    let snap = (f.provider)();
    let mut entries = Vec::new();
    for size in &snap.sizes {
        for region in &snap.regions {
            if location
                .as_deref()
                .is_some_and(|l| !l.eq_ignore_ascii_case(&region.name))
            {
                continue;
            }
            entries.push(sku_entry(&snap, size, &region.name));
        }
    }
    let page_size = f.config.skus_page_size.max(1);
    let page: Vec<Value> = entries.iter().skip(skip).take(page_size).cloned().collect();
    let next = if skip + page.len() < entries.len() {
        let mut next_pairs: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken"))
            .collect();
        next_pairs.push(("$skiptoken".into(), (skip + page.len()).to_string()));
        Value::String(format!(
            "{}/subscriptions/{_sub}/providers/Microsoft.Compute/skus?{}",
            base_url(&headers),
            encode_pairs(&next_pairs)
        ))
    } else {
        Value::Null
    };
    axum::Json(json!({"value": page, "nextLink": next})).into_response()
}

// ---------------------------------------------------------------------------------------------
// Resource Graph

const EVICTION_TYPE: &str = "microsoft.compute/skuspotevictionrate/location";
const PRICE_HISTORY_TYPE: &str = "microsoft.compute/skuspotpricehistory/ostype/location";

/// How the simulator spells a band in `properties.evictionRate`.
fn band_text(b: EvictionBand) -> &'static str {
    match b {
        EvictionBand::ZeroToFive => "0-5",
        EvictionBand::FiveToTen => "5-10",
        EvictionBand::TenToFifteen => "10-15",
        EvictionBand::FifteenToTwenty => "15-20",
        EvictionBand::TwentyPlus => "20+",
    }
}

fn spot_resources(snap: &CatalogSnapshot) -> Vec<Value> {
    let mut rows = Vec::new();
    let ninety_days_ago = snap.at.minus(Duration::from_secs(90 * 86_400));
    for o in &snap.offerings {
        let sku_lower = o.size.to_ascii_lowercase();
        if let Some(band) = o.band {
            rows.push(json!({
                "id": format!("/providers/Microsoft.Compute/skuSpotEvictionRate/{sku_lower}/location/{}", o.region),
                "name": sku_lower,
                "type": EVICTION_TYPE,
                "location": o.region,
                "sku": {"name": sku_lower},
                "properties": {"evictionRate": band_text(band)},
            }));
        }
        // Newest first, the last 90 days (plus the price in force at their start).
        let mut linux: Vec<Value> = Vec::new();
        for (i, (t, p)) in o.spot_price_history.iter().enumerate().rev() {
            let next_starts_in_window = o
                .spot_price_history
                .get(i + 1)
                .is_none_or(|(nt, _)| *nt > ninety_days_ago);
            if *t >= ninety_days_ago || next_starts_in_window {
                linux.push(json!({"priceUSD": p, "effectiveDate": rfc3339(*t)}));
            }
        }
        if linux.is_empty()
            && let Some(p) = o.spot_linux
        {
            linux.push(json!({"priceUSD": p, "effectiveDate": rfc3339(snap.at)}));
        }
        let mut push_history = |os: &str, prices: Vec<Value>| {
            if prices.is_empty() {
                return;
            }
            rows.push(json!({
                "id": format!("/providers/Microsoft.Compute/skuSpotPriceHistory/{sku_lower}/osType/{os}/location/{}", o.region),
                "name": sku_lower,
                "type": PRICE_HISTORY_TYPE,
                "location": o.region,
                "sku": {"name": sku_lower},
                "properties": {"osType": os, "spotPrices": prices},
            }));
        };
        push_history("Linux", linux);
        // Only the current Windows spot price is modelled.
        if let Some(p) = o.spot_windows {
            push_history(
                "Windows",
                vec![json!({"priceUSD": p, "effectiveDate": rfc3339(snap.at)})],
            );
        }
    }
    rows
}

fn graph_error(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": {
            "code": "BadRequest",
            "message": "Please provide below info when asking for support: timestamp, correlationId.",
            "details": [{"code": "InvalidQuery", "message": message}],
        }})),
    )
        .into_response()
}

/// Charges one query to the window; `Err(wait)` when the quota is spent.
fn charge_quota(f: &Facade) -> Result<(u32, Duration), Duration> {
    let now = f.config.clock.now();
    let mut w = f
        .graph_window
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if now.since(w.0) >= f.config.graph_quota_window || now < w.0 {
        *w = (now, 0);
    }
    let resets_after = f.config.graph_quota_window.saturating_sub(now.since(w.0));
    if w.1 >= f.config.graph_quota {
        return Err(resets_after);
    }
    w.1 += 1;
    Ok((f.config.graph_quota - w.1, resets_after))
}

fn hms(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    format!("{:02}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

fn quota_headers(resp: &mut Response, remaining: u32, resets_after: Duration) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&remaining.to_string()) {
        h.insert("x-ms-user-quota-remaining", v);
    }
    if let Ok(v) = HeaderValue::from_str(&hms(resets_after)) {
        h.insert("x-ms-user-quota-resets-after", v);
    }
}

async fn resource_graph(
    State(f): State<Facade>,
    RawQuery(raw): RawQuery,
    body: axum::body::Bytes,
) -> Response {
    let pairs = query_pairs(raw.as_deref());
    if param(&pairs, "api-version").is_none() {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    }
    let (remaining, resets_after) = match charge_quota(&f) {
        Ok(q) => q,
        Err(wait) => {
            let mut resp = arm_error(
                StatusCode::TOO_MANY_REQUESTS,
                "RateLimiting",
                "Please try again later: the user quota of Resource Graph queries is exhausted.",
            );
            quota_headers(&mut resp, 0, wait);
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
            return resp;
        }
    };
    let mut resp = graph_answer(&f, &body);
    quota_headers(&mut resp, remaining, resets_after);
    resp
}

fn graph_answer(f: &Facade, body: &[u8]) -> Response {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return graph_error(format!("the request body is not JSON: {e}")),
    };
    let Some(text) = request.get("query").and_then(Value::as_str) else {
        return graph_error("the request body has no `query`".to_string());
    };
    let query = match kql::parse(text) {
        Ok(q) => q,
        Err(e) => return graph_error(format!("Query is invalid: {e}")),
    };
    if !query.table.eq_ignore_ascii_case("SpotResources") {
        return graph_error(format!(
            "the simulator's Resource Graph has only the SpotResources table, not {}",
            query.table
        ));
    }
    let options = request.get("options").cloned().unwrap_or(Value::Null);
    if options
        .get("resultFormat")
        .and_then(Value::as_str)
        .is_some_and(|f| !f.eq_ignore_ascii_case("objectArray"))
    {
        return graph_error(
            "the simulator answers resultFormat objectArray only; set options.resultFormat"
                .to_string(),
        );
    }
    let top = options
        .get("$top")
        .and_then(Value::as_u64)
        .map_or(f.config.graph_page_size, |t| {
            usize::try_from(t.clamp(1, 1000)).unwrap_or(1000)
        })
        .max(1);
    let skip_from_token = match options.get("$skipToken").and_then(Value::as_str) {
        None => 0,
        Some(token) => match token
            .strip_prefix("spotkit-sim:")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => {
                return graph_error(format!(
                    "$skipToken {token:?} is not one this server issued"
                ));
            }
        },
    };
    let skip = skip_from_token
        + options
            .get("$skip")
            .and_then(Value::as_u64)
            .and_then(|s| usize::try_from(s).ok())
            .unwrap_or(0);
    let snap = (f.provider)();
    let rows = query.run(spot_resources(&snap));
    let page: Vec<Value> = rows.iter().skip(skip).take(top).cloned().collect();
    let mut answer = json!({
        "totalRecords": rows.len(),
        "count": page.len(),
        "resultTruncated": "false",
        "facets": [],
        "data": page,
    });
    if skip + page.len() < rows.len()
        && let Some(o) = answer.as_object_mut()
    {
        o.insert(
            "$skipToken".to_string(),
            Value::String(format!("spotkit-sim:{}", skip + page.len())),
        );
    }
    axum::Json(answer).into_response()
}

// ---------------------------------------------------------------------------------------------
// Spot Placement Score

/// The score for `count` VMs where `capacity` are obtainable: the model's own score, lowered
/// when the count eats into the capacity (more than half: Medium; more than all: Low).
fn score_for(model: PlacementScore, capacity: u32, count: u32) -> PlacementScore {
    let by_capacity = if u64::from(count) * 2 <= u64::from(capacity) {
        PlacementScore::High
    } else if count <= capacity {
        PlacementScore::Medium
    } else {
        PlacementScore::Low
    };
    model.min(by_capacity)
}

async fn placement_scores(
    State(f): State<Facade>,
    Path((_sub, _loc)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    body: axum::body::Bytes,
) -> Response {
    let pairs = query_pairs(raw.as_deref());
    if param(&pairs, "api-version").is_none() {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    }
    let input: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContent",
                format!("The request content is not valid JSON: {e}"),
            );
        }
    };
    let strings = |v: Option<&Value>| -> Option<Vec<String>> {
        v?.as_array()?
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    let Some(regions) = strings(input.get("desiredLocations")) else {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "desiredLocations must be an array of region names",
        );
    };
    let Some(sizes) = input
        .get("desiredSizes")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .map(|s| s.get("sku").and_then(Value::as_str).map(str::to_string))
                .collect::<Option<Vec<String>>>()
        })
    else {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "desiredSizes must be an array of {\"sku\": \"<size>\"}",
        );
    };
    let count = input.get("desiredCount").and_then(|c| {
        c.as_u64()
            .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
    });
    let Some(count) = count.and_then(|c| u32::try_from(c).ok()).filter(|c| *c > 0) else {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "desiredCount must be a positive integer",
        );
    };
    let zonal = input
        .get("availabilityZones")
        .and_then(|z| z.as_bool().or_else(|| z.as_str().map(|s| s == "true")))
        .unwrap_or(false);
    if regions.is_empty() || regions.len() > PLACEMENT_MAX_REGIONS {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            format!(
                "desiredLocations has {} regions; between 1 and {PLACEMENT_MAX_REGIONS} are allowed per request",
                regions.len()
            ),
        );
    }
    if sizes.is_empty() || sizes.len() > PLACEMENT_MAX_SIZES {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            format!(
                "desiredSizes has {} sizes; between 1 and {PLACEMENT_MAX_SIZES} are allowed per request",
                sizes.len()
            ),
        );
    }
    let snap = (f.provider)();
    let mut scores = Vec::new();
    for size in &sizes {
        for region in &regions {
            let zones: Vec<String> = if zonal {
                snap.regions
                    .iter()
                    .find(|r| r.name.eq_ignore_ascii_case(region))
                    .map(|r| r.zones.clone())
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            let info = size_info(&snap, size);
            let o = offering(&snap, size, region);
            let quota_ok = quota_available(&snap, region, info, count);
            let score_of = |capacity: u32| match (info, o) {
                (None, _) => "DataNotFoundOrStale".to_string(),
                (Some(s), Some(o)) if s.spot_capable && o.spot_linux.is_some() => {
                    score_for(o.placement, capacity, count).as_str().to_string()
                }
                _ => "RestrictedSkuNotAvailable".to_string(),
            };
            let capacity = o.map_or(0, |o| o.spot_capacity_vms);
            if zones.is_empty() {
                scores.push(json!({
                    "sku": size, "region": region,
                    "score": score_of(capacity), "isQuotaAvailable": quota_ok,
                }));
            } else {
                let per_zone = capacity.div_ceil(u32::try_from(zones.len()).unwrap_or(1));
                for z in &zones {
                    scores.push(json!({
                        "sku": size, "region": region, "availabilityZone": z,
                        "score": score_of(per_zone), "isQuotaAvailable": quota_ok,
                    }));
                }
            }
        }
    }
    axum::Json(json!({
        "desiredLocations": regions,
        "desiredSizes": sizes.iter().map(|s| json!({"sku": s})).collect::<Vec<_>>(),
        "desiredCount": count,
        "availabilityZones": zonal,
        "placementScores": scores,
    }))
    .into_response()
}

/// Whether the region's spot quota (`LowPriorityCores`) has room for `count` VMs of the size;
/// without a quota entry the scenario sets no limit.
fn quota_available(
    snap: &CatalogSnapshot,
    region: &str,
    size: Option<&SizeInfo>,
    count: u32,
) -> bool {
    let need = u64::from(size.map_or(0, |s| s.vcpus)) * u64::from(count);
    let quotas: BTreeMap<&str, u64> = snap
        .quotas
        .iter()
        .filter(|q| q.region.eq_ignore_ascii_case(region))
        .map(|q| {
            (
                q.family.as_str(),
                u64::from(q.limit_vcpus.saturating_sub(q.used_vcpus)),
            )
        })
        .collect();
    quotas
        .get("LowPriorityCores")
        .is_none_or(|free| *free >= need)
}

#[cfg(test)]
mod tests;
