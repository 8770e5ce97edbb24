//! The Retail Prices client against an in-process fake on loopback that serves envelopes built
//! around the three official example items (fixtures/azure/retail-prices/, verbatim).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::*;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../fixtures/azure/retail-prices/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn official_devtest_spot() -> Value {
    fixture("retail-prices-sample-item-devtestconsumption-spot.json")
}
fn official_reservation() -> Value {
    fixture("retail-prices-sample-item-reservation.json")
}
fn official_eur_spot() -> Value {
    fixture("retail-prices-sample-item-eur-spot.json")
}

/// An item shaped like the official examples, for sizes the examples do not cover.
fn item(sku: &str, region: &str, sku_name: &str, product: &str, kind: &str, price: f64) -> Value {
    let mut v = official_devtest_spot();
    let o = v.as_object_mut().unwrap();
    o.insert("armSkuName".into(), json!(sku));
    o.insert("armRegionName".into(), json!(region));
    o.insert("skuName".into(), json!(sku_name));
    o.insert("meterName".into(), json!(sku_name));
    o.insert("productName".into(), json!(product));
    o.insert("type".into(), json!(kind));
    o.insert("retailPrice".into(), json!(price));
    o.insert("unitPrice".into(), json!(price));
    o.insert("tierMinimumUnits".into(), json!(0));
    o.insert("someFieldAddedLater".into(), json!({"x": 1}));
    v
}

fn envelope(items: Vec<Value>, next: Value, currency: &str) -> Value {
    json!({
        "BillingCurrency": currency,
        "CustomerEntityId": "Default",
        "CustomerEntityType": "Retail",
        "Count": items.len(),
        "Items": items,
        "NextPageLink": next,
    })
}

/// A scripted reply: status, optional Retry-After, body.
#[derive(Clone)]
struct Reply(u16, Option<&'static str>, Value);

#[derive(Clone, Default)]
struct Fake {
    script: Arc<Mutex<Vec<Reply>>>,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn serve(State(fake): State<Fake>, uri: Uri) -> Response {
    fake.seen.lock().unwrap().push(uri.to_string());
    let reply = {
        let mut s = fake.script.lock().unwrap();
        if s.is_empty() {
            Reply(500, None, json!({"error": "script exhausted"}))
        } else {
            s.remove(0)
        }
    };
    let mut resp = (StatusCode::from_u16(reply.0).unwrap(), axum::Json(reply.2)).into_response();
    if let Some(ra) = reply.1 {
        resp.headers_mut()
            .insert("retry-after", ra.parse().unwrap());
    }
    resp
}

async fn start(make_script: impl FnOnce(&str) -> Vec<Reply>) -> (String, Fake) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let fake = Fake::default();
    *fake.script.lock().unwrap() = make_script(&base);
    let app = axum::Router::new().fallback(serve).with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, fake)
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    }
}

fn query(region: &str) -> PriceQuery {
    PriceQuery {
        regions: vec![region.to_string()],
        sizes: Vec::new(),
        currency: None,
    }
}

