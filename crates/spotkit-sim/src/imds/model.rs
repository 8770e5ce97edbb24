//! The pure IMDS model: events, approvals, faults and counters, with time passed in.
//!
//! Nothing here reads a clock or does I/O; every operation that depends on time takes `now`.
//! Transitions are evaluated lazily: each operation first replays every transition due at or
//! before `now`, in time order, so the document is the same whether it is read every
//! millisecond or once an hour.
//!
//! Lifecycle of an event:
//! - created `Scheduled` with `NotBefore = now + notice` (rounded up to a whole second, the
//!   resolution of `NotBefore`), or created `Started` at once when there is no notice;
//! - `Scheduled` → `Started` at `NotBefore`, on approval, or on an admin force-start;
//! - `Started` → gone `started_for` after it started;
//! - an admin cancel removes a `Scheduled` event.
//!
//! `DocumentIncarnation` starts at 1 and grows by exactly 1 for every change of the event list:
//! an event added, events changing status (all transitions due at the same instant count as one
//! change), events removed, and every accepted operation that changed something. Reads,
//! approvals of already started events and settings changes never move it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use spotkit_core::Timestamp;

use super::document::{DocumentSettings, EventView, EventsSnapshot};
use super::faults::{Fault, FaultKind, FaultQueue};
use super::ids::{EventId, EventIdGenerator};
use super::stats::{RequestStats, StatsRecorder};

/// Who this emulator pretends to be: the instance metadata of one VM, plus the id seed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImdsConfig {
    /// `compute.name`: the VM name that default event `Resources` contain.
    pub vm_name: String,
    /// `compute.location`, e.g. `eastus`.
    pub location: String,
    /// `compute.vmSize`, e.g. `Standard_D2s_v5`.
    pub vm_size: String,
    /// `compute.vmId` (a GUID).
    pub vm_id: String,
    /// `compute.resourceGroupName`.
    pub resource_group_name: String,
    /// `compute.subscriptionId`.
    pub subscription_id: String,
    /// `compute.priority`: `Spot`, `Regular` or `Low`.
    pub priority: String,
    /// `compute.evictionPolicy`: `Delete` or `Deallocate` (`""` for Regular VMs).
    pub eviction_policy: String,
    /// `compute.osType`, e.g. `Linux`.
    pub os_type: String,
    /// Seed of the `EventId` stream: equal seeds give equal ids in equal order.
    pub seed: u64,
}

impl ImdsConfig {
    /// A Linux Spot VM named `vm_name` with evictionPolicy `Delete` and plausible other fields.
    #[must_use]
    pub fn spot_vm(vm_name: impl Into<String>) -> Self {
        Self {
            vm_name: vm_name.into(),
            location: "eastus".to_owned(),
            vm_size: "Standard_D2s_v5".to_owned(),
            vm_id: "02aab8a4-74ef-476e-8182-f6d2ba4166a6".to_owned(),
            resource_group_name: "spotkit-sim".to_owned(),
            subscription_id: "8d10da13-8125-4ba9-a717-bf7490507b3d".to_owned(),
            priority: "Spot".to_owned(),
            eviction_policy: "Delete".to_owned(),
            os_type: "Linux".to_owned(),
            seed: 0,
        }
    }

    /// `compute.resourceId`, the ARM id of the VM.
    #[must_use]
    pub fn resource_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/{}",
            self.subscription_id, self.resource_group_name, self.vm_name
        )
    }
}

impl Default for ImdsConfig {
    fn default() -> Self {
        Self::spot_vm("spotkit-sim-vm")
    }
}

/// `EventType`. Unknown names are kept as given so clients can be tested against types they do
/// not know (e.g. `Hibernate`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum EventType {
    /// A seconds-long pause (live migration).
    Freeze,
    /// A reboot.
    Reboot,
    /// A move to another host.
    Redeploy,
    /// Spot eviction.
    Preempt,
    /// Deletion of a scale-set VM.
    Terminate,
    /// Anything else, written as given.
    Other(String),
}

