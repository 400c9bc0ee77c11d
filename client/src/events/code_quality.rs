//! `code-quality-metrics`: quality of a code artifact an agent produced.

use super::{Event, Topic};
use crate::validate::{self, Id, Timestamp, ValidationError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Quality of one artifact (seeds: topic 6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeQualityMetric {
    /// Unique id of this event.
    pub event_id: Id,
    /// Trace id.
    pub correlation_id: Id,
    /// Execution path that produced the artifact; the partition key.
    pub path_id: Id,
    /// Fingerprint of the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_id: Option<Id>,
    /// The file.
    pub file_path: String,
    /// Kind of artifact (e.g. `source_code`).
    pub artifact_type: String,
    /// Language (e.g. `python`).
    pub language: String,
    /// Overall quality, `0..=1`.
    #[schemars(range(min = 0, max = 1))]
    pub quality_score: f64,
    /// ONEX compliance, `0..=1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1))]
    pub onex_compliance_score: Option<f64>,
    /// Lines added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines_added: Option<u64>,
    /// Lines modified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines_modified: Option<u64>,
    /// Lines deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines_deleted: Option<u64>,
    /// Test coverage in percent, `0..=100`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub test_coverage: Option<f64>,
    /// Tests passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests_passed: Option<u32>,
    /// Tests failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests_failed: Option<u32>,
    /// Whether lint passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lint_passed: Option<bool>,
    /// Whether the type check passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_check_passed: Option<bool>,
    /// Whether the security scan passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_scan_passed: Option<bool>,
    /// ONEX node type (e.g. `Effect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onex_node_type: Option<String>,
    /// Complexity measures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complexity_metrics: Option<ComplexityMetrics>,
    /// When it was measured (RFC 3339).
    pub timestamp: Timestamp,
}

/// Complexity measures of an artifact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplexityMetrics {
    /// Cyclomatic complexity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cyclomatic_complexity: Option<u32>,
    /// Cognitive complexity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cognitive_complexity: Option<u32>,
    /// Deepest nesting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nesting_depth: Option<u32>,
}

impl Event for CodeQualityMetric {
    const TOPIC: Topic = Topic::CodeQualityMetrics;

    fn event_id(&self) -> &str {
        self.event_id.as_str()
    }

    fn partition_key(&self) -> &str {
        self.path_id.as_str()
    }

    fn validate(&self) -> Result<(), ValidationError> {
        self.event_id.check("event_id")?;
        self.correlation_id.check("correlation_id")?;
        self.path_id.check("path_id")?;
        validate::opt_id(self.fingerprint_id.as_ref(), "fingerprint_id")?;
        validate::non_empty(&self.file_path, "file_path")?;
        validate::score(self.quality_score, "quality_score")?;
        validate::opt_score(self.onex_compliance_score, "onex_compliance_score")?;
        if let Some(c) = self.test_coverage {
            validate::percent(c, "test_coverage")?;
        }
        self.timestamp.check("timestamp")
    }
}
