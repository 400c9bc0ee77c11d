//! Broker settings. The CLI fills them from flags, `AGENTBUS_*` variables and a TOML file.

use crate::log::LogConfig;
pub use acl_rules::{operation_code, operation_name, parse_acl, parse_resource, AclRule};
pub use ip_overrides::IpOverrides;
pub use security::{
    parse_authorizer, parse_listener_mechanisms, parse_mechanisms, parse_scram_users,
    parse_super_users, ClientAuth, Listener, Mechanism, SecurityConfig, SecurityProtocol,
};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub(crate) mod acl_rules;
mod ip_overrides;
mod security;

/// Where partition data and metadata live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// Everything in memory; gone when the broker stops.
    Memory,
    /// Segment files and a metadata database under this directory.
    Disk(PathBuf),
}

impl StorageConfig {
    /// One setting for the log and the metadata store together, as a URL (as Tansu picks
    /// its engine): `memory://`, or `file://DIR` (a relative DIR too: `file://data`).
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let bad = |why: &str| ConfigError::new("storage", format!("`{url}`: {why}"));
        match url.split_once("://") {
            Some(("memory", "")) => Ok(Self::Memory),
            Some(("memory", _)) => Err(bad("`memory://` takes no path")),
            Some(("file", "")) => Err(bad(
                "`file://` needs a directory, as `file:///var/lib/agentbus`",
            )),
            Some(("file", dir)) => Ok(Self::Disk(PathBuf::from(dir))),
            _ => Err(bad("expected `memory://` or `file://DIR`")),
        }
    }

    /// The setting as a URL, as [`StorageConfig::from_url`] reads it.
    pub fn url(&self) -> String {
        match self {
            Self::Memory => "memory://".into(),
            Self::Disk(dir) => format!("file://{}", dir.display()),
        }
    }
}

/// Everything a broker needs to start.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// This broker's node id (`node.id`).
    pub node_id: i32,
    /// Address to listen on; port 0 picks a free one.
    pub listen: String,
    /// `host:port` given to clients in Metadata; defaults to the bound address.
    pub advertise: Option<String>,
    /// Storage backend.
    pub storage: StorageConfig,
    /// Cluster id reported in Metadata (`cluster.id`).
    pub cluster_id: String,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `num.partitions`: partitions of a topic created without a count.
    pub default_partitions: i32,
    /// `message.max.bytes`: default for a topic's `max.message.bytes`.
    pub max_message_bytes: i32,
    /// `socket.request.max.bytes`: a larger frame closes the connection.
    pub max_request_bytes: usize,
    /// `fetch.max.bytes`: the most record bytes one fetch response carries, whatever
    /// the client asks (it still gets at least one batch).
    pub fetch_max_bytes: usize,
    /// Most bytes one batch may decompress to where the broker reads its records (keys
    /// of compacted topics, compaction, ListOffsets by time); a batch beyond is refused.
    pub max_decompressed_bytes: usize,
    /// Defaults for topics' segment and retention settings.
    pub log: LogConfig,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval: Duration,
    /// Consumer-group coordinator settings.
    pub group: GroupConfig,
    /// `transaction.max.timeout.ms`: the largest `transaction.timeout.ms` a producer may ask.
    pub transaction_max_timeout_ms: i32,
    /// `log.message.timestamp.before.max.ms`: how far in the past a CreateTime record's
    /// timestamp may be (unbounded by default).
    pub timestamp_before_max_ms: i64,
    /// `log.message.timestamp.after.max.ms`: how far in the future (one hour by default,
    /// as from Kafka 4.0).
    pub timestamp_after_max_ms: i64,
    /// `log.cleanup.policy`: a topic's `cleanup.policy` when it sets none.
    pub cleanup_policy: String,
    /// `log.message.timestamp.type`: `CreateTime` or `LogAppendTime`.
    pub message_timestamp_type: String,
    /// `compression.type`: the codec batches are stored in (`producer`: as they came).
    pub compression: String,
    /// `compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level`.
    pub compression_levels: CompressionLevels,
    /// Strict mode: requests for APIs or versions agentbus does not implement are
    /// answered as Kafka would and recorded as violations (and logged).
    pub strict: bool,
    /// `max.connections`: connections one presented broker keeps open; beyond it, new ones
    /// wait to be accepted until one closes (as Kafka's acceptor waits).
    pub max_connections: usize,
    /// `max.connections.per.ip`: connections from one address; beyond it, a new one is
    /// closed at once and counted.
    pub max_connections_per_ip: usize,
    /// `max.connections.per.ip.overrides`: other limits for some addresses.
    pub max_connections_per_ip_overrides: IpOverrides,
    /// The process's log levels, which BROKER_LOGGER configs read and change; none: the
    /// broker does not manage them (an embedded broker, whose host owns its logging).
    pub log_levels: Option<Arc<dyn LogLevels>>,
    /// Present the ApiVersions and behaviour of this Kafka release (`2.8`, `3.9`, `4.0`, …);
    /// none: the newest.
    pub as_kafka: Option<String>,
    /// Listeners with their security protocols, TLS files, SASL, authorization.
    pub security: SecurityConfig,
}

