//! What tests, the testkit and `agentbus dev`'s status page may see of a running broker,
//! and the few controls tests need (its clock, injected faults, the presented cluster),
//! as plain values. The broker's state itself stays inside the crate.

use crate::faults::{Fault, InjectedFault, RecordedRequest};
use crate::group::GroupSummary;
use crate::log::LogConfig;
use crate::state::{Offsets, Partition, State, Topic, TopicError};
use crate::topic_config::TopicConfigs;
use crate::txn::store::{TxnMeta, TxnState};
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use uuid::Uuid;

/// A handle on a running broker for inspection; cheap to clone.
#[derive(Debug, Clone)]
pub struct Inspector {
    state: Arc<State>,
}

/// A topic as the broker holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    /// The configs set on the topic (not the defaults).
    pub configs: BTreeMap<String, String>,
}

/// One presented broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    pub up: bool,
}

/// A stored record: (offset, key, value).
pub type StoredRecord = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// Authentications counted since the broker started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authentications {
    pub succeeded: u64,
    pub failed: u64,
}

/// A transaction as its coordinator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionInfo {
    pub transactional_id: String,
    pub producer_id: i64,
    pub epoch: i16,
    /// Kafka's state name: `Empty`, `Ongoing`, `PrepareCommit`, `CompleteAbort`, …
    pub state: &'static str,
    /// The partitions the open transaction wrote to.
    pub partitions: Vec<(String, i32)>,
}

impl From<TxnMeta> for TransactionInfo {
    fn from(t: TxnMeta) -> Self {
        Self {
            transactional_id: t.transactional_id,
            producer_id: t.producer_id,
            epoch: t.epoch,
            state: TxnState::as_str(&t.state),
            partitions: t.partitions.into_iter().collect(),
        }
    }
}

fn info(t: &Topic) -> TopicInfo {
    TopicInfo {
        name: t.name.clone(),
        id: t.id,
        partitions: t.partition_count(),
        configs: t.configs().0,
    }
}

