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
//! | `KAFKA_ACKS` | `all` | `all` (or `-1`), `1` or `0`; idempotence only with `all` |
//! | `KAFKA_TIMEOUT_MS` | `5000` | delivery deadline (the seeds' `future.get(timeout=5)`) |
//!
//! A value that makes no sense never stops a publish: the default is used and the
//! reason is kept in [`ProducerConfig::warnings`] (the CLI prints each once on stderr).
//! As in the seeds, `DEBUG` is on only for `true` (or `1`, `yes`, `on`): other values
//! (`DEBUG=express:*`, set for other tools) mean off, silently.

use std::time::Duration;

/// A setting that cannot be used as given; names the variable.
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

/// How many acknowledgements a send waits for (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// Every in-sync replica (`all`, `-1`): the only setting idempotence allows.
    All,
    /// The leader only (`1`, the seeds' low-latency tuning).
    Leader,
    /// None (`0`).
    None,
}

impl Acks {
    /// librdkafka's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Leader => "1",
            Self::None => "0",
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
    /// `acks`.
    pub acks: Acks,
    /// `enable.idempotence` (only with [`Acks::All`]). On for long-lived producers; a
    /// process that sends one event and exits turns it off, since each idempotent
    /// producer makes the cluster keep a producer id for hours (KIP-854) and the
    /// event id is the dedup key anyway.
    pub idempotent: bool,
    /// Delivery deadline of one event (`message.timeout.ms`); `publish` never waits longer.
    pub timeout: Duration,
    /// Most events the fire-and-forget path keeps in flight before refusing more.
    pub queue_capacity: usize,
    /// `client.id`.
    pub client_id: String,
    /// Further librdkafka properties, applied last.
    pub extra: Vec<(String, String)>,
    /// Values of the environment that were not used, and why (their defaults were).
    pub warnings: Vec<ConfigError>,
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
            acks: Acks::All,
            idempotent: true,
            timeout: Duration::from_secs(5),
            queue_capacity: 100_000,
            client_id: "agentbus".into(),
            extra: Vec::new(),
            warnings: Vec::new(),
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

/// `true`, `1`, `yes`, `on` (any case); anything else is false.
fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "on"
    )
}

fn parse_num<T: std::str::FromStr>(var: &'static str, v: &str) -> Result<T, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| bad(var, v, "expected a non-negative whole number"))
}

