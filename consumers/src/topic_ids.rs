//! Topic ids (KIP-516) of the topics a group reads, from a Metadata request (v10+),
//! so that offsets a sink stored can be told apart from a recreated topic's.
//!
//! librdkafka keeps topic ids to itself, so this asks one bootstrap broker directly:
//! ApiVersions v0, then Metadata at the highest version both sides know (10 to 12).
//! A cluster older than Kafka 2.8 has no topic ids: the answer is then empty.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
            Ok(Err(Failure::Io(e))) => last = format!("{broker}: {e}"),
            Ok(Err(Failure::Protocol(message))) => {
                return Err(TopicIdError::Protocol {
                    broker: broker.to_string(),
                    message,
                })
            }
            Err(_) => last = format!("{broker}: no answer within {timeout:?}"),
        }
    }
    Err(TopicIdError::Unreachable {
        brokers: brokers.to_string(),
        last,
    })
}

enum Failure {
    Io(std::io::Error),
    Protocol(String),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Io(e)
    }
}

fn protocol(e: impl std::fmt::Display) -> Failure {
    Failure::Protocol(e.to_string())
}

async fn ask(broker: &str, topics: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    let mut stream = TcpStream::connect(broker).await?;
    let versions: ApiVersionsResponse =
        call(&mut stream, 1, 0, &ApiVersionsRequest::default()).await?;
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
    let response: MetadataResponse = call(&mut stream, 2, version, &request).await?;
    Ok(response
        .topics
        .iter()
        .filter(|t| t.error_code == 0 && !t.topic_id.is_nil())
        .filter_map(|t| Some((t.name.as_ref()?.0.to_string(), format_id(&t.topic_id))))
        .collect())
}

async fn call<R: Request>(
    stream: &mut TcpStream,
    correlation_id: i32,
    version: i16,
    request: &R,
) -> Result<R::Response, Failure> {
    let api = ApiKey::try_from(R::KEY).map_err(|()| protocol("unknown api key"))?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("agentbus-topic-ids")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, api.request_header_version(version))
        .map_err(protocol)?;
    request.encode(&mut body, version).map_err(protocol)?;
    let mut frame = BytesMut::with_capacity(body.len() + 4);
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await?;
    let len = stream.read_i32().await?;
    if !(0..=64 << 20).contains(&len) {
        return Err(protocol(format!("a response of {len} bytes")));
    }
    let mut buf = vec![0u8; len as usize];
    stream.read_exact(&mut buf).await?;
    let mut buf = Bytes::from(buf);
    let header =
        ResponseHeader::decode(&mut buf, api.response_header_version(version)).map_err(protocol)?;
    if header.correlation_id != correlation_id {
        return Err(protocol("correlation id of another request"));
    }
    let response = R::Response::decode(&mut buf, version).map_err(protocol)?;
    if buf.has_remaining() {
        return Err(protocol("trailing bytes"));
    }
    Ok(response)
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
