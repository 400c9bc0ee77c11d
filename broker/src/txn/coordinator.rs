//! The transaction coordinator: one state machine per transactional id, kept durable in the
//! metadata store.
//!
//! ```text
//!          InitProducerId (epoch +1)          AddPartitionsToTxn / AddOffsetsToTxn
//!   Empty ◄──────────────────────── any ───► Ongoing
//!     ▲                                        │ EndTxn(commit|abort), timeout, fencing
//!     │                                        ▼
//!     │                        PrepareCommit | PrepareAbort   (persisted, then markers are
//!     │                                        │               written to every partition and
//!     │                                        ▼               pending offsets applied/dropped)
//!     └──────── AddPartitions ──── CompleteCommit | CompleteAbort
//! ```
//! A timed-out or fenced transaction is aborted with the epoch bumped, so the old producer's
//! later requests fail with PRODUCER_FENCED / INVALID_PRODUCER_EPOCH. A prepared transaction
//! found at start-up (a crash during EndTxn) is completed by the first tick.

use crate::group::store::CommittedOffset;
use crate::meta::MetaStore;
use crate::state::State;
use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

/// Kafka's transaction states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
}

impl TxnState {
    /// The name Kafka's tools print.
    pub fn as_str(&self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
        }
    }
}

/// One transactional id's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnMeta {
    pub transactional_id: String,
    pub producer_id: i64,
    pub epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub groups: BTreeSet<String>,
    /// Offsets committed in the transaction, applied when it commits:
    /// (group, topic, partition, offset).
    pub offsets: Vec<(String, String, i32, CommittedOffset)>,
    pub start_ms: i64,
}

/// All transactional ids of this broker.
#[derive(Debug)]
pub struct TxnCoordinator {
    txns: Mutex<BTreeMap<String, TxnMeta>>,
    clock: crate::clock::Clock,
    /// `transaction.max.timeout.ms`.
    max_timeout_ms: i32,
}

