//! The transactional producer the Kafka-to-Kafka sinks share (pattern-extractor,
//! alert-manager): per batch, one transaction holds the outputs, the dead letters, the
//! changed state and the consumed offsets (`send_offsets_to_transaction` with the
//! consumer's group metadata, so a member that lost its partitions is fenced, KIP-447).

use crate::dlq::dlq_topic;
use crate::sink::{Batch, Range, SinkError, TopicPartition};
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// One record to produce in a transaction.
#[derive(Debug, Clone)]
pub(crate) struct Out {
    pub(crate) topic: String,
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<Vec<u8>>,
    /// `None`: a tombstone (a compacted changelog forgets the key).
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) timestamp: Option<i64>,
}

impl Out {
    /// `event` as JSON to `topic`, keyed by `key`.
    pub(crate) fn json(topic: &str, key: String, event: &impl serde::Serialize) -> Self {
        Self {
            topic: topic.to_string(),
            partition: None,
            key: Some(key.into_bytes()),
            // Serializing these plain structs cannot fail.
            value: Some(serde_json::to_vec(event).unwrap_or_default()),
            headers: Vec::new(),
            timestamp: None,
        }
    }
}

/// The batch's dead letters as records for their DLQ topics.
pub(crate) fn dead_letters(batch: &Batch<'_>, processor: &str) -> Vec<Out> {
    batch
        .dead
        .iter()
        .map(|d| Out {
            topic: dlq_topic(&d.topic),
            partition: None,
            key: d.key.clone(),
            value: Some(d.value.clone().unwrap_or_default()),
            headers: d.headers(batch.group, processor),
            timestamp: d.timestamp,
        })
        .collect()
}

/// Whether `code` says that a newer process of this instance took the transactional id.
fn fenced(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Fenced
            | RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
    )
}

pub(crate) fn kafka(e: KafkaError) -> SinkError {
    match &e {
        KafkaError::Transaction(r) if r.is_fatal() || fenced(r.code()) => {
            SinkError::Fatal(format!("transactional producer: {e} (fenced by a newer instance with the same transactional.id?)"))
        }
        _ if e.rdkafka_error_code().is_some_and(fenced) => SinkError::Fatal(format!(
            "transactional producer: {e} (fenced by a newer instance with the same transactional.id)"
        )),
        _ => SinkError::Unavailable(e.to_string()),
    }
}

/// A transactional producer with `transactional.id = <processor>-<instance>`.
#[derive(Clone)]
pub(crate) struct TxnProducer {
    /// A base producer: the commit waits for every delivery, so no poll thread and no
    /// delivery futures are needed.
    producer: Arc<BaseProducer>,
}

impl std::fmt::Debug for TxnProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnProducer").finish()
    }
}

impl TxnProducer {
    /// Creates the producer; `init_transactions` fences an older process of this
    /// instance and aborts its open transaction.
    pub(crate) async fn new(
        brokers: &str,
        processor: &str,
        instance: &str,
    ) -> Result<Self, SinkError> {
        let id = format!("{processor}-{instance}");
        let producer: BaseProducer = agentbus_client::kafka_props::client_config()
            .set("bootstrap.servers", brokers)
            .set("client.id", format!("agentbus-{processor}"))
            .set("transactional.id", &id)
            .set("transaction.timeout.ms", "60000")
            .set("linger.ms", "2")
            .set("queue.buffering.max.messages", "1000000")
            .create()
            .map_err(|e| SinkError::Fatal(format!("producer: {e}")))?;
        let producer = Arc::new(producer);
        let p = producer.clone();
        tokio::task::spawn_blocking(move || p.init_transactions(TXN_TIMEOUT))
            .await
            .map_err(|e| SinkError::Fatal(e.to_string()))?
            .map_err(kafka)?;
        info!("transactional producer ready: transactional.id={id}");
        Ok(Self { producer })
    }

