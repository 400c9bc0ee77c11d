//! What the transaction coordinator keeps in the metadata store: each transactional id's
//! state, and the end of the last reserved block of producer ids.

use super::coordinator::TxnMeta;
use crate::meta::{MetaError, MetaStore, Table};
use std::sync::Arc;

const TXNS: Table = "transactions";
const PRODUCER_ID_BLOCK: &str = "producer_id_block_end";

#[derive(Debug, Clone)]
pub struct TxnStore {
    meta: Arc<MetaStore>,
}

impl TxnStore {
    pub fn new(meta: Arc<MetaStore>) -> Self {
        Self { meta }
    }

    /// Every transactional id's state.
    pub fn load(&self) -> Result<Vec<TxnMeta>, MetaError> {
        Ok(self
            .meta
            .load_json(TXNS)?
            .into_iter()
            .map(|(_, txn)| txn)
            .collect())
    }

    pub fn put(&self, txn: &TxnMeta) -> Result<(), MetaError> {
        self.meta.apply(&[self
            .meta
            .put_json(TXNS, txn.transactional_id.as_str(), txn)?])
    }

    /// End of the last reserved producer id block, if any was reserved.
    pub fn producer_id_block_end(&self) -> Result<Option<i64>, MetaError> {
        self.meta.counter(PRODUCER_ID_BLOCK)
    }

    /// Durably reserves producer ids below `end`.
    pub fn set_producer_id_block_end(&self, end: i64) -> Result<(), MetaError> {
        self.meta.set_counter(PRODUCER_ID_BLOCK, end)
    }
}