#[tokio::test]
async fn three_pages_are_followed_and_only_consumption_rows_are_kept() {
    let (base, fake) = start(|base| {
        vec![
            Reply(
                200,
                None,
                envelope(
                    vec![
                        official_devtest_spot(),
                        item(
                            "Standard_F16s",
                            "westeurope",
                            "F16s Spot",
                            "Virtual Machines FS Series",
                            "Consumption",
                            0.07,
                        ),
                    ],
                    json!(format!("{base}/api/retail/prices?page=2")),
                    "USD",
                ),
            ),
            Reply(
                200,
                None,
                envelope(
                    vec![
                        official_reservation(),
                        item(
                            "Standard_F16s",
                            "westeurope",
                            "F16s",
                            "Virtual Machines FS Series",
                            "Consumption",
                            0.8,
                        ),
                        item(
                            "Standard_F16s",
                            "westeurope",
                            "F16s Low Priority",
                            "Virtual Machines FS Series",
                            "Consumption",
                            0.16,
                        ),
                    ],
                    json!(format!("{base}/api/retail/prices?page=3")),
                    "USD",
                ),
            ),
            Reply(
                200,
                None,
                envelope(
                    vec![item(
                        "Standard_F16s",
                        "westeurope",
                        "F16s",
                        "Virtual Machines FS Series Windows",
                        "Consumption",
                        1.5,
                    )],
                    Value::Null,
                    "USD",
                ),
            ),
        ]
    })
    .await;
    let client = RetailPricesClient::new(&base, fast_retry()).unwrap();
    let rows = client.vm_prices(&query("westeurope")).await.unwrap();

    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        3,
        "three pages, then stop at the null link: {seen:?}"
    );
    let first = reqwest::Url::parse(&format!("{base}{}", seen[0])).unwrap();
    let params: BTreeMap<String, String> = first.query_pairs().into_owned().collect();
    assert_eq!(params["api-version"], "2023-01-01-preview");
    assert_eq!(
        params["$filter"],
        "serviceName eq 'Virtual Machines' and armRegionName eq 'westeurope' and priceType eq 'Consumption'"
    );
    assert!(!params.contains_key("currencyCode"));

    let summary: Vec<(String, Os, PriceKind, f64)> = rows
        .iter()
        .map(|r| (r.sku.clone(), r.os, r.kind, r.price_per_hour))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "Standard_F16s".to_string(),
                Os::Linux,
                PriceKind::Spot,
                0.07
            ),
            (
                "Standard_F16s".to_string(),
                Os::Linux,
                PriceKind::PayAsYouGo,
                0.8
            ),
            (
                "Standard_F16s".to_string(),
                Os::Windows,
                PriceKind::PayAsYouGo,
                1.5
            ),
        ],
        "dev/test, reservation and Low Priority rows are dropped"
    );
    assert!(rows.iter().all(|r| r.currency == "USD"));
}

