//! Client-side pacing under ARM's and the Compute provider's throttling limits: pure token
//! buckets, time as an argument.
//!
//! ARM (since 2024) throttles with regional token buckets per subscription and principal
//! (FACTS.md section 5): reads 250 burst / 25 per second, writes 200 / 10, deletes 200 / 10. The
//! Compute provider adds per-region buckets refilled per minute, per subscription and per VM
//! (Put VM 500/1,500 per subscription and 4/12 per VM, ...). [`ArmThrottle`] keeps a bucket for
//! each, takes a token from every bucket a request counts against before it is sent, and lowers
//! a bucket whenever the service reports fewer remaining requests than we think
//! (`x-ms-ratelimit-remaining-*`), so the client slows down as the service's own counts approach
//! zero instead of running into 429s. Buckets are an estimate; the service stays the authority
//! and its 429 + `Retry-After` pauses a whole class of requests ([`ArmThrottle::pause`]).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::HeaderMap;
use spotkit_core::Timestamp;
pub use spotkit_core::throttle::{ArmKind, ComputeOperation, TokenBucket};

/// The ARM budget an HTTP method draws on.
#[must_use]
pub fn kind_of(method: &reqwest::Method) -> ArmKind {
    if method == reqwest::Method::GET || method == reqwest::Method::HEAD {
        ArmKind::Read
    } else if method == reqwest::Method::DELETE {
        ArmKind::Delete
    } else {
        ArmKind::Write
    }
}

/// What a request counts against, beyond ARM's per-method subscription buckets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperationClass {
    /// A plain ARM request. A POST of this class is not retried once it may have reached the
    /// service (it may not be idempotent).
    Arm,
    /// A POST that only reads (a Resource Graph query, placement scores): safe to retry.
    ArmQuery,
    /// A Compute provider VM request: also paced by the per-region (and per-VM) Compute buckets.
    /// Compute's VM operations are idempotent (PUT of a spec, start, deallocate, delete).
    Compute {
        /// Which policy.
        op: ComputeOperation,
        /// The region, when known (the Compute buckets are per region; unknown shares one).
        region: Option<String>,
        /// The VM's ARM id, for the per-VM bucket.
        resource: Option<String>,
    },
}

impl OperationClass {
    /// A Compute request.
    #[must_use]
    pub fn compute(op: ComputeOperation, region: Option<&str>, resource: Option<&str>) -> Self {
        Self::Compute {
            op,
            region: region.map(str::to_ascii_lowercase),
            resource: resource.map(str::to_ascii_lowercase),
        }
    }

    /// Whether a request of this class and method may be sent again after it may have reached
    /// the service.
    #[must_use]
    pub fn is_idempotent(&self, method: &reqwest::Method) -> bool {
        match self {
            Self::Arm => method != reqwest::Method::POST && method != reqwest::Method::PATCH,
            Self::ArmQuery | Self::Compute { .. } => true,
        }
    }
}

/// The throttling counts a response reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateLimitHeaders {
    /// `x-ms-ratelimit-remaining-subscription-reads`.
    pub subscription_reads: Option<u32>,
    /// `x-ms-ratelimit-remaining-subscription-writes`.
    pub subscription_writes: Option<u32>,
    /// `x-ms-ratelimit-remaining-subscription-deletes`.
    pub subscription_deletes: Option<u32>,
    /// `x-ms-ratelimit-remaining-resource`: `(policy, remaining)` pairs, e.g.
    /// `("Microsoft.Compute/PutVM3Min", 239)`.
    pub resource: Vec<(String, u32)>,
}

impl RateLimitHeaders {
    /// Reads the headers; unparseable values are ignored (they only refine our estimate).
    #[must_use]
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
        };
        let resource = headers
            .get_all("x-ms-ratelimit-remaining-resource")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_remaining_resource)
            .collect();
        Self {
            subscription_reads: number("x-ms-ratelimit-remaining-subscription-reads"),
            subscription_writes: number("x-ms-ratelimit-remaining-subscription-writes"),
            subscription_deletes: number("x-ms-ratelimit-remaining-subscription-deletes"),
            resource,
        }
    }

    fn subscription(&self, kind: ArmKind) -> Option<u32> {
        match kind {
            ArmKind::Read => self.subscription_reads,
            ArmKind::Write => self.subscription_writes,
            ArmKind::Delete => self.subscription_deletes,
        }
    }
}

