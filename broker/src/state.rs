//! The broker's topics and partitions, shared by every connection.

use crate::clock::Clock;
use crate::cluster::{ClusterView, Node};
use crate::config::{BrokerConfig, StorageConfig};
use crate::group::Coordinator;
use crate::log::batch::{self, BatchHeader};
use crate::log::epochs::LeaderEpochs;
use crate::log::{disk::DiskLog, memory::MemoryLog, Log, LogError};
use crate::meta::{MetaError, MetaStore, TopicRecord};
use crate::topic_config::{TopicConfigError, TopicConfigs};
use crate::txn::coordinator::TxnCoordinator;
use crate::txn::markers;
use crate::txn::partition_txns::PartitionTxns;
use crate::txn::producer_ids::ProducerIds;
use crate::txn::producer_state::{ProducerStates, SequenceError, Sequenced};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use tokio::sync::Notify;
use uuid::Uuid;

/// Why a topic operation failed; each maps to a Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("Topic '{0}' already exists.")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("Number of partitions must be larger than 0 (got {0}).")]
    InvalidPartitions(i32),
    #[error("{0}")]
    PartitionsNotIncreased(String),
    #[error("Replication factor must be 1 on a single broker (got {0}).")]
    InvalidReplicationFactor(i16),
    #[error(transparent)]
    InvalidConfig(#[from] TopicConfigError),
    #[error("This server does not host this topic-partition.")]
    Unknown,
    #[error("metadata store: {0}")]
    Meta(#[from] MetaError),
    #[error("log: {0}")]
    Log(#[from] LogError),
}

impl TopicError {
    pub fn code(&self) -> ResponseError {
        match self {
            TopicError::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
            TopicError::InvalidName(_) => ResponseError::InvalidTopicException,
            TopicError::InvalidPartitions(_) | TopicError::PartitionsNotIncreased(_) => {
                ResponseError::InvalidPartitions
            }
            TopicError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            TopicError::InvalidConfig(_) => ResponseError::InvalidConfig,
            TopicError::Unknown => ResponseError::UnknownTopicOrPartition,
            TopicError::Meta(_) | TopicError::Log(_) => ResponseError::KafkaStorageError,
        }
    }
}

/// Checks a topic name as Kafka does.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::InvalidName(
            "Topic name is illegal, it can't be empty".into(),
        ));
    }
    if name == "." || name == ".." {
        return Err(TopicError::InvalidName(format!(
            "Topic name cannot be \".\" or \"..\" (got {name})"
        )));
    }
    if name.len() > 249 {
        return Err(TopicError::InvalidName(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        )));
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-')
    {
        return Err(TopicError::InvalidName(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// One partition: its log, its producers' sequence state and its leader epoch history.
#[derive(Debug)]
pub struct Partition {
    pub index: i32,
    /// Log and producer state change together under one lock, so a sequence check and
    /// the append it allows cannot interleave with another producer's.
    inner: Mutex<PartitionData>,
    /// The leader epochs and where each began (kept beside a disk log).
    epochs: Mutex<LeaderEpochs>,
    /// Where the producer-state snapshot goes (disk backend only).
    snapshot_path: Option<PathBuf>,
}

#[derive(Debug)]
struct PartitionData {
    log: Box<dyn Log>,
    producers: ProducerStates,
    txns: PartitionTxns,
}

/// A producer-state snapshot: the state after every batch below `offset`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ProducerSnapshot {
    offset: i64,
    producers: ProducerStates,
    #[serde(default)]
    txns: PartitionTxns,
}

/// What a fetch gets from one partition.
#[derive(Debug, Clone)]
pub struct Read {
    pub bytes: Bytes,
    pub offsets: Offsets,
    /// Aborted transactions overlapping the data (read_committed only).
    pub aborted: Vec<crate::txn::partition_txns::AbortedTxn>,
}

impl PartitionData {
    fn offsets(&self) -> Offsets {
        let hw = self.log.end_offset();
        Offsets {
            log_start: self.log.start_offset(),
            high_watermark: hw,
            last_stable: self.txns.last_stable_offset(hw),
        }
    }
}

/// Why an append was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Offsets of a partition at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    pub log_start: i64,
    pub high_watermark: i64,
    pub last_stable: i64,
}

/// The result of appending a produce request's batches.
#[derive(Debug, Clone, Copy)]
pub struct Appended {
    pub base_offset: i64,
    /// The broker's timestamp for log-append-time topics, else -1.
    pub log_append_time: i64,
    pub log_start_offset: i64,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves data that is still consistent at batch
    // granularity (appends are single calls), so keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Partition {
    /// Wraps an opened log, rebuilding producer state from the snapshot (if any) and the
    /// batches written after it.
    fn open(
        index: i32,
        log: Box<dyn Log>,
        snapshot_path: Option<PathBuf>,
        epochs_path: Option<PathBuf>,
    ) -> Result<Self, LogError> {
        let start = log.start_offset();
        let end = log.end_offset();
        let snapshot = snapshot_path.as_deref().and_then(read_snapshot);
        let (from, mut producers, mut txns) = match snapshot {
            Some(s) if s.offset <= end && s.offset >= start => (s.offset, s.producers, s.txns),
            _ => (start, ProducerStates::default(), PartitionTxns::default()),
        };
        log.scan_batches(from, &mut |h, bytes| {
            producers.record(h);
            txns.on_append(h, markers::marker_type(h, bytes));
        })?;
        Ok(Self {
            index,
            inner: Mutex::new(PartitionData {
                log,
                producers,
                txns,
            }),
            epochs: Mutex::new(LeaderEpochs::open(epochs_path, start, end)),
            snapshot_path,
        })
    }

    /// Starts a new leader epoch at the current log end (leadership moved).
    pub fn bump_leader_epoch(&self) {
        let end = lock(&self.inner).log.end_offset();
        if let Err(e) = lock(&self.epochs).bump(end) {
            // The epoch moves on in memory; a restart would answer from the older list.
            tracing::warn!(partition = self.index, error = %e, "cannot keep the leader epochs");
        }
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        lock(&self.epochs).current()
    }

    pub fn offsets(&self) -> Offsets {
        lock(&self.inner).offsets()
    }

    /// Appends validated batches, assigning offsets; the caller checked sizes and CRCs.
    /// Idempotent batches are checked against their producer's sequences first; a retried
    /// batch is answered with its original offset and not stored again.
    /// `log_append_time` is the broker's timestamp for log-append-time topics.
    pub fn append(
        &self,
        batches: &[(BatchHeader, Bytes)],
        log_append_time: Option<i64>,
    ) -> Result<Appended, AppendError> {
        let epoch = self.leader_epoch();
        let ts = log_append_time;
        let mut data = lock(&self.inner);
        let data = &mut *data;
        let mut base_offset = None;
        for (header, bytes) in batches {
            if let Sequenced::Duplicate {
                base_offset: original,
            } = data.producers.check(header)?
            {
                base_offset.get_or_insert(original);
                continue;
            }
            let offset = data.log.end_offset();
            // Log-append-time changes CRC-covered bytes, so only then is the batch copied;
            // otherwise the log writes the offset and epoch itself.
            let stored = match ts {
                Some(_) => batch::stamp(bytes, offset, epoch, ts),
                None => bytes.clone(),
            };
            let mut h = *header;
            h.base_offset = offset;
            h.leader_epoch = epoch;
            if let Some(ts) = ts {
                h.max_timestamp = ts;
            }
            data.log.append(&h, stored)?;
            data.producers.record(&h);
            data.txns.on_append(&h, None);
            base_offset.get_or_insert(offset);
        }
        Ok(Appended {
            base_offset: base_offset.unwrap_or_else(|| data.log.end_offset()),
            log_append_time: ts.unwrap_or(-1),
            log_start_offset: data.log.start_offset(),
        })
    }

    /// Reads whole batches from `offset`, at most `max_bytes` beyond the first batch. With
    /// `read_committed` the data stops at the last stable offset and the aborted
    /// transactions in the range returned come along.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        read_committed: bool,
    ) -> Result<Read, LogError> {
        let data = lock(&self.inner);
        let offsets = data.offsets();
        let mut bytes = data.log.read(offset, max_bytes)?;
        if !read_committed {
            return Ok(Read {
                bytes,
                offsets,
                aborted: Vec::new(),
            });
        }
        if offset >= offsets.last_stable {
            bytes = Bytes::new();
        } else {
            let (headers, _) = batch::scan_valid(&bytes);
            let keep: usize = headers
                .iter()
                .take_while(|h| h.base_offset < offsets.last_stable)
                .map(|h| h.size)
                .sum();
            bytes.truncate(keep);
        }
        let end = batch::scan_valid(&bytes)
            .0
            .last()
            .map_or(offset, |h| h.last_offset() + 1);
        let aborted = data.txns.aborted_between(offset, end);
        Ok(Read {
            bytes,
            offsets,
            aborted,
        })
    }

    /// Keeps only the latest record of each key (log compaction). Control and
    /// transactional batches are kept whole. Returns how many records went.
    pub fn compact(&self, max_decompressed: usize) -> Result<usize, LogError> {
        use kafka_protocol::records::{RecordBatchEncoder, RecordEncodeOptions};
        let corrupt = |reason: String| LogError::Corrupt {
            path: "compaction".into(),
            reason,
        };
        let mut data = lock(&self.inner);
        let start = data.log.start_offset();
        let mut batches: Vec<(BatchHeader, Bytes)> = Vec::new();
        data.log.scan_batches(start, &mut |h, b| {
            batches.push((*h, Bytes::copy_from_slice(b)))
        })?;
        let mut decoded = Vec::with_capacity(batches.len());
        let mut latest: std::collections::HashMap<Bytes, i64> = std::collections::HashMap::new();
        for (h, b) in &batches {
            if h.is_control() || h.is_transactional() {
                decoded.push(None);
                continue;
            }
            let set = crate::log::records::decode(b, max_decompressed)
                .map_err(|e| corrupt(format!("{e:#}")))?;
            for r in &set.records {
                if let Some(k) = &r.key {
                    latest.insert(k.clone(), r.offset);
                }
            }
            decoded.push(Some(set));
        }
        let mut removed = 0;
        let mut out = Vec::with_capacity(batches.len());
        for ((h, b), set) in batches.into_iter().zip(decoded) {
            let Some(set) = set else {
                out.push((h, b));
                continue;
            };
            let total = set.records.len();
            let kept: Vec<_> = set
                .records
                .into_iter()
                .filter(|r| {
                    r.key
                        .as_ref()
                        .is_none_or(|k| latest.get(k) == Some(&r.offset))
                })
                .collect();
            removed += total - kept.len();
            if kept.len() == total {
                out.push((h, b));
            } else if !kept.is_empty() {
                let mut buf = bytes::BytesMut::new();
                RecordBatchEncoder::encode(
                    &mut buf,
                    &kept,
                    &RecordEncodeOptions {
                        version: 2,
                        compression: set.compression,
                    },
                )
                .map_err(|e| corrupt(e.to_string()))?;
                let bytes = buf.freeze();
                let mut nh = BatchHeader::parse(&bytes).map_err(|e| corrupt(e.to_string()))?;
                nh.leader_epoch = h.leader_epoch;
                out.push((nh, bytes));
            }
        }
        if removed > 0 {
            data.log.replace(out)?;
        }
        Ok(removed)
    }

    /// Writes a commit or abort marker for `producer_id`'s transaction; returns its offset.
    pub fn write_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        timestamp: i64,
    ) -> Result<i64, LogError> {
        let leader_epoch = self.leader_epoch();
        let mut data = lock(&self.inner);
        let offset = data.log.end_offset();
        let marker = markers::marker(producer_id, epoch, commit, 0, timestamp);
        let mut h = BatchHeader::parse(&marker).map_err(|e| LogError::Corrupt {
            path: "marker".into(),
            reason: e.to_string(),
        })?;
        h.base_offset = offset;
        h.leader_epoch = leader_epoch;
        data.log.append(&h, marker)?;
        data.producers.record(&h);
        data.txns.on_append(&h, Some(commit));
        Ok(offset)
    }

    /// The open transaction's first offset here for `producer_id`, and the producers seen.
    pub fn producers(&self) -> Vec<crate::txn::producer_state::ProducerSummary> {
        let data = lock(&self.inner);
        data.producers
            .summaries()
            .into_iter()
            .map(|mut p| {
                p.txn_start_offset = data.txns.open_since(p.producer_id).unwrap_or(-1);
                p
            })
            .collect()
    }

    /// Runs `f` with the log locked (for lookups that need several calls).
    pub fn with_log<R>(&self, f: impl FnOnce(&mut dyn Log) -> R) -> R {
        let mut data = lock(&self.inner);
        f(data.log.as_mut())
    }

    /// Flushes the log and writes the producer-state snapshot.
    pub fn flush(&self) -> Result<(), LogError> {
        let mut data = lock(&self.inner);
        data.log.flush()?;
        if let Some(path) = &self.snapshot_path {
            let snapshot = ProducerSnapshot {
                offset: data.log.end_offset(),
                producers: data.producers.clone(),
                txns: data.txns.clone(),
            };
            write_snapshot(path, &snapshot)?;
        }
        Ok(())
    }

    /// End offset of `epoch` as OffsetForLeaderEpoch defines it: the start offset of the
    /// next higher epoch, or the log end for the current one; `None` if unknown.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let end = lock(&self.inner).log.end_offset();
        lock(&self.epochs).end_offset_for(epoch, end)
    }
}

