//! Events of the derived topics: what the pattern-extractor publishes to
//! `pattern-templates` (a success-pattern event with its version and figures) and to
//! `fix-suggestions`.

use crate::events::{ApplicabilityCriteria, PatternTemplate};
use crate::validate::{Id, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `pattern-templates`, keyed by `pattern_id`: a template learned from task executions,
/// in the shape of the seeds' success-pattern event; refined versions keep the
/// `pattern_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatternTemplateEvent {
    /// Unique id of this version (a UUID v5 of `pattern_id` and `version`).
    pub event_id: Id,
    /// The execution that made this version.
    pub correlation_id: Id,
    /// The template (a UUID v5 of the fingerprint and the step actions).
    pub pattern_id: Id,
    /// The task fingerprint it was learned from.
    pub fingerprint_id: Id,
    /// `<task_type>: <action> → <action> …`.
    pub pattern_name: String,
    /// Always `workflow`.
    pub pattern_type: String,
    /// The steps, with `{{entity}}` placeholders where the executions differed.
    pub pattern_template: PatternTemplate,
    /// Task types, domains and languages seen.
    pub applicability_criteria: ApplicabilityCriteria,
    /// The thresholds the template met.
    pub validation_criteria: TemplateCriteria,
    /// Mean `total_duration_ms` of the executions.
    pub estimated_duration_ms: u64,
    /// 1, 2, … per `pattern_id`.
    pub version: u64,
    /// `active`, or `withdrawn` once it no longer meets the thresholds.
    pub status: TemplateStatus,
    /// Executions of the sequence so far.
    pub occurrences: u64,
    /// Share that succeeded (4 decimals).
    #[schemars(range(min = 0, max = 1))]
    pub success_rate: f64,
    /// Mean `quality_score` (4 decimals).
    #[schemars(range(min = 0, max = 1))]
    pub mean_quality_score: f64,
    /// The triggering execution's timestamp.
    pub timestamp: Timestamp,
}

/// Whether a template version is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TemplateStatus {
    /// Meets the thresholds.
    Active,
    /// Met them once, no longer does.
    Withdrawn,
}

/// The thresholds of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateCriteria {
    /// Mean quality needed.
    #[schemars(range(min = 0, max = 1))]
    pub min_quality_score: f64,
    /// Success rate needed.
    #[schemars(range(min = 0, max = 1))]
    pub min_success_rate: f64,
}

/// `fix-suggestions`, keyed by `signature`: for a failure without a resolution, the
/// most frequent resolution of failures that look like it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FixSuggestion {
    /// Unique id (a UUID v5 of the failure event's id).
    pub event_id: Id,
    /// The failure's trace id.
    pub correlation_id: Id,
    /// The failure this suggestion is for.
    pub failure_id: Id,
    /// The failure's task fingerprint.
    pub fingerprint_id: Option<Id>,
    /// The group: `<category>:<64-bit SimHash of the founder, hex>`.
    pub signature: String,
    /// `error_category`, else `failure_type`.
    pub error_category: String,
    /// The failure's message, normalized.
    pub normalized_error: String,
    /// Failures in the group so far.
    pub group_occurrences: u64,
    /// The resolution to try.
    pub suggested_resolution: String,
    /// Its steps, as first recorded.
    pub resolution_steps: serde_json::Value,
    /// Failures it resolved.
    pub resolution_count: u64,
    /// Whether every recording said an automated fix is possible.
    pub automated_fix_possible: bool,
    /// The failure's timestamp.
    pub timestamp: Timestamp,
}

impl crate::Event for PatternTemplateEvent {
    const TOPIC: crate::Topic = crate::Topic::PatternTemplates;

    fn event_id(&self) -> &str {
        self.event_id.as_str()
    }

    fn partition_key(&self) -> &str {
        self.pattern_id.as_str()
    }

    fn validate(&self) -> Result<(), crate::ValidationError> {
        self.event_id.check("event_id")?;
        self.correlation_id.check("correlation_id")?;
        self.pattern_id.check("pattern_id")?;
        self.fingerprint_id.check("fingerprint_id")?;
        crate::validate::non_empty(&self.pattern_name, "pattern_name")?;
        self.timestamp.check("timestamp")
    }
}

impl crate::Event for FixSuggestion {
    const TOPIC: crate::Topic = crate::Topic::FixSuggestions;

    fn event_id(&self) -> &str {
        self.event_id.as_str()
    }

    fn partition_key(&self) -> &str {
        &self.signature
    }

    fn validate(&self) -> Result<(), crate::ValidationError> {
        self.event_id.check("event_id")?;
        self.correlation_id.check("correlation_id")?;
        self.failure_id.check("failure_id")?;
        crate::validate::opt_id(self.fingerprint_id.as_ref(), "fingerprint_id")?;
        crate::validate::non_empty(&self.signature, "signature")?;
        self.timestamp.check("timestamp")
    }
}

/// The derived topics that carry events, with their partition-key field.
pub const TOPICS: [(&str, &str); 3] = [
    ("pattern-templates", "pattern_id"),
    ("fix-suggestions", "signature"),
    ("agent-alerts", "dedup_key"),
];

/// The JSON Schema of a derived topic's events.
pub fn schema(topic: &str) -> Option<serde_json::Value> {
    let schema = match topic {
        "pattern-templates" => schemars::schema_for!(PatternTemplateEvent),
        "fix-suggestions" => schemars::schema_for!(FixSuggestion),
        "agent-alerts" => schemars::schema_for!(crate::alert::AgentAlert),
        _ => return None,
    };
    let key = TOPICS.iter().find(|(t, _)| *t == topic)?.1;
    let mut value = schema.to_value();
    if let Some(obj) = value.as_object_mut() {
        obj.insert("x-kafka-topic".into(), topic.into());
        obj.insert("x-partition-key".into(), key.into());
    }
    Some(value)
}
