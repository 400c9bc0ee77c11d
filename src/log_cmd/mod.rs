//! `agentbus log`: publish one event, the way the seeds' skill scripts do
//! (`/log-routing-decision --agent … --confidence …`), in one short-lived process.
//!
//! Each subcommand builds the event of one topic from flags made from its fields (see
//! [`flags`]; for `routing-decision`, the seeds' own flags), nested fields as JSON, and
//! `--json '{"steps": […]}'` for any, fills in `event_id` and `timestamp`, validates the
//! event and publishes it keyed by the topic's partition key.
//! `agentbus log --topic T --event FILE|-` publishes a whole JSON event instead.
//!
//! The result is the seeds' JSON on stdout (`success`, `event_id`, `topic`, `partition`,
//! `offset`, …) and exit status 0, or `success: false` with the error, a message on
//! stderr and exit status 1. The producer is configured from the seeds' environment
//! (`KAFKA_BROKERS`, `KAFKA_ENABLE_LOGGING`, `DEBUG`, `KAFKA_COMPRESSION`, …); delivery
//! never waits longer than `--timeout-ms`.

mod flags;

use agentbus_client::{AnyEvent, Delivery, Id, ProducerConfig, Timestamp, Topic};
use anyhow::Context as _;
use flags::Kind;
use serde::Serialize;
use serde_json::Value;
use std::io::Read as _;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct LogArgs {
    /// Bootstrap servers, overriding KAFKA_BROKERS (default localhost:9092).
    #[arg(long, global = true, value_name = "HOST:PORT[,…]")]
    bootstrap_server: Option<String>,
    /// Longest wait for the broker's acknowledgement, in milliseconds (env KAFKA_TIMEOUT_MS,
    /// default 5000).
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    timeout_ms: Option<u64>,
    /// Topic of the event given with --event (topic name or subcommand name).
    #[arg(long, requires = "event", value_name = "TOPIC")]
    topic: Option<Topic>,
    /// A whole event as JSON: a file, or `-` for stdin. Validated against the topic's schema.
    #[arg(long, requires = "topic", value_name = "FILE|-")]
    event: Option<String>,
    #[command(subcommand)]
    kind: Option<Kind>,
}

/// The seeds' JSON result.
#[derive(Debug, Serialize)]
struct Outcome<'a> {
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    event_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    partition: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<u64>,
    /// The broker did not take the event within the budget: it waits in the spool.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    spooled: bool,
}

impl Outcome<'_> {
    fn without_error(self) -> Self {
        Outcome {
            error: None,
            ..self
        }
    }

    fn failed(error: String) -> Self {
        Outcome {
            success: false,
            message: None,
            error: Some(error),
            event_id: None,
            topic: None,
            partition: None,
            offset: None,
            latency_ms: None,
            spooled: false,
        }
    }
}

fn emit(outcome: &Outcome<'_>) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(outcome).context("cannot encode the result")?;
    text.push('\n');
    crate::emit(&text)
}

/// Builds the event of a subcommand: its flags, `--json`, the defaults and the generated
/// fields; returns it with the routing latency to report.
fn build(kind: &Kind) -> Result<(AnyEvent, Option<u64>), String> {
    let mut map = kind.fields.clone();
    if let Some(text) = &kind.json {
        let extra =
            serde_json::from_str(text).map_err(|e| format!("--json: not valid JSON: {e}"))?;
        let Value::Object(extra) = extra else {
            return Err("--json: expected a JSON object of event fields".into());
        };
        for (k, v) in extra {
            if map.contains_key(&k) {
                return Err(format!("{k}: given both as a flag and in --json"));
            }
            map.insert(k, v);
        }
    }
    for (field, value) in Kind::defaults(kind.topic) {
        map.entry(field).or_insert(value);
    }
    map.entry("event_id")
        .or_insert_with(|| Value::String(Id::random().0));
    map.entry("timestamp")
        .or_insert_with(|| Value::String(Timestamp::now().0));
    let latency = match kind.topic {
        Topic::AgentRoutingDecisions => map.get("routing_time_ms").and_then(Value::as_u64),
        _ => None,
    };
    let event = AnyEvent::from_value(kind.topic, Value::Object(map)).map_err(|e| e.to_string())?;
    Ok((event, latency))
}

fn read_event(topic: Topic, source: &str) -> Result<AnyEvent, String> {
    let bytes = if source == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot read the event from stdin: {e}"))?;
        buf
    } else {
        std::fs::read(source).map_err(|e| format!("cannot read {source}: {e}"))?
    };
    AnyEvent::decode(topic, &bytes).map_err(|e| e.to_string())
}

