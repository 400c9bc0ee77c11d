//! The broker's topics and partitions, shared by every connection.

use crate::clock::Clock;
use crate::cluster::{ClusterView, Node};
use crate::config::{BrokerConfig, StorageConfig};
use crate::group::store::GroupStore;
use crate::group::Coordinator;
use crate::log::{disk::DiskLog, memory::MemoryLog, Log, LogError};
use crate::meta::{MetaError, MetaStore};
use crate::topic_config::TopicConfigs;
use crate::txn::coordinator::TxnCoordinator;
use crate::txn::store::TxnStore;
pub(crate) use broker_configs::{BrokerConfigs, Layer, Scope};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;
use topic_store::{TopicRecord, TopicStore};
use uuid::Uuid;

mod broker_configs;
mod compaction;
#[cfg(test)]
mod compaction_tests;
mod counters;
mod maintenance;
mod partition;
mod topic_error;
mod topic_store;
mod transactions;
mod waiters;
pub use partition::Offsets;
pub(crate) use partition::{AppendError, Appended, Partition, Read};
pub(crate) use topic_error::validate_topic_name;
pub use topic_error::TopicError;

/// A topic and its partitions.
#[derive(Debug)]
pub(crate) struct Topic {
    pub name: String,
    pub id: Uuid,
    /// Replicas per partition; `None`: every presented broker.
    pub(crate) replication_factor: Option<i16>,
    configs: RwLock<TopicConfigs>,
    partitions: RwLock<Vec<Arc<Partition>>>,
}

impl Topic {
    pub(crate) fn configs(&self) -> TopicConfigs {
        self.configs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        let parts = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        usize::try_from(index)
            .ok()
            .and_then(|i| parts.get(i).cloned())
    }

    pub(crate) fn partition_count(&self) -> i32 {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len() as i32
    }
}

/// Shared broker state.
#[derive(Debug)]
pub(crate) struct State {
    /// The broker's settings with the configs set at run time applied.
    pub(crate) broker_configs: BrokerConfigs,
    /// Host and port given to clients.
    pub advertised: (String, u16),
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    topic_store: TopicStore,
    /// Consumer groups and committed offsets.
    pub groups: Coordinator,
    /// Transactional ids and their transactions.
    pub txns: TxnCoordinator,
    /// Woken at shutdown, so parked fetches answer at once.
    pub closing: Notify,
    /// The brokers presented to clients, partition leaders, coordinator placement.
    pub cluster: ClusterView,
    /// Test hooks: injected faults, recorded requests, strict mode.
    pub faults: crate::faults::Faults,
    /// The broker's time (advanced by tests).
    pub clock: Clock,
    /// The APIs and versions offered: the newest, or an emulated release's.
    pub(crate) api_table: crate::protocol::ApiTable,
    /// Connections refused and authentications, on every listener and presented node.
    pub(crate) connections: counters::ConnectionCounters,
    /// SCRAM credentials, which SASL checks and the SCRAM APIs manage.
    pub(crate) credentials: crate::security::Credentials,
    /// ACLs, enforced when an authorizer is configured.
    pub(crate) authorizer: crate::security::Authorizer,
    /// Declared last, so dropped after the storage: once no one owns it, the files (and
    /// the metadata store's lock) are let go and a broker can open the same directory.
    released: Arc<()>,
}

impl State {
    /// Has no owner once this state and its storage are fully dropped. The state's own
    /// strong count reaches zero before its fields are dropped, so it cannot tell that.
    pub(crate) fn storage_released(&self) -> std::sync::Weak<()> {
        Arc::downgrade(&self.released)
    }

