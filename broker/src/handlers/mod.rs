//! One module per API family. Each turns a decoded request into a response body.

mod admin;
mod cluster;
mod configs;
mod consumer_group;
mod fetch;
mod groups;
mod init_producer_id;
mod leader_epoch;
mod list_offsets;
mod metadata;
mod offsets;
mod produce;
mod routing;

pub(crate) use routing::error_response;
mod txn;

use crate::protocol::{api_versions_response, Request};
use crate::state::State;
use kafka_protocol::messages::{RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;

/// Handles one request; `None` means the request gets no response (Produce acks=0).
pub(crate) async fn handle(state: &Arc<State>, mut request: Request) -> Option<ResponseKind> {
    let version = request.version;
    if let Some(key) = routing::coordinator_key(&request.body, version) {
        if state.cluster.coordinator(&key) != request.node_id {
            if let Some(resp) = routing::not_coordinator(&request.body, version) {
                return Some(resp);
            }
        }
    }
    let body = std::mem::replace(
        &mut request.body,
        RequestKind::ApiVersions(Default::default()),
    );
    Some(match body {
        RequestKind::ConsumerGroupHeartbeat(r) => {
            consumer_group::heartbeat(state, &request, r).into()
        }
        RequestKind::ConsumerGroupDescribe(r) => consumer_group::describe(state, r).into(),
        RequestKind::AddPartitionsToTxn(r) => txn::add_partitions(state, version, r).into(),
        RequestKind::AddOffsetsToTxn(r) => txn::add_offsets(state, r).into(),
        RequestKind::EndTxn(r) => txn::end_txn(state, r).into(),
        RequestKind::TxnOffsetCommit(r) => txn::txn_offset_commit(state, version, r).into(),
        RequestKind::DescribeProducers(r) => txn::describe_producers(state, r).into(),
        RequestKind::DescribeTransactions(r) => txn::describe_transactions(state, r).into(),
        RequestKind::ListTransactions(r) => txn::list_transactions(state, r).into(),
        RequestKind::DescribeConfigs(r) => configs::describe(state, version, r).into(),
        RequestKind::AlterConfigs(r) => configs::alter(state, r).into(),
        RequestKind::IncrementalAlterConfigs(r) => configs::incremental_alter(state, r).into(),
        RequestKind::DescribeCluster(_) => cluster::describe_cluster(state).into(),
        RequestKind::DescribeLogDirs(r) => cluster::describe_log_dirs(state, r).into(),
        RequestKind::DeleteRecords(r) => cluster::delete_records(state, request.node_id, r).into(),
        RequestKind::FindCoordinator(r) => groups::find_coordinator(state, version, r).into(),
        RequestKind::JoinGroup(r) => groups::join_group(state, &request, r).await.into(),
        RequestKind::SyncGroup(r) => groups::sync_group(state, version, r).await.into(),
        RequestKind::Heartbeat(r) => groups::heartbeat(state, r).into(),
        RequestKind::LeaveGroup(r) => groups::leave_group(state, version, r).into(),
        RequestKind::DescribeGroups(r) => groups::describe_groups(state, version, r).into(),
        RequestKind::ListGroups(r) => groups::list_groups(state, version, r).into(),
        RequestKind::DeleteGroups(r) => groups::delete_groups(state, r).into(),
        RequestKind::OffsetCommit(r) => offsets::offset_commit(state, version, r).into(),
        RequestKind::OffsetFetch(r) => offsets::offset_fetch(state, version, r).into(),
        RequestKind::OffsetDelete(r) => offsets::offset_delete(state, r).into(),
        RequestKind::ApiVersions(_) => api_versions_response(0).into(),
        RequestKind::Metadata(r) => metadata::handle(state, version, r).into(),
        RequestKind::Produce(r) => {
            return produce::handle(state, version, request.node_id, r).map(Into::into)
        }
        RequestKind::Fetch(r) => fetch::handle(state, version, request.node_id, r)
            .await
            .into(),
        RequestKind::ListOffsets(r) => {
            list_offsets::handle(state, version, request.node_id, r).into()
        }
        RequestKind::CreateTopics(r) => admin::create_topics(state, version, r).into(),
        RequestKind::DeleteTopics(r) => admin::delete_topics(state, version, r).into(),
        RequestKind::CreatePartitions(r) => admin::create_partitions(state, r).into(),
        RequestKind::OffsetForLeaderEpoch(r) => {
            leader_epoch::handle(state, request.node_id, r).into()
        }
        RequestKind::InitProducerId(r) => init_producer_id::handle(state, version, r).into(),
        other => {
            // Dispatch only lets through what `SUPPORTED` lists, so this is a bug in that list.
            tracing::error!(api = ?request.api, "request passed version checks but has no handler: {other:?}");
            return None;
        }
    })
}

pub(crate) fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// NOT_LEADER_OR_FOLLOWER unless the request reached the partition's leader.
pub(crate) fn check_leader(
    state: &State,
    node: i32,
    topic: &str,
    partition: i32,
) -> Result<(), kafka_protocol::error::ResponseError> {
    if state.cluster.leader(topic, partition) == node {
        Ok(())
    } else {
        Err(kafka_protocol::error::ResponseError::NotLeaderOrFollower)
    }
}

/// Leader-epoch fencing as Kafka does it: -1 skips the check.
pub(crate) fn check_leader_epoch(
    requested: i32,
    current: i32,
) -> Result<(), kafka_protocol::error::ResponseError> {
    use kafka_protocol::error::ResponseError;
    if requested == -1 || requested == current {
        Ok(())
    } else if requested > current {
        Err(ResponseError::UnknownLeaderEpoch)
    } else {
        Err(ResponseError::FencedLeaderEpoch)
    }
}
