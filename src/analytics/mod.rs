//! What the assistant does, counted: Prometheus metrics for `/metrics`.
//! Per-turn records (intent, confidence, tools, outcome) live with the
//! messages in the database, where the admin API reads them.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TurnLabels {
    pub intent: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

/// One outbox delivery attempt: `open` or `reply`, and `done`, `retry` or `dead`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub kind: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub connections: Gauge,
    pub turns: Family<TurnLabels, Counter>,
    pub escalations: Family<ReasonLabels, Counter>,
    pub frame_errors: Family<CodeLabels, Counter>,
    pub turn_seconds: Histogram,
    pub handoff_deliveries: Family<DeliveryLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("assistant");
        let connections = Gauge::default();
        let turns = Family::<TurnLabels, Counter>::default();
        let escalations = Family::<ReasonLabels, Counter>::default();
        let frame_errors = Family::<CodeLabels, Counter>::default();
        let handoff_deliveries = Family::<DeliveryLabels, Counter>::default();
        let turn_seconds = Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]);
        registry.register("chat_connections", "Open chat WebSocket connections", connections.clone());
        registry.register("turns", "Customer messages answered, by intent and outcome", turns.clone());
        registry.register("escalations", "Handoffs to a person, by reason", escalations.clone());
        registry.register("frame_errors", "Error frames sent to clients, by code", frame_errors.clone());
        registry.register("turn_duration_seconds", "Time from a customer message to its reply", turn_seconds.clone());
        registry.register(
            "handoff_deliveries",
            "Help-desk delivery attempts from the outbox, by job kind and outcome",
            handoff_deliveries.clone(),
        );
        Self { registry, connections, turns, escalations, frame_errors, turn_seconds, handoff_deliveries }
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