/// Compression levels by codec (KIP-390), Kafka's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionLevels {
    /// 1–9, or -1 for the codec's default (6).
    pub gzip: i32,
    /// 1–17.
    pub lz4: i32,
    /// -131072–22.
    pub zstd: i32,
}

impl Default for CompressionLevels {
    fn default() -> Self {
        Self {
            gzip: -1,
            lz4: 9,
            zstd: 3,
        }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            listen: "127.0.0.1:9092".into(),
            advertise: None,
            storage: StorageConfig::Memory,
            cluster_id: "agentbus-cluster".into(),
            auto_create_topics: true,
            default_partitions: 1,
            max_message_bytes: 1_048_588,
            max_request_bytes: 100 * 1024 * 1024,
            fetch_max_bytes: 55 * 1024 * 1024,
            max_decompressed_bytes: crate::log::records::DEFAULT_MAX_DECOMPRESSED_BYTES,
            log: LogConfig::default(),
            retention_check_interval: Duration::from_secs(300),
            group: GroupConfig::default(),
            transaction_max_timeout_ms: 900_000,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3_600_000,
            cleanup_policy: "delete".into(),
            message_timestamp_type: "CreateTime".into(),
            compression: "producer".into(),
            compression_levels: CompressionLevels::default(),
            strict: false,
            as_kafka: None,
            log_levels: None,
            max_connections: i32::MAX as usize,
            max_connections_per_ip: i32::MAX as usize,
            max_connections_per_ip_overrides: IpOverrides::default(),
            security: SecurityConfig::default(),
        }
    }
}

/// Log levels a process lets its broker read and change (Kafka's BROKER_LOGGER resource):
/// `root` and loggers by name, levels by Kafka's names (`DEBUG`, `INFO`, …).
pub trait LogLevels: Send + Sync + std::fmt::Debug {
    /// Every logger with a level, `root` first.
    fn loggers(&self) -> Vec<(String, String)>;
    /// Sets a logger's level, or (`None`) lets it follow `root` again.
    fn set(&self, logger: &str, level: Option<&str>) -> Result<(), String>;
}

/// A setting that cannot be used; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting `{setting}`: {reason}")]
pub struct ConfigError {
    pub setting: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}

/// The optional TOML file: every key optional, names as the CLI flags (with underscores).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub node_id: Option<i32>,
    pub listen: Option<String>,
    pub advertise: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub memory: Option<bool>,
    pub storage: Option<String>,
    pub cluster_id: Option<String>,
    pub auto_create_topics: Option<bool>,
    pub default_partitions: Option<i32>,
    pub max_message_bytes: Option<i32>,
    pub max_request_bytes: Option<usize>,
    pub fetch_max_bytes: Option<usize>,
    pub segment_bytes: Option<u64>,
    pub segment_ms: Option<i64>,
    pub retention_ms: Option<i64>,
    pub retention_bytes: Option<i64>,
    pub retention_check_interval_ms: Option<u64>,
    pub fsync: Option<String>,
    pub group_initial_rebalance_delay_ms: Option<u64>,
    pub strict: Option<bool>,
    pub brokers: Option<u16>,
    pub as_kafka: Option<String>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub max_connections_per_ip_overrides: Option<String>,
    pub listeners: Option<String>,
    pub advertised_listeners: Option<String>,
    pub listener_security_protocol_map: Option<String>,
    pub ssl_certificate_location: Option<PathBuf>,
    pub ssl_key_location: Option<PathBuf>,
    pub ssl_ca_location: Option<PathBuf>,
    pub ssl_client_auth: Option<String>,
    pub ssl_principal_mapping_rules: Option<String>,
    pub sasl_enabled_mechanisms: Option<String>,
    pub listener_sasl_enabled_mechanisms: Option<String>,
    pub connections_max_reauth_ms: Option<i64>,
    pub connection_failed_authentication_delay_ms: Option<u64>,
    pub authentication_timeout_ms: Option<u64>,
    pub scram_users: Option<String>,
    pub authorizer_class_name: Option<String>,
    pub super_users: Option<String>,
    pub allow_everyone_if_no_acl_found: Option<bool>,
    pub acl: Option<Vec<String>>,
    /// Address of the control API (`agentbus broker --control`).
    pub control: Option<String>,
}

