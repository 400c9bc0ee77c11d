//! The seeds' example event of each topic ("Topic Schema Specifications"), as JSON text.
//!
//! The seeds write the placeholder `"uuid"` where an id goes and a `// comment` inside the
//! `agent-actions` example; here the placeholders are real UUIDs and the comment is gone.
//! Everything else is as the seeds have it.

use crate::events::Topic;

/// `event_id` of every example.
pub const EVENT_ID: &str = "0b9e4c2a-5f4d-4b8e-9a1c-3d2e1f0a9b8c";
/// `correlation_id` of every example (the seeds' own correlation id).
pub const CORRELATION_ID: &str = "7415f61f-ab2f-4961-97f5-a5f5c6499a4d";

/// The seeds' example event for `topic`.
pub fn json(topic: Topic) -> &'static str {
    match topic {
        Topic::AgentActions => AGENT_ACTION,
        Topic::AgentRoutingDecisions => ROUTING_DECISION,
        Topic::AgentTransformationEvents => TRANSFORMATION,
        Topic::RouterPerformanceMetrics => ROUTER_METRICS,
        Topic::TaskExecutions => TASK_EXECUTION,
        Topic::CodeQualityMetrics => CODE_QUALITY,
        Topic::SuccessPatterns => SUCCESS_PATTERN,
        Topic::FailurePatterns => FAILURE_PATTERN,
        Topic::PatternTemplates => PATTERN_TEMPLATE,
        Topic::FixSuggestions => FIX_SUGGESTION,
        Topic::AgentAlerts => AGENT_ALERT,
    }
}

/// An alert as the alert-manager publishes it (derived, not from the seeds).
const AGENT_ALERT: &str = r#"{
  "event_id": "0b9e4c2a-5f4d-4b8e-9a1c-3d2e1f0a9b8c",
  "correlation_id": "7415f61f-ab2f-4961-97f5-a5f5c6499a4d",
  "dedup_key": "agentbus/repeated-failures/fingerprint:9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a/1760985000123",
  "rule": "repeated-failures",
  "kind": "repeated_failure",
  "action": "trigger",
  "severity": "critical",
  "subject": "fingerprint:9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
  "summary": "4 failures of fingerprint 9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a within 15m (more than 3): Connection to database timed out",
  "agent_name": null,
  "occurrences": 4,
  "window_seconds": 900,
  "first_seen": "2025-10-20T18:30:00.123Z",
  "last_seen": "2025-10-20T18:34:10.456Z",
  "details": {"threshold": 3, "failure_type": "timeout", "error_category": "database", "error_message": "Connection to database timed out"},
  "timestamp": "2025-10-20T18:34:10.456Z"
}"#;

/// A template as the pattern-extractor publishes it (derived, not from the seeds).
const PATTERN_TEMPLATE: &str = r#"{
  "event_id": "0b9e4c2a-5f4d-4b8e-9a1c-3d2e1f0a9b8c",
  "correlation_id": "7415f61f-ab2f-4961-97f5-a5f5c6499a4d",
  "pattern_id": "c0ffee00-1234-4abc-8def-0123456789ab",
  "fingerprint_id": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
  "pattern_name": "code_generation: rag_query, generate_code, validate",
  "pattern_type": "workflow",
  "pattern_template": {
    "steps": [
      {"action": "rag_query", "files": ["{{entity}}"]},
      {"action": "generate_code"},
      {"action": "validate"}
    ],
    "placeholders": {"entity": "string"}
  },
  "applicability_criteria": {
    "task_types": ["code_generation"],
    "domains": ["api_development"],
    "technologies": ["fastapi"]
  },
  "validation_criteria": {"min_quality_score": 0.85, "min_success_rate": 0.8},
  "estimated_duration_ms": 14200,
  "version": 1,
  "status": "active",
  "occurrences": 5,
  "success_rate": 1.0,
  "mean_quality_score": 0.9,
  "timestamp": "2025-10-20T18:30:00.123Z"
}"#;

/// A fix suggestion as the pattern-extractor publishes it (derived, not from the seeds).
const FIX_SUGGESTION: &str = r#"{
  "event_id": "0b9e4c2a-5f4d-4b8e-9a1c-3d2e1f0a9b8c",
  "correlation_id": "7415f61f-ab2f-4961-97f5-a5f5c6499a4d",
  "failure_id": "deadbeef-0000-4000-8000-000000000001",
  "fingerprint_id": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
  "signature": "type_error:00c0ffee00c0ffee",
  "error_category": "type_error",
  "normalized_error": "expected str got int for field <str>",
  "group_occurrences": 4,
  "suggested_resolution": "Cast user_id to str before validation",
  "resolution_steps": [{"action": "edit", "file": "models/user.py"}],
  "resolution_count": 3,
  "automated_fix_possible": true,
  "timestamp": "2025-10-20T18:30:00.123Z"
}"#;

