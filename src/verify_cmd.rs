//! `agentbus verify`: the seeds' dual-write check for the eight topics. The events in
//! Kafka whose own timestamp lies within `--since` are compared, by `event_id` and
//! `correlation_id`, with the rows PostgreSQL holds for the same span.

use crate::cluster_args::ClusterArgs;
use crate::consume_cmd::DatabaseArgs;
use agentbus_client::Topic;
use agentbus_consumers::db_writer;
use anyhow::bail;
use rdkafka::message::Message;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Records whose record timestamp is this much older than the window are still read: a
/// producer stamps the record a little after the event.
const SLACK_MS: i64 = 5 * 60 * 1000;
/// Ids shown per kind of difference.
const SHOW: usize = 5;

#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// Topics to check (names or `agentbus log` subcommands; default: the eight).
    #[arg(long = "topic")]
    topics: Vec<String>,
    /// How far back: events whose timestamp is within this span (`1h`, `30m`, `7d`).
    #[arg(long, default_value = "1h")]
    since: String,
    /// `text` or `json`.
    #[arg(long, default_value = "text")]
    output: String,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// How one topic compares.
#[derive(Debug, Default)]
struct Report {
    kafka: usize,
    database: usize,
    matched: usize,
    missing_in_database: Vec<String>,
    missing_in_kafka: Vec<String>,
    mismatched: Vec<String>,
}

impl Report {
    fn consistent(&self) -> bool {
        self.missing_in_database.is_empty()
            && self.missing_in_kafka.is_empty()
            && self.mismatched.is_empty()
    }

    fn json(&self, topic: Topic) -> Value {
        let first = |v: &[String]| v.iter().take(SHOW).cloned().collect::<Vec<_>>();
        json!({
            "topic": topic.name(),
            "kafka": self.kafka,
            "database": self.database,
            "matched": self.matched,
            "missing_in_database": self.missing_in_database.len(),
            "missing_in_kafka": self.missing_in_kafka.len(),
            "mismatched": self.mismatched.len(),
            "first_missing_in_database": first(&self.missing_in_database),
            "first_missing_in_kafka": first(&self.missing_in_kafka),
            "first_mismatched": first(&self.mismatched),
            "consistent": self.consistent(),
        })
    }
}

pub(crate) async fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let json_out = match args.output.as_str() {
        "text" => false,
        "json" => true,
        other => bail!("--output: {other:?} is not text or json"),
    };
    let Some(span) = agentbus_consumers::alert_manager::rules::parse_duration(&args.since) else {
        bail!(
            "--since: {:?} is not a duration such as 30m, 1h, 7d",
            args.since
        );
    };
    let topics: Vec<Topic> = if args.topics.is_empty() {
        Topic::ALL.to_vec()
    } else {
        args.topics
            .iter()
            .map(|t| t.parse::<Topic>())
            .collect::<Result<_, _>>()?
    };
    let options = args.database.settings().connect_options()?;
    let now = chrono::Utc::now().timestamp_millis();
    let since = now - span.as_millis() as i64;
    let mut reports = Vec::new();
    for topic in topics {
        let rows = db_writer::verify::rows_since(&options, topic, since)
            .await
            .map_err(|e| anyhow::anyhow!("DATABASE_URL: {e}"))?;
        let cluster = &args.cluster;
        let events = tokio::task::block_in_place(|| kafka_events(cluster, topic, since, now))?;
        let mut r = Report {
            kafka: events.len(),
            database: rows.len(),
            ..Report::default()
        };
        for (id, correlation) in &events {
            match rows.get(id) {
                None => r.missing_in_database.push(id.clone()),
                Some(c) if !c.eq_ignore_ascii_case(correlation) => r.mismatched.push(id.clone()),
                Some(_) => r.matched += 1,
            }
        }
        r.missing_in_kafka = rows
            .keys()
            .filter(|id| !events.contains_key(*id))
            .cloned()
            .collect();
        reports.push((topic, r));
    }
    let consistent = reports.iter().all(|(_, r)| r.consistent());
    let mut out = String::new();
    if json_out {
        let v = json!({
            "since": since,
            "consistent": consistent,
            "topics": reports.iter().map(|(t, r)| r.json(*t)).collect::<Vec<_>>(),
        });
        out = format!("{v:#}\n");
    } else {
        use std::fmt::Write as _;
        for (t, r) in &reports {
            let _ = writeln!(
                out,
                "{} {:<28} kafka {:>7}  database {:>7}  matched {:>7}  missing in database {:>5}  missing in kafka {:>5}  mismatched {:>5}",
                if r.consistent() { "ok " } else { "BAD" },
                t.name(),
                r.kafka,
                r.database,
                r.matched,
                r.missing_in_database.len(),
                r.missing_in_kafka.len(),
                r.mismatched.len()
            );
            for (what, ids) in [
                ("missing in database", &r.missing_in_database),
                ("missing in kafka", &r.missing_in_kafka),
                ("mismatched", &r.mismatched),
            ] {
                if !ids.is_empty() {
                    let _ = writeln!(
                        out,
                        "    {what}: {}",
                        ids.iter().take(SHOW).cloned().collect::<Vec<_>>().join(" ")
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "{}",
            if consistent {
                "consistent"
            } else {
                "NOT consistent"
            }
        );
    }
    crate::emit(&out)?;
    if !consistent {
        bail!("Kafka and PostgreSQL differ");
    }
    Ok(())
}

/// `event_id → correlation_id` of the events of `topic` whose own timestamp is within
/// `since..=now`.
fn kafka_events(
    cluster: &ClusterArgs,
    topic: Topic,
    since: i64,
    now: i64,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    crate::replay_cmd::read_range(cluster, topic.name(), since - SLACK_MS, now, |m| {
        let Some(payload) = m.payload() else {
            return Ok(());
        };
        // What the db-writer sends to the DLQ is not expected in PostgreSQL.
        if agentbus_client::AnyEvent::decode(topic, payload).is_err() {
            return Ok(());
        }
        let Ok(v) = serde_json::from_slice::<Value>(payload) else {
            return Ok(());
        };
        let at = v["timestamp"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis());
        if at.is_some_and(|t| t >= since && t <= now) {
            if let (Some(id), Some(c)) = (v["event_id"].as_str(), v["correlation_id"].as_str()) {
                out.insert(id.to_ascii_lowercase(), c.to_string());
            }
        }
        Ok(())
    })?;
    Ok(out)
}
