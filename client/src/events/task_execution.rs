//! `task-executions`: a whole task, its steps and outcome, for learning.

use super::{Event, Topic};
use crate::validate::{self, Id, Timestamp, ValidationError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One task execution (seeds: topic 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskExecution {
    /// Unique id of this event.
    pub event_id: Id,
    /// Trace id.
    pub correlation_id: Id,
    /// Fingerprint of the task; the partition key (co-locates similar tasks).
    pub fingerprint_id: Id,
    /// Hash of the task (e.g. SHA-256 hex).
    pub task_hash: String,
    /// The prompt as given.
    pub original_prompt: String,
    /// Kind of task (e.g. `code_generation`).
    pub task_type: String,
    /// Domain (e.g. `api_development`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The agent that ran the task.
    pub agent_name: String,
    /// Agents involved, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_chain: Option<Vec<String>>,
    /// Whether the task succeeded.
    pub success: bool,
    /// Quality of the result, `0..=1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1))]
    pub quality_score: Option<f64>,
    /// Complexity of the task, `0..=1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1))]
    pub complexity_score: Option<f64>,
    /// The steps taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<TaskStep>>,
    /// Total time, in milliseconds.
    pub total_duration_ms: u64,
    /// Tools used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools_used: Option<Vec<String>>,
    /// Whether the user accepted the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_acceptance: Option<bool>,
    /// When the task finished (RFC 3339).
    pub timestamp: Timestamp,
}

/// One step of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskStep {
    /// Position, from 1.
    pub step_number: u32,
    /// What the step did (e.g. `rag_query`).
    pub action: String,
    /// Files the step touched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
    /// How long it took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// How it ended (e.g. `success`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

impl Event for TaskExecution {
    const TOPIC: Topic = Topic::TaskExecutions;

    fn event_id(&self) -> &str {
        self.event_id.as_str()
    }

    fn partition_key(&self) -> &str {
        self.fingerprint_id.as_str()
    }

    fn validate(&self) -> Result<(), ValidationError> {
        self.event_id.check("event_id")?;
        self.correlation_id.check("correlation_id")?;
        self.fingerprint_id.check("fingerprint_id")?;
        validate::non_empty(&self.task_hash, "task_hash")?;
        validate::non_empty(&self.task_type, "task_type")?;
        validate::non_empty(&self.agent_name, "agent_name")?;
        validate::opt_score(self.quality_score, "quality_score")?;
        validate::opt_score(self.complexity_score, "complexity_score")?;
        for (i, s) in self.steps.iter().flatten().enumerate() {
            validate::non_empty(&s.action, &format!("steps[{i}].action"))?;
        }
        self.timestamp.check("timestamp")
    }
}
