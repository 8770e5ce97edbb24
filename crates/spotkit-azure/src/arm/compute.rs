//! Virtual machines through ARM: wire types and [`AzureCompute`], the `ComputeCloud` for Azure.
//!
//! Wire types follow the 2025-04-01 swagger (`virtualMachine.json` + `computeRPCommon.json`),
//! tolerant on reading: unknown fields are ignored and every field is optional. They are not the
//! domain types: [`VirtualMachine::to_observation`] and [`vm_put_body`] convert explicitly.
//!
//! Error mapping (FACTS.md section 5), innermost error code first:
//! - `SkuNotAvailable`, `AllocationFailed`, `ZonalAllocationFailed`,
//!   `Overconstrained(Zonal)AllocationRequest`, `SpotPriceGreaterThanProvidedMaxPrice` →
//!   [`ComputeError::Capacity`];
//! - `OperationNotAllowed` on HTTP 429 or with a `TooManyRequests` detail → `Throttled` (the
//!   client already classifies it so); `OperationNotAllowed` / `QuotaExceeded` naming a quota
//!   (`LowPriorityCores`, "quota") → `QuotaExceeded`; other `OperationNotAllowed` → `Conflict`;
//! - 404 → `NotFound`, 409 → `Conflict`, 401/403 → `Unauthorized`, other 4xx → `Invalid`,
//!   5xx, transport, timeouts, malformed answers → `Transient`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use spotkit_cloud::{CapacityErrorCode, ComputeCloud, ComputeError};
use spotkit_core::Timestamp;
use spotkit_core::compute::{
    EvictionPolicy, MaxPrice, OfferingId, PowerState, Priority, ProvisioningState, VmObservation,
    VmSpec,
};

use super::client::{ArmClient, ArmList};
use super::error::{ArmError, ArmErrorDetail};
use super::lro::{LroOptions, wait_for_operation};
use super::throttle::{ComputeOperation, OperationClass};

/// The Compute API version of every VM call.
pub const COMPUTE_API_VERSION: &str = "2025-04-01";

/// A VM resource (PUT body and GET answer).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachine {
    /// ARM id (read only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Name (read only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Region.
    #[serde(default)]
    pub location: String,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Managed identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<VmIdentity>,
    /// Availability zones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// Properties.
    #[serde(default)]
    pub properties: VmProperties,
}

/// `identity`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VmIdentity {
    /// `SystemAssigned`, `UserAssigned`, `SystemAssigned, UserAssigned` or `None`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// ARM id of each user-assigned identity; the values are read-only ids (sent as `{}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_assigned_identities: BTreeMap<String, UserAssignedIdentity>,
}

/// A user-assigned identity's read-only ids.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserAssignedIdentity {
    /// Principal id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// Client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// `properties` of a VM.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VmProperties {
    /// Size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_profile: Option<HardwareProfile>,
    /// Image and OS disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_profile: Option<StorageProfile>,
    /// Computer name, admin user, SSH keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_profile: Option<OsProfile>,
    /// NICs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_profile: Option<NetworkProfile>,
    /// User data, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// `Regular`, `Low` or `Spot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// `Deallocate` or `Delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eviction_policy: Option<String>,
    /// Spot max price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_profile: Option<BillingProfile>,
    /// Read only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// Read only, with `$expand=instanceView` or `statusOnly=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_view: Option<InstanceView>,
    /// Read only, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_created: Option<String>,
    /// Read only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_id: Option<String>,
}

/// `hardwareProfile`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HardwareProfile {
    /// `Standard_D2s_v5`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_size: Option<String>,
}

/// `storageProfile`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StorageProfile {
    /// The image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_reference: Option<ImageReference>,
    /// The OS disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_disk: Option<OsDisk>,
}