fn read_snapshot(path: &std::path::Path) -> Option<ProducerSnapshot> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable producer-state snapshot");
            None
        }
    }
}

fn write_snapshot(path: &std::path::Path, snapshot: &ProducerSnapshot) -> Result<(), LogError> {
    let json = serde_json::to_vec(snapshot).map_err(|e| LogError::Corrupt {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json).map_err(|e| LogError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| LogError::io(path, e))
}

/// A topic and its partitions.
#[derive(Debug)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    configs: RwLock<TopicConfigs>,
    partitions: RwLock<Vec<Arc<Partition>>>,
}

impl Topic {
    pub fn configs(&self) -> TopicConfigs {
        self.configs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        let parts = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        usize::try_from(index)
            .ok()
            .and_then(|i| parts.get(i).cloned())
    }

    pub fn partition_count(&self) -> i32 {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len() as i32
    }
}

/// Shared broker state.
#[derive(Debug)]
pub struct State {
    pub config: BrokerConfig,
    /// Host and port given to clients.
    pub advertised: (String, u16),
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    meta: MetaStore,
    producer_ids: ProducerIds,
    /// Consumer groups and committed offsets.
    pub groups: Coordinator,
    /// Transactional ids and their transactions.
    pub txns: TxnCoordinator,
    /// Woken on every append so parked fetches can re-check.
    pub appended: Notify,
    /// The brokers presented to clients, partition leaders, coordinator placement.
    pub cluster: ClusterView,
    /// Test hooks: injected faults, recorded requests, strict mode.
    pub faults: crate::faults::Faults,
    /// The broker's time (advanced by tests).
    pub clock: Clock,
    /// Declared last, so dropped after the storage: once no one owns it, the files (and
    /// the metadata store's lock) are let go and a broker can open the same directory.
    released: Arc<()>,
}

