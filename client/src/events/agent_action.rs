//! `agent-actions`: every action an agent takes (tool calls, decisions, errors).

use super::{Event, Topic};
use crate::validate::{self, Id, Timestamp, ValidationError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One agent action (seeds: topic 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentAction {
    /// Unique id of this event.
    pub event_id: Id,
    /// Trace id shared by every event of one request; the partition key.
    pub correlation_id: Id,
    /// The agent that acted (e.g. `polymorphic-agent`).
    pub agent_name: String,
    /// What kind of action.
    pub action_type: ActionType,
    /// The action (e.g. `Read`, `Write`, `route_to_agent`).
    pub action_name: String,
    /// Action-specific fields (flexible schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_details: Option<serde_json::Map<String, serde_json::Value>>,
    /// Whether the agent ran in debug mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_mode: Option<bool>,
    /// How long the action took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// When the action happened (RFC 3339).
    pub timestamp: Timestamp,
    /// Who published the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ActionMetadata>,
}

/// The kind of an agent action: `tool_call | decision | error | success`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    /// A tool invocation.
    ToolCall,
    /// A decision.
    Decision,
    /// An error.
    Error,
    /// A success.
    Success,
}

/// Publisher metadata of an action: the seeds' keys, plus any others.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActionMetadata {
    /// Version of the publishing skill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skill_version: Option<String>,
    /// Id of the publishing producer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_producer_id: Option<String>,
    /// Further keys.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Event for AgentAction {
    const TOPIC: Topic = Topic::AgentActions;

    fn event_id(&self) -> &str {
        self.event_id.as_str()
    }

    fn partition_key(&self) -> &str {
        self.correlation_id.as_str()
    }

    fn validate(&self) -> Result<(), ValidationError> {
        self.event_id.check("event_id")?;
        self.correlation_id.check("correlation_id")?;
        validate::non_empty(&self.agent_name, "agent_name")?;
        validate::non_empty(&self.action_name, "action_name")?;
        self.timestamp.check("timestamp")
    }
}
