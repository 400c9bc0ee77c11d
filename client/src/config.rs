//! Producer settings from the seeds' environment variables ("Skill Configuration").
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `KAFKA_BROKERS` | `localhost:9092` | comma-separated bootstrap servers |
//! | `KAFKA_ENABLE_LOGGING` | `true` | master switch: `false` publishes nothing |
//! | `DEBUG` | `false` | print delivery details to stderr |
//! | `KAFKA_COMPRESSION` | `snappy` | `snappy`, `gzip`, `lz4`, `zstd` or `none` |
//! | `KAFKA_BATCH_SIZE` | `16384` | bytes per batch |
//! | `KAFKA_LINGER_MS` | `10` | longest wait to fill a batch |
//! | `KAFKA_RETRIES` | `3` | retries of a failed send |
//! | `KAFKA_ACKS` | `all` | `all` (or `-1`); idempotence needs it |
//! | `KAFKA_TIMEOUT_MS` | `5000` | delivery deadline (the seeds' `future.get(timeout=5)`) |

use std::time::Duration;

/// A setting that cannot be used; names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}={value:?}: {problem}")]
pub struct ConfigError {
    /// The environment variable (or setting) name.
    pub var: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Record-batch compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy (the seeds' default).
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// librdkafka's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

/// Producer settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerConfig {
    /// Bootstrap servers, `HOST:PORT[,HOST:PORT…]`.
    pub brokers: String,
    /// When false, publishing succeeds without touching the network.
    pub enable_logging: bool,
    /// Print delivery details to stderr (used by the CLI).
    pub debug: bool,
    /// Batch compression.
    pub compression: Compression,
    /// `batch.size` in bytes.
    pub batch_size: u32,
    /// `linger.ms`.
    pub linger_ms: u32,
    /// `retries`.
    pub retries: u32,
    /// Delivery deadline of one event (`message.timeout.ms`); `publish` never waits longer.
    pub timeout: Duration,
    /// Most events the fire-and-forget path keeps in flight before refusing more.
    pub queue_capacity: usize,
    /// `client.id`.
    pub client_id: String,
    /// Further librdkafka properties, applied last.
    pub extra: Vec<(String, String)>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            brokers: "localhost:9092".into(),
            enable_logging: true,
            debug: false,
            compression: Compression::Snappy,
            batch_size: 16_384,
            linger_ms: 10,
            retries: 3,
            timeout: Duration::from_secs(5),
            queue_capacity: 100_000,
            client_id: "agentbus".into(),
            extra: Vec::new(),
        }
    }
}

fn bad(var: &'static str, value: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        value: value.to_string(),
        problem: problem.into(),
    }
}

fn parse_bool(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(bad(var, v, "expected true or false")),
    }
}

fn parse_num<T: std::str::FromStr>(var: &'static str, v: &str) -> Result<T, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| bad(var, v, "expected a non-negative whole number"))
}