/// The broker did not take `event` in time: into the spool, and a success that says so.
fn spool_event(
    event: &AnyEvent,
    spool: &agentbus_client::spool::Spool,
    why: impl std::fmt::Display,
) -> anyhow::Result<()> {
    let topic = event.topic().name();
    let entry = agentbus_client::spool::Entry {
        key: event.partition_key().to_string(),
        value: String::from_utf8(event.to_json().unwrap_or_default()).unwrap_or_default(),
        spooled_at_ms: chrono::Utc::now().timestamp_millis(),
    };
    match spool.append(topic, &entry) {
        Ok(appended) if !appended.written => {
            fail_publish(event, format!(
                "Kafka publish failed: {why}; and the spool is full (AGENTBUS_SPOOL_MAX_BYTES): this agent action was dropped"
            ))
        }
        Ok(appended) => {
            if appended.dropped > 0 {
                eprintln!(
                    "warning: the spool is full (AGENTBUS_SPOOL_MAX_BYTES): dropped the {} oldest agent-actions event(s)",
                    appended.dropped
                );
            }
            let message = format!("{why}; spooled to {}", spool.dir().display());
            emit(
                &Outcome {
                    success: true,
                    message: Some(&message),
                    event_id: Some(event.event_id()),
                    topic: Some(topic),
                    spooled: true,
                    ..Outcome::failed(String::new())
                }
                .without_error(),
            )
        }
        Err(s) => {
            fail_publish(event, format!("Kafka publish failed: {why}; and spooling failed: {s}"))
        }
    }
}

/// Most spooled events one `agentbus log` call delivers once the broker answers (about
/// 50 ms of work at the spool's drain rate).
const SPOOL_DRAIN_PER_CALL: usize = 1000;

/// Whether any topic has spooled events waiting (reads no entry).
fn spool_waits(spool: &agentbus_client::spool::Spool) -> bool {
    spool
        .topics()
        .is_ok_and(|topics| topics.iter().any(|t| spool.has_backlog(t).unwrap_or(false)))
}

/// The spool and the budget before an event goes to it: `AGENTBUS_SPOOL=off` turns it
/// off (then a call waits up to KAFKA_TIMEOUT_MS and fails); `KAFKA_SPOOL_AFTER_MS`
/// (50) is the budget.
fn spool_budget() -> Option<(agentbus_client::spool::Spool, Duration)> {
    let off = std::env::var("AGENTBUS_SPOOL").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "off" | "false" | "0" | "no"
        )
    });
    if off {
        return None;
    }
    let budget = match std::env::var("KAFKA_SPOOL_AFTER_MS") {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(ms) if ms > 0 => ms,
            _ => {
                eprintln!("warning: KAFKA_SPOOL_AFTER_MS={v:?}: expected at least 1 ms; using 50");
                50
            }
        },
        Err(_) => 50,
    };
    let mut spool = crate::spool_cmd::spool(None);
    if let Ok(v) = std::env::var("AGENTBUS_SPOOL_MAX_BYTES") {
        match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => spool = spool.with_max_bytes(n),
            _ => eprintln!(
                "warning: AGENTBUS_SPOOL_MAX_BYTES={v:?}: expected a number of bytes; using 268435456"
            ),
        }
    }
    Some((spool, Duration::from_millis(budget)))
}

/// A publish of `event` failed: the result names the event id it tried (a retry with
/// `--event-id` is deduplicated downstream) and its topic.
fn fail_publish(event: &AnyEvent, error: String) -> anyhow::Result<()> {
    emit(&Outcome {
        event_id: Some(event.event_id()),
        topic: Some(event.topic().name()),
        ..Outcome::failed(error.clone())
    })?;
    Err(anyhow::anyhow!(error))
}

/// Reports a failure the seeds' way (JSON on stdout) and as the command's error.
fn fail(error: String) -> anyhow::Result<()> {
    emit(&Outcome::failed(error.clone()))?;
    Err(anyhow::anyhow!(error))
}