    /// Opens the storage and loads the topics it holds.
    pub(crate) fn open(
        config: BrokerConfig,
        advertised: (String, u16),
    ) -> Result<Self, TopicError> {
        let meta = Arc::new(match &config.storage {
            StorageConfig::Memory => MetaStore::memory(),
            StorageConfig::Disk(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
                MetaStore::open(dir)?
            }
        });
        let clock = Clock::default();
        let groups = Coordinator::open(config.group, clock.clone(), GroupStore::new(meta.clone()))?;
        let txns = TxnCoordinator::open(
            TxnStore::new(meta.clone()),
            clock.clone(),
            config.transaction_max_timeout_ms,
        )?;
        let api_table = config
            .as_kafka
            .as_deref()
            .and_then(crate::protocol::releases::release)
            .map(crate::protocol::ApiTable::emulating)
            .unwrap_or_default();
        let authorizer = crate::security::Authorizer::open(
            meta.clone(),
            config.security.authorizer,
            config.security.super_users.clone(),
            config.security.allow_everyone_if_no_acl_found,
        )?;
        let broker_configs = BrokerConfigs::open(config, meta.clone())?;
        let state = Self {
            broker_configs,
            advertised,
            topics: RwLock::new(BTreeMap::new()),
            credentials: crate::security::Credentials::open(meta.clone())?,
            authorizer,
            topic_store: TopicStore::new(meta),
            groups,
            txns,
            closing: Notify::new(),
            cluster: ClusterView::default(),
            faults: Default::default(),
            clock,
            api_table,
            connections: Default::default(),
            released: Arc::new(()),
        };
        state.faults.set_strict(state.config().strict);
        for (user, password) in &state.config().security.scram_users {
            state.credentials.seed(user, password)?;
        }
        state.authorizer.create(&state.config().security.acls)?;
        state.cluster.add_node(Node {
            id: state.config().node_id,
            host: state.advertised.0.clone(),
            port: state.advertised.1,
            rack: None,
            up: true,
            endpoints: Vec::new(),
        });
        for (name, rec) in state.topic_store.load()? {
            let topic = state.build_topic(
                &name,
                rec.id,
                rec.partitions,
                rec.configs,
                rec.replication_factor,
            )?;
            state.write_topics().insert(name, Arc::new(topic));
        }
        Ok(state)
    }

    /// The config in force: the broker's settings and the configs set at run time.
    pub(crate) fn config(&self) -> Arc<BrokerConfig> {
        self.broker_configs.effective()
    }

    fn write_topics(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read_topics(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.read().unwrap_or_else(|p| p.into_inner())
    }

    fn partition_dir(&self, topic: &str, partition: i32) -> Option<PathBuf> {
        match &self.config().storage {
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
        let log_config = configs.log_config(&self.config());
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

    /// Whether data and metadata are kept on disk (writes may then wait on the disk).
    pub(crate) fn writes_to_disk(&self) -> bool {
        matches!(self.config().storage, StorageConfig::Disk(_))
    }

    /// The metadata store (for tests that make its writes fail).
    #[cfg(test)]
    pub(crate) fn meta(&self) -> &MetaStore {
        self.topic_store.meta()
    }

    /// The next producer id InitProducerId would hand out: how many were handed out
    /// (for tests of clients that should not ask for one).
    pub(crate) fn producer_id_count(&self) -> i64 {
        self.txns.producer_id_count()
    }

    /// A new producer id for InitProducerId.
    pub(crate) fn allocate_producer_id(&self) -> Result<i64, MetaError> {
        self.txns.allocate_producer_id()
    }

    fn build_topic(
        &self,
        name: &str,
        id: Uuid,
        partitions: i32,
        configs: TopicConfigs,
        replication_factor: Option<i16>,
    ) -> Result<Topic, TopicError> {
        let mut parts = Vec::with_capacity(partitions as usize);
        for p in 0..partitions {
            parts.push(Arc::new(self.open_partition(name, p, &configs)?));
        }
        Ok(Topic {
            name: name.to_string(),
            id,
            replication_factor,
            configs: RwLock::new(configs),
            partitions: RwLock::new(parts),
        })
    }

    pub(crate) fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.read_topics().get(name).cloned()
    }

    pub(crate) fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.read_topics().values().find(|t| t.id == id).cloned()
    }

    pub(crate) fn topics(&self) -> Vec<Arc<Topic>> {
        self.read_topics().values().cloned().collect()
    }

    /// Checks a creation without doing it; returns the partition count that would be used.
    pub(crate) fn check_create(
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
            self.config().default_partitions
        } else {
            partitions
        };
        if partitions < 1 {
            return Err(TopicError::InvalidPartitions(partitions));
        }
        // Every presented broker holds a replica unless fewer are asked for (as Kafka, at
        // most as many as there are brokers).
        let brokers = self.cluster.nodes().len().max(1);
        if replication_factor == 0 || replication_factor < -1 {
            return Err(TopicError::InvalidReplicationFactor(replication_factor));
        }
        if replication_factor as usize > brokers && replication_factor != -1 {
            return Err(TopicError::ReplicationFactorAboveBrokers(
                replication_factor,
                brokers,
            ));
        }
        Ok(partitions)
    }

