//! The interface between the runtime and a consumer group's destination.

use agentbus_client::{AnyEvent, Topic};
use std::collections::BTreeMap;
use std::future::Future;

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
    /// The record headers.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// What a successful write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Events stored by this write.
    pub written: u64,
    /// Events the sink already had (replays after a crash or a rebalance).
    pub duplicates: u64,
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

impl SinkError {
    /// The variant's name, for `__connect.errors.exception.class.name` and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "SinkError::Unavailable",
            Self::Rejected(_) => "SinkError::Rejected",
            Self::Fatal(_) => "SinkError::Fatal",
        }
    }
}

/// A consumer group's destination.
///
/// The runtime calls these from its consumer thread, one at a time.
pub trait Sink: Send + 'static {
    /// The offsets this sink stored with its data (next offset to read), for the
    /// partitions just assigned. `Ok(None)`: the sink keeps no offsets, use Kafka's.
    fn stored_offsets(
        &mut self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> impl Future<Output = Result<Option<BTreeMap<TopicPartition, i64>>, SinkError>> + Send;

    /// Stores `records` and, atomically with them when the sink keeps offsets, the
    /// next offsets `offsets` of `group`. Must be idempotent: a replayed record is a
    /// duplicate, not an error.
    fn write(
        &mut self,
        group: &str,
        records: &[Record],
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> impl Future<Output = Result<WriteOutcome, SinkError>> + Send;

    /// Whether the destination is reachable (for `/ready` while no batch flows).
    fn check(&mut self) -> impl Future<Output = Result<(), SinkError>> + Send;
}
