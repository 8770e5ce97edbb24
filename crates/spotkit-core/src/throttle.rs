//! Throttling arithmetic shared by the ARM client (which paces itself) and the simulator (which
//! enforces the same limits): token buckets with time as an argument, and the documented limits
//! of Azure Resource Manager and of the Compute provider (FACTS.md section 5).
//!
//! ARM (since 2024) throttles per subscription with token buckets: reads 250 burst / 25 per
//! second, writes 200 / 10, deletes 200 / 10. The Compute provider adds per-region buckets
//! refilled per minute, per subscription and per VM (Put VM 500/1,500 per subscription and 4/12
//! per VM, ...).

use std::time::Duration;

use crate::Timestamp;

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

    /// A full bucket at `now` with a fractional size and rate (the simulator scales the
    /// documented limits by a factor, so tests can exhaust them).
    #[must_use]
    pub fn with_rate(capacity: f64, refill_per_sec: f64, now: Timestamp) -> Self {
        let capacity = capacity.max(0.0);
        Self {
            capacity,
            refill_per_ms: refill_per_sec.max(0.0) / 1000.0,
            tokens: capacity,
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

    /// Whole tokens available at `now`, as the `x-ms-ratelimit-remaining-*` headers count them.
    #[must_use]
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub fn remaining(&self, now: Timestamp) -> u64 {
        self.available(now).max(0.0).floor() as u64
    }

    /// Whether the bucket is full at `now` (it then carries no information and can be dropped).
    #[must_use]
    pub fn is_full(&self, now: Timestamp) -> bool {
        self.available(now) >= self.capacity
    }
}

/// ARM's per-subscription budgets: GET reads, PUT/POST/PATCH writes, DELETE deletes.
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
    /// The documented `(burst, refill per second)` of the subscription bucket.
    #[must_use]
    pub const fn documented_limit(self) -> (u32, u32) {
        match self {
            Self::Read => (250, 25),
            Self::Write | Self::Delete => (200, 10),
        }
    }

    /// The suffix of its header, `x-ms-ratelimit-remaining-subscription-{reads|writes|deletes}`.
    #[must_use]
    pub const fn header_suffix(self) -> &'static str {
        match self {
            Self::Read => "reads",
            Self::Write => "writes",
            Self::Delete => "deletes",
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

    /// The ARM budget the operation's HTTP method draws on.
    #[must_use]
    pub const fn arm_kind(self) -> ArmKind {
        match self {
            Self::LowCostGet | Self::HighCostGet | Self::GetOperation => ArmKind::Read,
            Self::PutVm | Self::UpdateVm => ArmKind::Write,
            Self::DeleteVm => ArmKind::Delete,
        }
    }

    /// The policy's name as `x-ms-ratelimit-remaining-resource` spells it after
    /// `Microsoft.Compute/` (without the window suffix).
    #[must_use]
    pub const fn policy_name(self) -> &'static str {
        match self {
            Self::LowCostGet => "LowCostGet",
            Self::HighCostGet => "HighCostGet",
            Self::GetOperation => "GetOperation",
            Self::PutVm => "PutVM",
            Self::UpdateVm => "UpdateVM",
            Self::DeleteVm => "DeleteVM",
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
