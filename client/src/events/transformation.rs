//! `agent-transformation-events`: a polymorphic agent changing identity.

use super::{Event, Topic};
use crate::validate::{self, Id, Timestamp, ValidationError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One transformation (seeds: topic 3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransformationEvent {
    /// Unique id of this event.
    pub event_id: Id,
    /// Trace id; the partition key.
    pub correlation_id: Id,
    /// The agent before the transformation.
    pub source_agent: String,
    /// The agent after it.
    pub target_agent: String,
    /// Why it transformed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transformation_reason: Option<String>,
    /// Confidence in the target, `0..=1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1))]
    pub confidence_score: Option<f64>,
    /// How long it took, in milliseconds.
    pub transformation_duration_ms: u64,
    /// Whether it succeeded.
    pub success: bool,
    /// Context carried over to the new identity; callers may add keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_preserved: Option<ContextPreserved>,
    /// When it happened (RFC 3339).
    pub timestamp: Timestamp,
}

/// Context carried across a transformation: the seeds' keys, plus any others.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContextPreserved {
    /// The user's request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_request: Option<String>,
    /// The trace id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Id>,
    /// The session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Id>,
    /// Further keys.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Event for TransformationEvent {
    const TOPIC: Topic = Topic::AgentTransformationEvents;

    fn event_id(&self) -> &str {
        self.event_id.as_str()
    }

    fn partition_key(&self) -> &str {
        self.correlation_id.as_str()
    }

    fn validate(&self) -> Result<(), ValidationError> {
        self.event_id.check("event_id")?;
        self.correlation_id.check("correlation_id")?;
        validate::non_empty(&self.source_agent, "source_agent")?;
        validate::non_empty(&self.target_agent, "target_agent")?;
        validate::opt_score(self.confidence_score, "confidence_score")?;
        if let Some(c) = &self.context_preserved {
            validate::opt_id(
                c.correlation_id.as_ref(),
                "context_preserved.correlation_id",
            )?;
            validate::opt_id(c.session_id.as_ref(), "context_preserved.session_id")?;
        }
        self.timestamp.check("timestamp")
    }
}
