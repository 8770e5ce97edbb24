//! The seam between spotkit's decision cores and the outside world.
//!
//! Small, verb-shaped traits with typed errors, in the manner of Karpenter's cloud-provider
//! interface: runners depend on these, and backends (`spotkit-azure` for real Azure protocols,
//! `spotkit-sim` for the local simulator) implement them. Nothing here knows a wire format.
//!
//! - [`Clock`]: the only way runners read or wait on time ([`SystemClock`] is the one real clock).
//! - [`EventSource`]: Scheduled Events (poll a document, approve events).

pub mod clock;
pub mod events;

pub use clock::{Clock, SystemClock};
pub use events::{EventSource, EventSourceError};
