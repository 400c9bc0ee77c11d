//! The alert-manager under test: events with known subjects and times, the model of
//! the alerts they must give (computed here, independently of the evaluator), the
//! process, and `agent-alerts` read back.
#![allow(dead_code)]

use super::db_writer::{self as dbw, Consumer, Kind};
use agentbus_client::{examples, Topic};
use rdkafka::message::Message;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// The rules of the tests: small windows, cool-downs longer than any test.
pub const RULES: &str = r#"
[[rule]]
name = "repeated-failures"
kind = "repeated_failure"
severity = "critical"
threshold = 3
window = "5s"
cooldown = "10m"

[[rule]]
name = "failed-transformations"
kind = "failed_transformation"
severity = "warning"
window = "5s"
cooldown = "10m"

[[rule]]
name = "low-quality"
kind = "low_quality"
severity = "error"
threshold = 0.7
window = "5s"
cooldown = "10m"

[[rule]]
name = "low-agent-quality"
kind = "low_quality"
scope = "agent"
severity = "warning"
threshold = 0.7
min_events = 5
window = "5s"
cooldown = "10m"
"#;

pub const WINDOW_MS: i64 = 5_000;

/// What an event is about, for the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    Failure { fingerprint: String },
    Transformation { agent: String, success: bool },
    Quality { path: String, score: f64 },
    Execution { agent: String, score: f64 },
}

/// One event to produce: the record and its fact.
#[derive(Debug, Clone)]
pub struct Sent {
    pub event: dbw::Event,
    pub fact: Fact,
    pub at: i64,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn uuid(a: u32, b: u64) -> String {
    format!("{a:08x}-0000-4000-8000-{b:012x}")
}

/// Event `i` of run `run` with `fact` at `at`; keyed by its subject, so that a subject's
/// events keep their order.
pub fn event(run: u32, i: u64, fact: Fact, at: i64) -> Sent {
    let (topic, key) = match &fact {
        Fact::Failure { fingerprint } => (Topic::FailurePatterns, fingerprint.clone()),
        Fact::Transformation { agent, .. } => (Topic::AgentTransformationEvents, agent.clone()),
        Fact::Quality { path, .. } => (Topic::CodeQualityMetrics, path.clone()),
        Fact::Execution { agent, .. } => (Topic::TaskExecutions, agent.clone()),
    };
    let mut v: Value = serde_json::from_str(examples::json(topic)).unwrap();
    v["event_id"] = uuid(run, i).into();
    v["correlation_id"] = uuid(run + 1, i).into();
    v["timestamp"] = rfc3339(at).into();
    match &fact {
        Fact::Failure { fingerprint } => {
            v["failure_id"] = uuid(run + 2, i).into();
            v["fingerprint_id"] = fingerprint.clone().into();
            v["error_message"] = format!("Connection to db-{i} timed out").into();
        }
        Fact::Transformation { agent, success } => {
            v["target_agent"] = agent.clone().into();
            v["success"] = (*success).into();
        }
        Fact::Quality { path, score } => {
            v["path_id"] = path.clone().into();
            v["quality_score"] = (*score).into();
        }
        Fact::Execution { agent, score } => {
            v["agent_name"] = agent.clone().into();
            v["quality_score"] = (*score).into();
        }
    }
    Sent {
        event: dbw::Event {
            topic,
            key,
            value: serde_json::to_vec(&v).unwrap(),
            id: uuid(run, i),
            kind: Kind::Good,
        },
        fact,
        at,
    }
}

/// Clusters of events starting at `t0`: fingerprints with 0 to 5 failures (those with
/// 4 or 5 fire), agents with failed and good transformations, artifacts with scores
/// above and below 0.7. Each subject's events fall within 3 s.
pub fn stream(run: u32, t0: i64) -> Vec<Sent> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut next = |fact: Fact, at: i64, out: &mut Vec<Sent>| {
        out.push(event(run, i, fact, at));
        i += 1;
    };
    for f in 0..30u64 {
        let fingerprint = uuid(run + 10, f);
        for k in 0..(f % 6) {
            let fact = Fact::Failure {
                fingerprint: fingerprint.clone(),
            };
            next(fact, t0 + (f as i64 * 37) % 1000 + k as i64 * 400, &mut out);
        }
    }
    for a in 0..12u64 {
        let agent = format!("agent-{run}-{a}");
        for k in 0..4u64 {
            let success = (a + k) % 3 != 0 || a % 4 == 0;
            let fact = Fact::Transformation {
                agent: agent.clone(),
                success,
            };
            next(fact, t0 + a as i64 * 50 + k as i64 * 500, &mut out);
        }
    }
    for p in 0..20u64 {
        let path = uuid(run + 20, p);
        for k in 0..3u64 {
            let score = if (p + k) % 5 == 0 { 0.42 } else { 0.91 };
            let fact = Fact::Quality {
                path: path.clone(),
                score,
            };
            next(fact, t0 + p as i64 * 20 + k as i64 * 700, &mut out);
        }
    }
    // Agents with six scored executions: the even ones' mean is 0.5 (fires at the
    // fifth), the odd ones' 0.9.
    for a in 0..8u64 {
        let agent = format!("exec-agent-{run}-{a}");
        for k in 0..6u64 {
            let score = if a % 2 == 0 { 0.5 } else { 0.9 };
            let fact = Fact::Execution {
                agent: agent.clone(),
                score,
            };
            next(fact, t0 + a as i64 * 30 + k as i64 * 300, &mut out);
        }
    }
    out
}

