//! `spotkit demo`: the whole system on one machine, through an eviction storm, in 1-3 minutes.
//!
//! One process holds the simulated Azure (`SimServer` on 127.0.0.1, the embedded scenario
//! `scenarios/demo.toml`: 3 regions x 4 sizes at real prices), the orchestrator (a `PoolRunner`
//! keeping a pool of N spot VMs over `AzureCompute` + `ArmClient`, pointed at the simulator) and
//! the agents' notice endpoint. A *VM host* makes every simulated VM real: while the simulator
//! says a VM runs, `spotkit agent -- spotkit worker -- <handler>` runs for it, against that VM's
//! own IMDS, taking messages from an embedded SQLite queue. The demo scripts a storm against the
//! offerings the pool occupies (30 s notice, 5 s notice, no notice, a correlated burst, one
//! offering's capacity gone), samples capacity, queue, evictions and cost every second, and at
//! the end checks that every message's effect was committed exactly once.
//!
//! Data flow: sim IMDS -> agent (drains the worker, POSTs the notice) -> `notice_router` ->
//! `PoolRunner` -> ARM calls -> sim -> VM host (starts or kills processes).
#![allow(clippy::cast_precision_loss)] // counts and milliseconds shown as f64

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::Value;
use spotkit_azure::arm::{
    ArmClient, ArmClientOptions, AzureCompute, AzureComputeOptions, LroOptions, StaticToken,
};
use spotkit_cloud::{Clock, ObjectStore, Queue, SystemClock};
use spotkit_core::Timestamp;
use spotkit_core::orchestrator::{PoolMachine, PoolStatus};
use spotkit_orchestrator::{PoolRunner, notice_router};
use spotkit_report::{
    Chart, EventKind, EventMarker, Notice, RunReport, Series, SummaryItem, Table, Verdict,
};
use spotkit_sim::cloud::http::{ScaledClock, SimServer};
use spotkit_sim::cloud::{DEMO_SCENARIO_TOML, SIM_SUBSCRIPTION, Scenario, SpotCloud};
use tokio::sync::{mpsc, watch};

use crate::Failure;
use crate::backends::{open_queue, open_store};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Spot VMs in the pool (each runs a real agent and worker: 2 handlers at once).
    #[arg(long, default_value_t = 6)]
    vms: u32,
    /// Messages on the queue; each takes a handler 2 s.
    #[arg(long, default_value_t = 300)]
    messages: u32,
    /// Seed of the simulator's draws (which VMs a scripted eviction picks, drawn notices).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Directory for the HTML report (spotkit-report.html).
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Print one JSON document with the figures instead of the text summary.
    #[arg(long)]
    json: bool,
    /// Keep the temporary directory (queue database, VM logs) and say where it is.
    #[arg(long)]
    keep: bool,
    /// Stop here even if the queue is not drained (the run then fails).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    duration_limit: Duration,
}

pub fn main(args: &DemoArgs) -> Result<u8, Failure> {
    if !(1..=30).contains(&args.vms) {
        return Err(Failure::usage(anyhow::anyhow!(
            "--vms {}: choose between 1 and 30 (each VM is two local processes)",
            args.vms
        )));
    }
    if !(1..=100_000).contains(&args.messages) {
        return Err(Failure::usage(anyhow::anyhow!(
            "--messages {}: choose between 1 and 100000",
            args.messages
        )));
    }
    if args.duration_limit < Duration::from_secs(10) {
        return Err(Failure::usage(anyhow::anyhow!(
            "--duration-limit {}: at least 10s",
            humantime::format_duration(args.duration_limit)
        )));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Failure::runtime)?;
    runtime.block_on(run(args)).map_err(Failure::runtime)
}

/// Each message takes 8 steps of 250 ms, checkpointing its step on SIGTERM and resuming from it;
/// its effect (the result file, committed by the worker to the idempotency ledger) names it.
const HANDLER: &str = r#"
body=$(cat); i=$(cat "$SPOTKIT_CHECKPOINT_FILE" 2>/dev/null || echo 0); from=$i
trap 'echo $i > "$SPOTKIT_CHECKPOINT_FILE.tmp"; mv "$SPOTKIT_CHECKPOINT_FILE.tmp" "$SPOTKIT_CHECKPOINT_FILE"; exit 75' TERM
while [ $i -lt 8 ]; do sleep 0.25; i=$((i+1)); done
echo "$SPOTKIT_IDEMPOTENCY_KEY" >> "$DEMO_ATTEMPTS"
printf '%s done (resumed from step %s)' "$body" "$from" > "$SPOTKIT_RESULT_FILE"
"#;

const QUEUE_NAME: &str = "jobs";
const POOL_NAME: &str = "demo";
/// Real seconds between samples (capacity, queue, bill, log).
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// After the last scripted event, time for its replacements before the run may end.
const SETTLE_AFTER_STORM: Duration = Duration::from_secs(15);

// ----- the storm -----

/// Whom a scripted event hits: chosen when it fires, from where the pool's VMs are then.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// The offering with the most running VMs.
    BusiestOffering,
    /// Every offering of the region with the most running VMs.
    BusiestRegion,
}

#[derive(Clone, Copy, Debug)]
enum Scripted {
    Evict {
        count: u32,
        notice_s: u64,
        target: Target,
    },
    CapacityGone {
        for_s: u64,
    },
}

