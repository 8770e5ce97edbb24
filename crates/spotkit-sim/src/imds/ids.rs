//! Deterministic event ids.
//!
//! Azure's `EventId`s are GUIDs (upper case in the documented examples). A seeded simulation must
//! replay identically, so ids come from a seeded SplitMix64 stream, never from the OS.

use std::fmt;

use uuid::Builder;

/// An event's id as it appears in the document: an upper-case hyphenated GUID.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(String);

impl EventId {
    /// Wraps an id string as given (no validation: tests may want odd ids).
    #[must_use]
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as written in the document.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `other` names this event. Azure's GUIDs are case-insensitive, and the documented
    /// approval sample uses lower case while the documents use upper case.
    #[must_use]
    pub fn matches(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0)
    }
}

/// SplitMix64: tiny, fast and fully determined by its seed; plenty for ids that must not collide
/// by accident (this is not a security boundary).
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Hands out GUIDs from a seeded stream: the n-th id is a function of (seed, n) only.
#[derive(Clone, Debug)]
pub(crate) struct EventIdGenerator {
    rng: SplitMix64,
}

impl EventIdGenerator {
    pub(crate) const fn new(seed: u64) -> Self {
        Self {
            rng: SplitMix64::new(seed),
        }
    }

    pub(crate) fn next_id(&mut self) -> EventId {
        let high = u128::from(self.rng.next_u64());
        let low = u128::from(self.rng.next_u64());
        // Stamp the version-4/variant bits so the ids look like the random GUIDs Azure issues.
        let uuid = Builder::from_random_bytes(((high << 64) | low).to_be_bytes()).into_uuid();
        EventId(format!("{:X}", uuid.hyphenated()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_upper_case_v4_guids_and_a_function_of_the_seed() {
        let mut a = EventIdGenerator::new(7);
        let mut b = EventIdGenerator::new(7);
        let mut c = EventIdGenerator::new(8);
        let first = a.next_id();
        assert_eq!(first, b.next_id());
        assert_ne!(first, c.next_id());
        assert_ne!(first, a.next_id());
        let text = first.as_str();
        assert_eq!(text.len(), 36);
        assert_eq!(text, text.to_ascii_uppercase());
        let parsed = uuid::Uuid::parse_str(text).expect("a GUID");
        assert_eq!(parsed.get_version_num(), 4);
    }

    #[test]
    fn matching_ignores_case_only() {
        let id = EventId::new("C7061BAC-AFDC-4513-B24B-AA5F13A16123");
        assert!(id.matches("c7061bac-afdc-4513-b24b-aa5f13a16123"));
        assert!(!id.matches(" C7061BAC-AFDC-4513-B24B-AA5F13A16123"));
        assert!(!id.matches("C7061BAC-AFDC-4513-B24B-AA5F13A16124"));
    }
}