impl State {
    /// Has no owner once this state and its storage are fully dropped. The state's own
    /// strong count reaches zero before its fields are dropped, so it cannot tell that.
    pub fn storage_released(&self) -> std::sync::Weak<()> {
        Arc::downgrade(&self.released)
    }

    /// Opens the storage and loads the topics it holds.
    pub fn open(config: BrokerConfig, advertised: (String, u16)) -> Result<Self, TopicError> {
        let meta = match &config.storage {
            StorageConfig::Memory => MetaStore::memory(),
            StorageConfig::Disk(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
                MetaStore::open(dir)?
            }
        };
        let producer_ids = ProducerIds::open(&meta)?;
        let clock = Clock::default();
        let groups = Coordinator::open(config.group, clock.clone(), &meta)?;
        let txns = TxnCoordinator::open(&meta, clock.clone(), config.transaction_max_timeout_ms)?;
        let state = Self {
            config,
            advertised,
            topics: RwLock::new(BTreeMap::new()),
            meta,
            producer_ids,
            groups,
            txns,
            appended: Notify::new(),
            cluster: ClusterView::default(),
            faults: Default::default(),
            clock,
            released: Arc::new(()),
        };
        state.cluster.add_node(Node {
            id: state.config.node_id,
            host: state.advertised.0.clone(),
            port: state.advertised.1,
            rack: None,
            up: true,
        });
        for (name, rec) in state.meta.load_topics()? {
            let topic = state.build_topic(&name, rec.id, rec.partitions, rec.configs)?;
            state.write_topics().insert(name, Arc::new(topic));
        }
        Ok(state)
    }

