//! A local emulator of Azure's Instance Metadata Service (IMDS): Scheduled Events, instance
//! metadata and fault injection, so the agent can be tested on loopback.
//!
//! Two layers:
//! - [`ImdsModel`]: the pure state of one VM's IMDS. Every time-dependent operation takes
//!   `now: Timestamp`; nothing reads a clock, sleeps or does I/O. A spot-cloud simulator can
//!   hold one per simulated VM and drive it with simulated time.
//! - [`ImdsEmulator`]: a thin axum facade over an `Arc<Mutex<ImdsModel>>` that reads time from
//!   an `Arc<dyn Clock>` and also offers direct in-process calls to the same state.
//!
//! # Expected flow
//! 1. A test builds an emulator ([`ImdsEmulator::new`] with a clock, or [`spawn_on_loopback`]
//!    on the system clock) and points the agent at `http://<addr>`.
//! 2. The agent polls `GET /metadata/scheduledevents?api-version=2020-07-01` with
//!    `Metadata: true` and gets `{"DocumentIncarnation":1,"Events":[]}`.
//! 3. The test schedules an event ([`ImdsEmulator::schedule`] or `POST /admin/events`), e.g. a
//!    `Preempt` with 30 s notice; the next poll shows it `Scheduled` at incarnation 2.
//! 4. The agent approves it with `POST /metadata/scheduledevents` and body
//!    `{"StartRequests":[{"EventId":"..."}]}`, or lets `NotBefore` pass; either way the event
//!    turns `Started` with `NotBefore: ""` (incarnation 3), then disappears after its
//!    `started_for` (incarnation 4).
//! 5. The test inspects [`ImdsEmulator::approvals`] and [`ImdsEmulator::stats`] (or
//!    `GET /admin/approvals`, `GET /admin/stats`).
//!
//! # Guarantees
//! - Documents have exactly the official shape: `DocumentIncarnation`, `Events[]` with
//!   `EventId` (upper-case GUID), `EventStatus`, `EventType`, `ResourceType`
//!   (`VirtualMachine`), `Resources`, `NotBefore` (RFC 1123, `""` once Started),
//!   `Description`, `EventSource`, `DurationInSeconds` (-1 = unknown), in that order.
//! - `DocumentIncarnation` starts at 1 and grows by exactly 1 per change of the event list
//!   (transitions due at the same instant count as one change); reads never move it.
//! - Transitions are replayed lazily from `now`, so what a client sees does not depend on how
//!   often anyone looked.
//! - Event ids depend only on [`ImdsConfig::seed`] and the order of creation: a seeded
//!   simulation replays identically. No OS randomness anywhere.
//! - An approval is all or nothing: one unknown id refuses the whole body (400). Every
//!   approval attempt is logged, accepted or not.
//! - Like IMDS, every `/metadata` request without `Metadata: true`, or with
//!   `X-Forwarded-For`, gets 400; a missing `api-version` gets 400 listing the newest versions.
//!   Faults never replace those checks: only requests that pass them consume a fault.
//! - The model lock is never held across an `.await`.
//!
//! # Admin API (no `Metadata` header needed; JSON bodies, unknown fields refused with 400)
//! | method and path | body / answer |
//! |---|---|
//! | `POST /admin/events` | `{"type":"Preempt","notice_seconds":30,"resources":["vm1"],"description":"...","event_source":"Platform","duration_seconds":-1,"started_for_seconds":15}` (only `type` required) → 201 `{"event_id","event_status","not_before"}` |
//! | `GET /admin/events` | the document as the VM would see it now (not counted, no fault) |
//! | `DELETE /admin/events/{id}` | cancel a Scheduled event → 204; 404 unknown; 409 already Started |
//! | `POST /admin/events/{id}/start` | force Started now → 204; 404 unknown |
//! | `POST /admin/faults` | `{"kind":"status","status":500,"count":3}`, `{"kind":"garbage","count":2}`, `{"kind":"truncated"}`, `{"kind":"slow","delay_ms":3000,"count":1}` → 201 `{"pending_faults":n}`; no `count` = until cleared |
//! | `GET /admin/faults` | pending faults, next first |
//! | `DELETE /admin/faults` | clear all faults → 204 |
//! | `GET /admin/approvals` | `[{"event_ids":[...],"at_unix_ms":...,"body":"<raw>","accepted":true,"error":null}]` |
//! | `GET /admin/stats` | `{"scheduled_events_gets","scheduled_events_posts","instance_gets","rejected_requests","faulted_responses","recent_get_times_unix_ms":[...]}` |
//! | `DELETE /admin/stats` | zero the counters → 204 |
//! | `GET /admin/settings`, `PUT /admin/settings` | `{"numbers_as_strings":true,"extra_fields":true}` (PUT: absent fields unchanged) → the settings |

mod admin;
mod document;
mod faults;
mod http;
mod ids;
mod model;
mod stats;

pub use document::{DocumentSettings, EventView, EventsSnapshot, UNKNOWN_FIELD_NAME, http_date};
pub use faults::{Fault, FaultKind};
pub use http::{
    INSTANCE_API_VERSIONS, ImdsEmulator, SCHEDULED_EVENTS_API_VERSIONS, spawn_on_loopback,
};
pub use ids::EventId;
pub use model::{
    ApprovalError, ApprovalRecord, EventError, EventSource, EventStatus, EventType, GARBAGE_BODY,
    ImdsConfig, ImdsModel, MetadataRequest, ScheduleRequest, ScheduledEventsReply,
    default_started_for,
};
pub use stats::{GET_TIMES_KEPT, RequestStats};
