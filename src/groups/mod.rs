//! `agentbus groups`: list, describe and delete consumer groups and reset their committed
//! offsets, like Kafka's `kafka-consumer-groups`. Only standard Kafka APIs are used (through
//! librdkafka: ListGroups/DescribeGroups, FindCoordinator, OffsetFetch/OffsetCommit,
//! ListOffsets, Metadata, DeleteGroups), so it works against agentbus and any Kafka.
//!
//! Every network call is bounded by `--timeout-ms`; the one librdkafka call that takes no
//! timeout (a synchronous offset commit) runs on its own thread behind a deadline.

use crate::emit;
use anyhow::Context as _;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

mod assignment;
mod cluster;
mod delete;
mod describe;
mod error;
mod list;
mod reset;
mod table;

use assignment::decode_assignment;
use cluster::*;
use delete::delete;
use describe::{describe, print_description};
use error::{kafka, GroupsError};
use list::list;
use reset::reset;
use table::*;

#[derive(Debug, clap::Args)]
pub(crate) struct GroupsArgs {
    #[command(flatten)]
    cluster: crate::cluster_args::ClusterArgs,
    /// Output format: `text` (an aligned table) or `json`.
    #[arg(long, global = true, default_value = "text")]
    output: Output,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// List the consumer groups: group id, protocol type and state.
    List,
    /// Show a group's committed offsets, log-end offsets, lag and owning members.
    Describe {
        /// The group id.
        group: String,
    },
    /// Delete a group and its committed offsets (only when it has no active members).
    Delete {
        /// The group id.
        group: String,
    },
    /// Compute new committed offsets for a group; commit them with `--execute`.
    ///
    /// Without `--execute` this is a dry run that only prints the plan. Kafka accepts the
    /// commit only while the group has no active members.
    ResetOffsets(ResetArgs),
}

#[derive(Debug, clap::Args)]
struct ResetArgs {
    /// The group id.
    group: String,
    /// Topic to reset: `TOPIC` (all partitions) or `TOPIC:0,1,2`. Repeatable.
    #[arg(long = "topic", value_name = "TOPIC[:PARTITIONS]", required = true)]
    topics: Vec<TopicSpec>,
    #[command(flatten)]
    to: ResetTo,
    /// Commit the new offsets (otherwise only print the plan).
    #[arg(long)]
    execute: bool,
    /// Only print the plan (the default).
    #[arg(long, conflicts_with = "execute")]
    dry_run: bool,
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct ResetTo {
    /// Reset to the earliest available offset (the log start).
    #[arg(long)]
    to_earliest: bool,
    /// Reset to the log-end offset.
    #[arg(long)]
    to_latest: bool,
    /// Reset to the first offset whose timestamp is at or after this RFC 3339 time
    /// (e.g. 2026-01-31T12:00:00Z); the log end if there is none.
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339_millis)]
    to_datetime: Option<i64>,
    /// Reset to this offset (clamped to the available range).
    #[arg(long, value_name = "OFFSET")]
    to_offset: Option<i64>,
    /// Move the committed offset by N (may be negative), clamped to the available range.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    shift_by: Option<i64>,
}

/// `TOPIC` or `TOPIC:0,1,2`.
#[derive(Debug, Clone)]
struct TopicSpec {
    topic: String,
    partitions: Option<Vec<i32>>,
}

impl std::str::FromStr for TopicSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (topic, partitions) = match s.rsplit_once(':') {
            None => (s, None),
            Some((topic, list)) => {
                let parts = list
                    .split(',')
                    .map(|p| {
                        p.trim()
                            .parse::<i32>()
                            .ok()
                            .filter(|p| *p >= 0)
                            .ok_or_else(|| format!("bad partition {p:?} in {s:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (topic, Some(parts))
            }
        };
        if topic.is_empty() {
            return Err("empty topic name".into());
        }
        Ok(TopicSpec {
            topic: topic.to_string(),
            partitions,
        })
    }
}

pub(crate) async fn run(args: GroupsArgs) -> anyhow::Result<()> {
    let cluster = Cluster {
        timeout: args.cluster.timeout(),
        bootstrap: args.cluster.bootstrap_server,
    };
    let output = args.output;
    match args.action {
        Action::Delete { group } => delete(&cluster, &group, output).await,
        action => tokio::task::spawn_blocking(move || match action {
            Action::List => list(&cluster, output),
            Action::Describe { group } => print_description(&describe(&cluster, &group)?, output),
            Action::ResetOffsets(reset_args) => reset(&cluster, &reset_args, output),
            Action::Delete { .. } => Ok(()),
        })
        .await
        .context("the groups command failed unexpectedly")?,
    }
}

/// An RFC 3339 time (`2026-01-31T12:00:00Z`, fractions and offsets too) in milliseconds
/// since the Unix epoch.
fn parse_rfc3339_millis(s: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2026-01-31T12:00:00Z: {e}"))
}

/// Prints command output; a closed pipe (`| head`) is not an error.
fn emit_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut line = serde_json::to_string(value).context("cannot encode the output as JSON")?;
    line.push('\n');
    emit(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339() {
        assert_eq!(parse_rfc3339_millis("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339_millis("2024-02-29T12:34:56.789Z"),
            Ok(1_709_210_096_789)
        );
        assert_eq!(
            parse_rfc3339_millis("2024-02-29T14:34:56.7+02:00"),
            Ok(1_709_210_096_700)
        );
        assert_eq!(
            parse_rfc3339_millis("2024-02-29t07:04:56.123456-05:30"),
            Ok(1_709_210_096_123)
        );
        assert_eq!(parse_rfc3339_millis("1969-12-31T23:59:59Z"), Ok(-1000));
        for bad in [
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+0200",
            "2024-01-01T00:00:00Zjunk",
            "yesterday",
        ] {
            assert!(parse_rfc3339_millis(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_topic_specs() {
        let s: TopicSpec = "orders".parse().unwrap();
        assert_eq!((s.topic.as_str(), s.partitions), ("orders", None));
        let s: TopicSpec = "orders:0,2".parse().unwrap();
        assert_eq!(s.partitions, Some(vec![0, 2]));
        assert!("orders:x".parse::<TopicSpec>().is_err());
        assert!(":1".parse::<TopicSpec>().is_err());
    }
}