/// Seconds after the storm starts (when the pool first runs at its target), and what happens.
const STORM: [(u64, Scripted); 5] = [
    (
        5,
        Scripted::Evict {
            count: 1,
            notice_s: 30,
            target: Target::BusiestOffering,
        },
    ),
    (
        15,
        Scripted::Evict {
            count: 1,
            notice_s: 5,
            target: Target::BusiestOffering,
        },
    ),
    (
        25,
        Scripted::Evict {
            count: 1,
            notice_s: 0,
            target: Target::BusiestOffering,
        },
    ),
    // A correlated burst: several VMs of one region at the same instant.
    (
        38,
        Scripted::Evict {
            count: 3,
            notice_s: 5,
            target: Target::BusiestRegion,
        },
    ),
    // Capacity enforcement then evicts that offering's VMs with drawn notices, and creates
    // there are refused (SkuNotAvailable) until it returns.
    (50, Scripted::CapacityGone { for_s: 45 }),
];

/// The storm starts this long after the run at the latest, even if the pool is not full yet.
const STORM_START_LATEST: Duration = Duration::from_secs(40);

// ----- the VM host -----

/// One simulated VM's local processes: `spotkit agent` (a session leader, started with
/// `setsid`) and everything under it (the worker, its handlers). The session stands for the VM.
struct VmProcesses {
    agent: Child,
    offering: String,
    exited: bool,
}

/// What the simulator says about one VM (`/_sim/vms`).
#[derive(Clone, Debug)]
struct SimVm {
    name: String,
    offering: String,
    priority: String,
    power: String,
}

struct VmHost {
    exe: PathBuf,
    dir: PathBuf,
    sim_url: String,
    notify_url: String,
    db: PathBuf,
    vms: HashMap<String, VmProcesses>,
    incarnations: u32,
    killed_with_vm: u32,
}

