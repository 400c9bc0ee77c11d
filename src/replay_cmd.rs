//! `agentbus replay TOPIC --from TIME [--to TIME]`: the events a topic received between
//! two instants (by record timestamp; the start is found with ListOffsets by time), as
//! JSON lines or a table, filtered by trace id or agent. `replay --to-group GROUP --from
//! TIME` makes a group whose offsets live in its sink read again from that time.

use crate::cluster_args::ClusterArgs;
use anyhow::{bail, Context};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    /// The topic (a name or an `agentbus log` subcommand, e.g. `routing-decision`); with
    /// `--to-group`, default every topic the db-writer reads.
    topic: Option<String>,
    /// Move this consumer group back to `--from` instead of printing (the db-writer's
    /// group: its offsets live in PostgreSQL).
    #[arg(long)]
    to_group: Option<String>,
    #[command(flatten)]
    database: crate::consume_cmd::DatabaseArgs,
    /// First instant: RFC 3339, Unix seconds, or a duration ago (`30m`, `2h`, `7d`).
    #[arg(long)]
    from: String,
    /// Last instant (inclusive; default now), in the same forms.
    #[arg(long)]
    to: Option<String>,
    /// Only events with this `correlation_id`.
    #[arg(long)]
    correlation_id: Option<String>,
    /// Only events that name this agent (`agent_name`, `selected_agent`, `source_agent`,
    /// `target_agent`).
    #[arg(long)]
    agent: Option<String>,
    /// `json` (one event per line, as stored) or `table`.
    #[arg(long, default_value = "json")]
    output: String,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// An instant in ms: RFC 3339, Unix seconds, or a duration before `now_ms`.
fn instant(flag: &str, s: &str, now_ms: i64) -> anyhow::Result<i64> {
    if let Some(d) = agentbus_consumers::alert_manager::rules::parse_duration(s) {
        return Ok(now_ms - d.as_millis() as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.timestamp_millis());
    }
    s.trim()
        .parse::<i64>()
        .map(|secs| secs * 1000)
        .map_err(|_| {
            anyhow::anyhow!("{flag}: {s:?} is not RFC 3339, Unix seconds or a duration such as 30m")
        })
}

fn names_agent(v: &Value, agent: &str) -> bool {
    [
        "agent_name",
        "selected_agent",
        "source_agent",
        "target_agent",
    ]
    .iter()
    .any(|f| v[*f].as_str() == Some(agent))
}

fn topic_name(t: &str) -> String {
    match t.parse::<agentbus_client::Topic>() {
        Ok(t) => t.name().to_string(),
        Err(_) => t.to_string(),
    }
}

pub(crate) async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    if let Some(group) = args.to_group.clone() {
        return to_group(&args, &group).await;
    }
    tokio::task::block_in_place(|| print(&args))
}

/// Moves `group`'s stored offsets back to `--from`.
async fn to_group(args: &ReplayArgs, group: &str) -> anyhow::Result<()> {
    let explain = match group {
        "metrics-group" => Some("its windows in Redis would count the span twice; delete the span's keys first, then move the offsets"),
        "audit-group" => Some("the archive already holds the span; reading it again would write it again beside the files it has"),
        "db-writer-group" => None,
        _ => Some("its offsets live in Kafka: use `agentbus groups reset-offsets` with the group stopped"),
    };
    if let Some(why) = explain {
        bail!("--to-group {group}: not moved: {why}");
    }
    let now = chrono::Utc::now().timestamp_millis();
    let from = instant("--from", &args.from, now)?;
    let topics: Vec<String> = match &args.topic {
        Some(t) => vec![topic_name(t)],
        None => agentbus_client::Topic::ALL
            .iter()
            .chain(agentbus_client::Topic::DERIVED.iter())
            .map(|t| t.name().to_string())
            .collect(),
    };
    let cluster = &args.cluster;
    let targets = tokio::task::block_in_place(|| offsets_at(cluster, &topics, from))?;
    let options = args.database.settings().connect_options()?;
    let moved = agentbus_consumers::db_writer::verify::rewind(&options, group, &targets)
        .await
        .map_err(|e| anyhow::anyhow!("DATABASE_URL: {e}"))?;
    crate::emit(&format!(
        "{group}: {moved} partition(s) moved back to {}; the db-writer reads them again from there (a running one at its next batch), and rows it already has are skipped by event id (counted as duplicates)\n",
        args.from
    ))
}

