//! The state the consumer thread works on: the open batch, the sink, the DLQ, and
//! where each assigned partition stands.
//!
//! ```text
//!  assigned ──(paused)──► awaiting ──sink's offset read, checked, seek──► running
//!                            ▲                                             │
//!                            └── a write found the sink elsewhere (gap) ───┘
//! ```
//!
//! A partition is assigned paused and positioned outside the rebalance callback
//! (`positions.rs`); records of a partition that is not running are dropped (they are
//! read again after the seek).

use crate::batch::{FlushError, OpenBatch};
use crate::config::RuntimeConfig;
use crate::dlq::{DeadLetter, DlqProducer, Stage};
use crate::metrics::{Direction, ErrorStage, ErrorType, Metrics, ResetReason};
use crate::positions::{OtherLog, Part};
use crate::sink::{OffsetStore, Record, Revocation, Sink, SinkError, TopicPartition};
use agentbus_client::{AnyEvent, EventError, Topic};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tracing::{debug, error, info, warn};

pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// How often an idle consumer checks that its sink is reachable (for `/ready`) and
/// still holds its offsets.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// Longest a batch write (DLQ acknowledgements included) may take before it counts as
/// an outage.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a readiness check or an offsets lookup may take.
pub(crate) const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the consumer thread must stop.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Stop {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    OtherLog(#[from] OtherLog),
}

pub(crate) struct Pipeline<S> {
    pub(crate) sink: S,
    pub(crate) store: OffsetStore,
    dlq: DlqProducer,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) handle: Handle,
    pub(crate) config: RuntimeConfig,
    batch: OpenBatch,
    pub(crate) parts: BTreeMap<TopicPartition, Part>,
    /// Topic ids (Kafka's base64 form) of the topics read, as last seen.
    pub(crate) topic_ids: BTreeMap<String, String>,
    /// Paused for a sink outage (newly positioned partitions stay paused too).
    paused: bool,
    retry_at: Option<Instant>,
    backoff: Duration,
    pub(crate) position_retry_at: Option<Instant>,
    pub(crate) position_backoff: Duration,
    /// Some partition waits to be positioned (saves a scan of every partition per
    /// record).
    pub(crate) positioning: bool,
    last_contact: Instant,
    /// Shutdown has drained (or given up): a final revoke must not try to flush again.
    pub(crate) closed: bool,
    /// Why the runtime must stop.
    pub(crate) fatal: Option<Stop>,
}

impl<S> std::fmt::Debug for Pipeline<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("group", &self.config.group_id)
            .field("pending", &self.batch.pending())
            .field("parts", &self.parts.len())
            .finish()
    }
}

impl<S: Sink> Pipeline<S> {
    pub(crate) fn new(
        sink: S,
        dlq: DlqProducer,
        metrics: Arc<Metrics>,
        handle: Handle,
        config: RuntimeConfig,
    ) -> Self {
        let store = sink.offset_store();
        Self {
            sink,
            store,
            dlq,
            metrics,
            handle,
            config,
            batch: OpenBatch::default(),
            parts: BTreeMap::new(),
            topic_ids: BTreeMap::new(),
            paused: false,
            retry_at: None,
            backoff: FIRST_BACKOFF,
            position_retry_at: None,
            position_backoff: FIRST_BACKOFF,
            positioning: false,
            last_contact: Instant::now(),
            closed: false,
            fatal: None,
        }
    }