impl EventType {
    /// The name written in `EventType`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            EventType::Freeze => "Freeze",
            EventType::Reboot => "Reboot",
            EventType::Redeploy => "Redeploy",
            EventType::Preempt => "Preempt",
            EventType::Terminate => "Terminate",
            EventType::Other(name) => name,
        }
    }

    /// Reads a type name; the five documented names are matched without regard to case.
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        [
            EventType::Freeze,
            EventType::Reboot,
            EventType::Redeploy,
            EventType::Preempt,
            EventType::Terminate,
        ]
        .into_iter()
        .find(|known| known.as_str().eq_ignore_ascii_case(name))
        .unwrap_or_else(|| EventType::Other(name.to_owned()))
    }

    /// The description used when a request gives none.
    #[must_use]
    pub fn default_description(&self) -> &'static str {
        match self {
            EventType::Freeze => {
                "Virtual machine is being paused because of a memory-preserving Live Migration operation."
            }
            EventType::Reboot => "Virtual machine is going to be restarted.",
            EventType::Redeploy => "Virtual machine is going to be redeployed to another host.",
            EventType::Preempt => {
                "The Spot Virtual Machine is being evicted (ephemeral disks are lost)."
            }
            EventType::Terminate => "Virtual machine is being deleted from its scale set.",
            EventType::Other(_) => "",
        }
    }
}

impl From<String> for EventType {
    fn from(name: String) -> Self {
        EventType::from_name(&name)
    }
}

impl From<EventType> for String {
    fn from(event_type: EventType) -> Self {
        event_type.as_str().to_owned()
    }
}

/// `EventStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventStatus {
    /// Announced, not yet begun; `NotBefore` is set.
    Scheduled,
    /// Begun (approved or past `NotBefore`); `NotBefore` is `""`.
    Started,
}

impl EventStatus {
    /// The name written in `EventStatus`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Scheduled => "Scheduled",
            EventStatus::Started => "Started",
        }
    }
}

/// `EventSource`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventSource {
    /// Initiated by Azure (the default; Spot evictions are).
    #[default]
    Platform,
    /// Initiated by the VM's owner (e.g. a restart from the portal).
    User,
}

impl EventSource {
    /// The name written in `EventSource`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Platform => "Platform",
            EventSource::User => "User",
        }
    }
}

/// A request to create an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleRequest {
    /// `EventType`.
    pub event_type: EventType,
    /// `Resources`; `None` = just this VM.
    pub resources: Option<Vec<String>>,
    /// Time from now until `NotBefore`; `None` or zero = created already `Started`.
    pub notice: Option<Duration>,
    /// `Description`; `None` = [`EventType::default_description`].
    pub description: Option<String>,
    /// `EventSource`.
    pub event_source: EventSource,
    /// `DurationInSeconds`; -1 = unknown.
    pub duration_seconds: i64,
    /// How long the event stays `Started` before it disappears; `None` = [`default_started_for`].
    pub started_for: Option<Duration>,
}

impl ScheduleRequest {
    /// An event of this type for this VM, started at once, with every other field defaulted.
    #[must_use]
    pub fn new(event_type: EventType) -> Self {
        Self {
            event_type,
            resources: None,
            notice: None,
            description: None,
            event_source: EventSource::Platform,
            duration_seconds: -1,
            started_for: None,
        }
    }

    /// A Spot eviction of this VM with `notice` until `NotBefore` (Azure gives at least 30 s).
    #[must_use]
    pub fn preempt(notice: Duration) -> Self {
        Self::new(EventType::Preempt).with_notice(notice)
    }

    /// Sets the time until `NotBefore`.
    #[must_use]
    pub fn with_notice(mut self, notice: Duration) -> Self {
        self.notice = Some(notice);
        self
    }

    /// Sets `Resources`.
    #[must_use]
    pub fn with_resources(mut self, resources: Vec<String>) -> Self {
        self.resources = Some(resources);
        self
    }

    /// Sets `Description`.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets `EventSource`.
    #[must_use]
    pub fn with_event_source(mut self, event_source: EventSource) -> Self {
        self.event_source = event_source;
        self
    }

    /// Sets `DurationInSeconds`.
    #[must_use]
    pub fn with_duration_seconds(mut self, duration_seconds: i64) -> Self {
        self.duration_seconds = duration_seconds;
        self
    }

    /// Sets how long the event stays `Started`.
    #[must_use]
    pub fn with_started_for(mut self, started_for: Duration) -> Self {
        self.started_for = Some(started_for);
        self
    }

