//! Positioning assigned partitions, outside the rebalance callback: the sink's stored
//! offsets (or Kafka's committed ones, for sinks that keep none), checked against the
//! topic's id, else the group's start position; then seek and resume.

use crate::pipeline::{bounded, list, Pipeline, CHECK_TIMEOUT, FIRST_BACKOFF, MAX_BACKOFF};
use crate::sink::{OffsetStore, Sink, SinkError, StoredOffset, TopicPartition};
use crate::start::StartFrom;
use crate::topic_ids;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::Offset;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::{info, warn};

/// How long a Kafka lookup (committed offsets, offsets by time, seek) may take.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a sink may take to restore its state for newly assigned partitions.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(120);

/// Where one assigned partition stands.
#[derive(Debug, Clone, Default)]
pub(crate) struct Part {
    /// Positioned at the sink's offset and fetching.
    pub(crate) running: bool,
    /// What the sink holds (where the next batch of this partition begins); `None`:
    /// nothing yet.
    pub(crate) from: Option<i64>,
    /// The lowest offset the next record may have.
    pub(crate) expect: Option<i64>,
    /// The next record is the first after the stored offset: a jump may be retention.
    pub(crate) check_gap: bool,
    /// The last offset known durable (what Kafka may be told).
    pub(crate) durable: Option<i64>,
}

/// Stored offsets that belong to another log than the topic now has.
#[derive(Debug, thiserror::Error)]
#[error("{topic}: the offsets consumer group {group} stored belong to another log ({detail}). Nothing was skipped. To read {topic} again from the start position (START_FROM), run the consumer once with --reset-sink-offsets {topic}")]
pub struct OtherLog {
    /// The topic.
    pub topic: String,
    /// The group.
    pub group: String,
    /// What differs.
    pub detail: String,
}

impl OtherLog {
    /// The partition's log begins below what the group stored.
    pub(crate) fn restarted(group: &str, tp: &TopicPartition, stored: i64, first: i64) -> Self {
        Self {
            topic: tp.0.clone(),
            group: group.to_string(),
            detail: format!(
                "partition {} now holds offset {first}, below the stored offset {stored}: the topic was recreated, or the broker lost its data",
                tp.1
            ),
        }
    }
}

