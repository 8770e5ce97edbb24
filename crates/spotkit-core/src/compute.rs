//! The compute domain as the decision cores see it: VMs, their sizes, regions, priorities and
//! states. These are domain types, not wire types: `spotkit-azure` maps ARM's JSON onto them and
//! the simulator's in-process mode produces them directly.

use std::collections::BTreeMap;
use std::fmt;

use crate::Timestamp;

/// Where a VM can run: one VM size in one region (Karpenter's "offering", without the capacity
/// type, which is the VM's [`Priority`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OfferingId {
    /// ARM size name, e.g. `Standard_D4s_v5` (compare case-insensitively; ARM does).
    pub size: String,
    /// ARM region name, e.g. `eastus`.
    pub region: String,
}

impl OfferingId {
    /// An offering from its size and region names.
    #[must_use]
    pub fn new(size: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            size: size.into(),
            region: region.into(),
        }
    }
}

impl fmt::Display for OfferingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.region, self.size)
    }
}

/// ARM `priority`. (`Low` is ARM's deprecated spelling of `Spot` and maps onto it.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Pay-as-you-go: never evicted for capacity.
    Regular,
    /// Spot: evictable at any time, with at best 30 s notice.
    Spot,
}

/// ARM `evictionPolicy`: what happens to a Spot VM when it is evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EvictionPolicy {
    /// The VM stays, deallocated: disks kept (and billed), start fails until capacity returns.
    Deallocate,
    /// The VM and its disks are deleted.
    Delete,
}

/// ARM `billingProfile.maxPrice` of a Spot VM.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub enum MaxPrice {
    /// `-1`: never evicted for price; pays the spot price, capped at the pay-as-you-go price.
    CappedAtPayAsYouGo,
    /// Evicted when the spot price rises above this many USD per hour (price-or-capacity).
    UsdPerHour(f64),
}

impl MaxPrice {
    /// ARM's number: `-1` or the price.
    #[must_use]
    pub fn to_arm(self) -> f64 {
        match self {
            Self::CappedAtPayAsYouGo => -1.0,
            Self::UsdPerHour(price) => price,
        }
    }

    /// From ARM's number: any negative value means "capped at pay-as-you-go" (ARM accepts only
    /// `-1`; the simulator and the parsers are tolerant).
    #[must_use]
    pub fn from_arm(value: f64) -> Self {
        if value < 0.0 {
            Self::CappedAtPayAsYouGo
        } else {
            Self::UsdPerHour(value)
        }
    }
}

/// The power state from a VM's instance view (`PowerState/<state>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PowerState {
    /// `PowerState/starting`.
    Starting,
    /// `PowerState/running`.
    Running,
    /// `PowerState/stopping`.
    Stopping,
    /// `PowerState/stopped`: still allocated (and billed for compute).
    Stopped,
    /// `PowerState/deallocating`: what an outside observer sees of a Deallocate eviction.
    Deallocating,
    /// `PowerState/deallocated`.
    Deallocated,
    /// No power state reported (VM being created, or the instance view was not asked for).
    Unknown,
}

impl PowerState {
    /// Parses the part after `PowerState/` (case-insensitive); unknown states map to `Unknown`.
    #[must_use]
    pub fn from_code_suffix(suffix: &str) -> Self {
        match suffix.to_ascii_lowercase().as_str() {
            "starting" => Self::Starting,
            "running" => Self::Running,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            "deallocating" => Self::Deallocating,
            "deallocated" => Self::Deallocated,
            _ => Self::Unknown,
        }
    }

    /// ARM's code suffix (`running` for `PowerState/running`).
    #[must_use]
    pub const fn code_suffix(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Deallocating => "deallocating",
            Self::Deallocated => "deallocated",
            Self::Unknown => "unknown",
        }
    }
}

/// ARM `provisioningState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProvisioningState {
    /// `Creating`.
    Creating,
    /// `Updating` (start, deallocate and other operations in progress).
    Updating,
    /// `Succeeded`.
    Succeeded,
    /// `Failed`: the last operation failed (for example allocation failed).
    Failed,
    /// `Deleting`.
    Deleting,
    /// `Migrating`, or any state ARM adds later.
    Other,
}

impl ProvisioningState {
    /// Parses ARM's state name (case-insensitive), also `ProvisioningState/<state>[/<code>]`
    /// instance-view codes with the prefix stripped.
    #[must_use]
    pub fn parse(state: &str) -> Self {
        let state = state.split('/').next().unwrap_or_default();
        match state.to_ascii_lowercase().as_str() {
            "creating" => Self::Creating,
            "updating" => Self::Updating,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "deleting" => Self::Deleting,
            _ => Self::Other,
        }
    }

    /// ARM's spelling (`Succeeded`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "Creating",
            Self::Updating => "Updating",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Deleting => "Deleting",
            Self::Other => "Migrating",
        }
    }
}

/// What to create: one VM, fully described. Creating the same spec twice is idempotent in ARM
/// (PUT), which is why VM names are deterministic.
#[derive(Clone, Debug, PartialEq)]
pub struct VmSpec {
    /// VM name, unique in its resource group.
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// Size and region.
    pub offering: OfferingId,
    /// Regular or Spot.
    pub priority: Priority,
    /// For Spot VMs: what eviction does. `None` for Regular VMs.
    pub eviction_policy: Option<EvictionPolicy>,
    /// For Spot VMs: the price cap. `None` for Regular VMs.
    pub max_price: Option<MaxPrice>,
    /// Image reference, `publisher:offer:sku:version` (as the Azure CLI spells it) or an ARM id.
    pub image: String,
    /// Custom data / user data (cloud-init), base64, if any.
    pub user_data: Option<String>,
    /// ARM ids of user-assigned managed identities to attach.
    pub user_assigned_identities: Vec<String>,
    /// Tags: pool membership and bookkeeping live here, so state can be derived from the cloud.
    pub tags: BTreeMap<String, String>,
}

/// A VM as observed from outside (ARM), the orchestrator's source of truth.
#[derive(Clone, Debug, PartialEq)]
pub struct VmObservation {
    /// VM name.
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// Full ARM id.
    pub id: String,
    /// Size and region.
    pub offering: OfferingId,
    /// Regular or Spot.
    pub priority: Priority,
    /// Spot eviction policy, if any.
    pub eviction_policy: Option<EvictionPolicy>,
    /// Spot price cap, if any.
    pub max_price: Option<MaxPrice>,
    /// Provisioning state.
    pub provisioning: ProvisioningState,
    /// Power state (`Unknown` when no instance view was read).
    pub power: PowerState,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// ARM `timeCreated`, if reported.
    pub created_at: Option<Timestamp>,
}
