//! Broker configs by Kafka's names, as DescribeConfigs and (Incremental)AlterConfigs on a
//! BROKER resource see them: which exist here, their types, which may change while the
//! broker runs and what each changes, which are secrets. The values set at run time are
//! kept by `state::broker_configs`.

use crate::config::BrokerConfig;

/// `config_type` of DescribeConfigs v3+.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    List = 7,
    Password = 9,
}

/// How a config may change (Kafka's "update mode").
#[derive(Clone, Copy)]
pub(crate) enum Update {
    /// Changes while the broker runs, and changes what it does.
    Applied(fn(&mut BrokerConfig, &str)),
    /// Changes while a Kafka broker runs; kept and reported here, with nothing to change.
    Kept,
    /// Only in the broker's own settings (Kafka: read-only).
    ReadOnly,
}

/// What a value must be.
#[derive(Clone, Copy)]
enum Check {
    Any,
    Range(i64, i64),
    OneOf(&'static [&'static str]),
    ListOf(&'static [&'static str]),
}

/// One broker config.
#[derive(Clone, Copy)]
pub(crate) struct Def {
    pub(crate) name: &'static str,
    pub(crate) kind: Type,
    pub(crate) update: Update,
    check: Check,
    /// The value the broker runs with before anything is changed at run time; `None`:
    /// reported only once set.
    value: Option<fn(&BrokerConfig) -> String>,
}

impl Def {
    pub(crate) fn read_only(&self) -> bool {
        matches!(self.update, Update::ReadOnly)
    }

    pub(crate) fn sensitive(&self) -> bool {
        self.kind == Type::Password
    }

    /// The value `config` runs with, if this config is reported without being set.
    pub(crate) fn value(&self, config: &BrokerConfig) -> Option<String> {
        self.value.map(|f| f(config))
    }

    /// Checks a value as Kafka's `ConfigDef` does, with its messages.
    pub(crate) fn check(&self, value: &str) -> Result<(), String> {
        let name = self.name;
        let invalid = |why: &str| format!("Invalid value {value} for configuration {name}: {why}");
        match self.kind {
            Type::Int | Type::Long => {
                let n: i64 = value.trim().parse().map_err(|_| {
                    let t = if self.kind == Type::Int {
                        "INT"
                    } else {
                        "LONG"
                    };
                    invalid(&format!("Not a number of type {t}"))
                })?;
                if self.kind == Type::Int && i32::try_from(n).is_err() {
                    return Err(invalid("Not a number of type INT"));
                }
                if let Check::Range(min, max) = self.check {
                    if n < min {
                        return Err(invalid(&format!("Value must be at least {min}")));
                    }
                    if n > max {
                        return Err(invalid(&format!("Value must be no more than {max}")));
                    }
                }
                Ok(())
            }
            Type::Boolean => match value.trim().to_ascii_lowercase().as_str() {
                "true" | "false" => Ok(()),
                _ => Err(invalid("Expected value to be either true or false")),
            },
            _ => match self.check {
                Check::OneOf(allowed) if !allowed.contains(&value) => Err(invalid(&format!(
                    "String must be one of: {}",
                    allowed.join(", ")
                ))),
                Check::ListOf(allowed) => {
                    let items: Vec<&str> = value.split(',').map(str::trim).collect();
                    if items.iter().all(|i| allowed.contains(i)) && !value.trim().is_empty() {
                        Ok(())
                    } else {
                        Err(invalid(&format!(
                            "String must be one of: {}",
                            allowed.join(", ")
                        )))
                    }
                }
                _ => Ok(()),
            },
        }
    }
}

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

/// The configs that change what the broker does, then those it only keeps, then the
/// read-only ones it reports.
const DEFS: &[Def] = &[
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
        Update::Kept,
        Check::Range(0, i32::MAX as i64),
        None
    ),
    def!(
        "max.connections.per.ip",
        Int,
        Update::Kept,
        Check::Range(0, i32::MAX as i64),
        None
    ),
    def!(
        "max.connections.per.ip.overrides",
        String,
        Update::Kept,
        Check::Any,
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

/// The security configs Kafka changes at run time only per listener
/// (`listener.name.NAME.ssl.keystore.location`, …), never bare.
const PER_LISTENER_ONLY: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.truststore.certificates",
];

