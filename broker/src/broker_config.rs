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
pub(crate) enum Check {
    Any,
    Range(i64, i64),
    OneOf(&'static [&'static str]),
    ListOf(&'static [&'static str]),
    /// Parsed by this function, which says why a value is refused.
    Parsed(fn(&str) -> Result<(), String>),
}

/// One broker config.
#[derive(Clone, Copy)]
pub(crate) struct Def {
    pub(crate) name: &'static str,
    pub(crate) kind: Type,
    pub(crate) update: Update,
    pub(crate) check: Check,
    /// The value the broker runs with before anything is changed at run time; `None`:
    /// reported only once set.
    pub(crate) value: Option<fn(&BrokerConfig) -> String>,
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
                Check::Parsed(parse) => parse(value).map_err(|why| invalid(&why)),
                _ => Ok(()),
            },
        }
    }
}

mod table;
use table::DEFS;

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
