//! `spotkit bench`: benchmarks that print figures for docs/benchmarks.md. Not timed tests.
//!
//! `bench agent` measures, on the real binaries over loopback:
//! - latency from a Preempt becoming visible in the emulator to SIGTERM reaching the workload,
//!   over many events, one fresh agent per event (the agent exits after each drain);
//! - CPU time per poll and resident memory of an idle agent at its poll rate, side by side with a
//!   bare poll loop (`bench bare-poll`: the same HTTP GET with nothing else) in the same run.
#![allow(clippy::disallowed_methods)] // a benchmark measures real time: that is its job

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};

use crate::Failure;
use crate::admin::EmulatorProcess;

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Agent latency (event visible -> SIGTERM at the workload), CPU per poll and RSS.
    Agent(AgentBench),
    /// Worker throughput against a bare receive/delete loop on the same queue.
    Worker(crate::bench_worker::WorkerBench),
    /// Drain time at shutdown with N handlers in flight.
    Drain(crate::bench_worker::DrainBench),
    /// Can't Be Late: a job with a deadline over the real 1-node spot traces, per policy.
    Deadline(crate::bench_deadline::DeadlineBench),
    /// A pool of K VMs over the real traces: five policies side by side.
    Pools(crate::bench_pools::PoolsBench),
    /// Advisor ranking of a large catalogue against clone and sort baselines.
    Advisor(crate::bench_advisor::AdvisorBench),
    /// Deterministic simulation soak: seeds/s and invariant violations (exit 1 on any).
    Dst(crate::bench_dst::DstBench),
    /// Orchestrator decision time for a large pool, next to cloning its observation list.
    Orchestrator(OrchestratorBench),
    /// 1,000 simultaneous evictions against the in-process simulator: replacement PUTs per
    /// second against the throttle-limited optimum, and the 429s met.
    MassEviction(MassEvictionBench),
    /// A bare Scheduled Events poll loop: the baseline `bench agent` compares against.
    #[command(hide = true)]
    BarePoll {
        #[arg(long)]
        url: String,
        #[arg(long, value_parser = humantime::parse_duration)]
        interval: Duration,
    },
    /// Workload stand-in: waits for SIGTERM, writes the Unix time in ns to FILE, exits 0.
    #[command(hide = true)]
    SigtermProbe {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct AgentBench {
    /// Number of Preempt events (one agent run each).
    #[arg(long, default_value_t = 100)]
    events: usize,
    /// The agent's poll interval.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    poll_interval: Duration,
    /// How long the idle agent and the bare loop run for the CPU and memory figures.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    idle: Duration,
}

pub fn main(cmd: BenchCommand) -> Result<u8, Failure> {
    match cmd {
        BenchCommand::SigtermProbe { out } => sigterm_probe(&out).map_err(Failure::runtime),
        BenchCommand::BarePoll { url, interval } => {
            bare_poll(&url, interval).map_err(Failure::runtime)
        }
        BenchCommand::Worker(args) => block_on(crate::bench_worker::bench_worker(&args)),
        BenchCommand::Drain(args) => block_on(crate::bench_worker::bench_drain(&args)),
        BenchCommand::Pools(args) => {
            crate::bench_pools::bench_pools(&args).map_err(Failure::runtime)
        }
        BenchCommand::Deadline(args) => {
            crate::bench_deadline::bench_deadline(&args).map_err(Failure::runtime)
        }
        BenchCommand::Advisor(args) => {
            crate::bench_advisor::bench_advisor(&args).map_err(Failure::runtime)
        }
        BenchCommand::Dst(args) => crate::bench_dst::bench_dst(&args),
        BenchCommand::Orchestrator(args) => {
            bench_orchestrator(&args);
            Ok(0)
        }
        BenchCommand::MassEviction(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(Failure::runtime)?;
            runtime
                .block_on(bench_mass_eviction(&args))
                .map_err(Failure::runtime)?;
            Ok(0)
        }
        BenchCommand::Agent(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map_err(Failure::runtime)?;
            runtime
                .block_on(bench_agent(&args))
                .map_err(Failure::runtime)
        }
    }
}

fn block_on(f: impl std::future::Future<Output = anyhow::Result<u8>>) -> Result<u8, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Failure::runtime)?
        .block_on(f)
        .map_err(Failure::runtime)
}

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

