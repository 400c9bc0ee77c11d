//! The interface between the runtime and a consumer group's destination.
//!
//! A sink says where its consumed offsets live ([`OffsetStore`]), takes batches
//! ([`Sink::write`]) that cover a contiguous range of each partition, may buffer them
//! and report later what is durable ([`Sink::take_durable`]), is told when partitions
//! go away ([`Sink::revoked`]), and can ask to be ticked at a deadline ([`Sink::tick`]).

use agentbus_client::{AnyEvent, Topic};
use rdkafka::consumer::ConsumerGroupMetadata;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Instant;

/// A `(topic, partition)` pair.
pub type TopicPartition = (String, i32);

/// A decoded, valid event and where it came from.
#[derive(Debug, Clone)]
pub struct Record {
    /// Source topic.
    pub topic: Topic,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// The event.
    pub event: AnyEvent,
    /// The record value as received (valid JSON, UTF-8).
    pub json: String,
    /// The record key.
    pub key: Option<Vec<u8>>,
    /// The record timestamp (ms since the epoch), when it has one.
    pub timestamp: Option<i64>,
    /// What the timestamp is: `CreateTime`, `LogAppendTime` or `NoTimestamp`.
    pub timestamp_type: &'static str,
    /// The record headers.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The topic the record was read from, when it is not `topic`'s own (an internal
    /// topic that carries `topic`'s events, such as a repartition topic).
    pub source: Option<String>,
}

impl Record {
    /// The name of the topic the record was read from.
    pub fn log(&self) -> &str {
        self.source.as_deref().unwrap_or(self.topic.name())
    }
}

/// Where a sink's consumed offsets live: the runtime's one question about a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetStore {
    /// In the sink, written atomically with the data (PostgreSQL, Redis, the archive's
    /// object names). The runtime starts every assigned partition at the sink's offset
    /// and never at Kafka's committed one; it commits to Kafka afterwards only so that
    /// lag tools see the group's progress.
    Sink,
    /// In Kafka: the runtime commits a partition's offset once the sink reports the
    /// records before it durable (webhooks).
    Kafka,
    /// In the sink's own Kafka transaction (`send_offsets_to_transaction` with the
    /// consumer's group metadata): the runtime never commits, and the sink produces the
    /// batch's dead letters in the same transaction (so a crash never doubles one).
    KafkaTransaction,
}

/// An offset a sink holds for a partition, and the log it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOffset {
    /// The next offset to read.
    pub next: i64,
    /// The topic id (Kafka's base64 form) the offset was stored under, when known.
    pub topic_id: Option<String>,
}

/// The part of one partition a batch covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// The offset the sink must hold for this partition before the batch (`None`: it
    /// holds nothing yet). A sink applies the batch's records of this partition only
    /// when its stored offset equals `from`, and then stores `next`: offsets move only
    /// from one batch's end to the next one's, never by a jump.
    pub from: Option<i64>,
    /// The next offset after the batch.
    pub next: i64,
    /// The topic's id (Kafka's base64 form), to keep beside the offset.
    pub topic_id: Option<String>,
}

/// One batch handed to a sink.
pub struct Batch<'a> {
    /// The consumer group.
    pub group: &'a str,
    /// The valid records, in partition order.
    pub records: &'a [Record],
    /// The records that failed to decode or validate, on their way to the DLQ (an
    /// archive keeps them too).
    pub dead: &'a [crate::dlq::DeadLetter],
    /// Every partition the batch moves (dead letters included), with its range.
    pub ranges: &'a BTreeMap<TopicPartition, Range>,
    /// The consumer's group metadata, for `send_offsets_to_transaction` (KIP-447).
    pub group_metadata: Option<&'a ConsumerGroupMetadata>,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("group", &self.group)
            .field("records", &self.records.len())
            .field("dead", &self.dead.len())
            .field("ranges", &self.ranges)
            .field("group_metadata", &self.group_metadata.is_some())
            .finish()
    }
}

/// What a write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Events stored by this write.
    pub written: u64,
    /// Events the sink already had (a batch whose commit acknowledgement was lost).
    pub duplicates: u64,
    /// Partitions whose stored offset was not the batch's `from`, with what the sink
    /// holds: nothing of theirs was applied, and the runtime reads them again from the
    /// stored offset. Every other partition of the batch was applied.
    pub mismatched: BTreeMap<TopicPartition, Option<i64>>,
}

