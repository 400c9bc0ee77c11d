//! The alert-manager (`alert-group`): threshold alerts on failures, failed
//! transformations and low quality, produced to `agent-alerts` exactly once, then
//! delivered to PagerDuty, Slack and a webhook at least once (PagerDuty dedups by the
//! alert's `dedup_key`).
//!
//! ```text
//! failure-patterns ─────────────┐  keyed by subject           rules (state in
//! agent-transformation-events ──┤                                alert-group-state)
//! code-quality-metrics ─────────┼─► alert-group-subjects ─────────────────────────► agent-alerts
//! task-executions (scores) ─────┘    (one transaction per batch: subjects, alerts, state, offsets)
//!
//! router: group alert-group; rules: group alert-group-rules (each its own thread)
//! agent-alerts (read_committed) ─► PagerDuty / Slack / webhook ─► commit (group alert-group-delivery)
//!                                     └─ refused (4xx) ─► agent-alerts-dlq
//! ```

pub mod deliver;
pub mod destinations;
pub mod evaluate;
pub mod rules;
mod sink;
mod stats;
pub mod subjects;

pub use deliver::{DeliverySettings, DeliverySink};
pub use rules::{Rule, Rules};
pub use sink::{AlertSettings, AlertSink, TOPIC_HEADER};
pub use stats::AlertStats;

/// The router's consumer group (the seeds'): it reads the watched topics and keys
/// their events by subject.
pub const GROUP: &str = "alert-group";
/// The rules' consumer group: it reads the events keyed by subject and evaluates them.
pub const RULES_GROUP: &str = "alert-group-rules";
/// The delivery loop's consumer group.
pub const DELIVERY_GROUP: &str = "alert-group-delivery";
/// The alerts.
pub const ALERTS: &str = "agent-alerts";
/// The rule state changelog (one partition per partition of [`SUBJECTS`]).
pub const CHANGELOG: &str = "alert-group-state";
/// The events of the three watched topics, keyed by subject.
pub const SUBJECTS: &str = "alert-group-subjects";

/// The topics the router reads for `rules` (a topic no rule watches is not read).
pub fn topics(rules: &Rules) -> Vec<String> {
    use agentbus_client::alert::AlertKind;
    use agentbus_client::Topic;
    let mut out = Vec::new();
    let wants = |kind: AlertKind, scope: Option<rules::Scope>| {
        rules.of(kind).any(|r| scope.is_none_or(|s| r.scope == s))
    };
    for (topic, kind, scope) in [
        (Topic::FailurePatterns, AlertKind::RepeatedFailure, None),
        (
            Topic::AgentTransformationEvents,
            AlertKind::FailedTransformation,
            None,
        ),
        (
            Topic::CodeQualityMetrics,
            AlertKind::LowQuality,
            Some(rules::Scope::Artifact),
        ),
        (
            Topic::TaskExecutions,
            AlertKind::LowQuality,
            Some(rules::Scope::Agent),
        ),
    ] {
        if wants(kind, scope) {
            out.push(topic.name().to_string());
        }
    }
    out
}