    /// Creates a topic (`partitions` -1 = broker default).
    pub(crate) fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: TopicConfigs,
    ) -> Result<Arc<Topic>, TopicError> {
        let partitions = self.check_create(name, partitions, replication_factor)?;
        let id = Uuid::new_v4();
        let replication_factor = (replication_factor != -1).then_some(replication_factor);
        let topic = Arc::new(self.build_topic(
            name,
            id,
            partitions,
            configs.clone(),
            replication_factor,
        )?);
        let mut topics = self.write_topics();
        if topics.contains_key(name) {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        let stored = self.topic_store.put(
            name,
            &TopicRecord {
                id,
                partitions,
                configs,
                replication_factor,
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
    pub(crate) fn get_or_auto_create(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        if let Some(t) = self.topic(name) {
            return Ok(t);
        }
        match self.create_topic(name, -1, -1, TopicConfigs::default()) {
            Err(TopicError::AlreadyExists(_)) => self.topic(name).ok_or(TopicError::Unknown),
            other => other,
        }
    }

    /// Deletes a topic and its data.
    pub(crate) fn delete_topic(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        let mut topics = self.write_topics();
        if !topics.contains_key(name) {
            return Err(TopicError::Unknown);
        }
        // The record first: if it cannot be removed, the topic stays, in memory and on disk.
        self.topic_store.delete(name)?;
        let topic = topics.remove(name).ok_or(TopicError::Unknown)?;
        drop(topics);
        self.remove_partition_dirs(name, 0..topic.partition_count());
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
    }

    /// Grows a topic to `count` partitions (`validate_only` checks only).
    pub(crate) fn create_partitions(
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
        let stored = self.topic_store.put(
            name,
            &TopicRecord {
                id: topic.id,
                partitions: count,
                configs,
                replication_factor: topic.replication_factor,
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
    pub(crate) fn run_timers(&self) {
        self.groups.tick();
        for c in self.txns.tick() {
            if let Err(e) = self.complete_transaction(c) {
                tracing::error!(error = %e, "cannot complete a transaction; the next tick retries");
            }
        }
    }

    /// Takes a presented broker down: the partitions it led move to the next node that is
    /// up, with their leader epochs bumped, and its coordinators move by hash.
    pub(crate) fn stop_node(&self, id: i32) {
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
    pub(crate) fn start_node(&self, id: i32) {
        self.cluster.set_up(id, true);
        tracing::info!(node = id, "node started");
    }

    /// Moves a partition's leadership to `to`, bumping its leader epoch.
    pub(crate) fn move_leader(
        &self,
        topic: &str,
        partition: i32,
        to: i32,
    ) -> Result<(), TopicError> {
        let p = self
            .topic(topic)
            .and_then(|t| t.partition(partition))
            .ok_or(TopicError::Unknown)?;
        self.cluster.set_leader(topic, partition, to);
        p.bump_leader_epoch();
        Ok(())
    }

    /// Replaces a topic's configs (AlterConfigs), persisting them and updating its logs.
    pub(crate) fn alter_topic_configs(
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
        self.topic_store.put(
            name,
            &TopicRecord {
                id: topic.id,
                partitions: topic.partition_count(),
                configs: configs.clone(),
                replication_factor: topic.replication_factor,
            },
        )?;
        let log_config = configs.log_config(&self.config());
        *topic.configs.write().unwrap_or_else(|p| p.into_inner()) = configs;
        for p in topic.partitions() {
            p.with_log(|l| l.set_config(log_config));
        }
        tracing::info!(topic = name, "topic configs changed");
        Ok(())
    }

    /// Replaces one layer of broker configs set at run time, persisting it, and gives
    /// every partition the log settings that follow.
    pub(crate) fn alter_broker_configs(&self, scope: Scope, layer: Layer) -> Result<(), MetaError> {
        self.broker_configs.replace(scope, layer)?;
        let broker = self.config();
        for topic in self.topics() {
            let log_config = topic.configs().log_config(&broker);
            for p in topic.partitions() {
                p.with_log(|l| l.set_config(log_config));
            }
        }
        tracing::info!(?scope, "broker configs changed");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
