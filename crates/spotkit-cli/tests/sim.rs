//! `spotkit sim serve` as a process: create a Spot VM over HTTP, evict it, read the bill.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::{eventually, spotkit};
use serde_json::{Value, json};

const VM: &str =
    "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/w1";
const API: &str = "api-version=2025-04-01";

#[tokio::test]
async fn sim_serve_create_evict_and_bill_round_trip() {
    // 20x: a 30 s create or notice takes 1.5 s of real time.
    let mut child = spotkit()
        .args([
            "sim",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--seed",
            "3",
            "--speed",
            "20",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start spotkit sim serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let body = json!({
        "location": "eastus",
        "properties": {
            "hardwareProfile": { "vmSize": "Standard_D2s_v5" },
            "priority": "Spot",
            "evictionPolicy": "Delete",
            "billingProfile": { "maxPrice": -1 }
        }
    });
    let created = http
        .put(format!("{base}{VM}?{API}"))
        .bearer_auth("not-checked")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let operation = created.headers()["azure-asyncoperation"]
        .to_str()
        .unwrap()
        .to_owned();
    eventually(
        "the create to succeed",
        Duration::from_secs(20),
        async || {
            let status: Value = http.get(&operation).send().await.ok()?.json().await.ok()?;
            (status["status"] == "Succeeded").then_some(())
        },
    )
    .await;
    let evicted = http
        .post(format!("{base}{VM}/simulateEviction?{API}"))
        .send()
        .await
        .unwrap();
    assert_eq!(evicted.status(), 204);
    let document: Value = http
        .get(format!(
            "{base}/vm/w1/metadata/scheduledevents?api-version=2020-07-01"
        ))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["Events"][0]["EventType"], "Preempt");
    assert_eq!(document["Events"][0]["Resources"], json!(["w1"]));
    eventually(
        "the VM to be deleted by its eviction",
        Duration::from_secs(20),
        async || {
            let response = http.get(format!("{base}{VM}?{API}")).send().await.ok()?;
            (response.status() == 404).then_some(())
        },
    )
    .await;
    let bill: Value = http
        .get(format!("{base}/_sim/bill"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let line = &bill["lines"][0];
    assert_eq!(line["vm"], "w1");
    assert_eq!(line["deleted"], true);
    // Ran about 30 simulated seconds (the notice) at the eastus D2s_v5 spot price.
    let seconds = line["compute_seconds"].as_f64().unwrap();
    assert!((29.0..=60.0).contains(&seconds), "{seconds}");
    let compute = line["compute_usd"].as_f64().unwrap();
    assert!((compute - 0.01056 * seconds / 3600.0).abs() < 1e-12);
    let total = bill["total_usd"].as_f64().unwrap();
    assert!((total - compute - line["disk_usd"].as_f64().unwrap()).abs() < 1e-12);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn sim_run_is_reproducible_from_its_seed() {
    let run = || {
        let output = spotkit()
            .args(["sim", "run", "--seed", "5", "--duration", "3h", "--json"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    };
    let first = run();
    let report: Value = serde_json::from_slice(&first).unwrap();
    assert!(report["log"].as_array().unwrap().len() > 10);
    assert_eq!(first, run());
}

#[test]
fn a_missing_trace_names_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let output = spotkit()
        .args([
            "sim",
            "run",
            "--scenario",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../spotkit-sim/scenarios/traces.toml"
            ),
            "--traces-dir",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("availability/1-node/aws-02-15-2023/us-east-1a_v100_1.json"),
        "{stderr}"
    );
}
