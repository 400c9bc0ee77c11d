//! Topic ids (KIP-516) of the topics a group reads, from a Metadata request (v10+),
//! so that offsets a sink stored can be told apart from a recreated topic's.
//!
//! librdkafka keeps topic ids to itself, so this asks one bootstrap broker directly (over
//! the wire client, secured as the process's Kafka properties say):
//! ApiVersions v0, then Metadata at the highest version both sides know (10 to 12).
//! A cluster older than Kafka 2.8 has no topic ids: the answer is then empty.

use crate::wire::{WireClient, WireError};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::{Request, StrBytes};
use std::collections::BTreeMap;
use std::time::Duration;

/// Why the topic ids could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TopicIdError {
    /// No bootstrap broker answered.
    #[error("no broker of {brokers} answered: {last}")]
    Unreachable {
        /// `KAFKA_BROKERS`.
        brokers: String,
        /// The last error.
        last: String,
    },
    /// A broker sent something that is not a valid answer.
    #[error("bad answer from {broker}: {message}")]
    Protocol {
        /// The broker.
        broker: String,
        /// What was wrong.
        message: String,
    },
}

/// Kafka's printed form of a topic id (URL-safe base64 without padding, as
/// `kafka-topics --describe` shows it).
pub fn format_id(id: &uuid::Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// The ids of those of `topics` that exist, by name. Empty when the cluster does not
/// know topic ids.
pub async fn fetch(
    brokers: &str,
    topics: &[String],
    timeout: Duration,
) -> Result<BTreeMap<String, String>, TopicIdError> {
    let mut last = String::from("no broker listed");
    for broker in brokers.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        match tokio::time::timeout(timeout, ask(broker, topics)).await {
            Ok(Ok(ids)) => return Ok(ids),
            Ok(Err(WireError::Protocol { message, .. })) => {
                return Err(TopicIdError::Protocol {
                    broker: broker.to_string(),
                    message,
                })
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = format!("{broker}: no answer within {timeout:?}"),
        }
    }
    Err(TopicIdError::Unreachable {
        brokers: brokers.to_string(),
        last,
    })
}

async fn ask(broker: &str, topics: &[String]) -> Result<BTreeMap<String, String>, WireError> {
    let props = agentbus_client::kafka_props::process();
    let mut client = WireClient::connect(broker, props, "agentbus-topic-ids").await?;
    let versions = client.call(0, &ApiVersionsRequest::default()).await?;
    let metadata_max = versions
        .api_keys
        .iter()
        .find(|k| k.api_key == MetadataRequest::KEY)
        .map_or(0, |k| k.max_version);
    let version = metadata_max.min(12);
    if version < 10 {
        return Ok(BTreeMap::new());
    }
    let request = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(
            topics
                .iter()
                .map(|t| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(t.clone()))))
                })
                .collect(),
        ));
    let response = client.call(version, &request).await?;
    Ok(response
        .topics
        .iter()
        .filter(|t| t.error_code == 0 && !t.topic_id.is_nil())
        .filter_map(|t| Some((t.name.as_ref()?.0.to_string(), format_id(&t.topic_id))))
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_print_as_kafka_prints_them() {
        let id = uuid::Uuid::from_bytes([
            0x5b, 0x3f, 0x59, 0x08, 0x56, 0xd3, 0x42, 0xec, 0xb9, 0xa6, 0xa9, 0x4c, 0xd2, 0x12,
            0xca, 0x6b,
        ]);
        assert_eq!(super::format_id(&id), "Wz9ZCFbTQuy5pqlM0hLKaw");
    }
}
