//! `agentbus metrics`: the metrics-aggregator's windows and rollups from Redis, as a
//! table (or the JSON of `/api/metrics`).

use crate::consume_cmd::RedisArgs;
use agentbus_consumers::metrics_aggregator::query::{self, Query};
use agentbus_consumers::metrics_aggregator::Keys;
use anyhow::Context;

#[derive(Debug, clap::Args)]
pub(crate) struct MetricsArgs {
    /// Topic: a short name (actions, routing, transformations, router, tasks, quality,
    /// successes, failures) or a topic name.
    #[arg(long)]
    topic: String,
    /// One agent's series instead of the topic's.
    #[arg(long)]
    agent: Option<String>,
    /// Bucket size: the window (5s), 1m, 5m or 1h.
    #[arg(long)]
    window: Option<String>,
    /// From (RFC 3339 or Unix seconds; default: 720 buckets before --to).
    #[arg(long)]
    from: Option<String>,
    /// To (RFC 3339 or Unix seconds; default: now).
    #[arg(long)]
    to: Option<String>,
    /// Print the JSON of `/api/metrics` instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    redis: RedisArgs,
}

pub(crate) async fn run(args: MetricsArgs) -> anyhow::Result<()> {
    let settings = args.redis.settings()?;
    let query = Query::parse(
        Some(&args.topic),
        args.agent.as_deref(),
        args.window.as_deref(),
        args.from.as_deref(),
        args.to.as_deref(),
        settings.window_seconds,
        query::now(),
    )?;
    let keys = Keys::new(settings.prefix.clone());
    let points = query::fetch(&settings.url()?, &keys, &query)
        .await
        .context("REDIS_URL: cannot read the buckets")?;
    if args.json {
        println!("{:#}", query::answer(&query, &points));
    } else {
        print!("{}", query::table(&query, &points));
    }
    Ok(())
}
