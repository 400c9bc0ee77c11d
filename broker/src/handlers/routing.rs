//! Requests that must reach their group's or transaction's coordinator: the key each one
//! is coordinated by, and the NOT_COORDINATOR answer for one that reached another node.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// The group id or transactional id that decides which node must serve `body`.
pub(crate) fn coordinator_key(body: &RequestKind, version: i16) -> Option<String> {
    Some(match body {
        RequestKind::JoinGroup(r) => r.group_id.0.to_string(),
        RequestKind::SyncGroup(r) => r.group_id.0.to_string(),
        RequestKind::Heartbeat(r) => r.group_id.0.to_string(),
        RequestKind::LeaveGroup(r) => r.group_id.0.to_string(),
        RequestKind::OffsetCommit(r) => r.group_id.0.to_string(),
        RequestKind::OffsetFetch(r) if version < 8 => r.group_id.0.to_string(),
        RequestKind::OffsetDelete(r) => r.group_id.0.to_string(),
        RequestKind::ConsumerGroupHeartbeat(r) => r.group_id.0.to_string(),
        RequestKind::TxnOffsetCommit(r) => r.group_id.0.to_string(),
        RequestKind::InitProducerId(r) => r.transactional_id.as_ref()?.0.to_string(),
        RequestKind::AddPartitionsToTxn(r) if version <= 3 => {
            r.v3_and_below_transactional_id.0.to_string()
        }
        RequestKind::AddOffsetsToTxn(r) => r.transactional_id.0.to_string(),
        RequestKind::EndTxn(r) => r.transactional_id.0.to_string(),
        _ => return None,
    })
}

/// The request's response with every error field set to NOT_COORDINATOR.
pub(crate) fn not_coordinator(body: &RequestKind, version: i16) -> Option<ResponseKind> {
    error_response(body, version, ResponseError::NotCoordinator.code())
}

