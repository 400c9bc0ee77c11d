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
    let code = ResponseError::NotCoordinator.code();
    Some(match body {
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
        RequestKind::TxnOffsetCommit(r) => {
            let mut resp = TxnOffsetCommitResponse::default();
            resp.topics = r
                .topics
                .iter()
                .map(|t| {
                    let mut out = txn_offset_commit_response::TxnOffsetCommitResponseTopic::default();
                    out.name = t.name.clone();
                    out.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut pr = txn_offset_commit_response::TxnOffsetCommitResponsePartition::default();
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
        RequestKind::InitProducerId(_) => {
            let mut resp = InitProducerIdResponse::default();
            resp.error_code = code;
            resp.producer_id = ProducerId(-1);
            resp.producer_epoch = -1;
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
