//! Per-partition transaction bookkeeping: open transactions (for the last stable offset)
//! and the aborted-transaction index (for read_committed fetches).

use crate::log::batch::BatchHeader;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One aborted transaction in this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// Offset of the abort marker.
    pub last_offset: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartitionTxns {
    /// Producer id → first offset of its open transaction here.
    ongoing: BTreeMap<i64, i64>,
    aborted: Vec<AbortedTxn>,
}

impl PartitionTxns {
    /// Tracks an appended batch (data or marker); `commit` is the marker's type.
    pub(crate) fn on_append(&mut self, h: &BatchHeader, commit: Option<bool>) {
        if !h.is_transactional() {
            return;
        }
        if h.is_control() {
            if let Some(first) = self.ongoing.remove(&h.producer_id) {
                if commit == Some(false) {
                    self.aborted.push(AbortedTxn {
                        producer_id: h.producer_id,
                        first_offset: first,
                        last_offset: h.base_offset,
                    });
                }
            }
        } else {
            self.ongoing.entry(h.producer_id).or_insert(h.base_offset);
        }
    }

    /// The last stable offset: the first offset of the oldest open transaction, or the
    /// high watermark when none is open.
    pub(crate) fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        self.ongoing
            .values()
            .copied()
            .min()
            .unwrap_or(high_watermark)
            .min(high_watermark)
    }

    /// Start offset of `producer_id`'s open transaction here, if any.
    pub(crate) fn open_since(&self, producer_id: i64) -> Option<i64> {
        self.ongoing.get(&producer_id).copied()
    }

    /// Aborted transactions overlapping `[from, to)`.
    pub(crate) fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.aborted
            .iter()
            .filter(|a| a.last_offset >= from && a.first_offset < to)
            .copied()
            .collect()
    }

    /// Forgets aborted transactions wholly below the log start offset.
    pub(crate) fn trim(&mut self, log_start: i64) {
        self.aborted.retain(|a| a.last_offset >= log_start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pid: i64, offset: i64, attributes: i16) -> BatchHeader {
        BatchHeader {
            base_offset: offset,
            size: 70,
            leader_epoch: 0,
            attributes,
            last_offset_delta: 0,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: 0,
            record_count: 1,
        }
    }

    #[test]
    fn lso_and_aborted_index() {
        let mut t = PartitionTxns::default();
        t.on_append(&h(1, 0, 0x10), None);
        t.on_append(&h(2, 1, 0x10), None);
        t.on_append(&h(-1, 2, 0), None);
        assert_eq!(t.last_stable_offset(3), 0);
        t.on_append(&h(1, 3, 0x30), Some(false));
        assert_eq!(t.last_stable_offset(4), 1);
        t.on_append(&h(2, 4, 0x30), Some(true));
        assert_eq!(t.last_stable_offset(5), 5);
        assert_eq!(
            t.aborted_between(0, 5),
            vec![AbortedTxn {
                producer_id: 1,
                first_offset: 0,
                last_offset: 3
            }]
        );
        assert!(t.aborted_between(4, 5).is_empty());
    }
}