fn sigterm_probe(out: &Path) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        term.recv().await;
        std::fs::write(out, unix_ns().to_string())?;
        Ok(0)
    })
}

fn bare_poll(url: &str, interval: Duration) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let http = reqwest::Client::builder().no_proxy().build()?;
        loop {
            if let Ok(r) = http.get(url).header("Metadata", "true").send().await {
                let _ = r.bytes().await;
            }
            tokio::time::sleep(interval).await;
        }
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * (sorted.len() as f64)).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct ProcSample {
    cpu_ns: u64,
    rss_kib: u64,
    hwm_kib: u64,
}

fn sample(pid: u32) -> anyhow::Result<ProcSample> {
    let schedstat = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .with_context(|| format!("/proc/{pid}/schedstat"))?;
    let cpu_ns = schedstat
        .split_whitespace()
        .next()
        .context("empty schedstat")?
        .parse()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcSample {
        cpu_ns,
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    })
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn bench_agent(args: &AgentBench) -> anyhow::Result<u8> {
    let exe = std::env::current_exe()?;
    let vm = "bench-vm";
    let emulator = EmulatorProcess::start(vm)?;
    let interval = humantime::format_duration(args.poll_interval).to_string();
    let work = tempfile::tempdir()?;
    println!(
        "spotkit bench agent: {} events, poll interval {interval}, idle phase {}",
        args.events,
        humantime::format_duration(args.idle)
    );

    // Phase 1: latency, one agent per event.
    let mut latencies_ms = Vec::with_capacity(args.events);
    let mut approvals_received = 0usize;
    for i in 0..args.events {
        let probe_file = work.path().join(format!("term-{i}"));
        // One VM name per run: earlier runs' events (still Started for a while) name other VMs,
        // so this agent ignores them, as a real agent ignores its neighbours' events.
        let vm_i = format!("{vm}-{i}");
        let agent = Command::new(&exe)
            .args([
                "agent",
                "--imds-url",
                &emulator.url,
                "--vm-name",
                &vm_i,
                "--poll-interval",
                &interval,
            ])
            .arg("--")
            .arg(&exe)
            .args(["bench", "sigterm-probe", "--out"])
            .arg(&probe_file)
            .env("SPOTKIT_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start the agent")?;
        let mut agent = Killed(agent);
        // Wait for this agent's first poll, then a pseudo-random part of an interval, so events
        // land at every phase of the poll cycle.
        let gets = emulator.scheduled_event_gets().await?;
        let start = Instant::now();
        while emulator.scheduled_event_gets().await? <= gets {
            if start.elapsed() > Duration::from_secs(20) {
                bail!("agent {i} never polled");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let phase = (unix_ns() % 1000) as f64 / 1000.0;
        tokio::time::sleep(args.poll_interval.mul_f64(phase)).await;
        let visible_ns = unix_ns();
        emulator.schedule("Preempt", &vm_i, 30).await?;
        let start = Instant::now();
        let term_ns: u128 = loop {
            if let Ok(s) = std::fs::read_to_string(&probe_file)
                && let Ok(v) = s.trim().parse()
            {
                break v;
            }
            if start.elapsed() > Duration::from_secs(10) {
                bail!("event {i}: the workload never got SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        #[allow(clippy::cast_precision_loss)]
        latencies_ms.push(term_ns.saturating_sub(visible_ns) as f64 / 1e6);
        let start = Instant::now();
        while agent.0.try_wait()?.is_none() {
            if start.elapsed() > Duration::from_secs(10) {
                bail!("event {i}: the agent did not exit after the drain");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        approvals_received = emulator.approvals().await?.len();
        if (i + 1) % 10 == 0 {
            eprintln!("  {} / {} events", i + 1, args.events);
        }
    }
    latencies_ms.sort_by(f64::total_cmp);
    let p50 = percentile(&latencies_ms, 50.0);
    let p99 = percentile(&latencies_ms, 99.0);
    let max = latencies_ms.last().copied().unwrap_or(f64::NAN);
    let goal_ms = args.poll_interval.as_secs_f64() * 1000.0 + 20.0;

    // Phase 2: CPU and memory, idle agent and bare loop side by side.
    let idle_agent = Command::new(&exe)
        .args([
            "agent",
            "--imds-url",
            &emulator.url,
            "--vm-name",
            vm,
            "--poll-interval",
            &interval,
            "--",
            "sleep",
            "100000",
        ])
        .env("SPOTKIT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let idle_agent = Killed(idle_agent);
    let bare = Command::new(&exe)
        .args(["bench", "bare-poll", "--url"])
        .arg(format!(
            "{}/metadata/scheduledevents?api-version=2020-07-01",
            emulator.url
        ))
        .args(["--interval", &interval])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let bare = Killed(bare);
    // Let both finish start-up (the agent's first poll, allocations) before measuring.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (a0, b0, g0) = (
        sample(idle_agent.0.id())?,
        sample(bare.0.id())?,
        emulator.scheduled_event_gets().await?,
    );
    let t0 = Instant::now();
    tokio::time::sleep(args.idle).await;
    let (a1, b1, g1) = (
        sample(idle_agent.0.id())?,
        sample(bare.0.id())?,
        emulator.scheduled_event_gets().await?,
    );
    let wall_ns = t0.elapsed().as_nanos() as f64;
    let total_polls = g1.saturating_sub(g0) as f64;
    let agent_polls = (total_polls / 2.0).max(1.0); // both poll at the same interval
    let agent_cpu = a1.cpu_ns.saturating_sub(a0.cpu_ns) as f64;
    let bare_cpu = b1.cpu_ns.saturating_sub(b0.cpu_ns) as f64;

    println!();
    println!(
        "latency, Preempt visible -> SIGTERM at the workload ({} events):",
        latencies_ms.len()
    );
    println!(
        "  p50 {p50:.1} ms   p99 {p99:.1} ms   max {max:.1} ms   goal p99 <= {goal_ms:.0} ms (poll interval + 20 ms): {}",
        if p99 <= goal_ms { "met" } else { "NOT met" }
    );
    println!("  p99 / (poll interval + 20 ms) = {:.3}", p99 / goal_ms);
    println!(
        "  approvals received: {approvals_received} of {}",
        args.events
    );
    println!(
        "idle agent vs bare poll loop, {:.0} s at {interval}, {total_polls:.0} polls in all:",
        wall_ns / 1e9
    );
    println!(
        "  CPU per poll: agent {:.1} us, bare loop {:.1} us, ratio {:.2}",
        agent_cpu / agent_polls / 1e3,
        bare_cpu / agent_polls / 1e3,
        agent_cpu / bare_cpu.max(1.0)
    );
    println!(
        "  CPU share of one core: agent {:.4} %, bare loop {:.4} %   goal < 0.05 %: {}",
        agent_cpu / wall_ns * 100.0,
        bare_cpu / wall_ns * 100.0,
        if agent_cpu / wall_ns * 100.0 < 0.05 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  RSS: agent {} KiB (peak {} KiB), bare loop {} KiB (peak {} KiB), ratio {:.2}   goal < 10 MiB: {}",
        a1.rss_kib,
        a1.hwm_kib,
        b1.rss_kib,
        b1.hwm_kib,
        a1.rss_kib as f64 / (b1.rss_kib.max(1)) as f64,
        if a1.hwm_kib < 10 * 1024 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct OrchestratorBench {
    /// VMs in the pool.
    #[arg(long, default_value_t = 10_000)]
    vms: u32,
    /// Sizes x regions of the candidate grid.
    #[arg(long, default_value_t = 8)]
    sizes: usize,
    #[arg(long, default_value_t = 6)]
    regions: usize,
    /// Decisions timed per case.
    #[arg(long, default_value_t = 20)]
    iterations: u32,
}

/// Decision time of `PoolMachine::handle` on a steady `vms`-VM pool, for a full listing with
/// nothing to do and for one with a tenth of the VMs gone (a mass eviction: 1,000 replacements
/// planned at once), each next to the baseline of cloning the listing it is fed.
fn bench_orchestrator(args: &OrchestratorBench) {
    use spotkit_core::orchestrator::Input;
    use spotkit_core::orchestrator::fixture::{running_pool, steady_machine};
    let start = spotkit_core::Timestamp::from_unix_secs(1_767_225_600);
    let template = steady_machine(args.vms, args.sizes, args.regions, start);
    let full = running_pool(template.spec(), args.vms);
    let tenth = usize::try_from(args.vms / 10).unwrap_or(0);
    let evicted: Vec<_> = full.iter().skip(tenth).cloned().collect();
    let report = |case: &str, list: &[spotkit_core::compute::VmObservation]| {
        let mut clone_ms = Vec::new();
        let mut decide_ms = Vec::new();
        let mut actions = 0;
        for i in 0..args.iterations {
            let mut m = template.clone();
            let t0 = Instant::now();
            let input = list.to_vec();
            let t1 = Instant::now();
            let out = m.handle(
                Input::Observed(input),
                start.plus(Duration::from_secs(u64::from(i) + 1)),
            );
            let t2 = Instant::now();
            actions = out.len();
            clone_ms.push((t1 - t0).as_secs_f64() * 1e3);
            decide_ms.push((t2 - t1).as_secs_f64() * 1e3);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (c, d) = (median(&mut clone_ms), median(&mut decide_ms));
        println!(
            "{case}: {} VMs listed, {actions} actions; decision median {d:.2} ms, clone of the listing {c:.2} ms (ratio {:.1}x), {} iterations",
            list.len(),
            d / c.max(1e-9),
            args.iterations
        );
    };
    println!(
        "pool of {} VMs on {} x {} candidates",
        args.vms, args.sizes, args.regions
    );
    report("steady", &full);
    report("a tenth evicted", &evicted);
}

#[derive(Debug, clap::Args)]
pub struct MassEvictionBench {
    /// VMs in the pool, all evicted at once.
    #[arg(long, default_value_t = 1000)]
    vms: u32,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 20.0)]
    speed: f64,
}

/// The pool of `vms` VMs on the in-process simulator (default scenario, quotas lifted,
/// capacity for everything), through the real ARM client sharing the simulator's clock; once
/// it runs, every VM is evicted with a 30 s notice. Measured in simulated time from the first
/// replacement PUT accepted to the last: replacement PUTs per second, against the optimum the
/// documented limits allow over that many PUTs (ARM writes 200 burst + 10/s per subscription;
/// Compute Put VM 1,500 burst + 500/min, the binding one is whichever needs longer).
async fn bench_mass_eviction(args: &MassEvictionBench) -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use spotkit_azure::arm::{
        ArmClient, ArmClientOptions, AzureCompute, AzureComputeOptions, StaticToken,
    };
    use spotkit_cloud::{Clock, SystemClock};
    use spotkit_core::orchestrator::PoolMachine;
    use spotkit_orchestrator::{PoolRunner, parse_pool, pool::rank_catalog};
    use spotkit_sim::cloud::http::{ScaledClock, SimServer};
    use spotkit_sim::cloud::{Scenario, SpotCloud};

    let mut scenario = Scenario::builtin_default();
    scenario.eviction.rate_scale = 0.0;
    scenario.quotas.clear();
    for o in &mut scenario.offerings {
        o.capacity = args.vms;
    }
    let candidates: String = scenario
        .offerings
        .iter()
        .map(|o| {
            format!(
                "[[candidates]]\nsize = \"{}\"\nregion = \"{}\"\n\n",
                o.size, o.region
            )
        })
        .collect();
    let now_real = SystemClock.now();
    let start = spotkit_core::Timestamp::from_unix_secs(now_real.unix_millis() / 1000);
    let clock = Arc::new(ScaledClock::new(Arc::new(SystemClock), start, args.speed));
    let cloud = SpotCloud::new(scenario, 5, start, Path::new("/nonexistent"))?;
    let too_many = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&too_many);
    let app =
        SimServer::new(cloud, Arc::clone(&clock))
            .router()
            .layer(axum::middleware::map_response(
                move |r: axum::response::Response| {
                    let counter = Arc::clone(&counter);
                    async move {
                        if r.status().as_u16() == 429 {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        r
                    }
                },
            ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let pool_toml = format!(
        "name = \"mass\"\nresource_group = \"rg\"\n[target]\nvms = {}\n[template]\nimage = \"a:b:c:latest\"\n[limits]\nmax_concurrent_operations = 500\n[placement]\nmax_share = 0.2\n{candidates}",
        args.vms
    );
    let spec = parse_pool(&pool_toml, Path::new("bench.toml"), rank_catalog(&[]))?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let options = ArmClientOptions {
        clock: clock.clone(),
        http_client: Some(http.clone()),
        ..ArmClientOptions::default()
    };
    let client = ArmClient::new(&base, Arc::new(StaticToken::new("bench")), options)?;
    let compute = Arc::new(AzureCompute::new(
        Arc::new(client),
        "bench",
        AzureComputeOptions::default(),
    ));
    let machine = PoolMachine::new(spec, clock.now(), 1);
    let (_reports, rx) = tokio::sync::mpsc::channel(16);
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let runner = PoolRunner::new(compute, dyn_clock, machine, rx);
    let mut view = runner.view();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(runner.run(async move {
        let _ = stopped.await;
    }));
    let n = args.vms;
    let all_running = move |v: &spotkit_orchestrator::StatusView| {
        v.running == n
            && v.pending.is_empty()
            && v.vms.iter().filter(|vm| vm.power == "running").count() == n as usize
    };
    view.wait_for(|v| all_running(v)).await?;
    let before_429 = too_many.load(Ordering::Relaxed);
    // Let the buckets refill as a quiet pool's would.
    tokio::time::sleep(Duration::from_secs_f64(300.0 / args.speed)).await;
    let log_len = http
        .get(format!("{base}/_sim/log?since=0"))
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?["next"]
        .as_u64()
        .unwrap_or(0);
    http.post(format!("{base}/_sim/events"))
        .json(&serde_json::json!({"kind": "evict", "count": n, "notice_seconds": 30}))
        .send()
        .await?
        .error_for_status()?;
    view.wait_for(|v| {
        v.evictions.len() >= n as usize
            && v.evictions.iter().all(|e| e.time_to_replace_s.is_some())
            && all_running(v)
    })
    .await?;
    let _ = stop.send(());
    let _ = done.await;
    let log: serde_json::Value = http
        .get(format!("{base}/_sim/log?since={log_len}"))
        .send()
        .await?
        .json()
        .await?;
    let puts: Vec<i64> = log["entries"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|e| e["kind"] == "create_accepted")
                .filter_map(|e| e["at_unix_ms"].as_i64())
                .collect()
        })
        .unwrap_or_default();
    let (first, last) = (
        puts.iter().min().copied().unwrap_or(0),
        puts.iter().max().copied().unwrap_or(0),
    );
    let count = puts.len() as f64;
    let span_s = (last - first) as f64 / 1000.0;
    // The time the documented buckets need for `count` PUTs starting full.
    let writes_s = ((count - 200.0) / 10.0).max(0.0);
    let put_vm_s = ((count - 1500.0) / (500.0 / 60.0)).max(0.0);
    let optimum_s = writes_s.max(put_vm_s);
    let ratio = if span_s > 0.0 {
        (optimum_s / span_s).min(1.0)
    } else {
        1.0
    };
    println!(
        "{} evictions: {} replacement PUTs in {span_s:.1} simulated s ({:.1}/s); throttle-limited optimum {optimum_s:.1} s ({:.1}/s); ratio {ratio:.3}; 429s received: {} while replacing, {} while filling the pool (each retried by the ARM client after Retry-After)",
        n,
        puts.len(),
        count / span_s.max(1e-9),
        count / optimum_s.max(1e-9),
        too_many.load(Ordering::Relaxed) - before_429,
        before_429,
    );
    Ok(())
}
