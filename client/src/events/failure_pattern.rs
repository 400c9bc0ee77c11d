//! `failure-patterns`: a failure, its cause and how it was resolved.

use super::{Event, Topic};
use crate::validate::{self, Id, Timestamp, ValidationError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One failure (seeds: topic 8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailurePattern {
    /// Unique id of this event.
    pub event_id: Id,
    /// Trace id.
    pub correlation_id: Id,
    /// The failure; the partition key.
    pub failure_id: Id,
    /// Fingerprint of the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_id: Option<Id>,
    /// Execution path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_id: Option<Id>,
    /// Kind of failure (e.g. `validation_failure`).
    pub failure_type: String,
    /// Error category (e.g. `type_error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_category: Option<String>,
    /// The error message.
    pub error_message: String,
    /// The stack trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_stack_trace: Option<String>,
    /// The step that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<FailedStep>,
    /// The root cause, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<String>,
    /// Contributing factors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contributing_factors: Option<Vec<String>>,
    /// How it was resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// Steps of the resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_steps: Option<Vec<ResolutionStep>>,
    /// Time to resolve, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_resolve_ms: Option<u64>,
    /// How to prevent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prevention_strategy: Option<PreventionStrategy>,
    /// When it happened (RFC 3339).
    pub timestamp: Timestamp,
}

/// The step at which a task failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailedStep {
    /// Position, from 1.
    pub step_number: u32,
    /// What the step did (e.g. `type_check`).
    pub action: String,
    /// The tool (e.g. `mypy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
}

/// One step of a resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolutionStep {
    /// What was done.
    pub action: String,
    /// How long it took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Files changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
}

/// How to prevent a failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreventionStrategy {
    /// The strategy.
    pub strategy: String,
    /// Whether a fix could be applied automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated_fix_possible: Option<bool>,
}

impl Event for FailurePattern {
    const TOPIC: Topic = Topic::FailurePatterns;

    fn event_id(&self) -> &str {
        self.event_id.as_str()
    }

    fn partition_key(&self) -> &str {
        self.failure_id.as_str()
    }

    fn validate(&self) -> Result<(), ValidationError> {
        self.event_id.check("event_id")?;
        self.correlation_id.check("correlation_id")?;
        self.failure_id.check("failure_id")?;
        validate::opt_id(self.fingerprint_id.as_ref(), "fingerprint_id")?;
        validate::opt_id(self.path_id.as_ref(), "path_id")?;
        validate::non_empty(&self.failure_type, "failure_type")?;
        validate::non_empty(&self.error_message, "error_message")?;
        for (i, s) in self.resolution_steps.iter().flatten().enumerate() {
            validate::non_empty(&s.action, &format!("resolution_steps[{i}].action"))?;
        }
        self.timestamp.check("timestamp")
    }
}
