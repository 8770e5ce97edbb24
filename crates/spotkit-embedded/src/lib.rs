//! Embedded backends: everything on one machine in one SQLite file, with the semantics of Azure
//! Queue Storage and Blob Storage (visibility-timeout leases, pop receipts, dequeue counts,
//! conditional writes), so the worker behaves the same with or without Azure.
//!
//! Several processes may share one database file: SQLite's WAL mode and `BEGIN IMMEDIATE`
//! transactions serialise the read-modify-write steps (receive, update, delete, conditional put).
//!
//! Start at [`SqliteQueue::open`] and [`SqliteStore::open`]; both implement the `spotkit-cloud`
//! traits and pass the shared contract suites.

mod db;
mod queue;
mod store;

pub use db::{EmbeddedUrl, OpenError};
pub use queue::SqliteQueue;
pub use store::SqliteStore;
