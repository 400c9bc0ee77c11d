//! The open batch: valid records, dead letters, and the range of each partition it
//! covers; and how one is written (dead letters first, then the sink; a batch the sink
//! refuses is written one event at a time so that only the refused events go to the
//! DLQ).

use crate::dlq::{DeadLetter, DlqError, DlqProducer, Stage};
use crate::metrics::{ErrorStage, ErrorType, Metrics};
use crate::sink::{
    Batch, OffsetStore, Range, Record, Sink, SinkError, TopicPartition, WriteOutcome,
};
use rdkafka::consumer::ConsumerGroupMetadata;
use std::collections::BTreeMap;
use std::time::Instant;
use tracing::warn;

/// Why a flush did not finish.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FlushError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Dlq(#[from] DlqError),
}

#[derive(Debug, Default)]
pub(crate) struct OpenBatch {
    pub(crate) records: Vec<Record>,
    pub(crate) dead: Vec<DeadLetter>,
    /// Every partition the batch moves, from the sink's offset to after its last record.
    pub(crate) ranges: BTreeMap<TopicPartition, Range>,
    pub(crate) opened: Option<Instant>,
    /// Events already written by an interrupted one-at-a-time write.
    carried: WriteOutcome,
}

impl OpenBatch {
    pub(crate) fn pending(&self) -> usize {
        self.records.len() + self.dead.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Extends the batch over `offset` of `tp`, whose stored offset is `from`.
    pub(crate) fn cover(
        &mut self,
        tp: TopicPartition,
        from: Option<i64>,
        offset: i64,
        topic_id: Option<&String>,
    ) {
        self.opened.get_or_insert_with(Instant::now);
        self.ranges
            .entry(tp)
            .and_modify(|r| r.next = offset + 1)
            .or_insert_with(|| Range {
                from,
                next: offset + 1,
                topic_id: topic_id.cloned(),
            });
    }

    /// Moves what the batch holds of the partitions `take` selects into a batch of
    /// their own (opened when this one was).
    pub(crate) fn split_off(&mut self, take: impl Fn(&TopicPartition) -> bool) -> OpenBatch {
        let (taken, kept) = std::mem::take(&mut self.records)
            .into_iter()
            .partition(|r| take(&(r.log().to_string(), r.partition)));
        self.records = kept;
        let (dead, kept) = std::mem::take(&mut self.dead)
            .into_iter()
            .partition(|d| take(&(d.topic.clone(), d.partition)));
        self.dead = kept;
        let (ranges, kept) = std::mem::take(&mut self.ranges)
            .into_iter()
            .partition(|(tp, _)| take(tp));
        self.ranges = kept;
        let split = OpenBatch {
            records: taken,
            dead,
            ranges,
            opened: self.opened,
            carried: WriteOutcome::default(),
        };
        if self.ranges.is_empty() {
            self.clear();
        }
        split
    }

    pub(crate) fn clear(&mut self) {
        self.records.clear();
        self.dead.clear();
        self.ranges.clear();
        self.opened = None;
        self.carried = WriteOutcome::default();
    }

    /// Writes the batch: what every partition of it ended as.
    pub(crate) async fn write<S: Sink>(
        &mut self,
        sink: &mut S,
        dlq: &DlqProducer,
        metrics: &Metrics,
        group: &str,
        group_metadata: Option<&ConsumerGroupMetadata>,
    ) -> Result<WriteOutcome, FlushError> {
        // A transactional sink produces the dead letters in its own transaction.
        let in_transaction = sink.offset_store() == OffsetStore::KafkaTransaction;
        if !in_transaction {
            send_dead_letters(dlq, metrics, &mut self.dead).await?;
        }
        let batch = Batch {
            group,
            records: &self.records,
            dead: &self.dead,
            ranges: &self.ranges,
            group_metadata,
        };
        let mut outcome = match sink.write(&batch).await {
            Ok(o) if in_transaction => {
                for letter in self.dead.iter_mut().filter(|l| !l.sent) {
                    letter.sent = true;
                    metrics.dead_letter_sent(letter);
                    warn!(stage = letter.stage.as_str(), reason = %letter.message, "Event sent to DLQ: {}", letter.label());
                }
                o
            }
            Ok(o) => o,
            Err(SinkError::Rejected(reason)) => {
                warn!("sink rejected a batch ({reason}); writing it one event at a time");
                self.write_one_at_a_time(sink, dlq, metrics, group, group_metadata)
                    .await?
            }
            Err(e) => return Err(e.into()),
        };
        outcome.written += self.carried.written;
        outcome.duplicates += self.carried.duplicates;
        self.carried = WriteOutcome::default();
        Ok(outcome)
    }

    /// Each record alone, moving its partition's offset over it; a refused one becomes
    /// a dead letter (covered by the next write of its partition). Written records
    /// leave the batch, so a retry after an outage goes on where this stopped.
    async fn write_one_at_a_time<S: Sink>(
        &mut self,
        sink: &mut S,
        dlq: &DlqProducer,
        metrics: &Metrics,
        group: &str,
        group_metadata: Option<&ConsumerGroupMetadata>,
    ) -> Result<WriteOutcome, FlushError> {
        let mut mismatched = BTreeMap::new();
        while let Some(record) = self.records.first() {
            let tp = (record.log().to_string(), record.partition);
            let Some(range) = self.ranges.get(&tp) else {
                self.records.remove(0);
                continue;
            };
            if mismatched.contains_key(&tp) {
                self.records.remove(0);
                continue;
            }
            let one = BTreeMap::from([(
                tp.clone(),
                Range {
                    from: range.from,
                    next: record.offset + 1,
                    topic_id: range.topic_id.clone(),
                },
            )]);
            let batch = Batch {
                group,
                records: std::slice::from_ref(record),
                dead: &[],
                ranges: &one,
                group_metadata,
            };
            match sink.write(&batch).await {
                Ok(o) => {
                    self.carried.written += o.written;
                    self.carried.duplicates += o.duplicates;
                    if let Some(stored) = o.mismatched.get(&tp) {
                        mismatched.insert(tp, *stored);
                    } else if let Some(r) = self.ranges.get_mut(&tp) {
                        r.from = Some(record.offset + 1);
                    }
                }
                Err(SinkError::Rejected(message)) => {
                    metrics.error(ErrorStage::Sink, ErrorType::SinkRejected);
                    self.dead.push(DeadLetter {
                        topic: tp.0.clone(),
                        partition: record.partition,
                        offset: record.offset,
                        key: record.key.clone(),
                        value: Some(record.json.clone().into_bytes()),
                        headers: record.headers.clone(),
                        timestamp: record.timestamp,
                        timestamp_type: record.timestamp_type,
                        stage: Stage::Sink,
                        error_class: ErrorType::SinkRejected,
                        message,
                        sent: false,
                    });
                }
                Err(e) => return Err(e.into()),
            }
            self.records.remove(0);
        }
        send_dead_letters(dlq, metrics, &mut self.dead).await?;
        // Move the offsets over what is left: trailing dead letters.
        let rest: BTreeMap<TopicPartition, Range> = self
            .ranges
            .iter()
            .filter(|(tp, r)| !mismatched.contains_key(*tp) && r.from != Some(r.next))
            .map(|(tp, r)| (tp.clone(), r.clone()))
            .collect();
        let mut outcome = WriteOutcome::default();
        if !rest.is_empty() {
            let batch = Batch {
                group,
                records: &[],
                dead: &self.dead,
                ranges: &rest,
                group_metadata,
            };
            outcome = sink.write(&batch).await?;
        }
        outcome.mismatched.extend(mismatched);
        Ok(outcome)
    }
}

async fn send_dead_letters(
    dlq: &DlqProducer,
    metrics: &Metrics,
    dead: &mut [DeadLetter],
) -> Result<(), DlqError> {
    let unsent: Vec<usize> = (0..dead.len()).filter(|i| !dead[*i].sent).collect();
    if unsent.is_empty() {
        return Ok(());
    }
    let result = dlq.send(dead).await;
    for i in unsent {
        let letter = &dead[i];
        if letter.sent {
            metrics.dead_letter_sent(letter);
            warn!(stage = letter.stage.as_str(), reason = %letter.message, "Event sent to DLQ: {}", letter.label());
        }
    }
    if result.is_err() {
        metrics.dlq_write_failed();
    }
    result.map(|_| ())
}
