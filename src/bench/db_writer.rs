//! `agentbus bench db-writer`: sustained events/s of `agentbus consume db-writer` into
//! PostgreSQL, its batch write p99 and its memory, for each batch size asked for.
//!
//! A child broker holds COUNT agent-action events of SIZE bytes (produced before the
//! clock starts); a fresh database is created for every run; the db-writer runs as a
//! child process and the clock runs from its first `/ready` to the last event inserted.

use super::{create_topic, start, status_kib, Target};
use agentbus_client::Topic;
use anyhow::{bail, Context};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub(super) struct DbWriterBench {
    /// Events per run.
    #[arg(long, default_value_t = 200_000)]
    count: u64,
    /// Event size in bytes (JSON value).
    #[arg(long, default_value_t = 200)]
    size: usize,
    /// Batch sizes to measure, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1000,100")]
    batch_sizes: Vec<usize>,
    /// A PostgreSQL URL whose user may create databases; each run gets its own.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
}

/// A valid agent action of `size` bytes (at least ~190), padded in `action_name`.
fn event(i: u64, size: usize) -> Vec<u8> {
    let id = format!("{:08x}-0000-4000-8000-{:012x}", 0xbe4c_u32, i);
    let correlation = format!("{:08x}-0000-4000-8000-{:012x}", 0xc0de_u32, i / 4);
    let build = |pad: usize| {
        format!(
            r#"{{"event_id":"{id}","correlation_id":"{correlation}","agent_name":"a","action_type":"tool_call","action_name":"R{}","timestamp":"2025-10-20T18:30:00Z"}}"#,
            "x".repeat(pad)
        )
    };
    let base = build(0).len();
    build(size.saturating_sub(base)).into_bytes()
}

fn produce(bootstrap: &str, count: u64, size: usize) -> anyhow::Result<()> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .create()?;
    let topic = Topic::AgentActions.name();
    for i in 0..count {
        let value = event(i, size);
        let key = format!("{:08x}-0000-4000-8000-{:012x}", 0xc0de_u32, i / 4);
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

fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
        .output()
        .context("cannot run psql (the bench creates its databases with it)")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn database_url(admin: &str, name: &str) -> String {
    match admin.rsplit_once('/') {
        Some((base, _)) if base.matches('/').count() >= 2 => format!("{base}/{name}"),
        _ => format!("{admin}/{name}"),
    }
}

fn get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    Ok(agentbus_consumers::http::get(port, path)?)
}

struct Writer {
    child: Child,
    port: u16,
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_writer(bootstrap: &str, url: &str, batch: usize) -> anyhow::Result<Writer> {
    let exe = std::env::current_exe().context("cannot find the agentbus binary")?;
    let mut child = Command::new(exe)
        .args(["consume", "db-writer"])
        .env("KAFKA_BROKERS", bootstrap)
        .env("DATABASE_URL", url)
        .env("BATCH_SIZE", batch.to_string())
        .env("HTTP_HOST", "127.0.0.1")
        .env("HTTP_PORT", "0")
        .env("AGENTBUS_LOG", "warn,agentbus_consumers::runtime=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the db-writer")?;
    let stderr = child.stderr.take().context("no stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(port) = agentbus_consumers::runtime::http_port_in_log(&line) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(port);
                }
            } else if line.contains("WARN") || line.contains("ERROR") {
                eprintln!("db-writer: {line}");
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(60))
        .context("the db-writer did not start")?;
    Ok(Writer { child, port })
}

struct Run {
    batch: usize,
    rate: f64,
    p99_ms: f64,
    avg_ms: f64,
    peak_rss_kib: u64,
}

fn run_one(args: &DbWriterBench, bootstrap: &str, batch: usize) -> anyhow::Result<Run> {
    let name = format!("agentbus_bench_{}_{batch}", std::process::id());
    psql(
        &args.database_url,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )?;
    psql(&args.database_url, &format!("CREATE DATABASE {name}"))?;
    let url = database_url(&args.database_url, &name);
    let result = (|| {
        let writer = spawn_writer(bootstrap, &url, batch)?;
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut started = None;
        loop {
            if Instant::now() > deadline {
                bail!("the db-writer did not finish within 10 minutes");
            }
            if started.is_none() && get(writer.port, "/ready")?.0 == 200 {
                started = Some(Instant::now());
            }
            let (_, body) = get(writer.port, "/metrics.json")?;
            let m: serde_json::Value = serde_json::from_str(&body)?;
            if m["messages_inserted"].as_u64() == Some(args.count) {
                let took = started.map(|s| s.elapsed()).unwrap_or_default();
                return Ok(Run {
                    batch,
                    rate: args.count as f64 / took.as_secs_f64().max(1e-9),
                    p99_ms: m["p99_batch_processing_ms"].as_f64().unwrap_or(0.0),
                    avg_ms: m["avg_batch_processing_ms"].as_f64().unwrap_or(0.0),
                    peak_rss_kib: status_kib(writer.child.id(), "VmHWM:").unwrap_or(0),
                });
            }
            if m["messages_failed"].as_u64().unwrap_or(0) > 0 {
                bail!("events went to the DLQ: {m}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })();
    let _ = psql(
        &args.database_url,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    result
}

pub(super) fn run(args: &DbWriterBench) -> anyhow::Result<()> {
    let target = Target {
        target: "agentbus".into(),
        brokers: None,
        broker_pid: None,
        tansu_bin: String::new(),
    };
    let broker = start(&target, 1)?;
    for t in Topic::ALL {
        create_topic(
            &target,
            &broker.bootstrap,
            t.name(),
            agentbus_client::catalog::spec(t).partitions,
        )?;
    }
    let produced = Instant::now();
    produce(&broker.bootstrap, args.count, args.size)?;
    println!(
        "produced {} agent-actions events of {} B in {:.1} s",
        args.count,
        event(0, args.size).len(),
        produced.elapsed().as_secs_f64()
    );
    println!(
        "| batch size | events/s into PostgreSQL | batch write p99 | batch write avg | peak RSS |"
    );
    println!("|---|---|---|---|---|");
    for &batch in &args.batch_sizes {
        let r = run_one(args, &broker.bootstrap, batch)?;
        println!(
            "| {} | {:.0} | {:.1} ms | {:.1} ms | {:.1} MiB |",
            r.batch,
            r.rate,
            r.p99_ms,
            r.avg_ms,
            r.peak_rss_kib as f64 / 1024.0
        );
    }
    Ok(())
}
