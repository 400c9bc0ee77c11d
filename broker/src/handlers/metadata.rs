//! Metadata v0–v12: brokers, controller, topics and their partition leaders.

use super::{authorized, str_bytes, topic_name};
use crate::cluster::replica_set;
use crate::state::{State, Topic, TopicError};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use std::sync::Arc;

/// `listener`: the index of the listener the request came on, whose addresses it gets.
pub(crate) fn handle(
    state: &Arc<State>,
    version: i16,
    listener: usize,
    req: MetadataRequest,
) -> MetadataResponse {
    let mut resp = MetadataResponse::default();
    resp.brokers = state
        .cluster
        .up_nodes()
        .into_iter()
        .map(|n| {
            let mut broker = MetadataResponseBroker::default();
            broker.node_id = BrokerId(n.id);
            let (host, port) = n.endpoint(listener);
            broker.host = str_bytes(host.to_string());
            broker.port = i32::from(port);
            broker.rack = n.rack.map(str_bytes);
            broker
        })
        .collect();
    resp.cluster_id = Some(str_bytes(state.config().cluster_id.clone()));
    resp.controller_id = BrokerId(state.cluster.controller());
    // Asked for here up to v10; from v11 DescribeCluster answers it.
    resp.cluster_authorized_operations =
        authorized::cluster(version <= 10 && req.include_cluster_authorized_operations);
    let topic_operations = authorized::topic(req.include_topic_authorized_operations);

    let all = match &req.topics {
        None => true,
        Some(t) => version == 0 && t.is_empty(),
    };
    if all {
        resp.topics = state
            .topics()
            .iter()
            .map(|t| describe(state, version, t, topic_operations))
            .collect();
        return resp;
    }
    let auto_create =
        state.config().auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    for wanted in req.topics.unwrap_or_default() {
        let entry = match (&wanted.name, wanted.topic_id.is_nil()) {
            (Some(name), _) => {
                let name = name.0.as_str();
                let found = if auto_create {
                    state.get_or_auto_create(name)
                } else {
                    crate::state::validate_topic_name(name)
                        .and_then(|_| state.topic(name).ok_or(TopicError::Unknown))
                };
                match found {
                    Ok(t) => describe(state, version, &t, topic_operations),
                    Err(e) => error_topic(version, Some(name), wanted.topic_id, e.code()),
                }
            }
            (None, false) => match state.topic_by_id(wanted.topic_id) {
                Some(t) => describe(state, version, &t, topic_operations),
                None => error_topic(
                    version,
                    None,
                    wanted.topic_id,
                    ResponseError::UnknownTopicId,
                ),
            },
            (None, true) => error_topic(
                version,
                None,
                wanted.topic_id,
                ResponseError::InvalidRequest,
            ),
        };
        resp.topics.push(entry);
    }
    resp
}

fn error_topic(
    version: i16,
    name: Option<&str>,
    id: uuid::Uuid,
    code: ResponseError,
) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.error_code = code.code();
    t.name = name.map(topic_name);
    if version >= 10 {
        t.topic_id = id;
    }
    t.topic_authorized_operations = authorized::OMITTED;
    t
}

/// A topic's metadata; `operations` is its authorized-operations field.
fn describe(state: &State, version: i16, topic: &Topic, operations: i32) -> MetadataResponseTopic {
    let nodes = state.cluster.nodes();
    let mut t = MetadataResponseTopic::default();
    t.name = Some(topic_name(&topic.name));
    if version >= 10 {
        t.topic_id = topic.id;
    }
    t.is_internal = topic.name.starts_with("__");
    t.topic_authorized_operations = operations;
    t.partitions = topic
        .partitions()
        .iter()
        .map(|p| {
            let mut m = MetadataResponsePartition::default();
            m.partition_index = p.index;
            let leader = state.cluster.leader(&topic.name, p.index);
            m.leader_id = BrokerId(leader);
            if version >= 7 {
                m.leader_epoch = p.leader_epoch();
            }
            let replicas = replica_set(&nodes, leader, topic.replication_factor);
            let ids = |up: Option<bool>| -> Vec<BrokerId> {
                replicas
                    .iter()
                    .filter(|n| up.is_none_or(|up| n.up == up))
                    .map(|n| BrokerId(n.id))
                    .collect()
            };
            m.replica_nodes = ids(None);
            m.isr_nodes = ids(Some(true));
            if version >= 5 {
                m.offline_replicas = ids(Some(false));
            }
            m
        })
        .collect();
    t
}
