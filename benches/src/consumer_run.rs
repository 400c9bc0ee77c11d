//! What the consumer-group benchmarks share: a child broker holding COUNT agent-action
//! events of SIZE bytes (produced before the clock starts), the consumer as a child
//! process, and the clock from its first `/ready` to the last event applied.

use super::{create_topic, start, status_kib, Running, Target};
use agentbus_client::Topic;
use anyhow::{bail, Context};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The COUNT and SIZE of a run, and the batch sizes to measure.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct Shape {
    /// Events per run.
    #[arg(long, default_value_t = 200_000)]
    pub(super) count: u64,
    /// Event size in bytes (JSON value).
    #[arg(long, default_value_t = 200)]
    pub(super) size: usize,
    /// Batch sizes to measure, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1000,100")]
    pub(super) batch_sizes: Vec<usize>,
    /// Partitions of the topic the events go to (default: the catalog's).
    #[arg(long)]
    pub(super) partitions: Option<i32>,
}

/// The RFC 3339 timestamp of event `i`: 1 ms apart from 2025-10-20T18:30:00Z on.
pub(super) fn timestamp(i: u64) -> String {
    chrono::DateTime::from_timestamp_millis(1_760_985_000_000 + i as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// A valid agent action of `size` bytes (at least ~220), padded in `action_name`; four
/// agents, varying durations, timestamps 1 ms apart.
pub(super) fn event(i: u64, size: usize) -> Vec<u8> {
    let id = format!("{:08x}-0000-4000-8000-{:012x}", 0xbe4c_u32, i);
    let correlation = format!("{:08x}-0000-4000-8000-{:012x}", 0xc0de_u32, i / 4);
    let ts = timestamp(i);
    let build = |pad: usize| {
        format!(
            r#"{{"event_id":"{id}","correlation_id":"{correlation}","agent_name":"a{}","action_type":"tool_call","action_name":"R{}","duration_ms":{},"timestamp":"{ts}"}}"#,
            i % 4,
            "x".repeat(pad),
            i % 997
        )
    };
    let base = build(0).len();
    build(size.saturating_sub(base)).into_bytes()
}

/// What a run's events are: their topic, and event `i` of about `size` bytes with its key.
#[derive(Debug, Clone, Copy)]
pub(super) struct Events {
    pub(super) topic: Topic,
    pub(super) make: fn(u64, usize) -> (String, Vec<u8>),
}

/// Agent actions ([`event`]), keyed by correlation id.
pub(super) const AGENT_ACTIONS: Events = Events {
    topic: Topic::AgentActions,
    make: |i, size| {
        let key = format!("{:08x}-0000-4000-8000-{:012x}", 0xc0de_u32, i / 4);
        (key, event(i, size))
    },
};

fn produce(bootstrap: &str, count: u64, size: usize, events: Events) -> anyhow::Result<()> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .create()?;
    let topic = events.topic.name();
    for i in 0..count {
        let (key, value) = (events.make)(i, size);
        loop {
            match producer.send(BaseRecord::to(topic).key(&key).payload(&value)) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => bail!("produce failed: {e}"),
            }
        }
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(())
}

/// A child broker with the eight topics and `shape`'s events in agent-actions.
pub(super) fn broker_with_events(shape: &Shape) -> anyhow::Result<Running> {
    broker_with(shape, AGENT_ACTIONS)
}

/// A child broker with the eight topics and `shape`'s `events`.
pub(super) fn broker_with(shape: &Shape, events: Events) -> anyhow::Result<Running> {
    let target = Target {
        target: "agentbus".into(),
        brokers: None,
        broker_pid: None,
        tansu_bin: String::new(),
        props: Vec::new(),
    };
    let broker = start(&target, 1)?;
    for t in Topic::ALL {
        let partitions = match shape.partitions {
            Some(n) if t == events.topic => n,
            _ => agentbus_client::catalog::spec(t).partitions,
        };
        create_topic(
            &target,
            &broker.bootstrap,
            &broker.props,
            t.name(),
            partitions,
        )?;
    }
    let produced = Instant::now();
    produce(&broker.bootstrap, shape.count, shape.size, events)?;
    println!(
        "produced {} {} events of {} B in {:.1} s",
        shape.count,
        events.topic.name(),
        (events.make)(0, shape.size).1.len(),
        produced.elapsed().as_secs_f64()
    );
    Ok(broker)
}

pub(super) fn get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    Ok(agentbus_consumers::http::get(port, path)?)
}

