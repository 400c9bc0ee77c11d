//! Topic, broker and group configs: DescribeConfigs v1–v4, AlterConfigs v0–v2,
//! IncrementalAlterConfigs v0–v1.

use super::broker_configs::{self as broker, Entry, Op, Refusal};
use super::str_bytes;
use crate::state::{State, TopicError};
use crate::topic_config::{broker_synonym, TopicConfigs};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_BROKER_LOGGER: i8 = 8;
/// KIP-848 group configs.
const RESOURCE_GROUP: i8 = 32;
const SOURCE_BROKER_LOGGER: i8 = 6;
const SOURCE_TOPIC: i8 = 1;
const SOURCE_GROUP: i8 = 8;
/// `config_type` values (v3+).
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

fn topic_config_type(name: &str) -> i8 {
    match name {
        "max.message.bytes" | "segment.bytes" | "min.insync.replicas" | "index.interval.bytes" => {
            TYPE_INT
        }
        "retention.ms"
        | "retention.bytes"
        | "segment.ms"
        | "message.timestamp.after.max.ms"
        | "message.timestamp.before.max.ms"
        | "message.timestamp.difference.max.ms" => TYPE_LONG,
        "cleanup.policy" => TYPE_LIST,
        _ => TYPE_STRING,
    }
}

/// A topic's configs in force: set on the topic, else the broker's synonym (run-time,
/// setting or default), each with where its value comes from.
pub(crate) fn topic_entries(state: &State, configs: &TopicConfigs) -> Vec<Entry> {
    configs
        .described(&state.config())
        .into_iter()
        .map(|(name, value, is_default)| {
            let from_broker =
                broker_synonym(&name).and_then(|b| Some((b, broker::in_force(state, b)?)));
            let mut synonyms = Vec::new();
            if !is_default {
                synonyms.push((name.clone(), Some(value.clone()), SOURCE_TOPIC));
            }
            if let Some((b, (v, s))) = &from_broker {
                synonyms.push((b.to_string(), v.clone(), *s));
            }
            let source = match (&from_broker, is_default) {
                (_, false) => SOURCE_TOPIC,
                (Some((_, (_, s))), true) => *s,
                (None, true) => broker::SOURCE_DEFAULT,
            };
            Entry {
                kind: topic_config_type(&name),
                name,
                value: Some(value),
                source,
                read_only: false,
                sensitive: false,
                synonyms,
            }
        })
        .collect()
}

/// A group's configs: set on it, else the broker's default.
fn group_entries(state: &State, group: &str) -> Vec<Entry> {
    use crate::group::configs::{HEARTBEAT_INTERVAL, SESSION_TIMEOUT};
    let set = state.groups.group_configs(group);
    let defaults = state.groups.config();
    [
        (SESSION_TIMEOUT, defaults.consumer_session_timeout),
        (HEARTBEAT_INTERVAL, defaults.consumer_heartbeat_interval),
    ]
    .into_iter()
    .map(|(name, default)| {
        let default = default.as_millis().to_string();
        let (value, source) = match set.get(name) {
            Some(v) => (v.clone(), SOURCE_GROUP),
            None => (default.clone(), broker::SOURCE_DEFAULT),
        };
        let mut synonyms = vec![(name.to_string(), Some(value.clone()), source)];
        if source == SOURCE_GROUP {
            synonyms.push((
                format!("group.{name}"),
                Some(default),
                broker::SOURCE_DEFAULT,
            ));
        }
        Entry {
            name: name.to_string(),
            value: Some(value),
            source,
            read_only: false,
            sensitive: false,
            kind: TYPE_INT,
            synonyms,
        }
    })
    .collect()
}

/// Checks a group's new configs and, unless `validate_only`, puts them in force.
fn alter_group(
    state: &State,
    group: &str,
    configs: crate::group::configs::Configs,
    validate_only: bool,
) -> Result<(), Refusal> {
    if group.is_empty() {
        return Err((
            ResponseError::InvalidRequest,
            "Group name must not be empty".into(),
        ));
    }
    state
        .groups
        .set_group_configs(group, configs, validate_only)
}

/// The process's log levels, for a BROKER_LOGGER resource naming this node.
fn log_levels(
    state: &State,
    node: i32,
    name: &str,
) -> Result<std::sync::Arc<dyn crate::config::LogLevels>, Refusal> {
    if name.is_empty() {
        return Err((
            ResponseError::InvalidRequest,
            "a BROKER_LOGGER resource names a broker id".into(),
        ));
    }
    broker::scope(node, name)?;
    state.config().log_levels.clone().ok_or((
        ResponseError::InvalidRequest,
        "this broker's host manages its log levels".into(),
    ))
}