    /// Produces `out` and the batch's offsets (when `batch` is given) in one
    /// transaction: begin, produce, send the offsets, commit; abort on an abortable
    /// error. Blocks (librdkafka's transaction calls do).
    pub(crate) fn transact(&self, batch: Option<&Batch<'_>>, out: &[Out]) -> Result<(), SinkError> {
        let offsets = match batch {
            Some(b) => Some((
                b.ranges,
                b.group_metadata.ok_or_else(|| {
                    SinkError::Unavailable("no consumer group metadata yet".to_string())
                })?,
            )),
            None => None,
        };
        self.producer.begin_transaction().map_err(kafka)?;
        let result = self.produce_and_commit(offsets, out);
        if result.is_err() {
            // A fenced producer has a fatal error whatever the call that met it said; it
            // cannot abort (the attempt would wait out its timeout), only stop.
            if let Some((code, reason)) = self.producer.client().fatal_error() {
                return Err(SinkError::Fatal(format!(
                    "transactional producer: {reason} ({code:?}; fenced by a newer instance with the same transactional.id?)"
                )));
            }
        }
        if let Err(e) = &result {
            if !matches!(e, SinkError::Fatal(_)) {
                warn!("aborting the transaction: {e}");
                if let Err(abort) = self.producer.abort_transaction(TXN_TIMEOUT) {
                    return Err(kafka(abort));
                }
            }
        }
        result
    }

    fn produce_and_commit(
        &self,
        offsets: Option<(&BTreeMap<TopicPartition, Range>, &ConsumerGroupMetadata)>,
        out: &[Out],
    ) -> Result<(), SinkError> {
        for o in out {
            let mut headers = OwnedHeaders::new();
            for (k, v) in &o.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&o.topic).headers(headers);
            if let Some(v) = &o.value {
                record = record.payload(v.as_slice());
            }
            if let Some(k) = &o.key {
                record = record.key(k.as_slice());
            }
            if let Some(p) = o.partition {
                record = record.partition(p);
            }
            if let Some(ts) = o.timestamp {
                record = record.timestamp(ts);
            }
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        self.producer.poll(Duration::from_millis(5));
                    }
                    Err((e, _)) => return Err(kafka(e)),
                }
            }
        }
        if let Some((ranges, metadata)) = offsets {
            let mut tpl = TopicPartitionList::new();
            for ((topic, partition), range) in ranges {
                tpl.add_partition_offset(topic, *partition, Offset::Offset(range.next))
                    .map_err(kafka)?;
            }
            self.producer
                .send_offsets_to_transaction(&tpl, metadata, TXN_TIMEOUT)
                .map_err(kafka)?;
        }
        // `commit_transaction` flushes first, polling in steps of 100 ms: wait for the
        // deliveries here in short steps, so that a commit takes what the broker takes.
        let until = Instant::now() + TXN_TIMEOUT;
        while self.producer.in_flight_count() > 0 && Instant::now() < until {
            self.producer.poll(Duration::from_millis(1));
        }
        let mut tries = 0;
        loop {
            match self.producer.commit_transaction(TXN_TIMEOUT) {
                Ok(()) => break,
                Err(KafkaError::Transaction(e)) if e.is_retriable() && tries < 3 => {
                    tries += 1;
                    warn!("commit not confirmed ({e}); asking again");
                }
                Err(e) => return Err(kafka(e)),
            }
        }
        Ok(())
    }

    /// Whether the cluster answers (a metadata request for `topic`).
    pub(crate) async fn check(&self, topic: &'static str) -> Result<(), SinkError> {
        let p = self.producer.clone();
        tokio::task::spawn_blocking(move || {
            p.client()
                .fetch_metadata(Some(topic), Duration::from_secs(5))
                .map(|_| ())
        })
        .await
        .map_err(|e| SinkError::Unavailable(e.to_string()))?
        .map_err(|e| SinkError::Unavailable(e.to_string()))
    }
}
