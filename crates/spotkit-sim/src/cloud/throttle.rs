//! ARM's and Compute's throttling as token buckets, with time passed in.
//!
//! ARM (2024+): per subscription, reads 250 tokens refilled at 25/s, writes 200 at 10/s,
//! deletes 200 at 10/s. Compute RP (per minute, per region): Put VM subscription 1,500 at
//! 500/min and per VM 12 at 4/min; Update VM (start, deallocate) the same; Delete VM (delete,
//! deallocate, simulateEviction) the same; Low-cost Get 24,000 at 8,000/min, per VM 36 at
//! 12/min; High-cost Get (lists) 900 at 300/min; Get Operation 15,000 at 5,000/min, per VM 45
//! at 15/min (FACTS.md section 5). `scale` multiplies every size and refill so tests can
//! exhaust them.

use std::collections::BTreeMap;
use std::time::Duration;

use spotkit_core::Timestamp;

/// A token bucket.
#[derive(Clone, Debug, PartialEq)]
struct Bucket {
    capacity: f64,
    refill_per_sec: f64,
    tokens: f64,
    last: Timestamp,
}

impl Bucket {
    fn new(capacity: f64, refill_per_sec: f64, now: Timestamp) -> Self {
        Self {
            capacity,
            refill_per_sec,
            tokens: capacity,
            last: now,
        }
    }

    fn refill(&mut self, now: Timestamp) {
        let elapsed = now.since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.refill_per_sec).min(self.capacity);
        self.last = self.last.max(now);
    }

    /// Seconds until one token is there.
    fn wait(&self) -> Duration {
        if self.tokens >= 1.0 || self.refill_per_sec <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(((1.0 - self.tokens) / self.refill_per_sec).max(0.001))
    }

    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn remaining(&self) -> u64 {
        self.tokens.max(0.0).floor() as u64
    }
}

/// Which ARM budget and which Compute policy a request draws on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ThrottleCategory {
    /// GET of one VM or its instance view.
    LowCostGet,
    /// Lists.
    HighCostGet,
    /// Operation status polls.
    GetOperation,
    /// PUT.
    PutVm,
    /// start.
    UpdateVm,
    /// delete, deallocate, simulateEviction.
    DeleteVm,
}

impl ThrottleCategory {
    /// The ARM budget: `reads`, `writes` or `deletes`.
    #[must_use]
    pub const fn arm_kind(self) -> &'static str {
        match self {
            Self::LowCostGet | Self::HighCostGet | Self::GetOperation => "reads",
            Self::PutVm | Self::UpdateVm => "writes",
            Self::DeleteVm => "deletes",
        }
    }

    /// The Compute policy name in `x-ms-ratelimit-remaining-resource`.
    #[must_use]
    pub const fn policy(self) -> &'static str {
        match self {
            Self::LowCostGet => "LowCostGet",
            Self::HighCostGet => "HighCostGet",
            Self::GetOperation => "GetOperation",
            Self::PutVm => "PutVM",
            Self::UpdateVm => "UpdateVM",
            Self::DeleteVm => "DeleteVM",
        }
    }

    /// (subscription max, per-minute refill), (resource max, per-minute refill).
    const fn compute_limits(self) -> ((f64, f64), Option<(f64, f64)>) {
        match self {
            Self::PutVm | Self::UpdateVm | Self::DeleteVm => ((1500.0, 500.0), Some((12.0, 4.0))),
            Self::LowCostGet => ((24000.0, 8000.0), Some((36.0, 12.0))),
            Self::HighCostGet => ((900.0, 300.0), None),
            Self::GetOperation => ((15000.0, 5000.0), Some((45.0, 15.0))),
        }
    }
}

/// The answer for one request.
#[derive(Clone, Debug, PartialEq)]
pub struct ThrottleDecision {
    /// `None`: go ahead. `Some(wait)`: 429 with this `Retry-After`.
    pub throttled: Option<Duration>,
    /// Which bucket ran dry (`HighCostGet`, `ARM-reads`, ...), for the 429 body.
    pub exhausted: Option<String>,
    /// `x-ms-ratelimit-remaining-subscription-{reads|writes|deletes}` name and value.
    pub arm_header: (String, u64),
    /// `x-ms-ratelimit-remaining-resource` value.
    pub resource_header: String,
}

/// Every bucket of one simulated subscription.
#[derive(Debug)]
pub struct Throttle {
    scale: f64,
    arm: BTreeMap<&'static str, Bucket>,
    compute_subscription: BTreeMap<ThrottleCategory, Bucket>,
    compute_resource: BTreeMap<(ThrottleCategory, String), Bucket>,
}

impl Throttle {
    /// Buckets at `scale` times the documented sizes and refills.
    #[must_use]
    pub fn new(scale: f64) -> Self {
        Self {
            scale: scale.max(0.0),
            arm: BTreeMap::new(),
            compute_subscription: BTreeMap::new(),
            compute_resource: BTreeMap::new(),
        }
    }