fn secret(name: &str) -> bool {
    name.ends_with(".password")
        || name.ends_with("sasl.jaas.config")
        || name.ends_with("ssl.keystore.key")
        || name.ends_with(".secret")
}

/// The config named `name`: a known one, or one Kafka keeps though it has no use for it
/// (security settings, a plugin's own): kept and reported, a secret when its name says so.
pub(crate) fn def(name: &str) -> Def {
    DEFS.iter()
        .find(|d| d.name == name)
        .copied()
        .unwrap_or(Def {
            name: "",
            kind: if secret(name) {
                Type::Password
            } else {
                Type::String
            },
            update: Update::Kept,
            check: Check::Any,
            value: None,
        })
}

/// Every config reported without being set, in the table's order.
pub(crate) fn reported() -> impl Iterator<Item = &'static Def> {
    DEFS.iter().filter(|d| d.value.is_some())
}

/// Why a change to these configs is refused as a whole, as Kafka words it.
pub(crate) fn refuse(names: &[&str]) -> Option<String> {
    let read_only: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| def(n).read_only())
        .collect();
    if !read_only.is_empty() {
        return Some(format!(
            "Cannot update these configs dynamically: Set({})",
            read_only.join(", ")
        ));
    }
    let bare: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| PER_LISTENER_ONLY.contains(n))
        .collect();
    (!bare.is_empty()).then(|| {
        format!(
            "These security configs can be dynamically updated only per-listener using the listener prefix: Set({})",
            bare.join(", ")
        )
    })
}

/// Checks one value against its config's type and range (an unlisted config takes any).
pub(crate) fn check(name: &str, value: &str) -> Result<(), String> {
    def(name).check(value)
}

/// `base` with the configs set at run time applied, the least specific layer first.
pub(crate) fn apply<'a>(
    base: &BrokerConfig,
    layers: impl IntoIterator<Item = &'a std::collections::BTreeMap<String, String>>,
) -> BrokerConfig {
    let mut out = base.clone();
    for layer in layers {
        let mut entries: Vec<(&String, &String)> = layer.iter().collect();
        // The old `difference` bound first, so the KIP-937 ones win where both are set.
        entries.sort_by_key(|(k, _)| *k != "log.message.timestamp.difference.max.ms");
        for (name, value) in entries {
            if let Update::Applied(set) = def(name).update {
                if def(name).check(value).is_ok() {
                    set(&mut out, value);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn values_are_checked_with_kafkas_messages() {
        assert_eq!(
            check("message.max.bytes", "abc").unwrap_err(),
            "Invalid value abc for configuration message.max.bytes: Not a number of type INT"
        );
        assert_eq!(
            check("log.segment.bytes", "5").unwrap_err(),
            "Invalid value 5 for configuration log.segment.bytes: Value must be at least 14"
        );
        assert!(check("log.cleanup.policy", "delete,compact").is_ok());
        assert!(check("compression.type", "brotli").is_err());
        assert!(check("sasl.kerberos.service.name", "kafka").is_ok());
        assert!(def("listener.name.x.ssl.key.password").sensitive());
        assert_eq!(
            refuse(&["num.partitions", "message.max.bytes"]).unwrap(),
            "Cannot update these configs dynamically: Set(num.partitions)"
        );
        assert!(refuse(&["ssl.keystore.location"]).is_some());
        assert!(refuse(&["listener.name.secure.ssl.keystore.location"]).is_none());
    }

    #[test]
    fn layers_apply_in_order_and_the_new_bounds_win() {
        let base = BrokerConfig::default();
        let default = BTreeMap::from([
            ("message.max.bytes".to_string(), "100".to_string()),
            (
                "log.message.timestamp.difference.max.ms".to_string(),
                "5".to_string(),
            ),
            (
                "log.message.timestamp.after.max.ms".to_string(),
                "7".to_string(),
            ),
        ]);
        let node = BTreeMap::from([("message.max.bytes".to_string(), "200".to_string())]);
        let c = apply(&base, [&default, &node]);
        assert_eq!(c.max_message_bytes, 200);
        assert_eq!(
            (c.timestamp_before_max_ms, c.timestamp_after_max_ms),
            (5, 7)
        );
        assert_eq!(apply(&base, [&default]).max_message_bytes, 100);
    }
}
