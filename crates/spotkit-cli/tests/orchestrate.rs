//! `spotkit orchestrate` as a process against `spotkit sim serve`: killed right after its first
//! PUT is accepted and restarted, it adopts what it started and makes no duplicate VM; it shuts
//! down cleanly on SIGTERM; `spotkit status` reads it; `--dry-run` plans without acting.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{eventually, spotkit};
use serde_json::Value;

fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned()
}

const POOL: &str = r#"
name = "crash"
resource_group = "rg-crash"
[target]
vms = 4
[[candidates]]
size = "Standard_D2s_v5"
region = "eastus"
[[candidates]]
size = "Standard_D2s_v5"
region = "westus2"
[template]
image = "Canonical:ubuntu-24_04-lts:server:latest"
"#;

fn orchestrate(sim: &str, pool: &std::path::Path, extra: &[&str]) -> Child {
    spotkit()
        .args(["orchestrate", "--pool"])
        .arg(pool)
        .args([
            "--arm-url",
            sim,
            "--credential",
            "static-token",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start spotkit orchestrate")
}

#[tokio::test]
async fn killed_mid_create_and_restarted_makes_no_duplicate_vm() {
    // 10x: a create takes 3 s of real time.
    let mut sim = spotkit()
        .args(["sim", "serve", "--listen", "127.0.0.1:0", "--speed", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start spotkit sim serve");
    let base = first_line(&mut sim);
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("pool.toml");
    std::fs::write(&pool, POOL).unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let log = async || -> Option<Vec<Value>> {
        let v: Value = http
            .get(format!("{base}/_sim/log?since=0"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v["entries"].as_array().cloned()
    };

    let plan = spotkit()
        .args(["orchestrate", "--pool"])
        .arg(&pool)
        .args([
            "--arm-url",
            &base,
            "--credential",
            "static-token",
            "--dry-run",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert!(plan.status.success());
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["plan"].as_array().unwrap().len(), 4, "{plan}");
    assert!(
        !log()
            .await
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "create_accepted"),
        "--dry-run acts on nothing"
    );

    let mut first = orchestrate(&base, &pool, &[]);
    let _ = first_line(&mut first);
    eventually("a PUT accepted", Duration::from_secs(20), async || {
        let entries = log().await?;
        entries
            .iter()
            .any(|e| e["kind"] == "create_accepted")
            .then_some(())
    })
    .await;
    first.kill().unwrap(); // SIGKILL: no chance to clean up
    first.wait().unwrap();

    let state = dir.path().join("state.db");
    let state_url = format!("sqlite:{}", state.display());
    let mut second = orchestrate(&base, &pool, &["--state", &state_url]);
    let endpoint = first_line(&mut second);
    let vms = eventually("4 VMs running", Duration::from_secs(30), async || {
        let vms: Vec<Value> = http
            .get(format!("{base}/_sim/vms"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (vms.len() == 4 && vms.iter().all(|v| v["power"] == "running")).then_some(vms)
    })
    .await;
    // A few resyncs later there is still exactly one VM per name.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let vms_later: Vec<Value> = http
        .get(format!("{base}/_sim/vms"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(vms_later.len(), 4, "{vms_later:#?}");
    let names: BTreeSet<String> = vms
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["crash-0000", "crash-0001", "crash-0002", "crash-0003"]
            .map(String::from)
            .into()
    );

    let status = spotkit()
        .args(["status", "--url", &endpoint, "--output", "json"])
        .output()
        .unwrap();
    assert!(status.status.success());
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["status"]["pool"], "crash");
    assert_eq!(status["status"]["vms"].as_array().unwrap().len(), 4);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(second.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let exit = eventually(
        "a clean exit on SIGTERM",
        Duration::from_secs(15),
        async || second.try_wait().ok().flatten(),
    )
    .await;
    assert!(exit.success(), "{exit:?}");

    let table = spotkit()
        .args(["status", "--state", &state_url])
        .output()
        .unwrap();
    assert!(table.status.success());
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("pool crash"), "{table}");
    assert!(table.contains("crash-0003"), "{table}");
    sim.kill().unwrap();
    sim.wait().unwrap();
}
