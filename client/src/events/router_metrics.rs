//! `router-performance-metrics`: how fast and how sure the router was.

use super::{Event, Topic};
use crate::validate::{self, Id, Timestamp, ValidationError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One routing measurement (seeds: topic 4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouterPerformanceMetric {
    /// Unique id of this event.
    pub event_id: Id,
    /// Trace id; the partition key.
    pub correlation_id: Id,
    /// The query routed.
    pub query_text: String,
    /// Time the routing took, in milliseconds.
    pub routing_duration_ms: u64,
    /// Whether the result came from the cache.
    pub cache_hit: bool,
    /// The trigger-matching strategy used.
    pub trigger_match_strategy: String,
    /// The parts of the confidence score, each `0..=1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_components: Option<ConfidenceComponents>,
    /// How many candidate agents were scored.
    pub candidates_evaluated: u32,
    /// When it was measured (RFC 3339).
    pub timestamp: Timestamp,
}

/// The parts of a routing confidence score.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfidenceComponents {
    /// Trigger match, `0..=1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1))]
    pub trigger_score: Option<f64>,
    /// Context match, `0..=1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1))]
    pub context_score: Option<f64>,
    /// Capability match, `0..=1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1))]
    pub capability_score: Option<f64>,
    /// Historical success, `0..=1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1))]
    pub historical_score: Option<f64>,
}

impl Event for RouterPerformanceMetric {
    const TOPIC: Topic = Topic::RouterPerformanceMetrics;

    fn event_id(&self) -> &str {
        self.event_id.as_str()
    }

    fn partition_key(&self) -> &str {
        self.correlation_id.as_str()
    }

    fn validate(&self) -> Result<(), ValidationError> {
        self.event_id.check("event_id")?;
        self.correlation_id.check("correlation_id")?;
        validate::non_empty(&self.trigger_match_strategy, "trigger_match_strategy")?;
        if let Some(c) = &self.confidence_components {
            let p = "confidence_components";
            validate::opt_score(c.trigger_score, &format!("{p}.trigger_score"))?;
            validate::opt_score(c.context_score, &format!("{p}.context_score"))?;
            validate::opt_score(c.capability_score, &format!("{p}.capability_score"))?;
            validate::opt_score(c.historical_score, &format!("{p}.historical_score"))?;
        }
        self.timestamp.check("timestamp")
    }
}