#[tokio::test]
async fn an_empty_next_page_link_ends_paging() {
    let (base, fake) = start(|base| {
        vec![
            Reply(
                200,
                None,
                envelope(
                    vec![official_eur_spot()],
                    json!(format!("{base}/api/retail/prices?page=2")),
                    "EUR",
                ),
            ),
            Reply(200, None, envelope(vec![], json!(""), "EUR")),
        ]
    })
    .await;
    let client = RetailPricesClient::new(&base, fast_retry()).unwrap();
    let items = client.fetch_all("x eq 'y'", None).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(fake.seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn currency_is_asked_for_and_the_official_eur_item_is_a_windows_spot_price() {
    let (base, fake) = start(|_| {
        vec![Reply(
            200,
            None,
            envelope(vec![official_eur_spot()], Value::Null, "EUR"),
        )]
    })
    .await;
    let client = RetailPricesClient::new(&base, fast_retry()).unwrap();
    let rows = client
        .vm_prices(&PriceQuery {
            regions: vec!["westeurope".into()],
            sizes: vec!["Standard_F16s".into()],
            currency: Some("EUR".into()),
        })
        .await
        .unwrap();
    let seen = fake.seen.lock().unwrap()[0].clone();
    let url = reqwest::Url::parse(&format!("{base}{seen}")).unwrap();
    let params: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(params["currencyCode"], "'EUR'");
    assert!(params["$filter"].ends_with(" and armSkuName eq 'Standard_F16s'"));
    assert_eq!(
        rows,
        vec![PriceRow {
            sku: "Standard_F16s".into(),
            region: "westeurope".into(),
            os: Os::Windows,
            kind: PriceKind::Spot,
            price_per_hour: 0.6176,
            currency: "EUR".into(),
            effective_start: "2021-04-01T00:00:00Z".into(),
        }]
    );
}

#[tokio::test]
async fn throttling_is_retried_after_the_retry_after_delay() {
    let (base, fake) = start(|_| {
        vec![
            Reply(429, Some("0"), json!({"Error": "too many requests"})),
            Reply(503, None, json!({})),
            Reply(
                200,
                None,
                envelope(vec![official_eur_spot()], Value::Null, "EUR"),
            ),
        ]
    })
    .await;
    let client = RetailPricesClient::new(&base, fast_retry()).unwrap();
    let items = client.fetch_all("x eq 'y'", None).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(fake.seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn persistent_throttling_fails_with_the_status_and_url() {
    let (base, _fake) = start(|_| {
        (0..3)
            .map(|_| Reply(429, Some("0"), json!({"Error": "slow down"})))
            .collect()
    })
    .await;
    let client = RetailPricesClient::new(&base, fast_retry()).unwrap();
    let err = client.fetch_all("x eq 'y'", None).await.unwrap_err();
    match &err {
        PricesError::Status { status, url, .. } => {
            assert_eq!(*status, 429);
            assert!(url.starts_with(&base));
        }
        other => panic!("expected a status error, got {other:?}"),
    }
    assert!(err.to_string().contains("slow down"));
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let (base, fake) = start(|_| vec![Reply(400, None, json!({"Error": "bad filter"}))]).await;
    let client = RetailPricesClient::new(&base, fast_retry()).unwrap();
    assert!(client.fetch_all("x", None).await.is_err());
    assert_eq!(fake.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_repeating_next_page_link_is_reported_not_followed_forever() {
    let (base, _fake) = start(|base| {
        (0..3)
            .map(|_| {
                Reply(
                    200,
                    None,
                    envelope(
                        vec![],
                        json!(format!("{base}/api/retail/prices?same")),
                        "USD",
                    ),
                )
            })
            .collect()
    })
    .await;
    let client = RetailPricesClient::new(&base, fast_retry()).unwrap();
    let err = client.fetch_all("x", None).await.unwrap_err();
    assert!(matches!(err, PricesError::Paging { .. }), "{err:?}");
}

#[test]
fn official_items_parse_and_dev_test_and_reservation_rows_are_dropped() {
    let a: RetailPriceItem = serde_json::from_value(official_eur_spot()).unwrap();
    let b: RetailPriceItem = serde_json::from_value(official_devtest_spot()).unwrap();
    assert_eq!(a.tier_minimum_units, 0.0);
    assert_eq!(b.tier_minimum_units, 0.0);
    assert!(
        classify(&b).is_none(),
        "DevTestConsumption is not the spot price we pay"
    );
    let r: RetailPriceItem = serde_json::from_value(official_reservation()).unwrap();
    assert_eq!(r.reservation_term.as_deref(), Some("1 Year"));
    assert!(classify(&r).is_none());
}

#[test]
fn filter_values_are_quoted_for_odata() {
    assert_eq!(
        vm_filter("east'us", Some("Standard_D2s_v3")),
        "serviceName eq 'Virtual Machines' and armRegionName eq 'east''us' and priceType eq 'Consumption' and armSkuName eq 'Standard_D2s_v3'"
    );
}

#[test]
fn price_rows_round_trip_through_json_with_lower_case_os() {
    let row = PriceRow {
        sku: "Standard_D2s_v3".into(),
        region: "eastus".into(),
        os: Os::Linux,
        kind: PriceKind::PayAsYouGo,
        price_per_hour: 0.096,
        currency: "USD".into(),
        effective_start: "2024-08-01T00:00:00Z".into(),
    };
    let s = serde_json::to_string(&row).unwrap();
    assert!(
        s.contains(r#""os":"linux""#) && s.contains(r#""kind":"pay_as_you_go""#),
        "{s}"
    );
    assert_eq!(serde_json::from_str::<PriceRow>(&s).unwrap(), row);
}