const AGENT_ACTION: &str = r#"{
  "event_id": "0b9e4c2a-5f4d-4b8e-9a1c-3d2e1f0a9b8c",
  "correlation_id": "7415f61f-ab2f-4961-97f5-a5f5c6499a4d",
  "agent_name": "polymorphic-agent",
  "action_type": "tool_call",
  "action_name": "Read",
  "action_details": {
    "file_path": "/path/to/file.py",
    "lines_read": 150,
    "duration_ms": 45
  },
  "debug_mode": true,
  "duration_ms": 45,
  "timestamp": "2025-10-20T18:30:00.123Z",
  "metadata": {
    "skill_version": "1.0.0",
    "kafka_producer_id": "skill-log-agent-action-001"
  }
}"#;

const ROUTING_DECISION: &str = r#"{
  "event_id": "0b9e4c2a-5f4d-4b8e-9a1c-3d2e1f0a9b8c",
  "correlation_id": "7415f61f-ab2f-4961-97f5-a5f5c6499a4d",
  "user_request": "optimize database queries",
  "selected_agent": "agent-performance",
  "confidence_score": 0.92,
  "alternatives": [
    {
      "agent_name": "agent-database",
      "confidence_score": 0.85,
      "reason": "Database keyword match"
    },
    {
      "agent_name": "agent-debug",
      "confidence_score": 0.73,
      "reason": "General optimization capability"
    }
  ],
  "reasoning": "High confidence match on 'optimize' and 'performance' triggers",
  "routing_strategy": "enhanced_fuzzy_matching",
  "context": {
    "domain": "database_optimization",
    "previous_agent": "polymorphic-agent",
    "file_context": ["api/database.py"]
  },
  "routing_time_ms": 45,
  "timestamp": "2025-10-20T18:30:00.123Z"
}"#;

const TRANSFORMATION: &str = r#"{
  "event_id": "0b9e4c2a-5f4d-4b8e-9a1c-3d2e1f0a9b8c",
  "correlation_id": "7415f61f-ab2f-4961-97f5-a5f5c6499a4d",
  "source_agent": "polymorphic-agent",
  "target_agent": "agent-performance",
  "transformation_reason": "High confidence routing decision",
  "confidence_score": 0.92,
  "transformation_duration_ms": 45,
  "success": true,
  "context_preserved": {
    "user_request": "optimize database queries",
    "correlation_id": "7415f61f-ab2f-4961-97f5-a5f5c6499a4d",
    "session_id": "5d1c7e0b-2a3f-4c6d-8e9f-0a1b2c3d4e5f"
  },
  "timestamp": "2025-10-20T18:30:00.123Z"
}"#;

const ROUTER_METRICS: &str = r#"{
  "event_id": "0b9e4c2a-5f4d-4b8e-9a1c-3d2e1f0a9b8c",
  "correlation_id": "7415f61f-ab2f-4961-97f5-a5f5c6499a4d",
  "query_text": "optimize database queries",
  "routing_duration_ms": 45,
  "cache_hit": false,
  "trigger_match_strategy": "enhanced_fuzzy_matching",
  "confidence_components": {
    "trigger_score": 0.95,
    "context_score": 0.88,
    "capability_score": 0.92,
    "historical_score": 0.90
  },
  "candidates_evaluated": 3,
  "timestamp": "2025-10-20T18:30:00.123Z"
}"#;

const TASK_EXECUTION: &str = r#"{
  "event_id": "0b9e4c2a-5f4d-4b8e-9a1c-3d2e1f0a9b8c",
  "correlation_id": "7415f61f-ab2f-4961-97f5-a5f5c6499a4d",
  "fingerprint_id": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
  "task_hash": "sha256_hash",
  "original_prompt": "Create FastAPI CRUD endpoint for users",
  "task_type": "code_generation",
  "domain": "api_development",
  "agent_name": "agent-api-architect",
  "agent_chain": ["polymorphic-agent", "agent-api-architect", "agent-testing"],
  "success": true,
  "quality_score": 0.92,
  "complexity_score": 0.65,
  "steps": [
    {
      "step_number": 1,
      "action": "rag_query",
      "duration_ms": 1200,
      "outcome": "success"
    },
    {
      "step_number": 2,
      "action": "code_generation",
      "files": ["api/users.py"],
      "duration_ms": 850,
      "outcome": "success"
    }
  ],
  "total_duration_ms": 15400,
  "tools_used": ["perform_rag_query", "Write", "Bash"],
  "user_acceptance": true,
  "timestamp": "2025-10-20T18:30:00.123Z"
}"#;

