//! The pattern-extractor (`ml-group`): templates from task executions and fix
//! suggestions from failures, exactly once through Kafka transactions.
//!
//! ```text
//! task-executions ──► per fingerprint + step sequence ──────────────► pattern-templates
//! failure-patterns ─► keyed by error category ─► ml-group-failures ─► fix-suggestions
//!                               every batch, one transaction: outputs, dead letters,
//!                               ml-group-state changelog, consumed offsets
//! ```
//!
//! State lives in the compacted `ml-group-state` topic, written in the batch's
//! transaction: partition `p` of task-executions keeps its state in changelog partition
//! `p`, partition `p` of ml-group-failures in `12 + p`. Assigned partitions stay paused
//! until their state has been read back (read_committed); revoked ones forget it.

pub mod failures;
pub mod model;
mod restore;
pub mod signature;
mod sink;
pub mod templates;

pub use model::Model;
pub use sink::{carriers, ensure_topics, ExtractorSettings, ExtractorSink};

/// The consumer group of the seeds.
pub const GROUP: &str = "ml-group";
/// Templates, keyed by `pattern_id`.
pub const TEMPLATES: &str = "pattern-templates";
/// Fix suggestions, keyed by failure signature.
pub const SUGGESTIONS: &str = "fix-suggestions";
/// The state changelog.
pub const CHANGELOG: &str = "ml-group-state";
/// Failures keyed by error category.
pub const REPARTITION: &str = "ml-group-failures";

/// Partitions of task-executions (changelog partitions `0..EXECUTION_PARTITIONS`).
const EXECUTION_PARTITIONS: i32 = 12;

/// The topics the group reads.
pub fn topics() -> Vec<String> {
    vec![
        agentbus_client::Topic::TaskExecutions.name().to_string(),
        agentbus_client::Topic::FailurePatterns.name().to_string(),
        REPARTITION.to_string(),
    ]
}

/// The changelog partition that keeps the state of an input partition (none for a
/// stateless input).
pub fn changelog_partition(topic: &str, partition: i32) -> Option<i32> {
    match topic {
        t if t == agentbus_client::Topic::TaskExecutions.name() => Some(partition),
        REPARTITION => Some(EXECUTION_PARTITIONS + partition),
        _ => None,
    }
}