impl BrokerConfig {
    /// Checks values that would otherwise fail later and less clearly.
    /// `max.connections.per.ip` for `ip`: its override, if it has one.
    pub fn max_connections_from(&self, ip: std::net::IpAddr) -> usize {
        self.max_connections_per_ip_overrides
            .limit(ip, self.max_connections_per_ip)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.default_partitions < 1 {
            return Err(ConfigError::new("default-partitions", "must be at least 1"));
        }
        if self.max_message_bytes < 0 {
            return Err(ConfigError::new(
                "max-message-bytes",
                "must not be negative",
            ));
        }
        if self.max_request_bytes < 1024 {
            return Err(ConfigError::new(
                "max-request-bytes",
                "must be at least 1024",
            ));
        }
        if self.fetch_max_bytes < 1024 {
            return Err(ConfigError::new("fetch-max-bytes", "must be at least 1024"));
        }
        if self.log.segment_bytes < 14 {
            return Err(ConfigError::new("segment-bytes", "must be at least 14"));
        }
        if self.log.segment_ms < 1 {
            return Err(ConfigError::new("segment-ms", "must be at least 1"));
        }
        if self.log.retention_ms < -1 {
            return Err(ConfigError::new("retention-ms", "must be -1 or more"));
        }
        if self.log.retention_bytes < -1 {
            return Err(ConfigError::new("retention-bytes", "must be -1 or more"));
        }
        if let Some(v) = &self.as_kafka {
            if crate::protocol::releases::release(v).is_none() {
                return Err(ConfigError::new(
                    "as-kafka",
                    format!(
                        "`{v}` is not a release agentbus can present; one of {}",
                        crate::protocol::releases::names().join(", ")
                    ),
                ));
            }
        }
        if let Some(adv) = &self.advertise {
            parse_host_port(adv).map_err(|r| ConfigError::new("advertise", r))?;
        }
        let listeners = self.listeners()?;
        self.security.validate(&listeners)
    }

    /// The listeners: `security.listeners`, else one PLAINTEXT listener on `listen`.
    pub fn listeners(&self) -> Result<Vec<Listener>, ConfigError> {
        self.security
            .listeners(&self.listen, self.advertise.as_deref())
    }
}

/// Splits `host:port`, accepting `[v6]:port`.
pub(crate) fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("`{s}` is not host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{port}` in `{s}` is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("`{s}` has no host"));
    }
    Ok((host.to_string(), port))
}

/// Coordinator settings (Kafka's `group.*` and `offsets.*` broker configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout: Duration,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout: Duration,
    /// `offsets.retention.minutes`: committed offsets of an empty group expire after this.
    pub offsets_retention: Duration,
    /// `offset.metadata.max.bytes`.
    pub max_metadata_bytes: usize,
    /// `group.consumer.session.timeout.ms` (KIP-848 groups).
    pub consumer_session_timeout: Duration,
    /// `group.consumer.heartbeat.interval.ms` (KIP-848 groups).
    pub consumer_heartbeat_interval: Duration,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            initial_rebalance_delay: Duration::from_millis(3000),
            min_session_timeout: Duration::from_millis(6000),
            max_session_timeout: Duration::from_millis(1_800_000),
            offsets_retention: Duration::from_secs(7 * 24 * 3600),
            max_metadata_bytes: 4096,
            consumer_session_timeout: Duration::from_millis(45_000),
            consumer_heartbeat_interval: Duration::from_millis(5_000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_urls_round_trip_and_bad_ones_name_the_setting() {
        for url in ["memory://", "file:///var/lib/agentbus", "file://data"] {
            assert_eq!(StorageConfig::from_url(url).unwrap().url(), url);
        }
        assert_eq!(
            StorageConfig::from_url("file:///x").unwrap(),
            StorageConfig::Disk(PathBuf::from("/x"))
        );
        for bad in ["memory://x", "file://", "/var/lib", "s3://bucket"] {
            let e = StorageConfig::from_url(bad).unwrap_err();
            assert_eq!(e.setting, "storage", "{bad}");
        }
    }
}
