//! The pool's status as a wire document: what `GET /status` answers, what the history store
//! keeps and what `spotkit status` prints.
//!
//! [`StatusView::build`] joins the machine's [`PoolStatus`] with the last listing (one row per
//! VM, with its power and provisioning state) and the candidates' prices (the cost rate).
//! Timestamps are RFC 3339 in UTC; durations are seconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use spotkit_core::Timestamp;
use spotkit_core::compute::{OfferingId, PowerState, Priority, VmObservation};
use spotkit_core::orchestrator::{
    ConditionReason, LossSignal, OpClass, PoolSpec, PoolStatus, TAG_POOL, TAG_ROLE,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One VM of the pool, as last listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VmRow {
    /// VM name.
    pub name: String,
    /// `size/region`.
    pub offering: String,
    /// `regular` or `spot`.
    pub priority: String,
    /// `base`, `spot` or `fallback` (the `spotkit-role` tag), if tagged.
    pub role: Option<String>,
    /// Power state (`running`, `deallocated`, ...).
    pub power: String,
    /// Provisioning state (`Succeeded`, `Creating`, ...).
    pub provisioning: String,
    /// What the VM costs while it runs, USD/hour, if the candidate's price is known.
    pub usd_per_hour: Option<f64>,
}

/// An operation in flight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRow {
    /// Its id.
    pub op: u64,
    /// `create`, `start` or `delete`.
    pub class: String,
    /// VM.
    pub vm: String,
    /// Since when.
    pub since: String,
}

/// One eviction and its replacement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvictionRow {
    /// The evicted VM.
    pub vm: String,
    /// `size/region`.
    pub offering: String,
    /// When the loss was seen.
    pub seen_at: String,
    /// `notice`, `state-change` or `vanished`.
    pub via: String,
    /// The replacement, once chosen.
    pub replacement: Option<String>,
    /// When the replacement was seen running.
    pub replaced_at: Option<String>,
    /// Seconds from the loss being seen to the replacement running.
    pub time_to_replace_s: Option<f64>,
}

/// Something the pool avoids until a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvoidRow {
    /// `size/region`, or a region (all sizes).
    pub what: String,
    /// Why (`capacity or quota (spot)`, `evicted`).
    pub why: String,
    /// Until when.
    pub until: String,
}

/// A Deallocate VM being restarted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartRow {
    /// VM.
    pub vm: String,
    /// Failed attempts.
    pub attempts: u32,
    /// Next attempt.
    pub next_at: String,
    /// When it is redeployed elsewhere instead.
    pub gives_up_at: String,
}

/// A condition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionRow {
    /// `Unplaceable`, `InvalidRequest`, `Unauthorized`, `Throttled`, `ObserveFailing`.
    pub reason: String,
    /// What happened and what to do.
    pub message: String,
    /// Since when.
    pub since: String,
}

/// The pool at a glance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    /// Pool name.
    pub pool: String,
    /// As of.
    pub at: String,
    /// Target units (VMs, or vCPUs for a vCPU target).
    pub desired: u32,
    /// Of which regular.
    pub desired_regular: u32,
    /// Of which spot.
    pub desired_spot: u32,
    /// Units counted for the target.
    pub live: u32,
    /// Units running.
    pub running: u32,
    /// Units occupying the pool.
    pub occupying: u32,
    /// Regular VMs.
    pub regular_vms: u32,
    /// Spot VMs.
    pub spot_vms: u32,
    /// Regular VMs standing in for spot.
    pub fallback_vms: u32,
    /// VMs being evicted.
    pub evicting_vms: u32,
    /// Units that could not be placed anywhere.
    pub unplaced: u32,
    /// What the running VMs cost, USD/hour, from the candidates' prices.
    pub usd_per_hour: f64,
    /// Running VMs whose price is unknown (not in `usd_per_hour`).
    pub unpriced_vms: u32,
    /// The pool's VMs, as last listed.
    pub vms: Vec<VmRow>,
    /// Operations in flight.
    pub pending: Vec<OpRow>,
    /// Offerings and regions avoided for now.
    pub avoiding: Vec<AvoidRow>,
    /// Deallocate VMs being restarted.
    pub restarting: Vec<RestartRow>,
    /// Recent evictions, oldest first.
    pub evictions: Vec<EvictionRow>,
    /// What needs attention.
    pub conditions: Vec<ConditionRow>,
}

/// RFC 3339 in UTC, to the millisecond.
#[must_use]
pub fn rfc3339(t: Timestamp) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.unix_millis()) * 1_000_000)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.unix_millis().to_string())
}