/// `Microsoft.Compute/PutVM3Min;239,Microsoft.Compute/PutVM30Min;1199` into pairs.
#[must_use]
pub fn parse_remaining_resource(value: &str) -> Vec<(String, u32)> {
    value
        .split(',')
        .filter_map(|pair| {
            let (policy, count) = pair.trim().split_once(';')?;
            Some((policy.trim().to_string(), count.trim().parse().ok()?))
        })
        .collect()
}

/// ARM's per-method subscription limits `(burst, refill per second)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArmLimits {
    /// Reads: 250 / 25 per s.
    pub reads: (u32, u32),
    /// Writes: 200 / 10 per s.
    pub writes: (u32, u32),
    /// Deletes: 200 / 10 per s.
    pub deletes: (u32, u32),
}

impl Default for ArmLimits {
    fn default() -> Self {
        Self {
            reads: ArmKind::Read.documented_limit(),
            writes: ArmKind::Write.documented_limit(),
            deletes: ArmKind::Delete.documented_limit(),
        }
    }
}

/// Above this many per-VM buckets, full ones (no recent use) are dropped.
const RESOURCE_BUCKETS_MAX: usize = 4_096;

/// All the buckets one client paces itself with. Pure: time is an argument.
#[derive(Clone, Debug)]
pub struct ArmThrottle {
    limits: ArmLimits,
    arm: BTreeMap<ArmKind, TokenBucket>,
    compute_subscription: BTreeMap<(ComputeOperation, String), TokenBucket>,
    compute_resource: BTreeMap<(ComputeOperation, String), TokenBucket>,
    paused_until: BTreeMap<ArmKind, Timestamp>,
}

const ANY_REGION: &str = "*";
const MINUTE: Duration = Duration::from_secs(60);

impl ArmThrottle {
    /// Full buckets at `now`.
    #[must_use]
    pub fn new(limits: ArmLimits, now: Timestamp) -> Self {
        let second = Duration::from_secs(1);
        let arm = [
            (ArmKind::Read, limits.reads),
            (ArmKind::Write, limits.writes),
            (ArmKind::Delete, limits.deletes),
        ]
        .into_iter()
        .map(|(k, (burst, refill))| (k, TokenBucket::new(burst, refill, second, now)))
        .collect();
        Self {
            limits,
            arm,
            compute_subscription: BTreeMap::new(),
            compute_resource: BTreeMap::new(),
            paused_until: BTreeMap::new(),
        }
    }

    /// The limits in use.
    #[must_use]
    pub fn limits(&self) -> ArmLimits {
        self.limits
    }

    fn compute_keys(class: &OperationClass) -> Option<(ComputeOperation, String, Option<String>)> {
        match class {
            OperationClass::Compute {
                op,
                region,
                resource,
            } => Some((
                *op,
                region.clone().unwrap_or_else(|| ANY_REGION.to_string()),
                resource.clone().filter(|_| op.resource_limit().is_some()),
            )),
            OperationClass::Arm | OperationClass::ArmQuery => None,
        }
    }

