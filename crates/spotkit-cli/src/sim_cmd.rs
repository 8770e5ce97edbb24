//! `spotkit sim`: the local Azure spot cloud. `serve` runs it over HTTP (ARM compute paths,
//! per-VM IMDS, `/_sim/` admin); `run` drives it headless on virtual time and prints what
//! happened. Reference: crates/spotkit-sim/SIMULATOR.md.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use spotkit_cloud::{Clock, SystemClock};
use spotkit_core::Timestamp;
use spotkit_sim::cloud::http::{ScaledClock, SimServer};
use spotkit_sim::cloud::{DeterministicSim, Scenario, SpotCloud};

use crate::Failure;

/// The simulator's subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SimCommand {
    /// Serve the simulated cloud on HTTP until killed. The first stdout line is the address.
    Serve(ServeArgs),
    /// Run a scenario's fleet headless on virtual time; print the event log summary and bill.
    Run(RunArgs),
}

/// Where the scenario comes from.
#[derive(Debug, clap::Args)]
pub struct ScenarioArgs {
    /// Scenario TOML; the built-in default (3 regions x 4 sizes) when omitted.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Seed of every random draw (default: the scenario's `seed`).
    #[arg(long)]
    seed: Option<u64>,
    /// Directory the scenario's trace paths are relative to.
    #[arg(long, default_value = "../shared/traces", env = "SPOTKIT_TRACES_DIR")]
    traces_dir: PathBuf,
}

impl ScenarioArgs {
    fn load(&self) -> Result<(Scenario, u64), Failure> {
        let scenario = match &self.scenario {
            Some(path) => Scenario::from_file(path).map_err(Failure::usage)?,
            None => Scenario::builtin_default(),
        };
        let seed = self.seed.unwrap_or(scenario.seed);
        Ok((scenario, seed))
    }

    fn traces_dir(&self) -> &Path {
        &self.traces_dir
    }
}

/// `spotkit sim serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0", env = "SPOTKIT_SIM_LISTEN")]
    listen: SocketAddr,
    /// Simulated seconds per real second (60: an hour a minute). Retry-After and NotBefore
    /// are simulated times.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
}

/// `spotkit sim run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Simulated time to run, e.g. `2h`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2h")]
    duration: Duration,
    /// Print the whole report (log and bill) as JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

pub fn main(command: SimCommand) -> Result<u8, Failure> {
    match command {
        SimCommand::Serve(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(Failure::runtime)?;
            runtime.block_on(serve(args))
        }
        SimCommand::Run(args) => run(&args),
    }
}

async fn serve(args: ServeArgs) -> Result<u8, Failure> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return Err(Failure::usage(anyhow::anyhow!(
            "--speed must be a positive number, got {}",
            args.speed
        )));
    }
    let (scenario, seed) = args.scenario.load()?;
    let real: Arc<dyn Clock> = Arc::new(SystemClock);
    // Without a scenario start, simulated time starts at the real time, so NotBefore means
    // the same to an agent at speed 1.
    let start = scenario
        .start_unix
        .map_or_else(|| real.now(), Timestamp::from_unix_secs);
    let name = scenario.name.clone();
    let cloud = SpotCloud::new(scenario, seed, start, args.scenario.traces_dir())
        .map_err(Failure::usage)?;
    let clock = Arc::new(ScaledClock::new(real, start, args.speed));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; pick a free port or use port 0",
                args.listen
            )
        })
        .map_err(Failure::runtime)?;
    let addr = listener.local_addr().map_err(Failure::runtime)?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the simulator listens beyond loopback, as asked");
    }
    // The first stdout line is the contract with scripts and tests: they read the address here.
    println!("listening on http://{addr}");
    std::io::stdout().flush().map_err(Failure::runtime)?;
    tracing::info!(scenario = %name, seed, speed = args.speed, "simulated cloud serving");
    SimServer::new(cloud, clock)
        .serve(listener)
        .await
        .context("the simulator stopped")
        .map_err(Failure::runtime)?;
    Ok(0)
}

fn run(args: &RunArgs) -> Result<u8, Failure> {
    let (scenario, seed) = args.scenario.load()?;
    let sim = DeterministicSim::new(scenario, seed, args.scenario.traces_dir())
        .map_err(Failure::usage)?;
    let report = sim.run_fleet(args.duration);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report).map_err(Failure::runtime)?;
        writeln!(out).map_err(Failure::runtime)?;
        return Ok(0);
    }
    let write = |out: &mut std::io::StdoutLock<'_>, line: String| {
        writeln!(out, "{line}").map_err(Failure::runtime)
    };
    write(
        &mut out,
        format!(
            "scenario {} seed {} for {} ({} log entries)",
            report.scenario,
            report.seed,
            humantime::format_duration(args.duration),
            report.log.len()
        ),
    )?;
    for (kind, count) in &report.counts {
        write(&mut out, format!("  {kind:<20} {count}"))?;
    }
    write(
        &mut out,
        format!(
            "bill: compute {:.6} USD + disks {:.6} USD = {:.6} USD over {} VMs",
            report.bill.compute_usd,
            report.bill.disk_usd,
            report.bill.total_usd,
            report.bill.lines.len()
        ),
    )?;
    Ok(0)
}