/// `imageReference`: a marketplace image or an image id.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ImageReference {
    /// Image (gallery) ARM id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Publisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    /// Offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<String>,
    /// SKU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// Version or `latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl ImageReference {
    /// `publisher:offer:sku:version` (the Azure CLI's URN) or an ARM id (`/subscriptions/…`).
    ///
    /// # Errors
    /// A message saying what the accepted forms are.
    pub fn parse(image: &str) -> Result<Self, String> {
        let image = image.trim();
        if image.starts_with('/') {
            return Ok(Self {
                id: Some(image.to_string()),
                ..Self::default()
            });
        }
        let parts: Vec<&str> = image.split(':').collect();
        match parts.as_slice() {
            [publisher, offer, sku, version] if parts.iter().all(|p| !p.is_empty()) => Ok(Self {
                id: None,
                publisher: Some((*publisher).to_string()),
                offer: Some((*offer).to_string()),
                sku: Some((*sku).to_string()),
                version: Some((*version).to_string()),
            }),
            _ => Err(format!(
                "image {image:?} is neither publisher:offer:sku:version nor an ARM image id"
            )),
        }
    }
}

/// `osDisk`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OsDisk {
    /// `FromImage`.
    #[serde(default)]
    pub create_option: String,
    /// `Delete`: the disk goes with the VM (no orphaned, billed disks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_option: Option<String>,
    /// Disk type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_disk: Option<ManagedDisk>,
}

/// `managedDisk`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ManagedDisk {
    /// `Standard_LRS`, `Premium_LRS`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_account_type: Option<String>,
}

/// `osProfile`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OsProfile {
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computer_name: Option<String>,
    /// Admin user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_username: Option<String>,
    /// Linux settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_configuration: Option<LinuxConfiguration>,
}

/// `linuxConfiguration`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LinuxConfiguration {
    /// SSH keys only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_password_authentication: Option<bool>,
    /// Keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshConfiguration>,
}

/// `ssh`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SshConfiguration {
    /// Authorized keys.
    #[serde(default)]
    pub public_keys: Vec<SshPublicKey>,
}

/// One authorized key.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SshPublicKey {
    /// `/home/<user>/.ssh/authorized_keys`.
    #[serde(default)]
    pub path: String,
    /// The public key.
    #[serde(default)]
    pub key_data: String,
}

/// `networkProfile`: here NICs created with the VM (`networkInterfaceConfigurations`, which
/// needs `networkApiVersion`), deleted with it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkProfile {
    /// Network API version for NICs created with the VM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_api_version: Option<String>,
    /// NICs to create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_interface_configurations: Vec<NicConfiguration>,
}

/// A NIC created with the VM.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NicConfiguration {
    /// NIC name.
    #[serde(default)]
    pub name: String,
    /// Its properties.
    #[serde(default)]
    pub properties: NicConfigurationProperties,
}

/// NIC properties.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NicConfigurationProperties {
    /// Primary NIC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    /// `Delete`: the NIC goes with the VM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_option: Option<String>,
    /// IP configurations.
    #[serde(default)]
    pub ip_configurations: Vec<IpConfiguration>,
}

/// An IP configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IpConfiguration {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Subnet.
    #[serde(default)]
    pub properties: IpConfigurationProperties,
}

/// IP configuration properties.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IpConfigurationProperties {
    /// The subnet (`{ "id": … }`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<SubResource>,
}

/// `{ "id": … }`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubResource {
    /// ARM id.
    #[serde(default)]
    pub id: String,
}

/// `billingProfile`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BillingProfile {
    /// USD per hour, or `-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<f64>,
}

/// `instanceView` (only the parts spotkit reads).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    /// `ProvisioningState/…`, `PowerState/…` and other statuses.
    #[serde(default)]
    pub statuses: Vec<InstanceViewStatus>,
}