/// The first offset at or after `from` (ms) of every partition of `topics` (the log
/// end where nothing is that late); topics that do not exist are skipped.
fn offsets_at(
    cluster: &ClusterArgs,
    topics: &[String],
    from: i64,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let timeout = cluster.timeout();
    let consumer: BaseConsumer = agentbus_client::kafka_props::client_config()
        .set("bootstrap.servers", &cluster.bootstrap_server)
        .set("group.id", "agentbus-replay")
        .create()
        .context("kafka client")?;
    let mut out = BTreeMap::new();
    for topic in topics {
        let md = consumer.fetch_metadata(Some(topic), timeout)?;
        let Some(t) = md.topics().first().filter(|t| t.error().is_none()) else {
            continue;
        };
        let mut tpl = TopicPartitionList::new();
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Offset(from))?;
        }
        for e in consumer.offsets_for_times(tpl, timeout)?.elements() {
            let offset = match e.offset() {
                Offset::Offset(o) => o,
                _ => consumer.fetch_watermarks(topic, e.partition(), timeout)?.1,
            };
            out.insert((topic.clone(), e.partition()), offset);
        }
    }
    Ok(out)
}

fn print(args: &ReplayArgs) -> anyhow::Result<()> {
    let Some(topic) = args.topic.as_deref().map(topic_name) else {
        bail!("TOPIC: which topic to print (or --to-group to move a group)");
    };
    let table = match args.output.as_str() {
        "json" => false,
        "table" => true,
        other => bail!("--output: {other:?} is not json or table"),
    };
    let now = chrono::Utc::now().timestamp_millis();
    let from = instant("--from", &args.from, now)?;
    let to = match &args.to {
        Some(t) => instant("--to", t, now)?,
        None => now,
    };
    if from > to {
        bail!("--from is after --to");
    }
    let mut out = String::new();
    if table {
        let _ = writeln!(
            out,
            "{:<24}  {:>4}  {:>10}  {:<36}  {:<36}  agent",
            "time", "part", "offset", "event_id", "correlation_id"
        );
    }
    read_range(&args.cluster, &topic, from, to, |m| {
        let payload = m.payload().unwrap_or_default();
        let v: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
        if args
            .correlation_id
            .as_deref()
            .is_some_and(|c| v["correlation_id"].as_str() != Some(c))
        {
            return Ok(());
        }
        if args.agent.as_deref().is_some_and(|a| !names_agent(&v, a)) {
            return Ok(());
        }
        if table {
            let time = m
                .timestamp()
                .to_millis()
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default();
            let agent = ["agent_name", "selected_agent", "target_agent"]
                .iter()
                .find_map(|f| v[*f].as_str())
                .unwrap_or("");
            let _ = writeln!(
                out,
                "{time:<24}  {:>4}  {:>10}  {:<36}  {:<36}  {agent}",
                m.partition(),
                m.offset(),
                v["event_id"].as_str().unwrap_or("-"),
                v["correlation_id"].as_str().unwrap_or("-"),
            );
        } else {
            out.push_str(&String::from_utf8_lossy(payload));
            out.push('\n');
        }
        if out.len() > 1 << 16 {
            crate::emit(&out)?;
            out.clear();
        }
        Ok(())
    })?;
    crate::emit(&out)
}

/// Calls `each` with every record of `topic` whose timestamp lies in `from..=to` (ms),
/// read_committed, up to the partitions' ends as they are when it starts.
pub(crate) fn read_range(
    cluster: &ClusterArgs,
    topic: &str,
    from: i64,
    to: i64,
    mut each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let timeout = cluster.timeout();
    let consumer: BaseConsumer = agentbus_client::kafka_props::client_config()
        .set("bootstrap.servers", &cluster.bootstrap_server)
        .set("group.id", "agentbus-replay")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "false")
        .create()
        .context("kafka client")?;
    let md = consumer
        .fetch_metadata(Some(topic), timeout)
        .with_context(|| format!("cannot read the metadata of {topic}"))?;
    let partitions: Vec<i32> = md
        .topics()
        .first()
        .filter(|t| t.error().is_none())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        bail!("{topic}: no such topic");
    }
    // Where each partition reaches `from`, and where it ends now.
    let mut by_time = TopicPartitionList::new();
    for p in &partitions {
        by_time.add_partition_offset(topic, *p, Offset::Offset(from))?;
    }
    let starts = consumer
        .offsets_for_times(by_time, timeout)
        .context("ListOffsets by time")?;
    let mut assign = TopicPartitionList::new();
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for e in starts.elements() {
        let (_, high) = consumer.fetch_watermarks(topic, e.partition(), timeout)?;
        let start = match e.offset() {
            Offset::Offset(o) => o,
            _ => high,
        };
        if start < high {
            assign.add_partition_offset(topic, e.partition(), Offset::Offset(start))?;
            ends.insert(e.partition(), high);
        }
    }
    if ends.is_empty() {
        return Ok(());
    }
    consumer.assign(&assign)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while !ends.is_empty() {
        if Instant::now() > deadline {
            bail!(
                "{topic}: partitions {:?} not read to their end within 5 minutes",
                ends.keys()
            );
        }
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.context("fetch")?;
        if ends
            .get(&m.partition())
            .is_some_and(|end| m.offset() + 1 >= *end)
        {
            ends.remove(&m.partition());
        }
        let ts = m.timestamp().to_millis().unwrap_or(0);
        if ts < from || ts > to {
            continue;
        }
        each(&m)?;
    }
    Ok(())
}
