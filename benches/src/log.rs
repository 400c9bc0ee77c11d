//! `agentbus bench log`: what an agent waits for one `agentbus log` process, with the
//! broker up and with it down (the event spooled), and how fast the spool drains into the
//! broker once it is back.

use super::{create_topic, percentile, start, Target};
use agentbus_client::spool::{Entry, Spool};
use anyhow::{bail, Context};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub(super) struct LogBench {
    /// `agentbus log` calls timed with the broker up, and again with it down.
    #[arg(long, default_value_t = 200)]
    calls: usize,
    /// Spooled events drained by `agentbus spool flush` for the drain rate.
    #[arg(long, default_value_t = 20_000)]
    drain: usize,
}

const TOPIC: &str = "agent-routing-decisions";

/// `agentbus log routing-decision` with every flag the seeds' skill passes, but the
/// broker.
pub(super) const ROUTING_DECISION: &[&str] = &[
    "log",
    "routing-decision",
    "--agent",
    "agent-performance",
    "--confidence",
    "0.9",
    "--strategy",
    "enhanced_fuzzy_matching",
    "--latency-ms",
    "45",
    "--user-request",
    "optimize database queries",
    "--reasoning",
    "High confidence match",
    "--correlation-id",
    "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b",
];

/// One `agentbus log routing-decision` call against `bootstrap`: its wall time and its
/// JSON result.
fn call(bootstrap: &str, spool: &Spool) -> anyhow::Result<(Duration, serde_json::Value)> {
    let exe = super::agentbus_exe()?;
    let started = Instant::now();
    let out = Command::new(exe)
        .args(ROUTING_DECISION)
        .args(["--bootstrap-server", bootstrap])
        .env("AGENTBUS_SPOOL_DIR", spool.dir())
        .env_remove("AGENTBUS_SPOOL")
        .env_remove("KAFKA_SPOOL_AFTER_MS")
        .stderr(Stdio::null())
        .output()
        .context("cannot run agentbus log")?;
    let elapsed = started.elapsed();
    let result = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("agentbus log printed {:?}", out.stdout))?;
    Ok((elapsed, result))
}

/// Times `calls` calls and checks each one's result with `expect`.
fn timed(
    calls: usize,
    bootstrap: &str,
    spool: &Spool,
    expect: impl Fn(&serde_json::Value) -> bool,
) -> anyhow::Result<Vec<u64>> {
    let mut micros = Vec::with_capacity(calls);
    for _ in 0..calls {
        let (elapsed, result) = call(bootstrap, spool)?;
        if !expect(&result) {
            bail!("unexpected result: {result}");
        }
        micros.push(elapsed.as_micros() as u64);
    }
    micros.sort_unstable();
    Ok(micros)
}

/// A port nothing listens on (bound, then let go).
fn dead_address() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}

pub(super) fn run(args: &LogBench) -> anyhow::Result<()> {
    let target = Target {
        target: "agentbus".into(),
        brokers: None,
        broker_pid: None,
        tansu_bin: String::new(),
        props: Vec::new(),
    };
    let broker = start(&target, 6)?;
    create_topic(&target, &broker.bootstrap, &broker.props, TOPIC, 6)?;
    let dir = fresh_spool_dir()?;
    let spool = Spool::new(&dir);

    let published = |r: &serde_json::Value| r["success"] == true && r["spooled"].is_null();
    let up = timed(args.calls, &broker.bootstrap, &spool, published)?;
    let dead = dead_address()?;
    let spooled = |r: &serde_json::Value| r["success"] == true && r["spooled"] == true;
    let down = timed(args.calls, &dead, &spool, spooled)?;

    // The drain: the spooled events, and copies of them with ids of their own, up to
    // `drain` in all.
    let waiting = spool.read(TOPIC)?.entries;
    let Some((sample, _)) = waiting.first() else {
        bail!("nothing was spooled");
    };
    let mut value: serde_json::Value = serde_json::from_str(&sample.value)?;
    for i in waiting.len()..args.drain {
        value["event_id"] = format!("00000000-0000-4000-8000-{i:012x}").into();
        let entry = Entry {
            key: sample.key.clone(),
            value: value.to_string(),
            spooled_at_ms: sample.spooled_at_ms,
        };
        spool.append(TOPIC, &entry)?;
    }
    let exe = super::agentbus_exe()?;
    let started = Instant::now();
    let flush = Command::new(exe)
        .args(["spool", "flush", "--bootstrap-server", &broker.bootstrap])
        .env("AGENTBUS_SPOOL_DIR", &dir)
        .stderr(Stdio::null())
        .output()
        .context("cannot run agentbus spool flush")?;
    let wall = started.elapsed().as_secs_f64();
    let said = String::from_utf8_lossy(&flush.stdout).trim().to_string();
    if !flush.status.success() {
        bail!("agentbus spool flush failed: {said}");
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!("| `agentbus log` | calls | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (what, v) in [("broker up", &up), ("broker down (spooled)", &down)] {
        println!(
            "| {what} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
            v.len(),
            percentile(v, 0.50),
            percentile(v, 0.99),
            percentile(v, 1.0),
        );
    }
    println!(
        "spool flush of {} events: {:.0} events/s over the whole process ({said})",
        args.drain,
        args.drain as f64 / wall
    );
    Ok(())
}

/// A fresh spool directory under the system's temporary directory.
fn fresh_spool_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("agentbus-bench-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
