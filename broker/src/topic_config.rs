//! Topic-level configs (`retention.ms`, `max.message.bytes`, …): validation and the
//! effective values derived from them and the broker defaults.

use crate::config::{BrokerConfig, CompressionLevels};
use crate::log::LogConfig;
use std::collections::BTreeMap;

/// Topic configs Kafka knows that only need to be stored and reported here.
const PASSIVE: &[&str] = &[
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "message.downconversion.enable",
    "message.format.version",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.storage.enable",
    "segment.index.bytes",
    "segment.jitter.ms",
    "unclean.leader.election.enable",
];

/// The broker config whose value a topic takes when it sets none (Kafka's synonyms).
pub(crate) fn broker_synonym(name: &str) -> Option<&'static str> {
    Some(match name {
        "cleanup.policy" => "log.cleanup.policy",
        "compression.type" => "compression.type",
        "compression.gzip.level" => "compression.gzip.level",
        "compression.lz4.level" => "compression.lz4.level",
        "compression.zstd.level" => "compression.zstd.level",
        "index.interval.bytes" => "log.index.interval.bytes",
        "max.message.bytes" => "message.max.bytes",
        "message.timestamp.after.max.ms" => "log.message.timestamp.after.max.ms",
        "message.timestamp.before.max.ms" => "log.message.timestamp.before.max.ms",
        "message.timestamp.difference.max.ms" => "log.message.timestamp.difference.max.ms",
        "message.timestamp.type" => "log.message.timestamp.type",
        "min.insync.replicas" => "min.insync.replicas",
        "retention.bytes" => "log.retention.bytes",
        "retention.ms" => "log.retention.ms",
        "segment.bytes" => "log.segment.bytes",
        "segment.ms" => "log.roll.ms",
        "unclean.leader.election.enable" => "unclean.leader.election.enable",
        _ => return None,
    })
}

/// A rejected config, reported as INVALID_CONFIG with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TopicConfigError(pub String);

/// The configs set explicitly on a topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct TopicConfigs(pub BTreeMap<String, String>);

fn parse_long(name: &str, v: &str, min: i64) -> Result<i64, TopicConfigError> {
    let n: i64 = v.trim().parse().map_err(|_| {
        TopicConfigError(format!(
            "Invalid value {v} for configuration {name}: Not a number of type LONG"
        ))
    })?;
    if n < min {
        return Err(TopicConfigError(format!(
            "Invalid value {v} for configuration {name}: Value must be at least {min}"
        )));
    }
    Ok(n)
}

impl TopicConfigs {
    /// Validates one key/value pair.
    pub(crate) fn check(name: &str, value: &str) -> Result<(), TopicConfigError> {
        match name {
            "retention.ms" | "retention.bytes" => parse_long(name, value, -1).map(drop),
            "segment.bytes" => parse_long(name, value, 14).map(drop),
            "segment.ms" => parse_long(name, value, 1).map(drop),
            "max.message.bytes" => parse_long(name, value, 0).map(drop),
            "message.timestamp.after.max.ms"
            | "message.timestamp.before.max.ms"
            | "message.timestamp.difference.max.ms" => parse_long(name, value, 0).map(drop),
            "cleanup.policy" => {
                let ok = value
                    .split(',')
                    .map(str::trim)
                    .all(|p| p == "delete" || p == "compact");
                if ok && !value.trim().is_empty() {
                    Ok(())
                } else {
                    Err(TopicConfigError(format!(
                        "Invalid value {value} for configuration cleanup.policy: String must be one of: compact, delete"
                    )))
                }
            }
            "compression.type" | "compression.gzip.level" | "compression.lz4.level"
            | "compression.zstd.level" => {
                // The same names and values as the broker's configs.
                crate::broker_config::check(name, value).map_err(TopicConfigError)
            }
            "message.timestamp.type" => match value {
                "CreateTime" | "LogAppendTime" => Ok(()),
                _ => Err(TopicConfigError(format!(
                    "Invalid value {value} for configuration message.timestamp.type: String must be one of: CreateTime, LogAppendTime"
                ))),
            },
            _ if PASSIVE.contains(&name) => Ok(()),
            _ => Err(TopicConfigError(format!("Unknown topic config name: {name}"))),
        }
    }

    /// Builds validated configs from request pairs; a `None` value means "use the default".
    pub(crate) fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<Self, TopicConfigError> {
        let mut out = BTreeMap::new();
        for (k, v) in pairs {
            if let Some(v) = v {
                Self::check(k, v)?;
                out.insert(k.to_string(), v.to_string());
            }
        }
        Ok(Self(out))
    }

    fn long(&self, name: &str) -> Option<i64> {
        self.0.get(name).and_then(|v| v.trim().parse().ok())
    }

    /// The log settings this topic's partitions use.
    pub(crate) fn log_config(&self, broker: &BrokerConfig) -> LogConfig {
        let d = broker.log;
        LogConfig {
            segment_bytes: self
                .long("segment.bytes")
                .map_or(d.segment_bytes, |v| v as u64),
            segment_ms: self.long("segment.ms").unwrap_or(d.segment_ms),
            retention_ms: self.long("retention.ms").unwrap_or(d.retention_ms),
            retention_bytes: self.long("retention.bytes").unwrap_or(d.retention_bytes),
            index_interval_bytes: self
                .long("index.interval.bytes")
                .map_or(d.index_interval_bytes, |v| v.max(1) as u64),
            fsync: d.fsync,
        }
    }