pub(crate) async fn run(args: LogArgs) -> anyhow::Result<()> {
    let mut config = ProducerConfig::from_env();
    // Settings that make no sense never stop an agent's call: say so and go on.
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    // One event, then exit: an idempotent producer would leave the cluster a producer id
    // to keep for hours per call (KIP-854); the event id is the dedup key.
    config.idempotent = false;
    if let Some(b) = args.bootstrap_server {
        config.brokers = b;
    }
    if let Some(ms) = args.timeout_ms {
        config.timeout = Duration::from_millis(ms);
    }
    config.client_id = "agentbus-log".into();
    // One event, then exit: batching can only delay it. Connect to the learned brokers at
    // once rather than on demand (see `Producer::connect`).
    config.linger_ms = 0;
    config
        .extra
        .push(("enable.sparse.connections".into(), "false".into()));

    let built = match (&args.kind, args.topic, &args.event) {
        (Some(kind), _, _) => build(kind),
        (None, Some(topic), Some(source)) => read_event(topic, source).map(|e| (e, None)),
        _ => Err("give a subcommand (e.g. `log routing-decision …`) or --topic and --event".into()),
    };
    let (event, latency_ms) = match built {
        Ok(b) => b,
        Err(e) => return fail(e),
    };

    if !config.enable_logging {
        return emit(&Outcome {
            success: true,
            message: Some("Kafka logging disabled (KAFKA_ENABLE_LOGGING=false)"),
            error: None,
            event_id: None,
            topic: None,
            partition: None,
            offset: None,
            latency_ms: None,
            spooled: false,
        });
    }

    let spool = spool_budget();
    let debug = config.debug;
    let timeout = config.timeout;
    let started = Instant::now();
    let producer = match agentbus_client::Producer::new(config) {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()),
    };
    let topic_name = event.topic().name();
    // With the spool on, the agent waits at most its budget, then the spool write.
    let wait = spool.as_ref().map_or(timeout, |(_, budget)| *budget);
    let timed_out = || agentbus_client::PublishError::Timeout {
        brokers: producer.config().brokers.clone(),
        timeout_ms: timeout.as_millis(),
        last: None,
    };
    let mut result = match tokio::time::timeout(wait, producer.connect(Some(topic_name))).await {
        Ok(r) => r.map(|_| None),
        Err(_) => Err(timed_out()),
    };
    // Spooled events go before this one (bounded work, so this call stays fast); while
    // this topic still has a backlog, the event joins it rather than overtake it.
    let mut behind_backlog = false;
    if let (Ok(_), Some((spool, _))) = (&result, &spool) {
        if spool_waits(spool) {
            match crate::spool_cmd::drain(&producer, spool, SPOOL_DRAIN_PER_CALL, timeout).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("delivered {n} spooled event(s)"),
                Err(e) => tracing::warn!("spooled events wait: {e}"),
            }
            behind_backlog = spool.read(topic_name).is_ok_and(|c| !c.entries.is_empty());
        }
    }
    if result.is_ok() && !behind_backlog {
        result =
            match tokio::time::timeout(wait, async { producer.enqueue_any(&event)?.wait().await })
                .await
            {
                Ok(r) => r,
                Err(_) => Err(timed_out()),
            };
    }
    // The event is acknowledged (or failed) and nothing else is queued: skip librdkafka's
    // orderly shutdown (which waits for its polling thread) since the process ends now.
    std::mem::forget(producer);

    match result {
        Ok(Some(Delivery {
            topic,
            partition,
            offset,
        })) => {
            if debug {
                eprintln!(
                    "✅ Published {} to Kafka\n   Topic: {topic}\n   Partition: {partition}\n   Offset: {offset}\n   Key: {}\n   Time: {:.1} ms",
                    event.topic().command().replace('-', " "),
                    event.partition_key(),
                    started.elapsed().as_secs_f64() * 1e3,
                );
            }
            emit(&Outcome {
                success: true,
                message: None,
                error: None,
                event_id: Some(event.event_id()),
                topic: Some(&topic),
                partition: Some(partition),
                offset: Some(offset),
                latency_ms,
                spooled: false,
            })
        }
        Ok(None) if behind_backlog => match &spool {
            Some((spool, _)) => spool_event(
                &event,
                spool,
                "older events of this topic are still spooled, and this one goes after them",
            ),
            None => fail("the producer is disabled".into()),
        },
        Ok(None) => fail("the producer is disabled".into()),
        Err(e) => match &spool {
            Some((spool, budget)) => spool_event(
                &event,
                spool,
                format!(
                    "the broker did not take the event within {} ms ({e})",
                    budget.as_millis()
                ),
            ),
            None => fail_publish(&event, format!("Kafka publish failed: {e}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        log: LogArgs,
    }

    fn event(args: &[&str]) -> Result<AnyEvent, String> {
        let mut all = vec!["log"];
        all.extend_from_slice(args);
        let cli = Cli::try_parse_from(all).map_err(|e| e.to_string())?;
        build(cli.log.kind.as_ref().ok_or("no subcommand")?).map(|(e, _)| e)
    }

    const CID: &str = "7415f61f-ab2f-4961-97f5-a5f5c6499a4d";

    /// Every field of every topic is a flag: each seeds example, given field by field as
    /// flags (nested values as JSON), comes back as the same event.
    #[test]
    fn every_field_is_a_flag() {
        for topic in Topic::ALL {
            let example: Value =
                serde_json::from_str(agentbus_client::examples::json(topic)).unwrap();
            let mut args = vec![topic.command().to_string()];
            for (field, value) in example.as_object().unwrap() {
                args.push(format!("--{}", field.replace('_', "-")));
                args.push(match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let built = event(&args).unwrap_or_else(|e| panic!("{topic}: {e}"));
            let want = AnyEvent::from_value(topic, example).unwrap();
            assert_eq!(built, want, "{topic}");
        }
    }

    #[test]
    fn routing_decision_from_the_seeds_flags() {
        let e = event(&[
            "routing-decision",
            "--agent",
            "agent-performance",
            "--confidence",
            "0.9",
            "--strategy",
            "test",
            "--latency-ms",
            "50",
            "--user-request",
            "test request",
            "--reasoning",
            "test",
            "--correlation-id",
            CID,
            "--alternatives",
            r#"[{"agent_name": "agent-debug", "confidence_score": 0.7, "reason": "r"}]"#,
            // A global flag after the subcommand's own.
            "--timeout-ms",
            "100",
        ])
        .unwrap();
        let AnyEvent::RoutingDecision(r) = e else {
            panic!("{e:?}")
        };
        assert_eq!(r.selected_agent, "agent-performance");
        assert_eq!(r.confidence_score, 0.9);
        assert_eq!(r.routing_time_ms, 50);
        assert_eq!(r.alternatives.len(), 1);
        assert_eq!(r.correlation_id.as_str(), CID);
        assert!(r.event_id.check("event_id").is_ok());
    }

    #[test]
    fn errors_name_the_field() {
        let base = [
            "routing-decision",
            "--agent",
            "a",
            "--strategy",
            "s",
            "--latency-ms",
            "1",
            "--user-request",
            "u",
            "--reasoning",
            "r",
        ];
        let with = |extra: &[&str]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            event(&v).unwrap_err()
        };
        assert_eq!(
            with(&["--confidence", "1.5", "--correlation-id", CID]),
            "confidence_score: 1.5 is outside 0..=1"
        );
        assert!(with(&["--confidence", "0.5", "--correlation-id", "nope"])
            .starts_with("correlation_id: \"nope\" is not a UUID"));
        let alt = with(&[
            "--confidence",
            "0.5",
            "--correlation-id",
            CID,
            "--alternatives",
            r#"[{"agent_name": "x", "confidence_score": 2}]"#,
        ]);
        assert_eq!(alt, "alternatives[0].confidence_score: 2 is outside 0..=1");
    }

    #[test]
    fn nested_fields_come_from_json() {
        let e = event(&[
            "success-pattern",
            "--pattern-id",
            CID,
            "--pattern-name",
            "p",
            "--pattern-type",
            "workflow",
            "--correlation-id",
            CID,
        ])
        .unwrap_err();
        assert_eq!(e, "pattern_template: is required");
        let ok = event(&[
            "success-pattern",
            "--pattern-id",
            CID,
            "--pattern-name",
            "p",
            "--pattern-type",
            "workflow",
            "--correlation-id",
            CID,
            "--json",
            r#"{"pattern_template": {"steps": [{"action": "rag_query", "query": "q"}]}}"#,
        ])
        .unwrap();
        assert_eq!(ok.topic(), Topic::SuccessPatterns);
        let action = event(&[
            "action",
            "--agent-name",
            "a",
            "--action-type",
            "lookup",
            "--action-name",
            "Read",
            "--correlation-id",
            CID,
        ])
        .unwrap_err();
        assert!(
            action.contains("invalid value 'lookup' for '--action-type <ACTION_TYPE>'")
                && action.contains("[possible values: tool_call, decision, error, success]"),
            "{action}"
        );
        let both = event(&[
            "task-execution",
            "--fingerprint-id",
            CID,
            "--task-hash",
            "h",
            "--original-prompt",
            "p",
            "--task-type",
            "t",
            "--agent-name",
            "a",
            "--success",
            "true",
            "--total-duration-ms",
            "5",
            "--correlation-id",
            CID,
            "--json",
            r#"{"task_hash": "x"}"#,
        ])
        .unwrap_err();
        assert_eq!(both, "task_hash: given both as a flag and in --json");
    }
}
