//! Produce v0–v11 (v0–v2 as message sets): validate each batch's header and records, assign offsets, append.

use super::record_checks::{RecordRules, Refused};
use super::str_bytes;
use crate::log::batch::{split_batches, BatchError, BatchHeader};
use crate::log::{message_set, recompress};
use crate::state::{AppendError, State, Topic};
use crate::txn::producer_state::SequenceError;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::records::Compression;
use std::sync::Arc;

pub(crate) fn handle(
    state: &Arc<State>,
    version: i16,
    node: i32,
    req: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks = req.acks;
    let mut resp = ProduceResponse::default();
    for topic_data in req.topic_data {
        let name = topic_data.name.0.as_str();
        let topic = state.topic(name);
        let mut out = TopicProduceResponse::default();
        out.name = topic_data.name.clone();
        for pd in topic_data.partition_data {
            let mut pr = PartitionProduceResponse::default();
            pr.index = pd.index;
            pr.base_offset = -1;
            pr.log_append_time_ms = -1;
            pr.log_start_offset = -1;
            let result = if !matches!(acks, -1..=1) {
                Err(Rejection::new(ResponseError::InvalidRequiredAcks, None))
            } else {
                match &topic {
                    None => Err(Rejection::new(ResponseError::UnknownTopicOrPartition, None)),
                    Some(t) => append(state, version, node, t, pd.index, pd.records),
                }
            };
            match result {
                Ok(a) => {
                    pr.base_offset = a.base_offset;
                    pr.log_append_time_ms = a.log_append_time;
                    if version >= 5 {
                        pr.log_start_offset = a.log_start_offset;
                    }
                }
                Err(r) => {
                    tracing::debug!(
                        topic = name,
                        partition = pd.index,
                        code = ?r.code,
                        message = ?r.message,
                        "produce rejected"
                    );
                    pr.error_code = r.code.code();
                    if version >= 8 {
                        pr.error_message = r.message.map(str_bytes);
                        pr.record_errors = r
                            .records
                            .into_iter()
                            .map(|(index, message)| {
                                let mut e = BatchIndexAndErrorMessage::default();
                                e.batch_index = index;
                                e.batch_index_error_message = Some(str_bytes(message));
                                e
                            })
                            .collect();
                    }
                }
            }
            out.partition_responses.push(pr);
        }
        resp.responses.push(out);
    }
    (acks != 0).then_some(resp)
}

/// Why a partition's records were not appended: the error, its message, and for a batch
/// refused for some of its records (KIP-467) each one's index in the batch and reason.
#[derive(Debug)]
struct Rejection {
    code: ResponseError,
    message: Option<String>,
    records: Vec<(i32, String)>,
}

impl Rejection {
    fn new(code: ResponseError, message: Option<String>) -> Self {
        Self {
            code,
            message,
            records: Vec::new(),
        }
    }
}

impl From<ResponseError> for Rejection {
    fn from(code: ResponseError) -> Self {
        Self::new(code, None)
    }
}

