//! Topic and broker configs: DescribeConfigs v1–v4, AlterConfigs v0–v2,
//! IncrementalAlterConfigs v0–v1.

use super::str_bytes;
use crate::state::{State, TopicError};
use crate::topic_config::TopicConfigs;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// `config_source` values.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
/// `config_type` values (v3+).
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;

fn config_type(name: &str) -> i8 {
    match name {
        "max.message.bytes" | "segment.bytes" | "min.insync.replicas" => TYPE_INT,
        "retention.ms" | "retention.bytes" | "segment.ms" => TYPE_LONG,
        _ => TYPE_STRING,
    }
}

fn broker_configs(state: &State) -> Vec<(String, String)> {
    let c = &state.config;
    vec![
        (
            "auto.create.topics.enable".into(),
            c.auto_create_topics.to_string(),
        ),
        (
            "group.initial.rebalance.delay.ms".into(),
            c.group.initial_rebalance_delay.as_millis().to_string(),
        ),
        (
            "log.retention.bytes".into(),
            c.log.retention_bytes.to_string(),
        ),
        ("log.retention.ms".into(), c.log.retention_ms.to_string()),
        ("log.segment.bytes".into(), c.log.segment_bytes.to_string()),
        ("message.max.bytes".into(), c.max_message_bytes.to_string()),
        ("node.id".into(), c.node_id.to_string()),
        ("num.partitions".into(), c.default_partitions.to_string()),
        (
            "socket.request.max.bytes".into(),
            c.max_request_bytes.to_string(),
        ),
        (
            "transaction.max.timeout.ms".into(),
            c.transaction_max_timeout_ms.to_string(),
        ),
    ]
}

pub(crate) fn describe(
    state: &Arc<State>,
    version: i16,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let mut resp = DescribeConfigsResponse::default();
    for r in req.resources {
        let mut out = DescribeConfigsResult::default();
        out.resource_type = r.resource_type;
        out.resource_name = r.resource_name.clone();
        let wanted = |name: &str| {
            r.configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
        };
        let entries: Result<Vec<(String, String, i8)>, ResponseError> = match r.resource_type {
            RESOURCE_TOPIC => match state.topic(r.resource_name.as_str()) {
                None => Err(ResponseError::UnknownTopicOrPartition),
                Some(t) => Ok(t
                    .configs()
                    .described(&state.config)
                    .into_iter()
                    .map(|(k, v, is_default)| {
                        (
                            k,
                            v,
                            if is_default {
                                SOURCE_DEFAULT
                            } else {
                                SOURCE_TOPIC
                            },
                        )
                    })
                    .collect()),
            },
            RESOURCE_BROKER
                if r.resource_name.is_empty()
                    || r.resource_name.as_str() == state.config.node_id.to_string() =>
            {
                Ok(broker_configs(state)
                    .into_iter()
                    .map(|(k, v)| (k, v, SOURCE_STATIC_BROKER))
                    .collect())
            }
            RESOURCE_BROKER => Err(ResponseError::InvalidRequest),
            _ => Err(ResponseError::InvalidRequest),
        };
        match entries {
            Err(e) => {
                out.error_code = e.code();
                out.error_message = Some(str_bytes(e.to_string()));
            }
            Ok(entries) => {
                out.configs = entries
                    .into_iter()
                    .filter(|(k, _, _)| wanted(k))
                    .map(|(k, v, source)| {
                        let mut c = DescribeConfigsResourceResult::default();
                        if version >= 3 {
                            c.config_type = config_type(&k);
                        }
                        c.name = str_bytes(k);
                        c.value = Some(str_bytes(v));
                        c.read_only = r.resource_type == RESOURCE_BROKER;
                        c.config_source = source;
                        c
                    })
                    .collect();
            }
        }
        resp.results.push(out);
    }
    resp
}

fn apply(
    state: &State,
    resource_type: i8,
    name: &str,
    configs: Result<TopicConfigs, ResponseError>,
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    if resource_type != RESOURCE_TOPIC {
        return Err((
            ResponseError::InvalidRequest,
            "only topic configs can be changed".into(),
        ));
    }
    let configs = configs.map_err(|e| (e, e.to_string()))?;
    state
        .alter_topic_configs(name, configs, validate_only)
        .map_err(|e: TopicError| (e.code(), e.to_string()))
}

