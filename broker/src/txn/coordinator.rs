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
//!
//! The coordinator never touches partitions or groups: ending a transaction persists the
//! decision and returns a [`Completion`] (markers to write, offsets to commit); the broker
//! carries it out and reports back with [`TxnCoordinator::completed`]. Until then the id is
//! busy: its requests get CONCURRENT_TRANSACTIONS, as Kafka answers during a pending
//! transition.

use super::producer_ids::ProducerIds;
use super::store::TxnStore;
pub(crate) use super::store::{TxnMeta, TxnState};
use crate::group::store::CommittedOffset;
use crate::meta::MetaError;
use kafka_protocol::error::ResponseError;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

/// Offsets to commit for one group: (topic, partition, offset).
pub(crate) type GroupOffsets = Vec<(String, i32, CommittedOffset)>;

/// What ending a transaction asks of the broker, in this order: a marker on each
/// partition, then (on commit) the offsets for each group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Completion {
    pub transactional_id: String,
    pub producer_id: i64,
    pub epoch: i16,
    pub commit: bool,
    pub partitions: Vec<(String, i32)>,
    /// Offsets by group; empty when aborting.
    pub offsets: Vec<(String, GroupOffsets)>,
    /// Set when a new producer incarnation aborted the open transaction: the id is
    /// ready again with this timeout once the abort is written.
    reinit_timeout_ms: Option<i32>,
}

/// What InitProducerId for a transactional id comes to.
#[derive(Debug)]
pub(crate) enum Init {
    /// The producer id and its (bumped) epoch.
    Ready(i64, i16),
    /// The earlier incarnation's transaction must be aborted first; the id and epoch come
    /// from [`TxnCoordinator::completed`].
    AbortFirst(Completion),
}

#[derive(Debug, Default)]
struct Txns {
    by_id: BTreeMap<String, TxnMeta>,
    /// Ids whose [`Completion`] is being carried out.
    completing: BTreeSet<String>,
}

