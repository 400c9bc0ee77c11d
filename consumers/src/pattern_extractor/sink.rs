//! The transactional sink: per batch, one Kafka transaction holds the templates and
//! suggestions, the repartitioned failures, the dead letters, the changed state and the
//! consumed offsets (`send_offsets_to_transaction` with the consumer's group metadata,
//! so a member that lost its partitions is fenced, KIP-447).

use super::restore::{self, Entry, State};
use super::{changelog_partition, failures, templates, Model, CHANGELOG, REPARTITION};
use super::{SUGGESTIONS, TEMPLATES};
use crate::dlq::dlq_topic;
use crate::sink::{
    Batch, OffsetStore, Revocation, Sink, SinkError, StoredOffset, TopicPartition, WriteOutcome,
};
use agentbus_client::{AnyEvent, Topic};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

const TXN_TIMEOUT: Duration = Duration::from_secs(30);
const PROCESSOR: &str = "pattern-extractor";

/// How the extractor reaches Kafka.
#[derive(Debug, Clone)]
pub struct ExtractorSettings {
    /// Bootstrap servers.
    pub brokers: String,
    /// This instance's name: `transactional.id = pattern-extractor-<instance>`. Keep it
    /// stable across restarts of one instance, so the new process fences the old one.
    pub instance: String,
    /// The thresholds and normalization rules.
    pub model: Model,
}

/// One record to produce in the transaction.
struct Out {
    topic: String,
    partition: Option<i32>,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    timestamp: Option<i64>,
}

/// What a batch computed: records to produce and state to keep once committed.
#[derive(Default)]
struct Computed {
    out: Vec<Out>,
    changed: HashMap<(i32, String), Entry>,
}

/// The pattern-extractor's sink.
pub struct ExtractorSink {
    settings: ExtractorSettings,
    /// A base producer: the commit waits for every delivery, so no poll thread and no
    /// delivery futures are needed.
    producer: Arc<BaseProducer>,
    state: State,
}

impl std::fmt::Debug for ExtractorSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtractorSink")
            .field("instance", &self.settings.instance)
            .finish()
    }
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

fn kafka(e: KafkaError) -> SinkError {
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

impl ExtractorSink {
    /// Creates the derived topics that are missing, and the transactional producer
    /// (`init_transactions` fences an older process of this instance and aborts its
    /// open transaction).
    pub async fn new(settings: ExtractorSettings) -> Result<Self, SinkError> {
        ensure_topics(&settings.brokers).await?;
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &settings.brokers)
            .set("client.id", format!("agentbus-{PROCESSOR}"))
            .set(
                "transactional.id",
                format!("{PROCESSOR}-{}", settings.instance),
            )
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
        info!(
            "transactional producer ready: transactional.id={PROCESSOR}-{}",
            settings.instance
        );
        Ok(Self {
            settings,
            producer,
            state: State::default(),
        })
    }

    /// The latest committed entry of `key`, as this batch left it so far.
    fn entry<'a>(
        &'a self,
        changed: &'a mut HashMap<(i32, String), Entry>,
        partition: i32,
        key: &str,
        fresh: impl FnOnce() -> Entry,
    ) -> &'a mut Entry {
        changed
            .entry((partition, key.to_string()))
            .or_insert_with(|| {
                self.state
                    .get(partition, key)
                    .cloned()
                    .unwrap_or_else(fresh)
            })
    }

    fn compute(&self, batch: &Batch<'_>) -> Computed {
        let model = &self.settings.model;
        let mut c = Computed::default();
        let mut changed = HashMap::new();
        for r in batch.records {
            let Some(cp) = changelog_partition(r.log(), r.partition) else {
                if let AnyEvent::FailurePattern(f) = &r.event {
                    // Stateless: on to the member that holds this error category.
                    c.out.push(Out {
                        topic: REPARTITION.to_string(),
                        partition: None,
                        key: Some(failures::bucket(f).into_bytes()),
                        value: r.json.clone().into_bytes(),
                        headers: Vec::new(),
                        timestamp: r.timestamp,
                    });
                }
                continue;
            };
            match &r.event {
                AnyEvent::TaskExecution(e) => {
                    let actions = templates::actions(e);
                    if actions.is_empty() {
                        continue;
                    }
                    let key = templates::key(e.fingerprint_id.as_str(), &actions);
                    let entry = self.entry(&mut changed, cp, &key, || {
                        Entry::Sequence(Box::new(templates::Sequence::new(
                            e.fingerprint_id.as_str(),
                            actions.clone(),
                        )))
                    });
                    if let Entry::Sequence(seq) = entry {
                        seq.add(e);
                        if let Some((pattern_id, event)) = seq.publish(&model.templates, e) {
                            c.out.push(json_out(TEMPLATES, pattern_id, &event));
                        }
                    }
                }
                AnyEvent::FailurePattern(f) if r.log() == REPARTITION => {
                    let bucket = failures::bucket(f);
                    let key = failures::key(&bucket);
                    let entry = self.entry(&mut changed, cp, &key, || {
                        Entry::Bucket(failures::Bucket::default())
                    });
                    if let Entry::Bucket(b) = entry {
                        if let Some((signature, event)) = b.add(&bucket, f, model) {
                            c.out.push(json_out(SUGGESTIONS, signature, &event));
                        }
                    }
                }
                _ => {}
            }
        }
        for ((cp, key), entry) in &changed {
            c.out.push(Out {
                topic: CHANGELOG.to_string(),
                partition: Some(*cp),
                key: Some(key.clone().into_bytes()),
                value: entry.encode(),
                headers: Vec::new(),
                timestamp: None,
            });
        }
        for d in batch.dead {
            c.out.push(Out {
                topic: dlq_topic(&d.topic),
                partition: None,
                key: d.key.clone(),
                value: d.value.clone().unwrap_or_default(),
                headers: d.headers(batch.group, PROCESSOR),
                timestamp: d.timestamp,
            });
        }
        c.changed = changed;
        c
    }

    /// Begin, produce, send the offsets, commit; abort on an abortable error.
    fn transact(&self, batch: &Batch<'_>, out: &[Out]) -> Result<(), SinkError> {
        let metadata = batch
            .group_metadata
            .ok_or_else(|| SinkError::Unavailable("no consumer group metadata yet".to_string()))?;
        self.producer.begin_transaction().map_err(kafka)?;
        let result = self.produce_and_commit(batch, out, metadata);
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
        batch: &Batch<'_>,
        out: &[Out],
        metadata: &rdkafka::consumer::ConsumerGroupMetadata,
    ) -> Result<(), SinkError> {
        for o in out {
            let mut headers = OwnedHeaders::new();
            for (k, v) in &o.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&o.topic)
                .payload(o.value.as_slice())
                .headers(headers);
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
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), range) in batch.ranges {
            offsets
                .add_partition_offset(topic, *partition, Offset::Offset(range.next))
                .map_err(kafka)?;
        }
        self.producer
            .send_offsets_to_transaction(&offsets, metadata, TXN_TIMEOUT)
            .map_err(kafka)?;
        // `commit_transaction` flushes first, polling in steps of 100 ms: wait for the
        // deliveries here in short steps, so that a commit takes what the broker takes.
        let until = std::time::Instant::now() + TXN_TIMEOUT;
        while self.producer.in_flight_count() > 0 && std::time::Instant::now() < until {
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
}

