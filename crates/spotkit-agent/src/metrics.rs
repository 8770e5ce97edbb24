//! Prometheus metrics for `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TypeLabel {
    pub r#type: String,
}

/// The agent's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub(crate) polls: Counter,
    pub(crate) poll_errors: Family<KindLabel, Counter>,
    pub(crate) events_seen: Family<TypeLabel, Counter>,
    pub(crate) approvals: Family<KindLabel, Counter>,
    pub(crate) shutdown_seconds: Histogram,
    pub(crate) workload_killed: Counter,
    pub(crate) ready: Gauge,
    pub(crate) incarnation: Gauge,
}

impl Metrics {
    /// Fresh metrics under the `spotkit_agent` prefix.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("spotkit_agent");
        let polls = Counter::default();
        let poll_errors = Family::<KindLabel, Counter>::default();
        let events_seen = Family::<TypeLabel, Counter>::default();
        let approvals = Family::<KindLabel, Counter>::default();
        let shutdown_seconds =
            Histogram::new([0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0]);
        let workload_killed = Counter::default();
        let ready = Gauge::default();
        let incarnation = Gauge::default();
        registry.register("polls", "Scheduled Events polls answered", polls.clone());
        registry.register(
            "poll_errors",
            "Scheduled Events polls failed, by kind",
            poll_errors.clone(),
        );
        registry.register(
            "events_seen",
            "Scheduled events concerning this VM, by type",
            events_seen.clone(),
        );
        registry.register(
            "approvals",
            "Event approvals (StartRequests), by result",
            approvals.clone(),
        );
        registry.register(
            "shutdown_duration_seconds",
            "Time from drain start to workload down",
            shutdown_seconds.clone(),
        );
        registry.register(
            "workload_killed",
            "Workloads killed at the drain deadline",
            workload_killed.clone(),
        );
        registry.register(
            "ready",
            "1 once the warmup gate passed and no drain has begun",
            ready.clone(),
        );
        registry.register(
            "document_incarnation",
            "Last DocumentIncarnation seen",
            incarnation.clone(),
        );
        Self {
            registry,
            polls,
            poll_errors,
            events_seen,
            approvals,
            shutdown_seconds,
            workload_killed,
            ready,
            incarnation,
        }
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
