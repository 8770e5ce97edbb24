//! The seam between spotkit's decision cores and the outside world.
//!
//! Small, verb-shaped traits with typed errors, in the manner of Karpenter's cloud-provider
//! interface: runners depend on these, and backends (`spotkit-azure` for real Azure protocols,
//! `spotkit-sim` for the local simulator) implement them. Nothing here knows a wire format.
//!
//! - [`Clock`]: the only way runners read or wait on time ([`SystemClock`] is the one real clock).
//! - [`EventSource`]: Scheduled Events (poll a document, approve events).
//! - [`Queue`]: messages with visibility-timeout leases (Azure Queue Storage semantics).
//! - [`ObjectStore`]: objects with conditional writes (Azure Blob Storage semantics).
//! - [`ComputeCloud`]: VMs to create, observe, start, deallocate and delete (ARM or the simulator).

pub mod clock;
pub mod compute;
#[cfg(feature = "contract")]
pub mod contract;
pub mod events;
pub mod queue;
pub mod store;

pub use clock::{Clock, SystemClock};
pub use compute::{CapacityErrorCode, ComputeCloud, ComputeError};
pub use events::{EventSource, EventSourceError};
pub use queue::{CommitError, Delivery, Lease, MessageId, PeekedMessage, Queue, QueueError};
pub use store::{ETag, ObjectStore, StoreError, StoredObject, WriteCondition};
