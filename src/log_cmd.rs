//! `agentbus log`: publish one event, the way the seeds' skill scripts do
//! (`/log-routing-decision --agent … --confidence …`), in one short-lived process.
//!
//! Each subcommand builds the event of one topic from flags named after its scalar fields
//! (for `routing-decision`, the seeds' own flags), takes nested fields as JSON (`--json
//! '{"steps": […]}'`, and `--alternatives` for routing decisions), fills in `event_id` and
//! `timestamp`, validates the event and publishes it keyed by the topic's partition key.
//! `agentbus log --topic T --event FILE|-` publishes a whole JSON event instead.
//!
//! The result is the seeds' JSON on stdout (`success`, `event_id`, `topic`, `partition`,
//! `offset`, …) and exit status 0, or `success: false` with the error, a message on
//! stderr and exit status 1. The producer is configured from the seeds' environment
//! (`KAFKA_BROKERS`, `KAFKA_ENABLE_LOGGING`, `DEBUG`, `KAFKA_COMPRESSION`, …); delivery
//! never waits longer than `--timeout-ms`.

use agentbus_client::{AnyEvent, Delivery, Id, ProducerConfig, Timestamp, Topic};
use anyhow::Context as _;
use serde::Serialize;
use serde_json::{Map, Value};
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

#[derive(Debug, clap::Subcommand)]
enum Kind {
    /// An agent action (topic agent-actions).
    Action(ActionArgs),
    /// A routing decision (topic agent-routing-decisions), as /log-routing-decision.
    RoutingDecision(RoutingArgs),
    /// A polymorphic agent transformation (topic agent-transformation-events).
    Transformation(TransformationArgs),
    /// Router performance (topic router-performance-metrics).
    RouterMetrics(RouterMetricsArgs),
    /// A task execution (topic task-executions).
    TaskExecution(TaskExecutionArgs),
    /// Code quality of an artifact (topic code-quality-metrics).
    CodeQuality(CodeQualityArgs),
    /// A success pattern (topic success-patterns).
    SuccessPattern(SuccessPatternArgs),
    /// A failure pattern (topic failure-patterns).
    FailurePattern(FailurePatternArgs),
}

/// Flags every subcommand has.
#[derive(Debug, clap::Args, Serialize)]
struct Common {
    /// Correlation ID (UUID) shared by the events of one request.
    #[arg(long)]
    correlation_id: String,
    /// Event ID (UUID); a random one by default.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<String>,
    /// Event time (RFC 3339); now by default.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    /// Further fields as a JSON object, for nested ones (e.g. '{"steps": [...]}').
    #[arg(long, value_name = "JSON")]
    #[serde(skip)]
    json: Option<String>,
}

