//! Settings of the runtime, shared by every consumer group.

use crate::start::StartFrom;
use std::net::SocketAddr;
use std::time::Duration;

/// A setting that stops start-up; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct ConfigError {
    /// The flag or environment variable, e.g. `BATCH_SIZE`.
    pub setting: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// A new error about `setting`.
    pub fn new(setting: &'static str, message: impl Into<String>) -> Self {
        Self {
            setting,
            message: message.into(),
        }
    }
}

/// What every consumer process needs.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// `KAFKA_BROKERS`: comma-separated `host:port` list.
    pub brokers: String,
    /// `CONSUMER_GROUP_ID`.
    pub group_id: String,
    /// Topics to consume.
    pub topics: Vec<String>,
    /// The processor's name (`db-writer`), for logs, client ids and DLQ headers.
    pub processor: String,
    /// `BATCH_SIZE`: events per sink write.
    pub batch_size: usize,
    /// `BATCH_TIMEOUT_MS` (alias `MAX_LATENCY_MS`): longest a batch waits to fill.
    pub batch_timeout: Duration,
    /// How long shutdown may take to flush and commit.
    pub drain_timeout: Duration,
    /// Where `/health`, `/ready` and `/metrics` are served (port 8080 by default).
    pub http_addr: SocketAddr,
    /// `session.timeout.ms` of the group membership.
    pub session_timeout_ms: u32,
    /// Extra librdkafka properties (`key=value`), applied last.
    pub kafka_properties: Vec<(String, String)>,
    /// `START_FROM`: where a partition the sink holds nothing of starts.
    pub start_from: StartFrom,
    /// `--reset-sink-offsets`: topics whose stored offsets are forgotten at start-up.
    pub reset_sink_offsets: Vec<String>,
    /// Topics among `topics` that carry another topic's events (a repartition topic):
    /// their records are decoded as that topic's.
    pub carriers: Vec<(String, agentbus_client::Topic)>,
    /// Topics among `topics` whose records name their event's topic in the
    /// `agentbus-topic` header (a repartition topic that carries several).
    pub tagged: Vec<String>,
}

impl RuntimeConfig {
    /// Defaults from the seeds and CONVENTIONS: batch 100 / 500 ms, 10 s sessions,
    /// a 30 s drain, HTTP on 0.0.0.0:8080.
    pub fn new(
        brokers: impl Into<String>,
        group_id: impl Into<String>,
        topics: Vec<String>,
        processor: impl Into<String>,
    ) -> Self {
        Self {
            brokers: brokers.into(),
            group_id: group_id.into(),
            topics,
            processor: processor.into(),
            batch_size: 100,
            batch_timeout: Duration::from_millis(500),
            drain_timeout: Duration::from_secs(30),
            http_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            session_timeout_ms: 10_000,
            kafka_properties: Vec::new(),
            start_from: StartFrom::Earliest,
            reset_sink_offsets: Vec::new(),
            carriers: Vec::new(),
            tagged: Vec::new(),
        }
    }

    /// Checks the values that a typo can break.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.brokers.trim().is_empty() {
            return Err(ConfigError::new("KAFKA_BROKERS", "is empty"));
        }
        if let Some(bad) = self.brokers.split(',').map(str::trim).find(|b| {
            b.rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        }) {
            return Err(ConfigError::new(
                "KAFKA_BROKERS",
                format!("{bad:?} is not host:port"),
            ));
        }
        if self.group_id.trim().is_empty() {
            return Err(ConfigError::new("CONSUMER_GROUP_ID", "is empty"));
        }
        if self.topics.is_empty() {
            return Err(ConfigError::new("topics", "no topic to consume"));
        }
        if self.batch_size == 0 || self.batch_size > 100_000 {
            return Err(ConfigError::new(
                "BATCH_SIZE",
                format!("{} is outside 1..=100000", self.batch_size),
            ));
        }
        if self.batch_timeout.is_zero() {
            return Err(ConfigError::new("BATCH_TIMEOUT_MS", "must be at least 1"));
        }
        if !(1_000..=3_600_000).contains(&self.session_timeout_ms) {
            return Err(ConfigError::new(
                "session.timeout.ms",
                format!("{} is outside 1000..=3600000", self.session_timeout_ms),
            ));
        }
        if let Some(t) = self
            .reset_sink_offsets
            .iter()
            .find(|t| !self.topics.contains(t))
        {
            return Err(ConfigError::new(
                "--reset-sink-offsets",
                format!("{t:?} is not a topic this group reads"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RuntimeConfig {
        RuntimeConfig::new("localhost:9092", "g", vec!["t".into()], "test")
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(config().validate(), Ok(()));
    }

    #[test]
    fn bad_values_name_the_setting() {
        let mut c = config();
        c.brokers = "localhost".into();
        assert_eq!(c.validate().map_err(|e| e.setting), Err("KAFKA_BROKERS"));
        let mut c = config();
        c.batch_size = 0;
        assert_eq!(c.validate().map_err(|e| e.setting), Err("BATCH_SIZE"));
        let mut c = config();
        c.group_id = " ".into();
        assert_eq!(
            c.validate().map_err(|e| e.setting),
            Err("CONSUMER_GROUP_ID")
        );
    }
}
