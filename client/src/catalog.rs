//! The topic catalog: name, partitions, retention, replication factor, configs and
//! partition-key field of the eight topics (seeds: "Topic Definitions" and "Step 2: Create
//! Topics"), in code and as the `deploy/topics.toml` file `agentbus topics apply` reads.

use crate::events::Topic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// One topic as it should exist on the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor (capped at the cluster's broker count when applied).
    pub replication_factor: i16,
    /// `retention.ms`.
    pub retention_ms: i64,
    /// The event field used as the record key.
    pub key: String,
    /// Other topic configs (`compression.type`, `min.insync.replicas`, …).
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

impl TopicSpec {
    /// All topic configs to set, `retention.ms` included.
    pub fn all_configs(&self) -> BTreeMap<String, String> {
        let mut c = self.configs.clone();
        c.insert("retention.ms".into(), self.retention_ms.to_string());
        c
    }
}

/// The catalog as the seeds define it.
pub fn catalog() -> Vec<TopicSpec> {
    Topic::ALL.into_iter().map(spec).collect()
}

/// The seeds' definition of one topic.
pub fn spec(topic: Topic) -> TopicSpec {
    let (partitions, days) = match topic {
        Topic::AgentActions => (12, 7),
        Topic::AgentRoutingDecisions
        | Topic::AgentTransformationEvents
        | Topic::RouterPerformanceMetrics => (6, 30),
        Topic::TaskExecutions => (12, 90),
        Topic::CodeQualityMetrics => (6, 90),
        Topic::SuccessPatterns | Topic::FailurePatterns => (6, 365),
        Topic::PatternTemplates | Topic::FixSuggestions | Topic::AgentAlerts => {
            let name = topic.name();
            if let Some(d) = derived().into_iter().find(|d| d.name == name) {
                return d;
            }
            (6, 365)
        }
    };
    TopicSpec {
        name: topic.name().to_string(),
        partitions,
        replication_factor: 3,
        retention_ms: days * DAY_MS,
        key: topic.key_field().to_string(),
        configs: BTreeMap::from([
            ("compression.type".to_string(), "snappy".to_string()),
            ("min.insync.replicas".to_string(), "2".to_string()),
        ]),
    }
}

/// The topics the consumer groups derive from the eight: the pattern-extractor's
/// outputs (`pattern-templates`, compacted, and `fix-suggestions`), its state changelog
/// (`ml-group-state`, compacted, one partition per stateful input partition) and the
/// repartition topic that brings failures of one error category together
/// (`ml-group-failures`); the alert-manager's alerts (`agent-alerts`), its state
/// changelog (`alert-group-state`, one partition per partition of its repartition
/// topic) and that repartition topic (`alert-group-subjects`, keyed by what a rule
/// counts: a fingerprint, an agent, an artifact).
pub fn derived() -> Vec<TopicSpec> {
    let spec = |name: &str, partitions, retention_ms, key: &str, compact: bool| {
        let mut configs = BTreeMap::from([
            ("compression.type".to_string(), "snappy".to_string()),
            ("min.insync.replicas".to_string(), "2".to_string()),
        ]);
        if compact {
            configs.insert("cleanup.policy".into(), "compact".into());
        }
        TopicSpec {
            name: name.to_string(),
            partitions,
            replication_factor: 3,
            retention_ms,
            key: key.to_string(),
            configs,
        }
    };
    vec![
        spec("pattern-templates", 6, -1, "pattern_id", true),
        spec("fix-suggestions", 6, 365 * DAY_MS, "signature", false),
        spec("ml-group-state", 18, -1, "state_key", true),
        spec("ml-group-failures", 6, 7 * DAY_MS, "error_category", false),
        spec("agent-alerts", 6, 90 * DAY_MS, "dedup_key", false),
        spec("alert-group-state", 6, -1, "state_key", true),
        spec("alert-group-subjects", 6, 7 * DAY_MS, "subject", false),
    ]
}

/// Every topic of `deploy/topics.toml`: the eight, then the derived ones.
pub fn deployment() -> Vec<TopicSpec> {
    catalog().into_iter().chain(derived()).collect()
}

/// A topics file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// Not valid TOML of the expected shape.
    #[error("{0}")]
    Parse(#[from] toml::de::Error),
    /// A value that cannot be applied.
    #[error("topic {topic}: {problem}")]
    Invalid {
        /// The topic.
        topic: String,
        /// What is wrong.
        problem: String,
    },
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct File {
    topic: Vec<TopicSpec>,
}

/// Parses a topics file (`[[topic]]` tables with the fields of [`TopicSpec`]).
pub fn from_toml(text: &str) -> Result<Vec<TopicSpec>, CatalogError> {
    let file: File = toml::from_str(text)?;
    let mut seen = std::collections::BTreeSet::new();
    for t in &file.topic {
        let invalid = |problem: &str| CatalogError::Invalid {
            topic: t.name.clone(),
            problem: problem.to_string(),
        };
        if !seen.insert(t.name.as_str()) {
            return Err(invalid("listed twice"));
        }
        if t.partitions < 1 {
            return Err(invalid("partitions must be at least 1"));
        }
        if t.replication_factor < 1 {
            return Err(invalid("replication_factor must be at least 1"));
        }
        if t.retention_ms < -1 {
            return Err(invalid("retention_ms must be -1 (forever) or more"));
        }
        if t.configs.contains_key("retention.ms") {
            return Err(invalid("set retention with retention_ms, not in configs"));
        }
    }
    Ok(file.topic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_values() {
        let c = catalog();
        assert_eq!(c.len(), 8);
        let by: BTreeMap<_, _> = c.iter().map(|t| (t.name.as_str(), t)).collect();
        assert_eq!(by["agent-actions"].partitions, 12);
        assert_eq!(by["agent-actions"].retention_ms, 604_800_000);
        assert_eq!(by["agent-routing-decisions"].retention_ms, 2_592_000_000);
        assert_eq!(by["task-executions"].partitions, 12);
        assert_eq!(by["task-executions"].retention_ms, 7_776_000_000);
        assert_eq!(by["task-executions"].key, "fingerprint_id");
        assert_eq!(by["code-quality-metrics"].key, "path_id");
        assert_eq!(by["success-patterns"].retention_ms, 31_536_000_000);
        assert_eq!(by["success-patterns"].key, "pattern_id");
        assert_eq!(by["failure-patterns"].key, "failure_id");
        assert!(c.iter().all(|t| t.replication_factor == 3));
        assert_eq!(
            by["agent-actions"].all_configs()["retention.ms"],
            "604800000"
        );
    }

    #[test]
    fn deploy_file_matches_the_code() {
        let file = from_toml(include_str!("../../deploy/topics.toml")).unwrap();
        assert_eq!(file, deployment());
    }

    #[test]
    fn rejects_bad_files() {
        let dup =
            "[[topic]]\nname='a'\npartitions=1\nreplication_factor=1\nretention_ms=1\nkey='k'\n";
        assert!(from_toml(&dup.repeat(2))
            .unwrap_err()
            .to_string()
            .contains("twice"));
        let zero = dup.replace("partitions=1", "partitions=0");
        assert!(from_toml(&zero).is_err());
        assert!(from_toml("[[topic]]\nname='a'\n").is_err());
    }
}
