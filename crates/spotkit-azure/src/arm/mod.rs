//! Azure Resource Manager over its REST API: credentials, a throttle-aware client, long-running
//! operations, and the Compute, Resource SKUs, Resource Graph and Spot Placement Score calls.
//!
//! No ARM management crate is usable (the community `azure_mgmt_compute` is frozen on
//! `azure_core` 0.21, the official ones are placeholders: `shared/rust-ecosystem.md` section 3),
//! so this is plain REST on `reqwest`, with Entra ID tokens from `azure_identity`.
//!
//! Start at [`ArmClient`]: it sends one request with a bearer token, paces itself under ARM's
//! and the Compute provider's token buckets ([`throttle`]), retries what is safe to retry and
//! parses ARM's error bodies into [`ArmError`]. [`lro`] waits for long-running operations.

pub mod client;
pub mod compute;
pub mod credential;
pub mod error;
pub mod graph;
pub mod lro;
pub mod placement;
pub mod skus;
pub mod throttle;

pub use client::{ArmClient, ArmClientOptions, ArmList, ArmResponse, DEFAULT_ARM_BASE_URL, Paged};
pub use compute::{
    AzureCompute, AzureComputeOptions, COMPUTE_API_VERSION, VirtualMachine, to_compute_error,
    vm_put_body,
};
pub use credential::{
    ARM_SCOPE, CredentialChoice, CredentialError, EntraCredential, ScopedTokenSource, StaticToken,
    TokenProvider, running_on_azure_vm,
};
pub use error::{ArmError, ArmErrorDetail, parse_error_body};
pub use graph::{EvictionRateRow, SpotPriceRow, spot_eviction_rates, spot_price_history};
pub use lro::{
    AsyncOperationStatus, LroOptions, OperationState, parse_operation_status, wait_for_operation,
};
pub use placement::{PlacementScoreRow, spot_placement_scores};
pub use skus::{VmSku, list_vm_skus};
pub use throttle::{
    ArmKind, ArmLimits, ArmThrottle, ComputeOperation, OperationClass, RateLimitHeaders,
    TokenBucket,
};
