//! CreateTopics v2–v7, DeleteTopics v1–v6, CreatePartitions v0–v3.

use super::{str_bytes, topic_name};
use crate::state::{State, TopicError};
use crate::topic_config::TopicConfigs;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse,
};
use std::collections::HashMap;
use std::sync::Arc;

/// Kafka's `MAX_PARTITIONS_PER_BATCH`: partitions one CreateTopics or CreatePartitions
/// request may create. A request over it is refused whole, before anything is made
/// (a client asking for two billion partitions gets an error, not an exhausted broker).
const MAX_PARTITIONS_PER_REQUEST: u64 = 10_000;
const TOO_MANY_PARTITIONS: &str = "Excessively large number of partitions per request.";

fn fail(code: ResponseError, message: impl Into<String>) -> (ResponseError, String) {
    (code, message.into())
}

pub(crate) fn create_topics(
    state: &Arc<State>,
    version: i16,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for t in &req.topics {
        *counts.entry(t.name.0.to_string()).or_default() += 1;
    }
    let node = state.config().node_id;
    let mut resp = CreateTopicsResponse::default();
    let requested: u64 = req
        .topics
        .iter()
        .map(|t| match t.num_partitions {
            _ if !t.assignments.is_empty() => t.assignments.len() as u64,
            -1 => state.config().default_partitions.max(0) as u64,
            n => n.max(0) as u64,
        })
        .fold(0, u64::saturating_add);
    let too_many = requested > MAX_PARTITIONS_PER_REQUEST;
    for t in req.topics {
        let name = t.name.0.as_str();
        let mut out = CreatableTopicResult::default();
        out.name = t.name.clone();
        out.num_partitions = -1;
        out.replication_factor = -1;
        let result = (|| {
            if too_many {
                return Err(fail(ResponseError::PolicyViolation, TOO_MANY_PARTITIONS));
            }
            if counts.get(name).copied().unwrap_or(0) > 1 {
                return Err(fail(
                    ResponseError::InvalidRequest,
                    "Create topics request from client contains duplicate topic name",
                ));
            }
            let mut partitions = t.num_partitions;
            if !t.assignments.is_empty() {
                if t.num_partitions != -1 || t.replication_factor != -1 {
                    return Err(fail(
                        ResponseError::InvalidRequest,
                        "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
                    ));
                }
                for a in &t.assignments {
                    if a.broker_ids.len() != 1 || a.broker_ids[0].0 != node {
                        return Err(fail(
                            ResponseError::InvalidReplicaAssignment,
                            format!(
                                "partition {} must be assigned to broker {node} only",
                                a.partition_index
                            ),
                        ));
                    }
                }
                partitions = t.assignments.len() as i32;
            }
            let configs = TopicConfigs::from_pairs(
                t.configs
                    .iter()
                    .map(|c| (c.name.as_str(), c.value.as_ref().map(|v| v.as_str()))),
            )
            .map_err(|e| fail(ResponseError::InvalidConfig, e.to_string()))?;
            let map_err = |e: TopicError| fail(e.code(), e.to_string());
            if req.validate_only {
                let n = state
                    .check_create(name, partitions, t.replication_factor)
                    .map_err(map_err)?;
                return Ok((n, uuid::Uuid::nil(), configs));
            }
            let topic = state
                .create_topic(name, partitions, t.replication_factor, configs.clone())
                .map_err(map_err)?;
            Ok((topic.partition_count(), topic.id, configs))
        })();
        match result {
            Ok((partitions, id, configs)) => {
                if version >= 7 {
                    out.topic_id = id;
                }
                if version >= 5 {
                    out.num_partitions = partitions;
                    let brokers = state.cluster.nodes().len().max(1) as i16;
                    out.replication_factor = match t.replication_factor {
                        -1 => brokers,
                        asked => asked,
                    };
                }
                if version >= 5 {
                    out.configs = Some(
                        super::configs::topic_entries(state, &configs)
                            .into_iter()
                            .map(|e| {
                                let mut c = CreatableTopicConfigs::default();
                                c.name = str_bytes(e.name);
                                c.value = e.value.map(str_bytes);
                                c.config_source = e.source;
                                c.read_only = e.read_only;
                                c.is_sensitive = e.sensitive;
                                c
                            })
                            .collect(),
                    );
                }
            }
            Err((code, message)) => {
                out.error_code = code.code();
                out.error_message = Some(str_bytes(message));
            }
        }
        resp.topics.push(out);
    }
    resp
}

pub(crate) fn delete_topics(
    state: &Arc<State>,
    version: i16,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let wanted: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let mut resp = DeleteTopicsResponse::default();
    for (name, id) in wanted {
        let mut out = DeletableTopicResult::default();
        if version >= 6 {
            out.topic_id = id;
        }
        let resolved = match (&name, id.is_nil()) {
            (Some(n), _) => state
                .topic(n)
                .map(|t| t.name.clone())
                .ok_or(ResponseError::UnknownTopicOrPartition),
            (None, false) => state
                .topic_by_id(id)
                .map(|t| t.name.clone())
                .ok_or(ResponseError::UnknownTopicId),
            (None, true) => Err(ResponseError::InvalidRequest),
        };
        out.name = name.as_deref().map(topic_name);
        match resolved.and_then(|n| state.delete_topic(&n).map_err(|e| e.code())) {
            Ok(t) => {
                out.name = Some(topic_name(&t.name));
                if version >= 6 {
                    out.topic_id = t.id;
                }
            }
            Err(code) => {
                out.error_code = code.code();
                if version >= 5 {
                    out.error_message = Some(str_bytes(code.to_string()));
                }
            }
        }
        resp.responses.push(out);
    }
    resp
}

pub(crate) fn create_partitions(
    state: &Arc<State>,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let node = state.config().node_id;
    let mut resp = CreatePartitionsResponse::default();
    let added: u64 = req
        .topics
        .iter()
        .map(|t| {
            let current = state
                .topic(t.name.0.as_str())
                .map_or(0, |x| x.partition_count());
            (i64::from(t.count) - i64::from(current)).max(0) as u64
        })
        .fold(0, u64::saturating_add);
    let too_many = added > MAX_PARTITIONS_PER_REQUEST;
    for t in req.topics {
        let mut out = CreatePartitionsTopicResult::default();
        out.name = t.name.clone();
        let bad_assignment = t.assignments.as_ref().is_some_and(|a| {
            a.iter()
                .any(|x| x.broker_ids.len() != 1 || x.broker_ids[0].0 != node)
        });
        let result = if too_many {
            Err(fail(ResponseError::PolicyViolation, TOO_MANY_PARTITIONS))
        } else if bad_assignment {
            Err(fail(
                ResponseError::InvalidReplicaAssignment,
                format!("new partitions must be assigned to broker {node} only"),
            ))
        } else {
            state
                .create_partitions(t.name.0.as_str(), t.count, req.validate_only)
                .map_err(|e| fail(e.code(), e.to_string()))
        };
        if let Err((code, message)) = result {
            out.error_code = code.code();
            out.error_message = Some(str_bytes(message));
        }
        resp.results.push(out);
    }
    resp
}
