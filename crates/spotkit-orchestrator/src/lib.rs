//! The pool orchestrator around [`spotkit_core::orchestrator::PoolMachine`].
//!
//! [`pool`] turns a pool file (TOML, declarative: docs/pools.md) into a validated
//! [`PoolSpec`](spotkit_core::orchestrator::PoolSpec), resolving advisor filters through the
//! caller's ranking. The decisions themselves live in the pure core; this crate holds the edges.

pub mod pool;

pub use pool::{PoolError, load_pool, parse_pool};