impl ProducerConfig {
    /// Reads the seeds' variables from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the variables through `get` (for tests and embedding).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut c = Self::default();
        if let Some(v) = get("KAFKA_BROKERS") {
            let list: Vec<&str> = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if list.is_empty() {
                return Err(bad("KAFKA_BROKERS", &v, "expected HOST:PORT[,HOST:PORT…]"));
            }
            c.brokers = list.join(",");
        }
        if let Some(v) = get("KAFKA_ENABLE_LOGGING") {
            c.enable_logging = parse_bool("KAFKA_ENABLE_LOGGING", &v)?;
        }
        if let Some(v) = get("DEBUG") {
            c.debug = parse_bool("DEBUG", &v)?;
        }
        if let Some(v) = get("KAFKA_COMPRESSION") {
            c.compression = match v.trim().to_ascii_lowercase().as_str() {
                "none" | "" => Compression::None,
                "gzip" => Compression::Gzip,
                "snappy" => Compression::Snappy,
                "lz4" => Compression::Lz4,
                "zstd" => Compression::Zstd,
                _ => {
                    return Err(bad(
                        "KAFKA_COMPRESSION",
                        &v,
                        "expected snappy, gzip, lz4, zstd or none",
                    ))
                }
            };
        }
        if let Some(v) = get("KAFKA_BATCH_SIZE") {
            c.batch_size = parse_num("KAFKA_BATCH_SIZE", &v)?;
            if c.batch_size == 0 {
                return Err(bad("KAFKA_BATCH_SIZE", &v, "must be at least 1"));
            }
        }
        if let Some(v) = get("KAFKA_LINGER_MS") {
            c.linger_ms = parse_num("KAFKA_LINGER_MS", &v)?;
        }
        if let Some(v) = get("KAFKA_RETRIES") {
            c.retries = parse_num("KAFKA_RETRIES", &v)?;
            if c.retries == 0 {
                return Err(bad(
                    "KAFKA_RETRIES",
                    &v,
                    "must be at least 1: the producer is idempotent (enable.idempotence=true)",
                ));
            }
        }
        if let Some(v) = get("KAFKA_ACKS") {
            if !matches!(v.trim().to_ascii_lowercase().as_str(), "all" | "-1") {
                return Err(bad(
                    "KAFKA_ACKS",
                    &v,
                    "must be all: the producer is idempotent (enable.idempotence=true), which needs acks from all in-sync replicas",
                ));
            }
        }
        if let Some(v) = get("KAFKA_TIMEOUT_MS") {
            let ms: u64 = parse_num("KAFKA_TIMEOUT_MS", &v)?;
            if ms == 0 {
                return Err(bad("KAFKA_TIMEOUT_MS", &v, "must be at least 1"));
            }
            c.timeout = Duration::from_millis(ms);
        }
        Ok(c)
    }

    /// The librdkafka properties of this configuration.
    pub fn rdkafka_config(&self) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id)
            .set("enable.idempotence", "true")
            // Java's and kafka-python's partitioner: a key lands on the same partition
            // whichever of them produced it.
            .set("partitioner", "murmur2_random")
            .set("acks", "all")
            .set("retries", self.retries.to_string())
            .set("compression.codec", self.compression.as_str())
            .set("batch.size", self.batch_size.to_string())
            .set("linger.ms", self.linger_ms.to_string())
            .set(
                "message.timeout.ms",
                self.timeout
                    .as_millis()
                    .clamp(1, i32::MAX as u128)
                    .to_string(),
            );
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<ProducerConfig, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProducerConfig::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_seeds() {
        let c = from(&[]).unwrap();
        assert_eq!(c.brokers, "localhost:9092");
        assert!(c.enable_logging && !c.debug);
        assert_eq!(c.compression, Compression::Snappy);
        assert_eq!((c.batch_size, c.linger_ms, c.retries), (16384, 10, 3));
        assert_eq!(c.timeout, Duration::from_secs(5));
        let rd = c.rdkafka_config();
        assert_eq!(rd.get("enable.idempotence"), Some("true"));
        assert_eq!(rd.get("acks"), Some("all"));
        assert_eq!(rd.get("compression.codec"), Some("snappy"));
        assert_eq!(rd.get("message.timeout.ms"), Some("5000"));
    }

    #[test]
    fn reads_every_variable() {
        let c = from(&[
            ("KAFKA_BROKERS", "a:1, b:2"),
            ("KAFKA_ENABLE_LOGGING", "false"),
            ("DEBUG", "TRUE"),
            ("KAFKA_COMPRESSION", "lz4"),
            ("KAFKA_BATCH_SIZE", "65536"),
            ("KAFKA_LINGER_MS", "0"),
            ("KAFKA_RETRIES", "5"),
            ("KAFKA_ACKS", "all"),
            ("KAFKA_TIMEOUT_MS", "1500"),
        ])
        .unwrap();
        assert_eq!(c.brokers, "a:1,b:2");
        assert!(!c.enable_logging && c.debug);
        assert_eq!(c.compression, Compression::Lz4);
        assert_eq!((c.batch_size, c.linger_ms, c.retries), (65536, 0, 5));
        assert_eq!(c.timeout, Duration::from_millis(1500));
    }

    #[test]
    fn errors_name_the_variable() {
        for (k, v) in [
            ("KAFKA_ACKS", "1"),
            ("KAFKA_RETRIES", "0"),
            ("KAFKA_COMPRESSION", "brotli"),
            ("KAFKA_BATCH_SIZE", "-1"),
            ("DEBUG", "maybe"),
            ("KAFKA_BROKERS", " , "),
        ] {
            let e = from(&[(k, v)]).unwrap_err();
            assert_eq!(e.var, k);
            assert!(e.to_string().starts_with(k), "{e}");
        }
    }
}