    /// Takes a token from every bucket the request counts against, or none if any is empty:
    /// then the longest wait among them.
    ///
    /// # Errors
    /// How long to wait before asking again.
    pub fn try_acquire(
        &mut self,
        kind: ArmKind,
        class: &OperationClass,
        now: Timestamp,
    ) -> Result<(), Duration> {
        if let Some(until) = self.paused_until.get(&kind) {
            if *until > now {
                return Err(until.since(now));
            }
            self.paused_until.remove(&kind);
        }
        let compute = Self::compute_keys(class);
        if let Some((op, region, _)) = &compute {
            let (refill, max) = op.subscription_limit();
            self.compute_subscription
                .entry((*op, region.clone()))
                .or_insert_with(|| TokenBucket::new(max, refill, MINUTE, now));
        }
        if let Some((op, _, Some(resource))) = &compute {
            if self.compute_resource.len() >= RESOURCE_BUCKETS_MAX {
                self.compute_resource.retain(|_, b| !b.is_full(now));
            }
            let (refill, max) = op.resource_limit().unwrap_or((1, 1));
            self.compute_resource
                .entry((*op, resource.clone()))
                .or_insert_with(|| TokenBucket::new(max, refill, MINUTE, now));
        }
        let mut buckets: Vec<&mut TokenBucket> = Vec::with_capacity(3);
        if let Some(b) = self.arm.get_mut(&kind) {
            buckets.push(b);
        }
        if let Some((op, region, resource)) = compute {
            if let Some(b) = self.compute_subscription.get_mut(&(op, region)) {
                buckets.push(b);
            }
            if let Some(resource) = resource
                && let Some(b) = self.compute_resource.get_mut(&(op, resource))
            {
                buckets.push(b);
            }
        }
        let wait = buckets
            .iter()
            .map(|b| b.wait_at(now))
            .max()
            .unwrap_or(Duration::ZERO);
        if !wait.is_zero() {
            return Err(wait);
        }
        for b in buckets {
            // Cannot fail: every bucket had a token at `now`.
            let _ = b.try_take(now);
        }
        Ok(())
    }

    /// Lowers our estimate to what the service reported for this request's buckets.
    pub fn observe(
        &mut self,
        kind: ArmKind,
        class: &OperationClass,
        headers: &RateLimitHeaders,
        now: Timestamp,
    ) {
        if let (Some(remaining), Some(bucket)) =
            (headers.subscription(kind), self.arm.get_mut(&kind))
        {
            bucket.observe_remaining(remaining, now);
        }
        let region = match class {
            OperationClass::Compute { region, .. } => {
                region.clone().unwrap_or_else(|| ANY_REGION.to_string())
            }
            OperationClass::Arm | OperationClass::ArmQuery => ANY_REGION.to_string(),
        };
        for (policy, remaining) in &headers.resource {
            let Some(op) = ComputeOperation::from_policy_name(policy) else {
                continue;
            };
            let (refill, max) = op.subscription_limit();
            self.compute_subscription
                .entry((op, region.clone()))
                .or_insert_with(|| TokenBucket::new(max, refill, MINUTE, now))
                .observe_remaining(*remaining, now);
        }
    }

