//! `agent-routing-decisions`: which agent the router picked, and why.

use super::{Event, Topic};
use crate::validate::{self, Id, Timestamp, ValidationError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A routing decision (seeds: topic 2, published by `/log-routing-decision`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingDecision {
    /// Unique id of this event.
    pub event_id: Id,
    /// Trace id shared by every event of one request; the partition key.
    pub correlation_id: Id,
    /// The user's request as routed.
    pub user_request: String,
    /// The agent chosen.
    pub selected_agent: String,
    /// Confidence in the choice, `0..=1`.
    #[schemars(range(min = 0, max = 1))]
    pub confidence_score: f64,
    /// Agents considered and not chosen.
    pub alternatives: Vec<Alternative>,
    /// Why the agent was chosen.
    pub reasoning: String,
    /// The routing strategy used (e.g. `enhanced_fuzzy_matching`).
    pub routing_strategy: String,
    /// Context of the decision; callers may add keys.
    pub context: RoutingContext,
    /// Time the routing took, in milliseconds.
    pub routing_time_ms: u64,
    /// When the decision was made (RFC 3339).
    pub timestamp: Timestamp,
}

/// An agent the router considered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alternative {
    /// The agent's name.
    pub agent_name: String,
    /// Its confidence score, `0..=1`.
    #[schemars(range(min = 0, max = 1))]
    pub confidence_score: f64,
    /// Why it was a candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Context of a routing decision: the seeds' keys, plus any others the caller adds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoutingContext {
    /// Domain of the request (e.g. `database_optimization`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The agent active before this decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_agent: Option<String>,
    /// Files relevant to the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_context: Option<Vec<String>>,
    /// Further keys set by the caller.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Event for RoutingDecision {
    const TOPIC: Topic = Topic::AgentRoutingDecisions;

    fn event_id(&self) -> &str {
        self.event_id.as_str()
    }

    fn partition_key(&self) -> &str {
        self.correlation_id.as_str()
    }

    fn validate(&self) -> Result<(), ValidationError> {
        self.event_id.check("event_id")?;
        self.correlation_id.check("correlation_id")?;
        validate::non_empty(&self.selected_agent, "selected_agent")?;
        validate::score(self.confidence_score, "confidence_score")?;
        for (i, a) in self.alternatives.iter().enumerate() {
            validate::non_empty(&a.agent_name, &format!("alternatives[{i}].agent_name"))?;
            validate::score(
                a.confidence_score,
                &format!("alternatives[{i}].confidence_score"),
            )?;
        }
        validate::non_empty(&self.routing_strategy, "routing_strategy")?;
        self.timestamp.check("timestamp")
    }
}