/// Parses RFC 3339 (any offset).
#[must_use]
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let d = OffsetDateTime::parse(s.trim(), &Rfc3339).ok()?;
    let millis = i64::try_from(d.unix_timestamp_nanos() / 1_000_000).ok()?;
    Some(Timestamp::from_unix_millis(millis))
}

fn offering_str(o: &OfferingId) -> String {
    format!("{}/{}", o.size, o.region)
}

const fn priority_str(p: Priority) -> &'static str {
    match p {
        Priority::Regular => "regular",
        Priority::Spot => "spot",
    }
}

const fn power_str(p: PowerState) -> &'static str {
    match p {
        PowerState::Starting => "starting",
        PowerState::Running => "running",
        PowerState::Stopping => "stopping",
        PowerState::Stopped => "stopped",
        PowerState::Deallocating => "deallocating",
        PowerState::Deallocated => "deallocated",
        PowerState::Unknown => "unknown",
    }
}

const fn class_str(c: OpClass) -> &'static str {
    match c {
        OpClass::Create => "create",
        OpClass::Start => "start",
        OpClass::Delete => "delete",
    }
}

const fn via_str(s: LossSignal) -> &'static str {
    match s {
        LossSignal::Notice => "notice",
        LossSignal::StateChange => "state-change",
        LossSignal::Vanished => "vanished",
    }
}

const fn reason_str(r: ConditionReason) -> &'static str {
    match r {
        ConditionReason::Unplaceable => "Unplaceable",
        ConditionReason::InvalidRequest => "InvalidRequest",
        ConditionReason::Unauthorized => "Unauthorized",
        ConditionReason::Throttled => "Throttled",
        ConditionReason::ObserveFailing => "ObserveFailing",
    }
}