    /// The service throttled a request of `kind` and asked for `retry_after`: hold every request
    /// of that kind until then.
    pub fn pause(&mut self, kind: ArmKind, retry_after: Duration, now: Timestamp) {
        let until = now.plus(retry_after);
        let entry = self.paused_until.entry(kind).or_insert(until);
        if *entry < until {
            *entry = until;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_unix_millis(1_000_000);

    #[test]
    fn a_bucket_allows_its_burst_then_paces_at_the_refill_rate() {
        let mut b = TokenBucket::new(250, 25, Duration::from_secs(1), T0);
        for i in 0..250 {
            assert_eq!(b.try_take(T0), Ok(()), "request {i} is within the burst");
        }
        assert_eq!(b.try_take(T0), Err(Duration::from_millis(40)));
        let later = T0.plus(Duration::from_millis(40));
        assert_eq!(b.try_take(later), Ok(()));
        // One second refills 25, never above the capacity.
        let much_later = T0.plus(Duration::from_secs(3600));
        assert!((b.available(much_later) - 250.0).abs() < 1e-9);
        assert!(b.is_full(much_later));
    }

    #[test]
    fn reported_remaining_counts_lower_the_estimate_only() {
        let mut b = TokenBucket::new(12, 4, MINUTE, T0);
        b.observe_remaining(100, T0);
        assert!((b.available(T0) - 12.0).abs() < 1e-9, "never raised");
        b.observe_remaining(0, T0);
        // 4 per minute: the next token in 15 s.
        assert_eq!(b.try_take(T0), Err(Duration::from_secs(15)));
        assert_eq!(b.try_take(T0.plus(Duration::from_secs(15))), Ok(()));
    }

    #[test]
    fn compute_requests_take_from_every_bucket_they_count_against() {
        let mut t = ArmThrottle::new(ArmLimits::default(), T0);
        let put =
            |vm: &str| OperationClass::compute(ComputeOperation::PutVm, Some("eastus"), Some(vm));
        for _ in 0..12 {
            assert_eq!(t.try_acquire(ArmKind::Write, &put("vm-a"), T0), Ok(()));
        }
        // The per-VM bucket (12 max, 4 per minute) is empty; another VM is not affected.
        assert_eq!(
            t.try_acquire(ArmKind::Write, &put("vm-a"), T0),
            Err(Duration::from_secs(15))
        );
        assert_eq!(t.try_acquire(ArmKind::Write, &put("vm-b"), T0), Ok(()));
        // A refused request took nothing: ARM's write bucket lost 13 tokens, not 14.
        assert!((t.arm[&ArmKind::Write].available(T0) - 187.0).abs() < 1e-9);
    }

    #[test]
    fn headers_slow_the_client_down_before_the_service_refuses() {
        let mut t = ArmThrottle::new(ArmLimits::default(), T0);
        let list = OperationClass::compute(ComputeOperation::HighCostGet, Some("eastus"), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-ms-ratelimit-remaining-subscription-reads",
            "0".parse().unwrap(),
        );
        headers.insert(
            "x-ms-ratelimit-remaining-resource",
            "Microsoft.Compute/HighCostGet3Min;0,Microsoft.Compute/HighCostGet30Min;400"
                .parse()
                .unwrap(),
        );
        let parsed = RateLimitHeaders::from_headers(&headers);
        assert_eq!(parsed.subscription_reads, Some(0));
        assert_eq!(
            parsed.resource,
            vec![
                ("Microsoft.Compute/HighCostGet3Min".to_string(), 0),
                ("Microsoft.Compute/HighCostGet30Min".to_string(), 400)
            ]
        );
        t.observe(ArmKind::Read, &list, &parsed, T0);
        // ARM reads refill at 25/s (40 ms); HighCostGet at 300/min (200 ms): the longer wins.
        assert_eq!(
            t.try_acquire(ArmKind::Read, &list, T0),
            Err(Duration::from_millis(200))
        );
        // A plain ARM read only waits for ARM's bucket.
        assert_eq!(
            t.try_acquire(ArmKind::Read, &OperationClass::Arm, T0),
            Err(Duration::from_millis(40))
        );
        assert_eq!(
            t.try_acquire(ArmKind::Read, &list, T0.plus(Duration::from_millis(200))),
            Ok(())
        );
    }

    #[test]
    fn a_pause_holds_every_request_of_its_kind() {
        let mut t = ArmThrottle::new(ArmLimits::default(), T0);
        t.pause(ArmKind::Write, Duration::from_secs(20), T0);
        t.pause(ArmKind::Write, Duration::from_secs(5), T0);
        assert_eq!(
            t.try_acquire(
                ArmKind::Write,
                &OperationClass::Arm,
                T0.plus(Duration::from_secs(1))
            ),
            Err(Duration::from_secs(19))
        );
        assert_eq!(
            t.try_acquire(ArmKind::Read, &OperationClass::Arm, T0),
            Ok(())
        );
        assert_eq!(
            t.try_acquire(
                ArmKind::Write,
                &OperationClass::Arm,
                T0.plus(Duration::from_secs(20))
            ),
            Ok(())
        );
    }

    #[test]
    fn policy_names_map_to_vm_policies_only() {
        let op = ComputeOperation::from_policy_name;
        assert_eq!(
            op("Microsoft.Compute/PutVM3Min"),
            Some(ComputeOperation::PutVm)
        );
        assert_eq!(
            op("Microsoft.Compute/HighCostGet30Min"),
            Some(ComputeOperation::HighCostGet)
        );
        assert_eq!(
            op("Microsoft.Compute/LowCostGetSubscriptionMaximum"),
            Some(ComputeOperation::LowCostGet)
        );
        assert_eq!(op("Microsoft.Compute/PutVMScaleSet3Min"), None);
        assert_eq!(
            op("Microsoft.Compute/VMScaleSetBatchedVMRequests5Min"),
            None
        );
        assert_eq!(parse_remaining_resource("garbage,,a;b"), vec![]);
    }
}
