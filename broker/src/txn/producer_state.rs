//! Per-partition idempotent producer state: for each producer id, its epoch and its last five
//! batches' sequence ranges, as Kafka keeps them.
//!
//! ```text
//! batch (pid, epoch, first_seq..=last_seq)
//!   pid < 0                        → not idempotent: append
//!   epoch < known epoch            → INVALID_PRODUCER_EPOCH
//!   epoch > known (or pid unknown) → first_seq must be 0: new producer session
//!   same range as a cached batch   → duplicate: success with the original offset
//!   first_seq == last_seq + 1      → append
//!   anything else                  → OUT_OF_ORDER_SEQUENCE_NUMBER
//! ```

use crate::log::batch::BatchHeader;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// How many recent batches per producer are remembered for duplicate detection
/// (librdkafka and the Java client keep at most five in flight).
const CACHED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct CachedBatch {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<CachedBatch>,
    #[serde(default)]
    last_timestamp: i64,
}

/// What to do with an idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sequenced {
    /// New data: append it.
    Append,
    /// A retry of a stored batch: answer with its original base offset, store nothing.
    Duplicate { base_offset: i64 },
}

/// A batch refused by sequence or epoch checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SequenceError {
    #[error("producer {producer_id} epoch {got} is older than the current epoch {current}")]
    StaleEpoch {
        producer_id: i64,
        got: i16,
        current: i16,
    },
    #[error("producer {producer_id}: expected sequence {expected}, got {got}")]
    OutOfOrder {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
}

/// A producer as DescribeProducers shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProducerSummary {
    pub producer_id: i64,
    pub epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub txn_start_offset: i64,
}

/// All producers' state on one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

fn last_seq(h: &BatchHeader) -> i32 {
    // Sequences wrap from i32::MAX to 0.
    ((i64::from(h.base_sequence) + i64::from(h.last_offset_delta)) % (i64::from(i32::MAX) + 1))
        as i32
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl ProducerStates {
    /// Checks a batch before it is appended.
    pub(crate) fn check(&self, h: &BatchHeader) -> Result<Sequenced, SequenceError> {
        if h.producer_id < 0 {
            return Ok(Sequenced::Append);
        }
        let entry = self.producers.get(&h.producer_id);
        let new_session = match entry {
            None => true,
            Some(e) if h.producer_epoch < e.epoch => {
                return Err(SequenceError::StaleEpoch {
                    producer_id: h.producer_id,
                    got: h.producer_epoch,
                    current: e.epoch,
                })
            }
            Some(e) => h.producer_epoch > e.epoch || e.batches.is_empty(),
        };
        if new_session {
            return if h.base_sequence == 0 {
                Ok(Sequenced::Append)
            } else {
                Err(SequenceError::OutOfOrder {
                    producer_id: h.producer_id,
                    expected: 0,
                    got: h.base_sequence,
                })
            };
        }
        let Some(e) = entry else {
            return Ok(Sequenced::Append);
        };
        let last = last_seq(h);
        if let Some(dup) = e
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last)
        {
            return Ok(Sequenced::Duplicate {
                base_offset: dup.base_offset,
            });
        }
        let expected = e.batches.back().map_or(0, |b| next_seq(b.last_seq));
        if h.base_sequence == expected {
            Ok(Sequenced::Append)
        } else {
            Err(SequenceError::OutOfOrder {
                producer_id: h.producer_id,
                expected,
                got: h.base_sequence,
            })
        }
    }

    pub(crate) fn summaries(&self) -> Vec<ProducerSummary> {
        let mut out: Vec<_> = self
            .producers
            .iter()
            .map(|(id, e)| ProducerSummary {
                producer_id: *id,
                epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_timestamp: e.last_timestamp,
                txn_start_offset: -1,
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    /// Records an appended batch (`h.base_offset` is the assigned offset).
    pub(crate) fn record(&mut self, h: &BatchHeader) {
        if h.producer_id < 0 {
            return;
        }
        let e = self.producers.entry(h.producer_id).or_default();
        e.last_timestamp = h.max_timestamp;
        if h.is_control() {
            // A marker written with a newer epoch (a fenced or timed-out transaction) fences
            // older epochs of the producer here too.
            if h.producer_epoch > e.epoch {
                e.epoch = h.producer_epoch;
                e.batches.clear();
            }
            return;
        }
        if h.producer_epoch != e.epoch {
            e.epoch = h.producer_epoch;
            e.batches.clear();
        }
        e.batches.push_back(CachedBatch {
            first_seq: h.base_sequence,
            last_seq: last_seq(h),
            base_offset: h.base_offset,
        });
        while e.batches.len() > CACHED_BATCHES {
            e.batches.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, records: i32, offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset: offset,
            size: 100,
            leader_epoch: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: records,
        }
    }

    #[test]
    fn sequences_duplicates_gaps_and_epochs() {
        let mut s = ProducerStates::default();
        let b0 = header(7, 0, 0, 3, 0);
        assert_eq!(s.check(&b0), Ok(Sequenced::Append));
        s.record(&b0);
        let b1 = header(7, 0, 3, 2, 3);
        assert_eq!(s.check(&b1), Ok(Sequenced::Append));
        s.record(&b1);
        assert_eq!(
            s.check(&header(7, 0, 0, 3, 99)),
            Ok(Sequenced::Duplicate { base_offset: 0 })
        );
        assert!(matches!(
            s.check(&header(7, 0, 6, 1, 9)),
            Err(SequenceError::OutOfOrder { expected: 5, .. })
        ));
        assert!(matches!(
            s.check(&header(8, 0, 4, 1, 9)),
            Err(SequenceError::OutOfOrder { expected: 0, .. })
        ));
        assert!(matches!(
            s.check(&header(7, 1, 5, 1, 9)),
            Err(SequenceError::OutOfOrder { .. })
        ));
        let bumped = header(7, 1, 0, 1, 5);
        assert_eq!(s.check(&bumped), Ok(Sequenced::Append));
        s.record(&bumped);
        assert!(matches!(
            s.check(&header(7, 0, 5, 1, 9)),
            Err(SequenceError::StaleEpoch { .. })
        ));
        assert_eq!(s.check(&header(-1, -1, -1, 1, 9)), Ok(Sequenced::Append));
    }

    #[test]
    fn only_five_batches_are_remembered_and_sequences_wrap() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            let h = header(1, 0, i, 1, i64::from(i));
            s.record(&h);
        }
        assert_eq!(
            s.check(&header(1, 0, 6, 1, 0)),
            Ok(Sequenced::Duplicate { base_offset: 6 })
        );
        assert!(
            s.check(&header(1, 0, 1, 1, 0)).is_err(),
            "evicted batch is no longer a duplicate"
        );
        let near_max = header(2, 0, i32::MAX - 1, 3, 0);
        assert_eq!(last_seq(&near_max), 0);
        assert_eq!(next_seq(i32::MAX), 0);
    }
}
