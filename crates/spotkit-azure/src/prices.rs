//! The Azure Retail Prices API: spot and pay-as-you-go prices per VM size, region and OS.
//!
//! `GET {base}/api/retail/prices?api-version=2023-01-01-preview&$filter=...` is unauthenticated.
//! Start at [`RetailPricesClient::vm_prices`], which asks one region at a time for the
//! `Consumption` meters of `Virtual Machines`, follows `NextPageLink` to the end (the page size is
//! not fixed: the docs have said 100 and 1,000), and classifies each item into a [`PriceRow`]:
//!
//! - spot when `skuName` or `meterName` contains `Spot`; `Low Priority` meters (the retired
//!   predecessor of spot) are dropped;
//! - Windows when `productName` ends with `Windows`, Linux otherwise;
//! - only `type == "Consumption"`: the item field is `type`, while the filter key is `priceType`;
//!   `DevTestConsumption` and `Reservation` rows are not the price a spot VM pays.
//!
//! Filter values are case-sensitive since `2023-01-01-preview` (`'Virtual Machines'`, not
//! `'virtual machines'`). Requests answered 429 or 5xx are retried with backoff, honouring
//! `Retry-After`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spotkit_core::advisor::Os;

/// The public endpoint.
pub const DEFAULT_PRICES_URL: &str = "https://prices.azure.com";

/// The API version spotkit speaks: case-sensitive filters, savings-plan data.
pub const RETAIL_PRICES_API_VERSION: &str = "2023-01-01-preview";

/// A loop guard, not a page size: no real query needs this many pages.
const MAX_PAGES: usize = 10_000;

/// Whether a price is for spot or regular (pay-as-you-go) capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceKind {
    /// A spot meter (`skuName` contains `Spot`).
    Spot,
    /// The regular consumption meter.
    PayAsYouGo,
}

/// One hourly price of one VM size in one region for one OS.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PriceRow {
    /// ARM size name (`armSkuName`), e.g. `Standard_D4s_v5`.
    pub sku: String,
    /// ARM region name (`armRegionName`), e.g. `eastus`.
    pub region: String,
    /// Meter OS.
    #[serde(with = "os_serde")]
    pub os: Os,
    /// Spot or pay-as-you-go.
    pub kind: PriceKind,
    /// Price per hour in `currency` (`retailPrice`).
    pub price_per_hour: f64,
    /// ISO currency code of the price (`currencyCode`); USD unless another was asked for.
    pub currency: String,
    /// `effectiveStartDate` as Azure wrote it (RFC 3339).
    pub effective_start: String,
}

/// Serde for [`Os`] as `"linux"` / `"windows"` (the core type has no serde on purpose).
pub mod os_serde {
    use serde::{Deserialize as _, Deserializer, Serializer};
    use spotkit_core::advisor::Os;

    /// The lower-case name.
    #[must_use]
    pub const fn name(os: Os) -> &'static str {
        match os {
            Os::Linux => "linux",
            Os::Windows => "windows",
        }
    }

    /// Parses `linux` / `windows`, any case.
    #[must_use]
    pub fn parse(s: &str) -> Option<Os> {
        if s.eq_ignore_ascii_case("linux") {
            Some(Os::Linux)
        } else if s.eq_ignore_ascii_case("windows") {
            Some(Os::Windows)
        } else {
            None
        }
    }

    /// Serializes as the lower-case name.
    ///
    /// # Errors
    /// Only the serializer's own.
    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's `with` signature
    pub fn serialize<S: Serializer>(os: &Os, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(name(*os))
    }

    /// Deserializes `linux` / `windows`.
    ///
    /// # Errors
    /// Any other string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Os, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown OS {s:?}: expected linux or windows"))
        })
    }
}

/// What went wrong talking to the Retail Prices API.
#[derive(Debug, thiserror::Error)]
pub enum PricesError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client for the Retail Prices API")]
    Client(#[source] reqwest::Error),
    /// The base URL does not parse.
    #[error("{url:?} is not a valid Retail Prices base URL (e.g. https://prices.azure.com)")]
    BadBaseUrl {
        /// The base URL given.
        url: String,
    },
    /// The request did not complete (DNS, connect, TLS, timeout).
    #[error("GET {url} failed; check --prices-url and the network")]
    Transport {
        /// The URL asked.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The service answered with an error status (after retries, for 429 and 5xx).
    #[error("GET {url} answered {status}: {body}")]
    Status {
        /// The URL asked.
        url: String,
        /// HTTP status.
        status: u16,
        /// The start of the body, for the message.
        body: String,
    },
    /// The body was not a Retail Prices envelope.
    #[error(
        "GET {url}: the body is not a Retail Prices page ({source}); is --prices-url the Retail Prices API?"
    )]
    Parse {
        /// The URL asked.
        url: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// `NextPageLink` never ended or repeated itself.
    #[error(
        "GET {url}: paging did not end after {pages} pages (NextPageLink repeats or never ends)"
    )]
    Paging {
        /// The first URL of the query.
        url: String,
        /// Pages read.
        pages: usize,
    },
}