/// All transactional ids of this broker.
#[derive(Debug)]
pub(crate) struct TxnCoordinator {
    txns: Mutex<Txns>,
    store: TxnStore,
    producer_ids: ProducerIds,
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

fn is_prepared(meta: &TxnMeta) -> bool {
    matches!(meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort)
}

impl TxnCoordinator {
    pub(crate) fn open(
        store: TxnStore,
        clock: crate::clock::Clock,
        max_timeout_ms: i32,
    ) -> Result<Self, MetaError> {
        let by_id = store
            .load()?
            .into_iter()
            .map(|t| (t.transactional_id.clone(), t))
            .collect();
        Ok(Self {
            txns: Mutex::new(Txns {
                by_id,
                completing: BTreeSet::new(),
            }),
            producer_ids: ProducerIds::open(&store)?,
            store,
            clock,
            max_timeout_ms,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Txns> {
        self.txns.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self, meta: &TxnMeta) -> Result<(), ResponseError> {
        self.store.put(meta).map_err(|e| {
            tracing::error!(transactional_id = %meta.transactional_id, error = %e, "cannot persist transaction state");
            ResponseError::KafkaStorageError
        })
    }

    /// A new producer id (for idempotent producers too).
    pub(crate) fn allocate_producer_id(&self) -> Result<i64, MetaError> {
        self.producer_ids.allocate(&self.store)
    }

    /// The next producer id to be handed out: how many were handed out.
    pub(crate) fn producer_id_count(&self) -> i64 {
        self.producer_ids.next()
    }

    fn new_producer_id(&self) -> Result<i64, ResponseError> {
        self.allocate_producer_id()
            .map_err(|_| ResponseError::KafkaStorageError)
    }

    /// InitProducerId for a transactional id: a producer id and a bumped epoch; an open
    /// transaction of an earlier incarnation is aborted (fencing it).
    pub(crate) fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<Init, ResponseError> {
        if transactional_id.is_empty() {
            return Err(ResponseError::InvalidRequest);
        }
        if timeout_ms <= 0 || timeout_ms > self.max_timeout_ms {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        let mut txns = self.lock();
        let Some(meta) = txns.by_id.get_mut(transactional_id) else {
            let meta = TxnMeta {
                transactional_id: transactional_id.to_string(),
                producer_id: self.new_producer_id()?,
                epoch: 0,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                groups: BTreeSet::new(),
                offsets: Vec::new(),
                start_ms: -1,
            };
            self.persist(&meta)?;
            let ready = Init::Ready(meta.producer_id, meta.epoch);
            txns.by_id.insert(transactional_id.to_string(), meta);
            return Ok(ready);
        };
        if is_prepared(meta) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        if let Some((pid, epoch)) = expected {
            if pid >= 0 && (pid != meta.producer_id || epoch != meta.epoch) {
                return Err(ResponseError::ProducerFenced);
            }
        }
        self.bump_epoch(meta)?;
        if meta.state == TxnState::Ongoing {
            tracing::info!(
                transactional_id,
                epoch = meta.epoch,
                "new producer incarnation: aborting the open transaction"
            );
            let completion = self.prepare(meta, false, Some(timeout_ms))?;
            txns.completing.insert(transactional_id.to_string());
            return Ok(Init::AbortFirst(completion));
        }
        meta.state = TxnState::Empty;
        meta.timeout_ms = timeout_ms;
        self.persist(meta)?;
        Ok(Init::Ready(meta.producer_id, meta.epoch))
    }

    fn bump_epoch(&self, meta: &mut TxnMeta) -> Result<(), ResponseError> {
        if meta.epoch >= i16::MAX - 1 {
            meta.producer_id = self.new_producer_id()?;
            meta.epoch = 0;
        } else {
            meta.epoch += 1;
        }
        Ok(())
    }

    /// Persists the decision and says what must be done to carry it out.
    fn prepare(
        &self,
        meta: &mut TxnMeta,
        commit: bool,
        reinit_timeout_ms: Option<i32>,
    ) -> Result<Completion, ResponseError> {
        meta.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        self.persist(meta)?;
        Ok(Self::completion(meta, reinit_timeout_ms))
    }

    fn completion(meta: &TxnMeta, reinit_timeout_ms: Option<i32>) -> Completion {
        let commit = meta.state == TxnState::PrepareCommit;
        let mut offsets: BTreeMap<&str, GroupOffsets> = BTreeMap::new();
        if commit {
            for (g, t, p, o) in &meta.offsets {
                offsets
                    .entry(g)
                    .or_default()
                    .push((t.clone(), *p, o.clone()));
            }
        }
        Completion {
            transactional_id: meta.transactional_id.clone(),
            producer_id: meta.producer_id,
            epoch: meta.epoch,
            commit,
            partitions: meta.partitions.iter().cloned().collect(),
            offsets: offsets
                .into_iter()
                .map(|(g, o)| (g.to_string(), o))
                .collect(),
            reinit_timeout_ms,
        }
    }

    /// The broker carried out `c`: the transaction is complete (or, after a new
    /// incarnation's abort, the id is ready again). Returns the producer id and epoch.
    pub(crate) fn completed(&self, c: &Completion) -> Result<(i64, i16), ResponseError> {
        let mut txns = self.lock();
        txns.completing.remove(&c.transactional_id);
        let meta = txns
            .by_id
            .get_mut(&c.transactional_id)
            .filter(|m| is_prepared(m) && m.producer_id == c.producer_id && m.epoch == c.epoch)
            .ok_or(ResponseError::InvalidTxnState)?;
        meta.partitions.clear();
        meta.groups.clear();
        meta.offsets.clear();
        meta.start_ms = -1;
        meta.state = match (c.reinit_timeout_ms, c.commit) {
            (Some(timeout_ms), _) => {
                meta.timeout_ms = timeout_ms;
                TxnState::Empty
            }
            (None, true) => TxnState::CompleteCommit,
            (None, false) => TxnState::CompleteAbort,
        };
        self.persist(meta)?;
        Ok((meta.producer_id, meta.epoch))
    }

    /// The broker could not carry out `c`; the next tick tries again.
    pub(crate) fn not_completed(&self, c: &Completion) {
        self.lock().completing.remove(&c.transactional_id);
    }

    fn ongoing<'a>(
        txns: &'a mut Txns,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        now_ms: i64,
    ) -> Result<&'a mut TxnMeta, ResponseError> {
        let meta = txns
            .by_id
            .get_mut(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        check_producer(meta, producer_id, epoch)?;
        if is_prepared(meta) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        if meta.state != TxnState::Ongoing {
            meta.state = TxnState::Ongoing;
            meta.start_ms = now_ms;
        }
        Ok(meta)
    }

    /// AddPartitionsToTxn; `verify_only` checks without adding (the KIP-890 form).
    /// `exists` says whether a partition exists.
    pub(crate) fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        verify_only: bool,
        exists: impl Fn(&str, i32) -> bool,
    ) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
        let unknown: Vec<bool> = partitions.iter().map(|(t, p)| !exists(t, *p)).collect();
        let mut txns = self.lock();
        if verify_only {
            let meta = txns
                .by_id
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
        self.persist(meta)?;
        Ok(partitions.iter().map(|_| Ok(())).collect())
    }

    /// AddOffsetsToTxn.
    pub(crate) fn add_offsets(
        &self,
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
        self.persist(meta)
    }

    /// TxnOffsetCommit: offsets held until the transaction commits.
    pub(crate) fn commit_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        group: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), ResponseError> {
        let mut txns = self.lock();
        let meta = txns
            .by_id
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
        self.persist(meta)
    }

    /// EndTxn: `Some` when there is a transaction to carry out.
    pub(crate) fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<Option<Completion>, ResponseError> {
        let mut txns = self.lock();
        let meta = txns
            .by_id
            .get_mut(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        check_producer(meta, producer_id, epoch)?;
        match (meta.state, commit) {
            (TxnState::Ongoing, _) => {
                let completion = self.prepare(meta, commit, None)?;
                txns.completing.insert(transactional_id.to_string());
                Ok(Some(completion))
            }
            (TxnState::PrepareCommit | TxnState::PrepareAbort, _) => {
                Err(ResponseError::ConcurrentTransactions)
            }
            // A retry of an EndTxn that already completed.
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(None),
            // Aborting with nothing added is allowed and does nothing.
            (TxnState::Empty, false) => Ok(None),
            _ => Err(ResponseError::InvalidTxnState),
        }
    }

    /// Whether a transactional produce from (`producer_id`, `epoch`) to this partition is
    /// part of an open transaction.
    pub(crate) fn verify_produce(
        &self,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<(), ResponseError> {
        let txns = self.lock();
        let meta = txns
            .by_id
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
    pub(crate) fn has_pending_offsets(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.lock().by_id.values().any(|m| {
            m.offsets
                .iter()
                .any(|(g, t, p, _)| g == group && t == topic && *p == partition)
        })
    }

    /// Aborts transactions past their timeout (bumping the epoch, which fences the
    /// producer) and finds prepared ones left by a crash or a failed completion: what the
    /// broker must carry out.
    pub(crate) fn tick(&self) -> Vec<Completion> {
        let now = self.clock.now_ms();
        let mut guard = self.lock();
        let txns = &mut *guard;
        let mut out = Vec::new();
        for (id, meta) in txns.by_id.iter_mut() {
            if txns.completing.contains(id) {
                continue;
            }
            let completion = match meta.state {
                TxnState::Ongoing
                    if meta.start_ms >= 0 && now - meta.start_ms > i64::from(meta.timeout_ms) =>
                {
                    tracing::info!(transactional_id = %id, "transaction timed out: aborting and fencing the producer");
                    self.bump_epoch(meta)
                        .and_then(|()| self.prepare(meta, false, None))
                }
                TxnState::PrepareCommit | TxnState::PrepareAbort => {
                    Ok(Self::completion(meta, None))
                }
                _ => continue,
            };
            match completion {
                Ok(c) => {
                    txns.completing.insert(id.clone());
                    out.push(c);
                }
                Err(e) => {
                    tracing::error!(transactional_id = %id, error = %e, "cannot abort the timed-out transaction")
                }
            }
        }
        out
    }

    pub(crate) fn describe(&self, transactional_id: &str) -> Option<TxnMeta> {
        self.lock().by_id.get(transactional_id).cloned()
    }

    pub(crate) fn list(&self) -> Vec<TxnMeta> {
        self.lock().by_id.values().cloned().collect()
    }
}
