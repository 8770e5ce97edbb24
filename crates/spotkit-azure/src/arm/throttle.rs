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

/// A token bucket: `capacity` tokens at most, `refill` tokens added per `period`, continuously.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenBucket {
    capacity: f64,
    refill_per_ms: f64,
    tokens: f64,
    updated: Timestamp,
}

impl TokenBucket {
    /// A full bucket at `now`.
    #[must_use]
    pub fn new(capacity: u32, refill: u32, period: Duration, now: Timestamp) -> Self {
        let period_ms = period.as_millis().max(1) as f64;
        Self {
            capacity: f64::from(capacity.max(1)),
            refill_per_ms: f64::from(refill) / period_ms,
            tokens: f64::from(capacity.max(1)),
            updated: now,
        }
    }

    fn refill(&mut self, now: Timestamp) {
        let elapsed = now.since(self.updated).as_millis() as f64;
        if elapsed > 0.0 {
            self.tokens = (self.tokens + elapsed * self.refill_per_ms).min(self.capacity);
            self.updated = now;
        }
    }

    /// How long until a token is available at `now` (zero if one is).
    #[must_use]
    pub fn wait_at(&self, now: Timestamp) -> Duration {
        let mut probe = self.clone();
        probe.refill(now);
        if probe.tokens >= 1.0 {
            Duration::ZERO
        } else if probe.refill_per_ms <= 0.0 {
            Duration::MAX
        } else {
            let ms = ((1.0 - probe.tokens) / probe.refill_per_ms).ceil();
            Duration::from_millis(ms as u64)
        }
    }

    /// Takes one token at `now`, or says how long to wait for one.
    ///
    /// # Errors
    /// The wait until a token is available.
    pub fn try_take(&mut self, now: Timestamp) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.wait_at(now))
        }
    }

    /// The service says only `remaining` requests are left: never believe we have more.
    pub fn observe_remaining(&mut self, remaining: u32, now: Timestamp) {
        self.refill(now);
        self.tokens = self.tokens.min(f64::from(remaining));
    }

    /// Tokens available at `now` (fractional).
    #[must_use]
    pub fn available(&self, now: Timestamp) -> f64 {
        let mut probe = self.clone();
        probe.refill(now);
        probe.tokens
    }

    /// Whether the bucket is full at `now` (it then carries no information and can be dropped).
    #[must_use]
    pub fn is_full(&self, now: Timestamp) -> bool {
        self.available(now) >= self.capacity
    }
}

/// ARM's request categories: by HTTP method (GET reads, PUT/POST/PATCH writes, DELETE deletes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ArmKind {
    /// GET (and HEAD).
    Read,
    /// PUT, POST, PATCH.
    Write,
    /// DELETE.
    Delete,
}

impl ArmKind {
    /// The category of an HTTP method.
    #[must_use]
    pub fn of(method: &reqwest::Method) -> Self {
        if method == reqwest::Method::GET || method == reqwest::Method::HEAD {
            Self::Read
        } else if method == reqwest::Method::DELETE {
            Self::Delete
        } else {
            Self::Write
        }
    }
}

/// The Compute provider's throttling policies (FACTS.md section 5, VM table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ComputeOperation {
    /// Create or update a VM (PUT).
    PutVm,
    /// Start, restart, power off and other updates.
    UpdateVm,
    /// Delete, deallocate, simulateEviction.
    DeleteVm,
    /// Get one VM, instance view.
    LowCostGet,
    /// List VMs (per subscription only).
    HighCostGet,
    /// Poll a long-running operation's status.
    GetOperation,
}

impl ComputeOperation {
    /// `(refill per minute, max)` per VM, if the policy has a per-resource bucket.
    #[must_use]
    pub const fn resource_limit(self) -> Option<(u32, u32)> {
        match self {
            Self::PutVm | Self::UpdateVm | Self::DeleteVm => Some((4, 12)),
            Self::LowCostGet => Some((12, 36)),
            Self::HighCostGet => None,
            Self::GetOperation => Some((15, 45)),
        }
    }

    /// `(refill per minute, max)` per subscription and region.
    #[must_use]
    pub const fn subscription_limit(self) -> (u32, u32) {
        match self {
            Self::PutVm | Self::UpdateVm | Self::DeleteVm => (500, 1_500),
            Self::LowCostGet => (8_000, 24_000),
            Self::HighCostGet => (300, 900),
            Self::GetOperation => (5_000, 15_000),
        }
    }

    /// The policy an `x-ms-ratelimit-remaining-resource` entry names
    /// (`Microsoft.Compute/PutVM3Min`, `…/HighCostGet30Min`, `…/LowCostGetSubscriptionMaximum`,
    /// `…/GetOperation3Min`...), if it is a VM policy we pace.
    #[must_use]
    pub fn from_policy_name(policy: &str) -> Option<Self> {
        let name = policy
            .rsplit('/')
            .next()
            .unwrap_or(policy)
            .to_ascii_lowercase();
        // VMSS policies have their own (separate) buckets.
        if name.contains("vmss") || name.contains("scaleset") {
            return None;
        }
        [
            ("putvm", Self::PutVm),
            ("updatevm", Self::UpdateVm),
            ("deletevm", Self::DeleteVm),
            ("lowcostget", Self::LowCostGet),
            ("highcostget", Self::HighCostGet),
            ("getoperation", Self::GetOperation),
        ]
        .into_iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, op)| op)
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
            reads: (250, 25),
            writes: (200, 10),
            deletes: (200, 10),
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
