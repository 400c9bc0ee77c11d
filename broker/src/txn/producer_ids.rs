//! Producer id allocation. Ids are handed out from blocks reserved in the metadata store,
//! so a restarted broker never reuses one.

use super::store::TxnStore;
use crate::meta::MetaError;
use std::sync::Mutex;

const BLOCK: i64 = 1000;

#[derive(Debug)]
struct Range {
    next: i64,
    end: i64,
}

/// Hands out unique producer ids.
#[derive(Debug)]
pub(crate) struct ProducerIds {
    range: Mutex<Range>,
}

impl ProducerIds {
    /// Continues after the last reserved block.
    pub(crate) fn open(store: &TxnStore) -> Result<Self, MetaError> {
        let start = store.producer_id_block_end()?.unwrap_or(0);
        Ok(Self {
            range: Mutex::new(Range {
                next: start,
                end: start,
            }),
        })
    }

    /// The next id to hand out (ids are never reused, so this counts every
    /// InitProducerId answered since the store was created).
    pub(crate) fn next(&self) -> i64 {
        self.range.lock().unwrap_or_else(|p| p.into_inner()).next
    }

    /// The next unused id.
    pub(crate) fn allocate(&self, store: &TxnStore) -> Result<i64, MetaError> {
        let mut r = self.range.lock().unwrap_or_else(|p| p.into_inner());
        if r.next >= r.end {
            let end = r.end + BLOCK;
            store.set_producer_id_block_end(end)?;
            r.end = end;
        }
        let id = r.next;
        r.next += 1;
        Ok(id)
    }
}
