//! One serde type per topic, with exactly the seeds' fields and nesting, and the
//! [`Event`] trait that ties a type to its topic, partition key and checks.
//!
//! Ids and timestamps keep the text the producer wrote, and optional fields absent from
//! the input stay absent, so an event decodes and encodes back to the same JSON.
//! Unknown fields are rejected (a typo is a decode error naming the field); the free-form
//! objects the seeds mark as flexible (`action_details`, extra keys in `context`-like
//! objects, pattern steps) accept any keys.

mod agent_action;
mod code_quality;
mod failure_pattern;
mod router_metrics;
mod routing_decision;
mod success_pattern;
mod task_execution;
mod transformation;

pub use agent_action::{ActionMetadata, ActionType, AgentAction};
pub use code_quality::{CodeQualityMetric, ComplexityMetrics};
pub use failure_pattern::{FailedStep, FailurePattern, PreventionStrategy, ResolutionStep};
pub use router_metrics::{ConfidenceComponents, RouterPerformanceMetric};
pub use routing_decision::{Alternative, RoutingContext, RoutingDecision};
pub use success_pattern::{
    ApplicabilityCriteria, PatternStep, PatternTemplate, SuccessPattern, ValidationCriteria,
};
pub use task_execution::{TaskExecution, TaskStep};
pub use transformation::{ContextPreserved, TransformationEvent};

use crate::validate::ValidationError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// The eight topics of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// `agent-actions`: every action an agent takes.
    AgentActions,
    /// `agent-routing-decisions`: agent selection decisions.
    AgentRoutingDecisions,
    /// `agent-transformation-events`: polymorphic agent transformations.
    AgentTransformationEvents,
    /// `router-performance-metrics`: router timings and scores.
    RouterPerformanceMetrics,
    /// `task-executions`: complete task executions.
    TaskExecutions,
    /// `code-quality-metrics`: code artifact quality.
    CodeQualityMetrics,
    /// `success-patterns`: successful execution patterns.
    SuccessPatterns,
    /// `failure-patterns`: failures, causes and resolutions.
    FailurePatterns,
    /// `pattern-templates` (derived): the pattern-extractor's templates.
    PatternTemplates,
    /// `fix-suggestions` (derived): the pattern-extractor's fix suggestions.
    FixSuggestions,
    /// `agent-alerts` (derived): the alert-manager's alerts.
    AgentAlerts,
}

impl Topic {
    /// All eight, in the seeds' order.
    pub const ALL: [Topic; 8] = [
        Topic::AgentActions,
        Topic::AgentRoutingDecisions,
        Topic::AgentTransformationEvents,
        Topic::RouterPerformanceMetrics,
        Topic::TaskExecutions,
        Topic::CodeQualityMetrics,
        Topic::SuccessPatterns,
        Topic::FailurePatterns,
    ];

    /// The topics the pattern-extractor and the alert-manager derive from them, which
    /// the db-writer stores too.
    pub const DERIVED: [Topic; 3] = [
        Topic::PatternTemplates,
        Topic::FixSuggestions,
        Topic::AgentAlerts,
    ];

    /// The Kafka topic name.
    pub const fn name(self) -> &'static str {
        match self {
            Topic::AgentActions => "agent-actions",
            Topic::AgentRoutingDecisions => "agent-routing-decisions",
            Topic::AgentTransformationEvents => "agent-transformation-events",
            Topic::RouterPerformanceMetrics => "router-performance-metrics",
            Topic::TaskExecutions => "task-executions",
            Topic::CodeQualityMetrics => "code-quality-metrics",
            Topic::SuccessPatterns => "success-patterns",
            Topic::FailurePatterns => "failure-patterns",
            Topic::PatternTemplates => "pattern-templates",
            Topic::FixSuggestions => "fix-suggestions",
            Topic::AgentAlerts => "agent-alerts",
        }
    }

    /// The `agentbus log` subcommand that publishes to this topic.
    pub const fn command(self) -> &'static str {
        match self {
            Topic::AgentActions => "action",
            Topic::AgentRoutingDecisions => "routing-decision",
            Topic::AgentTransformationEvents => "transformation",
            Topic::RouterPerformanceMetrics => "router-metrics",
            Topic::TaskExecutions => "task-execution",
            Topic::CodeQualityMetrics => "code-quality",
            Topic::SuccessPatterns => "success-pattern",
            Topic::FailurePatterns => "failure-pattern",
            Topic::PatternTemplates => "pattern-template",
            Topic::FixSuggestions => "fix-suggestion",
            Topic::AgentAlerts => "alert",
        }
    }

    /// The event field whose value is the record key (seeds: "Partitioning Key").
    pub const fn key_field(self) -> &'static str {
        match self {
            Topic::TaskExecutions => "fingerprint_id",
            Topic::CodeQualityMetrics => "path_id",
            Topic::SuccessPatterns => "pattern_id",
            Topic::FailurePatterns => "failure_id",
            Topic::PatternTemplates => "pattern_id",
            Topic::FixSuggestions => "signature",
            Topic::AgentAlerts => "dedup_key",
            _ => "correlation_id",
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is neither a topic nor a `log` subcommand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown topic {0:?} (expected one of: {list})", list = Topic::ALL.map(Topic::name).join(", "))]
pub struct UnknownTopic(pub String);

impl FromStr for Topic {
    type Err = UnknownTopic;

    /// Accepts the topic name or the `log` subcommand name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topic::ALL
            .into_iter()
            .chain(Topic::DERIVED)
            .find(|t| t.name() == s || t.command() == s)
            .ok_or_else(|| UnknownTopic(s.to_string()))
    }
}