/// How often and how patiently to retry throttled (429) and failed (5xx) requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// Delay before the first retry when the service gives no `Retry-After`; doubles per retry.
    pub base_delay: Duration,
    /// Longest wait between attempts, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

/// Which prices to fetch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriceQuery {
    /// ARM region names; one query each.
    pub regions: Vec<String>,
    /// ARM size names to restrict to (`armSkuName eq ...`, one query per size and region); empty:
    /// every VM size in the region, which is cheaper in requests when there are many sizes.
    pub sizes: Vec<String>,
    /// `currencyCode` (e.g. `EUR`); `None`: USD.
    pub currency: Option<String>,
}

/// A Retail Prices client.
#[derive(Clone, Debug)]
pub struct RetailPricesClient {
    http: reqwest::Client,
    base_url: String,
    retry: RetryPolicy,
}

impl RetailPricesClient {
    /// A client for `base_url` (e.g. [`DEFAULT_PRICES_URL`], or a simulator on loopback).
    ///
    /// # Errors
    /// [`PricesError::Client`] if the TLS stack cannot be initialized.
    pub fn new(base_url: &str, retry: RetryPolicy) -> Result<Self, PricesError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("spotkit/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(PricesError::Client)?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            retry,
        })
    }

    /// The base URL, as recorded in snapshots.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Every spot and pay-as-you-go VM price of `query`, one row per (size, region, OS, kind):
    /// when several consumption meters match, the one with the latest `effectiveStartDate` wins.
    /// Rows are sorted by size, region, OS and kind.
    ///
    /// # Errors
    /// The first request that fails after retries.
    pub async fn vm_prices(&self, query: &PriceQuery) -> Result<Vec<PriceRow>, PricesError> {
        let mut best: BTreeMap<(String, String, Os, PriceKind), PriceRow> = BTreeMap::new();
        for region in &query.regions {
            let filters: Vec<String> = if query.sizes.is_empty() {
                vec![vm_filter(region, None)]
            } else {
                query
                    .sizes
                    .iter()
                    .map(|s| vm_filter(region, Some(s)))
                    .collect()
            };
            for filter in filters {
                for item in self.fetch_all(&filter, query.currency.as_deref()).await? {
                    let Some(row) = classify(&item) else { continue };
                    let key = (
                        row.sku.to_ascii_lowercase(),
                        row.region.to_ascii_lowercase(),
                        row.os,
                        row.kind,
                    );
                    match best.get(&key) {
                        Some(old) if old.effective_start >= row.effective_start => {}
                        _ => {
                            best.insert(key, row);
                        }
                    }
                }
            }
        }
        Ok(best.into_values().collect())
    }

    /// Every item of one `$filter`, following `NextPageLink` until it is null or empty.
    ///
    /// # Errors
    /// The first page that fails after retries, or paging that does not end.
    pub async fn fetch_all(
        &self,
        filter: &str,
        currency: Option<&str>,
    ) -> Result<Vec<RetailPriceItem>, PricesError> {
        let mut params = vec![
            ("api-version", RETAIL_PRICES_API_VERSION.to_string()),
            ("$filter", filter.to_string()),
        ];
        if let Some(c) = currency {
            // The documented form carries the quotes: `currencyCode='EUR'`.
            params.push(("currencyCode", format!("'{c}'")));
        }
        let first = reqwest::Url::parse_with_params(
            &format!("{}/api/retail/prices", self.base_url),
            &params,
        )
        .map_err(|_| PricesError::BadBaseUrl {
            url: self.base_url.clone(),
        })?
        .to_string();
        let mut items = Vec::new();
        let mut next = Some(first.clone());
        let mut seen = std::collections::BTreeSet::new();
        while let Some(url) = next.take() {
            if !seen.insert(url.clone()) || seen.len() > MAX_PAGES {
                return Err(PricesError::Paging {
                    url: first,
                    pages: seen.len(),
                });
            }
            let page = self.get_page(&url).await?;
            items.extend(page.items);
            // The last page has a null, absent or empty NextPageLink (all three are seen).
            next = page.next_page_link.filter(|l| !l.trim().is_empty());
        }
        Ok(items)
    }

    async fn get_page(&self, url: &str) -> Result<RetailPricesPage, PricesError> {
        let mut attempt = 1;
        loop {
            let response = self.http.get(url).send().await;
            let retry_in = match response {
                Err(source) if attempt < self.retry.max_attempts && is_transient(&source) => {
                    tracing::debug!(url, error = %source, attempt, "Retail Prices request failed; retrying");
                    self.backoff(attempt, None)
                }
                Err(source) => {
                    return Err(PricesError::Transport {
                        url: url.to_string(),
                        source,
                    });
                }
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_success() {
                        let body = resp
                            .bytes()
                            .await
                            .map_err(|source| PricesError::Transport {
                                url: url.to_string(),
                                source,
                            })?;
                        return serde_json::from_slice(&body).map_err(|source| {
                            PricesError::Parse {
                                url: url.to_string(),
                                source,
                            }
                        });
                    }
                    let retryable = status.as_u16() == 429 || status.is_server_error();
                    if !retryable || attempt >= self.retry.max_attempts {
                        let body = resp.text().await.unwrap_or_default();
                        return Err(PricesError::Status {
                            url: url.to_string(),
                            status: status.as_u16(),
                            body: body.chars().take(300).collect(),
                        });
                    }
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    tracing::debug!(
                        url,
                        status = status.as_u16(),
                        attempt,
                        "Retail Prices throttled or failed; retrying"
                    );
                    self.backoff(attempt, retry_after)
                }
            };
            tokio::time::sleep(retry_in).await;
            attempt += 1;
        }
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponential = self
            .retry
            .base_delay
            .saturating_mul(1 << (attempt - 1).min(16));
        retry_after.unwrap_or(exponential).min(self.retry.max_delay)
    }
}

