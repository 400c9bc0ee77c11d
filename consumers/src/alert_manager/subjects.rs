//! What each rule counts: the subject of an event (a fingerprint or error signature,
//! an agent, an artifact) and the facts an alert shows. Events are keyed by subject on
//! `alert-group-subjects`, so that one member sees every event of a subject.

use super::evaluate::Observation;
use super::rules::{Rule, Rules, Scope};
use agentbus_client::alert::AlertKind;
use agentbus_client::AnyEvent;
use serde_json::json;

/// The subject of `event` when some rule could count it, and the agent it names.
pub fn subject(rules: &Rules, event: &AnyEvent) -> Option<(String, Option<String>)> {
    match event {
        AnyEvent::FailurePattern(f) if rules.of(AlertKind::RepeatedFailure).next().is_some() => {
            let s = match &f.fingerprint_id {
                Some(id) => format!("fingerprint:{id}"),
                None => format!(
                    "signature:{}",
                    crate::pattern_extractor::failures::bucket(f)
                ),
            };
            Some((s, None))
        }
        AnyEvent::Transformation(t)
            if !t.success && rules.of(AlertKind::FailedTransformation).next().is_some() =>
        {
            Some((
                format!("agent:{}", t.target_agent),
                Some(t.target_agent.clone()),
            ))
        }
        AnyEvent::CodeQuality(q)
            if rules
                .of(AlertKind::LowQuality)
                .any(|r| r.scope == Scope::Artifact && q.quality_score < r.threshold) =>
        {
            Some((format!("artifact:{}", q.path_id), None))
        }
        AnyEvent::TaskExecution(e)
            if e.quality_score.is_some()
                && rules
                    .of(AlertKind::LowQuality)
                    .any(|r| r.scope == Scope::Agent) =>
        {
            Some((
                format!("agent:{}", e.agent_name),
                Some(e.agent_name.clone()),
            ))
        }
        _ => None,
    }
}

/// `event` as an observation for `rule`, when it counts for it.
pub fn observe<'a>(rule: &Rule, event: &'a AnyEvent, at: i64) -> Option<Observation<'a>> {
    let (correlation_id, score) = match (rule.kind, event) {
        (AlertKind::RepeatedFailure, AnyEvent::FailurePattern(f)) => {
            (f.correlation_id.as_str(), None)
        }
        (AlertKind::FailedTransformation, AnyEvent::Transformation(t)) if !t.success => {
            (t.correlation_id.as_str(), None)
        }
        (AlertKind::LowQuality, AnyEvent::TaskExecution(e)) if rule.scope == Scope::Agent => {
            (e.correlation_id.as_str(), Some(e.quality_score?))
        }
        (AlertKind::LowQuality, AnyEvent::CodeQuality(q))
            if rule.scope == Scope::Artifact && q.quality_score < rule.threshold =>
        {
            (q.correlation_id.as_str(), None)
        }
        _ => return None,
    };
    Some(Observation {
        at,
        correlation_id,
        score,
    })
}

/// The facts of `event` an alert of `rule` shows, and what happened in a few words
/// (asked only when an incident opens).
pub fn describe(rule: &Rule, event: &AnyEvent) -> (serde_json::Value, String) {
    match event {
        AnyEvent::FailurePattern(f) => (
            json!({
                "failure_id": f.failure_id.as_str(),
                "failure_type": f.failure_type,
                "error_category": f.error_category,
                "error_message": f.error_message,
                "fingerprint_id": f.fingerprint_id.as_ref().map(|i| i.as_str()),
            }),
            f.error_message.clone(),
        ),
        AnyEvent::Transformation(t) => (
            json!({
                "source_agent": t.source_agent,
                "target_agent": t.target_agent,
                "transformation_reason": t.transformation_reason,
                "transformation_duration_ms": t.transformation_duration_ms,
            }),
            format!("{} → {}", t.source_agent, t.target_agent),
        ),
        AnyEvent::TaskExecution(e) => (
            json!({
                "agent_name": e.agent_name,
                "task_type": e.task_type,
                "last_quality_score": e.quality_score,
                "min_events": rule.min_events,
            }),
            format!("{}'s mean quality below {}", e.agent_name, rule.threshold),
        ),
        AnyEvent::CodeQuality(q) => (
            json!({
                "path_id": q.path_id.as_str(),
                "file_path": q.file_path,
                "artifact_type": q.artifact_type,
                "language": q.language,
                "quality_score": q.quality_score,
            }),
            format!("{} scored {}", q.file_path, q.quality_score),
        ),
        _ => (json!({}), String::new()),
    }
}