fn json_out(topic: &str, key: String, event: &impl serde::Serialize) -> Out {
    Out {
        topic: topic.to_string(),
        partition: None,
        key: Some(key.into_bytes()),
        // Serializing these plain structs cannot fail.
        value: serde_json::to_vec(event).unwrap_or_default(),
        headers: Vec::new(),
        timestamp: None,
    }
}

/// Creates the derived topics that do not exist (their specs in the catalog; the
/// cluster's default replication). The db-writer, which stores two of them, calls it too.
pub async fn ensure_topics(brokers: &str) -> Result<(), SinkError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| SinkError::Fatal(format!("admin client: {e}")))?;
    let specs = agentbus_client::catalog::derived();
    let configs: Vec<BTreeMap<String, String>> = specs.iter().map(|s| s.all_configs()).collect();
    let new: Vec<NewTopic<'_>> = specs
        .iter()
        .zip(&configs)
        .map(|(s, c)| {
            let mut t = NewTopic::new(&s.name, s.partitions, TopicReplication::Fixed(-1));
            for (k, v) in c {
                if k != "min.insync.replicas" {
                    t = t.set(k, v);
                }
            }
            t
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&new, &options)
        .await
        .map_err(|e| SinkError::Unavailable(format!("creating the derived topics: {e}")))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(SinkError::Unavailable(format!("creating {topic}: {code}")))
            }
        }
    }
    Ok(())
}

impl Sink for ExtractorSink {
    fn offset_store(&self) -> OffsetStore {
        OffsetStore::KafkaTransaction
    }

    async fn stored_offsets(
        &mut self,
        _group: &str,
        _partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, StoredOffset>, SinkError> {
        Ok(BTreeMap::new())
    }

    async fn assigned(&mut self, partitions: &[TopicPartition]) -> Result<(), SinkError> {
        let wanted: BTreeSet<i32> = partitions
            .iter()
            .filter_map(|(t, p)| changelog_partition(t, *p))
            .collect();
        let brokers = self.settings.brokers.clone();
        let read = wanted.clone();
        let restored = tokio::task::spawn_blocking(move || {
            restore::read(&brokers, CHANGELOG, &read, Duration::from_secs(100))
        })
        .await
        .map_err(|e| SinkError::Unavailable(e.to_string()))??;
        let entries: usize = restored.values().map(HashMap::len).sum();
        self.state.parts.extend(restored);
        info!(
            partitions = wanted.len(),
            entries, "state restored from {CHANGELOG}"
        );
        Ok(())
    }

    async fn write(&mut self, batch: &Batch<'_>) -> Result<WriteOutcome, SinkError> {
        let computed = self.compute(batch);
        // librdkafka's transaction calls block; the runtime polls sinks on the group's
        // own consumer thread, so blocking here holds up nothing else.
        self.transact(batch, &computed.out)?;
        for ((cp, key), entry) in computed.changed {
            self.state.parts.entry(cp).or_default().insert(key, entry);
        }
        Ok(WriteOutcome {
            written: batch.records.len() as u64,
            ..WriteOutcome::default()
        })
    }

    async fn revoked(
        &mut self,
        partitions: &[TopicPartition],
        _how: Revocation,
    ) -> Result<(), SinkError> {
        for (t, p) in partitions {
            if let Some(cp) = changelog_partition(t, *p) {
                self.state.parts.remove(&cp);
            }
        }
        Ok(())
    }

    async fn check(&mut self) -> Result<(), SinkError> {
        let p = self.producer.clone();
        tokio::task::spawn_blocking(move || {
            p.client()
                .fetch_metadata(Some(CHANGELOG), Duration::from_secs(5))
                .map(|_| ())
        })
        .await
        .map_err(|e| SinkError::Unavailable(e.to_string()))?
        .map_err(|e| SinkError::Unavailable(e.to_string()))
    }
}

/// The topic whose events a topic carries (the repartition topic carries failures).
pub fn carriers() -> Vec<(String, Topic)> {
    vec![(REPARTITION.to_string(), Topic::FailurePatterns)]
}
