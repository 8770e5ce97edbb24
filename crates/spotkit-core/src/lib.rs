//! spotkit's pure decision cores.
//!
//! Everything here is a state machine that takes state, inputs and the current time as arguments and
//! returns actions plus the time it next wants to be woken. Nothing here performs I/O, reads a clock,
//! spawns a task or draws randomness from the OS, so the same code runs against Azure, against the
//! local simulator over HTTP, and inside a seeded deterministic simulation.
//!
//! Start with [`agent::AgentMachine`], the on-VM agent's brain: it decides when to poll Scheduled
//! Events, which events concern this VM, when to drain the workload, when to kill it and when to
//! approve the event. [`worker::WorkerMachine`] is the queue worker's: how many messages to hold,
//! when to receive, renew, retry, poison and release them, and how to shut down inside a budget.

pub mod advisor;
pub mod agent;
pub mod backoff;
pub mod compute;
pub mod deadline;
pub mod events;
pub mod orchestrator;
pub mod throttle;
pub mod time;
pub mod worker;

pub use time::Timestamp;