const CODE_QUALITY: &str = r#"{
  "event_id": "0b9e4c2a-5f4d-4b8e-9a1c-3d2e1f0a9b8c",
  "correlation_id": "7415f61f-ab2f-4961-97f5-a5f5c6499a4d",
  "path_id": "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d",
  "fingerprint_id": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
  "file_path": "api/users.py",
  "artifact_type": "source_code",
  "language": "python",
  "quality_score": 0.92,
  "onex_compliance_score": 0.95,
  "lines_added": 145,
  "lines_modified": 0,
  "lines_deleted": 0,
  "test_coverage": 87.5,
  "tests_passed": 12,
  "tests_failed": 0,
  "lint_passed": true,
  "type_check_passed": true,
  "security_scan_passed": true,
  "onex_node_type": "Effect",
  "complexity_metrics": {
    "cyclomatic_complexity": 5,
    "cognitive_complexity": 3,
    "nesting_depth": 2
  },
  "timestamp": "2025-10-20T18:30:00.123Z"
}"#;

const SUCCESS_PATTERN: &str = r#"{
  "event_id": "0b9e4c2a-5f4d-4b8e-9a1c-3d2e1f0a9b8c",
  "correlation_id": "7415f61f-ab2f-4961-97f5-a5f5c6499a4d",
  "pattern_id": "c0ffee00-1234-4abc-8def-0123456789ab",
  "fingerprint_id": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
  "path_id": "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d",
  "pattern_name": "FastAPI CRUD Endpoint Pattern",
  "pattern_type": "workflow",
  "pattern_template": {
    "steps": [
      {"action": "rag_query", "query": "FastAPI CRUD {{entity}} best practices"},
      {"action": "generate_code", "template": "onex_effect_crud"},
      {"action": "validate", "checks": ["type_safety", "onex_compliance"]}
    ],
    "placeholders": {
      "entity_name": "string",
      "domain": "string"
    }
  },
  "applicability_criteria": {
    "task_types": ["code_generation"],
    "domains": ["api_development"],
    "technologies": ["fastapi", "pydantic"]
  },
  "validation_criteria": {
    "min_quality_score": 0.85,
    "min_test_coverage": 85
  },
  "estimated_duration_ms": 14200,
  "timestamp": "2025-10-20T18:30:00.123Z"
}"#;

const FAILURE_PATTERN: &str = r#"{
  "event_id": "0b9e4c2a-5f4d-4b8e-9a1c-3d2e1f0a9b8c",
  "correlation_id": "7415f61f-ab2f-4961-97f5-a5f5c6499a4d",
  "failure_id": "deadbeef-0000-4000-8000-000000000001",
  "fingerprint_id": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
  "path_id": "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d",
  "failure_type": "validation_failure",
  "error_category": "type_error",
  "error_message": "Expected str, got int for field 'user_id'",
  "error_stack_trace": "Traceback...",
  "failed_step": {
    "step_number": 4,
    "action": "type_check",
    "tool": "mypy"
  },
  "root_cause": "Inconsistent ID format between legacy and new database records",
  "contributing_factors": ["database_migration_incomplete", "mixed_data_types"],
  "resolution": "Changed product_id field type from str to Union[str, int]",
  "resolution_steps": [
    {"action": "identify_root_cause", "duration_ms": 1200},
    {"action": "update_type_annotations", "files": ["models/product.py"]}
  ],
  "time_to_resolve_ms": 3400,
  "prevention_strategy": {
    "strategy": "Add runtime type coercion in Pydantic validators",
    "automated_fix_possible": true
  },
  "timestamp": "2025-10-20T18:30:00.123Z"
}"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::AnyEvent;

    #[test]
    fn every_example_is_a_valid_event_of_its_topic() {
        for topic in Topic::ALL {
            let e = AnyEvent::decode(topic, json(topic).as_bytes())
                .unwrap_or_else(|e| panic!("{topic}: {e}"));
            assert_eq!(e.topic(), topic);
            assert_eq!(e.event_id(), EVENT_ID);
            let v: serde_json::Value = serde_json::from_str(json(topic)).unwrap();
            assert_eq!(e.partition_key(), v[topic.key_field()].as_str().unwrap());
        }
    }
}
