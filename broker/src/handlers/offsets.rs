//! Committed offsets: OffsetCommit v2–v9, OffsetFetch v1–v9, OffsetDelete v0.

use super::str_bytes;
use crate::group::store::CommittedOffset;
use crate::state::State;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;

pub(crate) fn offset_commit(
    state: &Arc<State>,
    version: i16,
    req: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group_id = req.group_id.0.as_str();
    let member_check = state.groups.check_commit(
        group_id,
        req.generation_id_or_member_epoch,
        req.member_id.as_str(),
        req.group_instance_id.as_ref().map(StrBytes::as_str),
    );
    let now = state.clock.now_ms();
    let max_meta = state.groups.config().max_metadata_bytes;
    let mut accepted = Vec::new();
    let mut resp = OffsetCommitResponse::default();
    for t in &req.topics {
        let topic = state.topic(t.name.0.as_str());
        let mut out = OffsetCommitResponseTopic::default();
        out.name = t.name.clone();
        for p in &t.partitions {
            let mut r = OffsetCommitResponsePartition::default();
            r.partition_index = p.partition_index;
            let metadata = p
                .committed_metadata
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            let error = match &member_check {
                Err(e) => Some(*e),
                Ok(())
                    if topic
                        .as_ref()
                        .and_then(|t| t.partition(p.partition_index))
                        .is_none() =>
                {
                    Some(ResponseError::UnknownTopicOrPartition)
                }
                Ok(()) if metadata.len() > max_meta => Some(ResponseError::OffsetMetadataTooLarge),
                Ok(()) => {
                    accepted.push((
                        t.name.0.to_string(),
                        p.partition_index,
                        CommittedOffset {
                            offset: p.committed_offset,
                            leader_epoch: if version >= 6 {
                                p.committed_leader_epoch
                            } else {
                                -1
                            },
                            metadata,
                            commit_timestamp_ms: now,
                        },
                    ));
                    None
                }
            };
            r.error_code = error.map_or(0, |e| e.code());
            out.partitions.push(r);
        }
        resp.topics.push(out);
    }
    if !accepted.is_empty() {
        if let Err(e) = state.groups.commit(group_id, accepted) {
            tracing::error!(group = group_id, error = %e, "cannot store committed offsets");
            for t in &mut resp.topics {
                for p in &mut t.partitions {
                    if p.error_code == 0 {
                        p.error_code = ResponseError::KafkaStorageError.code();
                    }
                }
            }
        }
    }
    resp
}

type Wanted = Option<Vec<(String, Vec<i32>)>>;

pub(crate) fn offset_fetch(
    state: &Arc<State>,
    version: i16,
    req: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let mut resp = OffsetFetchResponse::default();
    if version >= 8 {
        for g in req.groups {
            let wanted: Wanted = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let mut out = OffsetFetchResponseGroup::default();
            out.topics = fetch(state, g.group_id.0.as_str(), wanted, req.require_stable)
                .into_iter()
                .map(|(name, parts)| {
                    let mut t = OffsetFetchResponseTopics::default();
                    t.name = super::topic_name(&name);
                    t.partitions = parts
                        .into_iter()
                        .map(|(p, offset, epoch, meta, error)| {
                            let mut r = OffsetFetchResponsePartitions::default();
                            r.error_code = error;
                            r.partition_index = p;
                            r.committed_offset = offset;
                            r.committed_leader_epoch = epoch;
                            r.metadata = Some(str_bytes(meta));
                            r
                        })
                        .collect();
                    t
                })
                .collect();
            out.group_id = g.group_id;
            resp.groups.push(out);
        }
        return resp;
    }
    let wanted: Wanted = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    resp.topics = fetch(
        state,
        req.group_id.0.as_str(),
        wanted,
        version >= 7 && req.require_stable,
    )
    .into_iter()
    .map(|(name, parts)| {
        let mut t = OffsetFetchResponseTopic::default();
        t.name = super::topic_name(&name);
        t.partitions = parts
            .into_iter()
            .map(|(p, offset, epoch, meta, error)| {
                let mut r = OffsetFetchResponsePartition::default();
                r.error_code = error;
                r.partition_index = p;
                r.committed_offset = offset;
                if version >= 5 {
                    r.committed_leader_epoch = epoch;
                }
                r.metadata = Some(str_bytes(meta));
                r
            })
            .collect();
        t
    })
    .collect();
    resp
}

/// Per topic: (partition, offset, leader epoch, metadata, error), with -1 and "" where
/// nothing is committed.
type Fetched = Vec<(String, Vec<(i32, i64, i32, String, i16)>)>;

/// With `require_stable`, offsets a transaction has yet to commit make the partition
/// UNSTABLE_OFFSET_COMMIT (the client retries) rather than showing the older value.
fn fetch(state: &State, group: &str, wanted: Wanted, require_stable: bool) -> Fetched {
    state
        .groups
        .fetch_offsets(group, wanted.as_deref())
        .into_iter()
        .map(|(t, parts)| {
            let parts = parts
                .into_iter()
                .map(|(p, c)| {
                    let error = if require_stable && state.txns.has_pending_offsets(group, &t, p) {
                        ResponseError::UnstableOffsetCommit.code()
                    } else {
                        0
                    };
                    match c {
                        Some(c) => (p, c.offset, c.leader_epoch, c.metadata, error),
                        None => (p, -1, -1, String::new(), error),
                    }
                })
                .collect();
            (t, parts)
        })
        .collect()
}

pub(crate) fn offset_delete(state: &Arc<State>, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let partitions: Vec<(String, i32)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index))
        })
        .collect();
    let mut resp = OffsetDeleteResponse::default();
    match state
        .groups
        .delete_offsets(req.group_id.0.as_str(), &partitions)
    {
        Err(e) => resp.error_code = e.code(),
        Ok(results) => {
            let mut results = results.into_iter();
            for t in req.topics {
                let mut out = OffsetDeleteResponseTopic::default();
                out.name = t.name;
                for p in t.partitions {
                    let mut r = OffsetDeleteResponsePartition::default();
                    r.partition_index = p.partition_index;
                    r.error_code = results.next().and_then(Result::err).map_or(0, |e| e.code());
                    out.partitions.push(r);
                }
                resp.topics.push(out);
            }
        }
    }
    resp
}
