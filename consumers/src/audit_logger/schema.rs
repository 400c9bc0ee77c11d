//! The archive's rows: the Kafka coordinates, the record as received, and typed
//! columns of the seeds' scalar fields per topic (README, "audit-logger"). The Parquet
//! schema is built from this one table; a test pins it.

use crate::dlq::DeadLetter;
use crate::sink::Record;
use agentbus_client::{AnyEvent, Topic};

/// The type of a typed column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// UTF-8 text.
    Text,
    /// A 64-bit integer.
    Int,
    /// A double.
    Float,
    /// A boolean.
    Bool,
}

/// A typed column's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text.
    Text(String),
    /// An integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

/// The typed columns of `topic`, after the common ones.
pub fn typed_columns(topic: Topic) -> &'static [(&'static str, Kind)] {
    use Kind::*;
    match topic {
        Topic::AgentActions => &[
            ("agent_name", Text),
            ("action_type", Text),
            ("action_name", Text),
            ("duration_ms", Int),
        ],
        Topic::AgentRoutingDecisions => &[
            ("selected_agent", Text),
            ("routing_strategy", Text),
            ("confidence_score", Float),
            ("routing_time_ms", Int),
        ],
        Topic::AgentTransformationEvents => &[
            ("source_agent", Text),
            ("target_agent", Text),
            ("success", Bool),
            ("transformation_duration_ms", Int),
        ],
        Topic::RouterPerformanceMetrics => &[
            ("trigger_match_strategy", Text),
            ("cache_hit", Bool),
            ("candidates_evaluated", Int),
            ("routing_duration_ms", Int),
        ],
        Topic::TaskExecutions => &[
            ("fingerprint_id", Text),
            ("task_type", Text),
            ("agent_name", Text),
            ("success", Bool),
            ("quality_score", Float),
            ("total_duration_ms", Int),
        ],
        Topic::CodeQualityMetrics => &[
            ("path_id", Text),
            ("file_path", Text),
            ("language", Text),
            ("quality_score", Float),
        ],
        Topic::SuccessPatterns => &[
            ("pattern_id", Text),
            ("pattern_name", Text),
            ("pattern_type", Text),
        ],
        Topic::FailurePatterns => &[
            ("failure_id", Text),
            ("failure_type", Text),
            ("error_category", Text),
        ],
        // Not archived: the audit-logger reads the eight topics.
        Topic::PatternTemplates | Topic::FixSuggestions | Topic::AgentAlerts => &[],
    }
}

fn text(s: &str) -> Option<Cell> {
    Some(Cell::Text(s.to_string()))
}

fn int(v: u64) -> Option<Cell> {
    Some(Cell::Int(i64::try_from(v).unwrap_or(i64::MAX)))
}

/// The typed cells of `event`, in [`typed_columns`]' order.
pub fn typed_cells(event: &AnyEvent) -> Vec<Option<Cell>> {
    match event {
        AnyEvent::AgentAction(e) => vec![
            text(&e.agent_name),
            serde_json::to_value(e.action_type)
                .ok()
                .and_then(|v| v.as_str().and_then(text)),
            text(&e.action_name),
            e.duration_ms.and_then(int),
        ],
        AnyEvent::RoutingDecision(e) => vec![
            text(&e.selected_agent),
            text(&e.routing_strategy),
            Some(Cell::Float(e.confidence_score)),
            int(e.routing_time_ms),
        ],
        AnyEvent::Transformation(e) => vec![
            text(&e.source_agent),
            text(&e.target_agent),
            Some(Cell::Bool(e.success)),
            int(e.transformation_duration_ms),
        ],
        AnyEvent::RouterMetric(e) => vec![
            text(&e.trigger_match_strategy),
            Some(Cell::Bool(e.cache_hit)),
            int(u64::from(e.candidates_evaluated)),
            int(e.routing_duration_ms),
        ],
        AnyEvent::TaskExecution(e) => vec![
            text(e.fingerprint_id.as_str()),
            text(&e.task_type),
            text(&e.agent_name),
            Some(Cell::Bool(e.success)),
            e.quality_score.map(Cell::Float),
            int(e.total_duration_ms),
        ],
        AnyEvent::CodeQuality(e) => vec![
            text(e.path_id.as_str()),
            text(&e.file_path),
            text(&e.language),
            Some(Cell::Float(e.quality_score)),
        ],
        AnyEvent::SuccessPattern(e) => vec![
            text(e.pattern_id.as_str()),
            text(&e.pattern_name),
            text(&e.pattern_type),
        ],
        AnyEvent::FailurePattern(e) => vec![
            text(e.failure_id.as_str()),
            text(&e.failure_type),
            e.error_category.as_deref().and_then(text),
        ],
        AnyEvent::PatternTemplate(_) | AnyEvent::FixSuggestion(_) | AnyEvent::Alert(_) => vec![],
    }
}