/// One status.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceViewStatus {
    /// `PowerState/running`, `ProvisioningState/succeeded`...
    #[serde(default)]
    pub code: String,
    /// `Info`, `Warning`, `Error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Display text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_status: Option<String>,
    /// Details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl InstanceView {
    /// The power state, `Unknown` if none is reported.
    #[must_use]
    pub fn power_state(&self) -> PowerState {
        self.status_suffix("PowerState/")
            .map_or(PowerState::Unknown, PowerState::from_code_suffix)
    }

    /// The provisioning state of the instance view, if reported.
    #[must_use]
    pub fn provisioning_state(&self) -> Option<ProvisioningState> {
        self.status_suffix("ProvisioningState/")
            .map(ProvisioningState::parse)
    }

    fn status_suffix(&self, prefix: &str) -> Option<&str> {
        self.statuses.iter().find_map(|s| {
            let code = s.code.as_str();
            (code.len() >= prefix.len() && code[..prefix.len()].eq_ignore_ascii_case(prefix))
                .then(|| &code[prefix.len()..])
        })
    }
}

/// The resource group named in an ARM id.
#[must_use]
pub fn resource_group_of(id: &str) -> Option<&str> {
    let mut parts = id.split('/');
    while let Some(p) = parts.next() {
        if p.eq_ignore_ascii_case("resourceGroups") {
            return parts.next().filter(|s| !s.is_empty());
        }
    }
    None
}

/// ARM's region name: `West US` (a display name some answers use) is `westus`.
#[must_use]
pub fn normalize_region(location: &str) -> String {
    location
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .ok()
        .map(Timestamp::from_unix_millis)
}

impl VirtualMachine {
    /// The domain view. `fallback_group` is used when the answer has no id to read it from.
    #[must_use]
    pub fn to_observation(&self, fallback_name: &str, fallback_group: &str) -> VmObservation {
        let p = &self.properties;
        let id = self.id.clone().unwrap_or_default();
        let priority = match p
            .priority
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("spot" | "low") => Priority::Spot,
            _ => Priority::Regular,
        };
        let eviction_policy = match p
            .eviction_policy
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("deallocate") => Some(EvictionPolicy::Deallocate),
            Some("delete") => Some(EvictionPolicy::Delete),
            _ => None,
        };
        let view = p.instance_view.clone().unwrap_or_default();
        VmObservation {
            name: self
                .name
                .clone()
                .unwrap_or_else(|| fallback_name.to_string()),
            resource_group: resource_group_of(&id).unwrap_or(fallback_group).to_string(),
            offering: OfferingId::new(
                p.hardware_profile
                    .as_ref()
                    .and_then(|h| h.vm_size.clone())
                    .unwrap_or_default(),
                normalize_region(&self.location),
            ),
            id,
            priority,
            eviction_policy,
            max_price: p
                .billing_profile
                .as_ref()
                .and_then(|b| b.max_price)
                .map(MaxPrice::from_arm),
            provisioning: p
                .provisioning_state
                .as_deref()
                .map(ProvisioningState::parse)
                .or_else(|| view.provisioning_state())
                .unwrap_or(ProvisioningState::Other),
            power: view.power_state(),
            tags: self.tags.clone(),
            created_at: p.time_created.as_deref().and_then(parse_rfc3339),
        }
    }
}

/// How [`AzureCompute`] builds VMs beyond what a [`VmSpec`] says.
#[derive(Clone, Debug)]
pub struct AzureComputeOptions {
    /// Linux admin user. Default `spotkit`.
    pub admin_username: String,
    /// SSH public key authorized for the admin user (password login is always disabled). Azure
    /// requires one for Linux VMs without a password.
    pub ssh_public_key: Option<String>,
    /// Subnet ARM id per region (lowercase region name) for the VM's NIC, created and deleted
    /// with the VM. A region without a subnet gets no network profile, which Azure refuses (the
    /// simulator does not mind).
    pub subnet_ids: BTreeMap<String, String>,
    /// OS disk type. Default `Standard_LRS`.
    pub os_disk_type: String,
    /// Long-running operation waits.
    pub lro: LroOptions,
}

