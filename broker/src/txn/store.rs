//! What the transaction coordinator keeps in the metadata store: each transactional id's
//! state, and the end of the last reserved block of producer ids.

use crate::group::store::CommittedOffset;
use crate::meta::{MetaError, MetaStore, Table};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;

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

const TXNS: Table = "transactions";
const PRODUCER_ID_BLOCK: &str = "producer_id_block_end";

#[derive(Debug, Clone)]
pub(crate) struct TxnStore {
    meta: Arc<MetaStore>,
}

impl TxnStore {
    pub(crate) fn new(meta: Arc<MetaStore>) -> Self {
        Self { meta }
    }

    /// Every transactional id's state.
    pub(crate) fn load(&self) -> Result<Vec<TxnMeta>, MetaError> {
        Ok(self
            .meta
            .load_json(TXNS)?
            .into_iter()
            .map(|(_, txn)| txn)
            .collect())
    }

    pub(crate) fn put(&self, txn: &TxnMeta) -> Result<(), MetaError> {
        self.meta.apply(&[self
            .meta
            .put_json(TXNS, txn.transactional_id.as_str(), txn)?])
    }

    /// End of the last reserved producer id block, if any was reserved.
    pub(crate) fn producer_id_block_end(&self) -> Result<Option<i64>, MetaError> {
        self.meta.counter(PRODUCER_ID_BLOCK)
    }

    /// Durably reserves producer ids below `end`.
    pub(crate) fn set_producer_id_block_end(&self, end: i64) -> Result<(), MetaError> {
        self.meta.set_counter(PRODUCER_ID_BLOCK, end)
    }
}