pub(super) struct Consumer {
    child: Child,
    pub(super) port: u16,
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn spawn(
    group: &str,
    bootstrap: &str,
    batch: usize,
    env: &[(&str, String)],
) -> anyhow::Result<Consumer> {
    let exe = super::agentbus_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args(["consume", group])
        .env("KAFKA_BROKERS", bootstrap)
        .env("BATCH_SIZE", batch.to_string())
        .env("HTTP_HOST", "127.0.0.1")
        .env("HTTP_PORT", "0")
        .env("AGENTBUS_LOG", "warn,agentbus_consumers::runtime=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start the {group}"))?;
    let stderr = child.stderr.take().context("no stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let name = group.to_string();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(port) = agentbus_consumers::runtime::http_port_in_log(&line) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(port);
                }
            } else if line.contains("WARN") || line.contains("ERROR") {
                eprintln!("{name}: {line}");
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(60))
        .with_context(|| format!("the {group} did not start"))?;
    Ok(Consumer { child, port })
}

/// What one run measured.
pub(super) struct Run {
    pub(super) batch: usize,
    pub(super) rate: f64,
    pub(super) p99_ms: f64,
    pub(super) avg_ms: f64,
    pub(super) peak_rss_kib: u64,
}

impl Run {
    /// A row of the table [`header`] opens.
    pub(super) fn row(&self) -> String {
        format!(
            "| {} | {:.0} | {:.1} ms | {:.1} ms | {:.1} MiB |",
            self.batch,
            self.rate,
            self.p99_ms,
            self.avg_ms,
            self.peak_rss_kib as f64 / 1024.0
        )
    }
}

/// The table's header, for a sink named `into`, its write named `write`, and `extra`
/// columns after the common ones.
pub(super) fn header(into: &str, write: &str, extra: &[&str]) -> String {
    let mut names = vec![
        "batch size".to_string(),
        format!("events/s into {into}"),
        format!("{write} p99"),
        format!("{write} avg"),
        "peak RSS".to_string(),
    ];
    names.extend(extra.iter().map(|e| e.to_string()));
    format!("| {} |\n|{}", names.join(" | "), "---|".repeat(names.len()))
}

/// Runs `agentbus consume <group>` with `env` until it has applied `count` events
/// (`done`, a field of `/metrics.json`, reaches `count`).
pub(super) fn measure(
    group: &str,
    bootstrap: &str,
    batch: usize,
    count: u64,
    done: &str,
    env: &[(&str, String)],
) -> anyhow::Result<Run> {
    let target = Until {
        path: "/metrics.json".into(),
        done: done.to_string(),
        value: count,
    };
    measure_until(group, bootstrap, batch, count, &target, env)
}

/// When a run is over: `done` of the JSON at `path` reaches `value`.
pub(super) struct Until {
    pub(super) path: String,
    pub(super) done: String,
    pub(super) value: u64,
}

/// [`measure`] for a process of several groups: `count` events are in when `target`
/// holds.
pub(super) fn measure_until(
    group: &str,
    bootstrap: &str,
    batch: usize,
    count: u64,
    target: &Until,
    env: &[(&str, String)],
) -> anyhow::Result<Run> {
    let consumer = spawn(group, bootstrap, batch, env)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut started = None;
    loop {
        if Instant::now() > deadline {
            bail!("the {group} did not finish within 10 minutes");
        }
        if started.is_none() && get(consumer.port, "/ready")?.0 == 200 {
            started = Some(Instant::now());
        }
        let (_, body) = get(consumer.port, &target.path)?;
        let m: serde_json::Value = serde_json::from_str(&body)?;
        if m[target.done.as_str()].as_u64() == Some(target.value) {
            let took = started.map(|s| s.elapsed()).unwrap_or_default();
            return Ok(Run {
                batch,
                rate: count as f64 / took.as_secs_f64().max(1e-9),
                p99_ms: m["p99_batch_processing_ms"].as_f64().unwrap_or(0.0),
                avg_ms: m["avg_batch_processing_ms"].as_f64().unwrap_or(0.0),
                peak_rss_kib: status_kib(consumer.child.id(), "VmHWM:").unwrap_or(0),
            });
        }
        if m["messages_failed"].as_u64().unwrap_or(0) > 0 {
            bail!("events went to the DLQ: {m}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