impl Default for AzureComputeOptions {
    fn default() -> Self {
        Self {
            admin_username: "spotkit".to_string(),
            ssh_public_key: None,
            subnet_ids: BTreeMap::new(),
            os_disk_type: "Standard_LRS".to_string(),
            lro: LroOptions::default(),
        }
    }
}

/// The network API version for NICs created with a VM (documented with
/// `networkInterfaceConfigurations`).
const NETWORK_API_VERSION: &str = "2022-11-01";

/// The PUT body for `spec`.
///
/// # Errors
/// [`ComputeError::Invalid`] when the image is not a URN or id.
pub fn vm_put_body(
    spec: &VmSpec,
    options: &AzureComputeOptions,
) -> Result<VirtualMachine, ComputeError> {
    let image = ImageReference::parse(&spec.image).map_err(|message| ComputeError::Invalid {
        code: "InvalidImage".to_string(),
        message,
    })?;
    let spot = spec.priority == Priority::Spot;
    let user = options.admin_username.clone();
    let network_profile = options
        .subnet_ids
        .get(&spec.offering.region.to_ascii_lowercase())
        .map(|subnet| NetworkProfile {
            network_api_version: Some(NETWORK_API_VERSION.to_string()),
            network_interface_configurations: vec![NicConfiguration {
                name: format!("{}-nic", spec.name),
                properties: NicConfigurationProperties {
                    primary: Some(true),
                    delete_option: Some("Delete".to_string()),
                    ip_configurations: vec![IpConfiguration {
                        name: "ipconfig1".to_string(),
                        properties: IpConfigurationProperties {
                            subnet: Some(SubResource { id: subnet.clone() }),
                        },
                    }],
                },
            }],
        });
    let identity = (!spec.user_assigned_identities.is_empty()).then(|| VmIdentity {
        kind: "UserAssigned".to_string(),
        user_assigned_identities: spec
            .user_assigned_identities
            .iter()
            .map(|id| (id.clone(), UserAssignedIdentity::default()))
            .collect(),
    });
    Ok(VirtualMachine {
        id: None,
        name: None,
        location: spec.offering.region.clone(),
        tags: spec.tags.clone(),
        identity,
        zones: Vec::new(),
        properties: VmProperties {
            hardware_profile: Some(HardwareProfile {
                vm_size: Some(spec.offering.size.clone()),
            }),
            storage_profile: Some(StorageProfile {
                image_reference: Some(image),
                os_disk: Some(OsDisk {
                    create_option: "FromImage".to_string(),
                    delete_option: Some("Delete".to_string()),
                    managed_disk: Some(ManagedDisk {
                        storage_account_type: Some(options.os_disk_type.clone()),
                    }),
                }),
            }),
            os_profile: Some(OsProfile {
                // Linux host names are at most 64 characters, like VM names.
                computer_name: Some(spec.name.chars().take(64).collect()),
                admin_username: Some(user.clone()),
                linux_configuration: Some(LinuxConfiguration {
                    disable_password_authentication: Some(true),
                    ssh: options.ssh_public_key.as_ref().map(|key| SshConfiguration {
                        public_keys: vec![SshPublicKey {
                            path: format!("/home/{user}/.ssh/authorized_keys"),
                            key_data: key.clone(),
                        }],
                    }),
                }),
            }),
            network_profile,
            user_data: spec.user_data.clone(),
            priority: Some(if spot { "Spot" } else { "Regular" }.to_string()),
            eviction_policy: spec.eviction_policy.filter(|_| spot).map(|p| match p {
                EvictionPolicy::Deallocate => "Deallocate".to_string(),
                EvictionPolicy::Delete => "Delete".to_string(),
            }),
            billing_profile: spot.then(|| BillingProfile {
                max_price: Some(
                    spec.max_price
                        .unwrap_or(MaxPrice::CappedAtPayAsYouGo)
                        .to_arm(),
                ),
            }),
            provisioning_state: None,
            instance_view: None,
            time_created: None,
            vm_id: None,
        },
    })
}

