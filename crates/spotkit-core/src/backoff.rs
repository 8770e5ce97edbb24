//! Capped exponential backoff with jitter, computed from an explicit random draw.

use std::time::Duration;

/// How retries space out: `base * 2^(attempt-1)`, capped at `max`, with "equal jitter" (half the delay
/// fixed, half random) so a fleet of agents that failed together does not retry in lockstep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry (before jitter).
    pub base: Duration,
    /// Upper bound of any delay.
    pub max: Duration,
}

impl Backoff {
    /// The delay before retry number `attempt` (1-based). `random` is any uniformly drawn `u64`; the
    /// caller supplies it so this stays deterministic under a seeded simulation.
    #[must_use]
    pub fn delay(&self, attempt: u32, random: u64) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let full = self.base.saturating_mul(1u32 << exp).min(self.max);
        let half_ms = u64::try_from(full.as_millis() / 2).unwrap_or(u64::MAX);
        let jitter_ms = if half_ms == 0 {
            0
        } else {
            random % (half_ms + 1)
        };
        Duration::from_millis(half_ms + jitter_ms).min(self.max)
    }
}

/// A tiny deterministic PRNG (SplitMix64) for cores that need jitter. Seeded by the caller.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose whole output is fixed by `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_stay_under_the_cap() {
        let b = Backoff {
            base: Duration::from_millis(200),
            max: Duration::from_secs(4),
        };
        let mut rng = SplitMix64::new(7);
        let mut previous_floor = Duration::ZERO;
        for attempt in 1..=30 {
            let d = b.delay(attempt, rng.next_u64());
            let full = Duration::from_millis(200)
                .saturating_mul(1 << (attempt - 1).min(20))
                .min(b.max);
            assert!(
                d >= full / 2,
                "attempt {attempt}: {d:?} below half of {full:?}"
            );
            assert!(d <= full, "attempt {attempt}: {d:?} above {full:?}");
            assert!(full / 2 >= previous_floor);
            previous_floor = full / 2;
        }
    }

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }
}
