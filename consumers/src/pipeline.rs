//! The state the consumer thread works on: the open batch, the sink, the DLQ, and what
//! each assigned partition's sink already holds.

use crate::dlq::{DeadLetter, DlqProducer, Stage};
use crate::metrics::Metrics;
use crate::sink::{Record, Sink, SinkError, TopicPartition, WriteOutcome};
use agentbus_client::{AnyEvent, EventError, Topic};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tracing::{debug, error, info, warn};

const MAX_BACKOFF: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// How often an idle consumer checks that its sink is reachable (for `/ready`).
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// Longest a batch write (DLQ acknowledgements included) may take before it counts as
/// an outage.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a readiness check or an offsets lookup may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a rebalance waits for the sink's stored offsets before falling back to
/// Kafka's committed offsets (always at or behind the sink's, so replays are only
/// duplicates).
const STORED_OFFSETS_WAIT: Duration = Duration::from_secs(15);

/// Why a flush did not finish.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FlushError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Dlq(#[from] crate::dlq::DlqError),
}

pub(crate) struct Pipeline<S> {
    pub(crate) sink: S,
    dlq: DlqProducer,
    metrics: Arc<Metrics>,
    handle: Handle,
    group: String,
    batch_size: usize,
    batch_timeout: Duration,
    records: Vec<Record>,
    dead: Vec<DeadLetter>,
    /// Next offsets covered by the open batch.
    offsets: BTreeMap<TopicPartition, i64>,
    opened: Option<Instant>,
    /// Events already written by an interrupted one-at-a-time write.
    carried: WriteOutcome,
    /// Next offset the sink holds per assigned partition; records below it are replays.
    stored: BTreeMap<TopicPartition, i64>,
    assigned: BTreeSet<TopicPartition>,
    paused: bool,
    retry_at: Option<Instant>,
    backoff: Duration,
    last_contact: Instant,
    /// Shutdown has drained (or given up): a final revoke must not try to flush again.
    pub(crate) closed: bool,
    /// A fatal sink error: the runtime stops.
    pub(crate) fatal: Option<SinkError>,
}

impl<S> std::fmt::Debug for Pipeline<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("group", &self.group)
            .field("records", &self.records.len())
            .field("dead", &self.dead.len())
            .finish()
    }
}

impl<S: Sink> Pipeline<S> {
    pub(crate) fn new(
        sink: S,
        dlq: DlqProducer,
        metrics: Arc<Metrics>,
        handle: Handle,
        group: String,
        batch_size: usize,
        batch_timeout: Duration,
    ) -> Self {
        Self {
            sink,
            dlq,
            metrics,
            handle,
            group,
            batch_size,
            batch_timeout,
            records: Vec::with_capacity(batch_size),
            dead: Vec::new(),
            offsets: BTreeMap::new(),
            opened: None,
            carried: WriteOutcome::default(),
            stored: BTreeMap::new(),
            assigned: BTreeSet::new(),
            paused: false,
            retry_at: None,
            backoff: FIRST_BACKOFF,
            last_contact: Instant::now(),
            closed: false,
            fatal: None,
        }
    }

    fn pending(&self) -> usize {
        self.records.len() + self.dead.len()
    }