    pub(crate) fn pending_records(&self) -> usize {
        self.batch.pending()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// Whether consumption is paused for a sink outage.
    pub(crate) fn paused(&self) -> bool {
        self.paused
    }

    /// How long the consumer may block in `poll` before the batch, a retry, a
    /// positioning or the sink's own deadline is due.
    pub(crate) fn poll_timeout(&self) -> Duration {
        let now = Instant::now();
        let mut until = now + Duration::from_millis(100);
        // While a failed flush waits for its retry, the batch's own deadline has passed;
        // waiting for it would spin.
        if let Some(at) = self.retry_at {
            until = until.min(at);
        } else if let Some(opened) = self.batch.opened {
            until = until.min(opened + self.config.batch_timeout);
        }
        if let Some(at) = self.sink.deadline() {
            until = until.min(at);
        }
        if self.positioning {
            until = until.min(self.position_retry_at.unwrap_or(now));
        }
        until.saturating_duration_since(now)
    }

    /// Takes one record from Kafka into the batch (or the batch's dead letters).
    pub(crate) fn accept<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        msg: &BorrowedMessage<'_>,
    ) {
        let tp = (msg.topic().to_string(), msg.partition());
        let offset = msg.offset();
        let Some(part) = self.parts.get_mut(&tp) else {
            return;
        };
        if !part.running {
            debug!(topic = %tp.0, partition = tp.1, offset, "dropping a record of a partition that is being positioned");
            return;
        }
        if let Some(expect) = part.expect {
            if offset < expect {
                let e = OtherLog::restarted(&self.config.group_id, &tp, expect, offset);
                self.metrics.broken();
                self.fatal.get_or_insert(e.into());
                return;
            }
            if part.check_gap && offset > expect {
                // The first record after the stored offset is further on: markers and
                // compaction do that, and so does retention that deleted what the
                // group never read. Only the last is worth a word.
                if let Ok((low, _)) = consumer.fetch_watermarks(&tp.0, tp.1, CHECK_TIMEOUT) {
                    if low > expect {
                        warn!(topic = %tp.0, partition = tp.1, "records {expect}..{low} were deleted by retention before {} stored them; reading on from {offset}", self.config.group_id);
                        self.metrics.offset_reset(&tp.0, ResetReason::Retention);
                    }
                }
            }
        }
        part.check_gap = false;
        part.expect = Some(offset + 1);
        self.metrics.received();
        let from = part.from;
        self.batch
            .cover(tp, from, offset, self.topic_ids.get(msg.topic()));
        let carried = self
            .config
            .carriers
            .iter()
            .find(|(name, _)| name == msg.topic())
            .map(|(_, t)| *t)
            .or_else(|| {
                if !self.config.tagged.iter().any(|t| t == msg.topic()) {
                    return None;
                }
                let headers = msg.headers()?;
                let tag = headers
                    .iter()
                    .find(|h| h.key == crate::alert_manager::TOPIC_HEADER)?;
                std::str::from_utf8(tag.value?).ok()?.parse().ok()
            });
        match decode(msg, carried) {
            Ok((topic, event, bytes)) => self.batch.records.push(Record {
                topic,
                partition: msg.partition(),
                offset,
                event,
                // Valid JSON is valid UTF-8: the check is a fast scan, not a repair.
                json: String::from_utf8(bytes.to_vec())
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
                key: msg.key().map(<[u8]>::to_vec),
                timestamp: msg.timestamp().to_millis(),
                timestamp_type: timestamp_type(msg),
                headers: headers_of(msg),
                source: carried.map(|_| msg.topic().to_string()),
            }),
            Err((stage, class, message)) => {
                self.metrics.error(stage.into(), class);
                self.batch.dead.push(DeadLetter {
                    topic: msg.topic().to_string(),
                    partition: msg.partition(),
                    offset,
                    key: msg.key().map(<[u8]>::to_vec),
                    value: msg.payload().map(<[u8]>::to_vec),
                    headers: headers_of(msg),
                    timestamp: msg.timestamp().to_millis(),
                    timestamp_type: timestamp_type(msg),
                    stage,
                    error_class: class,
                    message,
                    sent: false,
                });
            }
        }
    }

    /// Whether the open batch is full or has waited long enough.
    pub(crate) fn due(&self, now: Instant) -> bool {
        self.batch.pending() >= self.config.batch_size
            || self
                .batch
                .opened
                .is_some_and(|o| now >= o + self.config.batch_timeout)
    }

