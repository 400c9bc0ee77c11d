//! Dead letters: the original record plus Kafka Connect's error headers, written to
//! `<topic>-dlq`.

use crate::metrics::ErrorType;
use chrono::{SecondsFormat, Utc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use std::time::Duration;

/// Where in the pipeline a record failed (`__connect.errors.stage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Not JSON, or not the event's shape.
    Deserialize,
    /// The right shape with a wrong value.
    Validate,
    /// A processor refused it.
    Transform,
    /// The sink refused it.
    Sink,
}

impl Stage {
    /// Kafka Connect's name of the stage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Deserialize => "DESERIALIZE",
            Stage::Validate => "VALIDATE",
            Stage::Transform => "TRANSFORM",
            Stage::Sink => "SINK",
        }
    }
}

/// The DLQ topic of `topic`.
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}-dlq")
}

/// A record on its way to the DLQ.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Original key.
    pub key: Option<Vec<u8>>,
    /// Original value.
    pub value: Option<Vec<u8>>,
    /// Original headers.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Original timestamp (ms), when the record had one.
    pub timestamp: Option<i64>,
    /// What the timestamp is (`CreateTime`, `LogAppendTime`, `NoTimestamp`).
    pub timestamp_type: &'static str,
    /// Where it failed.
    pub stage: Stage,
    /// The error variant (`EventError::Decode`, …).
    pub error_class: ErrorType,
    /// The error message.
    pub message: String,
    /// Whether the DLQ has acknowledged it.
    pub(crate) sent: bool,
}

impl DeadLetter {
    /// `event_id` of the value when it has one, for the log line; else where it was.
    pub fn label(&self) -> String {
        self.value
            .as_deref()
            .and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
            .and_then(|v| v.get("event_id")?.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{}/{}@{}", self.topic, self.partition, self.offset))
    }

    /// The original headers followed by the `__connect.errors.*` ones.
    pub fn headers(&self, group: &str, processor: &str) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = self
            .headers
            .iter()
            .filter(|(k, _)| !k.starts_with("__connect.errors."))
            .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
            .collect();
        let context = [
            ("topic", self.topic.clone()),
            ("partition", self.partition.to_string()),
            ("offset", self.offset.to_string()),
            ("stage", self.stage.as_str().to_string()),
            ("class.name", format!("agentbus.consumers.{processor}")),
            (
                "exception.class.name",
                self.error_class.as_str().to_string(),
            ),
            ("exception.message", self.message.clone()),
            ("consumer.group", group.to_string()),
            (
                "timestamp",
                Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            ),
        ];
        out.extend(
            context
                .into_iter()
                .map(|(k, v)| (format!("__connect.errors.{k}"), v.into_bytes())),
        );
        out
    }
}

/// Why dead letters did not reach the DLQ.
#[derive(Debug, thiserror::Error)]
#[error("DLQ write failed for {failed} record(s): {first}")]
pub struct DlqError {
    /// How many failed.
    pub failed: usize,
    /// The first error.
    pub first: String,
}

/// The producer that writes dead letters (idempotent, acks=all).
pub struct DlqProducer {
    producer: FutureProducer,
    group: String,
    processor: String,
}

impl std::fmt::Debug for DlqProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DlqProducer")
            .field("group", &self.group)
            .finish()
    }
}

impl DlqProducer {
    /// A producer for `brokers`.
    pub fn new(brokers: &str, group: &str, processor: &str) -> rdkafka::error::KafkaResult<Self> {
        let producer = agentbus_client::kafka_props::client_config()
            .set("bootstrap.servers", brokers)
            .set("client.id", format!("agentbus-{processor}-dlq"))
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .create()?;
        Ok(Self {
            producer,
            group: group.to_string(),
            processor: processor.to_string(),
        })
    }

