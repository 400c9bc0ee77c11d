//! One table per topic, the seeds' columns, and the multi-row insert of each: the
//! batch's JSON documents go in as one `text[]` parameter and `UNNEST` turns them
//! into rows, so a batch is one statement per table whatever its size.

use agentbus_client::Topic;

/// How a field is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Uuid,
    Text,
    Float,
    BigInt,
    Int,
    Bool,
    Json,
    TextArray,
    Timestamp,
}

use Kind::*;

/// The table of a topic and its columns as `(column, event field, kind)`.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, &'static str, Kind)],
}

/// Columns every table starts with.
const ID: (&str, &str, Kind) = ("id", "event_id", Uuid);
const CORRELATION: (&str, &str, Kind) = ("correlation_id", "correlation_id", Uuid);
const CREATED: (&str, &str, Kind) = ("created_at", "timestamp", Timestamp);

fn table(topic: Topic) -> Table {
    match topic {
        Topic::AgentActions => Table {
            name: "agent_actions",
            columns: &[
                ID,
                CORRELATION,
                ("agent_name", "agent_name", Text),
                ("action_type", "action_type", Text),
                ("action_name", "action_name", Text),
                ("action_details", "action_details", Json),
                ("debug_mode", "debug_mode", Bool),
                ("duration_ms", "duration_ms", BigInt),
                ("metadata", "metadata", Json),
                CREATED,
            ],
        },
        Topic::AgentRoutingDecisions => Table {
            name: "agent_routing_decisions",
            columns: &[
                ID,
                CORRELATION,
                ("user_request", "user_request", Text),
                ("selected_agent", "selected_agent", Text),
                ("confidence_score", "confidence_score", Float),
                ("alternatives", "alternatives", Json),
                ("reasoning", "reasoning", Text),
                ("routing_strategy", "routing_strategy", Text),
                ("context", "context", Json),
                ("routing_time_ms", "routing_time_ms", BigInt),
                CREATED,
            ],
        },
        Topic::AgentTransformationEvents => Table {
            name: "agent_transformation_events",
            columns: &[
                ID,
                CORRELATION,
                ("source_agent", "source_agent", Text),
                ("target_agent", "target_agent", Text),
                ("transformation_reason", "transformation_reason", Text),
                ("confidence_score", "confidence_score", Float),
                (
                    "transformation_duration_ms",
                    "transformation_duration_ms",
                    BigInt,
                ),
                ("success", "success", Bool),
                ("context_preserved", "context_preserved", Json),
                CREATED,
            ],
        },
        Topic::RouterPerformanceMetrics => Table {
            name: "router_performance_metrics",
            columns: &[
                ID,
                CORRELATION,
                ("query_text", "query_text", Text),
                ("routing_duration_ms", "routing_duration_ms", BigInt),
                ("cache_hit", "cache_hit", Bool),
                ("trigger_match_strategy", "trigger_match_strategy", Text),
                ("confidence_components", "confidence_components", Json),
                ("candidates_evaluated", "candidates_evaluated", Int),
                CREATED,
            ],
        },
        Topic::TaskExecutions => Table {
            name: "execution_paths",
            columns: &[
                ID,
                CORRELATION,
                ("fingerprint_id", "fingerprint_id", Uuid),
                ("task_hash", "task_hash", Text),
                ("original_prompt", "original_prompt", Text),
                ("task_type", "task_type", Text),
                ("domain", "domain", Text),
                ("agent_name", "agent_name", Text),
                ("agent_chain", "agent_chain", TextArray),
                ("success", "success", Bool),
                ("quality_score", "quality_score", Float),
                ("complexity_score", "complexity_score", Float),
                ("steps", "steps", Json),
                ("total_duration_ms", "total_duration_ms", BigInt),
                ("tools_used", "tools_used", TextArray),
                ("user_acceptance", "user_acceptance", Bool),
                CREATED,
            ],
        },
        Topic::CodeQualityMetrics => Table {
            name: "code_artifacts",
            columns: &[
                ID,
                CORRELATION,
                ("path_id", "path_id", Uuid),
                ("fingerprint_id", "fingerprint_id", Uuid),
                ("file_path", "file_path", Text),
                ("artifact_type", "artifact_type", Text),
                ("language", "language", Text),
                ("quality_score", "quality_score", Float),
                ("onex_compliance_score", "onex_compliance_score", Float),
                ("lines_added", "lines_added", BigInt),
                ("lines_modified", "lines_modified", BigInt),
                ("lines_deleted", "lines_deleted", BigInt),
                ("test_coverage", "test_coverage", Float),
                ("tests_passed", "tests_passed", Int),
                ("tests_failed", "tests_failed", Int),
                ("lint_passed", "lint_passed", Bool),
                ("type_check_passed", "type_check_passed", Bool),
                ("security_scan_passed", "security_scan_passed", Bool),
                ("onex_node_type", "onex_node_type", Text),
                ("complexity_metrics", "complexity_metrics", Json),
                CREATED,
            ],
        },
        Topic::SuccessPatterns => Table {
            name: "success_patterns",
            columns: &[
                ID,
                CORRELATION,
                ("pattern_id", "pattern_id", Uuid),
                ("fingerprint_id", "fingerprint_id", Uuid),
                ("path_id", "path_id", Uuid),
                ("pattern_name", "pattern_name", Text),
                ("pattern_type", "pattern_type", Text),
                ("pattern_template", "pattern_template", Json),
                ("applicability_criteria", "applicability_criteria", Json),
                ("validation_criteria", "validation_criteria", Json),
                ("estimated_duration_ms", "estimated_duration_ms", BigInt),
                CREATED,
            ],
        },
        Topic::FailurePatterns => Table {
            name: "failure_patterns",
            columns: &[
                ID,
                CORRELATION,
                ("failure_id", "failure_id", Uuid),
                ("fingerprint_id", "fingerprint_id", Uuid),
                ("path_id", "path_id", Uuid),
                ("failure_type", "failure_type", Text),
                ("error_category", "error_category", Text),
                ("error_message", "error_message", Text),
                ("error_stack_trace", "error_stack_trace", Text),
                ("failed_step", "failed_step", Json),
                ("root_cause", "root_cause", Text),
                ("contributing_factors", "contributing_factors", TextArray),
                ("resolution", "resolution", Text),
                ("resolution_steps", "resolution_steps", Json),
                ("time_to_resolve_ms", "time_to_resolve_ms", BigInt),
                ("prevention_strategy", "prevention_strategy", Json),
                CREATED,
            ],
        },
        Topic::PatternTemplates => Table {
            name: "pattern_templates",
            columns: &[
                ID,
                CORRELATION,
                ("pattern_id", "pattern_id", Uuid),
                ("fingerprint_id", "fingerprint_id", Uuid),
                ("pattern_name", "pattern_name", Text),
                ("pattern_type", "pattern_type", Text),
                ("pattern_template", "pattern_template", Json),
                ("applicability_criteria", "applicability_criteria", Json),
                ("validation_criteria", "validation_criteria", Json),
                ("estimated_duration_ms", "estimated_duration_ms", BigInt),
                ("version", "version", BigInt),
                ("status", "status", Text),
                ("occurrences", "occurrences", BigInt),
                ("success_rate", "success_rate", Float),
                ("mean_quality_score", "mean_quality_score", Float),
                CREATED,
            ],
        },
        Topic::FixSuggestions => Table {
            name: "fix_suggestions",
            columns: &[
                ID,
                CORRELATION,
                ("failure_id", "failure_id", Uuid),
                ("fingerprint_id", "fingerprint_id", Uuid),
                ("signature", "signature", Text),
                ("error_category", "error_category", Text),
                ("normalized_error", "normalized_error", Text),
                ("group_occurrences", "group_occurrences", BigInt),
                ("suggested_resolution", "suggested_resolution", Text),
                ("resolution_steps", "resolution_steps", Json),
                ("resolution_count", "resolution_count", BigInt),
                ("automated_fix_possible", "automated_fix_possible", Bool),
                CREATED,
            ],
        },
        Topic::AgentAlerts => Table {
            name: "agent_alerts",
            columns: &[
                ID,
                CORRELATION,
                ("dedup_key", "dedup_key", Text),
                ("rule", "rule", Text),
                ("kind", "kind", Text),
                ("action", "action", Text),
                ("severity", "severity", Text),
                ("subject", "subject", Text),
                ("summary", "summary", Text),
                ("agent_name", "agent_name", Text),
                ("occurrences", "occurrences", BigInt),
                ("window_seconds", "window_seconds", BigInt),
                ("first_seen", "first_seen", Timestamp),
                ("last_seen", "last_seen", Timestamp),
                ("details", "details", Json),
                CREATED,
            ],
        },
    }
}