impl<S: Sink> Pipeline<S> {
    /// Positions the partitions that wait for it; retried with backoff while the sink
    /// or the cluster does not answer.
    pub(crate) fn position<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        if !self.positioning {
            return;
        }
        let waiting: Vec<TopicPartition> = self
            .parts
            .iter()
            .filter(|(_, p)| !p.running)
            .map(|(tp, _)| tp.clone())
            .collect();
        self.metrics.set_positioning(waiting.len());
        if waiting.is_empty() {
            self.positioning = false;
            return;
        }
        if self.position_retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        self.refresh_topic_ids(&waiting);
        let stored = match self.stored(consumer, &waiting) {
            Ok(stored) => stored,
            Err(e) => return self.wait_for_sink("read the stored offsets", e),
        };
        let restore = self
            .handle
            .block_on(bounded(RESTORE_TIMEOUT, self.sink.assigned(&waiting)));
        if let Err(e) = restore {
            return self.wait_for_sink("restore the sink's state for the assigned partitions", e);
        }
        // The sink answered (its offsets, or its state read back): ready without
        // waiting for the first idle check.
        self.metrics.set_sink_ok(true);
        let mut targets = BTreeMap::new();
        let mut fresh = Vec::new();
        for tp in &waiting {
            match stored.get(tp) {
                Some(s) => {
                    if let Err(e) = self.same_log(tp, s) {
                        self.metrics.broken();
                        self.fatal.get_or_insert(e.into());
                        return;
                    }
                    targets.insert(tp.clone(), (Offset::Offset(s.next), Some(s.next)));
                }
                None => fresh.push(tp.clone()),
            }
        }
        match self.start_offsets(consumer, &fresh) {
            Ok(start) => targets.extend(start.into_iter().map(|(tp, o)| (tp, (o, None)))),
            Err(e) => {
                warn!(
                    "cannot find the start position ({}): {e}; retrying",
                    self.config.start_from
                );
                self.position_retry_at = Some(Instant::now() + self.position_backoff);
                return;
            }
        }
        tracing::debug!(?targets, "seeking");
        let tpl = list(targets.iter().map(|(tp, (o, _))| (tp, *o)));
        let sought = match consumer.seek_partitions(tpl, KAFKA_TIMEOUT) {
            Ok(sought) => sought,
            Err(e) => {
                warn!("cannot seek the assigned partitions: {e}; retrying");
                self.position_retry_at = Some(Instant::now() + self.position_backoff);
                return;
            }
        };
        let mut started = Vec::new();
        for e in sought.elements() {
            let tp = (e.topic().to_string(), e.partition());
            if let Err(err) = e.error() {
                warn!(topic = %tp.0, partition = tp.1, "cannot seek: {err}; retrying");
                self.position_retry_at = Some(Instant::now() + self.position_backoff);
                continue;
            }
            let (Some(part), Some((_, stored))) = (self.parts.get_mut(&tp), targets.get(&tp))
            else {
                continue;
            };
            *part = crate::positions::Part {
                running: true,
                from: *stored,
                expect: *stored,
                check_gap: stored.is_some(),
                durable: *stored,
            };
            if let Some(next) = stored {
                self.metrics.set_current(&tp.0, tp.1, *next);
            }
            started.push(tp);
        }
        if !self.paused() && !started.is_empty() {
            let tpl = list(started.iter().map(|tp| (tp, Offset::Invalid)));
            if let Err(e) = consumer.resume(&tpl) {
                warn!("cannot resume the positioned partitions: {e}");
            }
            // librdkafka's broker threads notice a resume only when they next wake
            // (up to a second later); a request to each leader wakes them now.
            let nudge = list(started.iter().map(|tp| (tp, Offset::End)));
            let _ = consumer.offsets_for_times(nudge, KAFKA_TIMEOUT);
        }
        if self.parts.values().all(|p| p.running) {
            self.positioning = false;
            self.position_retry_at = None;
            self.position_backoff = FIRST_BACKOFF;
        }
        self.metrics
            .set_positioning(self.parts.values().filter(|p| !p.running).count());
        info!(
            positioned = started.len(),
            from_sink = targets.values().filter(|(_, s)| s.is_some()).count(),
            "partitions positioned"
        );
    }

    /// Positioning could not `what`: stop if retrying cannot help, else the partitions
    /// wait, paused, and it is tried again after a backoff.
    fn wait_for_sink(&mut self, what: &str, e: SinkError) {
        if let SinkError::Fatal(_) = e {
            return self.fail(e);
        }
        self.metrics.set_sink_ok(false);
        warn!(
            retry_in_ms = self.position_backoff.as_millis() as u64,
            "cannot {what}: {e}; the partitions wait, paused"
        );
        self.position_retry_at = Some(Instant::now() + self.position_backoff);
        self.position_backoff = (self.position_backoff * 2).min(MAX_BACKOFF);
    }

    /// While no batch is open: the sink is reachable (for `/ready`), and still holds the
    /// offsets this member stored, so that a store that lost writes while nothing flowed
    /// (a Redis restarted without persistence, a restored database) is read again now,
    /// not at the partition's next record.
    pub(crate) fn check_idle<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let running: Vec<TopicPartition> = self
            .parts
            .iter()
            .filter(|(_, p)| p.running)
            .map(|(tp, _)| tp.clone())
            .collect();
        if self.store != OffsetStore::Sink || self.sink.buffers() || running.is_empty() {
            let result = self
                .handle
                .block_on(bounded(CHECK_TIMEOUT, self.sink.check()));
            self.metrics.set_sink_ok(result.is_ok());
            if let Err(e @ SinkError::Fatal(_)) = result {
                self.fail(e);
            }
            return;
        }
        let group = self.config.group_id.clone();
        let result = self.handle.block_on(bounded(
            CHECK_TIMEOUT,
            self.sink.stored_offsets(&group, &running),
        ));
        self.metrics.set_sink_ok(result.is_ok());
        let stored = match result {
            Ok(stored) => stored,
            Err(e @ SinkError::Fatal(_)) => return self.fail(e),
            Err(_) => return,
        };
        for tp in running {
            let held = stored.get(&tp).map(|s| s.next);
            let from = self.parts.get(&tp).and_then(|p| p.from);
            if held != from {
                self.mismatch(consumer, &tp, from, held);
            }
        }
    }

    /// Reads the topic ids of `waiting`'s topics (kept for the next write, and checked
    /// against the stored ones). A cluster that cannot say keeps the check off.
    fn refresh_topic_ids(&mut self, waiting: &[TopicPartition]) {
        if self.store != OffsetStore::Sink {
            return;
        }
        let topics: Vec<String> = waiting
            .iter()
            .map(|(t, _)| t.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let brokers = self.config.brokers.clone();
        match self
            .handle
            .block_on(topic_ids::fetch(&brokers, &topics, CHECK_TIMEOUT))
        {
            Ok(ids) => {
                for t in &topics {
                    match ids.get(t) {
                        Some(id) => self.topic_ids.insert(t.clone(), id.clone()),
                        None => self.topic_ids.remove(t),
                    };
                }
            }
            Err(e) => warn!("cannot read the topic ids ({e}); stored offsets are not checked against them this time"),
        }
    }

    fn stored<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        waiting: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, StoredOffset>, SinkError> {
        if self.store == OffsetStore::Sink {
            let group = self.config.group_id.clone();
            return self.handle.block_on(bounded(
                CHECK_TIMEOUT,
                self.sink.stored_offsets(&group, waiting),
            ));
        }
        let tpl = list(waiting.iter().map(|tp| (tp, Offset::Invalid)));
        let committed = consumer
            .committed_offsets(tpl, KAFKA_TIMEOUT)
            .map_err(|e| SinkError::Unavailable(format!("committed offsets: {e}")))?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(next) => Some((
                    (e.topic().to_string(), e.partition()),
                    StoredOffset {
                        next,
                        topic_id: None,
                    },
                )),
                _ => None,
            })
            .collect())
    }

    fn same_log(
        &self,
        tp: &TopicPartition,
        stored: &StoredOffset,
    ) -> Result<(), crate::positions::OtherLog> {
        match (&stored.topic_id, self.topic_ids.get(&tp.0)) {
            (Some(was), Some(now)) if was != now => Err(OtherLog {
                topic: tp.0.clone(),
                group: self.config.group_id.clone(),
                detail: format!(
                    "they were stored under topic id {was}, and the topic's id is now {now}: it was recreated, a --memory broker restarted, or KAFKA_BROKERS points at another cluster"
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Where partitions without stored offsets start, as offsets (one ListOffsets
    /// round: Kafka's timestamps -2 and -1 ask for the log start and end; a seek to a
    /// logical offset would make librdkafka look it up again on its own timer).
    fn start_offsets<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        fresh: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Offset)>, rdkafka::error::KafkaError> {
        if fresh.is_empty() {
            return Ok(Vec::new());
        }
        // The logical offsets stand for the timestamps -2 and -1 here.
        let timestamp = match self.config.start_from {
            StartFrom::Earliest => Offset::Beginning,
            StartFrom::Latest => Offset::End,
            StartFrom::NotOlderThan(age) => Offset::Offset(
                SystemTime::now()
                    .checked_sub(age)
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_millis() as i64),
            ),
        };
        let tpl = list(fresh.iter().map(|tp| (tp, timestamp)));
        let found = consumer.offsets_for_times(tpl, KAFKA_TIMEOUT)?;
        let mut out = Vec::with_capacity(fresh.len());
        let mut at_end = Vec::new();
        for e in found.elements() {
            let tp = (e.topic().to_string(), e.partition());
            match e.offset() {
                o @ Offset::Offset(_) => out.push((tp, o)),
                _ => at_end.push(tp),
            }
        }
        // No record that new: only what comes next, from the end as it is now (timestamp
        // -1, one round for all of them). A logical `End` would be resolved later, after
        // records that arrive meanwhile.
        if !at_end.is_empty() {
            let ends = consumer.offsets_for_times(
                list(at_end.iter().map(|tp| (tp, Offset::End))),
                KAFKA_TIMEOUT,
            )?;
            for e in ends.elements() {
                out.push(((e.topic().to_string(), e.partition()), e.offset()));
            }
        }
        Ok(out)
    }
}