fn capacity_code(code: &str) -> Option<CapacityErrorCode> {
    Some(match code.to_ascii_lowercase().as_str() {
        "skunotavailable" => CapacityErrorCode::SkuNotAvailable,
        "allocationfailed" => CapacityErrorCode::AllocationFailed,
        "zonalallocationfailed" => CapacityErrorCode::ZonalAllocationFailed,
        "overconstrainedallocationrequest" | "overconstrainedzonalallocationrequest" => {
            CapacityErrorCode::OverconstrainedAllocationRequest
        }
        "spotpricegreaterthanprovidedmaxprice" => CapacityErrorCode::SpotPriceAboveMaxPrice,
        _ => return None,
    })
}

fn names_a_quota(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("quota") || m.contains("lowprioritycores")
}

/// All `(code, message)` pairs of an error tree, innermost first (the root cause wins).
fn flatten(detail: &ArmErrorDetail, out: &mut Vec<(String, String)>) {
    for d in &detail.details {
        flatten(d, out);
    }
    if !detail.code.is_empty() {
        out.push((detail.code.clone(), detail.message.clone()));
    }
}

/// Maps an ARM failure of an operation on VM `vm` (offering known or not) onto the seam's error.
#[must_use]
pub fn to_compute_error(err: ArmError, vm: &str, offering: Option<&OfferingId>) -> ComputeError {
    let offering = || offering.cloned().unwrap_or_else(|| OfferingId::new("", ""));
    let (status, tree, failed_status) = match err {
        ArmError::Throttled { retry_after, .. } => return ComputeError::Throttled { retry_after },
        ArmError::Unauthorized {
            message,
            code,
            status,
        } => {
            return ComputeError::Unauthorized {
                message: format!("{status} {code}: {message}"),
            };
        }
        ArmError::Http {
            status,
            code,
            message,
            details,
        } => (
            Some(status),
            ArmErrorDetail {
                code,
                message,
                target: None,
                details,
            },
            None,
        ),
        ArmError::OperationFailed {
            status,
            code,
            message,
            details,
        } => (
            None,
            ArmErrorDetail {
                code,
                message,
                target: None,
                details,
            },
            Some(status),
        ),
        e @ (ArmError::Transport { .. }
        | ArmError::Timeout { .. }
        | ArmError::Malformed { .. }
        | ArmError::OperationTimeout { .. }) => {
            return ComputeError::Transient {
                detail: e.to_string(),
            };
        }
        e @ (ArmError::UntrustedUrl { .. } | ArmError::Config { .. }) => {
            return ComputeError::Invalid {
                code: "ClientConfiguration".to_string(),
                message: e.to_string(),
            };
        }
    };
    let mut codes = Vec::new();
    flatten(&tree, &mut codes);
    if tree.is_too_many_requests() || status == Some(429) {
        return ComputeError::Throttled {
            retry_after: std::time::Duration::from_secs(10),
        };
    }
    if let Some((code, message)) = codes
        .iter()
        .find_map(|(c, m)| capacity_code(c).map(|code| (code, m.clone())))
    {
        return ComputeError::Capacity {
            offering: offering(),
            code,
            message,
        };
    }
    if let Some((_, message)) = codes.iter().find(|(c, m)| {
        (c.eq_ignore_ascii_case("OperationNotAllowed") || c.eq_ignore_ascii_case("QuotaExceeded"))
            && names_a_quota(m)
    }) {
        return ComputeError::QuotaExceeded {
            offering: offering(),
            message: message.clone(),
        };
    }
    let (root_code, root_message) = codes
        .first()
        .cloned()
        .unwrap_or_else(|| (tree.code.clone(), tree.message.clone()));
    if codes
        .iter()
        .any(|(c, _)| c.eq_ignore_ascii_case("OperationNotAllowed"))
    {
        return ComputeError::Conflict {
            name: vm.to_string(),
            message: root_message,
        };
    }
    match (status, failed_status) {
        (Some(404), _) => ComputeError::NotFound {
            name: vm.to_string(),
        },
        (Some(409), _) => ComputeError::Conflict {
            name: vm.to_string(),
            message: root_message,
        },
        (Some(401 | 403), _) => ComputeError::Unauthorized {
            message: root_message,
        },
        (Some(s), _) if (400..500).contains(&s) => ComputeError::Invalid {
            code: root_code,
            message: root_message,
        },
        (Some(s), _) => ComputeError::Transient {
            detail: format!("ARM answered {s} {root_code}: {root_message}"),
        },
        (None, _) => ComputeError::OperationFailed {
            name: vm.to_string(),
            code: root_code,
            message: root_message,
        },
    }
}