/// An event type of one topic.
pub trait Event: Serialize + DeserializeOwned + schemars::JsonSchema + Send + Sync {
    /// The topic events of this type go to.
    const TOPIC: Topic;

    /// `event_id`.
    fn event_id(&self) -> &str;

    /// The value of the topic's partition-key field (the record key).
    fn partition_key(&self) -> &str;

    /// Checks the values: ids, ranges, timestamps, required text.
    fn validate(&self) -> Result<(), ValidationError>;
}

/// Why bytes are not a valid event of a topic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The JSON does not have the event's shape: a missing field, a wrong type, an
    /// unknown field or enum value, or not JSON at all.
    #[error("{field}: {message}")]
    Decode {
        /// Path of the field (`$` for the whole event).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The shape is right but a value is not.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

impl EventError {
    /// The path of the offending field.
    pub fn field(&self) -> &str {
        match self {
            Self::Decode { field, .. } => field,
            Self::Invalid(e) => e.field(),
        }
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() || path == "." {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Turns a serde error at `path` into an [`EventError`] that names the field.
fn decode_error(path: String, err: &serde_json::Error) -> EventError {
    if err.is_syntax() || err.is_eof() || err.is_io() {
        return EventError::Decode {
            field: "$".to_string(),
            message: format!("not valid JSON: {err}"),
        };
    }
    let mut message = err.to_string();
    if let Some(i) = message.rfind(" at line ") {
        message.truncate(i);
    }
    // serde reports a missing or unknown field at the parent's path; name the field itself.
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_string)
    };
    if let Some(name) = quoted("missing field `") {
        return EventError::Decode {
            field: join(&path, &name),
            message: "is required".to_string(),
        };
    }
    if let Some(name) = quoted("unknown field `") {
        // Here the path already ends with the unknown field.
        let field = if path == name || path.ends_with(&format!(".{name}")) {
            path
        } else {
            join(&path, &name)
        };
        return EventError::Decode {
            field,
            message: format!("is not a field of this event ({message})"),
        };
    }
    let field = if path.is_empty() || path == "." || path == "?" {
        "$".to_string()
    } else {
        path
    };
    EventError::Decode { field, message }
}

/// Decodes and validates one event from JSON bytes.
pub fn decode<E: Event>(bytes: &[u8]) -> Result<E, EventError> {
    // Most events are fine: decode without path tracking, and pay for it only to
    // name the field of a bad one.
    let event: E = match serde_json::from_slice(bytes) {
        Ok(event) => event,
        Err(_) => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let event: E = serde_path_to_error::deserialize(&mut de)
                .map_err(|e| decode_error(e.path().to_string(), e.inner()))?;
            de.end().map_err(|e| decode_error(String::new(), &e))?;
            event
        }
    };
    event.validate()?;
    Ok(event)
}

/// Decodes and validates one event from a JSON value.
pub fn from_value<E: Event>(value: serde_json::Value) -> Result<E, EventError> {
    let event: E = serde_path_to_error::deserialize(value)
        .map_err(|e| decode_error(e.path().to_string(), e.inner()))?;
    event.validate()?;
    Ok(event)
}

/// An event of any of the eight topics.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum AnyEvent {
    AgentAction(AgentAction),
    RoutingDecision(RoutingDecision),
    Transformation(TransformationEvent),
    RouterMetric(RouterPerformanceMetric),
    TaskExecution(TaskExecution),
    CodeQuality(CodeQualityMetric),
    SuccessPattern(SuccessPattern),
    FailurePattern(FailurePattern),
    PatternTemplate(crate::derived::PatternTemplateEvent),
    FixSuggestion(crate::derived::FixSuggestion),
    Alert(crate::alert::AgentAlert),
}

