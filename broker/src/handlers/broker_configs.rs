//! BROKER resources of DescribeConfigs, AlterConfigs and IncrementalAlterConfigs: the
//! broker's configs by Kafka's names, each with where its value comes from, and the
//! dynamic ones changed, stored and put in force.

use crate::broker_config::{self, Type};
use crate::config::BrokerConfig;
use crate::state::{Layer, Scope, State};
use kafka_protocol::error::ResponseError;
use std::collections::BTreeMap;

/// `config_source` values.
pub(crate) const SOURCE_DYNAMIC_BROKER: i8 = 2;
pub(crate) const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
pub(crate) const SOURCE_STATIC_BROKER: i8 = 4;
pub(crate) const SOURCE_DEFAULT: i8 = 5;

/// A refusal: the error and Kafka's message.
pub(crate) type Refusal = (ResponseError, String);

/// One reported config: its value in force, where that comes from, and every layer that
/// sets it, the one in force first (the synonyms of DescribeConfigs v1+).
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) value: Option<String>,
    pub(crate) source: i8,
    pub(crate) read_only: bool,
    pub(crate) sensitive: bool,
    pub(crate) kind: i8,
    pub(crate) synonyms: Vec<(String, Option<String>, i8)>,
}

/// Which layer a BROKER resource name means, as Kafka checks it: "" the cluster-wide
/// defaults, else the id of the node the request came to.
pub(crate) fn scope(node: i32, name: &str) -> Result<Scope, Refusal> {
    if name.is_empty() {
        return Ok(Scope::Default);
    }
    let id: i32 = name.parse().map_err(|_| {
        (
            ResponseError::InvalidRequest,
            format!("Node id must be an integer, but it is: {name}"),
        )
    })?;
    if id != node {
        return Err((
            ResponseError::InvalidRequest,
            format!("Unexpected broker id, expected {node}, but received {id}"),
        ));
    }
    Ok(Scope::Node(id))
}

/// The layers that set `name` for `scope`, most specific first: run-time per node, run-time
/// cluster-wide, the broker's settings where they differ from Kafka's default, the default.
fn chain(state: &State, scope: Scope, name: &str) -> Vec<(Option<String>, i8)> {
    let mut out = Vec::new();
    if let Scope::Node(_) = scope {
        if let Some(v) = state.broker_configs.layer(scope).get(name) {
            out.push((Some(v.clone()), SOURCE_DYNAMIC_BROKER));
        }
    }
    if let Some(v) = state.broker_configs.layer(Scope::Default).get(name) {
        out.push((Some(v.clone()), SOURCE_DYNAMIC_DEFAULT_BROKER));
    }
    if scope == Scope::Default {
        return out;
    }
    let def = broker_config::def(name);
    let default = def.value(&BrokerConfig::default());
    let setting = def.value(state.broker_configs.settings());
    if setting.is_some() && setting != default {
        out.push((setting, SOURCE_STATIC_BROKER));
    }
    if default.is_some() {
        out.push((default, SOURCE_DEFAULT));
    }
    out
}

/// The value of broker config `name` in force on this node and where it comes from.
pub(crate) fn in_force(state: &State, name: &str) -> Option<(Option<String>, i8)> {
    chain(state, Scope::Node(state.config().node_id), name)
        .into_iter()
        .next()
}

/// DescribeConfigs of a BROKER resource: every config for a node, the cluster-wide
/// run-time ones for "".
pub(crate) fn describe(state: &State, node: i32, name: &str) -> Result<Vec<Entry>, Refusal> {
    let scope = scope(node, name)?;
    let mut names: Vec<String> = state
        .broker_configs
        .layer(Scope::Default)
        .into_keys()
        .collect();
    if let Scope::Node(_) = scope {
        names.extend(state.broker_configs.layer(scope).into_keys());
        names.extend(broker_config::reported().map(|d| d.name.to_string()));
    }
    names.sort();
    names.dedup();
    Ok(names
        .into_iter()
        .filter_map(|name| {
            let def = broker_config::def(&name);
            let layers = chain(state, scope, &name);
            let (value, source) = layers.first().cloned()?;
            let hide = |v: Option<String>| if def.sensitive() { None } else { v };
            Some(Entry {
                value: hide(value),
                source,
                read_only: def.read_only(),
                sensitive: def.sensitive(),
                kind: def.kind as i8,
                synonyms: layers
                    .into_iter()
                    .map(|(v, s)| (name.clone(), hide(v), s))
                    .collect(),
                name,
            })
        })
        .collect())
}