fn result(
    resource_type: i8,
    name: StrBytes,
    r: Result<(), (ResponseError, String)>,
) -> alter_configs_response::AlterConfigsResourceResponse {
    let mut out = alter_configs_response::AlterConfigsResourceResponse::default();
    out.resource_type = resource_type;
    out.resource_name = name;
    if let Err((code, message)) = r {
        out.error_code = code.code();
        out.error_message = Some(str_bytes(message));
    }
    out
}

/// AlterConfigs replaces a topic's whole set of configs.
pub(crate) fn alter(state: &Arc<State>, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut resp = AlterConfigsResponse::default();
    for r in req.resources {
        let configs = TopicConfigs::from_pairs(
            r.configs
                .iter()
                .map(|c| (c.name.as_str(), c.value.as_ref().map(StrBytes::as_str))),
        )
        .map_err(|_| ResponseError::InvalidConfig);
        let outcome = match configs {
            Err(_) => Err((ResponseError::InvalidConfig, bad_config(&r.configs))),
            Ok(c) => apply(
                state,
                r.resource_type,
                r.resource_name.as_str(),
                Ok(c),
                req.validate_only,
            ),
        };
        resp.responses
            .push(result(r.resource_type, r.resource_name, outcome));
    }
    resp
}

fn bad_config(configs: &[alter_configs_request::AlterableConfig]) -> String {
    configs
        .iter()
        .find_map(|c| {
            TopicConfigs::check(
                c.name.as_str(),
                c.value.as_ref().map_or("", StrBytes::as_str),
            )
            .err()
        })
        .map_or_else(|| "invalid config".to_string(), |e| e.to_string())
}

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;
/// The topic configs whose type is a list in Kafka: the only ones APPEND and SUBTRACT take.
const LIST_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
];

/// IncrementalAlterConfigs changes only the named configs.
pub(crate) fn incremental_alter(
    state: &Arc<State>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut resp = IncrementalAlterConfigsResponse::default();
    for r in req.resources {
        let outcome = (|| {
            if r.resource_type != RESOURCE_TOPIC {
                return Err((
                    ResponseError::InvalidRequest,
                    "only topic configs can be changed".to_string(),
                ));
            }
            let topic = state.topic(r.resource_name.as_str()).ok_or((
                ResponseError::UnknownTopicOrPartition,
                "unknown topic".to_string(),
            ))?;
            let configs = topic.configs();
            let described = configs.described(&state.config);
            let mut map = configs.0;
            for c in &r.configs {
                let name = c.name.to_string();
                let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
                match c.config_operation {
                    OP_SET => {
                        map.insert(name, value);
                    }
                    OP_DELETE => {
                        map.remove(&name);
                    }
                    OP_APPEND | OP_SUBTRACT => {
                        let verb = if c.config_operation == OP_APPEND {
                            "append"
                        } else {
                            "subtract"
                        };
                        if !LIST_CONFIGS.contains(&name.as_str()) {
                            return Err((
                                ResponseError::InvalidRequest,
                                format!(
                                    "Config value {verb} is not allowed for config key: {name}"
                                ),
                            ));
                        }
                        // As Kafka: from the value in force, the default included (APPEND
                        // `compact` to a default `delete` policy gives `delete,compact`).
                        let current = map.get(&name).cloned().or_else(|| {
                            described
                                .iter()
                                .find(|(k, _, _)| *k == name)
                                .map(|(_, v, _)| v.clone())
                        });
                        let mut items: Vec<String> = current
                            .unwrap_or_default()
                            .split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect();
                        for v in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                            if c.config_operation == OP_APPEND {
                                if !items.iter().any(|i| i == v) {
                                    items.push(v.to_string());
                                }
                            } else {
                                items.retain(|i| i != v);
                            }
                        }
                        map.insert(name, items.join(","));
                    }
                    op => {
                        return Err((
                            ResponseError::InvalidRequest,
                            format!("unknown config operation {op}"),
                        ))
                    }
                }
            }
            for (k, v) in &map {
                TopicConfigs::check(k, v)
                    .map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
            }
            apply(
                state,
                r.resource_type,
                r.resource_name.as_str(),
                Ok(TopicConfigs(map)),
                req.validate_only,
            )
        })();
        let out = result(r.resource_type, r.resource_name.clone(), outcome);
        let mut converted =
            incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        converted.error_code = out.error_code;
        converted.error_message = out.error_message;
        converted.resource_type = out.resource_type;
        converted.resource_name = out.resource_name;
        resp.responses.push(converted);
    }
    resp
}
