//! The flags of `agentbus log SUBCOMMAND`, made from the event types' JSON Schema in
//! `agentbus-client`, so that each field is defined once: a field there is a flag here,
//! with its description as help.
//!
//! A top-level field `some_field` is `--some-field`: strings, numbers and `true`/`false`
//! as they are, nested objects and arrays as JSON (`--alternatives '[…]'`). Scalar fields
//! the schema requires are required flags; nested ones may come in `--json` instead, and
//! the event's own decoding names any that is missing. `event_id` and `timestamp` are
//! generated when not given. The seeds' own flag names (`/log-routing-decision --agent …
//! --confidence …`) are the long names of the fields they stand for.

use agentbus_client::Topic;
use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::{Arg, ArgMatches, Command};
use serde_json::{Map, Value};

/// The seeds' flag for a field, where it differs from the field's name.
const SEED_FLAGS: &[(Topic, &str, &str)] = &[
    (Topic::AgentRoutingDecisions, "selected_agent", "agent"),
    (
        Topic::AgentRoutingDecisions,
        "confidence_score",
        "confidence",
    ),
    (Topic::AgentRoutingDecisions, "routing_strategy", "strategy"),
    (
        Topic::AgentRoutingDecisions,
        "routing_time_ms",
        "latency-ms",
    ),
    (Topic::AgentActions, "agent_name", "agent"),
    (Topic::TaskExecutions, "agent_name", "agent"),
];

/// Values a field takes when neither a flag nor `--json` gives it (the seeds' script
/// sends routing decisions without context, and alternatives only when known).
const DEFAULTS: &[(Topic, &str, MakeValue)] = &[
    (Topic::AgentRoutingDecisions, "alternatives", || {
        Value::Array(Vec::new())
    }),
    (Topic::AgentRoutingDecisions, "context", || {
        Value::Object(Map::new())
    }),
];

/// Makes a default value.
type MakeValue = fn() -> Value;

/// Filled in by `agentbus log` when not given.
const GENERATED: [&str; 2] = ["event_id", "timestamp"];

/// The topics `agentbus log` has a subcommand for.
fn topics() -> impl Iterator<Item = Topic> {
    Topic::ALL.into_iter()
}

/// One subcommand: its topic, the fields its flags gave, and `--json`.
#[derive(Debug, Clone)]
pub(super) struct Kind {
    pub(super) topic: Topic,
    pub(super) fields: Map<String, Value>,
    pub(super) json: Option<String>,
}

impl Kind {
    /// The fields the subcommand's defaults give, for those not already set.
    pub(super) fn defaults(topic: Topic) -> impl Iterator<Item = (&'static str, Value)> {
        DEFAULTS
            .iter()
            .filter(move |(t, _, _)| *t == topic)
            .map(|(_, field, value)| (*field, value()))
    }
}

/// How a field's value is read from its flag.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    Text,
    Unsigned,
    Integer,
    Number,
    Boolean,
    Json,
}

/// A property with `$ref`s into `$defs` followed.
fn resolve<'a>(prop: &'a Value, defs: &'a Value) -> &'a Value {
    match prop["$ref"].as_str().and_then(|r| r.rsplit('/').next()) {
        Some(name) => resolve(&defs[name], defs),
        None => prop,
    }
}

/// The values of an enum of strings (`action_type`), for the help and the check.
fn choices(prop: &Value, defs: &Value) -> Option<Vec<String>> {
    let prop = resolve(prop, defs);
    if let Some(values) = prop["enum"].as_array() {
        return values
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect();
    }
    prop["oneOf"]
        .as_array()?
        .iter()
        .map(|v| v["const"].as_str().map(str::to_string))
        .collect()
}

/// The shape of a property, reading `T | null` as `T`.
fn shape(prop: &Value, defs: &Value) -> Shape {
    let prop = resolve(prop, defs);
    if choices(prop, defs).is_some() {
        return Shape::Text;
    }
    for alternatives in ["anyOf", "oneOf"] {
        if let Some(variants) = prop[alternatives].as_array() {
            let not_null: Vec<&Value> = variants.iter().filter(|v| v["type"] != "null").collect();
            return match not_null.as_slice() {
                [one] => shape(one, defs),
                _ => Shape::Json,
            };
        }
    }
    let ty = match &prop["type"] {
        Value::String(t) => Some(t.as_str()),
        Value::Array(types) => {
            let not_null: Vec<&str> = types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect();
            match not_null.as_slice() {
                [one] => Some(*one),
                _ => None,
            }
        }
        _ => None,
    };
    match ty {
        Some("string") => Shape::Text,
        Some("integer") if prop["minimum"].as_f64().is_some_and(|m| m >= 0.0) => Shape::Unsigned,
        Some("integer") => Shape::Integer,
        Some("number") => Shape::Number,
        Some("boolean") => Shape::Boolean,
        _ => Shape::Json,
    }
}