fn logger_entries(state: &State, node: i32, name: &str) -> Result<Vec<Entry>, Refusal> {
    Ok(log_levels(state, node, name)?
        .loggers()
        .into_iter()
        .map(|(logger, level)| Entry {
            synonyms: vec![(logger.clone(), Some(level.clone()), SOURCE_BROKER_LOGGER)],
            name: logger,
            value: Some(level),
            source: SOURCE_BROKER_LOGGER,
            read_only: false,
            sensitive: false,
            kind: TYPE_STRING,
        })
        .collect())
}

/// IncrementalAlterConfigs on BROKER_LOGGER: SET a logger's level, DELETE it (it follows
/// `root` again). Checked whole before any is applied.
fn incremental_logger(
    state: &State,
    node: i32,
    name: &str,
    ops: Vec<(String, Op)>,
    validate_only: bool,
) -> Result<(), Refusal> {
    let levels = log_levels(state, node, name)?;
    let mut changes = Vec::new();
    for (logger, op) in ops {
        let level = match op {
            Op::Set(v) => Some(v.to_ascii_uppercase()),
            Op::Delete if logger == "root" => {
                return Err((
                    ResponseError::InvalidConfig,
                    "Removing the log level of the root logger is not allowed".into(),
                ))
            }
            Op::Delete => None,
            Op::Edit(..) => {
                return Err((
                    ResponseError::InvalidRequest,
                    "APPEND and SUBTRACT are not allowed for BROKER_LOGGER".into(),
                ))
            }
        };
        if let Some(l) = &level {
            if !["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"].contains(&l.as_str()) {
                return Err((
                    ResponseError::InvalidConfig,
                    format!("Cannot set the log level of {logger} to {l} as it is not a supported log level."),
                ));
            }
        }
        changes.push((logger, level));
    }
    if validate_only {
        return Ok(());
    }
    for (logger, level) in changes {
        levels
            .set(&logger, level.as_deref())
            .map_err(|m| (ResponseError::InvalidConfig, m))?;
        tracing::info!(%logger, ?level, "log level changed (BROKER_LOGGER)");
    }
    Ok(())
}

fn refusal(e: ResponseError) -> Refusal {
    (e, e.to_string())
}

pub(crate) fn describe(
    state: &Arc<State>,
    version: i16,
    node: i32,
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
        let entries = match r.resource_type {
            RESOURCE_TOPIC => match state.topic(r.resource_name.as_str()) {
                None => Err(refusal(ResponseError::UnknownTopicOrPartition)),
                Some(t) => Ok(topic_entries(state, &t.configs())),
            },
            RESOURCE_BROKER => broker::describe(state, node, r.resource_name.as_str()),
            RESOURCE_GROUP => Ok(group_entries(state, r.resource_name.as_str())),
            RESOURCE_BROKER_LOGGER => logger_entries(state, node, r.resource_name.as_str()),
            _ => Err(refusal(ResponseError::InvalidRequest)),
        };
        match entries {
            Err((e, message)) => {
                out.error_code = e.code();
                out.error_message = Some(str_bytes(message));
            }
            Ok(entries) => {
                out.configs = entries
                    .into_iter()
                    .filter(|e| wanted(&e.name))
                    .map(|e| {
                        let mut c = DescribeConfigsResourceResult::default();
                        if version >= 3 {
                            c.config_type = e.kind;
                        }
                        c.name = str_bytes(e.name);
                        c.value = e.value.map(str_bytes);
                        c.read_only = e.read_only;
                        c.is_sensitive = e.sensitive;
                        c.config_source = e.source;
                        if req.include_synonyms {
                            c.synonyms = e
                                .synonyms
                                .into_iter()
                                .map(|(name, value, source)| {
                                    let mut s = DescribeConfigsSynonym::default();
                                    s.name = str_bytes(name);
                                    s.value = value.map(str_bytes);
                                    s.source = source;
                                    s
                                })
                                .collect();
                        }
                        c
                    })
                    .collect();
            }
        }
        resp.results.push(out);
    }
    resp
}

fn alter_topic(
    state: &State,
    name: &str,
    configs: TopicConfigs,
    validate_only: bool,
) -> Result<(), Refusal> {
    state
        .alter_topic_configs(name, configs, validate_only)
        .map_err(|e: TopicError| (e.code(), e.to_string()))
}

