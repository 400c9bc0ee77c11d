//! JSON Schema (draft 2020-12) of each event type, generated from the Rust types, so that
//! producers in other languages can validate what they send.

use crate::events::{
    AgentAction, CodeQualityMetric, FailurePattern, RouterPerformanceMetric, RoutingDecision,
    SuccessPattern, TaskExecution, Topic, TransformationEvent,
};
use serde_json::Value;

/// The JSON Schema of `topic`'s events, with the topic and its partition-key field as
/// `x-kafka-topic` and `x-partition-key`.
pub fn schema(topic: Topic) -> Value {
    let schema = match topic {
        Topic::AgentActions => schemars::schema_for!(AgentAction),
        Topic::AgentRoutingDecisions => schemars::schema_for!(RoutingDecision),
        Topic::AgentTransformationEvents => schemars::schema_for!(TransformationEvent),
        Topic::RouterPerformanceMetrics => schemars::schema_for!(RouterPerformanceMetric),
        Topic::TaskExecutions => schemars::schema_for!(TaskExecution),
        Topic::CodeQualityMetrics => schemars::schema_for!(CodeQualityMetric),
        Topic::SuccessPatterns => schemars::schema_for!(SuccessPattern),
        Topic::FailurePatterns => schemars::schema_for!(FailurePattern),
        Topic::PatternTemplates => schemars::schema_for!(crate::derived::PatternTemplateEvent),
        Topic::FixSuggestions => schemars::schema_for!(crate::derived::FixSuggestion),
        Topic::AgentAlerts => schemars::schema_for!(crate::alert::AgentAlert),
    };
    let mut value = schema.to_value();
    if let Some(obj) = value.as_object_mut() {
        obj.insert("x-kafka-topic".into(), topic.name().into());
        obj.insert("x-partition-key".into(), topic.key_field().into());
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_topics_have_schemas() {
        let s = crate::derived::schema("pattern-templates").unwrap();
        assert_eq!(s["x-partition-key"], "pattern_id");
        assert!(s["properties"]["pattern_template"].is_object());
        assert!(s["properties"]["version"].is_object());
        let s = crate::derived::schema("fix-suggestions").unwrap();
        assert_eq!(s["x-partition-key"], "signature");
        assert!(crate::derived::schema("agent-actions").is_none());
    }

    #[test]
    fn schemas_describe_the_fields() {
        let s = schema(Topic::AgentRoutingDecisions);
        assert_eq!(s["x-kafka-topic"], "agent-routing-decisions");
        assert_eq!(s["x-partition-key"], "correlation_id");
        assert_eq!(s["additionalProperties"], false);
        let props = &s["properties"];
        assert_eq!(props["confidence_score"]["minimum"], 0);
        assert_eq!(props["confidence_score"]["maximum"], 1);
        let required: Vec<&str> = s["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for f in ["event_id", "correlation_id", "selected_agent", "timestamp"] {
            assert!(required.contains(&f), "{f} not required: {required:?}");
        }
        let a = schema(Topic::AgentActions);
        let text = a.to_string();
        for v in ["tool_call", "decision", "error", "success"] {
            assert!(text.contains(v), "action_type enum lacks {v}");
        }
        for t in Topic::ALL {
            let s = schema(t);
            assert!(s["properties"][t.key_field()].is_object(), "{t}");
        }
    }
}