impl ProducerConfig {
    /// Reads the seeds' variables from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the variables through `get` (for tests and embedding). Never fails: a value
    /// that cannot be used leaves the default, with a warning in `warnings`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let mut c = Self::default();
        let mut warnings = Vec::new();
        let mut warn = |e: ConfigError| warnings.push(e);
        if let Some(v) = get("KAFKA_BROKERS") {
            let list: Vec<&str> = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if list.is_empty() {
                warn(bad(
                    "KAFKA_BROKERS",
                    &v,
                    "expected HOST:PORT[,HOST:PORT…]; using localhost:9092",
                ));
            } else {
                c.brokers = list.join(",");
            }
        }
        if let Some(v) = get("KAFKA_ENABLE_LOGGING") {
            c.enable_logging = is_true(&v);
            let known = ["true", "1", "yes", "on", "false", "0", "no", "off", ""];
            if !known.contains(&v.trim().to_ascii_lowercase().as_str()) {
                warn(bad(
                    "KAFKA_ENABLE_LOGGING",
                    &v,
                    "expected true or false; not true, so nothing is published",
                ));
            }
        }
        if let Some(v) = get("DEBUG") {
            c.debug = is_true(&v);
        }
        if let Some(v) = get("KAFKA_COMPRESSION") {
            match v.trim().to_ascii_lowercase().as_str() {
                "none" | "" => c.compression = Compression::None,
                "gzip" => c.compression = Compression::Gzip,
                "snappy" => c.compression = Compression::Snappy,
                "lz4" => c.compression = Compression::Lz4,
                "zstd" => c.compression = Compression::Zstd,
                _ => warn(bad(
                    "KAFKA_COMPRESSION",
                    &v,
                    "expected snappy, gzip, lz4, zstd or none; using snappy",
                )),
            }
        }
        if let Some(v) = get("KAFKA_BATCH_SIZE") {
            match parse_num::<u32>("KAFKA_BATCH_SIZE", &v) {
                Ok(n) if n > 0 => c.batch_size = n,
                _ => warn(bad(
                    "KAFKA_BATCH_SIZE",
                    &v,
                    "expected at least 1 byte; using 16384",
                )),
            }
        }
        if let Some(v) = get("KAFKA_LINGER_MS") {
            match parse_num("KAFKA_LINGER_MS", &v) {
                Ok(n) => c.linger_ms = n,
                Err(e) => warn(ConfigError {
                    problem: format!("{}; using 10", e.problem),
                    ..e
                }),
            }
        }
        if let Some(v) = get("KAFKA_RETRIES") {
            match parse_num("KAFKA_RETRIES", &v) {
                Ok(n) => c.retries = n,
                Err(e) => warn(ConfigError {
                    problem: format!("{}; using 3", e.problem),
                    ..e
                }),
            }
        }
        if let Some(v) = get("KAFKA_ACKS") {
            match v.trim().to_ascii_lowercase().as_str() {
                "all" | "-1" => c.acks = Acks::All,
                "1" => c.acks = Acks::Leader,
                "0" => c.acks = Acks::None,
                _ => warn(bad("KAFKA_ACKS", &v, "expected all, -1, 1 or 0; using all")),
            }
        }
        if let Some(v) = get("KAFKA_TIMEOUT_MS") {
            match parse_num::<u64>("KAFKA_TIMEOUT_MS", &v) {
                Ok(ms) if ms > 0 => c.timeout = Duration::from_millis(ms),
                _ => warn(bad(
                    "KAFKA_TIMEOUT_MS",
                    &v,
                    "expected at least 1 ms; using 5000",
                )),
            }
        }
        c.warnings = warnings;
        c
    }

    /// Whether sends are idempotent: asked for, and possible (acks from all replicas
    /// and at least one retry).
    pub fn idempotence(&self) -> bool {
        self.idempotent && self.acks == Acks::All && self.retries > 0
    }

    /// The librdkafka properties of this configuration.
    pub fn rdkafka_config(&self) -> rdkafka::ClientConfig {
        let mut c = crate::kafka_props::client_config();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id)
            .set("enable.idempotence", self.idempotence().to_string())
            // Java's and kafka-python's partitioner: a key lands on the same partition
            // whichever of them produced it.
            .set("partitioner", "murmur2_random")
            .set("acks", self.acks.as_str())
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

    fn from(pairs: &[(&str, &str)]) -> ProducerConfig {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProducerConfig::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_seeds() {
        let c = from(&[]);
        assert!(c.warnings.is_empty());
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
        ]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.brokers, "a:1,b:2");
        assert!(!c.enable_logging && c.debug);
        assert_eq!(c.compression, Compression::Lz4);
        assert_eq!((c.batch_size, c.linger_ms, c.retries), (65536, 0, 5));
        assert_eq!(c.timeout, Duration::from_millis(1500));
    }

    #[test]
    fn the_seeds_values_are_accepted() {
        for debug in ["express:*", "2", "maybe", ""] {
            let c = from(&[("DEBUG", debug)]);
            assert!(!c.debug && c.warnings.is_empty(), "DEBUG={debug}");
        }
        let c = from(&[("KAFKA_ACKS", "1")]);
        assert_eq!(c.acks, Acks::Leader);
        assert!(c.warnings.is_empty());
        let rd = c.rdkafka_config();
        assert_eq!(rd.get("acks"), Some("1"));
        assert_eq!(rd.get("enable.idempotence"), Some("false"));
        assert_eq!(from(&[("KAFKA_ACKS", "0")]).acks, Acks::None);
        assert_eq!(from(&[("KAFKA_ACKS", "-1")]).acks, Acks::All);
    }

    #[test]
    fn values_that_make_no_sense_warn_and_keep_the_default() {
        for (k, v) in [
            ("KAFKA_ACKS", "most"),
            ("KAFKA_COMPRESSION", "brotli"),
            ("KAFKA_BATCH_SIZE", "-1"),
            ("KAFKA_LINGER_MS", "soon"),
            ("KAFKA_TIMEOUT_MS", "0"),
            ("KAFKA_BROKERS", " , "),
            ("KAFKA_ENABLE_LOGGING", "maybe"),
        ] {
            let c = from(&[(k, v)]);
            assert_eq!(c.warnings.len(), 1, "{k}={v}");
            assert_eq!(c.warnings[0].var, k);
            assert!(c.warnings[0].to_string().starts_with(k));
        }
        let c = from(&[("KAFKA_COMPRESSION", "brotli")]);
        assert_eq!(c.compression, Compression::Snappy);
        assert!(!from(&[("KAFKA_ENABLE_LOGGING", "maybe")]).enable_logging);
        let c = from(&[("KAFKA_RETRIES", "0")]);
        assert!(c.warnings.is_empty() && !c.idempotence());
    }
}