impl VmHost {
    /// Starts processes for VMs that run and have none; kills the processes of VMs that no
    /// longer run.
    fn reconcile(&mut self, sim_vms: &[SimVm]) -> anyhow::Result<()> {
        for procs in self.vms.values_mut() {
            if !procs.exited && procs.agent.try_wait()?.is_some() {
                procs.exited = true;
            }
        }
        let running: HashMap<&str, &SimVm> = sim_vms
            .iter()
            .filter(|v| v.power == "running")
            .map(|v| (v.name.as_str(), v))
            .collect();
        let gone: Vec<String> = self
            .vms
            .keys()
            .filter(|name| !running.contains_key(name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            if let Some(mut procs) = self.vms.remove(&name)
                && !procs.exited
            {
                // A VM that vanishes (or is deallocated) takes its processes with it, whatever
                // they were doing: an eviction without notice, or one shorter than the drain.
                kill_session(procs.agent.id());
                let _ = procs.agent.wait();
                self.killed_with_vm += 1;
            }
        }
        for (name, vm) in running {
            if !self.vms.contains_key(name) {
                let agent = self.start(vm)?;
                self.vms.insert(
                    name.to_string(),
                    VmProcesses {
                        agent,
                        offering: vm.offering.clone(),
                        exited: false,
                    },
                );
            }
        }
        Ok(())
    }

    fn start(&mut self, vm: &SimVm) -> anyhow::Result<Child> {
        self.incarnations += 1;
        let scratch = self
            .dir
            .join("vms")
            .join(format!("{}-{}", vm.name, self.incarnations));
        std::fs::create_dir_all(&scratch)?;
        let log = std::fs::File::create(scratch.with_extension("log"))?;
        let mut c = Command::new("setsid");
        c.arg(&self.exe)
            .args(["agent", "--vm-name", &vm.name, "--imds-url"])
            .arg(format!("{}/vm/{}", self.sim_url, vm.name))
            .args(["--notify-url", &self.notify_url])
            .args(["--poll-interval", "1s", "--safety-margin", "1s"])
            .arg("--")
            .arg(&self.exe)
            .args(["worker", "--queue"])
            .arg(format!("sqlite:{}?name={QUEUE_NAME}", self.db.display()))
            .arg("--store")
            .arg(format!("sqlite:{}?name=effects", self.db.display()))
            .args([
                "--concurrency",
                "2",
                "--prefetch",
                "1",
                "--lease",
                "10s",
                "--max-dequeue",
                "100",
                "--shutdown-budget",
                "3s",
                "--checkpoint-grace",
                "1s",
                "--scratch",
            ])
            .arg(&scratch)
            .args(["--", "sh", "-c", HANDLER])
            .env("DEMO_ATTEMPTS", self.dir.join("attempts"))
            .env("SPOTKIT_LOG", "info,spotkit_worker=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        c.spawn().context(
            "cannot start `setsid spotkit agent` for a simulated VM (setsid is in util-linux)",
        )
    }

    /// SIGTERM every agent (each drains its worker), then SIGKILL what is left after `grace`.
    async fn stop_all(&mut self, grace: Duration) {
        for procs in self.vms.values_mut() {
            if !procs.exited
                && let Ok(pid) = i32::try_from(procs.agent.id())
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        // Polls of 100 ms: counting them keeps the wait off the wall clock.
        for _ in 0..grace.as_millis() / 100 {
            if !self
                .vms
                .values_mut()
                .any(|p| !p.exited && matches!(p.agent.try_wait(), Ok(None)))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for procs in self.vms.values_mut() {
            kill_session(procs.agent.id());
            let _ = procs.agent.wait();
        }
        self.vms.clear();
    }

    /// VMs whose processes are up, per offering.
    fn serving(&mut self) -> BTreeMap<String, u32> {
        let mut by = BTreeMap::new();
        for procs in self.vms.values_mut() {
            if !procs.exited && matches!(procs.agent.try_wait(), Ok(None)) {
                *by.entry(procs.offering.clone()).or_insert(0) += 1;
            }
        }
        by
    }
}

/// SIGKILLs every process of session `sid` until none is left (a handler may fork meanwhile).
fn kill_session(sid: u32) {
    let Ok(sid) = i32::try_from(sid) else { return };
    for _ in 0..10 {
        let members = session_members(sid);
        if members.is_empty() {
            return;
        }
        for pid in members {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Live (not zombie) processes whose session id is `sid`, from /proc.
fn session_members(sid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // After the command name in parentheses: state ppid pgrp session ...
                let fields: Vec<&str> = stat
                    .rsplit_once(')')
                    .map(|(_, rest)| rest.split_whitespace().collect())
                    .unwrap_or_default();
                fields.first().is_some_and(|s| *s != "Z")
                    && fields.get(3).and_then(|s| s.parse::<i32>().ok()) == Some(sid)
            })
        })
        .collect()
}

// ----- the pool -----

/// Offerings of the scenario, cheapest spot price first: the pool's ranked candidates.
fn ranked_offerings(scenario: &Scenario) -> Vec<(String, String, u32, f64, f64)> {
    let vcpus: HashMap<&str, u32> = scenario
        .sizes
        .iter()
        .map(|s| (s.name.as_str(), s.vcpus))
        .collect();
    let mut offerings: Vec<(String, String, u32, f64, f64)> = scenario
        .offerings
        .iter()
        .map(|o| {
            let spot = o.spot.unwrap_or(o.payg * o.spot_ratio.unwrap_or(1.0));
            (
                o.region.clone(),
                o.size.clone(),
                vcpus.get(o.size.as_str()).copied().unwrap_or(1),
                spot,
                o.payg,
            )
        })
        .collect();
    offerings.sort_by(|a, b| a.3.total_cmp(&b.3).then_with(|| a.0.cmp(&b.0)));
    offerings
}

fn pool_toml(vms: u32, candidates: &[(String, String, u32, f64, f64)]) -> String {
    let mut text = format!(
        r#"name = "{POOL_NAME}"
resource_group = "rg-spotkit-demo"
eviction_policy = "delete"
[target]
vms = {vms}
[template]
image = "Canonical:ubuntu-24_04-lts:server:latest"
[limits]
max_surge = 1
max_concurrent_operations = 12
disruption_budget = 1
[placement]
unavailable_ttl = "30s"
eviction_block_ttl = "60s"
max_share = 0.34
[timing]
retry_backoff_base = "1s"
retry_backoff_max = "10s"
notice_grace = "1m"
resync_interval = "5s"
list_lag_grace = "10s"
"#
    );
    for (region, size, vcpus, _, _) in candidates {
        text.push_str(&format!(
            "[[candidates]]\nsize = \"{size}\"\nregion = \"{region}\"\nvcpus = {vcpus}\n"
        ));
    }
    text
}

// ----- talking to the simulator's admin API -----

struct SimAdmin {
    http: reqwest::Client,
    base: String,
}

impl SimAdmin {
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let r = self.http.get(&url).send().await?.error_for_status()?;
        r.json()
            .await
            .with_context(|| format!("GET {url}: not JSON"))
    }

    async fn vms(&self) -> anyhow::Result<Vec<SimVm>> {
        let list = self.get("/_sim/vms").await?;
        let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
        Ok(list
            .as_array()
            .map(|vms| {
                vms.iter()
                    .map(|v| SimVm {
                        name: text(v, "name"),
                        offering: text(v, "offering"),
                        priority: text(v, "priority"),
                        power: text(v, "power"),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn inject(&self, event: &Value) -> anyhow::Result<()> {
        self.http
            .post(format!("{}/_sim/events", self.base))
            .json(event)
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("the simulator refused the scripted event {event}"))?;
        Ok(())
    }
}

/// `region/size` of an offering (the simulator's and `OfferingId`'s spelling).
fn split_offering(offering: &str) -> (&str, &str) {
    offering.split_once('/').unwrap_or((offering, ""))
}

fn busiest<'a>(keys: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for k in keys {
        *counts.entry(k).or_insert(0) += 1;
    }
    // Most VMs first; ties by name, so a seed gives one history.
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(k, _)| k.to_string())
}

fn scripted_event(step: Scripted, vms: &[SimVm]) -> Option<(Value, String)> {
    let running: Vec<&SimVm> = vms
        .iter()
        .filter(|v| v.power == "running" && v.priority == "Spot")
        .collect();
    match step {
        Scripted::Evict {
            count,
            notice_s,
            target: Target::BusiestOffering,
        } => {
            let offering = busiest(running.iter().map(|v| v.offering.as_str()))?;
            let (region, size) = split_offering(&offering);
            Some((
                serde_json::json!({"kind":"evict","region":region,"size":size,"count":count,"notice_seconds":notice_s}),
                format!("storm: evict {count} in {offering} with {notice_s} s notice"),
            ))
        }
        Scripted::Evict {
            count,
            notice_s,
            target: Target::BusiestRegion,
        } => {
            let region = busiest(running.iter().map(|v| split_offering(&v.offering).0))?;
            Some((
                serde_json::json!({"kind":"evict","region":region,"count":count,"notice_seconds":notice_s}),
                format!(
                    "storm: correlated burst, {count} VMs of {region} at once, {notice_s} s notice"
                ),
            ))
        }
        Scripted::CapacityGone { for_s } => {
            let offering = busiest(running.iter().map(|v| v.offering.as_str()))?;
            let (region, size) = split_offering(&offering);
            Some((
                serde_json::json!({"kind":"capacity","region":region,"size":size,"capacity":0,"for_seconds":for_s}),
                format!("storm: {offering} spot capacity gone for {for_s} s"),
            ))
        }
    }
}

// ----- the figures -----

#[derive(Debug, Serialize)]
struct DemoSummary {
    vms: u32,
    messages_total: u32,
    messages_processed: u64,
    effects_duplicated: u64,
    messages_lost: u64,
    messages_unfinished: u64,
    messages_poisoned: u64,
    handler_completions: u64,
    messages_resumed_from_checkpoint: u64,
    evictions_with_30s_notice: u32,
    evictions_with_short_notice: u32,
    evictions_without_notice: u32,
    replacements: u32,
    time_to_replace_mean_s: Option<f64>,
    time_to_replace_max_s: Option<f64>,
    processes_killed_with_their_vm: u32,
    capacity_availability: f64,
    cost_usd: f64,
    on_demand_cost_usd: f64,
    savings_fraction: f64,
    duration_s: f64,
    report_path: String,
    ok: bool,
}

/// What the samples and the simulator's log collect while the run goes.
#[derive(Default)]
struct Metrics {
    /// Serving VMs per offering label, step series.
    capacity: BTreeMap<String, Vec<(f64, f64)>>,
    queue: Vec<(f64, f64)>,
    committed: Vec<(f64, f64)>,
    cost: Vec<(f64, f64)>,
    on_demand: Vec<(f64, f64)>,
    events: Vec<EventMarker>,
    evictions: [u32; 3],
    eviction_rows: Vec<Vec<String>>,
    serving_vm_seconds: f64,
    last_sample_s: Option<f64>,
    log_next: u64,
}

impl Metrics {
    fn sample_capacity(&mut self, t: f64, serving: &BTreeMap<String, u32>) {
        if let Some(last) = self.last_sample_s {
            let live: u32 = self
                .capacity
                .values()
                .filter_map(|s| s.last())
                .map(|(_, n)| *n as u32)
                .sum();
            self.serving_vm_seconds += f64::from(live) * (t - last);
        }
        self.last_sample_s = Some(t);
        for key in serving.keys() {
            self.capacity.entry(key.clone()).or_default();
        }
        for (key, series) in &mut self.capacity {
            let n = f64::from(serving.get(key).copied().unwrap_or(0));
            if series.last().is_none_or(|(_, last)| *last != n) {
                series.push((t, n));
            }
        }
    }

    fn read_log(&mut self, log: &Value, start: Timestamp) {
        let Some(entries) = log["entries"].as_array() else {
            return;
        };
        for e in entries {
            let at = e["at_unix_ms"].as_i64().unwrap_or(0);
            let t = (at - start.unix_millis()) as f64 / 1000.0;
            let vm = e["vm"].as_str().unwrap_or("?");
            let offering = e["offering"].as_str().map_or_else(
                || e["offering"].to_string(),
                std::string::ToString::to_string,
            );
            let detail = e["detail"].as_str().unwrap_or_default();
            match e["kind"].as_str().unwrap_or_default() {
                "eviction_noticed" => {
                    let notice_s = detail
                        .split("notice ")
                        .nth(1)
                        .and_then(|rest| rest.split(',').next())
                        .and_then(|d| humantime::parse_duration(d.trim()).ok())
                        .map_or(0.0, |d| d.as_secs_f64());
                    let notice = Notice::classify(Some(notice_s));
                    let index = match notice {
                        Notice::Standard => 0,
                        Notice::Short => 1,
                        Notice::None => 2,
                    };
                    self.evictions[index] += 1;
                    self.events.push(EventMarker::new(
                        t,
                        EventKind::Eviction { notice },
                        format!("{vm} ({offering}) evicted, {notice_s:.0} s notice"),
                    ));
                    self.eviction_rows.push(vec![
                        format!("{t:.1}"),
                        vm.to_string(),
                        offering,
                        format!("{notice_s:.0} s"),
                    ]);
                }
                "capacity_changed" => self.events.push(EventMarker::new(
                    t,
                    EventKind::CapacityChange,
                    format!("{offering}: {detail}"),
                )),
                _ => {}
            }
        }
        self.log_next = log["next"].as_u64().unwrap_or(self.log_next);
    }
}

fn offering_label(offering: &str) -> String {
    let (region, size) = split_offering(offering);
    format!("{region} / {} / spot", size.trim_start_matches("Standard_"))
}

/// Cost so far from the bill, and the same VM-seconds at pay-as-you-go prices of the same
/// sizes (disks cost the same either way).
fn bill_costs(bill: &Value, payg: &HashMap<String, f64>) -> (f64, f64) {
    let total = bill["total_usd"].as_f64().unwrap_or(0.0);
    let on_demand = bill["lines"].as_array().map_or(0.0, |lines| {
        lines
            .iter()
            .map(|l| {
                let price = l["offering"]
                    .as_str()
                    .and_then(|o| payg.get(o))
                    .copied()
                    .unwrap_or(0.0);
                l["compute_seconds"].as_f64().unwrap_or(0.0) * price / 3600.0
                    + l["disk_usd"].as_f64().unwrap_or(0.0)
            })
            .sum()
    });
    (total, on_demand)
}

fn rfc3339(t: Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.unix_millis()) * 1_000_000)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.unix_millis().to_string())
}