    fn write_topics(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read_topics(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.read().unwrap_or_else(|p| p.into_inner())
    }

    fn partition_dir(&self, topic: &str, partition: i32) -> Option<PathBuf> {
        match &self.config.storage {
            StorageConfig::Memory => None,
            StorageConfig::Disk(dir) => Some(dir.join(format!("{topic}-{partition}"))),
        }
    }

    fn open_partition(
        &self,
        topic: &str,
        partition: i32,
        configs: &TopicConfigs,
    ) -> Result<Partition, LogError> {
        let log_config = configs.log_config(&self.config);
        let (log, snapshot, epochs): (Box<dyn Log>, _, _) =
            match self.partition_dir(topic, partition) {
                None => (Box::new(MemoryLog::new(log_config)), None, None),
                Some(dir) => (
                    Box::new(DiskLog::open(&dir, log_config)?.with_clock(self.clock.clone())),
                    Some(dir.join("producer-state.json")),
                    Some(dir.join(crate::log::epochs::CHECKPOINT_FILE)),
                ),
            };
        Partition::open(partition, log, snapshot, epochs)
    }

    /// The metadata store.
    pub(crate) fn meta(&self) -> &MetaStore {
        &self.meta
    }

    /// The next producer id InitProducerId would hand out: how many were handed out
    /// (for tests of clients that should not ask for one).
    pub fn producer_id_count(&self) -> i64 {
        self.producer_ids.next()
    }

    /// A new producer id for InitProducerId.
    pub fn allocate_producer_id(&self) -> Result<i64, MetaError> {
        self.producer_ids.allocate(&self.meta)
    }

    fn build_topic(
        &self,
        name: &str,
        id: Uuid,
        partitions: i32,
        configs: TopicConfigs,
    ) -> Result<Topic, TopicError> {
        let mut parts = Vec::with_capacity(partitions as usize);
        for p in 0..partitions {
            parts.push(Arc::new(self.open_partition(name, p, &configs)?));
        }
        Ok(Topic {
            name: name.to_string(),
            id,
            configs: RwLock::new(configs),
            partitions: RwLock::new(parts),
        })
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.read_topics().get(name).cloned()
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.read_topics().values().find(|t| t.id == id).cloned()
    }

    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.read_topics().values().cloned().collect()
    }