    pub(crate) fn pending_records(&self) -> usize {
        self.pending()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// How long the consumer may block in `poll` before the batch or a retry is due.
    pub(crate) fn poll_timeout(&self) -> Duration {
        let now = Instant::now();
        let t = Duration::from_millis(100);
        // While a failed flush waits for its retry, the batch's own deadline has passed;
        // waiting for it would spin.
        if let Some(at) = self.retry_at {
            return t.min(at.saturating_duration_since(now));
        }
        match self.opened {
            Some(opened) => t.min((opened + self.batch_timeout).saturating_duration_since(now)),
            None => t,
        }
    }

    /// Takes one record from Kafka into the batch (or the batch's dead letters).
    pub(crate) fn accept(&mut self, msg: &BorrowedMessage<'_>) {
        let tp = (msg.topic().to_string(), msg.partition());
        if !self.assigned.contains(&tp) {
            return;
        }
        if self
            .stored
            .get(&tp)
            .is_some_and(|next| msg.offset() < *next)
        {
            debug!(topic = %tp.0, partition = tp.1, offset = msg.offset(), "skipping a record the sink already has");
            return;
        }
        self.metrics.received();
        self.opened.get_or_insert_with(Instant::now);
        self.offsets.insert(tp, msg.offset() + 1);
        let decoded = match (msg.topic().parse::<Topic>(), msg.payload()) {
            (Err(e), _) => Err((Stage::Deserialize, "UnknownTopic", e.to_string())),
            (Ok(_), None) => Err((
                Stage::Deserialize,
                "EventError::Decode",
                "$: the record has no value".to_string(),
            )),
            (Ok(topic), Some(bytes)) => match AnyEvent::decode(topic, bytes) {
                Ok(event) => Ok((topic, event, bytes)),
                Err(e @ EventError::Invalid(_)) => {
                    Err((Stage::Validate, "EventError::Invalid", e.to_string()))
                }
                Err(e) => Err((Stage::Deserialize, "EventError::Decode", e.to_string())),
            },
        };
        match decoded {
            Ok((topic, event, bytes)) => self.records.push(Record {
                topic,
                partition: msg.partition(),
                offset: msg.offset(),
                event,
                // Valid JSON is valid UTF-8.
                json: String::from_utf8_lossy(bytes).into_owned(),
                key: msg.key().map(<[u8]>::to_vec),
                timestamp: msg.timestamp().to_millis(),
                headers: headers_of(msg),
            }),
            Err((stage, class, message)) => {
                self.metrics.error(stage.as_str(), class);
                self.dead.push(DeadLetter {
                    topic: msg.topic().to_string(),
                    partition: msg.partition(),
                    offset: msg.offset(),
                    key: msg.key().map(<[u8]>::to_vec),
                    value: msg.payload().map(<[u8]>::to_vec),
                    headers: headers_of(msg),
                    timestamp: msg.timestamp().to_millis(),
                    stage,
                    error_class: class,
                    message,
                    sent: false,
                });
            }
        }
    }

    /// Flushes a full or timed-out batch (or any batch when `force`), retries after a
    /// failure when its backoff is over, and checks an idle sink now and then.
    pub(crate) fn tick<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, force: bool) {
        let now = Instant::now();
        if self.retry_at.is_some_and(|at| now < at) {
            return;
        }
        let due = self.pending() >= self.batch_size
            || self.opened.is_some_and(|o| now >= o + self.batch_timeout);
        if !self.is_empty() && (due || force || self.retry_at.is_some()) {
            self.flush(consumer);
        } else if self.is_empty() && now >= self.last_contact + CHECK_EVERY {
            self.last_contact = now;
            let result = self
                .handle
                .block_on(bounded(CHECK_TIMEOUT, self.sink.check()));
            self.metrics.set_sink_ok(result.is_ok());
            if let Err(e @ SinkError::Fatal(_)) = result {
                self.fail(e);
            }
        }
    }

