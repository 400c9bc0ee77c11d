//! `agentbus schema TOPIC`: print the JSON Schema of a topic's events, generated from the
//! `agentbus-client` types, so producers in other languages can validate what they send.

use agentbus_client::Topic;
use anyhow::Context as _;

#[derive(Debug, clap::Args)]
pub(crate) struct SchemaArgs {
    /// The topic (e.g. agent-routing-decisions, or a derived one: pattern-templates,
    /// fix-suggestions) or its `log` subcommand (routing-decision).
    topic: String,
}

pub(crate) fn run(args: SchemaArgs) -> anyhow::Result<()> {
    let schema = match agentbus_client::derived::schema(&args.topic) {
        Some(schema) => schema,
        None => {
            let topic: Topic = args.topic.parse().map_err(|e| {
                anyhow::anyhow!("{e} (derived topics: pattern-templates, fix-suggestions)")
            })?;
            agentbus_client::schema::schema(topic)
        }
    };
    let mut text = serde_json::to_string_pretty(&schema).context("cannot encode the schema")?;
    text.push('\n');
    crate::emit(&text)
}
