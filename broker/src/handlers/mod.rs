//! One module per API family. Each turns a decoded request into a response body.

mod acls;
mod admin;
mod authorized;
mod authz;
mod authz_refusals;
mod broker_configs;
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
mod record_checks;
mod routing;
mod scram;

pub(crate) use routing::error_response;
#[cfg(test)]
mod tests;
mod txn;

use crate::protocol::{api_versions_response, Request};
use crate::state::State;
use kafka_protocol::messages::{RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;

/// Handles one request; `None` means the request gets no response (Produce acks=0).
/// With an authorizer, the ACLs are checked first (see `authz`).
pub(crate) async fn handle(state: &Arc<State>, mut request: Request) -> Option<ResponseKind> {
    if !state.authorizer.enabled {
        return dispatch(state, request).await;
    }
    let denied = match authz::check(state, &mut request) {
        authz::Verdict::Refuse(response) => return Some(*response),
        authz::Verdict::Close => return None,
        authz::Verdict::Serve(denied) => denied,
    };
    let principal = request.principal.clone();
    let host = request.client_host.trim_start_matches('/').to_string();
    let mut response = dispatch(state, request).await?;
    let who = crate::security::Subject {
        principal: &principal,
        host: &host,
    };
    if let Some(denied) = denied {
        authz::complete(state, who, &mut response, denied);
    }
    authz::narrow_operations(state, who, &mut response);
    Some(response)
}

async fn dispatch(state: &Arc<State>, mut request: Request) -> Option<ResponseKind> {
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
        RequestKind::AddPartitionsToTxn(r) => {
            on_disk(state, move |s| txn::add_partitions(s, version, r))
                .await?
                .into()
        }
        RequestKind::AddOffsetsToTxn(r) => on_disk(state, |s| txn::add_offsets(s, r)).await?.into(),
        RequestKind::EndTxn(r) => on_disk(state, |s| txn::end_txn(s, r)).await?.into(),
        RequestKind::TxnOffsetCommit(r) => {
            on_disk(state, move |s| txn::txn_offset_commit(s, version, r))
                .await?
                .into()
        }
        RequestKind::DescribeProducers(r) => txn::describe_producers(state, r).into(),
        RequestKind::DescribeTransactions(r) => txn::describe_transactions(state, r).into(),
        RequestKind::ListTransactions(r) => txn::list_transactions(state, r).into(),
        RequestKind::DescribeConfigs(r) => {
            configs::describe(state, version, request.node_id, r).into()
        }
        RequestKind::AlterConfigs(r) => {
            let node = request.node_id;
            on_disk(state, move |s| configs::alter(s, node, r))
                .await?
                .into()
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            let node = request.node_id;
            on_disk(state, move |s| configs::incremental_alter(s, node, r))
                .await?
                .into()
        }
        RequestKind::DescribeCluster(r) => {
            cluster::describe_cluster(state, request.listener, r).into()
        }
        RequestKind::DescribeLogDirs(r) => cluster::describe_log_dirs(state, r).into(),
        RequestKind::DeleteRecords(r) => {
            let node = request.node_id;
            on_disk(state, move |s| cluster::delete_records(s, node, r))
                .await?
                .into()
        }
        RequestKind::FindCoordinator(r) => {
            groups::find_coordinator(state, version, request.listener, r).into()
        }
        RequestKind::JoinGroup(r) => groups::join_group(state, &request, r).await.into(),
        RequestKind::SyncGroup(r) => groups::sync_group(state, version, r).await.into(),
        RequestKind::Heartbeat(r) => groups::heartbeat(state, r).into(),
        RequestKind::LeaveGroup(r) => on_disk(state, move |s| groups::leave_group(s, version, r))
            .await?
            .into(),
        RequestKind::DescribeGroups(r) => groups::describe_groups(state, version, r).into(),
        RequestKind::ListGroups(r) => groups::list_groups(state, version, r).into(),
        RequestKind::DeleteGroups(r) => on_disk(state, |s| groups::delete_groups(s, r))
            .await?
            .into(),
        RequestKind::OffsetCommit(r) => {
            on_disk(state, move |s| offsets::offset_commit(s, version, r))
                .await?
                .into()
        }
        RequestKind::OffsetFetch(r) => offsets::offset_fetch(state, version, r).into(),
        RequestKind::OffsetDelete(r) => on_disk(state, |s| offsets::offset_delete(s, r))
            .await?
            .into(),
        RequestKind::CreateAcls(r) => on_disk(state, |s| acls::create(s, r)).await?.into(),
        RequestKind::DescribeAcls(r) => acls::describe(state, r).into(),
        RequestKind::DeleteAcls(r) => on_disk(state, |s| acls::delete(s, r)).await?.into(),
        RequestKind::DescribeUserScramCredentials(r) => scram::describe(state, r).into(),
        RequestKind::AlterUserScramCredentials(r) => {
            on_disk(state, |s| scram::alter(s, r)).await?.into()
        }
        // On a SASL listener the connection answers these; here the listener has no SASL
        // (or the client already authenticated), as Kafka answers then.
        RequestKind::SaslHandshake(_) => {
            let mut resp = kafka_protocol::messages::SaslHandshakeResponse::default();
            resp.error_code = kafka_protocol::error::ResponseError::IllegalSaslState.code();
            resp.into()
        }
        RequestKind::SaslAuthenticate(_) => {
            let mut resp = kafka_protocol::messages::SaslAuthenticateResponse::default();
            resp.error_code = kafka_protocol::error::ResponseError::IllegalSaslState.code();
            resp.error_message = Some(StrBytes::from_static_str(
                "SaslAuthenticate request received on a listener without SASL",
            ));
            resp.into()
        }
        RequestKind::ApiVersions(_) => api_versions_response(&state.api_table, 0).into(),
        RequestKind::Metadata(r) => metadata::handle(state, version, request.listener, r).into(),
        RequestKind::Produce(r) => {
            let node = request.node_id;
            let produce = move |s: &Arc<State>| produce::handle(s, version, node, r);
            // Only an fsync per append makes produce wait on the disk.
            let response = if state.config().log.fsync {
                on_disk(state, produce).await?
            } else {
                produce(state)
            };
            return response.map(Into::into);
        }
        RequestKind::Fetch(r) => fetch::handle(state, version, request.node_id, r)
            .await
            .into(),
        RequestKind::ListOffsets(r) => {
            list_offsets::handle(state, version, request.node_id, r).into()
        }
        RequestKind::CreateTopics(r) => {
            on_disk(state, move |s| admin::create_topics(s, version, r))
                .await?
                .into()
        }
        RequestKind::DeleteTopics(r) => {
            on_disk(state, move |s| admin::delete_topics(s, version, r))
                .await?
                .into()
        }
        RequestKind::CreatePartitions(r) => on_disk(state, |s| admin::create_partitions(s, r))
            .await?
            .into(),
        RequestKind::OffsetForLeaderEpoch(r) => {
            leader_epoch::handle(state, request.node_id, r).into()
        }
        RequestKind::InitProducerId(r) => {
            on_disk(state, move |s| init_producer_id::handle(s, version, r))
                .await?
                .into()
        }
        other => {
            // Dispatch only lets through what `SUPPORTED` lists, so this is a bug in that list.
            tracing::error!(api = ?request.api, "request passed version checks but has no handler: {other:?}");
            return None;
        }
    })
}

/// Runs a handler that writes to disk (a metadata commit, an fsync, files created or
/// removed) on the blocking pool when the broker keeps its data on disk, so that the async
/// workers go on serving other connections meanwhile; in memory it runs inline. `None` if
/// the runtime is shutting down.
async fn on_disk<T: Send + 'static>(
    state: &Arc<State>,
    handler: impl FnOnce(&Arc<State>) -> T + Send + 'static,
) -> Option<T> {
    if !state.writes_to_disk() {
        return Some(handler(state));
    }
    let state = state.clone();
    match tokio::task::spawn_blocking(move || handler(&state)).await {
        Ok(response) => Some(response),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    }
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
