//! `agent-alerts`, keyed by `dedup_key`: what the alert-manager decided. A firing alert
//! and the resolve that clears it share the `dedup_key` (PagerDuty's, too), so that a
//! destination that gets one twice keeps one incident.

use crate::validate::{Id, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One alert decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentAlert {
    /// Unique id: a UUID v5 of `dedup_key` and `action`.
    pub event_id: Id,
    /// The trace id of the event that fired or cleared the alert.
    pub correlation_id: Id,
    /// `agentbus/<rule>/<subject>/<episode start, ms>` (at most 255 characters; a long
    /// subject is hashed).
    pub dedup_key: String,
    /// The rule's name in the rules file.
    pub rule: String,
    /// What the rule watches.
    pub kind: AlertKind,
    /// `trigger` or `resolve`.
    pub action: AlertAction,
    /// PagerDuty's severities.
    pub severity: Severity,
    /// What the alert is about: a fingerprint or error signature, an agent, an artifact.
    pub subject: String,
    /// One line for a pager or a chat message.
    pub summary: String,
    /// The agent, when the subject names one.
    pub agent_name: Option<String>,
    /// Events that counted towards the alert in its window.
    pub occurrences: u64,
    /// The rule's window, in seconds.
    pub window_seconds: u64,
    /// The first event of the episode.
    pub first_seen: Timestamp,
    /// The latest event of the episode.
    pub last_seen: Timestamp,
    /// The facts: the last event's fields that matter, the threshold, what was
    /// suppressed.
    pub details: serde_json::Value,
    /// Event time of the decision.
    pub timestamp: Timestamp,
}

/// The rule kinds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// More than a threshold of failures of one fingerprint or signature in a window.
    RepeatedFailure,
    /// A transformation with `success = false`.
    FailedTransformation,
    /// A `quality_score` below a threshold.
    LowQuality,
    /// How many alerts a rule's cool-down or the global rate limit held back.
    Suppressed,
}

impl AlertKind {
    /// The name in rules files and keys.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::RepeatedFailure => "repeated_failure",
            AlertKind::FailedTransformation => "failed_transformation",
            AlertKind::LowQuality => "low_quality",
            AlertKind::Suppressed => "suppressed",
        }
    }
}

/// Whether an alert opens or closes an incident (PagerDuty's `event_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertAction {
    /// The condition holds.
    Trigger,
    /// The condition cleared for a whole window.
    Resolve,
}

impl AlertAction {
    /// `trigger` or `resolve`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertAction::Trigger => "trigger",
            AlertAction::Resolve => "resolve",
        }
    }
}

/// PagerDuty's `payload.severity` values.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Info,
    /// Needs a look.
    Warning,
    /// Something is broken.
    Error,
    /// Page someone now.
    Critical,
}

impl Severity {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "info" => Ok(Severity::Info),
            "warning" => Ok(Severity::Warning),
            "error" => Ok(Severity::Error),
            "critical" => Ok(Severity::Critical),
            other => Err(format!(
                "{other:?} is not one of critical, error, warning, info"
            )),
        }
    }
}

impl crate::Event for AgentAlert {
    const TOPIC: crate::Topic = crate::Topic::AgentAlerts;

    fn event_id(&self) -> &str {
        self.event_id.as_str()
    }

    fn partition_key(&self) -> &str {
        &self.dedup_key
    }

    fn validate(&self) -> Result<(), crate::ValidationError> {
        self.event_id.check("event_id")?;
        self.correlation_id.check("correlation_id")?;
        crate::validate::non_empty(&self.dedup_key, "dedup_key")?;
        if self.dedup_key.len() > 255 {
            return Err(crate::ValidationError::OutOfRange {
                field: "dedup_key".into(),
                value: self.dedup_key.len() as f64,
                range: "1..=255 characters",
            });
        }
        crate::validate::non_empty(&self.rule, "rule")?;
        self.first_seen.check("first_seen")?;
        self.last_seen.check("last_seen")?;
        self.timestamp.check("timestamp")
    }
}