struct Progress {
    terminal: bool,
    last_line_s: f64,
}

impl Progress {
    fn show(&mut self, t: f64, line: &str, force: bool) {
        if self.terminal {
            eprint!("\r{line:<110}");
        } else if force || t - self.last_line_s >= 5.0 {
            eprintln!("{line}");
            self.last_line_s = t;
        }
    }
}

// ----- the run -----

#[allow(clippy::too_many_lines)] // one run, in the order it happens
async fn run(args: &DemoArgs) -> anyhow::Result<u8> {
    let exe = std::env::current_exe()?;
    let dir = tempfile::Builder::new().prefix("spotkit-demo-").tempdir()?;
    let db = dir.path().join("work.db");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let queue_url = format!("sqlite:{}?name={QUEUE_NAME}", db.display());
    let queue = open_queue(&queue_url, clock.clone())?;
    let poison = open_queue(&crate::backends::poison_url(&queue_url)?, clock.clone())?;
    let store = open_store(
        &format!("sqlite:{}?name=effects", db.display()),
        clock.clone(),
    )?;
    queue.create_if_missing().await?;
    poison.create_if_missing().await?;
    store.create_if_missing().await?;
    for i in 0..args.messages {
        queue
            .send(format!("job-{i}").as_bytes(), Duration::ZERO)
            .await?;
    }

    // The simulated cloud, at speed 1: agents compare NotBefore with their own wall clock.
    let scenario = Scenario::from_toml(DEMO_SCENARIO_TOML, "built-in demo scenario")?;
    let candidates = ranked_offerings(&scenario);
    let payg: HashMap<String, f64> = candidates
        .iter()
        .map(|(region, size, _, _, payg)| (format!("{region}/{size}"), *payg))
        .collect();
    let start = clock.now();
    let cloud = SpotCloud::new(scenario, args.seed, start, Path::new("../shared/traces"))?;
    let sim_clock = Arc::new(ScaledClock::new(clock.clone(), start, 1.0));
    let (sim_addr, sim_task) = SimServer::new(cloud, sim_clock).spawn_on_loopback().await?;
    let sim_url = format!("http://{sim_addr}");
    let admin = SimAdmin {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        base: sim_url.clone(),
    };

    // The orchestrator and its notice endpoint.
    let (reports_tx, reports_rx) = mpsc::channel(1024);
    let notice_listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let notify_url = format!("http://{}/notice", notice_listener.local_addr()?);
    let arm = ArmClient::new(
        &sim_url,
        Arc::new(StaticToken::new("spotkit-demo")),
        ArmClientOptions {
            jitter_seed: Some(args.seed),
            clock: clock.clone(),
            ..ArmClientOptions::default()
        },
    )?;
    let compute = AzureCompute::new(
        Arc::new(arm),
        SIM_SUBSCRIPTION,
        AzureComputeOptions {
            lro: LroOptions {
                poll_interval: Duration::from_secs(1),
                max_poll_interval: Duration::from_secs(2),
                ..LroOptions::default()
            },
            ..AzureComputeOptions::default()
        },
    );
    let spec = spotkit_orchestrator::parse_pool(
        &pool_toml(args.vms, &candidates),
        Path::new("built-in demo pool"),
        |_| spotkit_core::advisor::Advice {
            ranked: Vec::new(),
            excluded: BTreeMap::new(),
        },
    )?;
    let machine = PoolMachine::new(spec, clock.now(), args.seed);
    let runner = PoolRunner::new(
        Arc::new(compute),
        Arc::new(SystemClock),
        machine,
        reports_rx,
    );
    let status: watch::Receiver<PoolStatus> = runner.status();
    let router = notice_router(reports_tx, runner.view(), clock.clone());
    let notice_task = tokio::spawn(async move { axum::serve(notice_listener, router).await });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner_task = tokio::spawn(runner.run(async move {
        let _ = stop_rx.await;
    }));

    let mut host = VmHost {
        exe,
        dir: dir.path().to_path_buf(),
        sim_url: sim_url.clone(),
        notify_url,
        db: db.clone(),
        vms: HashMap::new(),
        incarnations: 0,
        killed_with_vm: 0,
    };
    let mut metrics = Metrics::default();
    let mut progress = Progress {
        terminal: std::io::stderr().is_terminal(),
        last_line_s: -10.0,
    };
    progress.show(
        0.0,
        &format!(
            "spotkit demo: {} messages, pool of {} spot VMs over 12 offerings; simulator {sim_url}",
            args.messages, args.vms
        ),
        true,
    );
    let elapsed = |clock: &Arc<dyn Clock>| clock.now().since(start).as_secs_f64();
    let mut storm_start: Option<f64> = None;
    let mut storm_next = 0;
    let mut next_sample = 0.0;
    let mut committed = 0u64;
    let mut waiting = u64::from(args.messages);
    let mut finished = false;
    let mut run_error: Option<anyhow::Error> = None;
    loop {
        let t = elapsed(&clock);
        let step: anyhow::Result<()> = async {
            let sim_vms = admin.vms().await?;
            host.reconcile(&sim_vms)?;
            let serving = host.serving();
            let live: u32 = serving.values().sum();
            if storm_start.is_none()
                && (live >= args.vms || t >= STORM_START_LATEST.as_secs_f64())
            {
                storm_start = Some(t);
            }
            if let Some(s0) = storm_start {
                while storm_next < STORM.len() && t - s0 >= STORM[storm_next].0 as f64 {
                    if let Some((event, label)) = scripted_event(STORM[storm_next].1, &sim_vms) {
                        admin.inject(&event).await?;
                        metrics
                            .events
                            .push(EventMarker::new(t, EventKind::Note, label));
                    }
                    storm_next += 1;
                }
            }
            if t >= next_sample {
                next_sample = t + SAMPLE_EVERY.as_secs_f64();
                let labelled: BTreeMap<String, u32> = serving
                    .iter()
                    .map(|(k, v)| (offering_label(k), *v))
                    .collect();
                metrics.sample_capacity(t, &labelled);
                waiting = queue.approximate_len().await?;
                committed = store.list("ledger/").await?.len() as u64;
                metrics.queue.push((t, waiting as f64));
                metrics.committed.push((t, committed as f64));
                let (cost, on_demand) = bill_costs(&admin.get("/_sim/bill").await?, &payg);
                metrics.cost.push((t, cost));
                metrics.on_demand.push((t, on_demand));
                let log = admin
                    .get(&format!("/_sim/log?since={}", metrics.log_next))
                    .await?;
                metrics.read_log(&log, start);
                let [e30, eshort, enone] = metrics.evictions;
                progress.show(
                    t,
                    &format!(
                        "[{:>5.1}s] VMs {live}/{} | queue {waiting} | processed {committed}/{} | evictions {} (30s {e30}, short {eshort}, none {enone})",
                        t,
                        args.vms,
                        args.messages,
                        e30 + eshort + enone
                    ),
                    false,
                );
            }
            Ok(())
        }
        .await;
        if let Err(e) = step {
            run_error = Some(e);
            break;
        }
        let storm_done = storm_next >= STORM.len()
            && storm_start.is_some_and(|s0| {
                t - s0 >= STORM[STORM.len() - 1].0 as f64 + SETTLE_AFTER_STORM.as_secs_f64()
            });
        if storm_done && waiting == 0 && committed >= u64::from(args.messages) {
            finished = true;
            break;
        }
        if t >= args.duration_limit.as_secs_f64() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let duration_s = elapsed(&clock);
    if progress.terminal {
        eprintln!();
    }
    if !finished && run_error.is_none() {
        eprintln!(
            "spotkit demo: time limit ({}) reached before the queue drained",
            humantime::format_duration(args.duration_limit)
        );
    }

    // The end: the orchestrator first (no more replacements), then the VMs' processes, gracefully.
    let _ = stop_tx.send(());
    host.stop_all(Duration::from_secs(10)).await;
    let final_status = status.borrow().clone();
    let _ = tokio::time::timeout(Duration::from_secs(10), runner_task).await;
    let final_bill = admin.get("/_sim/bill").await;
    let final_log = admin
        .get(&format!("/_sim/log?since={}", metrics.log_next))
        .await;
    if let Ok(log) = &final_log {
        metrics.read_log(log, start);
    }
    sim_task.abort();
    notice_task.abort();
    if let Some(e) = run_error {
        return Err(e.context("the demo stopped early"));
    }
    let (cost_usd, on_demand_cost_usd) = final_bill.map_or_else(
        |_| {
            (
                metrics.cost.last().map_or(0.0, |c| c.1),
                metrics.on_demand.last().map_or(0.0, |c| c.1),
            )
        },
        |b| bill_costs(&b, &payg),
    );
    metrics.cost.push((duration_s, cost_usd));
    metrics.on_demand.push((duration_s, on_demand_cost_usd));

    // The checks: every message's effect exactly once.
    let mut effects_per_message: BTreeMap<String, u64> = BTreeMap::new();
    let mut resumed = 0u64;
    for key in store.list("ledger/").await? {
        if let Some(obj) = store.get(&key).await? {
            let body = String::from_utf8_lossy(&obj.body).to_string();
            if !body.ends_with("from step 0)") {
                resumed += 1;
            }
            let message = body.split(" done").next().unwrap_or_default().to_string();
            *effects_per_message.entry(message).or_insert(0) += 1;
        }
    }
    let processed = (0..args.messages)
        .filter(|i| effects_per_message.contains_key(&format!("job-{i}")))
        .count() as u64;
    let effects_duplicated: u64 = effects_per_message.values().map(|n| n - 1).sum();
    let unfinished = queue.approximate_len().await?;
    let poisoned = poison.approximate_len().await?;
    let messages_lost = (u64::from(args.messages) - processed).saturating_sub(unfinished);
    let handler_completions = std::fs::read_to_string(dir.path().join("attempts"))
        .unwrap_or_default()
        .lines()
        .count() as u64;

    let records = &final_status.evictions;
    let replaced: Vec<f64> = records
        .iter()
        .filter_map(spotkit_core::orchestrator::EvictionRecord::time_to_replace)
        .map(|d| d.as_secs_f64())
        .collect();
    for r in records {
        if let (Some(at), Some(by)) = (r.replaced_at, &r.replacement) {
            metrics.events.push(EventMarker::new(
                at.since(start).as_secs_f64(),
                EventKind::Replacement,
                format!(
                    "{by} replaces {} ({:.1} s)",
                    r.vm,
                    at.since(r.seen_at).as_secs_f64()
                ),
            ));
        }
    }
    metrics.events.sort_by(|a, b| a.at.total_cmp(&b.at));
    let mean = (!replaced.is_empty()).then(|| replaced.iter().sum::<f64>() / replaced.len() as f64);
    let max = replaced.iter().copied().reduce(f64::max);
    metrics.sample_capacity(duration_s, &BTreeMap::new());
    let availability = if duration_s > 0.0 {
        (metrics.serving_vm_seconds / (f64::from(args.vms) * duration_s)).min(1.0)
    } else {
        0.0
    };
    let savings = if on_demand_cost_usd > 0.0 {
        1.0 - cost_usd / on_demand_cost_usd
    } else {
        0.0
    };
    let ok = finished
        && messages_lost == 0
        && effects_duplicated == 0
        && processed == u64::from(args.messages);

    let mut summary = DemoSummary {
        vms: args.vms,
        messages_total: args.messages,
        messages_processed: processed,
        effects_duplicated,
        messages_lost,
        messages_unfinished: unfinished,
        messages_poisoned: poisoned,
        handler_completions,
        messages_resumed_from_checkpoint: resumed,
        evictions_with_30s_notice: metrics.evictions[0],
        evictions_with_short_notice: metrics.evictions[1],
        evictions_without_notice: metrics.evictions[2],
        replacements: replaced.len() as u32,
        time_to_replace_mean_s: mean,
        time_to_replace_max_s: max,
        processes_killed_with_their_vm: host.killed_with_vm,
        capacity_availability: availability,
        cost_usd,
        on_demand_cost_usd,
        savings_fraction: savings,
        duration_s,
        report_path: String::new(),
        ok,
    };
    let report = build_report(
        &summary,
        &mut metrics,
        start,
        &records_rows(&final_status, start),
    );
    let path = spotkit_report::write_report(&args.out, &report)
        .with_context(|| format!("cannot write the report into {}", args.out.display()))?;
    summary.report_path = std::fs::canonicalize(&path)
        .unwrap_or(path)
        .display()
        .to_string();

    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    if args.keep {
        let kept = dir.keep();
        eprintln!(
            "kept {} (work.db: queue and ledger; vms/*.log: each VM's agent and worker)",
            kept.display()
        );
    }
    Ok(if ok { 0 } else { 1 })
}

fn records_rows(status: &PoolStatus, start: Timestamp) -> Vec<Vec<String>> {
    status
        .evictions
        .iter()
        .map(|r| {
            vec![
                format!("{:.1}", r.seen_at.since(start).as_secs_f64()),
                r.vm.clone(),
                r.offering.to_string(),
                format!("{:?}", r.via),
                r.replacement.clone().unwrap_or_else(|| "-".into()),
                r.time_to_replace()
                    .map_or_else(|| "-".into(), |d| format!("{:.1} s", d.as_secs_f64())),
            ]
        })
        .collect()
}

fn build_report(
    s: &DemoSummary,
    m: &mut Metrics,
    start: Timestamp,
    replacement_rows: &[Vec<String>],
) -> RunReport {
    let duration = Duration::from_secs_f64(s.duration_s.max(1.0));
    let mut report = RunReport::new(
        "spotkit demo",
        format!(
            "A pool of {} spot VMs (real local agent and worker processes) over 3 regions x 4 sizes of a simulated Azure, through a scripted eviction storm, working {} messages off an embedded queue.",
            s.vms, s.messages_total
        ),
        rfc3339(start),
        duration,
    );
    let judged = |label: &str, value: u64| {
        SummaryItem::judged(
            label,
            value.to_string(),
            if value == 0 {
                Verdict::Ok
            } else {
                Verdict::Bad
            },
        )
    };
    let secs = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1} s"));
    report.summary = vec![
        SummaryItem::judged(
            "messages processed",
            format!("{} / {}", s.messages_processed, s.messages_total),
            if s.messages_processed == u64::from(s.messages_total) {
                Verdict::Ok
            } else {
                Verdict::Bad
            },
        ),
        judged("effects duplicated", s.effects_duplicated),
        judged("messages lost", s.messages_lost),
        SummaryItem::new(
            "evictions (30 s / short / none)",
            format!(
                "{} / {} / {}",
                s.evictions_with_30s_notice,
                s.evictions_with_short_notice,
                s.evictions_without_notice
            ),
        ),
        SummaryItem::new("replacements", s.replacements.to_string()),
        SummaryItem::new(
            "time to replace (mean / worst)",
            format!(
                "{} / {}",
                secs(s.time_to_replace_mean_s),
                secs(s.time_to_replace_max_s)
            ),
        ),
        SummaryItem::new(
            "capacity availability",
            format!("{:.1} %", s.capacity_availability * 100.0),
        ),
        SummaryItem::new(
            "cost vs all on-demand",
            format!(
                "{:.5} USD vs {:.5} USD ({:.0} % saved)",
                s.cost_usd,
                s.on_demand_cost_usd,
                s.savings_fraction * 100.0
            ),
        ),
    ];
    report.events = std::mem::take(&mut m.events);
    let capacity: Vec<Series> = std::mem::take(&mut m.capacity)
        .into_iter()
        .map(|(name, points)| Series::new(name, points))
        .collect();
    report.charts = vec![
        Chart::capacity_by_pool(capacity),
        Chart::evictions_per_minute(&report.events, duration),
        Chart::queue_depth(vec![
            Series::new("messages on the queue", std::mem::take(&mut m.queue)),
            Series::new("effects committed", std::mem::take(&mut m.committed)),
        ]),
        Chart::cumulative_cost(
            std::mem::take(&mut m.cost),
            std::mem::take(&mut m.on_demand),
        ),
    ];
    report.tables = vec![
        Table {
            title: "Evictions (from the simulator's log)".into(),
            columns: vec![
                "t (s)".into(),
                "VM".into(),
                "offering".into(),
                "notice".into(),
            ],
            rows: std::mem::take(&mut m.eviction_rows),
        },
        Table {
            title: "Losses the orchestrator saw, and their replacements".into(),
            columns: vec![
                "t (s)".into(),
                "VM".into(),
                "offering".into(),
                "seen via".into(),
                "replacement".into(),
                "time to replace".into(),
            ],
            rows: replacement_rows.to_vec(),
        },
    ];
    report
}

