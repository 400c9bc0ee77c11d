//! What Kafka hears of the offsets: only those the sink has made durable, and never
//! when the sink's own Kafka transaction carries them.

use crate::pipeline::{list, Pipeline};
use crate::sink::{OffsetStore, Sink, TopicPartition};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use tracing::warn;

impl<S: Sink> Pipeline<S> {
    /// Shutdown, the batch flushed: the sink persists what it can, and Kafka hears of it.
    pub(crate) fn close<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let result = self.handle.block_on(crate::pipeline::bounded(
            std::time::Duration::from_secs(30),
            self.sink.close(),
        ));
        if let Err(e) = result {
            warn!("the sink could not persist its open work at shutdown ({e}); it is read again on the next start");
        }
        self.commit_durable(consumer);
    }

    /// What a buffering sink made durable since it was last asked, to Kafka.
    pub(crate) fn commit_durable<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        if self.sink.buffers() {
            let durable = self.sink.take_durable();
            self.commit_offsets(consumer, durable);
        }
    }

    /// Offsets the sink has made durable: recorded for lag, and committed to Kafka
    /// unless a Kafka transaction carries them.
    pub(crate) fn commit_offsets<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        durable: BTreeMap<TopicPartition, i64>,
    ) {
        if durable.is_empty() {
            return;
        }
        for (tp, next) in &durable {
            self.metrics.set_current(&tp.0, tp.1, *next);
            if let Some(part) = self.parts.get_mut(tp) {
                part.durable = Some(*next);
            }
        }
        if self.store != OffsetStore::KafkaTransaction {
            let tpl = list(durable.iter().map(|(tp, n)| (tp, Offset::Offset(*n))));
            self.commit_list(consumer, &tpl, CommitMode::Async);
        }
    }

    /// Commits every assigned partition's durable offset (revoke, shutdown), so that
    /// Kafka stays at or behind the sink.
    pub(crate) fn commit<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, mode: CommitMode) {
        if self.store == OffsetStore::KafkaTransaction {
            return;
        }
        let tpl = list(
            self.parts
                .iter()
                .filter_map(|(tp, p)| Some((tp, Offset::Offset(p.durable?)))),
        );
        self.commit_list(consumer, &tpl, mode);
    }

    fn commit_list<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
        mode: CommitMode,
    ) {
        if tpl.count() == 0 {
            return;
        }
        if let Err(e) = consumer.commit(tpl, mode) {
            self.metrics.commit_failed();
            warn!("offset commit failed: {e}");
        }
    }
}