/// `alternatives` → `--alternatives`; a nested value's flag parses its JSON.
fn field_arg(topic: Topic, field: &str, prop: &Value, defs: &Value, required: bool) -> Arg {
    let shape = shape(prop, defs);
    let seed = SEED_FLAGS
        .iter()
        .find(|(t, f, _)| *t == topic && *f == field)
        .map(|(_, _, flag)| *flag);
    let own = field.replace('_', "-");
    let mut arg = Arg::new(field.to_string())
        .long(seed.unwrap_or(&own).to_string())
        .value_name(field.to_uppercase());
    if seed.is_some() {
        arg = arg.visible_alias(own);
    }
    let mut help = prop["description"].as_str().unwrap_or_default().to_string();
    if GENERATED.contains(&field) {
        help.push_str(if field == "event_id" {
            " A random one by default."
        } else {
            " Now by default."
        });
    }
    let arg = match shape {
        Shape::Text => match choices(prop, defs) {
            Some(values) => arg.value_parser(PossibleValuesParser::new(values).map(Value::String)),
            None => arg.value_parser(clap::builder::StringValueParser::new().map(Value::String)),
        },
        Shape::Unsigned => arg.value_parser(clap::value_parser!(u64).map(Value::from)),
        Shape::Integer => arg.value_parser(clap::value_parser!(i64).map(Value::from)),
        Shape::Number => arg.value_parser(parse_number),
        Shape::Boolean => arg
            .value_parser(clap::builder::BoolValueParser::new().map(Value::Bool))
            .value_name("true|false"),
        Shape::Json => arg.value_parser(parse_json).value_name("JSON"),
    };
    // A missing nested field is named by the event's decoding, so that `--json` may give it.
    let required = required && shape != Shape::Json && !GENERATED.contains(&field);
    arg.help(help).required(required)
}

fn parse_number(text: &str) -> Result<Value, String> {
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(Value::from(n)),
        _ => Err(format!("expected a number, got {text:?}")),
    }
}

fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))
}

/// The subcommand of `topic`. Its flags are made only when it runs (or shows its help):
/// other commands of the binary do not pay for the schemas.
fn subcommand(topic: Topic) -> Command {
    Command::new(topic.command())
        .about(format!("Publish an event to {}", topic.name()))
        .defer(
            |cmd| match topics().find(|t| t.command() == cmd.get_name()) {
                Some(topic) => with_flags(cmd, topic),
                None => cmd,
            },
        )
}

/// `cmd` with a flag for each field of `topic`'s schema, and `--json`.
fn with_flags(mut cmd: Command, topic: Topic) -> Command {
    let schema = agentbus_client::schema::schema(topic);
    let defs = &schema["$defs"];
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(description) = schema["description"].as_str() {
        cmd = cmd.long_about(format!("{}: {description}", topic.name()));
    }
    if let Some(props) = schema["properties"].as_object() {
        for (field, prop) in props {
            let defaulted = DEFAULTS.iter().any(|(t, f, _)| *t == topic && f == field);
            let required = required.contains(&field.as_str()) && !defaulted;
            cmd = cmd.arg(field_arg(topic, field, prop, defs, required));
        }
    }
    cmd.arg(
        Arg::new("json")
            .long("json")
            .value_name("JSON")
            .help("Further fields as a JSON object, for nested ones (e.g. '{\"steps\": [...]}')."),
    )
}

impl clap::FromArgMatches for Kind {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let Some((name, sub)) = matches.subcommand() else {
            return Err(clap::Error::new(clap::error::ErrorKind::MissingSubcommand));
        };
        let Some(topic) = topics().find(|t| t.command() == name) else {
            return Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand));
        };
        let mut fields = Map::new();
        let mut json = None;
        // The matches hold the global flags too (`--timeout-ms`, `--log-format`): only the
        // fields' flags carry JSON values.
        for id in sub.ids() {
            let id = id.as_str();
            if id == "json" {
                json = sub.get_one::<String>(id).cloned();
            } else if let Ok(Some(value)) = sub.try_get_one::<Value>(id) {
                fields.insert(id.to_string(), value.clone());
            }
        }
        Ok(Kind {
            topic,
            fields,
            json,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Subcommand for Kind {
    fn augment_subcommands(cmd: Command) -> Command {
        topics().fold(cmd, |cmd, topic| cmd.subcommand(subcommand(topic)))
    }

    fn augment_subcommands_for_update(cmd: Command) -> Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        topics().any(|t| t.command() == name)
    }
}