    /// Takes one token from each bucket `category` draws on (for `resource`, a VM name), or
    /// says how long to wait. A refused request takes nothing.
    pub fn admit(
        &mut self,
        category: ThrottleCategory,
        resource: Option<&str>,
        now: Timestamp,
    ) -> ThrottleDecision {
        let scale = self.scale;
        let kind = category.arm_kind();
        let (arm_capacity, arm_refill) = match kind {
            "reads" => (250.0, 25.0),
            _ => (200.0, 10.0),
        };
        let arm = self
            .arm
            .entry(kind)
            .or_insert_with(|| Bucket::new(arm_capacity * scale, arm_refill * scale, now));
        arm.refill(now);
        let ((sub_max, sub_refill), resource_limits) = category.compute_limits();
        let subscription = self
            .compute_subscription
            .entry(category)
            .or_insert_with(|| Bucket::new(sub_max * scale, sub_refill * scale / 60.0, now));
        subscription.refill(now);
        let mut per_resource = match (resource, resource_limits) {
            (Some(resource), Some((max, refill))) => {
                let bucket = self
                    .compute_resource
                    .entry((category, resource.to_ascii_lowercase()))
                    .or_insert_with(|| Bucket::new(max * scale, refill * scale / 60.0, now));
                bucket.refill(now);
                Some(bucket)
            }
            _ => None,
        };
        let arm = self.arm.get_mut(kind).expect("inserted above");
        let subscription = self
            .compute_subscription
            .get_mut(&category)
            .expect("inserted above");
        let mut throttled = None;
        let mut exhausted = None;
        let candidates: [(Option<&Bucket>, String); 3] = [
            (Some(&*arm), format!("ARM-subscription-{kind}")),
            (
                Some(&*subscription),
                format!("{}SubscriptionMaximum", category.policy()),
            ),
            (
                per_resource.as_deref(),
                format!("{}Resource", category.policy()),
            ),
        ];
        for (bucket, name) in candidates {
            if let Some(bucket) = bucket
                && bucket.tokens < 1.0
            {
                let wait = bucket.wait().max(Duration::from_secs(1));
                if throttled.is_none_or(|longest| wait > longest) {
                    throttled = Some(wait);
                    exhausted = Some(name);
                }
            }
        }
        if throttled.is_none() {
            arm.tokens -= 1.0;
            subscription.tokens -= 1.0;
            if let Some(bucket) = per_resource.as_mut() {
                bucket.tokens -= 1.0;
            }
        }
        let mut resource_header = format!(
            "Microsoft.Compute/{}SubscriptionMaximum;{}",
            category.policy(),
            subscription.remaining()
        );
        if let Some(bucket) = per_resource {
            resource_header.push_str(&format!(
                ",Microsoft.Compute/{}Resource;{}",
                category.policy(),
                bucket.remaining()
            ));
        }
        ThrottleDecision {
            throttled,
            exhausted,
            arm_header: (
                format!("x-ms-ratelimit-remaining-subscription-{kind}"),
                arm.remaining(),
            ),
            resource_header,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_run_dry_after_the_bucket_and_refill_at_the_documented_rate() {
        let now = Timestamp::from_unix_secs(1_000);
        let mut throttle = Throttle::new(1.0);
        for expected_remaining in (0..250).rev() {
            let decision = throttle.admit(ThrottleCategory::GetOperation, None, now);
            assert!(decision.throttled.is_none());
            assert_eq!(decision.arm_header.1, expected_remaining);
        }
        let refused = throttle.admit(ThrottleCategory::GetOperation, None, now);
        assert!(refused.throttled.is_some());
        assert_eq!(refused.exhausted.as_deref(), Some("ARM-subscription-reads"));
        // 25 reads per second come back.
        let later = now.plus(Duration::from_secs(1));
        let decision = throttle.admit(ThrottleCategory::GetOperation, None, later);
        assert!(decision.throttled.is_none());
        assert_eq!(decision.arm_header.1, 24);
    }

    #[test]
    fn a_single_vm_runs_out_of_its_compute_budget_first() {
        let now = Timestamp::from_unix_secs(0);
        let mut throttle = Throttle::new(1.0);
        for _ in 0..12 {
            assert!(
                throttle
                    .admit(ThrottleCategory::PutVm, Some("vm1"), now)
                    .throttled
                    .is_none()
            );
        }
        let refused = throttle.admit(ThrottleCategory::PutVm, Some("vm1"), now);
        assert_eq!(refused.exhausted.as_deref(), Some("PutVMResource"));
        // 4 per minute: the next token is 15 s away.
        assert_eq!(refused.throttled, Some(Duration::from_secs(15)));
        assert!(
            throttle
                .admit(ThrottleCategory::PutVm, Some("vm2"), now)
                .throttled
                .is_none()
        );
    }
}
