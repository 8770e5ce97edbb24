//! The on-VM agent runner.
//!
//! The decisions (when to poll, drain, kill, approve) live in `spotkit_core::agent::AgentMachine`;
//! this crate does the I/O they ask for: it polls an [`spotkit_cloud::EventSource`], supervises the
//! workload process (its own process group, so SIGTERM and SIGKILL reach every descendant), runs
//! hooks, calls the workload's drain URL, notifies the orchestrator, serves `/healthz`, `/readyz`
//! and `/metrics`, and feeds every outcome back into the machine.
//!
//! Start at [`run`] with [`AgentOptions`].

mod hooks;
mod http;
mod metrics;
mod notify;
mod runner;
mod workload;

pub use metrics::Metrics;
pub use notify::OrchestratorToken;
pub use runner::{AgentError, AgentOptions, AgentOutcome, run};
