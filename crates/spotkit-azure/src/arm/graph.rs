//! Resource Graph's `SpotResources` table: spot eviction-rate bands and spot price history
//! (FACTS.md section 3), with the official KQL queries.
//!
//! `POST /providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01`, always with
//! `options.resultFormat = "objectArray"` (the documented default differs between pages), paged
//! by resending the same query with `options.$skipToken`. Resource Graph has its own per-user
//! quota (`x-ms-user-quota-remaining`, `x-ms-user-quota-resets-after` as `hh:mm:ss`): when it
//! reaches zero the next page waits for the reset instead of running into a 429.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use spotkit_core::advisor::EvictionBand;

use super::client::ArmClient;
use super::error::ArmError;
use super::throttle::OperationClass;

/// The Resource Graph API version.
pub const RESOURCE_GRAPH_API_VERSION: &str = "2024-04-01";

/// Subscriptions per query (the guidance is to batch scopes below 300).
const SUBSCRIPTIONS_PER_QUERY: usize = 250;

/// Pages after which paging stops with an error.
const MAX_PAGES: usize = 1_000;

/// One eviction-rate band.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvictionRateRow {
    /// Size, as Resource Graph spells it (lowercase, e.g. `standard_d2s_v4`).
    pub sku: String,
    /// Region.
    pub location: String,
    /// The band.
    pub band: EvictionBand,
}

/// The latest spot price of a size in a region for an OS.
#[derive(Clone, Debug, PartialEq)]
pub struct SpotPriceRow {
    /// Size, as Resource Graph spells it.
    pub sku: String,
    /// Region.
    pub location: String,
    /// `linux` or `windows` (as reported).
    pub os: String,
    /// USD per hour.
    pub latest_usd: f64,
}

