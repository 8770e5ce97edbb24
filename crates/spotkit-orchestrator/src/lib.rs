//! The pool orchestrator around [`spotkit_core::orchestrator::PoolMachine`].
//!
//! [`pool`] turns a pool file (TOML, declarative: docs/pools.md) into a validated
//! [`PoolSpec`](spotkit_core::orchestrator::PoolSpec), resolving advisor filters through the
//! caller's ranking. [`runner`] is the reconcile loop over a
//! [`ComputeCloud`](spotkit_cloud::ComputeCloud). The decisions themselves live in the pure core; this crate holds the edges:
//! [`notice`] (the HTTP endpoint agents post to, and `GET /status`), [`view`] (the status
//! document) and [`history`] (the embedded SQLite history store).

pub mod history;
pub mod notice;
pub mod pool;
pub mod runner;
pub mod view;

pub use history::{History, HistoryError};
pub use notice::{EndpointToken, notice_router, require_bearer_token};
pub use pool::{PoolError, load_pool, parse_pool};
pub use runner::{AgentReport, PoolRunner, op_failure};
pub use view::StatusView;
