//! Resource SKUs (`Microsoft.Compute/skus`, api-version 2021-07-01): which VM sizes exist where,
//! their vCPUs and memory, zones, Spot capability and subscription restrictions.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::client::{ArmClient, ArmList};
use super::error::ArmError;
use super::throttle::OperationClass;

/// The Resource SKUs API version (newest stable).
pub const SKUS_API_VERSION: &str = "2021-07-01";

/// One VM size as the advisor needs it. Location and zone names are lowercase.
#[derive(Clone, Debug, PartialEq)]
pub struct VmSku {
    /// `Standard_D2s_v5`.
    pub name: String,
    /// `standardDSv5Family`.
    pub family: String,
    /// `vCPUs` capability (0 if not reported).
    pub vcpus: u32,
    /// `MemoryGB` capability (0 if not reported).
    pub memory_gib: f64,
    /// Regions offering it.
    pub locations: Vec<String>,
    /// Zones per region.
    pub zones_by_location: BTreeMap<String, Vec<String>>,
    /// `LowPriorityCapable` (Spot capable).
    pub low_priority_capable: bool,
    /// Regions where this subscription cannot use it: `Location` restrictions, and `Zone`
    /// restrictions that cover every zone of the region (reason `NotAvailableForSubscription`,
    /// `QuotaId`...).
    pub restricted_locations: BTreeSet<String>,
}

/// A Resource SKU (wire type, tolerant).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSku {
    /// `virtualMachines`, `disks`...
    #[serde(default)]
    pub resource_type: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Tier.
    #[serde(default)]
    pub tier: Option<String>,
    /// Size.
    #[serde(default)]
    pub size: Option<String>,
    /// Family.
    #[serde(default)]
    pub family: Option<String>,
    /// Locations.
    #[serde(default)]
    pub locations: Vec<String>,
    /// Zones per location.
    #[serde(default)]
    pub location_info: Vec<ResourceSkuLocationInfo>,
    /// Name/value capabilities (values are strings).
    #[serde(default)]
    pub capabilities: Vec<ResourceSkuCapability>,
    /// Restrictions for this subscription.
    #[serde(default)]
    pub restrictions: Vec<ResourceSkuRestriction>,
}

/// `locationInfo`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSkuLocationInfo {
    /// Region.
    #[serde(default)]
    pub location: String,
    /// Zones.
    #[serde(default)]
    pub zones: Vec<String>,
}

/// A capability.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ResourceSkuCapability {
    /// `vCPUs`, `MemoryGB`, `LowPriorityCapable`...
    #[serde(default)]
    pub name: String,
    /// Its value, as text.
    #[serde(default)]
    pub value: String,
}

/// A restriction.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSkuRestriction {
    /// `Location` or `Zone`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// For `Location`: the restricted locations.
    #[serde(default)]
    pub values: Vec<String>,
    /// Where exactly.
    #[serde(default)]
    pub restriction_info: Option<ResourceSkuRestrictionInfo>,
    /// `QuotaId` or `NotAvailableForSubscription`.
    #[serde(default)]
    pub reason_code: Option<String>,
}

/// `restrictionInfo`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ResourceSkuRestrictionInfo {
    /// Locations.
    #[serde(default)]
    pub locations: Vec<String>,
    /// Zones.
    #[serde(default)]
    pub zones: Vec<String>,
}

impl ResourceSku {
    fn capability(&self, name: &str) -> Option<&str> {
        self.capabilities
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .map(|c| c.value.trim())
    }

    /// The advisor's view of a `virtualMachines` SKU.
    #[must_use]
    pub fn to_vm_sku(&self) -> VmSku {
        let lower = |s: &String| s.to_ascii_lowercase();
        let zones_by_location: BTreeMap<String, Vec<String>> = self
            .location_info
            .iter()
            .map(|i| {
                let mut zones = i.zones.clone();
                zones.sort();
                (lower(&i.location), zones)
            })
            .collect();
        let mut restricted_locations = BTreeSet::new();
        for r in &self.restrictions {
            let info = r.restriction_info.clone().unwrap_or_default();
            if r.kind.eq_ignore_ascii_case("Location") {
                restricted_locations.extend(r.values.iter().chain(&info.locations).map(lower));
            } else if r.kind.eq_ignore_ascii_case("Zone") {
                // A zone restriction only takes the region away if no zone is left.
                for location in info.locations.iter().chain(&r.values) {
                    let location = lower(location);
                    let zones = zones_by_location.get(&location);
                    if zones.is_none_or(|zs| zs.iter().all(|z| info.zones.contains(z))) {
                        restricted_locations.insert(location);
                    }
                }
            }
        }
        VmSku {
            name: self.name.clone(),
            family: self.family.clone().unwrap_or_default(),
            vcpus: self
                .capability("vCPUs")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            memory_gib: self
                .capability("MemoryGB")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0),
            locations: self.locations.iter().map(lower).collect(),
            zones_by_location,
            low_priority_capable: self
                .capability("LowPriorityCapable")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            restricted_locations,
        }
    }
}

/// Every VM SKU of the subscription (all pages), optionally in one region only
/// (`$filter=location eq '…'`, which the service applies).
///
/// # Errors
/// [`ArmError`] from the requests.
pub async fn list_vm_skus(
    client: &ArmClient,
    subscription: &str,
    location_filter: Option<&str>,
) -> Result<Vec<VmSku>, ArmError> {
    let mut path = format!(
        "/subscriptions/{subscription}/providers/Microsoft.Compute/skus?api-version={SKUS_API_VERSION}"
    );
    if let Some(location) = location_filter {
        let filter = format!("location eq '{}'", location.replace('\'', "''"));
        path.push_str("&$filter=");
        path.push_str(&crate::storage::encode(&filter, false));
    }
    let skus = client
        .follow_next_link::<ArmList<ResourceSku>>(&path, OperationClass::Arm)
        .await?;
    Ok(skus
        .iter()
        .filter(|s| s.resource_type.eq_ignore_ascii_case("virtualMachines"))
        .map(ResourceSku::to_vm_sku)
        .collect())
}
