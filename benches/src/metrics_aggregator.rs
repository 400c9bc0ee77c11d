//! `agentbus bench metrics-aggregator`: sustained events/s of `agentbus consume
//! metrics-aggregator` into Redis, the p99 of its script pipeline (one script call per
//! partition batch) and its memory, for each batch size asked for; a key prefix of its
//! own for every run, deleted afterwards.

use super::consumer_run::{self, Shape};
use anyhow::{bail, Context};
use std::process::Command;

#[derive(Debug, Clone, clap::Args)]
pub(super) struct MetricsAggregatorBench {
    #[command(flatten)]
    shape: Shape,
    /// The Redis to measure against (runs use their own key prefix).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
}

fn redis_cli(url: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("redis-cli")
        .args(["-u", url])
        .args(args)
        .output()
        .context("cannot run redis-cli (the bench deletes its keys with it)")?;
    if !out.status.success() {
        bail!("redis-cli: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn delete_prefix(url: &str, prefix: &str) -> anyhow::Result<()> {
    let keys = redis_cli(url, &["--scan", "--pattern", &format!("{prefix}*")])?;
    let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
    for chunk in keys.chunks(500) {
        let mut args = vec!["DEL"];
        args.extend_from_slice(chunk);
        redis_cli(url, &args)?;
    }
    Ok(())
}

pub(super) fn run(args: &MetricsAggregatorBench) -> anyhow::Result<()> {
    redis_cli(&args.redis_url, &["PING"]).context("REDIS_URL does not answer")?;
    let broker = consumer_run::broker_with_events(&args.shape)?;
    println!("{}", consumer_run::header("Redis", "script pipeline", &[]));
    for &batch in &args.shape.batch_sizes {
        let prefix = format!("agentbus-bench-{}-{batch}:", std::process::id());
        let run = consumer_run::measure(
            "metrics-aggregator",
            &broker.bootstrap,
            batch,
            args.shape.count,
            "messages_inserted",
            &[
                ("REDIS_URL", args.redis_url.clone()),
                ("REDIS_KEY_PREFIX", prefix.clone()),
            ],
        );
        delete_prefix(&args.redis_url, &prefix)?;
        println!("{}", run?.row());
    }
    Ok(())
}