fn result(
    resource_type: i8,
    name: StrBytes,
    r: Result<(), Refusal>,
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

/// AlterConfigs replaces a resource's whole set of configs.
pub(crate) fn alter(
    state: &Arc<State>,
    node: i32,
    req: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut resp = AlterConfigsResponse::default();
    for r in req.resources {
        let pairs = r
            .configs
            .iter()
            .map(|c| (c.name.as_str(), c.value.as_ref().map(StrBytes::as_str)));
        let outcome = match r.resource_type {
            RESOURCE_TOPIC => TopicConfigs::from_pairs(pairs)
                .map_err(|e| (ResponseError::InvalidConfig, e.to_string()))
                .and_then(|c| alter_topic(state, r.resource_name.as_str(), c, req.validate_only)),
            RESOURCE_BROKER => broker::alter(
                state,
                node,
                r.resource_name.as_str(),
                pairs,
                req.validate_only,
            ),
            RESOURCE_BROKER_LOGGER => Err((
                ResponseError::InvalidRequest,
                "AlterConfigs is deprecated and does not support the resource type BROKER_LOGGER"
                    .into(),
            )),
            RESOURCE_GROUP => alter_group(
                state,
                r.resource_name.as_str(),
                pairs
                    .filter_map(|(k, v)| Some((k.to_string(), v?.to_string())))
                    .collect(),
                req.validate_only,
            ),
            _ => Err(refusal(ResponseError::InvalidRequest)),
        };
        resp.responses
            .push(result(r.resource_type, r.resource_name, outcome));
    }
    resp
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

fn ops(
    configs: &[incremental_alter_configs_request::AlterableConfig],
) -> Result<Vec<(String, Op)>, Refusal> {
    configs
        .iter()
        .map(|c| {
            let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
            let op = match c.config_operation {
                OP_SET => Op::Set(value),
                OP_DELETE => Op::Delete,
                OP_APPEND => Op::Edit(true, value),
                OP_SUBTRACT => Op::Edit(false, value),
                op => {
                    return Err((
                        ResponseError::InvalidRequest,
                        format!("unknown config operation {op}"),
                    ))
                }
            };
            Ok((c.name.to_string(), op))
        })
        .collect()
}

/// IncrementalAlterConfigs on a topic: only the named configs change.
fn incremental_topic(
    state: &State,
    name: &str,
    ops: Vec<(String, Op)>,
    validate_only: bool,
) -> Result<(), Refusal> {
    let topic = state.topic(name).ok_or((
        ResponseError::UnknownTopicOrPartition,
        "unknown topic".to_string(),
    ))?;
    let configs = topic.configs();
    let described = configs.described(&state.config());
    let mut map = configs.0;
    // As Kafka: APPEND starts from the value in force, the default included (`compact`
    // appended to a default `delete` policy gives `delete,compact`).
    broker::apply_ops(
        &mut map,
        ops,
        |c| LIST_CONFIGS.contains(&c),
        |c| {
            described
                .iter()
                .find(|(k, _, _)| k == c)
                .map(|(_, v, _)| v.clone())
        },
    )?;
    for (k, v) in &map {
        TopicConfigs::check(k, v).map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
    }
    alter_topic(state, name, TopicConfigs(map), validate_only)
}

/// IncrementalAlterConfigs on a group: SET and DELETE (its configs are no lists).
fn incremental_group(
    state: &State,
    group: &str,
    ops: Vec<(String, Op)>,
    validate_only: bool,
) -> Result<(), Refusal> {
    let mut configs = state.groups.group_configs(group);
    broker::apply_ops(&mut configs, ops, |_| false, |_| None)?;
    alter_group(state, group, configs, validate_only)
}

/// IncrementalAlterConfigs changes only the named configs.
pub(crate) fn incremental_alter(
    state: &Arc<State>,
    node: i32,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut resp = IncrementalAlterConfigsResponse::default();
    for r in req.resources {
        let name = r.resource_name.as_str();
        let outcome = ops(&r.configs).and_then(|ops| match r.resource_type {
            RESOURCE_TOPIC => incremental_topic(state, name, ops, req.validate_only),
            RESOURCE_BROKER => broker::incremental_alter(state, node, name, ops, req.validate_only),
            RESOURCE_GROUP => incremental_group(state, name, ops, req.validate_only),
            RESOURCE_BROKER_LOGGER => incremental_logger(state, node, name, ops, req.validate_only),
            _ => Err(refusal(ResponseError::InvalidRequest)),
        });
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
