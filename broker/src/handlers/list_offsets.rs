//! ListOffsets v1–v8: earliest, latest, max timestamp, and by timestamp.

use super::check_leader_epoch;
use crate::log::batch::BatchHeader;
use crate::log::{Log, LogError};
use crate::state::State;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use std::sync::Arc;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

pub(crate) fn handle(
    state: &Arc<State>,
    version: i16,
    node: i32,
    req: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let mut resp = ListOffsetsResponse::default();
    let read_committed = req.isolation_level == 1;
    let limit = state.config().max_decompressed_bytes;
    for t in req.topics {
        let topic = state.topic(t.name.0.as_str());
        let mut out = ListOffsetsTopicResponse::default();
        out.name = t.name.clone();
        for p in t.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            pr.timestamp = -1;
            pr.offset = -1;
            let Some(partition) = topic.as_ref().and_then(|t| t.partition(p.partition_index))
            else {
                pr.error_code = ResponseError::UnknownTopicOrPartition.code();
                out.partitions.push(pr);
                continue;
            };
            let epoch = partition.leader_epoch();
            let leader = super::check_leader(state, node, t.name.0.as_str(), p.partition_index);
            if let Err(code) =
                leader.and_then(|()| check_leader_epoch(p.current_leader_epoch, epoch))
            {
                pr.error_code = code.code();
                out.partitions.push(pr);
                continue;
            }
            if version >= 4 {
                pr.leader_epoch = epoch;
            }
            let offsets = partition.offsets();
            let found = match p.timestamp {
                LATEST => Ok(Some((
                    -1,
                    if read_committed {
                        offsets.last_stable
                    } else {
                        offsets.high_watermark
                    },
                ))),
                EARLIEST | EARLIEST_LOCAL => Ok(Some((-1, offsets.log_start))),
                MAX_TIMESTAMP => partition.with_log(|l| max_timestamp(l, limit)),
                ts if ts >= 0 => partition.with_log(|l| by_timestamp(l, ts, limit)),
                _ => Ok(None),
            };
            match found {
                Ok(Some((ts, offset))) => {
                    pr.timestamp = ts;
                    pr.offset = offset;
                }
                Ok(None) => pr.leader_epoch = -1,
                Err(e) => {
                    tracing::error!(error = %e, "list offsets failed");
                    pr.error_code = ResponseError::KafkaStorageError.code();
                }
            }
            out.partitions.push(pr);
        }
        resp.topics.push(out);
    }
    resp
}

/// (timestamp, offset) of every record in a stored batch.
fn record_times(batch: &Bytes, limit: usize) -> Result<Vec<(i64, i64)>, LogError> {
    let header = BatchHeader::parse(batch).map_err(|e| corrupt(e.to_string()))?;
    if header.is_log_append_time() {
        // Every record of a log-append-time batch carries the batch's max timestamp.
        return Ok((header.base_offset..=header.last_offset())
            .map(|o| (header.max_timestamp, o))
            .collect());
    }
    let set = crate::log::records::decode(batch, limit).map_err(|e| corrupt(format!("{e:#}")))?;
    Ok(set
        .records
        .iter()
        .map(|r| (r.timestamp, r.offset))
        .collect())
}

fn corrupt(reason: String) -> LogError {
    LogError::Corrupt {
        path: "stored batch".into(),
        reason,
    }
}

fn by_timestamp(
    log: &mut dyn Log,
    target: i64,
    limit: usize,
) -> Result<Option<(i64, i64)>, LogError> {
    let Some(batch) = log.batch_by_timestamp(target)? else {
        return Ok(None);
    };
    let start = log.start_offset();
    Ok(record_times(&batch, limit)?
        .into_iter()
        .find(|(ts, offset)| *ts >= target && *offset >= start))
}

fn max_timestamp(log: &mut dyn Log, limit: usize) -> Result<Option<(i64, i64)>, LogError> {
    let Some(batch) = log.max_timestamp_batch()? else {
        return Ok(None);
    };
    let mut best: Option<(i64, i64)> = None;
    for (ts, offset) in record_times(&batch, limit)? {
        if best.is_none_or(|(b, _)| ts > b) {
            best = Some((ts, offset));
        }
    }
    Ok(best)
}