#[derive(Debug, clap::Args, Serialize)]
struct RoutingArgs {
    /// Selected agent name.
    #[arg(long)]
    #[serde(rename = "selected_agent")]
    agent: String,
    /// Confidence score (0.0-1.0).
    #[arg(long)]
    #[serde(rename = "confidence_score")]
    confidence: f64,
    /// Routing strategy used.
    #[arg(long)]
    #[serde(rename = "routing_strategy")]
    strategy: String,
    /// Routing latency in ms.
    #[arg(long)]
    #[serde(rename = "routing_time_ms")]
    latency_ms: u64,
    /// Original user request.
    #[arg(long)]
    user_request: String,
    /// Why this agent was selected.
    #[arg(long)]
    reasoning: String,
    /// JSON array of alternatives ([{"agent_name", "confidence_score", "reason"}, …]).
    #[arg(long, value_name = "JSON")]
    #[serde(skip)]
    alternatives: Option<String>,
    #[command(flatten)]
    #[serde(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args, Serialize)]
struct ActionArgs {
    /// Agent name.
    #[arg(long, alias = "agent")]
    agent_name: String,
    /// tool_call, decision, error or success.
    #[arg(long)]
    action_type: String,
    /// Action name (e.g. Read, Write, route_to_agent).
    #[arg(long)]
    action_name: String,
    /// Duration in ms.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    /// Debug mode (true/false).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    debug_mode: Option<bool>,
    #[command(flatten)]
    #[serde(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args, Serialize)]
struct TransformationArgs {
    /// Agent before the transformation.
    #[arg(long)]
    source_agent: String,
    /// Agent after it.
    #[arg(long)]
    target_agent: String,
    /// Why.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    transformation_reason: Option<String>,
    /// Confidence score (0.0-1.0).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    confidence_score: Option<f64>,
    /// Duration in ms.
    #[arg(long)]
    transformation_duration_ms: u64,
    /// Whether it succeeded (true/false).
    #[arg(long)]
    success: bool_arg::Bool,
    #[command(flatten)]
    #[serde(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args, Serialize)]
struct RouterMetricsArgs {
    /// The query routed.
    #[arg(long)]
    query_text: String,
    /// Routing duration in ms.
    #[arg(long)]
    routing_duration_ms: u64,
    /// Whether the cache answered (true/false).
    #[arg(long)]
    cache_hit: bool_arg::Bool,
    /// Trigger-matching strategy.
    #[arg(long)]
    trigger_match_strategy: String,
    /// Candidates evaluated.
    #[arg(long)]
    candidates_evaluated: u32,
    #[command(flatten)]
    #[serde(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args, Serialize)]
struct TaskExecutionArgs {
    /// Task fingerprint (UUID); the partition key.
    #[arg(long)]
    fingerprint_id: String,
    /// Task hash.
    #[arg(long)]
    task_hash: String,
    /// The original prompt.
    #[arg(long)]
    original_prompt: String,
    /// Task type (e.g. code_generation).
    #[arg(long)]
    task_type: String,
    /// Domain.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<String>,
    /// Agent name.
    #[arg(long, alias = "agent")]
    agent_name: String,
    /// Whether it succeeded (true/false).
    #[arg(long)]
    success: bool_arg::Bool,
    /// Quality score (0.0-1.0).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    quality_score: Option<f64>,
    /// Complexity score (0.0-1.0).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    complexity_score: Option<f64>,
    /// Total duration in ms.
    #[arg(long)]
    total_duration_ms: u64,
    /// Whether the user accepted the result (true/false).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    user_acceptance: Option<bool>,
    #[command(flatten)]
    #[serde(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args, Serialize)]
struct CodeQualityArgs {
    /// Execution path (UUID); the partition key.
    #[arg(long)]
    path_id: String,
    /// Task fingerprint (UUID).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint_id: Option<String>,
    /// The file.
    #[arg(long)]
    file_path: String,
    /// Artifact type (e.g. source_code).
    #[arg(long)]
    artifact_type: String,
    /// Language.
    #[arg(long)]
    language: String,
    /// Quality score (0.0-1.0).
    #[arg(long)]
    quality_score: f64,
    /// ONEX compliance score (0.0-1.0).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    onex_compliance_score: Option<f64>,
    /// Lines added.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    lines_added: Option<u64>,
    /// Lines modified.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    lines_modified: Option<u64>,
    /// Lines deleted.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    lines_deleted: Option<u64>,
    /// Test coverage in percent.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    test_coverage: Option<f64>,
    /// Tests passed.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    tests_passed: Option<u32>,
    /// Tests failed.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    tests_failed: Option<u32>,
    /// Lint passed (true/false).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    lint_passed: Option<bool>,
    /// Type check passed (true/false).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    type_check_passed: Option<bool>,
    /// Security scan passed (true/false).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    security_scan_passed: Option<bool>,
    /// ONEX node type (e.g. Effect).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    onex_node_type: Option<String>,
    #[command(flatten)]
    #[serde(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args, Serialize)]
struct SuccessPatternArgs {
    /// The pattern (UUID); the partition key.
    #[arg(long)]
    pattern_id: String,
    /// Task fingerprint (UUID).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint_id: Option<String>,
    /// Execution path (UUID).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    path_id: Option<String>,
    /// Pattern name.
    #[arg(long)]
    pattern_name: String,
    /// Pattern type (e.g. workflow).
    #[arg(long)]
    pattern_type: String,
    /// Estimated duration in ms.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    estimated_duration_ms: Option<u64>,
    #[command(flatten)]
    #[serde(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args, Serialize)]
struct FailurePatternArgs {
    /// The failure (UUID); the partition key.
    #[arg(long)]
    failure_id: String,
    /// Task fingerprint (UUID).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint_id: Option<String>,
    /// Execution path (UUID).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    path_id: Option<String>,
    /// Failure type (e.g. validation_failure).
    #[arg(long)]
    failure_type: String,
    /// Error category (e.g. type_error).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    error_category: Option<String>,
    /// Error message.
    #[arg(long)]
    error_message: String,
    /// Stack trace.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    error_stack_trace: Option<String>,
    /// Root cause.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    root_cause: Option<String>,
    /// Resolution.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    resolution: Option<String>,
    /// Time to resolve in ms.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    time_to_resolve_ms: Option<u64>,
    #[command(flatten)]
    #[serde(flatten)]
    common: Common,
}

/// A required `true`/`false` flag value (clap's derive makes a plain `bool` a switch).
mod bool_arg {
    /// `true` or `false`, serialised as a JSON boolean.
    #[derive(Debug, Clone, Copy, serde::Serialize)]
    #[serde(transparent)]
    pub(super) struct Bool(pub(super) bool);