/// A KQL string literal: single quotes, with backslash and quote escaped.
#[must_use]
pub fn kql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn kql_list(values: &[String]) -> String {
    values
        .iter()
        .map(|v| kql_string(&v.to_ascii_lowercase()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The official eviction-rate query (FACTS.md section 3) for these sizes and regions.
#[must_use]
pub fn eviction_rate_query(sizes: &[String], regions: &[String]) -> String {
    format!(
        "SpotResources\n\
         | where type =~ 'microsoft.compute/skuspotevictionrate/location'\n\
         | where sku.name in~ ({})\n\
         | where location in~ ({})\n\
         | project skuName = tostring(sku.name), location, spotEvictionRate = tostring(properties.evictionRate)\n\
         | order by skuName asc, location asc",
        kql_list(sizes),
        kql_list(regions)
    )
}

/// The official price-history query (FACTS.md section 3) for these sizes, regions and OS.
#[must_use]
pub fn spot_price_query(sizes: &[String], regions: &[String], os: &str) -> String {
    format!(
        "SpotResources\n\
         | where type =~ 'microsoft.compute/skuspotpricehistory/ostype/location'\n\
         | where sku.name in~ ({})\n\
         | where properties.osType =~ {}\n\
         | where location in~ ({})\n\
         | project skuName = tostring(sku.name), osType = tostring(properties.osType), location, latestSpotPriceUSD = todouble(properties.spotPrices[0].priceUSD)\n\
         | order by latestSpotPriceUSD asc",
        kql_list(sizes),
        kql_string(&os.to_ascii_lowercase()),
        kql_list(regions)
    )
}

/// `QueryRequest`.
#[derive(Clone, Debug, Serialize)]
pub struct QueryRequest<'a> {
    /// Scopes.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub subscriptions: &'a [String],
    /// KQL.
    pub query: &'a str,
    /// Options.
    pub options: QueryRequestOptions,
}

/// `QueryRequestOptions`.
#[derive(Clone, Debug, Serialize)]
pub struct QueryRequestOptions {
    /// Always `objectArray`.
    #[serde(rename = "resultFormat")]
    pub result_format: &'static str,
    /// The page to fetch.
    #[serde(rename = "$skipToken", skip_serializing_if = "Option::is_none")]
    pub skip_token: Option<String>,
}

/// `QueryResponse` (tolerant: `resultTruncated` is a string in the spec, a bool is accepted).
#[derive(Clone, Debug, Deserialize)]
pub struct QueryResponse {
    /// Total rows.
    #[serde(rename = "totalRecords", default)]
    pub total_records: i64,
    /// Rows in this page.
    #[serde(default)]
    pub count: i64,
    /// `"true"` / `"false"`.
    #[serde(rename = "resultTruncated", default)]
    pub result_truncated: serde_json::Value,
    /// The next page's token.
    #[serde(rename = "$skipToken", default)]
    pub skip_token: Option<String>,
    /// Rows (`objectArray`).
    #[serde(default)]
    pub data: serde_json::Value,
}

impl QueryResponse {
    /// Whether the service cut the result short.
    #[must_use]
    pub fn truncated(&self) -> bool {
        match &self.result_truncated {
            serde_json::Value::Bool(b) => *b,
            serde_json::Value::String(s) => s.eq_ignore_ascii_case("true"),
            _ => false,
        }
    }
}

/// `hh:mm:ss` (also `d.hh:mm:ss`) into a duration.
#[must_use]
pub fn parse_quota_reset(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (days, rest) = match s.split_once('.') {
        Some((d, rest)) if !d.contains(':') => (d.parse::<u64>().ok()?, rest),
        _ => (0, s),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let [h, m, sec] = parts.as_slice() else {
        return None;
    };
    let secs: f64 = sec.parse().ok()?;
    let total = days * 86_400 + h.parse::<u64>().ok()? * 3_600 + m.parse::<u64>().ok()? * 60;
    Some(Duration::from_secs(total) + Duration::from_secs_f64(secs.max(0.0)))
}

/// How long to wait before the next query according to the quota headers.
fn quota_wait(headers: &HeaderMap) -> Option<Duration> {
    let text = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let remaining: i64 = text("x-ms-user-quota-remaining")?.trim().parse().ok()?;
    if remaining > 0 {
        return None;
    }
    Some(
        text("x-ms-user-quota-resets-after")
            .and_then(parse_quota_reset)
            .unwrap_or(Duration::from_secs(5)),
    )
}

/// Runs `query` over `subscriptions` (batched), all pages; the rows as JSON objects.
///
/// # Errors
/// [`ArmError`] from the requests, or [`ArmError::Malformed`] when `data` is not an array.
pub async fn query_resources(
    client: &ArmClient,
    subscriptions: &[String],
    query: &str,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, ArmError> {
    let path = format!(
        "/providers/Microsoft.ResourceGraph/resources?api-version={RESOURCE_GRAPH_API_VERSION}"
    );
    let batches: Vec<&[String]> = if subscriptions.is_empty() {
        vec![&[]]
    } else {
        subscriptions.chunks(SUBSCRIPTIONS_PER_QUERY).collect()
    };
    let mut rows = Vec::new();
    let mut wait_before_next: Option<Duration> = None;
    for batch in batches {
        let mut skip_token = None;
        for page in 0.. {
            if page >= MAX_PAGES {
                return Err(ArmError::Malformed {
                    what: format!("Resource Graph paging did not end after {MAX_PAGES} pages"),
                    body_excerpt: String::new(),
                });
            }
            if let Some(wait) = wait_before_next.take() {
                tracing::debug!(
                    ?wait,
                    "Resource Graph quota exhausted; waiting for the reset"
                );
                client.sleep(wait).await;
            }
            let body = QueryRequest {
                subscriptions: batch,
                query,
                options: QueryRequestOptions {
                    result_format: "objectArray",
                    skip_token: skip_token.clone(),
                },
            };
            let response = client
                .post_json::<_, QueryResponse>(&path, &body, OperationClass::ArmQuery)
                .await?;
            wait_before_next = quota_wait(&response.headers);
            let answer = response.body;
            if answer.truncated() && answer.skip_token.is_none() {
                tracing::warn!(
                    total = answer.total_records,
                    count = answer.count,
                    "Resource Graph truncated the result without a skip token"
                );
            }
            match answer.data {
                serde_json::Value::Array(items) => {
                    rows.extend(items.into_iter().filter_map(|v| match v {
                        serde_json::Value::Object(m) => Some(m),
                        _ => None,
                    }));
                }
                serde_json::Value::Null => {}
                other => {
                    return Err(ArmError::Malformed {
                        what: "Resource Graph data is not an object array".to_string(),
                        body_excerpt: other.to_string().chars().take(300).collect(),
                    });
                }
            }
            match answer.skip_token.filter(|t| !t.is_empty()) {
                Some(t) if Some(&t) != skip_token.as_ref() => skip_token = Some(t),
                _ => break,
            }
        }
    }
    Ok(rows)
}

fn field<'a>(row: &'a serde_json::Map<String, serde_json::Value>, name: &str) -> Option<&'a str> {
    row.get(name).and_then(serde_json::Value::as_str)
}

/// Eviction-rate bands of `sizes` in `regions`. Rows whose band does not parse are skipped with
/// a warning; duplicates (one per subscription batch) are dropped.
///
/// # Errors
/// [`ArmError`] from the queries.
pub async fn spot_eviction_rates(
    client: &ArmClient,
    subscriptions: &[String],
    sizes: &[String],
    regions: &[String],
) -> Result<Vec<EvictionRateRow>, ArmError> {
    if sizes.is_empty() || regions.is_empty() {
        return Ok(Vec::new());
    }
    let rows = query_resources(client, subscriptions, &eviction_rate_query(sizes, regions)).await?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for row in &rows {
        let (Some(sku), Some(location)) = (field(row, "skuName"), field(row, "location")) else {
            tracing::warn!(
                ?row,
                "eviction-rate row without skuName or location; skipped"
            );
            continue;
        };
        let raw = field(row, "spotEvictionRate").unwrap_or("");
        let Some(band) = EvictionBand::parse(raw) else {
            tracing::warn!(
                sku,
                location,
                band = raw,
                "unparseable eviction-rate band; skipped"
            );
            continue;
        };
        if seen.insert((sku.to_ascii_lowercase(), location.to_ascii_lowercase())) {
            out.push(EvictionRateRow {
                sku: sku.to_string(),
                location: location.to_string(),
                band,
            });
        }
    }
    Ok(out)
}

/// Latest spot prices of `sizes` in `regions` for `os` (`linux` or `windows`). Rows without a
/// price are skipped with a warning; duplicates are dropped.
///
/// # Errors
/// [`ArmError`] from the queries.
pub async fn spot_price_history(
    client: &ArmClient,
    subscriptions: &[String],
    sizes: &[String],
    regions: &[String],
    os: &str,
) -> Result<Vec<SpotPriceRow>, ArmError> {
    if sizes.is_empty() || regions.is_empty() {
        return Ok(Vec::new());
    }
    let rows =
        query_resources(client, subscriptions, &spot_price_query(sizes, regions, os)).await?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for row in &rows {
        let (Some(sku), Some(location)) = (field(row, "skuName"), field(row, "location")) else {
            tracing::warn!(?row, "spot price row without skuName or location; skipped");
            continue;
        };
        let price = match row.get("latestSpotPriceUSD") {
            Some(serde_json::Value::Number(n)) => n.as_f64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        let Some(latest_usd) = price.filter(|p| p.is_finite() && *p >= 0.0) else {
            tracing::warn!(sku, location, "spot price row without a price; skipped");
            continue;
        };
        if seen.insert((sku.to_ascii_lowercase(), location.to_ascii_lowercase())) {
            out.push(SpotPriceRow {
                sku: sku.to_string(),
                location: location.to_string(),
                os: field(row, "osType").unwrap_or(os).to_string(),
                latest_usd,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_the_official_ones_with_quoted_lists() {
        let q = eviction_rate_query(
            &["Standard_D2s_v4".into(), "standard_d4s_v4".into()],
            &["eastus".into(), "southcentralus".into()],
        );
        assert!(
            q.contains("| where sku.name in~ ('standard_d2s_v4', 'standard_d4s_v4')"),
            "{q}"
        );
        assert!(
            q.contains("| where location in~ ('eastus', 'southcentralus')"),
            "{q}"
        );
        assert!(q.contains("spotEvictionRate = tostring(properties.evictionRate)"));
        let q = spot_price_query(&["a'b".into()], &["x\\y".into()], "Linux");
        assert!(q.contains(r"in~ ('a\'b')"), "{q}");
        assert!(q.contains(r"in~ ('x\\y')"), "{q}");
        assert!(q.contains("properties.osType =~ 'linux'"), "{q}");
        assert!(q.contains("latestSpotPriceUSD = todouble(properties.spotPrices[0].priceUSD)"));
    }

    #[test]
    fn quota_reset_parses() {
        assert_eq!(parse_quota_reset("00:00:05"), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_quota_reset("01:02:03"),
            Some(Duration::from_secs(3723))
        );
        assert_eq!(
            parse_quota_reset("1.00:00:01"),
            Some(Duration::from_secs(86_401))
        );
        assert_eq!(parse_quota_reset("soon"), None);
    }
}
