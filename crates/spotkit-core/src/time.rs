//! Wall-clock time as a plain value.
//!
//! The agent's deadlines come from `NotBefore`, a UTC wall-clock time chosen by Azure, so the agent
//! core reasons in wall-clock milliseconds. The runner reads the clock once per step and passes it in.

use std::fmt;
use std::time::Duration;

/// A UTC instant with millisecond resolution, counted from the Unix epoch.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    unix_millis: i64,
}

impl Timestamp {
    /// The instant `unix_millis` milliseconds after 1970-01-01T00:00:00Z.
    #[must_use]
    pub const fn from_unix_millis(unix_millis: i64) -> Self {
        Self { unix_millis }
    }

    /// Whole seconds after the epoch.
    #[must_use]
    pub const fn from_unix_secs(unix_secs: i64) -> Self {
        Self {
            unix_millis: unix_secs.saturating_mul(1000),
        }
    }

    /// Milliseconds after the epoch.
    #[must_use]
    pub const fn unix_millis(self) -> i64 {
        self.unix_millis
    }

    /// `self + d`, saturating at the far future.
    #[must_use]
    pub fn plus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self {
            unix_millis: self.unix_millis.saturating_add(ms),
        }
    }

    /// `self - d`, saturating at the far past.
    #[must_use]
    pub fn minus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self {
            unix_millis: self.unix_millis.saturating_sub(ms),
        }
    }

    /// How long after `earlier` this instant is; zero if it is not after it.
    #[must_use]
    pub fn since(self, earlier: Timestamp) -> Duration {
        let diff = self.unix_millis.saturating_sub(earlier.unix_millis);
        Duration::from_millis(u64::try_from(diff).unwrap_or(0))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{}ms", self.unix_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = Timestamp::from_unix_millis(i64::MAX - 5);
        assert_eq!(t.plus(Duration::from_secs(1)).unix_millis(), i64::MAX);
        let t = Timestamp::from_unix_millis(1_000);
        assert_eq!(t.since(Timestamp::from_unix_millis(4_000)), Duration::ZERO);
        assert_eq!(
            Timestamp::from_unix_millis(4_500).since(t),
            Duration::from_millis(3_500)
        );
        assert_eq!(t.minus(Duration::from_millis(400)).unix_millis(), 600);
    }
}