    /// Writes the unsent letters and waits for every acknowledgement; marks the ones
    /// written. Fails if any was not written (those stay unsent for the next try).
    pub async fn send(&self, letters: &mut [DeadLetter]) -> Result<usize, DlqError> {
        let mut pending = Vec::new();
        let mut failed = 0;
        let mut first = None;
        for (i, letter) in letters.iter().enumerate().filter(|(_, l)| !l.sent) {
            let mut headers = OwnedHeaders::new();
            for (k, v) in letter.headers(&self.group, &self.processor) {
                headers = headers.insert(Header {
                    key: &k,
                    value: Some(&v),
                });
            }
            let topic = dlq_topic(&letter.topic);
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&topic).headers(headers);
            if let Some(k) = letter.key.as_deref() {
                record = record.key(k);
            }
            if let Some(v) = letter.value.as_deref() {
                record = record.payload(v);
            }
            if let Some(ts) = letter.timestamp {
                record = record.timestamp(ts);
            }
            match self.producer.send_result(record) {
                Ok(delivery) => pending.push((i, delivery)),
                Err((e, _)) => {
                    failed += 1;
                    first.get_or_insert_with(|| e.to_string());
                }
            }
        }
        let mut sent = 0;
        for (i, delivery) in pending {
            match delivery.await {
                Ok(Ok(_)) => {
                    letters[i].sent = true;
                    sent += 1;
                }
                Ok(Err((e, _))) => {
                    failed += 1;
                    first.get_or_insert_with(|| e.to_string());
                }
                Err(_) => {
                    failed += 1;
                    first.get_or_insert_with(|| "delivery cancelled".to_string());
                }
            }
        }
        match first {
            None => Ok(sent),
            Some(first) => Err(DlqError { failed, first }),
        }
    }
}

/// Creates the `<topic>-dlq` topics that do not exist yet (broker defaults for
/// partitions and replication).
pub async fn ensure_topics(brokers: &str, topics: &[String]) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = agentbus_client::kafka_props::client_config()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| e.to_string())?;
    let names: Vec<String> = topics.iter().map(|t| dlq_topic(t)).collect();
    let new: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| NewTopic::new(n, -1, TopicReplication::Fixed(-1)))
        .collect();
    let options =
        AdminOptions::new().operation_timeout(Some(Timeout::After(Duration::from_secs(10))));
    let results = admin
        .create_topics(&new, &options)
        .await
        .map_err(|e| e.to_string())?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(format!("{topic}: {code}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_kafka_connect() {
        let letter = DeadLetter {
            topic: "agent-actions".into(),
            partition: 3,
            offset: 42,
            key: Some(b"k".to_vec()),
            value: Some(br#"{"event_id":"e1"}"#.to_vec()),
            headers: vec![("trace".into(), Some(b"t".to_vec()))],
            timestamp: Some(1),
            timestamp_type: "CreateTime",
            stage: Stage::Validate,
            error_class: ErrorType::Invalid,
            message: "confidence_score: 2 is outside 0..=1".into(),
            sent: false,
        };
        let headers = letter.headers("db-writer-group", "db-writer");
        let get = |k: &str| {
            headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(headers[0].0, "trace");
        assert_eq!(
            get("__connect.errors.topic").as_deref(),
            Some("agent-actions")
        );
        assert_eq!(get("__connect.errors.partition").as_deref(), Some("3"));
        assert_eq!(get("__connect.errors.offset").as_deref(), Some("42"));
        assert_eq!(get("__connect.errors.stage").as_deref(), Some("VALIDATE"));
        assert_eq!(
            get("__connect.errors.exception.class.name").as_deref(),
            Some("EventError::Invalid")
        );
        assert_eq!(
            get("__connect.errors.consumer.group").as_deref(),
            Some("db-writer-group")
        );
        assert!(get("__connect.errors.timestamp")
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(&t).is_ok()));
        assert_eq!(letter.label(), "e1");
        assert_eq!(dlq_topic("agent-actions"), "agent-actions-dlq");
    }
}