/// The request's response with every error field set to `code` (coordinator, partition and
/// client-facing APIs; `None` for others).
pub(crate) fn error_response(body: &RequestKind, version: i16, code: i16) -> Option<ResponseKind> {
    Some(match body {
        RequestKind::Produce(r) => {
            let mut resp = ProduceResponse::default();
            resp.responses = r
                .topic_data
                .iter()
                .map(|t| {
                    let mut out = produce_response::TopicProduceResponse::default();
                    out.name = t.name.clone();
                    out.partition_responses = t
                        .partition_data
                        .iter()
                        .map(|p| {
                            let mut pr = produce_response::PartitionProduceResponse::default();
                            pr.index = p.index;
                            pr.error_code = code;
                            pr.base_offset = -1;
                            pr.log_append_time_ms = -1;
                            pr
                        })
                        .collect();
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::Fetch(r) => {
            let mut resp = FetchResponse::default();
            resp.responses = r
                .topics
                .iter()
                .map(|t| {
                    let mut out = fetch_response::FetchableTopicResponse::default();
                    out.topic = t.topic.clone();
                    out.topic_id = t.topic_id;
                    out.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut pd = fetch_response::PartitionData::default();
                            pd.partition_index = p.partition;
                            pd.error_code = code;
                            pd.high_watermark = -1;
                            pd
                        })
                        .collect();
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::ListOffsets(r) => {
            let mut resp = ListOffsetsResponse::default();
            resp.topics = r
                .topics
                .iter()
                .map(|t| {
                    let mut out = list_offsets_response::ListOffsetsTopicResponse::default();
                    out.name = t.name.clone();
                    out.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut pr =
                                list_offsets_response::ListOffsetsPartitionResponse::default();
                            pr.partition_index = p.partition_index;
                            pr.error_code = code;
                            pr.timestamp = -1;
                            pr.offset = -1;
                            pr
                        })
                        .collect();
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::FindCoordinator(r) => {
            let mut resp = FindCoordinatorResponse::default();
            resp.node_id = BrokerId(-1);
            resp.port = -1;
            if version >= 4 {
                resp.coordinators = r
                    .coordinator_keys
                    .iter()
                    .map(|k| {
                        let mut c = find_coordinator_response::Coordinator::default();
                        c.key = k.clone();
                        c.node_id = BrokerId(-1);
                        c.port = -1;
                        c.error_code = code;
                        c
                    })
                    .collect();
            } else {
                resp.error_code = code;
            }
            resp.into()
        }
        RequestKind::JoinGroup(r) => {
            let mut resp = JoinGroupResponse::default();
            resp.error_code = code;
            resp.generation_id = -1;
            resp.member_id = r.member_id.clone();
            if version < 7 {
                resp.protocol_name = Some(StrBytes::new());
            }
            resp.into()
        }
        RequestKind::SyncGroup(_) => {
            let mut resp = SyncGroupResponse::default();
            resp.error_code = code;
            resp.into()
        }
        RequestKind::Heartbeat(_) => {
            let mut resp = HeartbeatResponse::default();
            resp.error_code = code;
            resp.into()
        }
        RequestKind::LeaveGroup(_) => {
            let mut resp = LeaveGroupResponse::default();
            resp.error_code = code;
            resp.into()
        }
        RequestKind::OffsetCommit(r) => {
            let mut resp = OffsetCommitResponse::default();
            resp.topics = r
                .topics
                .iter()
                .map(|t| {
                    let mut out = offset_commit_response::OffsetCommitResponseTopic::default();
                    out.name = t.name.clone();
                    out.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut pr =
                                offset_commit_response::OffsetCommitResponsePartition::default();
                            pr.partition_index = p.partition_index;
                            pr.error_code = code;
                            pr
                        })
                        .collect();
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::OffsetFetch(r) => {
            let mut resp = OffsetFetchResponse::default();
            if version >= 2 {
                resp.error_code = code;
            } else {
                resp.topics = r
                    .topics
                    .iter()
                    .flatten()
                    .map(|t| {
                        let mut out = offset_fetch_response::OffsetFetchResponseTopic::default();
                        out.name = t.name.clone();
                        out.partitions = t
                            .partition_indexes
                            .iter()
                            .map(|p| {
                                let mut pr =
                                    offset_fetch_response::OffsetFetchResponsePartition::default();
                                pr.partition_index = *p;
                                pr.committed_offset = -1;
                                pr.metadata = Some(StrBytes::new());
                                pr.error_code = code;
                                pr
                            })
                            .collect();
                        out
                    })
                    .collect();
            }
            resp.into()
        }
        RequestKind::OffsetDelete(_) => {
            let mut resp = OffsetDeleteResponse::default();
            resp.error_code = code;
            resp.into()
        }
        RequestKind::ConsumerGroupHeartbeat(r) => {
            let mut resp = ConsumerGroupHeartbeatResponse::default();
            resp.error_code = code;
            resp.member_id = Some(r.member_id.clone());
            resp.member_epoch = r.member_epoch;
            resp.into()
        }
        RequestKind::TxnOffsetCommit(r) => super::txn::txn_offset_commit_response(r, code).into(),
        RequestKind::InitProducerId(_) => {
            let mut resp = InitProducerIdResponse::default();
            resp.error_code = code;
            resp.producer_id = ProducerId(-1);
            resp.producer_epoch = -1;
            resp.into()
        }
        RequestKind::AddPartitionsToTxn(_) if version >= 4 => {
            // The batched form carries a request-wide error code.
            let mut resp = AddPartitionsToTxnResponse::default();
            resp.error_code = code;
            resp.into()
        }
        RequestKind::AddPartitionsToTxn(r) => {
            let mut resp = AddPartitionsToTxnResponse::default();
            resp.results_by_topic_v3_and_below = r
                .v3_and_below_topics
                .iter()
                .map(|t| {
                    let mut out = add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default();
                    out.name = t.name.clone();
                    out.results_by_partition = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut pr = add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default();
                            pr.partition_index = *p;
                            pr.partition_error_code = code;
                            pr
                        })
                        .collect();
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::AddOffsetsToTxn(_) => {
            let mut resp = AddOffsetsToTxnResponse::default();
            resp.error_code = code;
            resp.into()
        }
        RequestKind::EndTxn(_) => {
            let mut resp = EndTxnResponse::default();
            resp.error_code = code;
            resp.into()
        }
        _ => return None,
    })
}