fn is_transient(e: &reqwest::Error) -> bool {
    e.is_timeout() || e.is_connect() || e.is_request()
}

/// The `$filter` for the consumption meters of VMs in `region` (and one size, if given). Values
/// are case-sensitive, so they are passed exactly as ARM spells them.
#[must_use]
pub fn vm_filter(region: &str, size: Option<&str>) -> String {
    let mut f = format!(
        "serviceName eq 'Virtual Machines' and armRegionName eq '{}' and priceType eq 'Consumption'",
        odata_quote(region)
    );
    if let Some(s) = size {
        f.push_str(&format!(" and armSkuName eq '{}'", odata_quote(s)));
    }
    f
}

/// OData string literals double their single quotes.
fn odata_quote(s: &str) -> String {
    s.replace('\'', "''")
}

/// Turns one item into the row spotkit uses, or `None` for items that are not an hourly
/// consumption price of a VM size (reservations, dev/test, Low Priority, other units).
#[must_use]
pub fn classify(item: &RetailPriceItem) -> Option<PriceRow> {
    // `type` is the item's field; the filter key for it is `priceType`.
    if item.kind != "Consumption" {
        return None;
    }
    if item.arm_sku_name.is_empty() || item.arm_region_name.is_empty() {
        return None;
    }
    if item.meter_name.contains("Low Priority") || item.sku_name.contains("Low Priority") {
        return None;
    }
    if !item.unit_of_measure.is_empty() && !item.unit_of_measure.contains("Hour") {
        return None;
    }
    if !item.retail_price.is_finite() || item.retail_price < 0.0 {
        return None;
    }
    let kind = if item.sku_name.contains("Spot") || item.meter_name.contains("Spot") {
        PriceKind::Spot
    } else {
        PriceKind::PayAsYouGo
    };
    let os = if item.product_name.trim_end().ends_with("Windows") {
        Os::Windows
    } else {
        Os::Linux
    };
    Some(PriceRow {
        sku: item.arm_sku_name.clone(),
        region: item.arm_region_name.clone(),
        os,
        kind,
        price_per_hour: item.retail_price,
        currency: if item.currency_code.is_empty() {
            "USD".to_string()
        } else {
            item.currency_code.clone()
        },
        effective_start: item.effective_start_date.clone(),
    })
}

/// One page of the Retail Prices API. Unknown fields are ignored.
#[derive(Clone, Debug, Deserialize)]
pub struct RetailPricesPage {
    /// `BillingCurrency`.
    #[serde(rename = "BillingCurrency", default)]
    pub billing_currency: String,
    /// `Items`.
    #[serde(rename = "Items", default)]
    pub items: Vec<RetailPriceItem>,
    /// `NextPageLink`: null, absent or empty on the last page.
    #[serde(rename = "NextPageLink", default)]
    pub next_page_link: Option<String>,
    /// `Count`: items on this page.
    #[serde(rename = "Count", default)]
    pub count: u64,
}

/// One item of `Items`, the fields spotkit reads; every one is optional on the wire.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetailPriceItem {
    /// e.g. `USD`.
    pub currency_code: String,
    /// `0` or `0.0` on the wire: both parse.
    pub tier_minimum_units: f64,
    /// The retail price per `unitOfMeasure`.
    pub retail_price: f64,
    /// Equal to `retailPrice` for retail prices.
    pub unit_price: f64,
    /// e.g. `eastus`.
    pub arm_region_name: String,
    /// e.g. `US East`.
    pub location: String,
    /// RFC 3339.
    pub effective_start_date: String,
    /// e.g. `D4s v5 Spot`.
    pub meter_name: String,
    /// e.g. `Virtual Machines DSv5 Series Windows`.
    pub product_name: String,
    /// e.g. `D4s v5 Spot`.
    pub sku_name: String,
    /// e.g. `Virtual Machines`.
    pub service_name: String,
    /// e.g. `1 Hour`.
    pub unit_of_measure: String,
    /// `Consumption`, `DevTestConsumption` or `Reservation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// e.g. `Standard_D4s_v5`.
    pub arm_sku_name: String,
    /// `1 Year` / `3 Years` on reservation rows.
    pub reservation_term: Option<String>,
    /// Whether this is the meter's primary region.
    pub is_primary_meter_region: Option<bool>,
}

#[cfg(test)]
mod tests;
