//! The librdkafka callbacks: rebalances (partitions are assigned paused and
//! positioned later, outside the callback), statistics (high watermarks for lag) and
//! commit results.

use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::sink::{Revocation, Sink};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tracing::{error, warn};

pub(crate) struct Context<S> {
    pub(crate) pipeline: Mutex<Pipeline<S>>,
    pub(crate) metrics: Arc<Metrics>,
}

impl<S> Context<S> {
    pub(crate) fn pipeline(&self) -> MutexGuard<'_, Pipeline<S>> {
        self.pipeline.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S: Sink> ClientContext for Context<S> {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.hi_offset >= 0 {
                    self.metrics.set_high(topic, *partition, p.hi_offset);
                }
            }
        }
    }
}

impl<S: Sink> ConsumerContext for Context<S> {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                // An explicit offset keeps librdkafka from starting the fetcher at the
                // committed offset behind our back; the seek to the real start comes
                // once the sink has answered, and until then the partition is paused.
                if let Err(e) = tpl.set_all_offsets(Offset::Offset(0)) {
                    warn!("cannot prepare the assignment: {e}");
                }
                let assigned = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                // An application pause survives unassign/reassign in librdkafka: set it
                // explicitly on every new partition.
                let result = assigned.and_then(|()| consumer.pause(tpl));
                self.pipeline().on_assign(tpl, cooperative);
                result
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let how = if consumer.assignment_lost() {
                    Revocation::Lost
                } else {
                    Revocation::Revoked
                };
                self.pipeline().on_revoke(consumer, tpl, how);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                error!("rebalance failed: {other:?}");
                self.pipeline().on_revoke(consumer, tpl, Revocation::Lost);
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            error!("cannot apply the new assignment: {e}");
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            self.metrics.commit_failed();
            warn!("offset commit failed: {e}");
        }
    }
}