/// Applies `$body` to the event inside any variant.
macro_rules! each {
    ($self:expr, $e:ident => $body:expr) => {
        match $self {
            AnyEvent::AgentAction($e) => $body,
            AnyEvent::RoutingDecision($e) => $body,
            AnyEvent::Transformation($e) => $body,
            AnyEvent::RouterMetric($e) => $body,
            AnyEvent::TaskExecution($e) => $body,
            AnyEvent::CodeQuality($e) => $body,
            AnyEvent::SuccessPattern($e) => $body,
            AnyEvent::FailurePattern($e) => $body,
            AnyEvent::PatternTemplate($e) => $body,
            AnyEvent::FixSuggestion($e) => $body,
            AnyEvent::Alert($e) => $body,
        }
    };
}

impl AnyEvent {
    /// Decodes and validates JSON bytes as an event of `topic`.
    pub fn decode(topic: Topic, bytes: &[u8]) -> Result<Self, EventError> {
        Ok(match topic {
            Topic::AgentActions => Self::AgentAction(decode(bytes)?),
            Topic::AgentRoutingDecisions => Self::RoutingDecision(decode(bytes)?),
            Topic::AgentTransformationEvents => Self::Transformation(decode(bytes)?),
            Topic::RouterPerformanceMetrics => Self::RouterMetric(decode(bytes)?),
            Topic::TaskExecutions => Self::TaskExecution(decode(bytes)?),
            Topic::CodeQualityMetrics => Self::CodeQuality(decode(bytes)?),
            Topic::SuccessPatterns => Self::SuccessPattern(decode(bytes)?),
            Topic::FailurePatterns => Self::FailurePattern(decode(bytes)?),
            Topic::PatternTemplates => Self::PatternTemplate(decode(bytes)?),
            Topic::FixSuggestions => Self::FixSuggestion(decode(bytes)?),
            Topic::AgentAlerts => Self::Alert(decode(bytes)?),
        })
    }

    /// Decodes and validates a JSON value as an event of `topic`.
    pub fn from_value(topic: Topic, value: serde_json::Value) -> Result<Self, EventError> {
        Ok(match topic {
            Topic::AgentActions => Self::AgentAction(from_value(value)?),
            Topic::AgentRoutingDecisions => Self::RoutingDecision(from_value(value)?),
            Topic::AgentTransformationEvents => Self::Transformation(from_value(value)?),
            Topic::RouterPerformanceMetrics => Self::RouterMetric(from_value(value)?),
            Topic::TaskExecutions => Self::TaskExecution(from_value(value)?),
            Topic::CodeQualityMetrics => Self::CodeQuality(from_value(value)?),
            Topic::SuccessPatterns => Self::SuccessPattern(from_value(value)?),
            Topic::FailurePatterns => Self::FailurePattern(from_value(value)?),
            Topic::PatternTemplates => Self::PatternTemplate(from_value(value)?),
            Topic::FixSuggestions => Self::FixSuggestion(from_value(value)?),
            Topic::AgentAlerts => Self::Alert(from_value(value)?),
        })
    }

    /// The event's topic.
    pub fn topic(&self) -> Topic {
        fn t<E: Event>(_: &E) -> Topic {
            E::TOPIC
        }
        each!(self, e => t(e))
    }

    /// `event_id`.
    pub fn event_id(&self) -> &str {
        each!(self, e => e.event_id())
    }

    /// When the event happened (ms since the epoch), when its timestamp parses.
    pub fn timestamp_millis(&self) -> Option<i64> {
        each!(self, e => e.timestamp.millis())
    }

    /// The record key.
    pub fn partition_key(&self) -> &str {
        each!(self, e => e.partition_key())
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), ValidationError> {
        each!(self, e => e.validate())
    }

    /// The JSON encoding.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        each!(self, e => serde_json::to_vec(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_and_commands_parse() {
        for t in Topic::ALL {
            assert_eq!(t.name().parse::<Topic>(), Ok(t));
            assert_eq!(t.command().parse::<Topic>(), Ok(t));
        }
        let e = "nope".parse::<Topic>().unwrap_err();
        assert!(e.to_string().contains("agent-actions"), "{e}");
    }

    #[test]
    fn decode_errors_name_the_field() {
        let e = decode_error(
            ".".into(),
            &serde_json::from_str::<RoutingDecision>("{}").unwrap_err(),
        );
        assert_eq!(e.field(), "event_id");
        assert_eq!(e.to_string(), "event_id: is required");
    }
}
