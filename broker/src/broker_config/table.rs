//! The table of broker configs: those that change what the broker does, then those it
//! only keeps, then the read-only ones it reports.

use super::{Check, Def, Type, Update};
use crate::config::IpOverrides;

const CODECS: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const POLICIES: &[&str] = &["compact", "delete"];
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

fn int(v: &str) -> i64 {
    v.trim().parse().unwrap_or_default()
}

macro_rules! def {
    ($name:literal, $kind:ident, $update:expr, $check:expr, $value:expr) => {
        Def {
            name: $name,
            kind: Type::$kind,
            update: $update,
            check: $check,
            value: $value,
        }
    };
}

pub(super) const DEFS: &[Def] = &[
    def!(
        "message.max.bytes",
        Int,
        Update::Applied(|c, v| c.max_message_bytes = int(v) as i32),
        Check::Range(0, i32::MAX as i64),
        Some(|c| c.max_message_bytes.to_string())
    ),
    def!(
        "log.retention.ms",
        Long,
        Update::Applied(|c, v| c.log.retention_ms = int(v)),
        Check::Range(-1, i64::MAX),
        Some(|c| c.log.retention_ms.to_string())
    ),
    def!(
        "log.retention.bytes",
        Long,
        Update::Applied(|c, v| c.log.retention_bytes = int(v)),
        Check::Range(-1, i64::MAX),
        Some(|c| c.log.retention_bytes.to_string())
    ),
    def!(
        "log.segment.bytes",
        Int,
        Update::Applied(|c, v| c.log.segment_bytes = int(v) as u64),
        Check::Range(14, i32::MAX as i64),
        Some(|c| c.log.segment_bytes.to_string())
    ),
    def!(
        "log.roll.ms",
        Long,
        Update::Applied(|c, v| c.log.segment_ms = int(v)),
        Check::Range(1, i64::MAX),
        Some(|c| c.log.segment_ms.to_string())
    ),
    def!(
        "log.index.interval.bytes",
        Int,
        Update::Applied(|c, v| c.log.index_interval_bytes = int(v).max(1) as u64),
        Check::Range(0, i32::MAX as i64),
        Some(|c| c.log.index_interval_bytes.to_string())
    ),
    def!(
        "log.cleanup.policy",
        List,
        Update::Applied(|c, v| c.cleanup_policy = v.to_string()),
        Check::ListOf(POLICIES),
        Some(|c| c.cleanup_policy.clone())
    ),
    def!(
        "log.message.timestamp.type",
        String,
        Update::Applied(|c, v| c.message_timestamp_type = v.to_string()),
        Check::OneOf(TIMESTAMP_TYPES),
        Some(|c| c.message_timestamp_type.clone())
    ),
    def!(
        "log.message.timestamp.before.max.ms",
        Long,
        Update::Applied(|c, v| c.timestamp_before_max_ms = int(v)),
        Check::Range(0, i64::MAX),
        Some(|c| c.timestamp_before_max_ms.to_string())
    ),
    def!(
        "log.message.timestamp.after.max.ms",
        Long,
        Update::Applied(|c, v| c.timestamp_after_max_ms = int(v)),
        Check::Range(0, i64::MAX),
        Some(|c| c.timestamp_after_max_ms.to_string())
    ),
    // Applied by `apply` before the two above, which win where set.
    def!(
        "log.message.timestamp.difference.max.ms",
        Long,
        Update::Applied(|c, v| {
            c.timestamp_before_max_ms = int(v);
            c.timestamp_after_max_ms = int(v);
        }),
        Check::Range(0, i64::MAX),
        None
    ),
    def!(
        "compression.type",
        String,
        Update::Applied(|c, v| c.compression = v.to_string()),
        Check::OneOf(CODECS),
        Some(|c| c.compression.clone())
    ),
    def!(
        "compression.gzip.level",
        Int,
        Update::Applied(|c, v| c.compression_levels.gzip = int(v) as i32),
        Check::Range(-1, 9),
        Some(|c| c.compression_levels.gzip.to_string())
    ),
    def!(
        "compression.lz4.level",
        Int,
        Update::Applied(|c, v| c.compression_levels.lz4 = int(v) as i32),
        Check::Range(1, 17),
        Some(|c| c.compression_levels.lz4.to_string())
    ),
    def!(
        "compression.zstd.level",
        Int,
        Update::Applied(|c, v| c.compression_levels.zstd = int(v) as i32),
        Check::Range(-131072, 22),
        Some(|c| c.compression_levels.zstd.to_string())
    ),
    def!(
        "min.insync.replicas",
        Int,
        Update::Kept,
        Check::Range(1, i32::MAX as i64),
        Some(|_| "1".into())
    ),
    def!(
        "unclean.leader.election.enable",
        Boolean,
        Update::Kept,
        Check::Any,
        Some(|_| "false".into())
    ),
    def!(
        "log.flush.interval.messages",
        Long,
        Update::Kept,
        Check::Range(1, i64::MAX),
        None
    ),
    def!(
        "log.flush.interval.ms",
        Long,
        Update::Kept,
        Check::Range(0, i64::MAX),
        None
    ),
    def!(
        "log.cleaner.threads",
        Int,
        Update::Kept,
        Check::Range(0, i32::MAX as i64),
        None
    ),
    def!(
        "num.io.threads",
        Int,
        Update::Kept,
        Check::Range(1, i32::MAX as i64),
        None
    ),
    def!(
        "num.network.threads",
        Int,
        Update::Kept,
        Check::Range(1, i32::MAX as i64),
        None
    ),
    def!(
        "num.replica.fetchers",
        Int,
        Update::Kept,
        Check::Range(1, i32::MAX as i64),
        None
    ),
    def!(
        "background.threads",
        Int,
        Update::Kept,
        Check::Range(1, i32::MAX as i64),
        None
    ),
    def!(
        "max.connections",
        Int,
        Update::Applied(|c, v| c.max_connections = int(v).max(0) as usize),
        Check::Range(0, i32::MAX as i64),
        Some(|c| c.max_connections.to_string())
    ),
    def!(
        "max.connections.per.ip",
        Int,
        Update::Applied(|c, v| c.max_connections_per_ip = int(v).max(0) as usize),
        Check::Range(0, i32::MAX as i64),
        Some(|c| c.max_connections_per_ip.to_string())
    ),
    def!(
        "max.connections.per.ip.overrides",
        String,
        Update::Applied(|c, v| {
            c.max_connections_per_ip_overrides = IpOverrides::parse(v).unwrap_or_default()
        }),
        Check::Parsed(|v| IpOverrides::parse(v).map(|_| ())),
        None
    ),
    def!(
        "leader.replication.throttled.rate",
        Long,
        Update::Kept,
        Check::Range(0, i64::MAX),
        None
    ),
    def!(
        "follower.replication.throttled.rate",
        Long,
        Update::Kept,
        Check::Range(0, i64::MAX),
        None
    ),
    def!(
        "node.id",
        Int,
        Update::ReadOnly,
        Check::Any,
        Some(|c| c.node_id.to_string())
    ),
    def!(
        "broker.id",
        Int,
        Update::ReadOnly,
        Check::Any,
        Some(|c| c.node_id.to_string())
    ),
    def!(
        "listeners",
        String,
        Update::ReadOnly,
        Check::Any,
        Some(|c| format!("PLAINTEXT://{}", c.listen))
    ),
    def!(
        "advertised.listeners",
        String,
        Update::ReadOnly,
        Check::Any,
        Some(|c| c.advertise.as_ref().map_or_else(
            || format!("PLAINTEXT://{}", c.listen),
            |a| format!("PLAINTEXT://{a}")
        ))
    ),
    def!(
        "log.dirs",
        String,
        Update::ReadOnly,
        Check::Any,
        Some(|c| match &c.storage {
            crate::config::StorageConfig::Memory => String::new(),
            crate::config::StorageConfig::Disk(d) => d.display().to_string(),
        })
    ),
    def!(
        "process.roles",
        List,
        Update::ReadOnly,
        Check::Any,
        Some(|_| "broker,controller".into())
    ),
    def!(
        "num.partitions",
        Int,
        Update::ReadOnly,
        Check::Any,
        Some(|c| c.default_partitions.to_string())
    ),
    def!(
        "default.replication.factor",
        Int,
        Update::ReadOnly,
        Check::Any,
        Some(|_| "1".into())
    ),
    def!(
        "auto.create.topics.enable",
        Boolean,
        Update::ReadOnly,
        Check::Any,
        Some(|c| c.auto_create_topics.to_string())
    ),
    def!(
        "socket.request.max.bytes",
        Int,
        Update::ReadOnly,
        Check::Any,
        Some(|c| c.max_request_bytes.to_string())
    ),
    def!(
        "fetch.max.bytes",
        Int,
        Update::ReadOnly,
        Check::Any,
        Some(|c| c.fetch_max_bytes.to_string())
    ),
    def!(
        "log.retention.check.interval.ms",
        Long,
        Update::ReadOnly,
        Check::Any,
        Some(|c| c.retention_check_interval.as_millis().to_string())
    ),
    def!(
        "transaction.max.timeout.ms",
        Int,
        Update::ReadOnly,
        Check::Any,
        Some(|c| c.transaction_max_timeout_ms.to_string())
    ),
    def!(
        "group.initial.rebalance.delay.ms",
        Int,
        Update::ReadOnly,
        Check::Any,
        Some(|c| c.group.initial_rebalance_delay.as_millis().to_string())
    ),
    def!(
        "group.min.session.timeout.ms",
        Int,
        Update::ReadOnly,
        Check::Any,
        Some(|c| c.group.min_session_timeout.as_millis().to_string())
    ),
    def!(
        "group.max.session.timeout.ms",
        Int,
        Update::ReadOnly,
        Check::Any,
        Some(|c| c.group.max_session_timeout.as_millis().to_string())
    ),
    def!(
        "group.consumer.session.timeout.ms",
        Int,
        Update::ReadOnly,
        Check::Any,
        Some(|c| c.group.consumer_session_timeout.as_millis().to_string())
    ),
    def!(
        "group.consumer.heartbeat.interval.ms",
        Int,
        Update::ReadOnly,
        Check::Any,
        Some(|c| c.group.consumer_heartbeat_interval.as_millis().to_string())
    ),
    def!(
        "offsets.retention.minutes",
        Int,
        Update::ReadOnly,
        Check::Any,
        Some(|c| (c.group.offsets_retention.as_secs() / 60).to_string())
    ),
    def!(
        "offset.metadata.max.bytes",
        Int,
        Update::ReadOnly,
        Check::Any,
        Some(|c| c.group.max_metadata_bytes.to_string())
    ),
];
