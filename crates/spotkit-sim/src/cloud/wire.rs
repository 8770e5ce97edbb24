//! ARM compute wire types: what the facade reads and writes, shaped like the 2025-04-01
//! `Microsoft.Compute` definitions (`VirtualMachine`, `VirtualMachineInstanceView`,
//! `InstanceViewStatus`, `VirtualMachineListResult`, `CloudError`). Fields the simulator does
//! not interpret are kept in `other` and echoed back, as ARM echoes the model it was given.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `VirtualMachine`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachine {
    /// Resource name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// ARM id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `Microsoft.Compute/virtualMachines`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// Region.
    pub location: String,
    /// Tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<String>>,
    /// Identity, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Value>,
    /// Properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<VirtualMachineProperties>,
    /// Everything else (plan, resources, etag, managedBy, ...), echoed.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `VirtualMachineProperties` (the fields the simulator interprets; the rest in `other`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineProperties {
    /// `vmId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_id: Option<String>,
    /// `hardwareProfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_profile: Option<HardwareProfile>,
    /// `priority`: `Regular`, `Low` or `Spot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// `evictionPolicy`: `Deallocate` or `Delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eviction_policy: Option<String>,
    /// `billingProfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_profile: Option<BillingProfile>,
    /// `storageProfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_profile: Option<Value>,
    /// `osProfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_profile: Option<Value>,
    /// `userData` (base64); returned only with `$expand=userData`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// `provisioningState`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// `timeCreated` (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_created: Option<String>,
    /// `instanceView` (with `$expand=instanceView` or `statusOnly=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_view: Option<InstanceView>,
    /// Everything else, echoed.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `HardwareProfile`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HardwareProfile {
    /// `vmSize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_size: Option<String>,
    /// Everything else.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `BillingProfile`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingProfile {
    /// `maxPrice`: USD/hour, or -1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<f64>,
}

/// `VirtualMachineInstanceView` (interpreted fields; the rest in `other`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    /// `computerName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computer_name: Option<String>,
    /// `osName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_name: Option<String>,
    /// `hyperVGeneration`.
    #[serde(
        default,
        rename = "hyperVGeneration",
        skip_serializing_if = "Option::is_none"
    )]
    pub hyper_v_generation: Option<String>,
    /// `disks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disks: Option<Vec<DiskInstanceView>>,
    /// `statuses`: `ProvisioningState/...` and `PowerState/...`.
    #[serde(default)]
    pub statuses: Vec<InstanceViewStatus>,
    /// Everything else.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `DiskInstanceView`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskInstanceView {
    /// Disk name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Statuses.
    #[serde(default)]
    pub statuses: Vec<InstanceViewStatus>,
}

/// `InstanceViewStatus`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceViewStatus {
    /// e.g. `PowerState/running`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// `Info`, `Warning`, `Error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// e.g. `VM running`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_status: Option<String>,
    /// Message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// `VirtualMachineListResult`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineListResult {
    /// VMs.
    pub value: Vec<VirtualMachine>,
    /// Next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

/// `CloudError`: `{"error":{"code","message","target"?,"details"?}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CloudError {
    /// The error.
    pub error: ApiError,
}

/// `ApiError`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    /// Code.
    pub code: String,
    /// Message.
    pub message: String,
    /// Target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Details.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ApiErrorDetail>,
}

/// `ApiErrorBase`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorDetail {
    /// Code.
    pub code: String,
    /// Target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Message.
    pub message: String,
}

/// The `Azure-AsyncOperation` status body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationStatus {
    /// Operation id.
    pub name: String,
    /// `InProgress`, `Succeeded`, `Failed`, `Canceled`.
    pub status: String,
    /// RFC 3339.
    pub start_time: String,
    /// RFC 3339, once ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

/// RFC 3339 UTC with 7 fractional digits, as ARM writes `timeCreated` (`...+00:00`).
#[must_use]
pub fn rfc3339(at: spotkit_core::Timestamp) -> String {
    let millis = at.unix_millis();
    let seconds = millis.div_euclid(1000);
    let fraction = millis.rem_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{fraction:03}0000+00:00",
        of_day / 3600,
        (of_day / 60) % 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        let at = spotkit_core::Timestamp::from_unix_millis(1_624_755_758_313);
        assert_eq!(rfc3339(at), "2021-06-27T01:02:38.3130000+00:00");
        let epoch = spotkit_core::Timestamp::from_unix_secs(0);
        assert_eq!(rfc3339(epoch), "1970-01-01T00:00:00.0000000+00:00");
        let leap = spotkit_core::Timestamp::from_unix_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.0000000+00:00");
    }
}
