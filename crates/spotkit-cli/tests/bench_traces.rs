//! `spotkit bench deadline` and `spotkit bench pools` on a tiny synthetic traces dir: every
//! policy is in the output, the deadline policies meet every deadline, and all on-demand costs
//! at least the omniscient lower bound.

mod common;

use std::path::Path;

use common::spotkit;
use serde_json::Value;

/// Writes a spot-traces file of `values` at `gap` seconds per value.
fn write_trace(dir: &Path, relative: &str, gap: u64, values: &[u32]) {
    let path = dir.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let body = serde_json::json!({"metadata": {"gap_seconds": gap}, "data": values});
    std::fs::write(path, body.to_string()).unwrap();
}

fn synthetic_traces() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    // 1 = no spot capacity. East: out 2 h of every 6; west: out 1 h of every 4, shifted.
    let east: Vec<u32> = (0..288).map(|i| u32::from(i % 72 < 24)).collect();
    let west: Vec<u32> = (0..288).map(|i| u32::from((i + 30) % 48 < 12)).collect();
    write_trace(
        dir.path(),
        "availability/1-node/syn-01-01-2024/us-east-1a_v100_1.json",
        300,
        &east,
    );
    write_trace(
        dir.path(),
        "availability/1-node/syn-01-01-2024/us-west-2a_v100_1.json",
        300,
        &west,
    );
    // Counts out of 4.
    let counts: Vec<u32> = (0..288).map(|i| [4, 3, 1, 0, 2, 4][i % 6]).collect();
    write_trace(
        dir.path(),
        "preemption/4-node/syn-01-02-2024/us-east-2a_v100_1.json",
        300,
        &counts,
    );
    dir
}

fn run_json(args: &[&str]) -> Value {
    let output = spotkit().args(args).output().expect("run spotkit");
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

#[test]
fn bench_deadline_meets_every_deadline_on_synthetic_traces() {
    let traces = synthetic_traces();
    let dir = traces.path().to_str().unwrap();
    let common = [
        "bench",
        "deadline",
        "--traces-dir",
        dir,
        "--job-hours",
        "8",
        "--deadline-hours",
        "12",
        "--overhead-minutes",
        "6",
        "--offset-step-hours",
        "2",
    ];
    let report = run_json(&[&common[..], &["--output", "json"]].concat());
    let sets = report["sets"].as_array().unwrap();
    assert_eq!(sets.len(), 1, "only the 1-node set: {report}");
    let policies = sets[0]["policies"].as_array().unwrap();
    let names: Vec<&str> = policies
        .iter()
        .map(|p| p["policy"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["greedy", "uniform-progress", "deadline-aware"]);
    for policy in policies {
        assert!(policy["runs"].as_u64().unwrap() >= 10, "{policy}");
        assert_eq!(policy["deadlines_met"], policy["runs"], "{policy}");
        assert!(policy["mean_cost_vs_lower_bound"].as_f64().unwrap() >= 1.0 - 1e-9);
    }
    assert!(sets[0]["mean_lower_bound_vs_on_demand"].as_f64().unwrap() <= 1.0);

    let table = spotkit().args(common).output().unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    for name in names {
        assert!(text.contains(name), "{text}");
    }
    assert!(
        text.contains("us-east-1a_v100_1.json -> eastus/Standard_NC6s_v3"),
        "{text}"
    );
}

#[test]
fn bench_pools_lists_every_policy_and_on_demand_costs_at_least_the_bound() {
    let traces = synthetic_traces();
    let dir = traces.path().to_str().unwrap();
    let report = run_json(&[
        "bench",
        "pools",
        "--traces-dir",
        dir,
        "--vms",
        "4",
        "--output",
        "json",
    ]);
    let groups = report.as_array().unwrap();
    assert_eq!(groups.len(), 2, "{report}");
    for group in groups {
        let policies = group["policies"].as_array().unwrap();
        let names: Vec<&str> = policies
            .iter()
            .map(|p| p["policy"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "a: all on-demand",
                "b: one offering, deallocate",
                "c: eager next region",
                "d: spotkit orchestrator",
                "e: omniscient lower bound"
            ]
        );
        let cost = |i: usize| policies[i]["cost_usd"].as_f64().unwrap();
        assert!(cost(0) >= cost(4), "{group}");
        for (i, policy) in policies.iter().enumerate() {
            let availability = policy["availability"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&availability), "{policy}");
            if i != 0 {
                // Nothing serving K VMs all the time can cost less than the bound, and every
                // policy here serves at most K.
                assert!(cost(i) > 0.0, "{policy}");
            }
        }
        // The orchestrator falls back to on-demand: it serves far more than spot-only (b).
        let avail = |i: usize| policies[i]["availability"].as_f64().unwrap();
        assert!(avail(3) > avail(1), "{group}");
    }
    let table = spotkit()
        .args(["bench", "pools", "--traces-dir", dir, "--vms", "4"])
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("goals for (d)"), "{text}");
    assert!(
        text.contains("us-east-2a_v100_1.json -> eastus2/Standard_NC6s_v3"),
        "{text}"
    );
}