    /// The `NotBefore` an event created at `now` gets: `now + notice` rounded up to a whole
    /// second (the document cannot show less, and rounding up never shortens the notice), or
    /// `None` when it starts at once.
    #[must_use]
    pub fn not_before(&self, now: Timestamp) -> Option<Timestamp> {
        let notice = self.notice.filter(|notice| !notice.is_zero())?;
        let exact = now.plus(notice).unix_millis();
        let whole_second = exact.div_euclid(1000) + i64::from(exact.rem_euclid(1000) != 0);
        Some(Timestamp::from_unix_secs(whole_second))
    }
}

/// How long an event stays `Started` when the request does not say: its `DurationInSeconds`
/// when that is positive, else 5 s for Freeze, 15 s for Preempt and Terminate (the VM is gone
/// soon after) and 30 s for anything else.
#[must_use]
pub fn default_started_for(event_type: &EventType, duration_seconds: i64) -> Duration {
    if let Ok(seconds) = u64::try_from(duration_seconds)
        && seconds > 0
    {
        return Duration::from_secs(seconds);
    }
    match event_type {
        EventType::Freeze => Duration::from_secs(5),
        EventType::Preempt | EventType::Terminate => Duration::from_secs(15),
        _ => Duration::from_secs(30),
    }
}

/// Why an approval (`POST /metadata/scheduledevents`) was refused; the HTTP facade answers 400.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    /// The body is not JSON.
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    /// The body has no `StartRequests` array.
    #[error("the body has no `StartRequests` array")]
    NoStartRequests,
    /// `StartRequests` is empty, so there is nothing to approve.
    #[error("`StartRequests` is empty")]
    EmptyStartRequests,
    /// An entry of `StartRequests` has no string `EventId`.
    #[error("`StartRequests[{index}]` has no string `EventId`")]
    MissingEventId {
        /// Position of the entry in `StartRequests`.
        index: usize,
    },
    /// An `EventId` names no current event (never existed, or already gone).
    #[error("no current event has `EventId` {0}")]
    UnknownEventId(String),
}

/// Why an admin operation on one event was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// No current event has this id.
    #[error("no current event has id {0}")]
    NotFound(String),
    /// Only `Scheduled` events can be cancelled; a `Started` one is under way.
    #[error("event {0} has already started and cannot be cancelled")]
    AlreadyStarted(String),
}

/// One `POST /metadata/scheduledevents` (or direct [`ImdsModel::approve`] call), as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRecord {
    /// The `EventId`s the body named, as sent (empty when the body could not be read).
    pub event_ids: Vec<String>,
    /// When it arrived.
    pub at: Timestamp,
    /// The raw body (lossy UTF-8).
    pub body: String,
    /// Whether it was accepted (HTTP 200).
    pub accepted: bool,
    /// Why it was refused, if it was.
    pub error: Option<String>,
}

/// Which `/metadata` route a request was for, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataRequest {
    /// `GET /metadata/scheduledevents`.
    ScheduledEventsGet,
    /// `POST /metadata/scheduledevents`.
    ScheduledEventsPost,
    /// `GET /metadata/instance`.
    InstanceGet,
    /// Any other `/metadata` path or method.
    Other,
}

/// How the facade must answer a `GET /metadata/scheduledevents`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduledEventsReply {
    /// 200 with this JSON document.
    Document(String),
    /// This status with this JSON error body (injected fault).
    Status {
        /// HTTP status code.
        status: u16,
        /// JSON error body.
        body: String,
    },
    /// 200 with this non-JSON body (injected fault).
    Garbage(String),
    /// 200 with this cut-off JSON document (injected fault).
    Truncated(String),
    /// Wait this long, then answer with [`ImdsModel::document_json`] at the later time.
    Delayed(Duration),
}

/// The body of a `garbage` fault: what a confused proxy or captive portal might send.
pub const GARBAGE_BODY: &str = "<html><body><h1>502 Bad Gateway</h1></body></html>";

/// The IMDS state of one VM. See the module docs for the event lifecycle.
#[derive(Clone, Debug)]
pub struct ImdsModel {
    config: ImdsConfig,
    incarnation: u64,
    events: Vec<EventRecord>,
    ids: EventIdGenerator,
    approvals: Vec<ApprovalRecord>,
    faults: FaultQueue,
    stats: StatsRecorder,
    settings: DocumentSettings,
}

#[derive(Clone, Debug)]
struct EventRecord {
    id: EventId,
    event_type: EventType,
    resources: Vec<String>,
    description: String,
    event_source: EventSource,
    duration_seconds: i64,
    started_for: Duration,
    phase: Phase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Scheduled { not_before: Timestamp },
    Started { at: Timestamp },
}