/// [`ComputeCloud`] on Azure Resource Manager, for one subscription.
#[derive(Debug)]
pub struct AzureCompute {
    client: std::sync::Arc<ArmClient>,
    subscription_id: String,
    options: AzureComputeOptions,
}

impl AzureCompute {
    /// VMs of `subscription_id` through `client`.
    #[must_use]
    pub fn new(
        client: std::sync::Arc<ArmClient>,
        subscription_id: impl Into<String>,
        options: AzureComputeOptions,
    ) -> Self {
        Self {
            client,
            subscription_id: subscription_id.into(),
            options,
        }
    }

    /// The client.
    #[must_use]
    pub fn client(&self) -> &ArmClient {
        &self.client
    }

    fn vm_path(&self, resource_group: &str, name: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/{}",
            self.subscription_id, resource_group, name
        )
    }

    fn class(&self, op: ComputeOperation, region: Option<&str>, path: &str) -> OperationClass {
        OperationClass::compute(op, region, Some(path))
    }

    async fn action(
        &self,
        resource_group: &str,
        name: &str,
        action: &str,
        op: ComputeOperation,
    ) -> Result<(), ComputeError> {
        let path = self.vm_path(resource_group, name);
        let class = self.class(op, None, &path);
        let result = async {
            let r = self
                .client
                .post_empty(
                    &format!("{path}/{action}?api-version={COMPUTE_API_VERSION}"),
                    class.clone(),
                )
                .await?;
            wait_for_operation(
                &self.client,
                r.status,
                &r.headers,
                &class,
                &self.options.lro,
            )
            .await
        }
        .await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                let mapped = to_compute_error(e, name, None);
                // A capacity failure (start of an evicted Spot VM) must name the offering.
                if let ComputeError::Capacity { code, message, .. } = &mapped
                    && let Ok(vm) = self.get_vm(resource_group, name).await
                {
                    return Err(ComputeError::Capacity {
                        offering: vm.offering,
                        code: *code,
                        message: message.clone(),
                    });
                }
                Err(mapped)
            }
        }
    }

    async fn list_pages(&self, status_only: bool) -> Result<Vec<VirtualMachine>, ArmError> {
        let path = format!(
            "/subscriptions/{}/providers/Microsoft.Compute/virtualMachines?api-version={COMPUTE_API_VERSION}{}",
            self.subscription_id,
            if status_only { "&statusOnly=true" } else { "" }
        );
        self.client
            .follow_next_link::<ArmList<VirtualMachine>>(
                &path,
                OperationClass::compute(ComputeOperation::HighCostGet, None, None),
            )
            .await
    }
}

fn tag_matches(tags: &BTreeMap<String, String>, key: &str, value: &str) -> bool {
    // ARM tag names are case-insensitive; values are not.
    tags.iter()
        .any(|(k, v)| k.eq_ignore_ascii_case(key) && v == value)
}

