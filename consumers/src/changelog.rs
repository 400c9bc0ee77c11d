//! Reading a compacted state changelog back (read_committed, to its last stable offset)
//! when partitions are assigned: the transactional sinks keep their state there.

use crate::sink::SinkError;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

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

/// Reads `partitions` of `changelog` from the start to their last stable offset; the
/// latest value of each key, decoded by `decode` (a tombstone removes the key).
pub(crate) fn read<E>(
    brokers: &str,
    changelog: &str,
    partitions: &BTreeSet<i32>,
    limit: Duration,
    decode: impl Fn(&str, &[u8]) -> Result<E, String>,
) -> Result<HashMap<i32, HashMap<String, E>>, SinkError> {
    let mut out: HashMap<i32, HashMap<String, E>> =
        partitions.iter().map(|p| (*p, HashMap::new())).collect();
    if partitions.is_empty() {
        return Ok(out);
    }
    let unavailable = |e: KafkaError| SinkError::Unavailable(format!("{changelog}: {e}"));
    let consumer: BaseConsumer<Quiet> = agentbus_client::kafka_props::client_config()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{changelog}-restore"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("fetch.queue.backoff.ms", "10")
        // An empty changelog answers a fetch only after the broker's wait: keep it short,
        // the reader is done once every partition reported its end.
        .set("fetch.wait.max.ms", "10")
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
                let Some(key) = m.key() else {
                    continue;
                };
                let key = String::from_utf8_lossy(key).into_owned();
                let part = out.entry(m.partition()).or_default();
                match m.payload() {
                    Some(value) => {
                        let entry = decode(&key, value).map_err(SinkError::Fatal)?;
                        part.insert(key, entry);
                    }
                    None => {
                        part.remove(&key);
                    }
                }
            }
        }
    }
    Ok(out)
}
