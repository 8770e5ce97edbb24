//! Deterministic simulation testing (DST) for spotkit, after FoundationDB's and TigerBeetle's:
//! one seed fixes everything (fault schedule, latencies, the cloud's draws, the cores' jitter),
//! time is virtual, and everything runs on one thread from one event queue, so a failing seed
//! replays bit for bit.
//!
//! Each *world* drives a real decision core from `spotkit-core` against a real model or parser:
//! - [`orchestrator`]: `PoolMachine` against `spotkit_sim::cloud::SpotCloud` through a
//!   fault-injecting ARM double, with orchestrator crashes, evictions and capacity outages;
//! - [`agent`]: `AgentMachine` polling `spotkit_sim::imds::ImdsModel` through the real Scheduled
//!   Events parser, with IMDS faults, clock skew and a workload that drains slowly or never;
//! - [`worker`]: two `WorkerMachine`s against in-memory queue and store doubles with
//!   visibility timeouts, using spotkit-worker's ledger keys and fence rule, with kills,
//!   pauses past the lease, storage outages and duplicate deliveries.
//!
//! A run has a *safety phase* (faults on) and a *liveness phase* (faults off); invariant
//! checkers are separate types, checked after every step, and a violation carries a one-line
//! replay command ([`replay_command`]). See docs/dst.md.

pub mod agent;
pub mod harness;
pub mod orchestrator;
pub mod worker;

pub use harness::{
    Outcome, Simulation, Trace, Violation, World, replay_command, run_seed, run_seeds,
};