impl EventRecord {
    /// When this event next changes by itself: starts at `NotBefore`, or disappears.
    fn next_transition_at(&self) -> Timestamp {
        match self.phase {
            Phase::Scheduled { not_before } => not_before,
            Phase::Started { at } => at.plus(self.started_for),
        }
    }

    fn view(&self) -> EventView {
        let (status, not_before) = match self.phase {
            Phase::Scheduled { not_before } => (EventStatus::Scheduled, Some(not_before)),
            Phase::Started { .. } => (EventStatus::Started, None),
        };
        EventView {
            id: self.id.clone(),
            event_type: self.event_type.clone(),
            status,
            resources: self.resources.clone(),
            not_before,
            description: self.description.clone(),
            event_source: self.event_source,
            duration_seconds: self.duration_seconds,
        }
    }
}

impl ImdsModel {
    /// An empty document (incarnation 1) for the VM described by `config`.
    #[must_use]
    pub fn new(config: ImdsConfig) -> Self {
        Self {
            ids: EventIdGenerator::new(config.seed),
            config,
            incarnation: 1,
            events: Vec::new(),
            approvals: Vec::new(),
            faults: FaultQueue::default(),
            stats: StatsRecorder::default(),
            settings: DocumentSettings::default(),
        }
    }

    /// Who this VM is.
    #[must_use]
    pub fn config(&self) -> &ImdsConfig {
        &self.config
    }

    /// Creates an event (one change of the document) and returns its id.
    pub fn schedule(&mut self, request: ScheduleRequest, now: Timestamp) -> EventId {
        self.advance(now);
        let id = self.ids.next_id();
        let phase = match request.not_before(now) {
            Some(not_before) => Phase::Scheduled { not_before },
            None => Phase::Started { at: now },
        };
        let started_for = request
            .started_for
            .unwrap_or_else(|| default_started_for(&request.event_type, request.duration_seconds));
        self.events.push(EventRecord {
            id: id.clone(),
            description: request
                .description
                .unwrap_or_else(|| request.event_type.default_description().to_owned()),
            event_type: request.event_type,
            resources: request
                .resources
                .unwrap_or_else(|| vec![self.config.vm_name.clone()]),
            event_source: request.event_source,
            duration_seconds: request.duration_seconds,
            started_for,
            phase,
        });
        self.incarnation += 1;
        id
    }

    /// Handles an approval body `{"StartRequests":[{"EventId":"..."}]}` and logs it either way.
    ///
    /// Every named event must exist (ids compared without regard to case); then the `Scheduled`
    /// ones start now, keeping their ids. Approving an already `Started` event is accepted and
    /// changes nothing. Returns the ids of the events the body named.
    ///
    /// # Errors
    /// A malformed body or an unknown `EventId`; nothing changes then.
    pub fn approve(&mut self, body: &[u8], now: Timestamp) -> Result<Vec<EventId>, ApprovalError> {
        self.advance(now);
        let (sent_ids, outcome) = match parse_start_requests(body) {
            Ok(sent_ids) => {
                let outcome = self.start_all(&sent_ids, now);
                (sent_ids, outcome)
            }
            Err(error) => (Vec::new(), Err(error)),
        };
        self.approvals.push(ApprovalRecord {
            event_ids: sent_ids,
            at: now,
            body: String::from_utf8_lossy(body).into_owned(),
            accepted: outcome.is_ok(),
            error: outcome.as_ref().err().map(ToString::to_string),
        });
        outcome
    }