fn check_producer(meta: &TxnMeta, producer_id: i64, epoch: i16) -> Result<(), ResponseError> {
    if meta.producer_id != producer_id {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    if meta.epoch != epoch {
        return Err(ResponseError::ProducerFenced);
    }
    Ok(())
}

impl TxnCoordinator {
    pub fn open(
        meta: &MetaStore,
        clock: crate::clock::Clock,
        max_timeout_ms: i32,
    ) -> Result<Self, crate::meta::MetaError> {
        let txns = meta
            .load_txns()?
            .into_iter()
            .map(|t| (t.transactional_id.clone(), t))
            .collect();
        Ok(Self {
            txns: Mutex::new(txns),
            clock,
            max_timeout_ms,
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, TxnMeta>> {
        self.txns.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(state: &State, meta: &TxnMeta) -> Result<(), ResponseError> {
        state.meta().put_txn(meta).map_err(|e| {
            tracing::error!(transactional_id = %meta.transactional_id, error = %e, "cannot persist transaction state");
            ResponseError::KafkaStorageError
        })
    }

    /// InitProducerId for a transactional id: a producer id and a bumped epoch; an open
    /// transaction of an earlier incarnation is aborted (fencing it).
    pub fn init_producer_id(
        &self,
        state: &State,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), ResponseError> {
        if transactional_id.is_empty() {
            return Err(ResponseError::InvalidRequest);
        }
        if timeout_ms <= 0 || timeout_ms > self.max_timeout_ms {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        let mut txns = self.lock();
        let meta = match txns.get_mut(transactional_id) {
            None => {
                let producer_id = state
                    .allocate_producer_id()
                    .map_err(|_| ResponseError::KafkaStorageError)?;
                txns.insert(
                    transactional_id.to_string(),
                    TxnMeta {
                        transactional_id: transactional_id.to_string(),
                        producer_id,
                        epoch: 0,
                        timeout_ms,
                        state: TxnState::Empty,
                        partitions: BTreeSet::new(),
                        groups: BTreeSet::new(),
                        offsets: Vec::new(),
                        start_ms: -1,
                    },
                );
                let meta = txns
                    .get(transactional_id)
                    .ok_or(ResponseError::UnknownServerError)?;
                Self::persist(state, meta)?;
                return Ok((meta.producer_id, meta.epoch));
            }
            Some(m) => m,
        };
        if let Some((pid, epoch)) = expected {
            if pid >= 0 && (pid != meta.producer_id || epoch != meta.epoch) {
                return Err(ResponseError::ProducerFenced);
            }
        }
        let was_ongoing = meta.state == TxnState::Ongoing;
        Self::bump_epoch(state, meta)?;
        if was_ongoing {
            tracing::info!(
                transactional_id,
                epoch = meta.epoch,
                "new producer incarnation: aborting the open transaction"
            );
            Self::complete(state, meta, false)?;
        }
        meta.state = TxnState::Empty;
        meta.timeout_ms = timeout_ms;
        Self::persist(state, meta)?;
        Ok((meta.producer_id, meta.epoch))
    }

    fn bump_epoch(state: &State, meta: &mut TxnMeta) -> Result<(), ResponseError> {
        if meta.epoch >= i16::MAX - 1 {
            meta.producer_id = state
                .allocate_producer_id()
                .map_err(|_| ResponseError::KafkaStorageError)?;
            meta.epoch = 0;
        } else {
            meta.epoch += 1;
        }
        Ok(())
    }

    /// Ends the transaction: persist the decision, write markers, apply or drop offsets.
    fn complete(state: &State, meta: &mut TxnMeta, commit: bool) -> Result<(), ResponseError> {
        meta.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        Self::persist(state, meta)?;
        for (topic, partition) in &meta.partitions {
            let Some(p) = state.topic(topic).and_then(|t| t.partition(*partition)) else {
                continue; // deleted since
            };
            p.write_marker(meta.producer_id, meta.epoch, commit, state.clock.now_ms()).map_err(|e| {
                tracing::error!(%topic, partition, error = %e, "cannot write transaction marker");
                ResponseError::KafkaStorageError
            })?;
        }
        if commit {
            let mut by_group: BTreeMap<&str, Vec<(String, i32, CommittedOffset)>> = BTreeMap::new();
            for (g, t, p, o) in &meta.offsets {
                by_group
                    .entry(g)
                    .or_default()
                    .push((t.clone(), *p, o.clone()));
            }
            for (group, offsets) in by_group {
                state
                    .groups
                    .commit(group, offsets, state.meta())
                    .map_err(|_| ResponseError::KafkaStorageError)?;
            }
        }
        state.appended.notify_waiters();
        meta.partitions.clear();
        meta.groups.clear();
        meta.offsets.clear();
        meta.start_ms = -1;
        meta.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        Self::persist(state, meta)
    }

    fn ongoing<'a>(
        txns: &'a mut BTreeMap<String, TxnMeta>,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        now_ms: i64,
    ) -> Result<&'a mut TxnMeta, ResponseError> {
        let meta = txns
            .get_mut(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        check_producer(meta, producer_id, epoch)?;
        if matches!(meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        if meta.state != TxnState::Ongoing {
            meta.state = TxnState::Ongoing;
            meta.start_ms = now_ms;
        }
        Ok(meta)
    }

    /// AddPartitionsToTxn; `verify_only` checks without adding (the KIP-890 form).
    pub fn add_partitions(
        &self,
        state: &State,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        verify_only: bool,
    ) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
        let unknown: Vec<bool> = partitions
            .iter()
            .map(|(t, p)| state.topic(t).and_then(|t| t.partition(*p)).is_none())
            .collect();
        let mut txns = self.lock();
        if verify_only {
            let meta = txns
                .get(transactional_id)
                .ok_or(ResponseError::InvalidProducerIdMapping)?;
            check_producer(meta, producer_id, epoch)?;
            return Ok(partitions
                .iter()
                .map(|tp| {
                    if meta.state == TxnState::Ongoing && meta.partitions.contains(tp) {
                        Ok(())
                    } else {
                        Err(ResponseError::InvalidTxnState)
                    }
                })
                .collect());
        }
        if unknown.iter().any(|u| *u) {
            // Kafka adds nothing when one partition is unknown.
            return Ok(unknown
                .iter()
                .map(|u| {
                    Err(if *u {
                        ResponseError::UnknownTopicOrPartition
                    } else {
                        ResponseError::OperationNotAttempted
                    })
                })
                .collect());
        }
        let meta = Self::ongoing(
            &mut txns,
            transactional_id,
            producer_id,
            epoch,
            self.clock.now_ms(),
        )?;
        meta.partitions.extend(partitions.iter().cloned());
        Self::persist(state, meta)?;
        Ok(partitions.iter().map(|_| Ok(())).collect())
    }

    /// AddOffsetsToTxn.
    pub fn add_offsets(
        &self,
        state: &State,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        group: &str,
    ) -> Result<(), ResponseError> {
        let mut txns = self.lock();
        let meta = Self::ongoing(
            &mut txns,
            transactional_id,
            producer_id,
            epoch,
            self.clock.now_ms(),
        )?;
        meta.groups.insert(group.to_string());
        Self::persist(state, meta)
    }

    /// TxnOffsetCommit: offsets held until the transaction commits.
    pub fn commit_offsets(
        &self,
        state: &State,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        group: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), ResponseError> {
        let mut txns = self.lock();
        let meta = txns
            .get_mut(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        check_producer(meta, producer_id, epoch)?;
        if meta.state != TxnState::Ongoing || !meta.groups.contains(group) {
            return Err(ResponseError::InvalidTxnState);
        }
        for (t, p, o) in offsets {
            meta.offsets
                .retain(|(g, t2, p2, _)| !(g == group && *t2 == t && *p2 == p));
            meta.offsets.push((group.to_string(), t, p, o));
        }
        Self::persist(state, meta)
    }

    /// EndTxn.
    pub fn end_txn(
        &self,
        state: &State,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), ResponseError> {
        let mut txns = self.lock();
        let meta = txns
            .get_mut(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        check_producer(meta, producer_id, epoch)?;
        match (meta.state, commit) {
            (TxnState::Ongoing, _) => Self::complete(state, meta, commit),
            // A retry of an EndTxn that already completed.
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(()),
            // Aborting with nothing added is allowed and does nothing.
            (TxnState::Empty, false) => Ok(()),
            _ => Err(ResponseError::InvalidTxnState),
        }
    }

    /// Whether a transactional produce from (`producer_id`, `epoch`) to this partition is
    /// part of an open transaction.
    pub fn verify_produce(
        &self,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<(), ResponseError> {
        let txns = self.lock();
        let meta = txns
            .values()
            .find(|m| m.producer_id == producer_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        if epoch < meta.epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        if meta.state != TxnState::Ongoing
            || !meta.partitions.contains(&(topic.to_string(), partition))
        {
            return Err(ResponseError::InvalidTxnState);
        }
        Ok(())
    }

    /// Offsets of `group` waiting for a transaction to commit (OffsetFetch RequireStable).
    pub fn has_pending_offsets(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.lock().values().any(|m| {
            m.offsets
                .iter()
                .any(|(g, t, p, _)| g == group && t == topic && *p == partition)
        })
    }

    /// Aborts transactions past their timeout; finishes prepared ones left by a crash.
    pub fn tick(&self, state: &State) {
        let now = self.clock.now_ms();
        let mut txns = self.lock();
        for meta in txns.values_mut() {
            let result = match meta.state {
                TxnState::Ongoing
                    if meta.start_ms >= 0 && now - meta.start_ms > i64::from(meta.timeout_ms) =>
                {
                    tracing::info!(transactional_id = %meta.transactional_id, "transaction timed out: aborting and fencing the producer");
                    Self::bump_epoch(state, meta).and_then(|()| Self::complete(state, meta, false))
                }
                TxnState::PrepareCommit => Self::complete(state, meta, true),
                TxnState::PrepareAbort => Self::complete(state, meta, false),
                _ => Ok(()),
            };
            if let Err(e) = result {
                tracing::error!(transactional_id = %meta.transactional_id, error = %e, "cannot complete transaction");
            }
        }
    }

    pub fn describe(&self, transactional_id: &str) -> Option<TxnMeta> {
        self.lock().get(transactional_id).cloned()
    }

    pub fn list(&self) -> Vec<TxnMeta> {
        self.lock().values().cloned().collect()
    }
}
