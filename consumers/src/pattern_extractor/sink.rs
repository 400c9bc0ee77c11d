//! The transactional sink: per batch, one Kafka transaction holds the templates and
//! suggestions, the repartitioned failures, the dead letters, the changed state and the
//! consumed offsets (`send_offsets_to_transaction` with the consumer's group metadata,
//! so a member that lost its partitions is fenced, KIP-447).

use super::restore::{self, Entry, State};
use super::{changelog_partition, failures, templates, Model, CHANGELOG, REPARTITION};
use super::{SUGGESTIONS, TEMPLATES};
use crate::sink::{Batch, OffsetStore, Revocation, Sink, SinkError, TopicPartition, WriteOutcome};
use crate::txn::{self, Out, TxnProducer};
use agentbus_client::{AnyEvent, Topic};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use tracing::info;

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

/// What a batch computed: records to produce and state to keep once committed.
#[derive(Default)]
struct Computed {
    out: Vec<Out>,
    changed: HashMap<(i32, String), Entry>,
}

/// The pattern-extractor's sink.
pub struct ExtractorSink {
    settings: ExtractorSettings,
    producer: TxnProducer,
    state: State,
}

impl std::fmt::Debug for ExtractorSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtractorSink")
            .field("instance", &self.settings.instance)
            .finish()
    }
}

impl ExtractorSink {
    /// Creates the derived topics that are missing, and the transactional producer
    /// (`init_transactions` fences an older process of this instance and aborts its
    /// open transaction).
    pub async fn new(settings: ExtractorSettings) -> Result<Self, SinkError> {
        ensure_topics(&settings.brokers).await?;
        let producer = TxnProducer::new(&settings.brokers, PROCESSOR, &settings.instance).await?;
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
                        value: Some(r.json.clone().into_bytes()),
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
                            c.out.push(Out::json(TEMPLATES, pattern_id, &event));
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
                            c.out.push(Out::json(SUGGESTIONS, signature, &event));
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
                value: Some(entry.encode()),
                headers: Vec::new(),
                timestamp: None,
            });
        }
        c.out.extend(txn::dead_letters(batch, PROCESSOR));
        c.changed = changed;
        c
    }
}

/// Creates the derived topics that do not exist (their specs in the catalog; the
/// cluster's default replication). The db-writer, which stores two of them, calls it too.
pub async fn ensure_topics(brokers: &str) -> Result<(), SinkError> {
    let admin: AdminClient<DefaultClientContext> = agentbus_client::kafka_props::client_config()
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
        self.producer.transact(Some(batch), &computed.out)?;
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
        self.producer.check(CHANGELOG).await
    }
}

/// The topic whose events a topic carries (the repartition topic carries failures).
pub fn carriers() -> Vec<(String, Topic)> {
    vec![(REPARTITION.to_string(), Topic::FailurePatterns)]
}