    /// `max.message.bytes` in force.
    pub(crate) fn max_message_bytes(&self, broker: &BrokerConfig) -> usize {
        self.long("max.message.bytes")
            .unwrap_or(i64::from(broker.max_message_bytes))
            .max(0) as usize
    }

    /// How far in the past and in the future a CreateTime record's timestamp may be
    /// (KIP-937): `message.timestamp.before.max.ms` and `after.max.ms`, else the older
    /// `message.timestamp.difference.max.ms` for both, else the broker's defaults.
    pub(crate) fn timestamp_bounds(&self, broker: &BrokerConfig) -> (i64, i64) {
        let difference = self.long("message.timestamp.difference.max.ms");
        let before = self
            .long("message.timestamp.before.max.ms")
            .or(difference)
            .unwrap_or(broker.timestamp_before_max_ms);
        let after = self
            .long("message.timestamp.after.max.ms")
            .or(difference)
            .unwrap_or(broker.timestamp_after_max_ms);
        (before, after)
    }

    /// Whether the broker stamps timestamps (`message.timestamp.type=LogAppendTime`).
    pub(crate) fn log_append_time(&self, broker: &BrokerConfig) -> bool {
        self.0
            .get("message.timestamp.type")
            .unwrap_or(&broker.message_timestamp_type)
            == "LogAppendTime"
    }

    /// The codec batches are stored in (`compression.type`; `producer`: as they came)
    /// and the levels of the three codecs that have one.
    pub(crate) fn compression(&self, broker: &BrokerConfig) -> (String, CompressionLevels) {
        let mut levels = broker.compression_levels;
        if let Some(l) = self.long("compression.gzip.level") {
            levels.gzip = l as i32;
        }
        if let Some(l) = self.long("compression.lz4.level") {
            levels.lz4 = l as i32;
        }
        if let Some(l) = self.long("compression.zstd.level") {
            levels.zstd = l as i32;
        }
        let codec = self
            .0
            .get("compression.type")
            .unwrap_or(&broker.compression);
        (codec.clone(), levels)
    }

    /// Every config in force: explicitly set ones, then the defaults of the main ones,
    /// as (name, value, is_default), sorted by name.
    pub(crate) fn described(&self, broker: &BrokerConfig) -> Vec<(String, String, bool)> {
        let d = broker.log;
        let defaults = [
            ("cleanup.policy", broker.cleanup_policy.clone()),
            ("compression.type", broker.compression.clone()),
            ("max.message.bytes", broker.max_message_bytes.to_string()),
            (
                "message.timestamp.after.max.ms",
                broker.timestamp_after_max_ms.to_string(),
            ),
            (
                "message.timestamp.before.max.ms",
                broker.timestamp_before_max_ms.to_string(),
            ),
            (
                "message.timestamp.type",
                broker.message_timestamp_type.clone(),
            ),
            ("min.insync.replicas", "1".to_string()),
            ("retention.bytes", d.retention_bytes.to_string()),
            ("retention.ms", d.retention_ms.to_string()),
            ("segment.bytes", d.segment_bytes.to_string()),
            ("segment.ms", d.segment_ms.to_string()),
        ];
        let mut out: Vec<_> = self
            .0
            .iter()
            .map(|(k, v)| (k.clone(), v.clone(), false))
            .collect();
        for (k, v) in defaults {
            if !self.0.contains_key(k) {
                out.push((k.to_string(), v, true));
            }
        }
        out.sort();
        out
    }

    /// Whether `cleanup.policy` (else the broker's `log.cleanup.policy`) includes `compact`.
    pub(crate) fn compacted(&self, broker: &BrokerConfig) -> bool {
        self.0
            .get("cleanup.policy")
            .unwrap_or(&broker.cleanup_policy)
            .split(',')
            .any(|x| x.trim() == "compact")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_known_configs() {
        assert!(TopicConfigs::check("retention.ms", "-1").is_ok());
        assert!(TopicConfigs::check("retention.ms", "abc").is_err());
        assert!(TopicConfigs::check("cleanup.policy", "compact,delete").is_ok());
        assert!(TopicConfigs::check("cleanup.policy", "keep").is_err());
        assert!(TopicConfigs::check("no.such.config", "1").is_err());
        assert!(TopicConfigs::check("min.insync.replicas", "2").is_ok());
    }

    #[test]
    fn effective_values() {
        let b = BrokerConfig::default();
        let c = TopicConfigs::from_pairs([
            ("retention.ms", Some("1000")),
            ("max.message.bytes", Some("50")),
        ])
        .unwrap();
        assert_eq!(c.log_config(&b).retention_ms, 1000);
        assert_eq!(c.max_message_bytes(&b), 50);
        assert!(!c.log_append_time(&b));
        assert_eq!(c.timestamp_bounds(&b), (i64::MAX, 3_600_000));
        let old = TopicConfigs::from_pairs([("message.timestamp.difference.max.ms", Some("10"))])
            .unwrap();
        assert_eq!(old.timestamp_bounds(&b), (10, 10));
        let new = TopicConfigs::from_pairs([
            ("message.timestamp.difference.max.ms", Some("10")),
            ("message.timestamp.after.max.ms", Some("20")),
        ])
        .unwrap();
        assert_eq!(new.timestamp_bounds(&b), (10, 20));
        assert!(TopicConfigs::check("message.timestamp.before.max.ms", "-1").is_err());
    }
}