/// An alert as the model and the topic both describe it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expected {
    pub dedup_key: String,
    pub action: String,
    pub rule: String,
    pub severity: String,
    pub occurrences: u64,
}

/// The alerts `sent` must give once every incident has resolved (each subject's
/// events within one window, cool-downs longer than the test).
pub fn model(sent: &[Sent]) -> BTreeSet<Expected> {
    let mut by_subject: BTreeMap<(String, String, String), Vec<i64>> = BTreeMap::new();
    for s in sent {
        let (rule, severity, subject) = match &s.fact {
            Fact::Failure { fingerprint } => (
                "repeated-failures",
                "critical",
                format!("fingerprint:{fingerprint}"),
            ),
            Fact::Transformation { agent, success } if !success => (
                "failed-transformations",
                "warning",
                format!("agent:{agent}"),
            ),
            Fact::Quality { path, score } if *score < 0.7 => {
                ("low-quality", "error", format!("artifact:{path}"))
            }
            Fact::Execution { agent, score } if *score < 0.7 => {
                ("low-agent-quality", "warning", format!("agent:{agent}"))
            }
            _ => continue,
        };
        by_subject
            .entry((rule.to_string(), severity.to_string(), subject))
            .or_default()
            .push(s.at);
    }
    let mut out = BTreeSet::new();
    for ((rule, severity, subject), times) in by_subject {
        let needed = match rule.as_str() {
            "repeated-failures" => 4,
            // The mean counts from the fifth score (every score of these agents is low).
            "low-agent-quality" => 5,
            _ => 1,
        };
        if times.len() < needed {
            continue;
        }
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "in order per subject"
        );
        assert!(times[times.len() - 1] - times[0] < WINDOW_MS);
        let key = format!("agentbus/{rule}/{subject}/{}", times[0]);
        out.insert(Expected {
            dedup_key: key.clone(),
            action: "trigger".into(),
            rule: rule.clone(),
            severity: severity.clone(),
            occurrences: needed as u64,
        });
        out.insert(Expected {
            dedup_key: key,
            action: "resolve".into(),
            rule,
            severity,
            occurrences: times.len() as u64,
        });
    }
    out
}

/// `agent-alerts` read back (read_committed): every record, in no particular order.
pub fn read_alerts(bootstrap: &str, expected: usize) -> Vec<Value> {
    let consumer = super::consumer(bootstrap, &[("isolation.level", "read_committed")]);
    let messages = super::consume_all(&consumer, "agent-alerts", 6, expected);
    messages
        .iter()
        .map(|m| serde_json::from_slice(m.payload().unwrap()).unwrap())
        .collect()
}

/// An alert record as [`Expected`].
pub fn expected_of(v: &Value) -> Expected {
    Expected {
        dedup_key: v["dedup_key"].as_str().unwrap().to_string(),
        action: v["action"].as_str().unwrap().to_string(),
        rule: v["rule"].as_str().unwrap().to_string(),
        severity: v["severity"].as_str().unwrap().to_string(),
        occurrences: v["occurrences"].as_u64().unwrap(),
    }
}

/// Starts `agentbus consume alert-manager` with the test rules written to `dir`.
pub fn spawn(bootstrap: &str, dir: &std::path::Path, env: &[(&str, &str)]) -> Consumer {
    let rules = dir.join("rules.toml");
    std::fs::write(&rules, RULES).unwrap();
    let rules = rules.to_string_lossy().into_owned();
    let mut all = vec![
        ("ALERT_RULES", rules.as_str()),
        ("START_FROM", "earliest"),
        ("INSTANCE_ID", "test"),
    ];
    all.extend_from_slice(env);
    Consumer::spawn_group("alert-manager", bootstrap, &all)
}

/// Polls `done` for up to `secs`, showing `context` on a timeout.
pub async fn wait(what: &str, secs: u64, done: impl Fn() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
