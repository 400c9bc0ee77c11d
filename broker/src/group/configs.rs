//! Per-group configs (KIP-848's GROUP config resource): `consumer.session.timeout.ms`
//! and `consumer.heartbeat.interval.ms` of one consumer-protocol group, set with
//! (Incremental)AlterConfigs, kept in the store whether or not the group exists yet, and
//! checked against the broker's bounds as Kafka's `GroupConfig` checks them.

use super::store::GroupStore;
use crate::config::GroupConfig;
use crate::meta::MetaError;
use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::time::Duration;

pub(crate) const SESSION_TIMEOUT: &str = "consumer.session.timeout.ms";
pub(crate) const HEARTBEAT_INTERVAL: &str = "consumer.heartbeat.interval.ms";
/// Kafka's broker defaults for the bounds (`group.consumer.min.session.timeout.ms`, …).
const MIN_SESSION_MS: i64 = 45_000;
const MAX_SESSION_MS: i64 = 60_000;
const MIN_HEARTBEAT_MS: i64 = 5_000;
const MAX_HEARTBEAT_MS: i64 = 15_000;

pub(crate) type Configs = BTreeMap<String, String>;

#[derive(Debug, Default)]
pub(crate) struct GroupConfigs {
    by_group: RwLock<HashMap<String, Configs>>,
}

fn millis(configs: &Configs, name: &str) -> Option<i64> {
    configs.get(name).and_then(|v| v.trim().parse().ok())
}

/// Checks a group's whole set of configs, with Kafka's messages.
pub(crate) fn check(configs: &Configs, defaults: &GroupConfig) -> Result<(), String> {
    for (name, value) in configs {
        if name != SESSION_TIMEOUT && name != HEARTBEAT_INTERVAL {
            return Err(format!("Unknown group config name: {name}"));
        }
        if value.trim().parse::<i32>().is_err() {
            return Err(format!(
                "Invalid value {value} for configuration {name}: Not a number of type INT"
            ));
        }
    }
    let session = millis(configs, SESSION_TIMEOUT)
        .unwrap_or(defaults.consumer_session_timeout.as_millis() as i64);
    let heartbeat = millis(configs, HEARTBEAT_INTERVAL)
        .unwrap_or(defaults.consumer_heartbeat_interval.as_millis() as i64);
    let bound = |name: &str, broker: &str, ok: bool, how: &str| {
        (!ok).then(|| format!("{name} must be {how} {broker}"))
    };
    [
        bound(
            HEARTBEAT_INTERVAL,
            "group.consumer.min.heartbeat.interval.ms",
            heartbeat >= MIN_HEARTBEAT_MS,
            "greater than or equal to",
        ),
        bound(
            HEARTBEAT_INTERVAL,
            "group.consumer.max.heartbeat.interval.ms",
            heartbeat <= MAX_HEARTBEAT_MS,
            "less than or equal to",
        ),
        bound(
            SESSION_TIMEOUT,
            "group.consumer.min.session.timeout.ms",
            session >= MIN_SESSION_MS,
            "greater than or equal to",
        ),
        bound(
            SESSION_TIMEOUT,
            "group.consumer.max.session.timeout.ms",
            session <= MAX_SESSION_MS,
            "less than or equal to",
        ),
        bound(
            HEARTBEAT_INTERVAL,
            SESSION_TIMEOUT,
            heartbeat < session,
            "less than",
        ),
    ]
    .into_iter()
    .flatten()
    .next()
    .map_or(Ok(()), Err)
}

impl GroupConfigs {
    pub(crate) fn load(store: &GroupStore) -> Result<Self, MetaError> {
        Ok(Self {
            by_group: RwLock::new(store.load_group_configs()?.into_iter().collect()),
        })
    }

    /// The configs set on `group`.
    pub(crate) fn get(&self, group: &str) -> Configs {
        self.by_group
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces a group's configs, stored first.
    pub(crate) fn replace(
        &self,
        store: &GroupStore,
        group: &str,
        configs: Configs,
    ) -> Result<(), MetaError> {
        store.put_group_configs(group, &configs)?;
        let mut by_group = self.by_group.write().unwrap_or_else(|p| p.into_inner());
        if configs.is_empty() {
            by_group.remove(group);
        } else {
            by_group.insert(group.to_string(), configs);
        }
        Ok(())
    }

    /// The coordinator's settings with `group`'s own in force.
    pub(crate) fn applied(&self, group: &str, base: &GroupConfig) -> GroupConfig {
        let configs = self.get(group);
        let ms = |name: &str| millis(&configs, name).map(|v| Duration::from_millis(v as u64));
        GroupConfig {
            consumer_session_timeout: ms(SESSION_TIMEOUT).unwrap_or(base.consumer_session_timeout),
            consumer_heartbeat_interval: ms(HEARTBEAT_INTERVAL)
                .unwrap_or(base.consumer_heartbeat_interval),
            ..*base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_as_kafka_checks_them() {
        let d = GroupConfig::default();
        let c = |pairs: &[(&str, &str)]| -> Configs {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(check(&c(&[(SESSION_TIMEOUT, "50000")]), &d).is_ok());
        assert_eq!(
            check(&c(&[(SESSION_TIMEOUT, "1000")]), &d).unwrap_err(),
            "consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms"
        );
        assert_eq!(
            check(&c(&[("foo", "1")]), &d).unwrap_err(),
            "Unknown group config name: foo"
        );
        assert!(check(&c(&[(HEARTBEAT_INTERVAL, "x")]), &d).is_err());
    }
}