impl Inspector {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self { state }
    }

    fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.state.topic(topic)?.partition(partition)
    }

    /// Every topic, internal ones included, by name.
    pub fn topics(&self) -> Vec<TopicInfo> {
        let mut out: Vec<TopicInfo> = self.state.topics().iter().map(|t| info(t)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    pub fn topic(&self, name: &str) -> Option<TopicInfo> {
        self.state.topic(name).map(|t| info(&t))
    }

    /// The settings a topic's log runs with: its configs over the broker's defaults.
    pub fn log_config(&self, topic: &str) -> Option<LogConfig> {
        let t = self.state.topic(topic)?;
        Some(t.configs().log_config(&self.state.config()))
    }

    /// Creates a topic as CreateTopics would (`partitions` -1: the broker's default).
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), TopicError> {
        self.state
            .create_topic(name, partitions, -1, TopicConfigs::default())
            .map(|_| ())
    }

    /// Log start, high watermark and last stable offset of a partition.
    pub fn offsets(&self, topic: &str, partition: i32) -> Option<Offsets> {
        Some(self.partition(topic, partition)?.offsets())
    }

    pub fn leader_epoch(&self, topic: &str, partition: i32) -> Option<i32> {
        Some(self.partition(topic, partition)?.leader_epoch())
    }

    /// OffsetForLeaderEpoch's answer for `epoch`: (epoch, end offset).
    pub fn end_offset_for_epoch(
        &self,
        topic: &str,
        partition: i32,
        epoch: i32,
    ) -> Option<(i32, i64)> {
        self.partition(topic, partition)?
            .end_offset_for_epoch(epoch)
    }

    /// Every stored record of a partition as (offset, key, value), control records left out.
    pub fn records(&self, topic: &str, partition: i32) -> Vec<StoredRecord> {
        let Some(p) = self.partition(topic, partition) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let limit = self.state.config().max_decompressed_bytes;
        let start = p.offsets().log_start;
        let _ = p.with_log(|log| {
            log.scan_batches(start, &mut |h, bytes| {
                if h.is_control() {
                    return;
                }
                let batch = bytes::Bytes::copy_from_slice(bytes);
                if let Ok(set) = crate::log::records::decode(&batch, limit) {
                    for r in set.records {
                        out.push((
                            r.offset,
                            r.key.map(|k| k.to_vec()),
                            r.value.map(|v| v.to_vec()),
                        ));
                    }
                }
            })
        });
        out
    }

    /// The codec of each stored batch of a partition (`uncompressed`, `gzip`, `snappy`,
    /// `lz4`, `zstd`, as `compression.type` names them), control batches left out.
    pub fn codecs(&self, topic: &str, partition: i32) -> Vec<&'static str> {
        let Some(p) = self.partition(topic, partition) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let start = p.offsets().log_start;
        let _ = p.with_log(|log| {
            log.scan_batches(start, &mut |h, _| {
                if !h.is_control() {
                    out.push(crate::log::recompress::codec_name(h));
                }
            })
        });
        out
    }

    /// A group as DescribeGroups shows it (`Dead` when there is none).
    pub fn group(&self, id: &str) -> GroupSummary {
        self.state.groups.describe(id)
    }

    /// A group's committed offsets: (topic, partition) → offset.
    pub fn committed(&self, group: &str) -> BTreeMap<(String, i32), i64> {
        self.state
            .groups
            .fetch_offsets(group, None)
            .into_iter()
            .flat_map(|(t, parts)| {
                parts
                    .into_iter()
                    .filter_map(move |(p, c)| c.map(|c| ((t.clone(), p), c.offset)))
            })
            .collect()
    }

    pub fn transaction(&self, transactional_id: &str) -> Option<TransactionInfo> {
        self.state.txns.describe(transactional_id).map(Into::into)
    }

    pub fn transactions(&self) -> Vec<TransactionInfo> {
        self.state.txns.list().into_iter().map(Into::into).collect()
    }

    /// Producer ids handed out so far.
    pub fn producer_id_count(&self) -> i64 {
        self.state.producer_id_count()
    }

    /// Compacts every `cleanup.policy=compact` topic now.
    pub fn compact(&self) {
        self.state.compact_all();
    }

    /// Applies retention now instead of waiting for the background check.
    pub fn apply_retention(&self) {
        self.state.apply_retention();
    }

    /// Moves the broker's clock forward and runs its timers at once.
    pub fn advance(&self, by: Duration) {
        self.state.clock.advance(by);
        self.state.run_timers();
    }

    /// In strict mode (`BrokerConfig::strict`), the requests for what agentbus does not
    /// implement seen so far.
    pub fn violations(&self) -> Vec<String> {
        self.state.faults.violations()
    }

    /// Applies `fault` to the next `times` (or every) request with `api_key`, on `node` or
    /// any; returns the id that [`Inspector::remove_fault`] takes.
    pub fn inject(
        &self,
        api_key: i16,
        node: Option<i32>,
        fault: Fault,
        times: Option<usize>,
    ) -> u64 {
        self.state.faults.inject(api_key, node, fault, times)
    }

    /// Removes an injected fault; whether there was one.
    pub fn remove_fault(&self, id: u64) -> bool {
        self.state.faults.remove(id)
    }

    /// Starts or stops recording requests (api key, version, client id, node).
    pub fn set_recording(&self, on: bool) {
        self.state.faults.set_recording(on);
    }

    pub fn recorded(&self) -> Vec<RecordedRequest> {
        self.state.faults.recorded()
    }

    pub fn set_rack(&self, node: i32, rack: Option<String>) {
        self.state.cluster.set_rack(node, rack);
    }

    /// Moves a partition's leadership (its leader epoch bumps).
    pub fn move_leader(&self, topic: &str, partition: i32, to: i32) -> Result<(), TopicError> {
        self.state.move_leader(topic, partition, to)
    }

    pub fn move_coordinator(&self, key: &str, to: i32) {
        self.state.cluster.move_coordinator(key, to);
    }

    /// The node coordinating a group or transactional id.
    pub fn coordinator(&self, key: &str) -> i32 {
        self.state.cluster.coordinator(key)
    }

    /// The node leading a partition.
    pub fn leader(&self, topic: &str, partition: i32) -> i32 {
        self.state.cluster.leader(topic, partition)
    }

    /// The presented brokers: id, advertised host and port, up or stopped.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.state
            .cluster
            .nodes()
            .into_iter()
            .map(|n| NodeInfo {
                id: n.id,
                host: n.host,
                port: n.port,
                rack: n.rack,
                up: n.up,
            })
            .collect()
    }

    /// The node presented as the controller.
    pub fn controller(&self) -> i32 {
        self.state.cluster.controller()
    }

    /// Connections closed at once because their address had `max.connections.per.ip` open.
    pub fn connections_refused(&self) -> u64 {
        self.state.connections.read().0
    }

    /// Authentications that named a principal and those that failed (Kafka's
    /// `successful-authentication-total` and `failed-authentication-total`), over every
    /// listener.
    pub fn authentications(&self) -> Authentications {
        let (_, succeeded, failed) = self.state.connections.read();
        Authentications { succeeded, failed }
    }

    /// The injected faults still in force.
    pub fn faults(&self) -> Vec<InjectedFault> {
        self.state.faults.rules()
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// Forgets the requests recorded so far.
    pub fn clear_recorded(&self) {
        self.state.faults.clear_recorded();
    }

    /// The broker's clock, in milliseconds since the epoch (moved on by [`Inspector::advance`]).
    pub fn now_ms(&self) -> i64 {
        self.state.clock.now_ms()
    }

    /// Gone once the broker and every task have let go of its storage.
    pub fn storage_released(&self) -> Weak<()> {
        self.state.storage_released()
    }
}
