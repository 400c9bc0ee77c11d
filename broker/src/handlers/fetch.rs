//! Fetch v0–v17 (v0–v3 down-converted to message sets): whole stored batches, byte limits
//! as KIP-74 sets them, long-poll.
//!
//! Fetch sessions (KIP-227) are declined the way Kafka declines them when its session cache
//! is full: every response carries session id 0, so clients keep sending full fetch requests.
//! A request naming a session id we never gave out gets FETCH_SESSION_ID_NOT_FOUND.

use super::check_leader_epoch;
use crate::log::message_set;
use crate::log::LogError;
use crate::state::Read;
use crate::state::State;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::ProducerId;
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Longest a fetch may park, whatever the client asks.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

pub(crate) async fn handle(
    state: &Arc<State>,
    version: i16,
    node: i32,
    req: FetchRequest,
) -> FetchResponse {
    let mut resp = serve(state, version, node, req).await;
    // Fetch v0–v3 (emulated 3.x releases) read message sets: magic 0 before v2, else 1.
    if version < 4 {
        let magic = if version < 2 { 0 } else { 1 };
        let limit = state.config().max_decompressed_bytes;
        for p in resp
            .responses
            .iter_mut()
            .flat_map(|t| t.partitions.iter_mut())
        {
            if let Some(records) = p.records.take() {
                p.records = Some(message_set::down_convert(records, magic, limit));
            }
        }
    }
    resp
}

async fn serve(state: &Arc<State>, version: i16, node: i32, req: FetchRequest) -> FetchResponse {
    if req.session_id != 0 && req.session_epoch != -1 {
        let mut resp = FetchResponse::default();
        resp.error_code = ResponseError::FetchSessionIdNotFound.code();
        return resp;
    }
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let closing = state.closing.notified();
    tokio::pin!(closing);
    closing.as_mut().enable();
    // Registered with each partition read before it is read, so an append between the
    // read and the wait still wakes this fetch; appends elsewhere do not.
    let appended = Arc::new(Notify::new());
    loop {
        let (resp, bytes, errors) = build(state, version, node, &req, &appended);
        if bytes >= req.min_bytes.max(0) as usize || errors || Instant::now() >= deadline {
            return resp;
        }
        tokio::select! {
            _ = appended.notified() => {}
            _ = &mut closing => return resp,
            // Nothing was appended since `resp` was built (that would have woken us).
            _ = tokio::time::sleep_until(deadline) => return resp,
        }
    }
}

/// Builds one response; returns it with its record bytes and whether any partition erred.
/// Each partition read wakes `appended` at its next append.
fn build(
    state: &State,
    version: i16,
    node: i32,
    req: &FetchRequest,
    appended: &Arc<Notify>,
) -> (FetchResponse, usize, bool) {
    let read_committed = req.isolation_level == 1;
    let mut resp = FetchResponse::default();
    // Kafka clamps what the client asks to the broker's fetch.max.bytes.
    let mut remaining = if req.max_bytes <= 0 {
        state.config().fetch_max_bytes
    } else {
        (req.max_bytes as usize).min(state.config().fetch_max_bytes)
    };
    let mut total = 0usize;
    let mut errors = false;
    let mut first_data = true;
    for ft in &req.topics {
        let topic = if version >= 13 {
            state.topic_by_id(ft.topic_id)
        } else {
            state.topic(ft.topic.0.as_str())
        };
        let mut out = FetchableTopicResponse::default();
        out.topic = ft.topic.clone();
        out.topic_id = ft.topic_id;
        for fp in &ft.partitions {
            let mut pd = PartitionData::default();
            pd.partition_index = fp.partition;
            let Some(topic) = &topic else {
                pd.error_code = if version >= 13 {
                    ResponseError::UnknownTopicId.code()
                } else {
                    ResponseError::UnknownTopicOrPartition.code()
                };
                errors = true;
                out.partitions.push(pd);
                continue;
            };
            let Some(partition) = topic.partition(fp.partition) else {
                pd.error_code = ResponseError::UnknownTopicOrPartition.code();
                errors = true;
                out.partitions.push(pd);
                continue;
            };
            if version >= 12 {
                pd.current_leader.leader_id =
                    kafka_protocol::messages::BrokerId(state.config().node_id);
                pd.current_leader.leader_epoch = partition.leader_epoch();
            }
            let leader = super::check_leader(state, node, &topic.name, fp.partition);
            if let Err(code) = leader.and_then(|()| {
                check_leader_epoch(fp.current_leader_epoch, partition.leader_epoch())
            }) {
                pd.error_code = code.code();
                errors = true;
                out.partitions.push(pd);
                continue;
            }
            let partition_max = if fp.partition_max_bytes <= 0 {
                0
            } else {
                fp.partition_max_bytes as usize
            };
            let limit = partition_max.min(remaining);
            partition.wake_on_append(appended);
            match partition.read(fp.fetch_offset, limit, read_committed) {
                Ok(Read {
                    bytes: data,
                    offsets,
                    aborted,
                }) => {
                    if read_committed {
                        pd.aborted_transactions = Some(
                            aborted
                                .iter()
                                .map(|a| {
                                    let mut t = AbortedTransaction::default();
                                    t.producer_id = ProducerId(a.producer_id);
                                    t.first_offset = a.first_offset;
                                    t
                                })
                                .collect(),
                        );
                    }
                    pd.high_watermark = offsets.high_watermark;
                    pd.last_stable_offset = offsets.last_stable;
                    if version >= 5 {
                        pd.log_start_offset = offsets.log_start;
                    }
                    // KIP-74: only the first non-empty partition may exceed the limits, so that
                    // a batch larger than them still makes progress.
                    let data = if !data.is_empty() && data.len() > limit && !first_data {
                        Bytes::new()
                    } else {
                        data
                    };
                    if !data.is_empty() {
                        first_data = false;
                        remaining = remaining.saturating_sub(data.len());
                        total += data.len();
                    }
                    pd.records = Some(data);
                }
                Err(LogError::OutOfRange { start, end, .. }) => {
                    pd.error_code = ResponseError::OffsetOutOfRange.code();
                    pd.high_watermark = end;
                    pd.last_stable_offset = end;
                    if version >= 5 {
                        pd.log_start_offset = start;
                    }
                    errors = true;
                }
                Err(e) => {
                    tracing::error!(topic = %topic.name, partition = fp.partition, error = %e, "fetch read failed");
                    pd.error_code = ResponseError::KafkaStorageError.code();
                    errors = true;
                }
            }
            out.partitions.push(pd);
        }
        resp.responses.push(out);
    }
    (resp, total, errors)
}
