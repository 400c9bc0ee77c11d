//! `success-patterns`: a successful way of doing a task, kept for reuse.

use super::{Event, Topic};
use crate::validate::{self, Id, Timestamp, ValidationError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One success pattern (seeds: topic 7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuccessPattern {
    /// Unique id of this event.
    pub event_id: Id,
    /// Trace id.
    pub correlation_id: Id,
    /// The pattern; the partition key.
    pub pattern_id: Id,
    /// Fingerprint of the task it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_id: Option<Id>,
    /// Execution path it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_id: Option<Id>,
    /// Name (e.g. `FastAPI CRUD Endpoint Pattern`).
    pub pattern_name: String,
    /// Kind (e.g. `workflow`).
    pub pattern_type: String,
    /// The reusable template.
    pub pattern_template: PatternTemplate,
    /// When the pattern applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applicability_criteria: Option<ApplicabilityCriteria>,
    /// What a result must meet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_criteria: Option<ValidationCriteria>,
    /// Expected duration, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_duration_ms: Option<u64>,
    /// When it was recorded (RFC 3339).
    pub timestamp: Timestamp,
}

/// Steps and placeholders of a pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatternTemplate {
    /// The steps, in order.
    pub steps: Vec<PatternStep>,
    /// Placeholder names and their types (e.g. `entity_name: string`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholders: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A template step: an action and its action-specific parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PatternStep {
    /// The action (e.g. `rag_query`).
    pub action: String,
    /// Its parameters (e.g. `query`, `template`, `checks`).
    #[serde(flatten)]
    pub params: serde_json::Map<String, serde_json::Value>,
}

/// Where a pattern applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicabilityCriteria {
    /// Task types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_types: Option<Vec<String>>,
    /// Domains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domains: Option<Vec<String>>,
    /// Technologies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub technologies: Option<Vec<String>>,
}

/// Thresholds a result of the pattern must meet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidationCriteria {
    /// Minimum quality score, `0..=1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1))]
    pub min_quality_score: Option<f64>,
    /// Minimum test coverage in percent, `0..=100`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub min_test_coverage: Option<f64>,
}

impl Event for SuccessPattern {
    const TOPIC: Topic = Topic::SuccessPatterns;

    fn event_id(&self) -> &str {
        self.event_id.as_str()
    }

    fn partition_key(&self) -> &str {
        self.pattern_id.as_str()
    }

    fn validate(&self) -> Result<(), ValidationError> {
        self.event_id.check("event_id")?;
        self.correlation_id.check("correlation_id")?;
        self.pattern_id.check("pattern_id")?;
        validate::opt_id(self.fingerprint_id.as_ref(), "fingerprint_id")?;
        validate::opt_id(self.path_id.as_ref(), "path_id")?;
        validate::non_empty(&self.pattern_name, "pattern_name")?;
        validate::non_empty(&self.pattern_type, "pattern_type")?;
        for (i, s) in self.pattern_template.steps.iter().enumerate() {
            validate::non_empty(&s.action, &format!("pattern_template.steps[{i}].action"))?;
        }
        if let Some(v) = &self.validation_criteria {
            validate::opt_score(v.min_quality_score, "validation_criteria.min_quality_score")?;
            if let Some(c) = v.min_test_coverage {
                validate::percent(c, "validation_criteria.min_test_coverage")?;
            }
        }
        self.timestamp.check("timestamp")
    }
}
