//! `spotkit`: the one binary. Subcommands: `agent`, `imds-emulator`, `demo`, `bench`.
//!
//! Exit codes: 0 success (or, for `agent` with a workload, the workload's own exit code);
//! 1 a runtime failure (reported on stderr); 2 bad flags, environment or config file.

#![allow(
    clippy::result_large_err,
    reason = "ConfigError (now in the lib, hence visible to this lint) is built at most once, on the way to exit code 2"
)]

mod admin;
mod advise_cmd;
mod agent_cmd;
mod backends;
mod bench;
mod bench_advisor;
mod bench_deadline;
mod bench_dst;
mod bench_pools;
mod bench_traces;
mod bench_worker;
mod demo;
mod emulator_cmd;
mod logging;
mod orchestrate_cmd;
mod queue_cmd;
mod sim_cmd;
mod worker_cmd;

use std::process::ExitCode;

use spotkit_cli::config;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Run interruptible workloads reliably and cheaply on Azure Spot VMs.
#[derive(Debug, Parser)]
#[command(name = "spotkit", version, about, propagate_version = true)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, env = "SPOTKIT_LOG_FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Watch Scheduled Events on this VM and shut the workload down gracefully before eviction.
    Agent(Box<agent_cmd::AgentArgs>),
    /// Process a queue with a handler: at-least-once, effects once, checkpoints, graceful shutdown.
    Worker(Box<worker_cmd::WorkerArgs>),
    /// Create, load and inspect queues.
    #[command(subcommand)]
    Queue(queue_cmd::QueueCommand),
    /// Serve a local emulation of IMDS (Scheduled Events, instance metadata) with an admin API.
    ImdsEmulator(emulator_cmd::EmulatorArgs),
    /// The local Azure spot cloud: ARM compute, per-VM IMDS, evictions, billing.
    #[command(subcommand)]
    Sim(sim_cmd::SimCommand),
    /// Run the local demo: a spot pool through an eviction storm on a simulated Azure (1-3 min).
    Demo(demo::DemoArgs),
    /// Rank VM sizes and regions for spot: price, eviction band, placement score, expected cost.
    Advise(Box<advise_cmd::AdviseArgs>),
    /// Keep a pool of VMs at its target across evictions (docs/orchestrator.md).
    Orchestrate(Box<orchestrate_cmd::OrchestrateArgs>),
    /// Show a pool: VMs, states, cost rate, evictions and replacements, conditions.
    Status(orchestrate_cmd::StatusArgs),
    /// Ask ARM to evict a Spot VM as it would for capacity (simulateEviction).
    SimulateEviction(Box<orchestrate_cmd::SimulateEvictionArgs>),
    /// Benchmarks (not timed tests): figures for docs/benchmarks.md.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// An error with the exit code it should produce.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 2,
            error: error.into(),
        }
    }

    pub fn runtime(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 1,
            error: error.into(),
        }
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let sub = matches.subcommand().map(|(_, m)| m.clone());
    let log_format = cli.log_format.clone();
    let result = match cli.command {
        Command::Agent(args) => agent_cmd::main(
            *args,
            sub.as_ref().unwrap_or(&matches),
            log_format.as_deref(),
        ),
        Command::Worker(args) => worker_cmd::main(
            *args,
            sub.as_ref().unwrap_or(&matches),
            log_format.as_deref(),
        ),
        Command::Queue(cmd) => {
            logging::init(log_format.as_deref());
            queue_cmd::main(cmd)
        }
        Command::ImdsEmulator(args) => {
            logging::init(log_format.as_deref());
            emulator_cmd::main(args)
        }
        Command::Sim(cmd) => {
            logging::init(log_format.as_deref());
            sim_cmd::main(cmd)
        }
        Command::Demo(args) => {
            logging::init_with_default(log_format.as_deref(), "warn");
            demo::main(&args)
        }
        Command::Advise(args) => {
            logging::init(log_format.as_deref());
            advise_cmd::main(*args)
        }
        Command::Orchestrate(args) => {
            logging::init(log_format.as_deref());
            orchestrate_cmd::main(&args)
        }
        Command::Status(args) => orchestrate_cmd::status_main(&args),
        Command::SimulateEviction(args) => {
            logging::init(log_format.as_deref());
            orchestrate_cmd::simulate_eviction_main(*args)
        }
        Command::Bench(cmd) => {
            logging::init(log_format.as_deref());
            bench::main(cmd)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("spotkit: error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}