fn print_summary(s: &DemoSummary) {
    let secs = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1} s"));
    println!(
        "spotkit demo: {} spot VMs, {} messages, {:.0} s",
        s.vms, s.messages_total, s.duration_s
    );
    println!(
        "  messages processed      {} / {}",
        s.messages_processed, s.messages_total
    );
    println!("  effects duplicated      {}", s.effects_duplicated);
    println!(
        "  messages lost           {}   (unfinished on the queue {}, poisoned {})",
        s.messages_lost, s.messages_unfinished, s.messages_poisoned
    );
    println!(
        "  handler completions     {}   (re-runs after SIGKILL are absorbed by the idempotency ledger)",
        s.handler_completions
    );
    println!(
        "  resumed from checkpoint {}   (interrupted on an evicted VM, finished on another)",
        s.messages_resumed_from_checkpoint
    );
    println!(
        "  evictions               30 s notice {}, short notice {}, no notice {}",
        s.evictions_with_30s_notice, s.evictions_with_short_notice, s.evictions_without_notice
    );
    println!(
        "  replacements            {}   time to replace mean {}, worst {}",
        s.replacements,
        secs(s.time_to_replace_mean_s),
        secs(s.time_to_replace_max_s)
    );
    println!(
        "  VMs killed mid-work     {}   (their processes died with the VM)",
        s.processes_killed_with_their_vm
    );
    println!(
        "  capacity availability   {:.1} %   (VM-seconds serving / ({} x run time))",
        s.capacity_availability * 100.0,
        s.vms
    );
    println!(
        "  cost                    {:.5} USD vs {:.5} USD all on-demand ({:.0} % saved)",
        s.cost_usd,
        s.on_demand_cost_usd,
        s.savings_fraction * 100.0
    );
    println!("  report                  {}", s.report_path);
    println!(
        "{}",
        if s.ok {
            "demo OK: evicted again and again, nothing lost, nothing done twice"
        } else {
            "demo FAILED"
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_offering_wins_ties_by_name() {
        let keys = ["b/x", "a/x", "b/x", "a/x", "c/x"];
        assert_eq!(busiest(keys.into_iter()).as_deref(), Some("a/x"));
        assert_eq!(busiest(std::iter::empty()), None);
    }

    #[test]
    fn the_pool_file_ranks_all_twelve_offerings_cheapest_first() {
        let scenario = Scenario::from_toml(DEMO_SCENARIO_TOML, "demo").unwrap();
        let ranked = ranked_offerings(&scenario);
        assert_eq!(ranked.len(), 12);
        assert!(ranked.windows(2).all(|w| w[0].3 <= w[1].3));
        let spec =
            spotkit_orchestrator::parse_pool(&pool_toml(6, &ranked), Path::new("demo"), |_| {
                unreachable!("explicit candidates")
            })
            .unwrap();
        assert_eq!(spec.candidates.len(), 12);
    }

    #[test]
    fn costs_from_the_bill() {
        let bill = serde_json::json!({"total_usd": 0.01, "lines": [
            {"offering": "eastus/Standard_D2s_v5", "compute_seconds": 3600.0, "disk_usd": 0.002}]});
        let payg = HashMap::from([("eastus/Standard_D2s_v5".to_string(), 0.096)]);
        let (cost, on_demand) = bill_costs(&bill, &payg);
        assert!((cost - 0.01).abs() < 1e-12 && (on_demand - 0.098).abs() < 1e-12);
    }
}