    impl std::str::FromStr for Bool {
        type Err = String;

        fn from_str(s: &str) -> Result<Self, Self::Err> {
            match s.to_ascii_lowercase().as_str() {
                "true" => Ok(Self(true)),
                "false" => Ok(Self(false)),
                _ => Err(format!("expected true or false, got {s:?}")),
            }
        }
    }
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

/// Parses `text` given to `flag` as JSON.
fn parse_json(flag: &str, text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("{flag}: not valid JSON: {e}"))
}

/// The event fields given as flags, plus `--json`, plus the generated ones.
fn fields(
    flags: impl Serialize,
    common: &Common,
    defaults: &[(&str, Value)],
) -> Result<Map<String, Value>, String> {
    let Value::Object(mut map) =
        serde_json::to_value(flags).map_err(|e| format!("cannot encode the flags: {e}"))?
    else {
        return Err("the flags do not form an object".into());
    };
    if let Some(text) = &common.json {
        let Value::Object(extra) = parse_json("--json", text)? else {
            return Err("--json: expected a JSON object of event fields".into());
        };
        for (k, v) in extra {
            if map.contains_key(&k) {
                return Err(format!("{k}: given both as a flag and in --json"));
            }
            map.insert(k, v);
        }
    }
    for (k, v) in defaults {
        map.entry(k.to_string()).or_insert_with(|| v.clone());
    }
    map.entry("event_id")
        .or_insert_with(|| Value::String(Id::random().0));
    map.entry("timestamp")
        .or_insert_with(|| Value::String(Timestamp::now().0));
    Ok(map)
}

/// Builds the event of a subcommand; returns it with the routing latency to report.
fn build(kind: &Kind) -> Result<(AnyEvent, Option<u64>), String> {
    let (topic, map, latency) = match kind {
        Kind::RoutingDecision(a) => {
            let alternatives = match &a.alternatives {
                Some(text) => parse_json("--alternatives", text)?,
                None => Value::Array(Vec::new()),
            };
            let defaults = [
                ("alternatives", alternatives),
                ("context", Value::Object(Map::new())),
            ];
            (
                Topic::AgentRoutingDecisions,
                fields(a, &a.common, &defaults)?,
                Some(a.latency_ms),
            )
        }
        Kind::Action(a) => (Topic::AgentActions, fields(a, &a.common, &[])?, None),
        Kind::Transformation(a) => (
            Topic::AgentTransformationEvents,
            fields(a, &a.common, &[])?,
            None,
        ),
        Kind::RouterMetrics(a) => (
            Topic::RouterPerformanceMetrics,
            fields(a, &a.common, &[])?,
            None,
        ),
        Kind::TaskExecution(a) => (Topic::TaskExecutions, fields(a, &a.common, &[])?, None),
        Kind::CodeQuality(a) => (Topic::CodeQualityMetrics, fields(a, &a.common, &[])?, None),
        Kind::SuccessPattern(a) => (Topic::SuccessPatterns, fields(a, &a.common, &[])?, None),
        Kind::FailurePattern(a) => (Topic::FailurePatterns, fields(a, &a.common, &[])?, None),
    };
    let event = AnyEvent::from_value(topic, Value::Object(map)).map_err(|e| e.to_string())?;
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
            action.starts_with("action_type: unknown variant `lookup`"),
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