/// Why a sink could not write.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The destination is down or unreachable: the runtime pauses consumption and
    /// retries, and never sends the batch to the DLQ for it.
    #[error("sink unavailable: {0}")]
    Unavailable(String),
    /// The destination refused the data itself (a value it cannot store). The runtime
    /// writes the batch one event at a time and sends the refused events to the DLQ.
    #[error("sink rejected the data: {0}")]
    Rejected(String),
    /// Retrying cannot help (wrong credentials, a missing table, no privilege): the
    /// process stops with an error so that a supervisor or a person sees it.
    #[error("sink failed: {0}")]
    Fatal(String),
}

/// How partitions left this member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// Handed over in a rebalance: the runtime has flushed what it held for them.
    Revoked,
    /// Lost (the session expired, or the member was fenced): another member may own
    /// them already, so partial work must be discarded, not flushed.
    Lost,
}

/// A consumer group's destination.
///
/// The runtime calls these from its consumer thread, one at a time.
pub trait Sink: Send + 'static {
    /// Where this sink's offsets live.
    fn offset_store(&self) -> OffsetStore {
        OffsetStore::Sink
    }

    /// The offsets this sink stored with its data, for the partitions just assigned
    /// (only asked when [`Sink::offset_store`] is [`OffsetStore::Sink`]; a sink whose
    /// offsets live in Kafka keeps this default). A partition missing from the answer
    /// holds nothing yet and starts at the group's start position.
    fn stored_offsets(
        &mut self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> impl Future<Output = Result<BTreeMap<TopicPartition, StoredOffset>, SinkError>> + Send
    {
        let _ = (group, partitions);
        async { Ok(BTreeMap::new()) }
    }

    /// Partitions were just assigned and Kafka's committed offsets for them are stable:
    /// the sink restores what it keeps for them (state from a changelog). They stay
    /// paused until this succeeds.
    fn assigned(
        &mut self,
        partitions: &[TopicPartition],
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        let _ = partitions;
        async { Ok(()) }
    }

    /// Applies `batch`: for every partition whose stored offset is its range's `from`,
    /// stores its records and, atomically with them, its `next` offset. Must be
    /// idempotent: a partition already at `next` is a duplicate, not an error.
    fn write(
        &mut self,
        batch: &Batch<'_>,
    ) -> impl Future<Output = Result<WriteOutcome, SinkError>> + Send;

    /// Whether the sink keeps written records in a buffer that is not durable yet
    /// (files before their upload). The runtime then asks [`Sink::take_durable`] what
    /// to commit, instead of taking every write as durable.
    fn buffers(&self) -> bool {
        false
    }

    /// The next offsets that became durable since the last call (buffering sinks).
    fn take_durable(&mut self) -> BTreeMap<TopicPartition, i64> {
        BTreeMap::new()
    }

    /// Partitions left this member: flush (the runtime flushed its own batch), discard
    /// partial work, or abort an open transaction.
    fn revoked(
        &mut self,
        partitions: &[TopicPartition],
        how: Revocation,
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        let _ = (partitions, how);
        async { Ok(()) }
    }

    /// When the sink wants [`Sink::tick`] next (a window closes, a file rotates).
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// Called once [`Sink::deadline`] has passed.
    fn tick(&mut self) -> impl Future<Output = Result<(), SinkError>> + Send {
        async { Ok(()) }
    }

    /// Shutdown: persist what can be persisted (upload open files) before the final
    /// commit; then [`Sink::take_durable`] is asked once more.
    fn close(&mut self) -> impl Future<Output = Result<(), SinkError>> + Send {
        async { Ok(()) }
    }

    /// Forgets the offsets stored for `topics` (the way on after a topic was
    /// recreated); returns how many partitions' offsets were removed.
    fn reset_offsets(
        &mut self,
        group: &str,
        topics: &[String],
    ) -> impl Future<Output = Result<u64, SinkError>> + Send {
        let _ = (group, topics);
        async { Ok(0) }
    }

    /// Whether the destination is reachable (for `/ready` while no batch flows).
    fn check(&mut self) -> impl Future<Output = Result<(), SinkError>> + Send;
}
