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
use spotkit_core::throttle::{ArmKind, TokenBucket};

/// Which Compute policy (and so which ARM budget) a request draws on.
pub use spotkit_core::throttle::ComputeOperation as ThrottleCategory;

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
    arm: BTreeMap<ArmKind, TokenBucket>,
    compute_subscription: BTreeMap<ThrottleCategory, TokenBucket>,
    compute_resource: BTreeMap<(ThrottleCategory, String), TokenBucket>,
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
        let (arm_capacity, arm_refill) = kind.documented_limit();
        let arm = self.arm.entry(kind).or_insert_with(|| {
            TokenBucket::with_rate(
                f64::from(arm_capacity) * scale,
                f64::from(arm_refill) * scale,
                now,
            )
        });
        let per_minute = |(refill, max): (u32, u32)| {
            TokenBucket::with_rate(
                f64::from(max) * scale,
                f64::from(refill) * scale / 60.0,
                now,
            )
        };
        let subscription = self
            .compute_subscription
            .entry(category)
            .or_insert_with(|| per_minute(category.subscription_limit()));
        let mut per_resource = match (resource, category.resource_limit()) {
            (Some(resource), Some(limit)) => Some(
                self.compute_resource
                    .entry((category, resource.to_ascii_lowercase()))
                    .or_insert_with(|| per_minute(limit)),
            ),
            _ => None,
        };
        let mut throttled = None;
        let mut exhausted = None;
        let candidates: [(Option<&TokenBucket>, String); 3] = [
            (
                Some(&*arm),
                format!("ARM-subscription-{}", kind.header_suffix()),
            ),
            (
                Some(&*subscription),
                format!("{}SubscriptionMaximum", category.policy_name()),
            ),
            (
                per_resource.as_deref(),
                format!("{}Resource", category.policy_name()),
            ),
        ];
        for (bucket, name) in candidates {
            if let Some(bucket) = bucket {
                let wait = bucket.wait_at(now);
                if !wait.is_zero() {
                    let wait = wait.max(Duration::from_secs(1));
                    if throttled.is_none_or(|longest| wait > longest) {
                        throttled = Some(wait);
                        exhausted = Some(name);
                    }
                }
            }
        }
        if throttled.is_none() {
            // Cannot fail: every bucket had a token at `now`.
            let _ = arm.try_take(now);
            let _ = subscription.try_take(now);
            if let Some(bucket) = per_resource.as_mut() {
                let _ = bucket.try_take(now);
            }
        }
        let mut resource_header = format!(
            "Microsoft.Compute/{}SubscriptionMaximum;{}",
            category.policy_name(),
            subscription.remaining(now)
        );
        if let Some(bucket) = per_resource {
            resource_header.push_str(&format!(
                ",Microsoft.Compute/{}Resource;{}",
                category.policy_name(),
                bucket.remaining(now)
            ));
        }
        ThrottleDecision {
            throttled,
            exhausted,
            arm_header: (
                format!(
                    "x-ms-ratelimit-remaining-subscription-{}",
                    kind.header_suffix()
                ),
                arm.remaining(now),
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
