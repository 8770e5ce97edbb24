//! The local Azure spot cloud: a pure, seeded model of regions, sizes, spot capacity and prices
//! over time, Spot VM semantics, evictions with notice on each VM's own IMDS, and billing, plus
//! the ways to drive it.
//!
//! - [`Scenario`]: the TOML scenario (`SIMULATOR.md` lists every key and its default).
//! - [`SpotCloud`]: the model. Every operation takes `now`; nothing reads a clock.
//! - [`DeterministicSim`], [`SimCompute`], [`VirtualClock`]: the model in-process on virtual
//!   time, behind the `ComputeCloud` seam (deterministic mode).
//! - [`http`]: the ARM compute facade, per-VM IMDS and the `/_sim/` admin API on one listener.

mod error;
pub mod http;
mod model;
mod scenario;
mod sim;
mod throttle;
mod trace;
pub mod wire;

pub use error::SimError;
pub use model::{
    Bill, BillLine, CreateOutcome, CreateVm, DEFAULT_START_UNIX, EvictionReason, LogEntry, LogKind,
    OpKind, OpStatus, OpView, SPOT_QUOTA_FAMILY, SharedImds, SpotCloud, VmView,
};
pub use scenario::{
    CapacityDriverSpec, DEFAULT_SCENARIO_TOML, DEMO_SCENARIO_TOML, EvictionSettings, FleetSpec,
    HttpSettings, NoticeWeight, OfferingSpec, PriceStep, QuotaSpec, RegionSpec, Scenario,
    ScenarioError, ScriptedEvent, ScriptedKind, SizeSpec, TracePolarity, VmSettings,
};
pub use sim::{DeterministicSim, RunReport, SIM_SUBSCRIPTION, SimCompute, VirtualClock};
pub use throttle::{Throttle, ThrottleCategory, ThrottleDecision};
pub use trace::CapacityTrace;