    /// Flushes a full or timed-out batch (or any batch when `force`), retries after a
    /// failure when its backoff is over, ticks the sink at its deadline, and checks an
    /// idle sink now and then.
    pub(crate) fn tick<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, force: bool) {
        let now = Instant::now();
        if self.sink.deadline().is_some_and(|at| now >= at) {
            let result = self
                .handle
                .block_on(bounded(FLUSH_TIMEOUT, self.sink.tick()));
            match result {
                Ok(()) => {
                    self.metrics.set_sink_ok(true);
                    self.commit_durable(consumer);
                }
                Err(e @ SinkError::Fatal(_)) => return self.fail(e),
                Err(e) => {
                    self.metrics.error(ErrorStage::Sink, (&e).into());
                    self.metrics.set_sink_ok(false);
                    warn!("sink tick failed: {e}");
                }
            }
        }
        if self.retry_at.is_some_and(|at| now < at) {
            return;
        }
        if !self.is_empty() && (self.due(now) || force || self.retry_at.is_some()) {
            self.flush(consumer);
        } else if self.is_empty() && now >= self.last_contact + CHECK_EVERY {
            self.last_contact = now;
            self.check_idle(consumer);
        }
    }

    fn flush<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let started = Instant::now();
        let events = self.batch.pending();
        let metadata = match self.store {
            OffsetStore::KafkaTransaction => consumer.group_metadata(),
            _ => None,
        };
        let result = self.handle.block_on(async {
            let write = self.batch.write(
                &mut self.sink,
                &self.dlq,
                &self.metrics,
                &self.config.group_id,
                metadata.as_ref(),
            );
            match tokio::time::timeout(FLUSH_TIMEOUT, write).await {
                Ok(result) => result,
                Err(_) => Err(FlushError::Sink(SinkError::Unavailable(format!(
                    "no answer within {FLUSH_TIMEOUT:?}"
                )))),
            }
        });
        self.last_contact = Instant::now();
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(FlushError::Sink(e @ SinkError::Fatal(_))) => {
                self.metrics.error(ErrorStage::Sink, (&e).into());
                return self.fail(e);
            }
            Err(e) => return self.flush_failed(consumer, e),
        };
        let took = started.elapsed();
        let failed = self.batch.dead.len();
        info!(
            "Batch processed: {events} messages, {} inserted, {failed} failed, {:.2} ms",
            outcome.written,
            took.as_secs_f64() * 1000.0
        );
        if outcome.duplicates > 0 {
            info!(
                "Batch insert: {} inserted, {} duplicates (total: {})",
                outcome.written,
                outcome.duplicates,
                outcome.written + outcome.duplicates
            );
        }
        self.metrics
            .flushed(events, outcome.written, outcome.duplicates, took);
        self.metrics.set_sink_ok(true);
        for (tp, stored) in &outcome.mismatched {
            let from = self.batch.ranges.get(tp).and_then(|r| r.from);
            self.mismatch(consumer, tp, from, *stored);
        }
        let mut durable = BTreeMap::new();
        for (tp, range) in std::mem::take(&mut self.batch.ranges) {
            if outcome.mismatched.contains_key(&tp) {
                continue;
            }
            if let Some(part) = self.parts.get_mut(&tp) {
                part.from = Some(range.next);
            }
            if !self.sink.buffers() {
                durable.insert(tp, range.next);
            }
        }
        self.batch.clear();
        self.retry_at = None;
        self.backoff = FIRST_BACKOFF;
        self.commit_offsets(consumer, durable);
        self.commit_durable(consumer);
        if self.paused {
            self.set_paused(consumer, false);
            info!("sink is back: consumption resumed");
        }
    }

    fn flush_failed<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, e: FlushError) {
        let (stage, kind) = match &e {
            FlushError::Sink(s) => (ErrorStage::Sink, s.into()),
            FlushError::Dlq(_) => (ErrorStage::Dlq, ErrorType::Dlq),
        };
        self.metrics.error(stage, kind);
        self.metrics.set_sink_ok(false);
        warn!(
            retry_in_ms = self.backoff.as_millis() as u64,
            "Batch processing failed: {e}; consumption paused, retrying"
        );
        if !self.paused {
            self.set_paused(consumer, true);
        }
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// The sink holds `stored` for `tp`, not the `from` the batch began at: read the
    /// partition again from what the sink holds (asked anew), never store a jump.
    pub(crate) fn mismatch<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tp: &TopicPartition,
        from: Option<i64>,
        stored: Option<i64>,
    ) {
        let direction = if stored.unwrap_or(-1) < from.unwrap_or(-1) {
            Direction::Rewind
        } else {
            Direction::Forward
        };
        let show = |o: Option<i64>| o.map_or_else(|| "nothing".to_string(), |o| o.to_string());
        warn!(
            topic = %tp.0,
            partition = tp.1,
            direction = direction.as_str(),
            "the sink holds offset {} for this partition, the batch began at {}: reading again from the sink's offset",
            show(stored),
            show(from)
        );
        self.metrics.offset_mismatch(&tp.0, direction);
        if let Some(part) = self.parts.get_mut(tp) {
            part.running = false;
        }
        let _ = consumer.pause(&list([(tp, Offset::Invalid)].into_iter()));
        self.position_retry_at = None;
        self.positioning = true;
    }

    pub(crate) fn fail(&mut self, e: SinkError) {
        error!("{e}: stopping (retrying cannot help)");
        self.metrics.broken();
        self.fatal.get_or_insert(e.into());
    }

    pub(crate) fn set_paused<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        paused: bool,
    ) {
        // Partitions still being positioned stay paused whatever happens here.
        let tpl = list(
            self.parts
                .iter()
                .filter(|(_, p)| p.running)
                .map(|(tp, _)| (tp, Offset::Invalid)),
        );
        let result = if paused {
            consumer.pause(&tpl)
        } else {
            consumer.resume(&tpl)
        };
        match result {
            Ok(()) => self.paused = paused,
            Err(e) => warn!(
                "cannot {} partitions: {e}",
                if paused { "pause" } else { "resume" }
            ),
        }
    }

    /// Partitions assigned (paused by the callback): they wait to be positioned.
    pub(crate) fn on_assign(&mut self, tpl: &TopicPartitionList, incremental: bool) {
        if !incremental {
            self.parts.clear();
        }
        for e in tpl.elements() {
            self.parts
                .insert((e.topic().to_string(), e.partition()), Part::default());
        }
        self.position_retry_at = None;
        self.positioning = !self.parts.is_empty();
        self.position_backoff = FIRST_BACKOFF;
        self.publish_assignment();
        info!(partitions = self.parts.len(), "partitions assigned");
    }

    fn publish_assignment(&self) {
        let assigned: Vec<TopicPartition> = self.parts.keys().cloned().collect();
        self.metrics.set_assignment(&assigned);
        self.metrics
            .set_positioning(self.parts.values().filter(|p| !p.running).count());
    }

    /// Partitions revoked or lost. Revoked: flush what the batch holds of them (if the
    /// sink is down, drop it: its offsets were not stored, so the next owner reads it
    /// again). Lost: drop it unflushed. What the batch holds of the partitions kept (an
    /// incremental revoke) stays for its own deadline. Then the sink is told, and Kafka
    /// gets the offsets.
    pub(crate) fn on_revoke<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
        how: Revocation,
    ) {
        let revoked: BTreeSet<TopicPartition> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        let kept = self.batch.split_off(|tp| !revoked.contains(tp));
        if how == Revocation::Revoked && !self.is_empty() && !self.closed {
            self.retry_at = None;
            self.flush(consumer);
        }
        if !self.is_empty() {
            if how == Revocation::Revoked {
                warn!(
                    records = self.batch.pending(),
                    "dropping the unflushed batch of revoked partitions; the next owner reads it again"
                );
            }
            self.batch.clear();
        }
        self.batch = kept;
        let parts: Vec<TopicPartition> = revoked.iter().cloned().collect();
        if let Err(e) = self
            .handle
            .block_on(bounded(FLUSH_TIMEOUT, self.sink.revoked(&parts, how)))
        {
            warn!("the sink could not settle the revoked partitions: {e}");
        }
        self.commit_durable(consumer);
        if how == Revocation::Revoked {
            self.commit(consumer, CommitMode::Sync);
        }
        if self.is_empty() {
            self.retry_at = None;
            self.backoff = FIRST_BACKOFF;
            if self.paused {
                // librdkafka keeps an application pause across unassign and reassign.
                self.set_paused(consumer, false);
            }
        }
        self.parts.retain(|tp, _| !revoked.contains(tp));
        self.publish_assignment();
        info!(
            revoked = revoked.len(),
            lost = how == Revocation::Lost,
            "partitions revoked"
        );
    }
}