impl StatusView {
    /// The view of `status` with the VMs of `listing` that carry the pool's tag, priced from
    /// `spec`'s candidates, as of `now`.
    #[must_use]
    pub fn build(
        spec: &PoolSpec,
        status: &PoolStatus,
        listing: &[VmObservation],
        now: Timestamp,
    ) -> Self {
        let prices: BTreeMap<(String, String), (Option<f64>, Option<f64>)> = spec
            .candidates
            .iter()
            .map(|c| {
                (
                    (
                        c.offering.size.to_ascii_lowercase(),
                        c.offering.region.to_ascii_lowercase(),
                    ),
                    (c.spot_price, c.payg_price),
                )
            })
            .collect();
        let mut usd_per_hour = 0.0;
        let mut unpriced_vms = 0;
        let mut vms: Vec<VmRow> = listing
            .iter()
            .filter(|vm| vm.tags.get(TAG_POOL).map(String::as_str) == Some(spec.name.as_str()))
            .map(|vm| {
                let key = (
                    vm.offering.size.to_ascii_lowercase(),
                    vm.offering.region.to_ascii_lowercase(),
                );
                let (spot, payg) = prices.get(&key).copied().unwrap_or((None, None));
                // Spot pays the spot price capped at pay-as-you-go (max_price -1's rule).
                let price = match vm.priority {
                    Priority::Regular => payg,
                    Priority::Spot => match (spot, payg) {
                        (Some(s), Some(p)) => Some(s.min(p)),
                        (s, _) => s,
                    },
                };
                if vm.power == PowerState::Running {
                    match price {
                        Some(p) => usd_per_hour += p,
                        None => unpriced_vms += 1,
                    }
                }
                VmRow {
                    name: vm.name.clone(),
                    offering: offering_str(&vm.offering),
                    priority: priority_str(vm.priority).to_string(),
                    role: vm.tags.get(TAG_ROLE).cloned(),
                    power: power_str(vm.power).to_string(),
                    provisioning: format!("{:?}", vm.provisioning),
                    usd_per_hour: price,
                }
            })
            .collect();
        vms.sort_by(|a, b| a.name.cmp(&b.name));
        let mut avoiding: Vec<AvoidRow> = status
            .unavailable
            .iter()
            .map(|(o, p, until)| AvoidRow {
                what: offering_str(o),
                why: format!("capacity or quota ({})", priority_str(*p)),
                until: rfc3339(*until),
            })
            .collect();
        avoiding.extend(status.blocked.iter().map(|(region, size, until)| AvoidRow {
            what: match size {
                Some(s) => format!("{s}/{region}"),
                None => region.clone(),
            },
            why: "evicted".to_string(),
            until: rfc3339(*until),
        }));
        Self {
            pool: status.name.clone(),
            at: rfc3339(now),
            desired: status.desired,
            desired_regular: status.desired_regular,
            desired_spot: status.desired_spot,
            live: status.live,
            running: status.running,
            occupying: status.occupying,
            regular_vms: status.regular_vms,
            spot_vms: status.spot_vms,
            fallback_vms: status.fallback_vms,
            evicting_vms: status.evicting_vms,
            unplaced: status.unplaced,
            // Micro-dollars: enough for a rate, and it survives a JSON round trip unchanged.
            usd_per_hour: (usd_per_hour * 1e6).round() / 1e6,
            unpriced_vms,
            vms,
            pending: status
                .pending
                .iter()
                .map(|p| OpRow {
                    op: p.op,
                    class: class_str(p.class).to_string(),
                    vm: p.vm.clone(),
                    since: rfc3339(p.since),
                })
                .collect(),
            avoiding,
            restarting: status
                .restarting
                .iter()
                .map(|r| RestartRow {
                    vm: r.vm.clone(),
                    attempts: r.attempts,
                    next_at: rfc3339(r.next_at),
                    gives_up_at: rfc3339(r.gives_up_at),
                })
                .collect(),
            evictions: status
                .evictions
                .iter()
                .map(|e| EvictionRow {
                    vm: e.vm.clone(),
                    offering: offering_str(&e.offering),
                    seen_at: rfc3339(e.seen_at),
                    via: via_str(e.via).to_string(),
                    replacement: e.replacement.clone(),
                    replaced_at: e.replaced_at.map(rfc3339),
                    time_to_replace_s: e.time_to_replace().map(|d| d.as_secs_f64()),
                })
                .collect(),
            conditions: status
                .conditions
                .iter()
                .map(|c| ConditionRow {
                    reason: reason_str(c.reason).to_string(),
                    message: c.message.clone(),
                    since: rfc3339(c.since),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spotkit_core::compute::ProvisioningState;
    use spotkit_core::orchestrator::{Candidate, PoolMachine, Target};

    fn vm(name: &str, pool: &str, priority: Priority, power: PowerState) -> VmObservation {
        VmObservation {
            name: name.to_string(),
            resource_group: "rg".to_string(),
            id: format!("/x/{name}"),
            offering: OfferingId::new("Standard_D2s_v5", "eastus"),
            priority,
            eviction_policy: None,
            max_price: None,
            provisioning: ProvisioningState::Succeeded,
            power,
            tags: [(TAG_POOL.to_string(), pool.to_string())].into(),
            created_at: None,
        }
    }

    #[test]
    fn prices_running_vms_of_the_pool_only_and_round_trips_as_json() {
        let mut spec = PoolSpec::new(
            "p",
            Target::Vms(3),
            vec![Candidate {
                offering: OfferingId::new("standard_d2s_v5", "EastUS"),
                vcpus: 2,
                spot_capable: true,
                spot_price: Some(0.02),
                payg_price: Some(0.10),
                band: None,
                rank: 0,
            }],
        );
        spec.template.resource_group = "rg".to_string();
        let now = Timestamp::from_unix_secs(1_767_225_600);
        let machine = PoolMachine::new(spec.clone(), now, 1);
        let listing = vec![
            vm("p-0", "p", Priority::Spot, PowerState::Running),
            vm("p-1", "p", Priority::Regular, PowerState::Running),
            vm("p-2", "p", Priority::Spot, PowerState::Deallocated),
            vm("q-0", "q", Priority::Spot, PowerState::Running),
        ];
        let view = StatusView::build(&spec, &machine.status(), &listing, now);
        assert_eq!(view.vms.len(), 3, "{view:?}");
        assert!(
            (view.usd_per_hour - 0.12).abs() < 1e-9,
            "{}",
            view.usd_per_hour
        );
        assert_eq!(view.unpriced_vms, 0);
        assert_eq!(view.at, "2026-01-01T00:00:00Z");
        let json = serde_json::to_string(&view).unwrap();
        let back: StatusView = serde_json::from_str(&json).unwrap();
        assert_eq!(back, view);
    }

    #[test]
    fn rfc3339_round_trips_and_accepts_offsets() {
        let t = Timestamp::from_unix_millis(1_767_225_600_123);
        assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        assert_eq!(
            parse_rfc3339("2026-01-01T01:00:00+01:00"),
            Some(Timestamp::from_unix_secs(1_767_225_600))
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
