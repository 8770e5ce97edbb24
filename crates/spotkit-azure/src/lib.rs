//! Azure protocol clients for spotkit.
//!
//! This is the only crate that knows Azure's wire shapes. Each module turns Azure JSON into the
//! domain types of `spotkit-core` and implements a `spotkit-cloud` trait.
//!
//! - [`arm`]: Azure Resource Manager: [`arm::ArmClient`] (bearer tokens, throttling, retries,
//!   long-running operations), [`arm::AzureCompute`] (implements `ComputeCloud`) and the advisor's
//!   data (Resource SKUs, Resource Graph spot data, Spot Placement Scores).
//! - [`imds`]: the Instance Metadata Service on the VM: Scheduled Events (poll, approve) and
//!   instance metadata (`compute.name`). Start at [`imds::ImdsClient`].
//! - [`storage`]: Queue Storage and Blob Storage over REST ([`storage::AzureQueue`],
//!   [`storage::AzureBlobStore`]), authorized by SAS, Shared Key or a managed-identity token.

pub mod arm;
pub mod imds;
pub mod storage;