type Decoded<'a> = Result<(Topic, AnyEvent, &'a [u8]), (Stage, ErrorType, String)>;

/// Decodes a record of one of the eight topics, or of a topic that carries `carried`'s
/// events.
fn decode<'a>(msg: &'a BorrowedMessage<'_>, carried: Option<Topic>) -> Decoded<'a> {
    let topic = carried.map_or_else(|| msg.topic().parse::<Topic>(), Ok);
    match (topic, msg.payload()) {
        (Err(e), _) => Err((Stage::Deserialize, ErrorType::UnknownTopic, e.to_string())),
        (Ok(_), None) => Err((
            Stage::Deserialize,
            ErrorType::Decode,
            "$: the record has no value".to_string(),
        )),
        (Ok(topic), Some(bytes)) => match AnyEvent::decode(topic, bytes) {
            Ok(event) => Ok((topic, event, bytes)),
            Err(e @ EventError::Invalid(_)) => {
                Err((Stage::Validate, ErrorType::Invalid, e.to_string()))
            }
            Err(e) => Err((Stage::Deserialize, ErrorType::Decode, e.to_string())),
        },
    }
}

/// `fut`, or `Unavailable` when the sink does not answer within `limit` (a silently
/// dropped connection would otherwise hold the consumer thread forever).
pub(crate) async fn bounded<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, SinkError>>,
) -> Result<T, SinkError> {
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(SinkError::Unavailable(format!(
            "no answer within {limit:?}"
        )))
    })
}

fn timestamp_type(msg: &BorrowedMessage<'_>) -> &'static str {
    match msg.timestamp() {
        rdkafka::Timestamp::CreateTime(_) => "CreateTime",
        rdkafka::Timestamp::LogAppendTime(_) => "LogAppendTime",
        rdkafka::Timestamp::NotAvailable => "NoTimestamp",
    }
}

fn headers_of(msg: &BorrowedMessage<'_>) -> Vec<(String, Option<Vec<u8>>)> {
    msg.headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn list<'a>(
    items: impl Iterator<Item = (&'a TopicPartition, Offset)>,
) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in items {
        // Only fails for an invalid offset, which these never are.
        let _ = tpl.add_partition_offset(topic, *partition, offset);
    }
    tpl
}
