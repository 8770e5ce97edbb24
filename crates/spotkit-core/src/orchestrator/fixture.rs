//! Synthetic pools for benchmarks and tests: a pool spec over a grid of sizes and regions, and
//! the listing of a pool that is already at its target, as ARM would return it.
//!
//! The lead's benchmark command times [`PoolMachine::handle`] on these (for example a
//! 10,000-VM pool with a mass eviction); nothing here is timed.

use std::collections::BTreeMap;

use super::{Candidate, PoolMachine, PoolSpec, TAG_POOL, TAG_ROLE, TAG_SLOT, TAG_UNITS, Target};
use crate::Timestamp;
use crate::compute::{OfferingId, PowerState, Priority, ProvisioningState, VmObservation};

/// `sizes x regions` candidates, ranked row by row, with made-up but ordered prices.
#[must_use]
pub fn grid_candidates(sizes: usize, regions: usize) -> Vec<Candidate> {
    let mut out = Vec::with_capacity(sizes * regions);
    for s in 0..sizes {
        for r in 0..regions {
            let rank = u32::try_from(out.len()).unwrap_or(u32::MAX);
            #[allow(clippy::cast_precision_loss)] // small indices
            let step = (s * regions + r) as f64;
            out.push(Candidate {
                offering: OfferingId::new(
                    format!("Standard_D{}s_v5", 2 << s),
                    format!("region{r}"),
                ),
                vcpus: 2 << s,
                spot_capable: true,
                spot_price: Some(0.01 + 0.001 * step),
                payg_price: Some(0.1 + 0.01 * step),
                band: None,
                rank,
            });
        }
    }
    out
}

/// A Delete pool named `name` of `vms` VMs over `grid_candidates(sizes, regions)`.
#[must_use]
pub fn synthetic_spec(name: &str, vms: u32, sizes: usize, regions: usize) -> PoolSpec {
    let mut spec = PoolSpec::new(name, Target::Vms(vms), grid_candidates(sizes, regions));
    spec.template.resource_group = "rg-bench".to_string();
    spec.template.image = "Canonical:ubuntu-24_04-lts:server:latest".to_string();
    spec
}

/// What ARM lists for `spec`'s pool when every VM runs: `count` spot VMs spread round-robin
/// over the candidates, named and tagged as the machine names and tags them.
#[must_use]
pub fn running_pool(spec: &PoolSpec, count: u32) -> Vec<VmObservation> {
    let probe = PoolMachine::new(spec.clone(), Timestamp::default(), 0);
    (0..count)
        .map(|i| {
            let c = &spec.candidates[i as usize % spec.candidates.len().max(1)];
            let name = probe.vm_name(i);
            let mut tags = BTreeMap::new();
            tags.insert(TAG_POOL.to_string(), spec.name.clone());
            tags.insert(TAG_SLOT.to_string(), i.to_string());
            tags.insert(TAG_ROLE.to_string(), "spot".to_string());
            tags.insert(TAG_UNITS.to_string(), spec.units_of(c.vcpus).to_string());
            VmObservation {
                id: format!(
                    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/{name}",
                    spec.template.resource_group
                ),
                name,
                resource_group: spec.template.resource_group.clone(),
                offering: c.offering.clone(),
                priority: Priority::Spot,
                eviction_policy: Some(spec.eviction_policy),
                max_price: Some(spec.max_price),
                provisioning: ProvisioningState::Succeeded,
                power: PowerState::Running,
                tags,
                created_at: None,
            }
        })
        .collect()
}

/// A machine for a `vms`-VM pool that has observed it running, ready for a decision to be timed
/// (for example feeding [`running_pool`] with a tenth of it missing).
#[must_use]
pub fn steady_machine(vms: u32, sizes: usize, regions: usize, now: Timestamp) -> PoolMachine {
    let spec = synthetic_spec("bench", vms, sizes, regions);
    let list = running_pool(&spec, vms);
    let mut m = PoolMachine::new(spec, now, 1);
    let _ = m.handle(super::Input::Observed(list), now);
    m
}