fn expr(field: &str, kind: Kind) -> String {
    let text = format!("e->>'{field}'");
    match kind {
        Uuid => format!("({text})::uuid"),
        Text => text,
        Float => format!("({text})::double precision"),
        BigInt => format!("({text})::bigint"),
        Int => format!("({text})::integer"),
        Bool => format!("({text})::boolean"),
        Json => format!("e->'{field}'"),
        TextArray => format!(
            "CASE WHEN jsonb_typeof(e->'{field}') = 'array' \
             THEN ARRAY(SELECT jsonb_array_elements_text(e->'{field}')) END"
        ),
        Timestamp => format!("({text})::timestamptz"),
    }
}

impl Kind {
    /// PostgreSQL's `udt_name` of the column type.
    fn udt(self) -> &'static str {
        match self {
            Uuid => "uuid",
            Text => "text",
            Float => "float8",
            BigInt => "int8",
            Int => "int4",
            Bool => "bool",
            Json => "jsonb",
            TextArray => "_text",
            Timestamp => "timestamptz",
        }
    }
}

/// The columns the insert of `topic` writes, with their types (`udt_name`).
pub fn expected_columns(topic: Topic) -> Vec<(&'static str, &'static str)> {
    table(topic)
        .columns
        .iter()
        .map(|(column, _, kind)| (*column, kind.udt()))
        .collect()
}

