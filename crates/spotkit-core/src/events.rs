//! Scheduled Events as the agent core sees them: validated domain values, not wire JSON.
//!
//! The Azure edge (`spotkit-azure::imds`) turns IMDS documents into these types, dropping what it
//! cannot understand (unknown event types, unparseable entries) with a log line instead of failing.

use std::fmt;
use std::time::Duration;

use crate::Timestamp;

/// Azure's `EventId` (a GUID), kept exactly as IMDS sent it so it can be echoed in `StartRequests`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(String);

impl EventId {
    /// Wraps an id as received.
    #[must_use]
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as IMDS sent it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The event types IMDS documents (api-version 2020-07-01).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    /// A seconds-long pause (for example a memory-preserving live migration).
    Freeze,
    /// The VM is about to reboot; memory is lost, disks survive.
    Reboot,
    /// The VM moves to another host; ephemeral disks are lost.
    Redeploy,
    /// A spot VM is being evicted. At best 30 s of notice, best effort.
    Preempt,
    /// A scale-set VM is being deleted.
    Terminate,
}

impl EventType {
    /// All types, for per-type tables (metrics, policy listings).
    pub const ALL: [EventType; 5] = [
        EventType::Freeze,
        EventType::Reboot,
        EventType::Redeploy,
        EventType::Preempt,
        EventType::Terminate,
    ];

    /// The name IMDS uses.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::Freeze => "Freeze",
            EventType::Reboot => "Reboot",
            EventType::Redeploy => "Redeploy",
            EventType::Preempt => "Preempt",
            EventType::Terminate => "Terminate",
        }
    }

    /// Parses IMDS's name, ignoring ASCII case. `None` for types this version does not know.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the platform has begun the operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventStatus {
    /// Announced; will start at `NotBefore` or when approved.
    Scheduled,
    /// Under way (after approval, after `NotBefore`, or at once for a hardware failure).
    Started,
}

/// One scheduled event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledEvent {
    /// Stable across the Scheduled -> Started transition.
    pub id: EventId,
    /// What will happen.
    pub event_type: EventType,
    /// Scheduled or Started.
    pub status: EventStatus,
    /// Names of the VMs affected (`compute.name` values). An event for a placement group lists many.
    pub resources: Vec<String>,
    /// The earliest time the platform will act; `None` once Started (IMDS sends `""`).
    pub not_before: Option<Timestamp>,
    /// Free text from the platform.
    pub description: String,
    /// `Platform` or `User` (api-version 2019-08-01 and later); empty when absent.
    pub source: String,
    /// Expected interruption; `None` when IMDS says `-1` (unknown) or omits it.
    pub duration: Option<Duration>,
}

impl ScheduledEvent {
    /// Whether `vm_name` is among this event's `Resources`. Azure resource names are
    /// case-insensitive, so the comparison is too.
    #[must_use]
    pub fn concerns(&self, vm_name: &str) -> bool {
        self.resources
            .iter()
            .any(|r| r.trim().eq_ignore_ascii_case(vm_name.trim()))
    }
}

/// One Scheduled Events document.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct EventsDocument {
    /// Increases whenever the event list changes.
    pub incarnation: u64,
    /// Events the edge could understand.
    pub events: Vec<ScheduledEvent>,
}
