//! A compute cloud: create, observe, start, deallocate and delete VMs (Azure Resource Manager, or
//! the simulator).
//!
//! Verb-shaped, in the manner of Karpenter's cloud-provider interface: the orchestrator branches on
//! [`ComputeError`]'s variants (capacity, quota, throttling, not found), never on message text.
//! Each method is one logical operation: an implementation may poll a long-running operation to its
//! end and may pace itself under the cloud's throttling limits, but it does not retry failures that
//! the caller must decide about (capacity, quota, conflicts).

use std::future::Future;
use std::time::Duration;

use spotkit_core::compute::{OfferingId, VmObservation, VmSpec};

/// Why capacity was refused: ARM's error codes (FACTS.md section 5), kept because the right
/// reaction differs (another zone, another region, another size).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CapacityErrorCode {
    /// `SkuNotAvailable`: no Spot capacity for this size here (or the size is not offered).
    SkuNotAvailable,
    /// `AllocationFailed`: no capacity for the size in the region.
    AllocationFailed,
    /// `ZonalAllocationFailed`: no capacity in the requested zone.
    ZonalAllocationFailed,
    /// `OverconstrainedAllocationRequest` (or its zonal variant): constraints too tight.
    OverconstrainedAllocationRequest,
    /// `SpotPriceGreaterThanProvidedMaxPrice`: the spot price is above the VM's max price.
    SpotPriceAboveMaxPrice,
}

impl CapacityErrorCode {
    /// ARM's code string.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SkuNotAvailable => "SkuNotAvailable",
            Self::AllocationFailed => "AllocationFailed",
            Self::ZonalAllocationFailed => "ZonalAllocationFailed",
            Self::OverconstrainedAllocationRequest => "OverconstrainedAllocationRequest",
            Self::SpotPriceAboveMaxPrice => "SpotPriceGreaterThanProvidedMaxPrice",
        }
    }
}

/// Why a compute operation failed. Callers branch on the variant, never on the message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ComputeError {
    /// No capacity for this offering now: mark it unavailable for a while and try elsewhere.
    #[error("no capacity for {offering}: {code:?}: {message}")]
    Capacity {
        /// Where.
        offering: OfferingId,
        /// ARM's reason.
        code: CapacityErrorCode,
        /// ARM's message.
        message: String,
    },
    /// A quota (for Spot: `LowPriorityCores`) would be exceeded: ask for more quota, or use
    /// another region or family.
    #[error("quota exceeded for {offering}: {message}")]
    QuotaExceeded {
        /// Where.
        offering: OfferingId,
        /// ARM's message (names the quota).
        message: String,
    },
    /// Throttled (HTTP 429) even after the implementation's own pacing: wait `retry_after`.
    #[error("throttled by the cloud; retry after {retry_after:?}")]
    Throttled {
        /// How long the cloud asked us to wait.
        retry_after: Duration,
    },
    /// The VM (or its resource group) does not exist.
    #[error("VM {name} not found")]
    NotFound {
        /// VM name.
        name: String,
    },
    /// The operation conflicts with the VM's state or another operation in progress (ARM 409,
    /// `OperationNotAllowed` that is not quota): observe again, then decide.
    #[error("operation on VM {name} conflicts with its state: {message}")]
    Conflict {
        /// VM name.
        name: String,
        /// ARM's message.
        message: String,
    },
    /// The request is invalid (bad spec, max price below the spot price at create...): fix the
    /// pool spec; retrying will not help.
    #[error("the cloud rejected the request ({code}): {message}")]
    Invalid {
        /// ARM's error code.
        code: String,
        /// ARM's message.
        message: String,
    },
    /// Credentials missing or refused (401/403): fix the credential or its role assignment.
    #[error("the cloud refused the credentials: {message}")]
    Unauthorized {
        /// What failed.
        message: String,
    },
    /// A long-running operation ended `Failed` or `Canceled` with no more specific code.
    #[error("operation on VM {name} failed: {code}: {message}")]
    OperationFailed {
        /// VM name.
        name: String,
        /// The operation's error code.
        code: String,
        /// The operation's error message.
        message: String,
    },
    /// Transport error, timeout, 5xx or a malformed answer: safe to retry with backoff.
    #[error("transient compute failure: {detail}")]
    Transient {
        /// What happened.
        detail: String,
    },
}

impl ComputeError {
    /// Whether trying the same request later (with backoff) can succeed without changing it.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Throttled { .. } | Self::Transient { .. } | Self::Conflict { .. }
        )
    }
}

/// A compute cloud holding VMs in resource groups. Every method is async and Send.
pub trait ComputeCloud: Send + Sync + 'static {
    /// Creates or updates the VM (ARM PUT, idempotent for equal specs) and waits for the
    /// operation to end. Returns the VM as observed after the operation.
    fn create_vm(
        &self,
        spec: &VmSpec,
    ) -> impl Future<Output = Result<VmObservation, ComputeError>> + Send;

    /// One VM with its instance view (power state).
    fn get_vm(
        &self,
        resource_group: &str,
        name: &str,
    ) -> impl Future<Output = Result<VmObservation, ComputeError>> + Send;

    /// Every VM of the subscription with its instance view (ARM: List All with `statusOnly=true`,
    /// all pages), optionally only those whose tag `key` equals `value`.
    fn list_vms(
        &self,
        tag_filter: Option<(&str, &str)>,
    ) -> impl Future<Output = Result<Vec<VmObservation>, ComputeError>> + Send;

    /// Starts a stopped or deallocated VM and waits for the operation. For an evicted Spot VM this
    /// fails with `Capacity` until capacity returns.
    fn start_vm(
        &self,
        resource_group: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), ComputeError>> + Send;

    /// Deallocates the VM and waits for the operation.
    fn deallocate_vm(
        &self,
        resource_group: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), ComputeError>> + Send;

    /// Deletes the VM (and its disks) and waits for the operation. Deleting a VM that is already
    /// gone is `Ok` (the desired state holds).
    fn delete_vm(
        &self,
        resource_group: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), ComputeError>> + Send;

    /// Asks the cloud to evict a Spot VM as it would for capacity (ARM `simulateEviction`).
    fn simulate_eviction(
        &self,
        resource_group: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), ComputeError>> + Send;
}