impl ComputeCloud for AzureCompute {
    async fn create_vm(&self, spec: &VmSpec) -> Result<VmObservation, ComputeError> {
        let body = vm_put_body(spec, &self.options)?;
        let path = self.vm_path(&spec.resource_group, &spec.name);
        let class = self.class(ComputeOperation::PutVm, Some(&spec.offering.region), &path);
        let result = async {
            let r = self
                .client
                .put_json::<_, serde_json::Value>(
                    &format!("{path}?api-version={COMPUTE_API_VERSION}"),
                    &body,
                    class.clone(),
                )
                .await?;
            wait_for_operation(
                &self.client,
                r.status,
                &r.headers,
                &class,
                &self.options.lro,
            )
            .await
        }
        .await;
        result.map_err(|e| to_compute_error(e, &spec.name, Some(&spec.offering)))?;
        self.get_vm(&spec.resource_group, &spec.name).await
    }

    async fn get_vm(
        &self,
        resource_group: &str,
        name: &str,
    ) -> Result<VmObservation, ComputeError> {
        let path = self.vm_path(resource_group, name);
        let vm = self
            .client
            .get_json::<VirtualMachine>(
                &format!("{path}?api-version={COMPUTE_API_VERSION}&$expand=instanceView"),
                self.class(ComputeOperation::LowCostGet, None, &path),
            )
            .await
            .map_err(|e| to_compute_error(e, name, None))?;
        Ok(vm.body.to_observation(name, resource_group))
    }

    async fn list_vms(
        &self,
        tag_filter: Option<(&str, &str)>,
    ) -> Result<Vec<VmObservation>, ComputeError> {
        let map = |e| to_compute_error(e, "(list)", None);
        let mut vms = self.list_pages(true).await.map_err(map)?;
        // The statusOnly shape is not pinned by an official example (FACTS/INDEX gaps): if the
        // answer lacks the model (size), read the model once more and merge by id.
        if vms.iter().any(|v| {
            v.properties
                .hardware_profile
                .as_ref()
                .and_then(|h| h.vm_size.as_ref())
                .is_none()
        }) {
            let models: BTreeMap<String, VirtualMachine> = self
                .list_pages(false)
                .await
                .map_err(map)?
                .into_iter()
                .filter_map(|v| Some((v.id.clone()?.to_ascii_lowercase(), v)))
                .collect();
            for vm in &mut vms {
                let Some(model) = vm
                    .id
                    .as_ref()
                    .and_then(|id| models.get(&id.to_ascii_lowercase()))
                else {
                    continue;
                };
                let view = vm.properties.instance_view.take();
                let mut merged = model.clone();
                merged.properties.instance_view = view.or(merged.properties.instance_view);
                *vm = merged;
            }
        }
        Ok(vms
            .iter()
            .filter(|v| tag_filter.is_none_or(|(k, val)| tag_matches(&v.tags, k, val)))
            .map(|v| v.to_observation("", ""))
            .collect())
    }

    async fn start_vm(&self, resource_group: &str, name: &str) -> Result<(), ComputeError> {
        self.action(resource_group, name, "start", ComputeOperation::UpdateVm)
            .await
    }

    async fn deallocate_vm(&self, resource_group: &str, name: &str) -> Result<(), ComputeError> {
        self.action(
            resource_group,
            name,
            "deallocate",
            ComputeOperation::DeleteVm,
        )
        .await
    }

    async fn delete_vm(&self, resource_group: &str, name: &str) -> Result<(), ComputeError> {
        let path = self.vm_path(resource_group, name);
        let class = self.class(ComputeOperation::DeleteVm, None, &path);
        let result = async {
            let r = self
                .client
                .delete(
                    &format!("{path}?api-version={COMPUTE_API_VERSION}"),
                    class.clone(),
                )
                .await?;
            wait_for_operation(
                &self.client,
                r.status,
                &r.headers,
                &class,
                &self.options.lro,
            )
            .await
        }
        .await;
        match result.map_err(|e| to_compute_error(e, name, None)) {
            // Already gone: the desired state holds (the seam's contract).
            Err(ComputeError::NotFound { .. }) | Ok(()) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn simulate_eviction(
        &self,
        resource_group: &str,
        name: &str,
    ) -> Result<(), ComputeError> {
        self.action(
            resource_group,
            name,
            "simulateEviction",
            ComputeOperation::DeleteVm,
        )
        .await
    }
}