/// One archived record.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Source offset.
    pub offset: i64,
    /// The record timestamp (ms), when it has one.
    pub timestamp: Option<i64>,
    /// `CreateTime`, `LogAppendTime` or `NoTimestamp`.
    pub timestamp_type: &'static str,
    /// The record key.
    pub key: Option<Vec<u8>>,
    /// The record headers.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// `event_id`, when the value is a valid event.
    pub event_id: Option<String>,
    /// `correlation_id`, likewise.
    pub correlation_id: Option<String>,
    /// The event's own timestamp (ms), likewise.
    pub event_timestamp: Option<i64>,
    /// The value exactly as received.
    pub value: Option<Vec<u8>>,
    /// Why the value is not a valid event (`VALIDATE: …`), for the ones that are not.
    pub error: Option<String>,
    /// The typed cells, in [`typed_columns`]' order (all empty for an invalid value).
    pub typed: Vec<Option<Cell>>,
}

impl Row {
    /// A valid record.
    pub fn of(r: &Record) -> Self {
        Self {
            offset: r.offset,
            timestamp: r.timestamp,
            timestamp_type: r.timestamp_type,
            key: r.key.clone(),
            headers: r.headers.clone(),
            event_id: Some(r.event.event_id().to_string()),
            correlation_id: Some(correlation_id(&r.event).to_string()),
            event_timestamp: r.event.timestamp_millis(),
            value: Some(r.json.clone().into_bytes()),
            error: None,
            typed: typed_cells(&r.event),
        }
    }

    /// A record that failed to decode or validate: kept as it came, with the reason.
    pub fn of_dead(d: &DeadLetter, columns: usize) -> Self {
        Self {
            offset: d.offset,
            timestamp: d.timestamp,
            timestamp_type: d.timestamp_type,
            key: d.key.clone(),
            headers: d.headers.clone(),
            event_id: None,
            correlation_id: None,
            event_timestamp: None,
            value: d.value.clone(),
            error: Some(format!("{}: {}", d.stage.as_str(), d.message)),
            typed: vec![None; columns],
        }
    }
}

fn correlation_id(e: &AnyEvent) -> &str {
    match e {
        AnyEvent::AgentAction(e) => e.correlation_id.as_str(),
        AnyEvent::RoutingDecision(e) => e.correlation_id.as_str(),
        AnyEvent::Transformation(e) => e.correlation_id.as_str(),
        AnyEvent::RouterMetric(e) => e.correlation_id.as_str(),
        AnyEvent::TaskExecution(e) => e.correlation_id.as_str(),
        AnyEvent::CodeQuality(e) => e.correlation_id.as_str(),
        AnyEvent::SuccessPattern(e) => e.correlation_id.as_str(),
        AnyEvent::FailurePattern(e) => e.correlation_id.as_str(),
        AnyEvent::PatternTemplate(e) => e.correlation_id.as_str(),
        AnyEvent::FixSuggestion(e) => e.correlation_id.as_str(),
        AnyEvent::Alert(e) => e.correlation_id.as_str(),
    }
}

/// The Parquet schema of `topic`'s files (message type text).
pub fn message_type(topic: Topic) -> String {
    let mut fields = vec![
        "REQUIRED BYTE_ARRAY topic (STRING);".to_string(),
        "REQUIRED INT32 partition;".into(),
        "REQUIRED INT64 offset;".into(),
        "OPTIONAL INT64 timestamp (TIMESTAMP(MILLIS,true));".into(),
        "REQUIRED BYTE_ARRAY timestamp_type (STRING);".into(),
        "OPTIONAL BYTE_ARRAY key;".into(),
        "REPEATED GROUP headers { REQUIRED BYTE_ARRAY name (STRING); OPTIONAL BYTE_ARRAY value; }"
            .into(),
        "OPTIONAL BYTE_ARRAY event_id (STRING);".into(),
        "OPTIONAL BYTE_ARRAY correlation_id (STRING);".into(),
        "OPTIONAL INT64 event_timestamp (TIMESTAMP(MILLIS,true));".into(),
        "OPTIONAL BYTE_ARRAY value;".into(),
        "OPTIONAL BYTE_ARRAY error (STRING);".into(),
    ];
    for (name, kind) in typed_columns(topic) {
        let t = match kind {
            Kind::Text => "BYTE_ARRAY",
            Kind::Int => "INT64",
            Kind::Float => "DOUBLE",
            Kind::Bool => "BOOLEAN",
        };
        let logical = if *kind == Kind::Text { " (STRING)" } else { "" };
        fields.push(format!("OPTIONAL {t} {name}{logical};"));
    }
    format!("message agentbus_audit {{ {} }}", fields.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentbus_client::examples;

    #[test]
    fn every_topic_has_as_many_cells_as_columns_of_the_right_kind() {
        for topic in Topic::ALL {
            let e = AnyEvent::decode(topic, examples::json(topic).as_bytes()).unwrap();
            let cells = typed_cells(&e);
            let columns = typed_columns(topic);
            assert_eq!(cells.len(), columns.len(), "{topic}");
            for (cell, (name, kind)) in cells.iter().zip(columns) {
                let ok = matches!(
                    (cell, kind),
                    (None, _)
                        | (Some(Cell::Text(_)), Kind::Text)
                        | (Some(Cell::Int(_)), Kind::Int)
                        | (Some(Cell::Float(_)), Kind::Float)
                        | (Some(Cell::Bool(_)), Kind::Bool)
                );
                assert!(ok, "{topic}.{name}: {cell:?} is not {kind:?}");
            }
            parquet::schema::parser::parse_message_type(&message_type(topic)).unwrap();
        }
    }
}