    /// Checks a creation without doing it; returns the partition count that would be used.
    pub fn check_create(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> Result<i32, TopicError> {
        validate_topic_name(name)?;
        if self.read_topics().contains_key(name) {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        let partitions = if partitions == -1 {
            self.config.default_partitions
        } else {
            partitions
        };
        if partitions < 1 {
            return Err(TopicError::InvalidPartitions(partitions));
        }
        if replication_factor != -1 && replication_factor != 1 {
            return Err(TopicError::InvalidReplicationFactor(replication_factor));
        }
        Ok(partitions)
    }

    /// Creates a topic (`partitions` -1 = broker default).
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: TopicConfigs,
    ) -> Result<Arc<Topic>, TopicError> {
        let partitions = self.check_create(name, partitions, replication_factor)?;
        let id = Uuid::new_v4();
        let topic = Arc::new(self.build_topic(name, id, partitions, configs.clone())?);
        let mut topics = self.write_topics();
        if topics.contains_key(name) {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        let stored = self.meta.put_topic(
            name,
            &TopicRecord {
                id,
                partitions,
                configs,
            },
        );
        if let Err(e) = stored {
            drop(topics);
            self.remove_partition_dirs(name, 0..partitions);
            return Err(e.into());
        }
        topics.insert(name.to_string(), topic.clone());
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Creates a topic on first use when `auto.create.topics.enable` is on.
    pub fn get_or_auto_create(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        if let Some(t) = self.topic(name) {
            return Ok(t);
        }
        match self.create_topic(name, -1, -1, TopicConfigs::default()) {
            Err(TopicError::AlreadyExists(_)) => self.topic(name).ok_or(TopicError::Unknown),
            other => other,
        }
    }

    /// Deletes a topic and its data.
    pub fn delete_topic(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        let mut topics = self.write_topics();
        if !topics.contains_key(name) {
            return Err(TopicError::Unknown);
        }
        // The record first: if it cannot be removed, the topic stays, in memory and on disk.
        self.meta.delete_topic(name)?;
        let topic = topics.remove(name).ok_or(TopicError::Unknown)?;
        drop(topics);
        self.remove_partition_dirs(name, 0..topic.partition_count());
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
    }

    /// Grows a topic to `count` partitions (`validate_only` checks only).
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let topic = self.topic(name).ok_or(TopicError::Unknown)?;
        let current = topic.partition_count();
        if count <= current {
            return Err(TopicError::PartitionsNotIncreased(format!(
                "Topic currently has {current} partitions, which is higher than the requested {count}."
            )));
        }
        if validate_only {
            return Ok(());
        }
        let configs = topic.configs();
        let mut parts = topic.partitions.write().unwrap_or_else(|p| p.into_inner());
        let from = parts.len() as i32;
        let mut added = Vec::with_capacity((count - from) as usize);
        for p in from..count {
            match self.open_partition(name, p, &configs) {
                Ok(partition) => added.push(Arc::new(partition)),
                Err(e) => {
                    self.remove_partition_dirs(name, from..p);
                    return Err(e.into());
                }
            }
        }
        // The record before the partitions are served: a failed write leaves the topic
        // as it was.
        let stored = self.meta.put_topic(
            name,
            &TopicRecord {
                id: topic.id,
                partitions: count,
                configs,
            },
        );
        if let Err(e) = stored {
            drop(added);
            self.remove_partition_dirs(name, from..count);
            return Err(e.into());
        }
        parts.extend(added);
        Ok(())
    }

    fn remove_partition_dirs(&self, topic: &str, partitions: std::ops::Range<i32>) {
        for p in partitions {
            if let Some(dir) = self.partition_dir(topic, p) {
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(path = %dir.display(), error = %e, "could not remove partition data");
                }
            }
        }
    }

    /// Runs the coordinators' timers now (session and transaction timeouts, rebalance
    /// deadlines) instead of at the next tick.
    pub fn run_timers(&self) {
        self.groups.tick(&self.meta);
        self.txns.tick(self);
    }

    /// Takes a presented broker down: the partitions it led move to the next node that is
    /// up, with their leader epochs bumped, and its coordinators move by hash.
    pub fn stop_node(&self, id: i32) {
        let led: Vec<(Arc<Topic>, Arc<Partition>)> = self
            .topics()
            .into_iter()
            .flat_map(|t| t.partitions().into_iter().map(move |p| (t.clone(), p)))
            .filter(|(t, p)| self.cluster.leader(&t.name, p.index) == id)
            .collect();
        self.cluster.set_up(id, false);
        for (t, p) in led {
            let up = self.cluster.up_nodes();
            if up.is_empty() {
                continue;
            }
            let next = up[p.index.max(0) as usize % up.len()].id;
            self.cluster.set_leader(&t.name, p.index, next);
            p.bump_leader_epoch();
        }
        tracing::info!(node = id, "node stopped");
    }

    /// Brings a presented broker back (leaders stay where they moved).
    pub fn start_node(&self, id: i32) {
        self.cluster.set_up(id, true);
        tracing::info!(node = id, "node started");
    }

    /// Moves a partition's leadership to `to`, bumping its leader epoch.
    pub fn move_leader(&self, topic: &str, partition: i32, to: i32) -> Result<(), TopicError> {
        let p = self
            .topic(topic)
            .and_then(|t| t.partition(partition))
            .ok_or(TopicError::Unknown)?;
        self.cluster.set_leader(topic, partition, to);
        p.bump_leader_epoch();
        Ok(())
    }

    /// Replaces a topic's configs (AlterConfigs), persisting them and updating its logs.
    pub fn alter_topic_configs(
        &self,
        name: &str,
        configs: TopicConfigs,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let topic = self.topic(name).ok_or(TopicError::Unknown)?;
        for (k, v) in &configs.0 {
            TopicConfigs::check(k, v)?;
        }
        if validate_only {
            return Ok(());
        }
        self.meta.put_topic(
            name,
            &TopicRecord {
                id: topic.id,
                partitions: topic.partition_count(),
                configs: configs.clone(),
            },
        )?;
        let log_config = configs.log_config(&self.config);
        *topic.configs.write().unwrap_or_else(|p| p.into_inner()) = configs;
        for p in topic.partitions() {
            p.with_log(|l| l.set_config(log_config));
        }
        tracing::info!(topic = name, "topic configs changed");
        Ok(())
    }

    /// Compacts every partition of the topics with `cleanup.policy=compact`.
    pub fn compact_all(&self) {
        for topic in self
            .topics()
            .into_iter()
            .filter(|t| t.configs().compacted())
        {
            for p in topic.partitions() {
                match p.compact(self.config.max_decompressed_bytes) {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(topic = %topic.name, partition = p.index, removed = n, "compacted")
                    }
                    Err(e) => {
                        tracing::warn!(topic = %topic.name, partition = p.index, error = %e, "compaction failed")
                    }
                }
            }
        }
    }

    /// Applies retention to every partition.
    pub fn apply_retention(&self) {
        let now = self.clock.now_ms();
        for topic in self.topics() {
            for p in topic.partitions() {
                match p.with_log(|l| l.apply_retention(now)) {
                    Ok(0) => {}
                    Ok(bytes) => {
                        tracing::info!(topic = %topic.name, partition = p.index, bytes, "retention removed old data")
                    }
                    Err(e) => {
                        tracing::warn!(topic = %topic.name, partition = p.index, error = %e, "retention failed")
                    }
                }
            }
        }
    }

    /// Flushes every log and writes producer-state snapshots (on shutdown and periodically).
    pub fn flush_all(&self) {
        for topic in self.topics() {
            for p in topic.partitions() {
                if let Err(e) = p.flush() {
                    tracing::warn!(topic = %topic.name, partition = p.index, error = %e, "flush failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