fn append(
    state: &State,
    version: i16,
    node: i32,
    topic: &Topic,
    index: i32,
    records: Option<Bytes>,
) -> Result<crate::state::Appended, Rejection> {
    let partition = topic
        .partition(index)
        .ok_or(ResponseError::UnknownTopicOrPartition)?;
    super::check_leader(state, node, &topic.name, index)?;
    let records = records.ok_or_else(|| {
        Rejection::new(
            ResponseError::InvalidRecord,
            Some("produce request has no records".into()),
        )
    })?;
    // Produce v0–v2 (emulated 3.x releases) carry message sets, stored as one v2 batch.
    let records = if version < 3 {
        message_set::up_convert(records, state.config().max_decompressed_bytes)
            .map_err(|e| Rejection::new(ResponseError::CorruptMessage, Some(e.to_string())))?
    } else {
        records
    };
    let batches = split_batches(records)
        .map_err(|e| Rejection::new(batch_error_code(&e), Some(e.to_string())))?;
    if batches.is_empty() {
        return Err(Rejection::new(
            ResponseError::InvalidRecord,
            Some("produce request has no record batches".into()),
        ));
    }
    let configs = topic.configs();
    let broker = state.config();
    let max = configs.max_message_bytes(&broker);
    let log_append_time = configs.log_append_time(&broker);
    let rules = RecordRules {
        compacted: configs.compacted(&broker),
        timestamps: (!log_append_time).then(|| {
            let (before, after) = configs.timestamp_bounds(&broker);
            (state.clock.now_ms(), before, after)
        }),
        limit: broker.max_decompressed_bytes,
    };
    let (codec, levels) = configs.compression(&broker);
    let target = recompress::codec(&codec);
    let mut stored = Vec::with_capacity(batches.len());
    for (h, bytes) in batches {
        check_batch(state, topic, index, &rules, max, &h, &bytes)?;
        let Some(to) = target else {
            stored.push((h, bytes));
            continue;
        };
        let level = match to {
            Compression::Gzip => levels.gzip,
            Compression::Lz4 => levels.lz4,
            _ => levels.zstd,
        };
        match recompress::recompress(&h, &bytes, to, level, broker.max_decompressed_bytes) {
            Ok(None) => stored.push((h, bytes)),
            // As Kafka, the batch as stored must fit `max.message.bytes` too.
            Ok(Some((nh, _))) if nh.size > max => {
                let e = BatchError::TooLarge { size: nh.size, max };
                return Err(Rejection::new(
                    ResponseError::MessageTooLarge,
                    Some(e.to_string()),
                ));
            }
            Ok(Some(new)) => stored.push(new),
            Err(e) => {
                return Err(Rejection::new(
                    ResponseError::CorruptMessage,
                    Some(format!("cannot store the batch as {codec}: {e:#}")),
                ))
            }
        }
    }
    partition
        .append(&stored, log_append_time.then(|| state.clock.now_ms()))
        .map_err(|e| match e {
            AppendError::Sequence(s) => {
                let code = match s {
                    SequenceError::StaleEpoch { .. } => ResponseError::InvalidProducerEpoch,
                    SequenceError::OutOfOrder { .. } => ResponseError::OutOfOrderSequenceNumber,
                };
                Rejection::new(code, Some(s.to_string()))
            }
            AppendError::Log(e) => {
                tracing::error!(topic = %topic.name, partition = index, error = %e, "append failed");
                Rejection::new(ResponseError::KafkaStorageError, Some(e.to_string()))
            }
        })
}

/// The checks of one batch before anything of the request is stored.
fn check_batch(
    state: &State,
    topic: &Topic,
    index: i32,
    rules: &RecordRules,
    max: usize,
    h: &BatchHeader,
    bytes: &Bytes,
) -> Result<(), Rejection> {
    if h.size > max {
        let e = BatchError::TooLarge { size: h.size, max };
        return Err(Rejection::new(
            ResponseError::MessageTooLarge,
            Some(e.to_string()),
        ));
    }
    if h.record_count == 0 {
        return Err(Rejection::new(
            ResponseError::InvalidRecord,
            Some("record batch has no records".into()),
        ));
    }
    if h.is_control() {
        return Err(Rejection::new(
            ResponseError::InvalidRecord,
            Some("clients may not write control batches".into()),
        ));
    }
    rules
        .check(h, bytes, &topic.name, index)
        .map_err(|r| match r {
            Refused::Batch(message) => Rejection::new(ResponseError::CorruptMessage, Some(message)),
            Refused::Records(e) => Rejection {
                code: e.code,
                message: Some(e.message),
                records: e.records,
            },
        })?;
    if h.is_transactional() {
        // The partition must have been added to the producer's open transaction.
        state
            .txns
            .verify_produce(h.producer_id, h.producer_epoch, &topic.name, index)
            .map_err(|e| Rejection::new(e, Some(format!("transactional batch rejected: {e}"))))?;
    }
    Ok(())
}

fn batch_error_code(e: &BatchError) -> ResponseError {
    match e {
        BatchError::UnsupportedMagic(_) => ResponseError::UnsupportedForMessageFormat,
        BatchError::TooLarge { .. } => ResponseError::MessageTooLarge,
        BatchError::Truncated { .. }
        | BatchError::BadLength(_)
        | BatchError::CrcMismatch { .. }
        | BatchError::BadRecordCount(_)
        | BatchError::UnknownCodec(_) => ResponseError::CorruptMessage,
    }
}
