//! The extractor's state: per changelog partition, the step sequences and the failure
//! buckets; read back from `ml-group-state` (read_committed, to its last stable offset)
//! when partitions are assigned.

use super::failures::Bucket;
use super::templates::Sequence;
use crate::sink::SinkError;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// One state entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Entry {
    Sequence(Box<Sequence>),
    Bucket(Bucket),
}

impl Entry {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let v = match self {
            Entry::Sequence(s) => serde_json::to_vec(s),
            Entry::Bucket(b) => serde_json::to_vec(b),
        };
        // Serializing these plain structs cannot fail.
        v.unwrap_or_default()
    }

    fn decode(key: &str, value: &[u8]) -> Result<Self, String> {
        let parsed = if key.starts_with("seq/") {
            serde_json::from_slice(value).map(|s| Entry::Sequence(Box::new(s)))
        } else if key.starts_with("failures/") {
            serde_json::from_slice(value).map(Entry::Bucket)
        } else {
            return Err(format!("unknown state key {key:?}"));
        };
        parsed.map_err(|e| format!("state {key:?}: {e}"))
    }
}

/// Changelog partition → key → entry.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) parts: HashMap<i32, HashMap<String, Entry>>,
}

impl State {
    pub(crate) fn get(&self, partition: i32, key: &str) -> Option<&Entry> {
        self.parts.get(&partition)?.get(key)
    }
}

/// A client context that does not log the end-of-partition events this reader asks
/// for (librdkafka reports them as errors too).
struct Quiet;

impl rdkafka::ClientContext for Quiet {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(
            error,
            KafkaError::PartitionEOF(_)
                | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        );
        if !eof {
            tracing::warn!("{CHANGELOG_READER}: {error}: {reason}");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for Quiet {}

const CHANGELOG_READER: &str = "state restore";

/// Reads `partitions` of the changelog from the start to their last stable offset.
pub(crate) fn read(
    brokers: &str,
    changelog: &str,
    partitions: &BTreeSet<i32>,
    limit: Duration,
) -> Result<HashMap<i32, HashMap<String, Entry>>, SinkError> {
    let mut out: HashMap<i32, HashMap<String, Entry>> =
        partitions.iter().map(|p| (*p, HashMap::new())).collect();
    if partitions.is_empty() {
        return Ok(out);
    }
    let unavailable = |e: KafkaError| SinkError::Unavailable(format!("{changelog}: {e}"));
    let consumer: BaseConsumer<Quiet> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "ml-group-restore")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("fetch.queue.backoff.ms", "10")
        .create_with_context(Quiet)
        .map_err(unavailable)?;
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(changelog, *p, Offset::Beginning)
            .map_err(unavailable)?;
    }
    consumer.assign(&tpl).map_err(unavailable)?;
    let mut open: BTreeSet<i32> = partitions.clone();
    let deadline = Instant::now() + limit;
    while !open.is_empty() {
        if Instant::now() >= deadline {
            return Err(SinkError::Unavailable(format!(
                "{changelog}: partitions {open:?} not read to their end within {limit:?}"
            )));
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            // Transport errors (a broker of the cluster stopped) pass: librdkafka
            // fetches from the new leader, and the deadline bounds the wait.
            Some(Err(e)) => tracing::debug!("{changelog}: {e}"),
            Some(Ok(m)) => {
                let (Some(key), Some(value)) = (m.key(), m.payload()) else {
                    continue;
                };
                let key = String::from_utf8_lossy(key).into_owned();
                let entry = Entry::decode(&key, value).map_err(SinkError::Fatal)?;
                out.entry(m.partition()).or_default().insert(key, entry);
            }
        }
    }
    Ok(out)
}
