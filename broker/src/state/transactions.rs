//! Carrying out what the transaction coordinator decides: it says which markers and
//! offsets ending a transaction takes; the broker writes them, then reports back.

use super::State;
use crate::txn::coordinator::{Completion, Init};
use kafka_protocol::error::ResponseError;

impl State {
    /// InitProducerId for a transactional id: the producer id and its new epoch, after
    /// aborting an earlier incarnation's open transaction.
    pub(crate) fn init_transactional_producer(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), ResponseError> {
        match self
            .txns
            .init_producer_id(transactional_id, timeout_ms, expected)?
        {
            Init::Ready(producer_id, epoch) => Ok((producer_id, epoch)),
            Init::AbortFirst(c) => self.complete_transaction(c),
        }
    }

    /// EndTxn.
    pub(crate) fn end_transaction(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), ResponseError> {
        match self
            .txns
            .end_txn(transactional_id, producer_id, epoch, commit)?
        {
            Some(c) => self.complete_transaction(c).map(|_| ()),
            None => Ok(()),
        }
    }

    /// Writes the markers (which wake the fetches parked on their partitions), applies the
    /// offsets; then the coordinator records the transaction as complete.
    pub(crate) fn complete_transaction(&self, c: Completion) -> Result<(i64, i16), ResponseError> {
        match self.carry_out(&c) {
            Ok(()) => self.txns.completed(&c),
            Err(e) => {
                self.txns.not_completed(&c);
                Err(e)
            }
        }
    }

    fn carry_out(&self, c: &Completion) -> Result<(), ResponseError> {
        let now_ms = self.clock.now_ms();
        for (topic, partition) in &c.partitions {
            let Some(p) = self.topic(topic).and_then(|t| t.partition(*partition)) else {
                continue; // deleted since
            };
            p.write_marker(c.producer_id, c.epoch, c.commit, now_ms)
                .map_err(|e| {
                    tracing::error!(%topic, partition, error = %e, "cannot write transaction marker");
                    ResponseError::KafkaStorageError
                })?;
        }
        for (group, offsets) in &c.offsets {
            self.groups.commit(group, offsets.clone()).map_err(|e| {
                tracing::error!(%group, error = %e, "cannot commit the transaction's offsets");
                ResponseError::KafkaStorageError
            })?;
        }
        Ok(())
    }
}
