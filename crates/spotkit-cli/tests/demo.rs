//! README's first command must keep working: `spotkit demo` runs the pool through its storm
//! with nothing lost and nothing done twice, and its report opens in a browser.
//!
//! The demo runs once (about 70 s in a debug build); both tests read that run.
#![allow(clippy::disallowed_methods)] // the browser check is bounded by real time

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

const CHROMIUM: &str = "/usr/bin/chromium";

struct DemoRun {
    _dir: tempfile::TempDir,
    summary: Value,
    report: PathBuf,
}

fn demo() -> &'static DemoRun {
    static RUN: OnceLock<DemoRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = common::spotkit()
            .args(["demo", "--json", "--out"])
            .arg(dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "status {}\n{stdout}\n{stderr}",
            out.status
        );
        let summary: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("--json prints one JSON document ({e}):\n{stdout}"));
        let report = PathBuf::from(summary["report_path"].as_str().unwrap());
        DemoRun {
            _dir: dir,
            summary,
            report,
        }
    })
}

fn number(summary: &Value, key: &str) -> f64 {
    summary[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is a number in {summary:#}"))
}

#[test]
fn the_demo_loses_nothing_and_does_nothing_twice_through_the_storm() {
    let run = demo();
    let s = &run.summary;
    assert_eq!(number(s, "messages_lost"), 0.0, "{s:#}");
    assert_eq!(number(s, "effects_duplicated"), 0.0, "{s:#}");
    assert_eq!(
        number(s, "messages_processed"),
        number(s, "messages_total"),
        "{s:#}"
    );
    for kind in [
        "evictions_with_30s_notice",
        "evictions_with_short_notice",
        "evictions_without_notice",
    ] {
        assert!(number(s, kind) >= 1.0, "{kind} in {s:#}");
    }
    assert!(number(s, "replacements") > 0.0, "{s:#}");
    assert!(
        number(s, "time_to_replace_max_s") >= number(s, "time_to_replace_mean_s"),
        "{s:#}"
    );
    let availability = number(s, "capacity_availability");
    assert!(availability > 0.0 && availability <= 1.0, "{s:#}");
    let (cost, on_demand) = (number(s, "cost_usd"), number(s, "on_demand_cost_usd"));
    assert!(cost > 0.0 && cost < on_demand, "{s:#}");
    assert!(
        (number(s, "savings_fraction") - (1.0 - cost / on_demand)).abs() < 1e-9,
        "{s:#}"
    );
    assert!(run.report.is_file(), "{}", run.report.display());
    assert_eq!(run.report.file_name().unwrap(), "spotkit-report.html");
}

/// `None`: skip (no Chromium, not CI).
fn chromium() -> Option<PathBuf> {
    if Path::new(CHROMIUM).exists() {
        return Some(PathBuf::from(CHROMIUM));
    }
    assert!(
        std::env::var_os("CI").is_none_or(|v| v.is_empty()),
        "{CHROMIUM} is missing, and CI must check the demo's report in a browser: \
         apt-get update && apt-get install -y chromium chromium-driver"
    );
    eprintln!(
        "skipping the browser check of the demo's report: {CHROMIUM} is missing \
         (apt-get install -y chromium chromium-driver)"
    );
    None
}

#[test]
fn the_demo_report_shows_four_charts_and_the_summary_in_headless_chromium() {
    let Some(chromium) = chromium() else { return };
    let run = demo();
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", run.report.display()))
        .env("HOME", profile.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut dom).unwrap();
        dom
    });
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("chromium hung on {}", run.report.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let dom = reader.join().unwrap();
    assert_eq!(
        dom.matches("<svg class=\"chart-svg\"").count(),
        4,
        "four charts in the DOM"
    );
    for title in [
        "Capacity over time by pool",
        "Evictions per minute by notice",
        "Queue depth",
        "Cumulative cost",
    ] {
        assert!(dom.contains(&format!("<h2>{title}</h2>")), "{title}");
    }
    assert!(dom.contains("<section class=\"summary\" id=\"summary\">"));
    for label in ["messages processed", "effects duplicated", "messages lost"] {
        assert!(
            dom.contains(&format!("<div class=\"label\">{label}</div>")),
            "{label}"
        );
    }
    // The figures on the page are the run's.
    let data =
        spotkit_report::read_report_data(&std::fs::read_to_string(&run.report).unwrap()).unwrap();
    assert!(
        data.summary
            .iter()
            .any(|i| i.label == "messages lost" && i.value == "0")
    );
}