    /// Starts every event in `sent_ids` if all of them exist; one document change at most.
    fn start_all(
        &mut self,
        sent_ids: &[String],
        now: Timestamp,
    ) -> Result<Vec<EventId>, ApprovalError> {
        let positions = sent_ids
            .iter()
            .map(|sent| {
                self.position(sent)
                    .ok_or_else(|| ApprovalError::UnknownEventId(sent.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut changed = false;
        for &position in &positions {
            let event = &mut self.events[position];
            if matches!(event.phase, Phase::Scheduled { .. }) {
                event.phase = Phase::Started { at: now };
                changed = true;
            }
        }
        if changed {
            self.incarnation += 1;
        }
        Ok(positions
            .into_iter()
            .map(|position| self.events[position].id.clone())
            .collect())
    }

    /// Removes a `Scheduled` event, as when Azure cancels a planned operation.
    ///
    /// # Errors
    /// The event does not exist (any more), or has already started.
    pub fn cancel(&mut self, id: &str, now: Timestamp) -> Result<(), EventError> {
        self.advance(now);
        let position = self
            .position(id)
            .ok_or_else(|| EventError::NotFound(id.to_owned()))?;
        if matches!(self.events[position].phase, Phase::Started { .. }) {
            return Err(EventError::AlreadyStarted(id.to_owned()));
        }
        self.events.remove(position);
        self.incarnation += 1;
        Ok(())
    }

    /// Starts an event now, as if its `NotBefore` had come (no approval is logged). Starting a
    /// `Started` event changes nothing.
    ///
    /// # Errors
    /// The event does not exist (any more).
    pub fn force_start(&mut self, id: &str, now: Timestamp) -> Result<(), EventError> {
        self.advance(now);
        let position = self
            .position(id)
            .ok_or_else(|| EventError::NotFound(id.to_owned()))?;
        let event = &mut self.events[position];
        if matches!(event.phase, Phase::Scheduled { .. }) {
            event.phase = Phase::Started { at: now };
            self.incarnation += 1;
        }
        Ok(())
    }

    /// The document as the VM sees it at `now`.
    pub fn snapshot(&mut self, now: Timestamp) -> EventsSnapshot {
        self.advance(now);
        EventsSnapshot {
            incarnation: self.incarnation,
            events: self.events.iter().map(EventRecord::view).collect(),
        }
    }

    /// The document's JSON at `now`, shaped by the current [`DocumentSettings`].
    pub fn document_json(&mut self, now: Timestamp) -> String {
        let settings = self.settings;
        self.snapshot(now).to_json(settings)
    }

    /// The earliest instant after which the document will change by itself (an event starting
    /// or disappearing), if any; a simulator can sleep until then.
    #[must_use]
    pub fn next_change_at(&self) -> Option<Timestamp> {
        self.events
            .iter()
            .map(EventRecord::next_transition_at)
            .min()
    }

    /// Current document settings.
    #[must_use]
    pub fn settings(&self) -> DocumentSettings {
        self.settings
    }

    /// Replaces the document settings (the incarnation does not change: the events did not).
    pub fn set_settings(&mut self, settings: DocumentSettings) {
        self.settings = settings;
    }

    /// Queues a fault behind those already pending.
    pub fn push_fault(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    /// Drops every pending fault.
    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// Pending faults, the one that fires next first.
    #[must_use]
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.faults.pending()
    }

    /// Every approval received, oldest first.
    #[must_use]
    pub fn approvals(&self) -> &[ApprovalRecord] {
        &self.approvals
    }

    /// A copy of the request counters.
    #[must_use]
    pub fn stats(&self) -> RequestStats {
        self.stats.snapshot()
    }

    /// Zeroes the request counters (not the approvals log).
    pub fn reset_stats(&mut self) {
        self.stats = StatsRecorder::default();
    }

    /// A `GET /metadata/scheduledevents` that passed the header checks arrived at `now`: counts
    /// it, then answers with the next pending fault or the document.
    pub fn get_scheduled_events(&mut self, now: Timestamp) -> ScheduledEventsReply {
        self.stats.scheduled_events_get(now);
        let Some(fault) = self.faults.take() else {
            return ScheduledEventsReply::Document(self.document_json(now));
        };
        self.stats.faulted();
        match fault {
            FaultKind::Status(status) => ScheduledEventsReply::Status {
                status,
                body: serde_json::json!({ "error": status_reason(status) }).to_string(),
            },
            FaultKind::Garbage => ScheduledEventsReply::Garbage(GARBAGE_BODY.to_owned()),
            FaultKind::Truncated => {
                ScheduledEventsReply::Truncated(truncate_document(&self.document_json(now)))
            }
            FaultKind::Slow(delay) => ScheduledEventsReply::Delayed(delay),
        }
    }

    /// A `POST /metadata/scheduledevents` that passed header checks: counts it and approves.
    ///
    /// # Errors
    /// As [`ImdsModel::approve`].
    pub fn post_scheduled_events(
        &mut self,
        body: &[u8],
        now: Timestamp,
    ) -> Result<Vec<EventId>, ApprovalError> {
        self.stats.scheduled_events_post();
        self.approve(body, now)
    }

    /// A `GET /metadata/instance` that passed header checks: counts it and returns the document.
    pub fn get_instance(&mut self) -> Value {
        self.stats.instance_get();
        self.instance_metadata()
    }

    /// A `/metadata` request refused with 400 for its headers or query arrived at `now`: it
    /// counts as a request of its kind (a client's request rate includes its mistakes) and as a
    /// rejection, and has no other effect.
    pub fn record_rejected(&mut self, request: MetadataRequest, now: Timestamp) {
        match request {
            MetadataRequest::ScheduledEventsGet => self.stats.scheduled_events_get(now),
            MetadataRequest::ScheduledEventsPost => self.stats.scheduled_events_post(),
            MetadataRequest::InstanceGet => self.stats.instance_get(),
            MetadataRequest::Other => {}
        }
        self.stats.rejected();
    }

    /// The instance metadata document: `compute` from the config, a minimal one-NIC `network`.
    #[must_use]
    pub fn instance_metadata(&self) -> Value {
        let config = &self.config;
        serde_json::json!({
            "compute": {
                "azEnvironment": "AzurePublicCloud",
                "evictionPolicy": config.eviction_policy,
                "location": config.location,
                "name": config.vm_name,
                "osProfile": { "computerName": config.vm_name },
                "osType": config.os_type,
                "priority": config.priority,
                "resourceGroupName": config.resource_group_name,
                "resourceId": config.resource_id(),
                "subscriptionId": config.subscription_id,
                "tagsList": [],
                "vmId": config.vm_id,
                "vmScaleSetName": "",
                "vmSize": config.vm_size,
                "zone": "",
            },
            "network": {
                "interface": [{
                    "ipv4": {
                        "ipAddress": [{ "privateIpAddress": "10.0.0.4", "publicIpAddress": "" }],
                        "subnet": [{ "address": "10.0.0.0", "prefix": "24" }],
                    },
                    "ipv6": { "ipAddress": [] },
                    "macAddress": "000D3AF806EC",
                }],
            },
        })
    }

    /// Index of the current event with this id (compared without regard to case).
    fn position(&self, id: &str) -> Option<usize> {
        self.events.iter().position(|event| event.id.matches(id))
    }

    /// Replays every transition due at or before `now`, earliest first. Transitions due at the
    /// same instant form one change of the document.
    fn advance(&mut self, now: Timestamp) {
        while let Some(due) = self.next_change_at().filter(|due| *due <= now) {
            // Each event makes at most one transition per instant, so an event that starts and
            // has `started_for == 0` disappears in the following round, as a separate change.
            self.events.retain_mut(|event| {
                if event.next_transition_at() != due {
                    return true;
                }
                match event.phase {
                    Phase::Scheduled { .. } => {
                        event.phase = Phase::Started { at: due };
                        true
                    }
                    Phase::Started { .. } => false,
                }
            });
            self.incarnation += 1;
        }
    }
}

/// Reads the `EventId`s of an approval body. Keys are matched exactly, as documented.
fn parse_start_requests(body: &[u8]) -> Result<Vec<String>, ApprovalError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| ApprovalError::NotJson(error.to_string()))?;
    let requests = value
        .get("StartRequests")
        .and_then(Value::as_array)
        .ok_or(ApprovalError::NoStartRequests)?;
    if requests.is_empty() {
        return Err(ApprovalError::EmptyStartRequests);
    }
    requests
        .iter()
        .enumerate()
        .map(|(index, request)| {
            request
                .get("EventId")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or(ApprovalError::MissingEventId { index })
        })
        .collect()
}

/// A short reason phrase for an injected status, in IMDS's words where they are documented.
fn status_reason(status: u16) -> &'static str {
    match status {
        400 => "Bad request",
        404 => "Not found",
        405 => "Method not allowed",
        410 => "Gone. Retry after some time for a max of 70 seconds",
        429 => "Too many requests",
        500 => "Internal server error",
        502 => "Bad gateway",
        503 => "Service unavailable",
        504 => "Gateway timeout",
        _ => "Injected failure",
    }
}

/// The first half of a document: never valid JSON, because the outer object stays open.
fn truncate_document(document: &str) -> String {
    let mut cut = document.len() / 2;
    while !document.is_char_boundary(cut) {
        cut -= 1;
    }
    document[..cut].to_owned()
}

#[cfg(test)]
mod tests;