/// The table events of `topic` are written to.
pub fn table_name(topic: Topic) -> &'static str {
    table(topic).name
}

/// The insert of a batch of `topic`'s events: `$1` is a `text[]` of JSON documents.
pub fn insert_sql(topic: Topic) -> String {
    let t = table(topic);
    let columns: Vec<&str> = t.columns.iter().map(|c| c.0).collect();
    let values: Vec<String> = t.columns.iter().map(|c| expr(c.1, c.2)).collect();
    format!(
        // The cast to jsonb[] parses each document once; `LATERAL (SELECT doc::jsonb)`
        // would be inlined into every column expression and parse it once per column.
        "INSERT INTO {} ({}) SELECT {} FROM UNNEST($1::text[]::jsonb[]) AS u(e) \
         ON CONFLICT (id) DO NOTHING",
        t.name,
        columns.join(", "),
        values.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_has_its_seeds_table() {
        let names: Vec<&str> = Topic::ALL.iter().map(|t| table_name(*t)).collect();
        assert_eq!(
            names,
            [
                "agent_actions",
                "agent_routing_decisions",
                "agent_transformation_events",
                "router_performance_metrics",
                "execution_paths",
                "code_artifacts",
                "success_patterns",
                "failure_patterns"
            ]
        );
        let sql = insert_sql(Topic::AgentRoutingDecisions);
        assert!(
            sql.starts_with(
                "INSERT INTO agent_routing_decisions (id, correlation_id, user_request"
            ),
            "{sql}"
        );
        assert!(sql.ends_with("ON CONFLICT (id) DO NOTHING"));
    }
}