/// Checks a new layer as Kafka does and, unless `validate_only`, stores it and puts it in
/// force.
fn replace(state: &State, scope: Scope, layer: Layer, validate_only: bool) -> Result<(), Refusal> {
    let names: Vec<&str> = layer.keys().map(String::as_str).collect();
    if let Some(message) = broker_config::refuse(&names) {
        return Err((ResponseError::InvalidRequest, message));
    }
    for (k, v) in &layer {
        broker_config::check(k, v).map_err(|m| (ResponseError::InvalidConfig, m))?;
    }
    if validate_only {
        return Ok(());
    }
    state
        .alter_broker_configs(scope, layer)
        .map_err(|e| (ResponseError::KafkaStorageError, e.to_string()))
}

/// AlterConfigs: the layer becomes exactly the configs given.
pub(crate) fn alter<'a>(
    state: &State,
    node: i32,
    name: &str,
    configs: impl Iterator<Item = (&'a str, Option<&'a str>)>,
    validate_only: bool,
) -> Result<(), Refusal> {
    let scope = scope(node, name)?;
    let layer = configs
        .filter_map(|(k, v)| Some((k.to_string(), v?.to_string())))
        .collect();
    replace(state, scope, layer, validate_only)
}

/// One IncrementalAlterConfigs operation.
pub(crate) enum Op {
    Set(String),
    Delete,
    /// APPEND (true) or SUBTRACT (false) items of a list config.
    Edit(bool, String),
}

/// `current` with the items of `value` appended (each once) or removed.
fn edit_list(current: &str, value: &str, append: bool) -> String {
    let mut items: Vec<&str> = current
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for v in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if append {
            if !items.contains(&v) {
                items.push(v);
            }
        } else {
            items.retain(|i| *i != v);
        }
    }
    items.join(",")
}

/// Applies IncrementalAlterConfigs operations to a resource's set configs. APPEND and
/// SUBTRACT take only the configs `is_list` names, and start from the set value, else
/// `current`'s (Kafka: the value in force for a topic, the default for a broker).
pub(crate) fn apply_ops(
    configs: &mut BTreeMap<String, String>,
    ops: Vec<(String, Op)>,
    is_list: impl Fn(&str) -> bool,
    current: impl Fn(&str) -> Option<String>,
) -> Result<(), Refusal> {
    for (config, op) in ops {
        match op {
            Op::Set(v) => {
                configs.insert(config, v);
            }
            Op::Delete => {
                configs.remove(&config);
            }
            Op::Edit(append, v) => {
                if !is_list(&config) {
                    let verb = if append { "append" } else { "subtract" };
                    return Err((
                        ResponseError::InvalidRequest,
                        format!("Config value {verb} is not allowed for config key: {config}"),
                    ));
                }
                let from = configs
                    .get(&config)
                    .cloned()
                    .or_else(|| current(&config))
                    .unwrap_or_default();
                let edited = edit_list(&from, &v, append);
                configs.insert(config, edited);
            }
        }
    }
    Ok(())
}

/// IncrementalAlterConfigs: the layer with only the named configs changed; APPEND and
/// SUBTRACT (list configs only) start from the layer's value, else the default.
pub(crate) fn incremental_alter(
    state: &State,
    node: i32,
    name: &str,
    ops: Vec<(String, Op)>,
    validate_only: bool,
) -> Result<(), Refusal> {
    let scope = scope(node, name)?;
    let mut layer = state.broker_configs.layer(scope);
    apply_ops(
        &mut layer,
        ops,
        |c| broker_config::def(c).kind == Type::List,
        |c| broker_config::def(c).value(&BrokerConfig::default()),
    )?;
    replace(state, scope, layer, validate_only)
}
