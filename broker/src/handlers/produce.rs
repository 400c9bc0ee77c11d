//! Produce v3–v11: validate each batch's header, assign offsets, append.

use super::str_bytes;
use crate::log::batch::{split_batches, BatchError, BatchHeader};
use crate::state::{AppendError, State, Topic};
use crate::txn::producer_state::SequenceError;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
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
                Err((ResponseError::InvalidRequiredAcks, None))
            } else {
                match &topic {
                    None => Err((ResponseError::UnknownTopicOrPartition, None)),
                    Some(t) => append(state, node, t, pd.index, pd.records),
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
                Err((code, message)) => {
                    tracing::debug!(
                        topic = name,
                        partition = pd.index,
                        ?code,
                        ?message,
                        "produce rejected"
                    );
                    pr.error_code = code.code();
                    if version >= 8 {
                        pr.error_message = message.map(str_bytes);
                    }
                }
            }
            out.partition_responses.push(pr);
        }
        resp.responses.push(out);
    }
    (acks != 0).then_some(resp)
}

type Rejection = (ResponseError, Option<String>);

fn append(
    state: &State,
    node: i32,
    topic: &Topic,
    index: i32,
    records: Option<Bytes>,
) -> Result<crate::state::Appended, Rejection> {
    let partition = topic
        .partition(index)
        .ok_or((ResponseError::UnknownTopicOrPartition, None))?;
    super::check_leader(state, node, &topic.name, index).map_err(|e| (e, None))?;
    let records = records.ok_or((
        ResponseError::InvalidRecord,
        Some("produce request has no records".into()),
    ))?;
    let batches =
        split_batches(records).map_err(|e| (batch_error_code(&e), Some(e.to_string())))?;
    if batches.is_empty() {
        return Err((
            ResponseError::InvalidRecord,
            Some("produce request has no record batches".into()),
        ));
    }
    let configs = topic.configs();
    let max = configs.max_message_bytes(&state.config);
    for (h, bytes) in &batches {
        if h.size > max {
            let e = BatchError::TooLarge { size: h.size, max };
            return Err((ResponseError::MessageTooLarge, Some(e.to_string())));
        }
        if h.record_count == 0 {
            return Err((
                ResponseError::InvalidRecord,
                Some("record batch has no records".into()),
            ));
        }
        if h.is_control() {
            return Err((
                ResponseError::InvalidRecord,
                Some("clients may not write control batches".into()),
            ));
        }
        if configs.compacted() {
            check_keys(h, bytes, state.config.max_decompressed_bytes)?;
        }
        if h.is_transactional() {
            // The partition must have been added to the producer's open transaction.
            state
                .txns
                .verify_produce(h.producer_id, h.producer_epoch, &topic.name, index)
                .map_err(|e| (e, Some(format!("transactional batch rejected: {e}"))))?;
        }
    }
    partition
        .append(&batches, configs.log_append_time().then(|| state.clock.now_ms()))
        .map_err(|e| match e {
            AppendError::Sequence(s) => {
                let code = match s {
                    SequenceError::StaleEpoch { .. } => ResponseError::InvalidProducerEpoch,
                    SequenceError::OutOfOrder { .. } => ResponseError::OutOfOrderSequenceNumber,
                };
                (code, Some(s.to_string()))
            }
            AppendError::Log(e) => {
                tracing::error!(topic = %topic.name, partition = index, error = %e, "append failed");
                (ResponseError::KafkaStorageError, Some(e.to_string()))
            }
        })
}

/// A compacted topic keeps the latest record per key, so every record needs one.
fn check_keys(header: &BatchHeader, bytes: &Bytes, limit: usize) -> Result<(), Rejection> {
    let set = crate::log::records::decode(bytes, limit).map_err(|e| {
        (
            ResponseError::CorruptMessage,
            Some(format!(
                "cannot decode batch at base sequence {}: {e:#}",
                header.base_sequence
            )),
        )
    })?;
    if set.records.iter().any(|r| r.key.is_none()) {
        return Err((
            ResponseError::InvalidRecord,
            Some("Compacted topic cannot accept message without key".into()),
        ));
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