    fn flush<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let started = Instant::now();
        let events = self.pending();
        let result = self.handle.block_on(async {
            let write = write_batch(
                &mut self.sink,
                &self.dlq,
                &self.metrics,
                &self.group,
                &mut self.records,
                &mut self.dead,
                &self.offsets,
                &mut self.carried,
            );
            match tokio::time::timeout(FLUSH_TIMEOUT, write).await {
                Ok(result) => result,
                Err(_) => Err(FlushError::Sink(SinkError::Unavailable(format!(
                    "no answer within {FLUSH_TIMEOUT:?}"
                )))),
            }
        });
        self.last_contact = Instant::now();
        match result {
            Ok(outcome) => {
                let took = started.elapsed();
                let failed = self.dead.len();
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
                // Kafka hears only of the partitions this batch moved.
                let moved = list(self.offsets.iter().map(|(tp, n)| (tp, Offset::Offset(*n))));
                for (tp, next) in std::mem::take(&mut self.offsets) {
                    self.metrics.set_current(&tp.0, tp.1, next);
                    self.stored.insert(tp, next);
                }
                self.commit_list(consumer, &moved, CommitMode::Async);
                self.records.clear();
                self.dead.clear();
                self.opened = None;
                self.retry_at = None;
                self.backoff = FIRST_BACKOFF;
                if self.paused {
                    self.set_paused(consumer, false);
                    info!("sink is back: consumption resumed");
                }
            }
            Err(FlushError::Sink(e @ SinkError::Fatal(_))) => {
                self.metrics.error("SINK", e.kind());
                self.fail(e);
            }
            Err(e) => {
                let (stage, kind) = match &e {
                    FlushError::Sink(s) => ("SINK", s.kind()),
                    FlushError::Dlq(_) => ("DLQ", "DlqError"),
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
        }
    }

    fn fail(&mut self, e: SinkError) {
        error!("{e}: stopping (retrying cannot help)");
        self.metrics.broken();
        self.fatal.get_or_insert(e);
    }

    /// Whether consumption is paused for a sink outage (newly assigned partitions are
    /// paused too, so the batch cannot grow while it waits).
    pub(crate) fn paused(&self) -> bool {
        self.paused
    }

    fn set_paused<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, paused: bool) {
        let tpl = list(self.assigned.iter().map(|tp| (tp, Offset::Invalid)));
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

    /// Commits the offsets the sink has confirmed (never those of an unwritten batch)
    /// to Kafka too, so that lag tools see them and Kafka stays at or behind the sink.
    pub(crate) fn commit<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, mode: CommitMode) {
        let tpl = list(
            self.stored
                .iter()
                .filter(|(tp, _)| self.assigned.contains(*tp))
                .map(|(tp, next)| (tp, Offset::Offset(*next))),
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

    /// Partitions assigned: asks the sink where each one stands and starts there.
    pub(crate) fn on_assign(&mut self, tpl: &mut TopicPartitionList, incremental: bool) {
        let parts: Vec<TopicPartition> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        if !incremental {
            self.assigned.clear();
            self.stored.clear();
        }
        let found = self
            .handle
            .block_on(stored_offsets(&mut self.sink, &self.group, &parts));
        match found {
            Ok(Some(map)) => {
                // The sink is the authority: a partition it has nothing of starts at the
                // beginning, whatever the group committed in Kafka (a new or reset
                // database must not skip what it never stored).
                for (topic, partition) in parts.iter().filter(|tp| !map.contains_key(*tp)) {
                    if let Err(e) = tpl.set_partition_offset(topic, *partition, Offset::Beginning) {
                        warn!(%topic, partition, "cannot start at the beginning: {e}");
                    }
                }
                for ((topic, partition), next) in map {
                    if let Err(e) =
                        tpl.set_partition_offset(&topic, partition, Offset::Offset(next))
                    {
                        warn!(%topic, partition, "cannot start at the sink's offset {next}: {e}");
                        continue;
                    }
                    self.metrics.set_current(&topic, partition, next);
                    self.stored.insert((topic, partition), next);
                }
                self.metrics.set_sink_ok(true);
            }
            Ok(None) => {}
            Err(e @ SinkError::Fatal(_)) => {
                self.metrics.set_sink_ok(false);
                self.fail(e);
            }
            Err(e) => {
                self.metrics.set_sink_ok(false);
                warn!("cannot read the sink's stored offsets ({e}); starting from Kafka's committed offsets (replays are deduplicated)");
            }
        }
        self.assigned.extend(parts);
        let assigned: Vec<TopicPartition> = self.assigned.iter().cloned().collect();
        self.metrics.set_assignment(&assigned);
        info!(partitions = assigned.len(), "partitions assigned");
    }

    /// Partitions revoked: flushes what the batch holds for them; if the sink is down,
    /// drops it (its offsets were not stored, so the next owner reads it again).
    pub(crate) fn on_revoke<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
    ) {
        let revoked: BTreeSet<TopicPartition> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        if !self.is_empty() && !self.closed {
            self.retry_at = None;
            self.flush(consumer);
        }
        if !self.is_empty() {
            warn!(
                records = self.pending(),
                "dropping the unflushed batch of revoked partitions; the next owner reads it again"
            );
            self.records
                .retain(|r| !revoked.contains(&(r.topic.name().to_string(), r.partition)));
            self.dead
                .retain(|d| !revoked.contains(&(d.topic.clone(), d.partition)));
            self.offsets.retain(|tp, _| !revoked.contains(tp));
            self.carried = WriteOutcome::default();
            if self.offsets.is_empty() {
                self.opened = None;
            }
        }
        self.commit(consumer, CommitMode::Sync);
        if self.is_empty() {
            self.retry_at = None;
            self.backoff = FIRST_BACKOFF;
            if self.paused {
                // librdkafka keeps an application pause across unassign and reassign.
                self.set_paused(consumer, false);
            }
        }
        self.assigned.retain(|tp| !revoked.contains(tp));
        self.stored.retain(|tp, _| !revoked.contains(tp));
        let assigned: Vec<TopicPartition> = self.assigned.iter().cloned().collect();
        self.metrics.set_assignment(&assigned);
        info!(revoked = revoked.len(), "partitions revoked");
    }
}

/// DLQ first (a failed DLQ write keeps the batch), then the sink; a batch the sink
/// refuses is written one event at a time and the refused ones go to the DLQ.
#[allow(clippy::too_many_arguments)]
async fn write_batch<S: Sink>(
    sink: &mut S,
    dlq: &DlqProducer,
    metrics: &Metrics,
    group: &str,
    records: &mut Vec<Record>,
    dead: &mut Vec<DeadLetter>,
    offsets: &BTreeMap<TopicPartition, i64>,
    carried: &mut WriteOutcome,
) -> Result<WriteOutcome, FlushError> {
    send_dead_letters(dlq, metrics, dead).await?;
    let outcome = match sink.write(group, records, offsets).await {
        Ok(o) => o,
        Err(SinkError::Rejected(reason)) => {
            warn!("sink rejected a batch ({reason}); writing it one event at a time");
            let none = BTreeMap::new();
            while let Some(record) = records.first() {
                match sink.write(group, std::slice::from_ref(record), &none).await {
                    Ok(o) => {
                        carried.written += o.written;
                        carried.duplicates += o.duplicates;
                    }
                    Err(SinkError::Rejected(message)) => {
                        metrics.error(Stage::Sink.as_str(), "SinkError::Rejected");
                        dead.push(DeadLetter {
                            topic: record.topic.name().to_string(),
                            partition: record.partition,
                            offset: record.offset,
                            key: record.key.clone(),
                            value: Some(record.json.clone().into_bytes()),
                            headers: record.headers.clone(),
                            timestamp: record.timestamp,
                            stage: Stage::Sink,
                            error_class: "SinkError::Rejected",
                            message,
                            sent: false,
                        });
                    }
                    Err(e) => return Err(e.into()),
                }
                records.remove(0);
            }
            send_dead_letters(dlq, metrics, dead).await?;
            sink.write(group, &[], offsets).await?
        }
        Err(e) => return Err(e.into()),
    };
    let total = WriteOutcome {
        written: outcome.written + carried.written,
        duplicates: outcome.duplicates + carried.duplicates,
    };
    *carried = WriteOutcome::default();
    Ok(total)
}

async fn send_dead_letters(
    dlq: &DlqProducer,
    metrics: &Metrics,
    dead: &mut [DeadLetter],
) -> Result<(), crate::dlq::DlqError> {
    let unsent: Vec<usize> = (0..dead.len()).filter(|i| !dead[*i].sent).collect();
    if unsent.is_empty() {
        return Ok(());
    }
    let result = dlq.send(dead).await;
    for i in unsent {
        let letter = &dead[i];
        if letter.sent {
            metrics.dead_lettered(letter.stage.as_str());
            warn!(stage = letter.stage.as_str(), reason = %letter.message, "Event sent to DLQ: {}", letter.label());
        }
    }
    if result.is_err() {
        metrics.dlq_write_failed();
    }
    result.map(|_| ())
}

/// The sink's offsets, retried while the sink is unavailable, for a bounded time.
async fn stored_offsets<S: Sink>(
    sink: &mut S,
    group: &str,
    parts: &[TopicPartition],
) -> Result<Option<BTreeMap<TopicPartition, i64>>, SinkError> {
    let deadline = Instant::now() + STORED_OFFSETS_WAIT;
    let mut backoff = FIRST_BACKOFF;
    loop {
        match bounded(CHECK_TIMEOUT, sink.stored_offsets(group, parts)).await {
            Err(SinkError::Unavailable(e)) if Instant::now() + backoff < deadline => {
                warn!("sink unavailable while reading stored offsets: {e}; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            other => return other,
        }
    }
}

/// `fut`, or `Unavailable` when the sink does not answer within `limit` (a silently
/// dropped connection would otherwise hold the consumer thread forever).
async fn bounded<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, SinkError>>,
) -> Result<T, SinkError> {
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(SinkError::Unavailable(format!(
            "no answer within {limit:?}"
        )))
    })
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

fn list<'a>(items: impl Iterator<Item = (&'a TopicPartition, Offset)>) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in items {
        // Only fails for an invalid offset, which these never are.
        let _ = tpl.add_partition_offset(topic, *partition, offset);
    }
    tpl
}
